import { describe, expect, it } from 'vitest';
import { Matrix, NonFiniteError } from '../index.js';
import { svd } from './index.js';
import { matrixWithSpectrum, maxAbsDiff, maxAbsEntry, orthonormalityError, randomMatrix, reconstruct } from './__tests__/helpers.js';

describe('svd', () => {
  for (const [m, n] of [[7, 5], [5, 7], [6, 6], [40, 12], [12, 40], [1, 4], [4, 1], [30, 30], [90, 41], [41, 90]] as const) {
    it(`reconstructs a random ${m}×${n} matrix with orthonormal factors and descending σ`, () => {
      const a = randomMatrix(m, n, m * 100 + n);
      const { u, s, v } = svd(a);
      const p = Math.min(m, n);
      expect(u.shape).toEqual([m, p]);
      expect(v.shape).toEqual([n, p]);
      expect(s.length).toBe(p);
      expect(orthonormalityError(u)).toBeLessThan(1e-13);
      expect(orthonormalityError(v)).toBeLessThan(1e-13);
      for (let i = 1; i < p; i++) expect(s[i]!).toBeLessThanOrEqual(s[i - 1]!);
      expect(maxAbsDiff(reconstruct(u, s, v), a)).toBeLessThan(1e-13 * maxAbsEntry(a) * Math.max(m, n));
    });
  }

  it('recovers prescribed singular values of a rank-deficient matrix, with orthonormal u and v', () => {
    const sigma = [5, 3, 1e-3, 1e-9];
    const a = matrixWithSpectrum(30, 20, sigma, 7);
    const { u, s, v } = svd(a);
    for (let i = 0; i < sigma.length; i++) expect(Math.abs(s[i]! - sigma[i]!)).toBeLessThan(1e-14 * 5 * 30);
    for (let i = sigma.length; i < 20; i++) expect(s[i]!).toBeLessThan(1e-13 * 5);
    expect(orthonormalityError(u)).toBeLessThan(1e-13);
    expect(orthonormalityError(v)).toBeLessThan(1e-13);
    expect(maxAbsDiff(reconstruct(u, s, v), a)).toBeLessThan(1e-13 * 5);
  });

  it('is accurate on wide-ranging spectra with the preconditioned Jacobi (≥ 24 columns), rank-deficient included', () => {
    const sigma = [3, 1, 1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12, ...new Array(20).fill(0.5)];
    sigma.sort((x, y) => y - x);
    const a = matrixWithSpectrum(70, 50, sigma, 13);
    const { u, s, v } = svd(a);
    for (let i = 0; i < sigma.length; i++) expect(Math.abs(s[i]! - sigma[i]!)).toBeLessThan(1e-14 * 3 * 10);
    for (let i = sigma.length; i < 50; i++) expect(s[i]!).toBeLessThan(1e-14 * 3 * 10);
    expect(orthonormalityError(u)).toBeLessThan(1e-13);
    expect(orthonormalityError(v)).toBeLessThan(1e-13);
    expect(maxAbsDiff(reconstruct(u, s, v), a)).toBeLessThan(1e-14 * 3 * 10);
  });

  for (const scale of [1e-150, 1e150]) {
    it(`is scale-equivariant at scale ${scale}`, () => {
      const base = randomMatrix(9, 6, 3);
      const scaled = new Matrix(9, 6, base.data.map((x) => x * scale));
      const r0 = svd(base);
      const r1 = svd(scaled);
      for (let i = 0; i < 6; i++) expect(Math.abs(r1.s[i]! / scale - r0.s[i]!)).toBeLessThan(1e-13 * r0.s[0]!);
      expect(maxAbsDiff(r1.u, r0.u)).toBeLessThan(1e-12);
      expect(maxAbsDiff(reconstruct(r1.u, r1.s, r1.v), scaled)).toBeLessThan(1e-13 * scale * maxAbsEntry(base) * 9);
    });
  }

  it('handles the zero matrix with orthonormal factors', () => {
    const { u, s, v } = svd(new Matrix(5, 3));
    expect(Array.from(s)).toEqual([0, 0, 0]);
    expect(orthonormalityError(u)).toBeLessThan(1e-14);
    expect(orthonormalityError(v)).toBeLessThan(1e-14);
  });

  it('rejects non-finite input naming the argument', () => {
    const a = randomMatrix(3, 3, 1);
    a.set(1, 2, Number.NaN);
    expect(() => svd(a)).toThrow(NonFiniteError);
    expect(() => svd(a)).toThrow(/svd argument a/);
  });
});
