/**
 * Householder QR (thin), implemented as an LQ factorisation of the transpose so that every reflector works
 * on contiguous rows of the row-major storage.
 */
import { Matrix } from '../matrix.js';
import { checkMatrix, maxAbs, safeNorm, scaleToUnit } from './checks.js';
import { transposeInto } from './transpose.js';
import { wasmWorkspace } from './wasm-kernels.js';

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
  const size = rows * cols;
  const ws = size >= 4096 ? wasmWorkspace(size + steps * cols) : undefined;
  if (ws) {
    // Same algorithm with the row updates in the SIMD reflector kernel: [w | qt] live in WebAssembly memory.
    const { heap, kernels } = ws;
    heap.set(w.subarray(0, size), 0);
    const all = heap.subarray(0, size + steps * cols);
    lqWith(all, rows, cols, steps, size, (vAt, len, t, yAt, count) => kernels.refl(vAt * 8, len, t, yAt * 8, cols * 8, count));
    w.set(all.subarray(0, size));
    qt.set(all.subarray(size, size + steps * cols));
    return;
  }
  const all = new Float64Array(size + steps * cols);
  all.set(w.subarray(0, size), 0);
  lqWith(all, rows, cols, steps, size, (vAt, len, t, yAt, count) => {
    for (let r = 0; r < count; r++) {
      const y = yAt + r * cols;
      let d = 0;
      for (let j = 0; j < len; j++) d += all[vAt + j]! * all[y + j]!;
      d *= t;
      if (d === 0) continue;
      for (let j = 0; j < len; j++) all[y + j] = all[y + j]! - d * all[vAt + j]!;
    }
  });
  w.set(all.subarray(0, size));
  qt.set(all.subarray(size, size + steps * cols));
}

/**
 * Applies I − t·v·vᵀ (v = `len` values at `vAt`) to `count` rows of length ≥ len starting at `yAt`
 * (row stride `cols`), all offsets into one shared array.
 */
type ReflectRows = (vAt: number, len: number, t: number, yAt: number, count: number) => void;

/** The LQ algorithm of {@link lqInPlace} on `all` = [w (rows×cols) | qt (steps×cols) at offset qOff]. */
function lqWith(all: Float64Array, rows: number, cols: number, steps: number, qOff: number, reflect: ReflectRows): void {
  const w = all;
  const tau = new Float64Array(steps);
  const beta = new Float64Array(steps);
  for (let i = 0; i < steps; i++) {
    const ri = i * cols;
    const alpha = w[ri + i]!;
    const tailNorm = safeNorm(w, ri + i + 1, cols - i - 1);
    if (tailNorm === 0) {
      tau[i] = 0;
      beta[i] = alpha;
      continue;
    }
    let b = Math.hypot(alpha, tailNorm);
    if (alpha > 0) b = -b;
    const denom = alpha - b; // divide (not multiply by 1/denom), which stays finite for subnormal data
    let vv = 1;
    for (let j = i + 1; j < cols; j++) {
      const x = w[ri + j]! / denom;
      w[ri + j] = x;
      vv += x * x;
    }
    // τ = 2/(vᵀv) keeps the reflector orthogonal even when v lost precision (subnormal data); it equals
    // (β − α)/β in exact arithmetic.
    const t = 2 / vv;
    beta[i] = b;
    tau[i] = t;
    // Apply H = I − t·v·vᵀ (v = [1, w[ri+i+1..]], the 1 stored in place while the reflector is in use).
    w[ri + i] = 1;
    if (i + 1 < rows) reflect(ri + i, cols - i, t, (i + 1) * cols + i, rows - i - 1);
  }
  // qt = [I 0]·H_{steps-1}···H_0, applying reflectors from the last one; row r is e_r until H_r is reached.
  all.fill(0, qOff, qOff + steps * cols);
  for (let r = 0; r < steps; r++) all[qOff + r * cols + r] = 1;
  for (let i = steps - 1; i >= 0; i--) {
    const t = tau[i]!;
    if (t === 0) continue;
    reflect(i * cols + i, cols - i, t, qOff + i * cols + i, steps - i);
  }
  for (let i = 0; i < steps; i++) w[i * cols + i] = beta[i]!;
  const qt = all.subarray(qOff, qOff + steps * cols);
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
