import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, Matrix, NonFiniteError } from '../index.js';
import { matmul, svd, topKSvd } from './index.js';
import { setWasmKernelsEnabled } from './wasm-kernels.js';
import { matrixWithSpectrum, maxAbsDiff, orthonormalityError, principalAngleCosines, randomMatrix } from './__tests__/helpers.js';

function columns(a: Matrix, k: number): Matrix {
  const out = new Matrix(a.rows, k);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < k; j++) out.set(i, j, a.get(i, j));
  return out;
}

/** max_i ‖A vᵢ − σᵢ uᵢ‖ / σ₁ recomputed independently. */
function residual(a: Matrix, r: { u: Matrix; s: Float64Array; v: Matrix }): number {
  const av = matmul(a, r.v);
  let worst = 0;
  for (let j = 0; j < r.s.length; j++) {
    let sum = 0;
    for (let i = 0; i < a.rows; i++) sum += (av.get(i, j) - r.s[j]! * r.u.get(i, j)) ** 2;
    worst = Math.max(worst, Math.sqrt(sum));
  }
  return r.s[0]! > 0 ? worst / r.s[0]! : worst;
}

function expectAgreesWithFullSvd(a: Matrix, r: ReturnType<typeof topKSvd>, k: number, relTol = 1e-10): void {
  const full = svd(a);
  for (let i = 0; i < k; i++) expect(Math.abs(r.s[i]! - full.s[i]!) / full.s[0]!).toBeLessThan(relTol);
  expect(orthonormalityError(r.u)).toBeLessThan(1e-12);
  expect(orthonormalityError(r.v)).toBeLessThan(1e-12);
  const cosines = [...principalAngleCosines(r.u, columns(full.u, k)), ...principalAngleCosines(r.v, columns(full.v, k))];
  for (const c of cosines) expect(1 - c).toBeLessThan(1e-9);
}

describe('topKSvd', () => {
  for (const [m, n, k] of [[40, 300, 5], [300, 40, 5], [64, 576, 4], [30, 30, 3], [25, 60, 20], [60, 25, 25]] as const) {
    for (const start of ['gram', 'random'] as const) {
      it(`agrees with the full svd on a random ${m}×${n} matrix (k=${k}, ${start} start)`, () => {
        const a = randomMatrix(m, n, m + n + k);
        const r = topKSvd(a, k, { start, maxIterations: 500 });
        expect(r.converged).toBe(true);
        expect(r.residual).toBeLessThanOrEqual(1e-10);
        expect(residual(a, r)).toBeLessThanOrEqual(1e-10);
        expect(r.rank).toBe(k);
        expect(r.u.shape).toEqual([m, k]);
        expect(r.v.shape).toEqual([n, k]);
        expect(r.s.length).toBe(k);
        for (let i = 1; i < k; i++) expect(r.s[i]!).toBeLessThanOrEqual(r.s[i - 1]!);
        expectAgreesWithFullSvd(a, r, k);
        // Same sign convention as svd: vectors agree entrywise for the well-separated leading triplet.
        const full = svd(a);
        for (let i = 0; i < m; i++) expect(Math.abs(r.u.get(i, 0) - full.u.get(i, 0))).toBeLessThan(1e-8);
      });
    }
  }

  it('gives the same triplets with the TypeScript kernels as with the WebAssembly ones', () => {
    const a = randomMatrix(70, 150, 12);
    const withWasm = topKSvd(a, 6);
    const previous = setWasmKernelsEnabled(false);
    try {
      const withTs = topKSvd(a, 6);
      expect(withTs.converged).toBe(true);
      for (let i = 0; i < 6; i++) expect(Math.abs(withTs.s[i]! - withWasm.s[i]!) / withWasm.s[0]!).toBeLessThan(1e-13);
      expect(maxAbsDiff(withTs.u, withWasm.u)).toBeLessThan(1e-9);
    } finally {
      setWasmKernelsEnabled(previous);
    }
  });

  it('handles the zero matrix: rank 0, s = 0, orthonormal u and v', () => {
    for (const [m, n, k] of [[12, 30, 4], [30, 12, 12], [5, 5, 2]] as const) {
      const r = topKSvd(new Matrix(m, n), k);
      expect(r.rank).toBe(0);
      expect(Array.from(r.s)).toEqual(new Array(k).fill(0));
      expect(r.converged).toBe(true);
      expect(orthonormalityError(r.u)).toBeLessThan(1e-14);
      expect(orthonormalityError(r.v)).toBeLessThan(1e-14);
    }
  });

  for (const start of ['gram', 'random'] as const) {
    it(`estimates the rank when k is at and beyond it (${start} start)`, () => {
      const sigma = [10, 4, 2, 0.5];
      const a = matrixWithSpectrum(50, 80, sigma, 3);
      for (const k of [4, 6, 10]) {
        const r = topKSvd(a, k, { start });
        expect(r.rank).toBe(4);
        expect(r.converged).toBe(true);
        expect(residual(a, r)).toBeLessThan(1e-10);
        expect(orthonormalityError(r.u)).toBeLessThan(1e-12);
        expect(orthonormalityError(r.v)).toBeLessThan(1e-12);
        for (let i = 0; i < 4; i++) expect(Math.abs(r.s[i]! - sigma[i]!)).toBeLessThan(1e-12 * 10);
        for (let i = 4; i < k; i++) expect(r.s[i]!).toBeLessThan(1e-13 * 10);
      }
    });
  }

  it('handles repeated singular values straddling k', () => {
    const sigma = [5, 4, 3, 3, 3, 3, 2, 1];
    const a = matrixWithSpectrum(30, 50, sigma, 21);
    for (const start of ['gram', 'random'] as const) {
      const r = topKSvd(a, 4, { start, maxIterations: 200 });
      expect(r.converged).toBe(true);
      expect(residual(a, r)).toBeLessThan(1e-10);
      for (let i = 0; i < 4; i++) expect(Math.abs(r.s[i]! - sigma[i]!)).toBeLessThan(1e-12 * 5);
      expect(orthonormalityError(r.u)).toBeLessThan(1e-12);
      expect(orthonormalityError(r.v)).toBeLessThan(1e-12);
    }
  });

  it('grows the block when σ_k sits in a cluster wider than it (random start)', () => {
    const cluster = Array.from({ length: 14 }, (_, i) => 10 - 0.1 * i);
    const sigma = [...cluster, 1e-3, 1e-3, 1e-3];
    const a = matrixWithSpectrum(120, 90, sigma, 17);
    const r = topKSvd(a, 4, { start: 'random', oversample: 2, maxIterations: 40 });
    expect(r.converged).toBe(true);
    expect(r.iterations).toBeLessThanOrEqual(15);
    expect(residual(a, r)).toBeLessThan(1e-10);
    for (let i = 0; i < 4; i++) expect(Math.abs(r.s[i]! - sigma[i]!)).toBeLessThan(1e-12 * 10);
  });

  it('honours rankTolerance', () => {
    const a = matrixWithSpectrum(20, 30, [1, 1e-3, 1e-6], 9);
    expect(topKSvd(a, 3).rank).toBe(3);
    expect(topKSvd(a, 3, { rankTolerance: 1e-4 }).rank).toBe(2);
  });

  it('resolves small singular values of an ill-conditioned matrix', () => {
    const sigma = [1, 0.5, 1e-4, 1e-7, 1e-9];
    const a = matrixWithSpectrum(40, 120, sigma, 11);
    const r = topKSvd(a, 5);
    expect(r.converged).toBe(true);
    expect(residual(a, r)).toBeLessThan(1e-10);
    for (let i = 0; i < 5; i++) expect(Math.abs(r.s[i]! - sigma[i]!)).toBeLessThan(1e-12);
  });

  for (const scale of [1e-150, 1e150]) {
    it(`is accurate at scale ${scale}`, () => {
      const base = randomMatrix(30, 70, 4);
      const scaled = new Matrix(30, 70, base.data.map((x) => x * scale));
      const r0 = topKSvd(base, 5);
      const r1 = topKSvd(scaled, 5);
      expect(r1.converged).toBe(true);
      for (let i = 0; i < 5; i++) expect(Math.abs(r1.s[i]! / scale - r0.s[i]!) / r0.s[i]!).toBeLessThan(1e-12);
      expect(maxAbsDiff(r1.u, r0.u)).toBeLessThan(1e-9);
      expect(maxAbsDiff(r1.v, r0.v)).toBeLessThan(1e-9);
      expect(r1.rank).toBe(5);
    });
  }

  it('is deterministic under a seed, for both starts', () => {
    const a = randomMatrix(20, 90, 1);
    for (const start of ['gram', 'random'] as const) {
      const r1 = topKSvd(a, 3, { seed: 5, start });
      const r2 = topKSvd(a, 3, { seed: 5, start });
      expect(Array.from(r1.u.data)).toEqual(Array.from(r2.u.data));
      expect(Array.from(r1.v.data)).toEqual(Array.from(r2.v.data));
      expect(Array.from(r1.s)).toEqual(Array.from(r2.s));
      expect(r1.iterations).toBe(r2.iterations);
    }
  });

  it('reports converged: false when maxIterations is reached', () => {
    // A flat spectrum with a tiny gap after k: random-start subspace iteration cannot converge in 2 steps.
    const a = randomMatrix(60, 200, 2);
    const r = topKSvd(a, 10, { start: 'random', maxIterations: 2, oversample: 2 });
    expect(r.iterations).toBe(2);
    expect(r.converged).toBe(false);
    expect(r.residual).toBeGreaterThan(1e-10);
    expect(residual(a, r)).toBeCloseTo(r.residual, 6);
  });

  it('validates k and options', () => {
    const a = randomMatrix(5, 8, 1);
    for (const k of [0, 6, 2.5, Number.NaN, -1]) expect(() => topKSvd(a, k)).toThrow(InvalidArgumentError);
    expect(() => topKSvd(a, 6)).toThrow(/\[1, 5\]/);
    expect(() => topKSvd(a, 2, { maxIterations: 0 })).toThrow(InvalidArgumentError);
    expect(() => topKSvd(a, 2, { tolerance: -1 })).toThrow(InvalidArgumentError);
    expect(() => topKSvd(a, 2, { oversample: 1.5 })).toThrow(InvalidArgumentError);
    expect(() => topKSvd(a, 2, { seed: 0.5 })).toThrow(InvalidArgumentError);
    expect(() => topKSvd(a, 2, { rankTolerance: -1 })).toThrow(InvalidArgumentError);
    expect(() => topKSvd(a, 2, { start: 'bogus' as 'gram' })).toThrow(InvalidArgumentError);
    a.set(0, 0, Number.NaN);
    expect(() => topKSvd(a, 2)).toThrow(NonFiniteError);
    expect(() => topKSvd(a, 2)).toThrow(/topKSvd argument a/);
  });
});
