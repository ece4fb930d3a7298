/**
 * Symmetric eigendecomposition: Householder tridiagonalisation followed by the implicit QL algorithm with
 * Wilkinson-style shifts (the classical tred2/tql2 pair), run on transposed storage so that every inner loop
 * is contiguous.
 */
import { GradmaxError, InvalidArgumentError, ShapeMismatchError } from '../errors.js';
import { Matrix } from '../matrix.js';
import { checkMatrix, maxAbs, scaleToUnit } from './checks.js';
import { fixSignsRaw } from './fix-signs.js';

/** Result of {@link symmetricEigen}: `a = vectors·diag(values)·vectorsᵀ`. */
export interface SymmetricEigenResult {
  /** Eigenvalues in descending order. */
  values: Float64Array;
  /** n×n orthogonal matrix whose column i is the eigenvector of `values[i]` (sign convention of {@link fixSigns}). */
  vectors: Matrix;
}

/** Relative asymmetry max|aᵢⱼ − aⱼᵢ| / max|aᵢⱼ| that {@link symmetricEigen} accepts (and averages away). */
export const SYMMETRY_TOLERANCE = 1e-10;

/** √(a² + b²) without overflow or underflow (Math.hypot is slow in V8). */
export function hypot2(a: number, b: number): number {
  const x = Math.abs(a);
  const y = Math.abs(b);
  if (x > y) {
    const t = y / x;
    return x * Math.sqrt(1 + t * t);
  }
  if (y === 0) return 0;
  const t = x / y;
  return y * Math.sqrt(1 + t * t);
}

/**
 * Eigen-decomposes the symmetric n×n matrix held in `w` (internal). On return `w` holds the eigenvectors as
 * ROWS (row i belongs to `d[i]`), `d` the eigenvalues, unsorted. `e` is scratch of length n.
 */
export function tridiagonalQl(w: Float64Array, n: number, d: Float64Array, e: Float64Array): void {
  if (n === 0) return;
  // --- Householder reduction to tridiagonal form (w[c·n + r] plays the role of V[r][c]). ---
  for (let j = 0; j < n; j++) d[j] = w[j * n + n - 1]!;
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]!);
    if (scale === 0) {
      e[i] = d[i - 1]!;
      for (let j = 0; j < i; j++) {
        d[j] = w[j * n + i - 1]!;
        w[j * n + i] = 0;
        w[i * n + j] = 0;
      }
    } else {
      for (let k = 0; k < i; k++) {
        d[k] = d[k]! / scale;
        h += d[k]! * d[k]!;
      }
      let f = d[i - 1]!;
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      for (let j = 0; j < i; j++) {
        const row = j * n;
        f = d[j]!;
        w[i * n + j] = f;
        g = e[j]! + w[row + j]! * f;
        for (let k = j + 1; k < i; k++) {
          const v = w[row + k]!;
          g += v * d[k]!;
          e[k] = e[k]! + v * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j] = e[j]! / h;
        f += e[j]! * d[j]!;
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j] = e[j]! - hh * d[j]!;
      for (let j = 0; j < i; j++) {
        const row = j * n;
        f = d[j]!;
        g = e[j]!;
        for (let k = j; k < i; k++) w[row + k] = w[row + k]! - (f * e[k]! + g * d[k]!);
        d[j] = w[row + i - 1]!;
        w[row + i] = 0;
      }
    }
    d[i] = h;
  }
  // --- Accumulate the transformations. ---
  for (let i = 0; i < n - 1; i++) {
    const rowI = i * n;
    const next = (i + 1) * n;
    w[rowI + n - 1] = w[rowI + i]!;
    w[rowI + i] = 1;
    const h = d[i + 1]!;
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = w[next + k]! / h;
      for (let j = 0; j <= i; j++) {
        const row = j * n;
        let g = 0;
        for (let k = 0; k <= i; k++) g += w[next + k]! * w[row + k]!;
        for (let k = 0; k <= i; k++) w[row + k] = w[row + k]! - g * d[k]!;
      }
    }
    for (let k = 0; k <= i; k++) w[next + k] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = w[j * n + n - 1]!;
    w[j * n + n - 1] = 0;
  }
  w[(n - 1) * n + n - 1] = 1;
  e[0] = 0;
  // --- Implicit QL on the tridiagonal (d, e), rotating the rows of w. ---
  for (let i = 1; i < n; i++) e[i - 1] = e[i]!;
  e[n - 1] = 0;
  let f = 0;
  // Deflate against the norm of the whole tridiagonal (not a running maximum), so that blocks of tiny entries
  // deflate at once instead of iterating in subnormal arithmetic.
  let tst1 = 0;
  for (let i = 0; i < n; i++) tst1 = Math.max(tst1, Math.abs(d[i]!) + Math.abs(e[i]!));
  const eps = Number.EPSILON;
  for (let l = 0; l < n; l++) {
    let m = l;
    while (m < n - 1 && Math.abs(e[m]!) > eps * tst1) m++;
    if (m > l) {
      let iter = 0;
      do {
        if (++iter > 100) throw new GradmaxError('no-convergence', `symmetricEigen: QL iteration did not converge for eigenvalue ${l} of ${n}`, { n, index: l });
        let g = d[l]!;
        let p = (d[l + 1]! - g) / (2 * e[l]!);
        let r = hypot2(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l]! / (p + r);
        d[l + 1] = e[l]! * (p + r);
        const dl1 = d[l + 1]!;
        let h = g - d[l]!;
        for (let i = l + 2; i < n; i++) d[i] = d[i]! - h;
        f += h;
        p = d[m]!;
        let c = 1, c2 = 1, c3 = 1;
        const el1 = e[l + 1]!;
        let s = 0, s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i]!;
          h = c * p;
          r = hypot2(p, e[i]!);
          e[i + 1] = s * r;
          s = e[i]! / r;
          c = p / r;
          p = c * d[i]! - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]!);
          const r0 = i * n;
          const r1 = r0 + n;
          for (let k = 0; k < n; k++) {
            const x = w[r1 + k]!;
            const y = w[r0 + k]!;
            w[r1 + k] = s * y + c * x;
            w[r0 + k] = c * y - s * x;
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]!) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]!) > eps * tst1);
    }
    d[l] = d[l]! + f;
    e[l] = 0;
  }
}

/**
 * Checks that `a` is square and symmetric (relative tolerance {@link SYMMETRY_TOLERANCE}) and returns a
 * symmetrised, power-of-two-scaled copy plus the scale applied (internal).
 */
export function prepareSymmetric(what: string, a: Matrix): { w: Float64Array; scale: number } {
  checkMatrix(what, a);
  const n = a.rows;
  if (a.cols !== n) throw new ShapeMismatchError(`${what} must be square`, [n, n], a.shape);
  const big = maxAbs(a.data);
  const scale = scaleToUnit(big);
  const w = new Float64Array(n * n);
  let asym = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      const x = a.data[i * n + j]! * scale;
      const y = a.data[j * n + i]! * scale;
      const diff = Math.abs(x - y);
      if (diff > asym) asym = diff;
      const v = 0.5 * (x + y);
      w[i * n + j] = v;
      w[j * n + i] = v;
    }
  }
  if (asym > SYMMETRY_TOLERANCE * big * scale) {
    throw new InvalidArgumentError(`${what} is not symmetric: max |aᵢⱼ − aⱼᵢ| = ${asym / scale} exceeds ${SYMMETRY_TOLERANCE} × max |aᵢⱼ|`, { shape: a.shape, asymmetry: asym / scale });
  }
  return { w, scale };
}

/**
 * Eigendecomposition of a symmetric matrix: `a = vectors·diag(values)·vectorsᵀ`, values descending,
 * eigenvectors as columns with the {@link fixSigns} sign convention. Accurate to about 1e-13 relative to ‖a‖
 * on well-scaled inputs; the input is scaled by a power of two internally, so extreme magnitudes are fine.
 * @throws ShapeMismatchError when `a` is not square
 * @throws InvalidArgumentError when `a` is not symmetric (relative asymmetry above {@link SYMMETRY_TOLERANCE})
 * @throws NonFiniteError when `a` holds NaN or ±Infinity
 */
export function symmetricEigen(a: Matrix): SymmetricEigenResult {
  const { w, scale } = prepareSymmetric('symmetricEigen argument a', a);
  const n = a.rows;
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  tridiagonalQl(w, n, d, e);
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => d[y]! - d[x]! || x - y);
  const values = new Float64Array(n);
  const vectors = new Matrix(n, n);
  for (let j = 0; j < n; j++) {
    const src = order[j]!;
    values[j] = d[src]! / scale;
    for (let i = 0; i < n; i++) vectors.data[i * n + j] = w[src * n + i]!;
  }
  fixSignsRaw(vectors.data, n, n, undefined, 0);
  return { values, vectors };
}
