/**
 * Householder QR (thin), implemented as an LQ factorisation of the transpose so that every reflector works
 * on contiguous rows of the row-major storage.
 */
import { Matrix } from '../matrix.js';
import { checkMatrix, maxAbs, safeNorm, scaleToUnit } from './checks.js';
import { transposeInto } from './transpose.js';

/** Result of {@link householderQr}: `a = q·r`. */
export interface QrResult {
  /** m×min(m,n) with orthonormal columns. */
  q: Matrix;
  /** min(m,n)×n upper-triangular (upper-trapezoidal when n > m), with a non-negative diagonal. */
  r: Matrix;
}

/**
 * In-place LQ of the `rows×cols` row-major `w` over its first `steps` rows (internal): afterwards the lower
 * trapezoid of `w` holds L and `qt` (steps×cols, overwritten) holds orthonormal rows with
 * w_original[0..rows) = L (rows×steps) · qt. The diagonal of L is made non-negative. `tau` gets the reflector
 * coefficients. Requires steps ≤ min(rows, cols).
 */
export function lqInPlace(w: Float64Array, rows: number, cols: number, steps: number, qt: Float64Array): void {
  const tau = new Float64Array(steps);
  for (let i = 0; i < steps; i++) {
    const ri = i * cols;
    const alpha = w[ri + i]!;
    const tailNorm = safeNorm(w, ri + i + 1, cols - i - 1);
    if (tailNorm === 0) {
      tau[i] = 0;
      continue;
    }
    let beta = Math.hypot(alpha, tailNorm);
    if (alpha > 0) beta = -beta;
    const denom = alpha - beta; // divide (not multiply by 1/denom), which stays finite for subnormal data
    let vv = 1;
    for (let j = i + 1; j < cols; j++) {
      const x = w[ri + j]! / denom;
      w[ri + j] = x;
      vv += x * x;
    }
    // τ = 2/(vᵀv) keeps the reflector orthogonal even when v lost precision (subnormal data); it equals
    // (β − α)/β in exact arithmetic.
    const t = 2 / vv;
    w[ri + i] = beta;
    tau[i] = t;
    // Apply H = I − t·v·vᵀ (v = [1, w[ri+i+1..]]) to the remaining rows from the right.
    for (let r = i + 1; r < rows; r++) {
      const rr = r * cols;
      let d = w[rr + i]!;
      for (let j = i + 1; j < cols; j++) d += w[rr + j]! * w[ri + j]!;
      d *= t;
      if (d === 0) continue;
      w[rr + i] = w[rr + i]! - d;
      for (let j = i + 1; j < cols; j++) w[rr + j] = w[rr + j]! - d * w[ri + j]!;
    }
  }
  // qt = [I 0]·H_{steps-1}···H_0, applying reflectors from the last one; row r is e_r until H_r is reached.
  qt.fill(0, 0, steps * cols);
  for (let r = 0; r < steps; r++) qt[r * cols + r] = 1;
  for (let i = steps - 1; i >= 0; i--) {
    const t = tau[i]!;
    if (t === 0) continue;
    const ri = i * cols;
    for (let r = i; r < steps; r++) {
      const rr = r * cols;
      let d = qt[rr + i]!;
      for (let j = i + 1; j < cols; j++) d += qt[rr + j]! * w[ri + j]!;
      d *= t;
      if (d === 0) continue;
      qt[rr + i] = qt[rr + i]! - d;
      for (let j = i + 1; j < cols; j++) qt[rr + j] = qt[rr + j]! - d * w[ri + j]!;
    }
  }
  // Make diag(L) non-negative by flipping the matching rows of qt and columns of L.
  for (let i = 0; i < steps; i++) {
    if (w[i * cols + i]! < 0) {
      for (let r = i; r < rows; r++) w[r * cols + i] = -w[r * cols + i]!;
      for (let j = 0; j < cols; j++) qt[i * cols + j] = -qt[i * cols + j]!;
    }
  }
}

/**
 * Thin Householder QR: `a = q·r` with q (m×min(m,n)) having orthonormal columns and r (min(m,n)×n)
 * upper-triangular with a non-negative diagonal (so q and r are unique when a has full column rank).
 * Columns of a that are zero or dependent still get orthonormal q columns.
 * @throws NonFiniteError when `a` holds NaN or ±Infinity
 */
export function householderQr(a: Matrix): QrResult {
  checkMatrix('householderQr argument a', a);
  const { rows: m, cols: n } = a;
  const k = Math.min(m, n);
  // w = aᵀ (n×m): columns of a become contiguous rows; LQ of aᵀ is the transpose of QR of a.
  const w = new Float64Array(n * m);
  transposeInto(a.data, m, n, w);
  // Power-of-two scaling (exact) keeps the reflectors away from overflow and subnormal arithmetic.
  const scale = scaleToUnit(maxAbs(a.data));
  if (scale !== 1) for (let i = 0; i < w.length; i++) w[i] = w[i]! * scale;
  const qt = new Float64Array(k * m);
  lqInPlace(w, n, m, k, qt);
  const q = new Matrix(m, k);
  transposeInto(qt, k, m, q.data);
  const r = new Matrix(k, n);
  for (let j = 0; j < n; j++) {
    const lim = Math.min(j, k - 1);
    for (let i = 0; i <= lim; i++) r.data[i * n + j] = w[j * m + i]! / scale;
  }
  return { q, r };
}
