import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, Matrix, Rng } from '../index.js';
import { completeOrthonormal, fixSigns, householderQr, svd } from './index.js';
import { maxAbsDiff, naiveMatmul, naiveTranspose, orthonormalityError, randomMatrix, reconstruct } from './__tests__/helpers.js';

describe('completeOrthonormal', () => {
  it('adds directions orthonormal to each other and to the basis', () => {
    const { q } = householderQr(randomMatrix(20, 6, 1));
    const extra = completeOrthonormal(q, 9, new Rng(3));
    expect(extra.shape).toEqual([20, 9]);
    expect(orthonormalityError(extra)).toBeLessThan(1e-14);
    const cross = naiveMatmul(naiveTranspose(q), extra);
    for (const x of cross.data) expect(Math.abs(x)).toBeLessThan(1e-14);
  });

  it('fills the whole space, accepts an empty basis and is seeded', () => {
    const { q } = householderQr(randomMatrix(5, 2, 2));
    expect(orthonormalityError(completeOrthonormal(q, 3, new Rng(1)))).toBeLessThan(1e-14);
    const a = completeOrthonormal(new Matrix(7, 0), 4, new Rng(9));
    const b = completeOrthonormal(new Matrix(7, 0), 4, new Rng(9));
    expect(orthonormalityError(a)).toBeLessThan(1e-14);
    expect(Array.from(a.data)).toEqual(Array.from(b.data));
    expect(Array.from(completeOrthonormal(new Matrix(7, 0), 4, new Rng(10)).data)).not.toEqual(Array.from(a.data));
  });

  it('errors when extra + r > n', () => {
    const { q } = householderQr(randomMatrix(5, 3, 2));
    expect(() => completeOrthonormal(q, 3, new Rng(1))).toThrow(InvalidArgumentError);
    expect(() => completeOrthonormal(q, -1, new Rng(1))).toThrow(InvalidArgumentError);
  });
});

describe('fixSigns', () => {
  it('makes the largest-magnitude entry of each u column positive and flips v with it', () => {
    const u = Matrix.fromArray([[0.6, -0.8], [-0.8, 0.6]]);
    const v = Matrix.fromArray([[1, 2], [3, 4], [5, 6]]);
    fixSigns(u, v);
    expect(u.toArray()).toEqual([[-0.6, 0.8], [0.8, -0.6]]);
    expect(v.toArray()).toEqual([[-1, -2], [-3, -4], [-5, -6]]);
  });

  it('breaks ties by the first index and keeps u·diag(s)·vᵀ unchanged', () => {
    const u = Matrix.fromArray([[-0.5], [0.5]]);
    fixSigns(u);
    expect(u.toArray()).toEqual([[0.5], [-0.5]]);
    const a = randomMatrix(6, 4, 5);
    const r = svd(a);
    const before = reconstruct(r.u, r.s, r.v);
    const u2 = r.u.clone();
    const v2 = r.v.clone();
    for (let i = 0; i < 6; i++) u2.set(i, 1, -u2.get(i, 1));
    for (let i = 0; i < 4; i++) v2.set(i, 1, -v2.get(i, 1));
    fixSigns(u2, v2);
    expect(maxAbsDiff(u2, r.u)).toBe(0);
    expect(maxAbsDiff(reconstruct(u2, r.s, v2), before)).toBeLessThan(1e-14);
  });
});
