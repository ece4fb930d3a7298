import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Matrix } from '../index.js';
import { householderQr, matmulTransB, svd, symmetricEigen, topKSvd } from './index.js';
import { maxAbsDiff, maxAbsEntry, naiveMatmul, orthonormalityError, reconstruct } from './__tests__/helpers.js';

/** Random matrices of random small shapes, with entries that may be exactly zero and columns that may repeat. */
const matrixOf = (maxDim: number, minDim = 1) => fc
  .record({ m: fc.integer({ min: minDim, max: maxDim }), n: fc.integer({ min: minDim, max: maxDim }), exp: fc.integer({ min: -3, max: 3 }) })
  .chain(({ m, n, exp }) =>
    fc.tuple(
      fc.array(fc.oneof(fc.double({ min: -10, max: 10, noNaN: true }), fc.constant(0)), { minLength: m * n, maxLength: m * n }),
      fc.boolean(),
    ).map(([values, duplicate]) => {
      const a = new Matrix(m, n, Float64Array.from(values, (x) => x * 10 ** exp));
      if (duplicate && n > 1) for (let i = 0; i < m; i++) a.set(i, n - 1, a.get(i, 0));
      return a;
    }),
  );
const matrixArb = matrixOf(12);

const runs = { numRuns: 150, seed: 20261126 };

describe('linear algebra invariants (property-based)', () => {
  it('QR: q orthonormal, r upper-triangular with non-negative diagonal, q·r = a', () => {
    fc.assert(
      fc.property(matrixArb, (a) => {
        const { q, r } = householderQr(a);
        const scale = Math.max(maxAbsEntry(a), 1e-300);
        expect(orthonormalityError(q)).toBeLessThan(1e-13);
        for (let i = 0; i < r.rows; i++) {
          expect(r.get(i, i)).toBeGreaterThanOrEqual(0);
          for (let j = 0; j < Math.min(i, r.cols); j++) expect(r.get(i, j)).toBe(0);
        }
        expect(maxAbsDiff(naiveMatmul(q, r), a) / scale).toBeLessThan(1e-13);
      }),
      runs,
    );
  });

  it('SVD: orthonormal factors, descending non-negative σ, exact reconstruction', () => {
    fc.assert(
      fc.property(matrixArb, (a) => {
        const { u, s, v } = svd(a);
        const scale = Math.max(maxAbsEntry(a), 1e-300);
        expect(orthonormalityError(u)).toBeLessThan(1e-13);
        expect(orthonormalityError(v)).toBeLessThan(1e-13);
        for (let i = 0; i < s.length; i++) {
          expect(s[i]!).toBeGreaterThanOrEqual(0);
          if (i > 0) expect(s[i]!).toBeLessThanOrEqual(s[i - 1]!);
        }
        expect(maxAbsDiff(reconstruct(u, s, v), a) / scale).toBeLessThan(1e-13);
      }),
      runs,
    );
  });

  it('SVD invariants also hold on larger shapes (preconditioned Jacobi path)', () => {
    fc.assert(
      fc.property(matrixOf(40, 24), (a) => {
        const { u, s, v } = svd(a);
        const scale = Math.max(maxAbsEntry(a), 1e-300);
        expect(orthonormalityError(u)).toBeLessThan(1e-13);
        expect(orthonormalityError(v)).toBeLessThan(1e-13);
        for (let i = 1; i < s.length; i++) expect(s[i]!).toBeLessThanOrEqual(s[i - 1]!);
        expect(maxAbsDiff(reconstruct(u, s, v), a) / scale).toBeLessThan(1e-13);
      }),
      { numRuns: 20, seed: 11 },
    );
  });

  it('symmetric eigen of a·aᵀ: orthonormal vectors, descending values, a·aᵀ = V·Λ·Vᵀ, values = σ²', () => {
    fc.assert(
      fc.property(matrixArb, (a) => {
        const g = matmulTransB(a, a);
        const { values, vectors } = symmetricEigen(g);
        const scale = Math.max(maxAbsEntry(g), 1e-300);
        expect(orthonormalityError(vectors)).toBeLessThan(1e-13);
        for (let i = 1; i < values.length; i++) expect(values[i]!).toBeLessThanOrEqual(values[i - 1]!);
        expect(maxAbsDiff(reconstruct(vectors, values, vectors), g) / scale).toBeLessThan(1e-13);
        const { s } = svd(a);
        for (let i = 0; i < s.length; i++) expect(Math.abs(values[i]! - s[i]! ** 2) / scale).toBeLessThan(1e-12);
      }),
      runs,
    );
  });

  it('topKSvd agrees with svd on σ and satisfies its residual bound', () => {
    fc.assert(
      fc.property(matrixArb, fc.integer({ min: 1, max: 12 }), fc.constantFrom<'gram' | 'random'>('gram', 'random'), (a, kRaw, start) => {
        const k = 1 + ((kRaw - 1) % Math.min(a.rows, a.cols));
        const r = topKSvd(a, k, { start, maxIterations: 1000 });
        const { s } = svd(a);
        expect(r.converged).toBe(true);
        expect(orthonormalityError(r.u)).toBeLessThan(1e-12);
        expect(orthonormalityError(r.v)).toBeLessThan(1e-12);
        for (let i = 0; i < k; i++) expect(Math.abs(r.s[i]! - s[i]!)).toBeLessThanOrEqual(1e-10 * s[0]! + 1e-300);
      }),
      { numRuns: 100, seed: 7 },
    );
  });
});
