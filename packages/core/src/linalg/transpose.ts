/**
 * Matrix transpose.
 */
import { Matrix } from '../matrix.js';
import { checkMatrix } from './checks.js';

/** Transposes `rows×cols` row-major `src` into `dst` (cols×rows), in cache-friendly tiles. */
export function transposeInto(src: Float64Array, rows: number, cols: number, dst: Float64Array): void {
  const T = 32;
  for (let ii = 0; ii < rows; ii += T) {
    const ie = Math.min(ii + T, rows);
    for (let jj = 0; jj < cols; jj += T) {
      const je = Math.min(jj + T, cols);
      for (let i = ii; i < ie; i++) {
        const base = i * cols;
        for (let j = jj; j < je; j++) dst[j * rows + i] = src[base + j]!;
      }
    }
  }
}

/**
 * The transpose aᵀ as a new matrix.
 * @throws NonFiniteError when `a` holds NaN or ±Infinity
 */
export function transpose(a: Matrix): Matrix {
  checkMatrix('transpose argument a', a);
  const out = new Matrix(a.cols, a.rows);
  transposeInto(a.data, a.rows, a.cols, out.data);
  return out;
}
