import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, Matrix, NonFiniteError } from '../index.js';
import { svd, topKSvd } from './index.js';
import { matrixWithSpectrum, maxAbsDiff, orthonormalityError, principalAngleCosines, randomMatrix } from './__tests__/helpers.js';

function columns(a: Matrix, k: number): Matrix {
  const out = new Matrix(a.rows, k);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < k; j++) out.set(i, j, a.get(i, j));
  return out;
}

describe('topKSvd', () => {
  for (const [m, n, k] of [[40, 300, 5], [300, 40, 5], [64, 576, 4], [30, 30, 3], [25, 60, 20]] as const) {
    it(`agrees with the full svd on a random ${m}×${n} matrix (k=${k})`, () => {
      const a = randomMatrix(m, n, m + n + k);
      const full = svd(a);
      const r = topKSvd(a, k);
      expect(r.converged).toBe(true);
      expect(r.residual).toBeLessThanOrEqual(1e-10);
      expect(r.rank).toBe(k);
      expect(r.u.shape).toEqual([m, k]);
      expect(r.v.shape).toEqual([n, k]);
      for (let i = 0; i < k; i++) expect(Math.abs(r.s[i]! - full.s[i]!) / full.s[i]!).toBeLessThan(1e-10);
      expect(orthonormalityError(r.u)).toBeLessThan(1e-12);
      expect(orthonormalityError(r.v)).toBeLessThan(1e-12);
      const cu = principalAngleCosines(r.u, columns(full.u, k));
      const cv = principalAngleCosines(r.v, columns(full.v, k));
      for (const c of [...cu, ...cv]) expect(1 - c).toBeLessThan(1e-9);
      // Same sign convention as svd: vectors agree entrywise when σ are well separated.
      expect(maxAbsDiff(r.u, columns(full.u, k))).toBeLessThan(1e-6);
    });
  }

  it('handles the zero matrix: rank 0, s = 0, orthonormal u and v', () => {
    const r = topKSvd(new Matrix(12, 30), 4);
    expect(r.rank).toBe(0);
    expect(Array.from(r.s)).toEqual([0, 0, 0, 0]);
    expect(r.converged).toBe(true);
    expect(orthonormalityError(r.u)).toBeLessThan(1e-14);
    expect(orthonormalityError(r.v)).toBeLessThan(1e-14);
  });

  it('estimates the rank when k exceeds it', () => {
    const a = matrixWithSpectrum(50, 80, [10, 4, 2], 3);
    const r = topKSvd(a, 6);
    expect(r.rank).toBe(3);
    expect(r.converged).toBe(true);
    expect(orthonormalityError(r.u)).toBeLessThan(1e-12);
    expect(orthonormalityError(r.v)).toBeLessThan(1e-12);
    expect(r.s[0]).toBeCloseTo(10, 12);
    expect(r.s[2]).toBeCloseTo(2, 12);
    for (let i = 3; i < 6; i++) expect(r.s[i]!).toBeLessThan(1e-13);
  });

  it('is deterministic under a seed', () => {
    const a = randomMatrix(20, 90, 1);
    const r1 = topKSvd(a, 3, { seed: 5 });
    const r2 = topKSvd(a, 3, { seed: 5 });
    expect(Array.from(r1.u.data)).toEqual(Array.from(r2.u.data));
    expect(Array.from(r1.s)).toEqual(Array.from(r2.s));
  });

  it('validates k and options', () => {
    const a = randomMatrix(5, 8, 1);
    for (const k of [0, 6, 2.5, Number.NaN]) expect(() => topKSvd(a, k)).toThrow(InvalidArgumentError);
    expect(() => topKSvd(a, 2, { maxIterations: 0 })).toThrow(InvalidArgumentError);
    expect(() => topKSvd(a, 2, { tolerance: -1 })).toThrow(InvalidArgumentError);
    a.set(0, 0, Number.NaN);
    expect(() => topKSvd(a, 2)).toThrow(NonFiniteError);
  });
});
