/**
 * Seeded top-k singular value decomposition by block subspace iteration with Rayleigh–Ritz extraction and a
 * residual-based convergence test. The heavy work (Gram matrix, passes over A, tridiagonalisation) runs in
 * the cache-blocked product kernels, which use WebAssembly SIMD when available.
 */
import { InvalidArgumentError } from '../errors.js';
import { Matrix } from '../matrix.js';
import { Rng } from '../rng.js';
import { checkMatrix, maxAbs, scaleToUnit } from './checks.js';
import { fixSignsRaw } from './fix-signs.js';
import { gemmAccumulate, gemmTransBAccumulate } from './matmul.js';
import { lqInPlace } from './qr.js';
import { svdRaw } from './svd.js';
import { topSymmetricEigen } from './top-eigen.js';
import { transposeInto } from './transpose.js';

/** Options of {@link topKSvd}. */
export interface TopKSvdOptions {
  /** Seed of the random start block and of any random completion (default 0). Same seed ⇒ identical output. */
  seed?: number;
  /** Convergence threshold on max_i ‖A·vᵢ − σᵢ·uᵢ‖ / σ₁ over the k returned triplets (default 1e-10). */
  tolerance?: number;
  /** Maximum number of subspace iterations (default 64); when reached, the result has `converged: false`. */
  maxIterations?: number;
  /**
   * Extra basis vectors carried beyond k to speed up convergence (default 8, capped at min(m,n) − k). The
   * block grows by max(8, k) seeded random directions whenever an iteration reduces the residual by less
   * than a factor 0.3 (σ_k inside a cluster wider than the block).
   */
  oversample?: number;
  /**
   * Singular values at or below this count as zero in `rank`
   * (default max(m, n) · 2.2e-16 · σ₁, i.e. machine epsilon times the largest dimension times σ₁).
   */
  rankTolerance?: number;
  /**
   * How the start basis is built: `'gram'` = leading eigenvectors of the Gram matrix of the small side
   * (cost ≈ p²·q/2 + 4/3·p³ for p = min(m,n), q = max(m,n); usually converges in one iteration), `'random'` =
   * range of A·Ω for a seeded Gaussian Ω (cheap start, more iterations), `'auto'` (default) picks by cost.
   */
  start?: 'auto' | 'gram' | 'random';
}

/** Result of {@link topKSvd}: A ≈ u·diag(s)·vᵀ restricted to the k leading singular triplets. */
export interface TopKSvdResult {
  /** m×k left singular vectors (orthonormal columns, {@link fixSigns} convention). */
  u: Matrix;
  /** The k leading singular values, descending. */
  s: Float64Array;
  /** n×k right singular vectors (orthonormal columns). */
  v: Matrix;
  /** Numerical rank estimate: how many of the k computed singular values exceed the rank tolerance. */
  rank: number;
  /** Subspace iterations performed (0 when the full SVD was used). */
  iterations: number;
  /** Whether `residual ≤ tolerance`. */
  converged: boolean;
  /** max_i ‖A·vᵢ − σᵢ·uᵢ‖ / σ₁ over the returned triplets (the absolute value when σ₁ = 0). */
  residual: number;
}

function intOption(name: string, value: number | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min) throw new InvalidArgumentError(`topKSvd: ${name} must be an integer ≥ ${min}, got ${value}`, { [name]: value });
  return value;
}

/**
 * Residual max_j ‖A·v_j − s_j·u_j‖ for the first `k` rows of `ut` (k×r) / `vt` (k×c), where `a` is r×c.
 * Also returns A·vᵀ (r×k) so callers can reuse it.
 */
function residuals(a: Float64Array, r: number, c: number, ut: Float64Array, s: Float64Array, vt: Float64Array, k: number): { worst: number; av: Float64Array } {
  const av = new Float64Array(r * k);
  gemmTransBAccumulate(r, k, c, a, vt, av);
  let worst = 0;
  for (let j = 0; j < k; j++) {
    let sum = 0;
    const sj = s[j]!;
    for (let i = 0; i < r; i++) {
      const d = av[i * k + j]! - sj * ut[j * r + i]!;
      sum += d * d;
    }
    worst = Math.max(worst, Math.sqrt(sum));
  }
  return { worst, av };
}

/**
 * The k leading singular triplets of `a` (m×n): u (m×k), s (k, descending), v (n×k).
 *
 * Method: work on the wide orientation (rows ≤ cols). When the small dimension is moderate (see `start`),
 * the start basis is the l = k + oversample leading eigenvectors of the Gram matrix A·Aᵀ (Householder
 * tridiagonalisation, QL eigenvalues, inverse iteration); otherwise it is the range of A·Ω for a seeded
 * Gaussian Ω. Each iteration then does a Rayleigh–Ritz step on A itself (not on the Gram matrix, so accuracy
 * is not squared away): B = Qᵀ·A, LQ of B (CholeskyQR2, or Householder when B is ill-conditioned), SVD of
 * the small factor, followed by the true residual check max_i ‖A·vᵢ − σᵢ·uᵢ‖ / σ₁ ≤ tolerance computed
 * with A; if it fails, Q ← orth(A·V) (one subspace iteration) and repeat, up to `maxIterations` (then
 * `converged: false`). When k + oversample ≥ min(m, n) the full {@link svd} is used instead. Output signs
 * follow {@link fixSigns}.
 *
 * `rank` counts the returned σ above `rankTolerance` (default max(m,n)·2.2e-16·σ₁). A zero matrix gives
 * rank 0, s = 0 and still orthonormal u and v. Results depend only on (a, k, options): on a given runtime,
 * equal seeds give bit-identical output (the WebAssembly and TypeScript kernels round differently).
 * @throws InvalidArgumentError when k is not an integer in [1, min(m, n)] or an option is out of range
 * @throws NonFiniteError when `a` holds NaN or ±Infinity
 */
export function topKSvd(a: Matrix, k: number, options: TopKSvdOptions = {}): TopKSvdResult {
  checkMatrix('topKSvd argument a', a);
  const { rows: m, cols: n } = a;
  const p = Math.min(m, n);
  if (!Number.isInteger(k) || k < 1 || k > p) {
    throw new InvalidArgumentError(`topKSvd: k must be an integer in [1, ${p}] for a ${m}×${n} matrix, got ${k}`, { k, shape: [m, n] });
  }
  const seed = options.seed ?? 0;
  if (!Number.isSafeInteger(seed)) throw new InvalidArgumentError(`topKSvd: seed must be a safe integer, got ${seed}`, { seed });
  const tolerance = options.tolerance ?? 1e-10;
  if (!(tolerance > 0) || !Number.isFinite(tolerance)) throw new InvalidArgumentError(`topKSvd: tolerance must be a positive finite number, got ${tolerance}`, { tolerance });
  const maxIterations = intOption('maxIterations', options.maxIterations, 64, 1);
  const oversample = intOption('oversample', options.oversample, 8, 0);
  if (options.rankTolerance !== undefined && !(options.rankTolerance >= 0 && Number.isFinite(options.rankTolerance))) {
    throw new InvalidArgumentError(`topKSvd: rankTolerance must be a non-negative finite number, got ${options.rankTolerance}`, { rankTolerance: options.rankTolerance });
  }
  const start = options.start ?? 'auto';
  if (start !== 'auto' && start !== 'gram' && start !== 'random') throw new InvalidArgumentError(`topKSvd: start must be 'auto', 'gram' or 'random', got ${String(start)}`, { start });
  const rng = new Rng(seed);

  // Wide orientation r×c (r ≤ c), scaled by a power of two so that Gram entries neither overflow nor underflow.
  const transposed = m > n;
  const r = p;
  const c = Math.max(m, n);
  const big = maxAbs(a.data);
  const scale = big > 1e-100 && big < 1e100 ? 1 : scaleToUnit(big);
  let w: Float64Array;
  if (transposed) {
    w = new Float64Array(r * c);
    transposeInto(a.data, m, n, w);
    if (scale !== 1) for (let i = 0; i < w.length; i++) w[i] = w[i]! * scale;
  } else if (scale !== 1) {
    w = new Float64Array(r * c);
    for (let i = 0; i < w.length; i++) w[i] = a.data[i]! * scale;
  } else {
    w = a.data;
  }

  let l = Math.min(k + oversample, r);
  let ut: Float64Array; // k×r rows = left singular vectors
  let vt: Float64Array; // k×c rows = right singular vectors
  let s: Float64Array;
  let iterations = 0;
  let residual: number;
  if (l >= r) {
    const raw = svdRaw(w, r, c, rng);
    ut = raw.ut.slice(0, k * r);
    vt = raw.vt.slice(0, k * c);
    s = raw.s.slice(0, k);
    residual = residuals(w, r, c, ut, s, vt, k).worst;
  } else {
    let qt = startBasis(w, r, c, l, rng, start === 'auto' ? useGram(r, c, l) : start === 'gram');
    let previous = Infinity;
    for (;;) {
      iterations++;
      // Rayleigh–Ritz on A: B = Qᵀ·A = L·Vh, L = Ul·S·Wlᵀ ⇒ A ≈ (Q·Ul)·S·(Vhᵀ·Wl)ᵀ.
      const b = new Float64Array(l * c);
      gemmAccumulate(l, c, r, qt, r, 1, w, b);
      const { lower, vh } = lqRows(b, l, c);
      const small = svdRaw(lower, l, l, rng);
      const utAll = new Float64Array(l * r);
      gemmAccumulate(l, r, l, small.ut, l, 1, qt, utAll);
      const vtAll = new Float64Array(l * c);
      gemmAccumulate(l, c, l, small.vt, l, 1, vh, vtAll);
      s = small.s;
      const res = residuals(w, r, c, utAll, s, vtAll, k);
      residual = res.worst;
      ut = utAll.subarray(0, k * r);
      vt = vtAll.subarray(0, k * c);
      const sigma1 = s[0]!;
      const relative = sigma1 > 0 ? residual / sigma1 : residual;
      if (relative <= tolerance || iterations >= maxIterations) break;
      // Subspace iteration: Q ← orth(A·V) over all l Ritz vectors (A·V for the first k is already known).
      // When the residual shrinks slowly, σ_k sits in a cluster wider than the block: grow the block by
      // seeded random directions (the next power steps pull them into the dominant subspace).
      const grown = iterations >= 2 && relative > 0.3 * previous ? Math.min(r, l + Math.max(8, k)) : l;
      previous = relative;
      const avRest = new Float64Array(r * (l - k));
      gemmTransBAccumulate(r, l - k, c, w, vtAll.subarray(k * c), avRest);
      const zt = new Float64Array(grown * r);
      for (let i = 0; i < r; i++) {
        for (let j = 0; j < k; j++) zt[j * r + i] = res.av[i * k + j]!;
        for (let j = k; j < l; j++) zt[j * r + i] = avRest[i * (l - k) + j - k]!;
      }
      for (let i = l * r; i < grown * r; i++) zt[i] = rng.normal();
      l = grown;
      qt = new Float64Array(l * r);
      lqInPlace(zt, l, r, l, qt);
    }
  }
  const sigma1 = s[0]!;
  const relResidual = sigma1 > 0 ? residual / sigma1 : residual;
  const sOut = new Float64Array(k);
  for (let j = 0; j < k; j++) sOut[j] = s[j]! / scale;
  const rankTol = options.rankTolerance ?? Math.max(m, n) * 2.220446049250313e-16 * sOut[0]!;
  let rank = 0;
  for (let j = 0; j < k; j++) if (sOut[j]! > rankTol) rank++;

  const u = new Matrix(m, k);
  const v = new Matrix(n, k);
  const [leftRows, leftLen, rightRows, rightLen] = transposed ? [vt, c, ut, r] : [ut, r, vt, c];
  for (let j = 0; j < k; j++) {
    for (let i = 0; i < leftLen; i++) u.data[i * k + j] = leftRows[j * leftLen + i]!;
    for (let i = 0; i < rightLen; i++) v.data[i * k + j] = rightRows[j * rightLen + i]!;
  }
  fixSignsRaw(u.data, m, k, v.data, n);
  return { u, s: sOut, v, rank, iterations, converged: relResidual <= tolerance, residual: relResidual };
}

/**
 * Cholesky factor (lower, row-major) of the symmetric positive definite l×l `g`, or undefined when a pivot
 * is not safely positive (relative to the largest diagonal entry).
 */
function cholesky(g: Float64Array, l: number): Float64Array | undefined {
  const f = new Float64Array(l * l);
  let maxDiag = 0;
  for (let i = 0; i < l; i++) maxDiag = Math.max(maxDiag, g[i * l + i]!);
  if (!(maxDiag > 0)) return undefined;
  for (let j = 0; j < l; j++) {
    let d = g[j * l + j]!;
    for (let k = 0; k < j; k++) d -= f[j * l + k]! * f[j * l + k]!;
    if (!(d > 1e-12 * maxDiag)) return undefined;
    const djj = Math.sqrt(d);
    f[j * l + j] = djj;
    for (let i = j + 1; i < l; i++) {
      let s = g[i * l + j]!;
      for (let k = 0; k < j; k++) s -= f[i * l + k]! * f[j * l + k]!;
      f[i * l + j] = s / djj;
    }
  }
  return f;
}

/** Inverse of the lower-triangular l×l `f` (row-major). */
function lowerInverse(f: Float64Array, l: number): Float64Array {
  const inv = new Float64Array(l * l);
  for (let j = 0; j < l; j++) {
    inv[j * l + j] = 1 / f[j * l + j]!;
    for (let i = j + 1; i < l; i++) {
      let s = 0;
      for (let k = j; k < i; k++) s += f[i * l + k]! * inv[k * l + j]!;
      inv[i * l + j] = -s / f[i * l + i]!;
    }
  }
  return inv;
}

/**
 * LQ of the l×c block `b` (rows ≥ l): b = lower·vh with vh having orthonormal rows. Uses CholeskyQR2 (two
 * rounds of Cholesky on the l×l Gram matrix, all heavy work in the matrix kernels) when b is well
 * conditioned enough for it to be accurate — checked on the second round's Gram matrix — and Householder LQ
 * otherwise (rank-deficient or ill-conditioned blocks). `b` is destroyed.
 */
function lqRows(b: Float64Array, l: number, c: number): { lower: Float64Array; vh: Float64Array } {
  const g1 = new Float64Array(l * l);
  gemmTransBAccumulate(l, l, c, b, b, g1, true);
  const r1 = cholesky(g1, l);
  if (r1) {
    const v1 = new Float64Array(l * c);
    gemmAccumulate(l, c, l, lowerInverse(r1, l), l, 1, b, v1);
    const g2 = new Float64Array(l * l);
    gemmTransBAccumulate(l, l, c, v1, v1, g2, true);
    let defect = 0;
    for (let i = 0; i < l; i++) for (let j = 0; j < l; j++) defect = Math.max(defect, Math.abs(g2[i * l + j]! - (i === j ? 1 : 0)));
    const r2 = defect < 0.1 ? cholesky(g2, l) : undefined;
    if (r2) {
      const vh = new Float64Array(l * c);
      gemmAccumulate(l, c, l, lowerInverse(r2, l), l, 1, v1, vh);
      const lower = new Float64Array(l * l);
      gemmAccumulate(l, l, l, r1, l, 1, r2, lower);
      return { lower, vh };
    }
  }
  const vh = new Float64Array(l * c);
  lqInPlace(b, l, c, l, vh);
  const lower = new Float64Array(l * l);
  for (let i = 0; i < l; i++) for (let j = 0; j <= i; j++) lower[i * l + j] = b[i * c + j]!;
  return { lower, vh };
}

/**
 * Whether the Gram-matrix start is expected to pay off (in multiply-adds of the product kernels): A·Aᵀ costs
 * r²·c/2 and the tridiagonal eigen-solver about 1.5·r³, against 2·r·c·l per subspace iteration; the Gram
 * start converges in one iteration on well-conditioned problems whatever the spectrum, while a random start
 * on a flat spectrum can need a hundred, so the budget allows up to 100 iterations. Beyond r = 2048 the r×r
 * Gram matrix itself gets too large.
 */
function useGram(r: number, c: number, l: number): boolean {
  return r <= 2048 && r * c / 2 + 1.5 * r * r <= 200 * c * l;
}

/** An l×r block of orthonormal rows spanning a good approximation of the leading left singular subspace. */
function startBasis(w: Float64Array, r: number, c: number, l: number, rng: Rng, gram: boolean): Float64Array {
  const qt = new Float64Array(l * r);
  if (gram) {
    const g = new Float64Array(r * r);
    gemmTransBAccumulate(r, r, c, w, w, g, true);
    const gs = scaleToUnit(maxAbs(g));
    if (gs !== 1) for (let i = 0; i < g.length; i++) g[i] = g[i]! * gs;
    qt.set(topSymmetricEigen(g, r, l, rng).vectors);
    return qt;
  }
  const omega = new Float64Array(l * c);
  rng.fillNormal(omega);
  const y = new Float64Array(r * l);
  gemmTransBAccumulate(r, l, c, w, omega, y);
  const yt = new Float64Array(l * r);
  transposeInto(y, r, l, yt);
  lqInPlace(yt, l, r, l, qt);
  return qt;
}
