import { describe, expect, it } from 'vitest';
import { Matrix } from '../index.js';
import { householderQr } from './index.js';
import { setWasmKernelsEnabled } from './wasm-kernels.js';
import { maxAbsDiff, naiveMatmul, orthonormalityError, randomMatrix } from './__tests__/helpers.js';

describe('householderQr', () => {
  for (const [m, n] of [[6, 4], [4, 6], [5, 5], [50, 3], [3, 50], [1, 1], [1, 5], [5, 1]] as const) {
    it(`factors a random ${m}×${n} matrix`, () => {
      const a = randomMatrix(m, n, 10 * m + n);
      const { q, r } = householderQr(a);
      const k = Math.min(m, n);
      expect(q.shape).toEqual([m, k]);
      expect(r.shape).toEqual([k, n]);
      expect(orthonormalityError(q)).toBeLessThan(1e-14 * Math.max(m, n));
      for (let i = 0; i < k; i++) {
        expect(r.get(i, i)).toBeGreaterThanOrEqual(0);
        for (let j = 0; j < i; j++) expect(r.get(i, j)).toBe(0);
      }
      expect(maxAbsDiff(naiveMatmul(q, r), a)).toBeLessThan(1e-14 * 10 * Math.max(m, n));
    });
  }

  for (const wasm of [true, false]) {
    it(`factors larger matrices with the ${wasm ? 'WebAssembly' : 'TypeScript'} reflector kernel`, () => {
      const previous = setWasmKernelsEnabled(wasm);
      try {
        for (const [m, n] of [[300, 41], [41, 300], [129, 129]] as const) {
          const a = randomMatrix(m, n, m * 7 + n);
          for (let i = 0; i < m; i++) a.set(i, 5, a.get(i, 1) - a.get(i, 2));
          const { q, r } = householderQr(a);
          expect(orthonormalityError(q)).toBeLessThan(1e-13);
          for (let i = 0; i < r.rows; i++) for (let j = 0; j < i; j++) expect(r.get(i, j)).toBe(0);
          expect(maxAbsDiff(naiveMatmul(q, r), a)).toBeLessThan(1e-12);
        }
      } finally {
        setWasmKernelsEnabled(previous);
      }
    });
  }

  it('gives orthonormal q for rank-deficient and zero input', () => {
    const a = randomMatrix(8, 4, 3);
    for (let i = 0; i < 8; i++) a.set(i, 2, 2 * a.get(i, 0) - a.get(i, 1));
    for (const x of [a, new Matrix(6, 3)]) {
      const { q, r } = householderQr(x);
      expect(orthonormalityError(q)).toBeLessThan(1e-14);
      expect(maxAbsDiff(naiveMatmul(q, r), x)).toBeLessThan(1e-13);
    }
  });
});
