import { describe, expect, it } from 'vitest';
import { Matrix, NonFiniteError, ShapeMismatchError } from '../index.js';
import { columnNorms, frobeniusNorm, matmul, matmulTransA, matmulTransB, rowNorms, transpose } from './index.js';
import { maxAbsDiff, naiveMatmul, naiveTranspose, randomMatrix } from './__tests__/helpers.js';
import { setWasmKernelsEnabled, wasmKernelsAvailable } from './wasm-kernels.js';

const shapes: [number, number, number][] = [
  [1, 1, 1], [3, 5, 2], [7, 13, 11], [2, 300, 9], [33, 129, 517], [130, 7, 600], [5, 1030, 3], [0, 4, 3], [4, 0, 3],
  [35, 301, 35], [64, 257, 64], [130, 129, 131],
];

describe('matmul family', () => {
  it('uses the embedded WebAssembly kernels on this runtime (Node ≥ 16 has WebAssembly SIMD)', () => {
    expect(wasmKernelsAvailable()).toBe(true);
  });

  for (const [m, p, n] of shapes) {
    it(`matches the naive product for ${m}×${p} · ${p}×${n} (WebAssembly and TypeScript kernels)`, () => {
      const a = randomMatrix(m, p, m + 7 * p);
      const b = randomMatrix(p, n, n + 13 * p);
      const ref = naiveMatmul(a, b);
      const tol = 1e-12 * Math.max(1, p);
      for (const wasm of [true, false]) {
        const previous = setWasmKernelsEnabled(wasm);
        try {
          expect(maxAbsDiff(matmul(a, b), ref)).toBeLessThan(tol);
          expect(maxAbsDiff(matmulTransA(naiveTranspose(a), b), ref)).toBeLessThan(tol);
          expect(maxAbsDiff(matmulTransB(a, naiveTranspose(b)), ref)).toBeLessThan(tol);
          if (m === n && m > 0) {
            const g = matmulTransB(a, a);
            expect(maxAbsDiff(g, naiveMatmul(a, naiveTranspose(a)))).toBeLessThan(tol);
          }
        } finally {
          setWasmKernelsEnabled(previous);
        }
      }
    });
  }

  it('computes an exactly symmetric Gram matrix when both arguments are the same object', () => {
    for (const wasm of [true, false]) {
      const previous = setWasmKernelsEnabled(wasm);
      try {
        for (const [m, p] of [[1, 3], [7, 40], [65, 1100], [131, 257]] as const) {
          const a = randomMatrix(m, p, m);
          const g = matmulTransB(a, a);
          expect(maxAbsDiff(g, naiveMatmul(a, naiveTranspose(a)))).toBeLessThan(1e-12 * p);
          for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) expect(g.get(i, j)).toBe(g.get(j, i));
        }
      } finally {
        setWasmKernelsEnabled(previous);
      }
    }
  });

  it('accumulates into a supplied matrix (M += Gᵀ·H)', () => {
    const g = randomMatrix(16, 5, 1);
    const h = randomMatrix(16, 9, 2);
    const acc = randomMatrix(5, 9, 3);
    const expected = naiveMatmul(naiveTranspose(g), h);
    for (let i = 0; i < expected.data.length; i++) expected.data[i] = expected.data[i]! + acc.data[i]!;
    const out = matmulTransA(g, h, acc);
    expect(out).toBe(acc);
    expect(maxAbsDiff(out, expected)).toBeLessThan(1e-12);
    expect(() => matmulTransA(g, h, new Matrix(9, 5))).toThrow(ShapeMismatchError);
  });

  it('names both shapes on mismatch', () => {
    const a = new Matrix(2, 3);
    const b = new Matrix(4, 5);
    expect(() => matmul(a, b)).toThrow(ShapeMismatchError);
    expect(() => matmul(a, b)).toThrow(/2×3.*4×5/);
    expect(() => matmulTransA(a, b)).toThrow(/2×3.*4×5/);
    expect(() => matmulTransB(a, b)).toThrow(/2×3.*4×5/);
  });

  it('rejects non-finite input naming the argument', () => {
    const a = randomMatrix(2, 2, 1);
    const b = randomMatrix(2, 2, 2);
    b.set(0, 1, Number.POSITIVE_INFINITY);
    expect(() => matmul(a, b)).toThrow(NonFiniteError);
    expect(() => matmul(a, b)).toThrow(/matmul argument b/);
  });

  it('transposes', () => {
    const a = randomMatrix(37, 70, 5);
    expect(transpose(a).toArray()).toEqual(naiveTranspose(a).toArray());
  });

  it('computes norms, also at extreme scales', () => {
    const a = Matrix.fromArray([[3, 4], [0, 12]]);
    expect(frobeniusNorm(a)).toBeCloseTo(13, 14);
    expect(Array.from(rowNorms(a))).toEqual([5, 12]);
    expect(Array.from(columnNorms(a))).toEqual([3, Math.sqrt(16 + 144)]);
    for (const s of [1e-170, 1e170]) {
      const b = new Matrix(2, 2, a.data.map((x) => x * s));
      expect(frobeniusNorm(b) / s).toBeCloseTo(13, 12);
      expect(rowNorms(b)[1]! / s).toBeCloseTo(12, 12);
      expect(columnNorms(b)[0]! / s).toBeCloseTo(3, 12);
    }
  });
});
