import { describe, expect, it } from 'vitest';
import { Matrix } from './matrix.js';
import { assertFinite, NonFiniteError, ShapeMismatchError, InvalidArgumentError, GradmaxError } from './errors.js';

describe('Matrix', () => {
  it('builds from arrays and Float32Array and converts back', () => {
    const m = Matrix.fromArray([[1, 2, 3], [4, 5, 6]]);
    expect(m.shape).toEqual([2, 3]);
    expect(m.get(1, 2)).toBe(6);
    expect(m.row(1)).toEqual(new Float64Array([4, 5, 6]));
    expect(m.col(0)).toEqual(new Float64Array([1, 4]));
    const f = Matrix.fromFloat32(2, 3, new Float32Array([0.1, 2, 3, 4, 5, 6]));
    expect(f.toFloat32()).toEqual(new Float32Array([0.1, 2, 3, 4, 5, 6]));
    expect(Matrix.identity(3).toArray()).toEqual([[1, 0, 0], [0, 1, 0], [0, 0, 1]]);
    const c = m.clone();
    c.set(0, 0, 9);
    expect(m.get(0, 0)).toBe(1);
  });

  it('rejects bad shapes with typed errors naming both shapes', () => {
    expect(() => new Matrix(2, 2, new Float64Array(3))).toThrow(ShapeMismatchError);
    expect(() => Matrix.fromArray([[1, 2], [3]])).toThrow(/row 1 of nested array: expected shape \[2\], got \[1\]/);
    expect(() => new Matrix(-1, 2)).toThrow(InvalidArgumentError);
  });

  it('assertFinite names the statistic and the index', () => {
    const err = (() => {
      try {
        assertFinite('growth matrix M', [1, NaN]);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(NonFiniteError);
    expect(err).toBeInstanceOf(GradmaxError);
    expect((err as NonFiniteError).message).toMatch(/growth matrix M contains a non-finite value \(NaN\) at flat index 1/);
    expect((err as NonFiniteError).code).toBe('non-finite');
  });
});
