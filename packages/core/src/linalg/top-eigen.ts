/**
 * Leading eigenpairs of a symmetric matrix without forming all eigenvectors (internal): Householder
 * tridiagonalisation on the lower triangle, eigenvalues of the tridiagonal by implicit QL, eigenvectors of
 * the leading ones by inverse iteration (re-orthogonalised inside clusters) and back-transformation.
 * Cost ≈ 4/3·n³ + O(n²·l), against ≈ 9·n³ for the full decomposition.
 */
import { GradmaxError } from '../errors.js';
import type { Rng } from '../rng.js';
import { hypot2 } from './checks.js';
import { wasmWorkspace } from './wasm-kernels.js';

/**
 * Eigenvalues of the symmetric tridiagonal matrix with diagonal `d` and sub-diagonal `e[i] = T[i, i−1]`
 * (i ≥ 1), by implicit QL without vectors. Overwrites `d` with the (unsorted) eigenvalues; destroys `e`.
 */
export function tridiagonalEigenvalues(d: Float64Array, e: Float64Array, n: number): void {
  tridiagonalQl(d, e, n, 'eigenvalues');
}

/** Where {@link tridiagonalQl} records each sweep's plane rotations, and how it applies them (internal). */
interface QlRotations {
  /** Cosines, indexed by the rotated pair's lower index. */
  cs: Float64Array;
  /** Sines, indexed likewise. */
  ss: Float64Array;
  /** Applies the recorded rotations of pairs lo..hi−1 to the eigenvector rows. */
  rotate: (lo: number, hi: number) => void;
}

/**
 * Implicit QL with Wilkinson-style shifts on the tridiagonal (d, e[i] = T[i, i−1]) (internal): overwrites `d`
 * with the unsorted eigenvalues and destroys `e`. With `rotations`, each sweep's plane rotations are recorded
 * and handed to `rotations.rotate` before the sweep's last update. `label` names the caller in errors.
 */
function tridiagonalQl(d: Float64Array, e: Float64Array, n: number, label: string, rotations?: QlRotations): void {
  const cs = rotations?.cs;
  const ss = rotations?.ss;
  for (let i = 1; i < n; i++) e[i - 1] = e[i]!;
  if (n > 0) e[n - 1] = 0;
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
        if (++iter > 100) throw new GradmaxError('no-convergence', `${label}: QL iteration did not converge for eigenvalue ${l} of ${n}`, { n, index: l });
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
          if (cs) {
            cs[i] = c;
            ss![i] = s;
          }
        }
        rotations?.rotate(l, m);
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
 * Builds the reflector of row i (internal): on return a[i, 0..i) holds v (last entry 1), `e[i]` = T[i, i−1]
 * and the returned value is τ (0 when no reflection is needed).
 */
function rowReflector(a: Float64Array, n: number, i: number, e: Float64Array): number {
  const ri = i * n;
  const alpha = a[ri + i - 1]!;
  let sq = 0;
  for (let j = 0; j < i - 1; j++) sq += a[ri + j]! * a[ri + j]!;
  if (sq === 0) {
    e[i] = alpha;
    return 0;
  }
  let beta = Math.sqrt(alpha * alpha + sq);
  if (alpha > 0) beta = -beta;
  const denom = alpha - beta;
  let vv = 1;
  for (let j = 0; j < i - 1; j++) {
    const x = a[ri + j]! / denom;
    a[ri + j] = x;
    vv += x * x;
  }
  a[ri + i - 1] = 1;
  e[i] = beta;
  return 2 / vv; // = (β − α)/β in exact arithmetic; keeps the reflector orthogonal in any case
}

/**
 * Householder reduction of the symmetric n×n matrix `a` (only its lower triangle is read) to tridiagonal
 * form T = Pᵀ·A·P. Writes diag(T) to `d`, T[i, i−1] to `e[i]`, and keeps reflector i (length i, last entry
 * 1) in a[i, 0..i) with coefficient `tau[i]`. Single pass per step: the rank-2 update of step i is fused with
 * the symmetric product A·v of step i − 1, so the lower triangle is streamed once per step. The O(n²) inner
 * work runs in the WebAssembly SIMD kernel when available.
 */
export function tridiagonalize(a: Float64Array, n: number, d: Float64Array, e: Float64Array, tau: Float64Array): void {
  if (n === 0) return;
  const nn = n * n;
  const ws = n >= 16 ? wasmWorkspace(nn + 3 * n) : undefined;
  if (ws) {
    // Layout in WebAssembly memory: [matrix n² | w n | p n | zeros n].
    const { heap, kernels } = ws;
    heap.set(a.subarray(0, nn), 0);
    heap.fill(0, nn, nn + 3 * n);
    const mat = heap.subarray(0, nn);
    const w = heap.subarray(nn, nn + n);
    const p = heap.subarray(nn + n, nn + 2 * n);
    const W = nn * 8, P = (nn + n) * 8, Z = (nn + 2 * n) * 8;
    tridiagonalizeWith(mat, n, d, e, tau, w, p, {
      product(i) {
        p.fill(0, 0, i);
        kernels.trid(0, n, i + 1, Z, i * n * 8, Z, P);
      },
      fused(i) {
        p.fill(0, 0, i - 1);
        kernels.trid(0, n, i, i * n * 8, (i - 1) * n * 8, W, P);
      },
    });
    a.set(mat);
    return;
  }
  const w = new Float64Array(n);
  const p = new Float64Array(n);
  tridiagonalizeWith(a, n, d, e, tau, w, p, {
    product(i) {
      symmetricProduct(a, n, i, a.subarray(i * n, i * n + i), p);
    },
    fused(i) {
      fusedUpdate(a, n, i, w, p);
    },
  });
}

/** The two O(n²) kernels of one tridiagonalisation step. */
interface TridiagonalKernels {
  /** p[0..i) = A·v with v = a[i, 0..i) over the leading i×i block. */
  product(i: number): void;
  /** Rank-2 update of rows 0..i−2 with (v = a[i, ·], w) fused with p = A'·a[i−1, ·]. */
  fused(i: number): void;
}

function tridiagonalizeWith(a: Float64Array, n: number, d: Float64Array, e: Float64Array, tau: Float64Array, w: Float64Array, p: Float64Array, k: TridiagonalKernels): void {
  let i = n - 1;
  if (i >= 1) {
    d[i] = a[i * n + i]!;
    tau[i] = rowReflector(a, n, i, e);
    if (tau[i] !== 0) k.product(i);
  }
  for (; i >= 1; i--) {
    const ri = i * n;
    const t = tau[i]!;
    const hasNext = i - 1 >= 1;
    if (t === 0) {
      // No update of the leading block; the next step needs its own product.
      if (hasNext) {
        d[i - 1] = a[(i - 1) * n + i - 1]!;
        tau[i - 1] = rowReflector(a, n, i - 1, e);
        if (tau[i - 1] !== 0) k.product(i - 1);
      }
      continue;
    }
    // w = t·A·v − (t²/2)(vᵀA v)·v, with p = A·v computed in the previous step.
    let pv = 0;
    for (let r = 0; r < i; r++) {
      w[r] = p[r]! * t;
      pv += w[r]! * a[ri + r]!;
    }
    const kk = 0.5 * t * pv;
    for (let r = 0; r < i; r++) w[r] = w[r]! - kk * a[ri + r]!;
    if (!hasNext) {
      // Last update: the 1×1 leading block.
      a[0] = a[0]! - 2 * a[ri]! * w[0]!;
      continue;
    }
    // Update row i−1 of the leading block, then build the next reflector from it.
    const rn = (i - 1) * n;
    const vi = a[ri + i - 1]!;
    const wi = w[i - 1]!;
    for (let c = 0; c <= i - 1; c++) a[rn + c] = a[rn + c]! - (vi * w[c]! + wi * a[ri + c]!);
    d[i - 1] = a[rn + i - 1]!;
    tau[i - 1] = rowReflector(a, n, i - 1, e);
    // Rows 0..i−2: update with (v, w) and accumulate p = A'·v' for the next step.
    k.fused(i);
  }
  d[0] = a[0]!;
}

/** TypeScript version of the fused step (see {@link TridiagonalKernels.fused}). */
function fusedUpdate(a: Float64Array, n: number, i: number, w: Float64Array, p: Float64Array): void {
  const ri = i * n;
  const rn = (i - 1) * n;
  p.fill(0, 0, i - 1);
  for (let r = 0; r < i - 1; r++) {
    const rr = r * n;
    const vr = a[ri + r]!;
    const wr = w[r]!;
    const vnr = a[rn + r]!;
    let s = 0;
    for (let c = 0; c < r; c++) {
      const x = a[rr + c]! - (vr * w[c]! + wr * a[ri + c]!);
      a[rr + c] = x;
      s += x * a[rn + c]!;
      p[c] = p[c]! + x * vnr;
    }
    const diag = a[rr + r]! - 2 * vr * wr;
    a[rr + r] = diag;
    p[r] = p[r]! + s + diag * vnr;
  }
}

/** p[0..i) = A·v over the leading i×i block (lower triangle stored, row-wise fused symmetric product). */
function symmetricProduct(a: Float64Array, n: number, i: number, v: Float64Array, p: Float64Array): void {
  p.fill(0, 0, i);
  for (let r = 0; r < i; r++) {
    const rr = r * n;
    const vr = v[r]!;
    let s = 0;
    for (let c = 0; c < r; c++) {
      const x = a[rr + c]!;
      s += x * v[c]!;
      p[c] = p[c]! + x * vr;
    }
    p[r] = p[r]! + s + a[rr + r]! * vr;
  }
}

/**
 * Solves (T − λI)·x = b in place for the symmetric tridiagonal T (diagonal `d`, `off[i] = T[i, i+1]`), by
 * Gaussian elimination with partial pivoting; zero pivots are replaced by `tiny` (inverse iteration).
 */
function shiftedSolve(d: Float64Array, off: Float64Array, n: number, lambda: number, tiny: number, x: Float64Array, u0: Float64Array, u1: Float64Array, u2: Float64Array, mult: Float64Array, swap: Uint8Array): void {
  // Factor.
  let p0 = d[0]! - lambda;
  let p1 = n > 1 ? off[0]! : 0;
  for (let i = 0; i < n - 1; i++) {
    const sub = off[i]!;
    const di = d[i + 1]! - lambda;
    const next = i + 1 < n - 1 ? off[i + 1]! : 0;
    if (Math.abs(p0) >= Math.abs(sub)) {
      if (p0 === 0) p0 = tiny;
      const m = sub / p0;
      u0[i] = p0; u1[i] = p1; u2[i] = 0; mult[i] = m; swap[i] = 0;
      p0 = di - m * p1;
      p1 = next;
    } else {
      const m = p0 / sub;
      u0[i] = sub; u1[i] = di; u2[i] = next; mult[i] = m; swap[i] = 1;
      p0 = p1 - m * di;
      p1 = -m * next;
    }
  }
  if (p0 === 0) p0 = tiny;
  u0[n - 1] = p0;
  // Forward elimination on x.
  for (let i = 0; i < n - 1; i++) {
    if (swap[i]) {
      const xi = x[i]!;
      x[i] = x[i + 1]!;
      x[i + 1] = xi - mult[i]! * x[i]!;
    } else {
      x[i + 1] = x[i + 1]! - mult[i]! * x[i]!;
    }
  }
  // Back substitution.
  x[n - 1] = x[n - 1]! / u0[n - 1]!;
  if (n > 1) x[n - 2] = (x[n - 2]! - u1[n - 2]! * x[n - 1]!) / u0[n - 2]!;
  for (let i = n - 3; i >= 0; i--) x[i] = (x[i]! - u1[i]! * x[i + 1]! - u2[i]! * x[i + 2]!) / u0[i]!;
}

/**
 * The `l` largest eigenvalues (descending) of the symmetric n×n matrix `a` (lower triangle read; destroyed)
 * and their eigenvectors as the rows of an l×n array. `rng` seeds the inverse-iteration start vectors.
 */
export function topSymmetricEigen(a: Float64Array, n: number, l: number, rng: Rng): { values: Float64Array; vectors: Float64Array } {
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  const tau = new Float64Array(n);
  tridiagonalize(a, n, d, e, tau);
  const off = new Float64Array(Math.max(n - 1, 0));
  for (let i = 1; i < n; i++) off[i - 1] = e[i]!;
  const lam = d.slice();
  tridiagonalEigenvalues(lam, e, n);
  const sorted = Array.from(lam).sort((x, y) => y - x);
  const values = Float64Array.from(sorted.slice(0, l));
  let norm = 0;
  for (let i = 0; i < n; i++) norm = Math.max(norm, Math.abs(d[i]!) + (i > 0 ? Math.abs(off[i - 1]!) : 0) + (i < n - 1 ? Math.abs(off[i]!) : 0));
  const eps = Number.EPSILON;
  const tiny = Math.max(eps * norm, Number.MIN_VALUE);
  const u0 = new Float64Array(n), u1 = new Float64Array(n), u2 = new Float64Array(n), mult = new Float64Array(n);
  const swap = new Uint8Array(n);
  const y = new Float64Array(l * n);
  let clusterStart = 0;
  let shift = 0;
  if (norm === 0) {
    // The zero matrix: any orthonormal set is an eigenbasis; use the first unit vectors.
    for (let j = 0; j < l; j++) y[j * n + j] = 1;
    return { values, vectors: y };
  }
  for (let j = 0; j < l; j++) {
    let lambda = values[j]!;
    if (j > 0 && values[j - 1]! - lambda > 1e-3 * norm) clusterStart = j;
    // Separate (nearly) equal shifts so that inverse iteration converges to distinct vectors.
    if (j > 0 && shift - lambda < 10 * eps * Math.max(norm, Math.abs(lambda))) lambda = shift - 10 * eps * Math.max(norm, Math.abs(lambda));
    shift = lambda;
    const x = y.subarray(j * n, (j + 1) * n);
    for (let i = 0; i < n; i++) x[i] = rng.normal();
    for (let it = 0; it < 4; it++) {
      shiftedSolve(d, off, n, lambda, tiny, x, u0, u1, u2, mult, swap);
      for (let pass = 0; pass < 2; pass++) {
        for (let q = clusterStart; q < j; q++) {
          const yq = q * n;
          let dot = 0;
          for (let i = 0; i < n; i++) dot += y[yq + i]! * x[i]!;
          for (let i = 0; i < n; i++) x[i] = x[i]! - dot * y[yq + i]!;
        }
      }
      let nrm = 0;
      let big = 0;
      for (let i = 0; i < n; i++) big = Math.max(big, Math.abs(x[i]!));
      if (big === 0) {
        for (let i = 0; i < n; i++) x[i] = rng.normal();
        continue;
      }
      for (let i = 0; i < n; i++) {
        x[i] = x[i]! / big;
        nrm += x[i]! * x[i]!;
      }
      const inv = 1 / Math.sqrt(nrm);
      for (let i = 0; i < n; i++) x[i] = x[i]! * inv;
    }
  }
  backTransform(a, n, tau, y, l);
  return { values, vectors: y };
}

/**
 * Back-transformation (internal): replaces each of the l rows y_j (length n) of `y` by P·y_j with
 * P = H_{n−1}···H_1 the reflectors left in `a` by {@link tridiagonalize} (H_1 applied first).
 */
export function backTransform(a: Float64Array, n: number, tau: Float64Array, y: Float64Array, l: number): void {
  const ws = n >= 16 ? wasmWorkspace(n * n + l * n) : undefined;
  if (ws) {
    const { heap, kernels } = ws;
    heap.set(a.subarray(0, n * n), 0);
    heap.set(y.subarray(0, l * n), n * n);
    for (let i = 1; i < n; i++) if (tau[i] !== 0) kernels.refl(i * n * 8, i, tau[i]!, n * n * 8, n * 8, l);
    y.set(heap.subarray(n * n, n * n + l * n));
    return;
  }
  for (let i = 1; i < n; i++) {
    const t = tau[i]!;
    if (t === 0) continue;
    const ri = i * n;
    for (let j = 0; j < l; j++) {
      const yj = j * n;
      let dot = 0;
      for (let c = 0; c < i; c++) dot += a[ri + c]! * y[yj + c]!;
      dot *= t;
      if (dot === 0) continue;
      for (let c = 0; c < i; c++) y[yj + c] = y[yj + c]! - dot * a[ri + c]!;
    }
  }
}

/**
 * Implicit QL with Wilkinson-style shifts on the tridiagonal (d, e[i] = T[i, i−1]), accumulating the plane
 * rotations into the rows of the n×n `z` (row i ends up as the eigenvector of d[i] when z starts as the
 * identity). Each sweep's rotations are collected first and then applied in one pass (SIMD when available).
 * Overwrites `d` with the unsorted eigenvalues; destroys `e`.
 */
export function tridiagonalEigenpairs(d: Float64Array, e: Float64Array, n: number, z: Float64Array): void {
  const ws = n >= 16 ? wasmWorkspace(n * n + 2 * n) : undefined;
  let cs: Float64Array;
  let ss: Float64Array;
  let rotate: (lo: number, hi: number) => void;
  let rows = z;
  if (ws) {
    const { heap, kernels } = ws;
    heap.set(z.subarray(0, n * n), 0);
    rows = heap.subarray(0, n * n);
    cs = heap.subarray(n * n, n * n + n);
    ss = heap.subarray(n * n + n, n * n + 2 * n);
    rotate = (lo, hi) => kernels.rotseq(0, n * 8, n, lo, hi, n * n * 8, (n * n + n) * 8);
  } else {
    cs = new Float64Array(n);
    ss = new Float64Array(n);
    rotate = (lo, hi) => {
      for (let i = hi - 1; i >= lo; i--) {
        const c = cs[i]!;
        const s = ss[i]!;
        const r0 = i * n;
        const r1 = r0 + n;
        for (let k = 0; k < n; k++) {
          const x = z[r1 + k]!;
          const y = z[r0 + k]!;
          z[r1 + k] = s * y + c * x;
          z[r0 + k] = c * y - s * x;
        }
      }
    };
  }
  tridiagonalQl(d, e, n, 'symmetricEigen', { cs, ss, rotate });
  if (rows !== z) z.set(rows);
}

/**
 * Full eigendecomposition of the symmetric n×n `a` (lower triangle read; destroyed): returns the unsorted
 * eigenvalues and the eigenvectors as the rows of an n×n array (internal).
 */
export function symmetricEigenRows(a: Float64Array, n: number): { values: Float64Array; rows: Float64Array } {
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  const tau = new Float64Array(n);
  tridiagonalize(a, n, d, e, tau);
  const z = new Float64Array(n * n);
  for (let i = 0; i < n; i++) z[i * n + i] = 1;
  tridiagonalEigenpairs(d, e, n, z);
  backTransform(a, n, tau, z, n);
  return { values: d, rows: z };
}
