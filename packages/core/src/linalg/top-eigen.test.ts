import { describe, expect, it } from 'vitest';
import { Matrix, Rng } from '../index.js';
import { matmulTransB, symmetricEigen } from './index.js';
import { topSymmetricEigen } from './top-eigen.js';
import { setWasmKernelsEnabled } from './wasm-kernels.js';

/** max ‖G x − λ x‖ and max |xᵢ·xⱼ − δᵢⱼ| over the returned pairs. */
function check(g: Matrix, values: Float64Array, vectors: Float64Array, l: number): { residual: number; orthogonality: number } {
  const n = g.rows;
  let residual = 0;
  let orthogonality = 0;
  for (let j = 0; j < l; j++) {
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let c = 0; c < n; c++) s += g.data[i * n + c]! * vectors[j * n + c]!;
      residual = Math.max(residual, Math.abs(s - values[j]! * vectors[j * n + i]!));
    }
    for (let q = 0; q <= j; q++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += vectors[j * n + i]! * vectors[q * n + i]!;
      orthogonality = Math.max(orthogonality, Math.abs(s - (q === j ? 1 : 0)));
    }
  }
  return { residual, orthogonality };
}

describe('topSymmetricEigen (internal: tridiagonalisation + inverse iteration)', () => {
  for (const wasm of [true, false]) {
    it(`matches the full eigendecomposition (${wasm ? 'WebAssembly' : 'TypeScript'} kernels)`, () => {
      const previous = setWasmKernelsEnabled(wasm);
      try {
        for (const [n, l] of [[1, 1], [5, 2], [17, 17], [50, 10], [130, 24]] as const) {
          const b = new Matrix(n, n + 3, new Rng(n).fillNormal(new Float64Array(n * (n + 3))));
          const g = matmulTransB(b, b);
          const full = symmetricEigen(g);
          const top = topSymmetricEigen(g.data.slice(), n, l, new Rng(1));
          for (let j = 0; j < l; j++) expect(Math.abs(top.values[j]! - full.values[j]!)).toBeLessThan(1e-13 * full.values[0]!);
          const { residual, orthogonality } = check(g, top.values, top.vectors, l);
          expect(residual).toBeLessThan(1e-12 * full.values[0]!);
          expect(orthogonality).toBeLessThan(1e-12);
        }
      } finally {
        setWasmKernelsEnabled(previous);
      }
    });
  }

  it('returns orthonormal vectors for repeated eigenvalues and for the zero matrix', () => {
    const n = 30;
    const diag = new Matrix(n, n);
    for (let i = 0; i < n; i++) diag.set(i, i, i < 10 ? 2 : 1);
    const top = topSymmetricEigen(diag.data.slice(), n, 12, new Rng(1));
    expect(Array.from(top.values)).toEqual([2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1]);
    const r = check(diag, top.values, top.vectors, 12);
    expect(r.residual).toBeLessThan(1e-14);
    expect(r.orthogonality).toBeLessThan(1e-13);
    const zero = topSymmetricEigen(new Float64Array(n * n), n, 5, new Rng(2));
    expect(Array.from(zero.values)).toEqual([0, 0, 0, 0, 0]);
    expect(check(new Matrix(n, n), zero.values, zero.vectors, 5).orthogonality).toBeLessThan(1e-13);
  });
});
