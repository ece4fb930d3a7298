/**
 * Helpers shared by the linear-algebra tests (not exported from the package index).
 */
import { Matrix } from '../../matrix.js';
import { Rng } from '../../rng.js';

/** Naive triple-loop product a·b (reference implementation for tests). */
export function naiveMatmul(a: Matrix, b: Matrix): Matrix {
  const out = new Matrix(a.rows, b.cols);
  for (let i = 0; i < a.rows; i++) {
    for (let j = 0; j < b.cols; j++) {
      let s = 0;
      for (let k = 0; k < a.cols; k++) s += a.get(i, k) * b.get(k, j);
      out.set(i, j, s);
    }
  }
  return out;
}

/** Naive transpose (reference). */
export function naiveTranspose(a: Matrix): Matrix {
  const out = new Matrix(a.cols, a.rows);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) out.set(j, i, a.get(i, j));
  return out;
}

/** A rows×cols matrix of standard normal entries. */
export function randomMatrix(rows: number, cols: number, seed: number): Matrix {
  return new Matrix(rows, cols, new Rng(seed).fillNormal(new Float64Array(rows * cols)));
}

/** max |a − b| entrywise. */
export function maxAbsDiff(a: Matrix, b: Matrix): number {
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(a.data[i]! - b.data[i]!));
  return m;
}

/** max |qᵀq − I| (orthonormality defect of the columns of q). */
export function orthonormalityError(q: Matrix): number {
  const g = naiveMatmul(naiveTranspose(q), q);
  let m = 0;
  for (let i = 0; i < g.rows; i++) for (let j = 0; j < g.cols; j++) m = Math.max(m, Math.abs(g.get(i, j) - (i === j ? 1 : 0)));
  return m;
}

/** u·diag(s)·vᵀ (naive). */
export function reconstruct(u: Matrix, s: ArrayLike<number>, v: Matrix): Matrix {
  const us = u.clone();
  for (let i = 0; i < us.rows; i++) for (let j = 0; j < us.cols; j++) us.set(i, j, us.get(i, j) * s[j]!);
  return naiveMatmul(us, naiveTranspose(v));
}

/** Largest |entry| of a matrix. */
export function maxAbsEntry(a: Matrix): number {
  let m = 0;
  for (const x of a.data) m = Math.max(m, Math.abs(x));
  return m;
}

/**
 * A random m×n matrix with prescribed singular values `sigma` (length ≤ min(m,n)), built from random
 * orthonormal factors: returns the matrix and its exact singular values (descending, zero-padded).
 */
export function matrixWithSpectrum(m: number, n: number, sigma: readonly number[], seed: number): Matrix {
  const r = sigma.length;
  const qu = gramSchmidt(randomMatrix(m, r, seed));
  const qv = gramSchmidt(randomMatrix(n, r, seed + 1));
  return reconstruct(qu, sigma, qv);
}

/** Orthonormalises the columns of a (modified Gram–Schmidt, twice) — an independent reference. */
export function gramSchmidt(a: Matrix): Matrix {
  const q = a.clone();
  for (let pass = 0; pass < 2; pass++) {
    for (let j = 0; j < q.cols; j++) {
      for (let p = 0; p < j; p++) {
        let d = 0;
        for (let i = 0; i < q.rows; i++) d += q.get(i, p) * q.get(i, j);
        for (let i = 0; i < q.rows; i++) q.set(i, j, q.get(i, j) - d * q.get(i, p));
      }
      let nrm = 0;
      for (let i = 0; i < q.rows; i++) nrm += q.get(i, j) ** 2;
      nrm = Math.sqrt(nrm);
      for (let i = 0; i < q.rows; i++) q.set(i, j, q.get(i, j) / nrm);
    }
  }
  return q;
}

/** Cosines of the principal angles between the column spaces of orthonormal u1 and u2 (singular values of u1ᵀu2), via power-free Jacobi on a small matrix. */
export function principalAngleCosines(u1: Matrix, u2: Matrix): number[] {
  const c = naiveMatmul(naiveTranspose(u1), u2);
  // Eigenvalues of cᵀc by cyclic Jacobi (independent of the library's own eigen solver).
  const k = c.cols;
  const g = naiveMatmul(naiveTranspose(c), c);
  const a = g.toArray();
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < k; p++) for (let q = p + 1; q < k; q++) off += a[p]![q]! ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < k; p++) {
      for (let q = p + 1; q < k; q++) {
        if (Math.abs(a[p]![q]!) < 1e-300) continue;
        const theta = (a[q]![q]! - a[p]![p]!) / (2 * a[p]![q]!);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const cs = 1 / Math.sqrt(t * t + 1);
        const sn = t * cs;
        for (let r = 0; r < k; r++) {
          const arp = a[r]![p]!, arq = a[r]![q]!;
          a[r]![p] = cs * arp - sn * arq;
          a[r]![q] = sn * arp + cs * arq;
        }
        for (let r = 0; r < k; r++) {
          const apr = a[p]![r]!, aqr = a[q]![r]!;
          a[p]![r] = cs * apr - sn * aqr;
          a[q]![r] = sn * apr + cs * aqr;
        }
      }
    }
  }
  return a.map((row, i) => Math.sqrt(Math.max(0, row[i]!))).sort((x, y) => y - x);
}
