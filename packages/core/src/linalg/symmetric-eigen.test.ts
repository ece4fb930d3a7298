import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, Matrix, ShapeMismatchError } from '../index.js';
import { symmetricEigen } from './index.js';
import { setWasmKernelsEnabled } from './wasm-kernels.js';
import { maxAbsDiff, naiveMatmul, naiveTranspose, orthonormalityError, randomMatrix } from './__tests__/helpers.js';

function randomSymmetric(n: number, seed: number): Matrix {
  const b = randomMatrix(n, n, seed);
  return new Matrix(n, n, naiveMatmul(b, naiveTranspose(b)).data.map((x, i) => x - (i % (n + 1) === 0 ? n : 0)));
}

describe('symmetricEigen', () => {
  for (const [n, wasm] of [[1, true], [2, true], [3, true], [10, true], [41, true], [130, true], [41, false], [130, false]] as const) {
    it(`decomposes a random symmetric ${n}×${n} matrix (${wasm ? 'WebAssembly' : 'TypeScript'} kernels)`, () => {
      const a = randomSymmetric(n, n);
      const previous = setWasmKernelsEnabled(wasm);
      let result;
      try {
        result = symmetricEigen(a);
      } finally {
        setWasmKernelsEnabled(previous);
      }
      const { values, vectors } = result;
      expect(orthonormalityError(vectors)).toBeLessThan(1e-13);
      for (let i = 1; i < n; i++) expect(values[i]!).toBeLessThanOrEqual(values[i - 1]!);
      const av = naiveMatmul(a, vectors);
      const scale = Math.max(...Array.from(values, Math.abs));
      for (let j = 0; j < n; j++) for (let i = 0; i < n; i++) expect(Math.abs(av.get(i, j) - values[j]! * vectors.get(i, j))).toBeLessThan(1e-12 * scale);
    });
  }

  it('handles repeated eigenvalues, diagonal and zero matrices', () => {
    const diag = Matrix.fromArray([[2, 0, 0], [0, 5, 0], [0, 0, 2]]);
    const r = symmetricEigen(diag);
    expect(Array.from(r.values)).toEqual([5, 2, 2]);
    expect(orthonormalityError(r.vectors)).toBeLessThan(1e-15);
    const z = symmetricEigen(new Matrix(4, 4));
    expect(Array.from(z.values)).toEqual([0, 0, 0, 0]);
    expect(maxAbsDiff(z.vectors, Matrix.identity(4))).toBe(0);
  });

  it('is accurate at extreme scales', () => {
    const a = randomSymmetric(6, 2);
    const ref = symmetricEigen(a);
    for (const s of [1e-150, 1e150]) {
      const r = symmetricEigen(new Matrix(6, 6, a.data.map((x) => x * s)));
      for (let i = 0; i < 6; i++) expect(Math.abs(r.values[i]! / s - ref.values[i]!)).toBeLessThan(1e-13 * Math.abs(ref.values[0]!));
      expect(maxAbsDiff(r.vectors, ref.vectors)).toBeLessThan(1e-12);
    }
  });

  it('rejects non-symmetric and non-square input', () => {
    expect(() => symmetricEigen(Matrix.fromArray([[1, 2], [3, 4]]))).toThrow(InvalidArgumentError);
    expect(() => symmetricEigen(new Matrix(2, 3))).toThrow(ShapeMismatchError);
  });
});
