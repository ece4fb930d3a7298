/**
 * Thin singular value decomposition by one-sided (Hestenes) Jacobi, preceded by a Householder QR when the
 * matrix is not square. One-sided Jacobi computes small singular values to high relative accuracy and
 * returns orthonormal singular vectors even for rank-deficient input.
 */
import { GradmaxError } from '../errors.js';
import { Matrix } from '../matrix.js';
import { Rng } from '../rng.js';
import { checkMatrix, maxAbs, safeNorm, scaleToUnit } from './checks.js';
import { completeRows } from './complete-orthonormal.js';
import { fixSignsRaw } from './fix-signs.js';
import { gemmAccumulate, gemmTransBAccumulate } from './matmul.js';
import { lqInPlace } from './qr.js';
import { symmetricEigenRows } from './top-eigen.js';
import { transposeInto } from './transpose.js';

/** Result of {@link svd}: `a = u·diag(s)·vᵀ`. */
export interface SvdResult {
  /** m×p left singular vectors (orthonormal columns), p = min(m, n). */
  u: Matrix;
  /** The p singular values, descending, non-negative. */
  s: Float64Array;
  /** n×p right singular vectors (orthonormal columns). */
  v: Matrix;
}

/** Raw thin SVD (internal): `ut` (p×m) and `vt` (p×n) hold the singular vectors as ROWS. */
export interface RawSvd {
  ut: Float64Array;
  s: Float64Array;
  vt: Float64Array;
}

const MAX_SWEEPS = 80;
/** From this many columns on, Jacobi starts from the Gram eigenvectors (see svdRaw). */
const PRECONDITION_MIN = 24;
/** Squared column norm below which a (max ≈ 1 scaled) column counts as zero. */
const TINY_SQ = 1e-200;

/** Plane rotation of the `len`-long rows at offsets `bi` and `bj`: (xi, xj) ← (c·xi − s·xj, s·xi + c·xj). */
function rotateRowPair(x: Float64Array, bi: number, bj: number, len: number, c: number, s: number): void {
  for (let k = 0; k < len; k++) {
    const xi = x[bi + k]!;
    const xj = x[bj + k]!;
    x[bi + k] = c * xi - s * xj;
    x[bj + k] = s * xi + c * xj;
  }
}

/**
 * One-sided Jacobi on the `r` rows (length `len`) of `x`, rotating the rows of `vt` (r×r) alongside, until
 * every pair of rows is orthogonal to `tol` relative to their norms.
 */
function jacobiRows(x: Float64Array, r: number, len: number, vt: Float64Array): void {
  const tol = 8 * Number.EPSILON;
  const nrm = new Float64Array(r);
  for (let sweep = 0; ; sweep++) {
    for (let i = 0; i < r; i++) {
      let s = 0;
      const b = i * len;
      for (let k = 0; k < len; k++) s += x[b + k]! * x[b + k]!;
      nrm[i] = s;
    }
    let rotated = false;
    for (let i = 0; i < r - 1; i++) {
      const bi = i * len;
      for (let j = i + 1; j < r; j++) {
        const alpha = nrm[i]!;
        const beta = nrm[j]!;
        // Columns below TINY_SQ in squared norm are numerically zero (the data is scaled to max ≈ 1); their
        // left vectors are completed afterwards, and rotating them would not converge in subnormal arithmetic.
        if (alpha < TINY_SQ || beta < TINY_SQ) continue;
        const bj = j * len;
        let gamma = 0;
        for (let k = 0; k < len; k++) gamma += x[bi + k]! * x[bj + k]!;
        if (Math.abs(gamma) <= tol * Math.sqrt(alpha) * Math.sqrt(beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const az = Math.abs(zeta);
        const root = az > 1e150 ? az : Math.sqrt(1 + az * az);
        const t = (zeta >= 0 ? 1 : -1) / (az + root);
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        rotateRowPair(x, bi, bj, len, c, s);
        rotateRowPair(vt, i * r, j * r, r, c, s);
        nrm[i] = alpha - t * gamma;
        nrm[j] = beta + t * gamma;
      }
    }
    if (!rotated) return;
    if (sweep >= MAX_SWEEPS) throw new GradmaxError('no-convergence', `svd: one-sided Jacobi did not converge in ${MAX_SWEEPS} sweeps`, { rows: r, length: len });
  }
}

/**
 * Thin SVD of the row-major m×n `data` (internal, no argument checks). `rng` completes the left singular
 * vectors of exactly-zero singular values. Singular values come out descending; signs are not fixed.
 */
export function svdRaw(data: Float64Array, m: number, n: number, rng: Rng): RawSvd {
  if (m < n) {
    const t = new Float64Array(m * n);
    transposeInto(data, m, n, t);
    const r = svdRaw(t, n, m, rng);
    return { ut: r.vt, s: r.s, vt: r.ut };
  }
  const p = n;
  const scale = scaleToUnit(maxAbs(data));
  // x holds the columns of a (scaled) as rows.
  const at = new Float64Array(n * m);
  transposeInto(data, m, n, at);
  if (scale !== 1) for (let i = 0; i < at.length; i++) at[i] = at[i]! * scale;
  let x: Float64Array;
  let qt: Float64Array | undefined;
  if (m > n) {
    // aᵀ = L·qt, so a = qtᵀ·Lᵀ = Q·R with R = Lᵀ: the columns of R are the rows of L.
    qt = new Float64Array(n * m);
    lqInPlace(at, n, m, n, qt);
    x = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) x[i * n + j] = at[i * m + j]!;
  } else {
    x = at;
  }
  let vt: Float64Array = new Float64Array(p * p);
  if (p >= PRECONDITION_MIN) {
    // Precondition: rotate the columns by the eigenvectors E of their Gram matrix, x ← E·x, vt ← E. The
    // columns are then orthogonal up to rounding of the (squared) Gram problem and Jacobi only has to polish
    // them (typically 2–3 sweeps instead of ~10), keeping its accuracy since it decides convergence itself.
    const g = new Float64Array(p * p);
    gemmTransBAccumulate(p, p, p, x, x, g, true);
    const e = symmetricEigenRows(g, p).rows;
    const rotated = new Float64Array(p * p);
    gemmAccumulate(p, p, p, e, p, 1, x, rotated);
    x = rotated;
    vt = e;
  } else {
    for (let i = 0; i < p; i++) vt[i * p + i] = 1;
  }
  jacobiRows(x, p, p, vt);
  const sv = new Float64Array(p);
  for (let i = 0; i < p; i++) sv[i] = safeNorm(x, i * p, p);
  const order = Array.from({ length: p }, (_, i) => i).sort((a, b) => sv[b]! - sv[a]! || a - b);
  const ur = new Float64Array(p * p);
  const s = new Float64Array(p);
  const vtSorted = new Float64Array(p * p);
  let good = 0;
  for (let j = 0; j < p; j++) {
    const src = order[j]!;
    const sigma = sv[src]!;
    s[j] = sigma / scale;
    vtSorted.set(vt.subarray(src * p, src * p + p), j * p);
    if (sigma * sigma >= TINY_SQ) {
      const inv = 1 / sigma;
      for (let k = 0; k < p; k++) ur[j * p + k] = x[src * p + k]! * inv;
      good++;
    }
  }
  completeRows(ur, p, good, p - good, rng);
  let ut: Float64Array;
  if (qt) {
    ut = new Float64Array(p * m);
    gemmAccumulate(p, m, p, ur, p, 1, qt, ut);
  } else {
    ut = ur;
  }
  return { ut, s, vt: vtSorted };
}

/** Builds the public result from row-stored singular vectors, applying the {@link fixSigns} convention. */
export function rawToResult(raw: RawSvd, m: number, n: number, k: number): SvdResult {
  const p = raw.s.length;
  const u = new Matrix(m, k);
  const v = new Matrix(n, k);
  for (let j = 0; j < k; j++) {
    for (let i = 0; i < m; i++) u.data[i * k + j] = raw.ut[j * m + i]!;
    for (let i = 0; i < n; i++) v.data[i * k + j] = raw.vt[j * n + i]!;
  }
  fixSignsRaw(u.data, m, k, v.data, n);
  return { u, s: raw.s.slice(0, Math.min(k, p)), v };
}

/**
 * Thin SVD `a = u·diag(s)·vᵀ` with p = min(m, n): u m×p and v n×p with orthonormal columns, s descending.
 * Signs follow {@link fixSigns} (largest-magnitude entry of each u column positive). Left singular vectors of
 * exactly-zero singular values are completed with seeded random orthonormal directions (seed 0), so the
 * result is deterministic. The input is scaled by a power of two internally: entries around 1e-150 or 1e150
 * are handled without loss.
 * @throws NonFiniteError when `a` holds NaN or ±Infinity
 */
export function svd(a: Matrix): SvdResult {
  checkMatrix('svd argument a', a);
  const { rows: m, cols: n } = a;
  const raw = svdRaw(a.data, m, n, new Rng(0));
  return rawToResult(raw, m, n, Math.min(m, n));
}
