/**
 * Matrix norms: Frobenius, per column and per row (all overflow/underflow safe).
 */
import type { Matrix } from '../matrix.js';
import { checkMatrix, safeNorm } from './checks.js';

/** The Frobenius norm √(Σ aᵢⱼ²), computed without overflow or underflow at extreme scales. */
export function frobeniusNorm(a: Matrix): number {
  checkMatrix('frobeniusNorm argument a', a);
  return safeNorm(a.data, 0, a.data.length);
}

/** The Euclidean norm of each column of `a` (length `a.cols`). */
export function columnNorms(a: Matrix): Float64Array {
  checkMatrix('columnNorms argument a', a);
  const out = new Float64Array(a.cols);
  for (let j = 0; j < a.cols; j++) out[j] = safeNorm(a.data, j, a.rows, a.cols);
  return out;
}

/** The Euclidean norm of each row of `a` (length `a.rows`). */
export function rowNorms(a: Matrix): Float64Array {
  checkMatrix('rowNorms argument a', a);
  const out = new Float64Array(a.rows);
  for (let i = 0; i < a.rows; i++) out[i] = safeNorm(a.data, i * a.cols, a.cols);
  return out;
}
