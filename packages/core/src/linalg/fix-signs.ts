/**
 * Deterministic sign convention for singular and eigen vectors.
 */
import { ShapeMismatchError } from '../errors.js';
import type { Matrix } from '../matrix.js';
import { checkMatrix } from './checks.js';

/**
 * Makes signs deterministic, IN PLACE: each column of `u` is flipped, when needed, so that its
 * largest-magnitude entry is positive (on ties, the entry with the lowest row index decides); the same
 * column of `v` (when given) is flipped with it, which keeps u·diag(s)·vᵀ unchanged. {@link svd},
 * {@link topKSvd} and {@link symmetricEigen} all apply this convention.
 * @returns the same `u` and `v`, for chaining
 * @throws ShapeMismatchError when `v` has a different number of columns than `u`
 */
export function fixSigns(u: Matrix, v?: Matrix): { u: Matrix; v: Matrix | undefined } {
  checkMatrix('fixSigns argument u', u);
  if (v !== undefined) {
    checkMatrix('fixSigns argument v', v);
    if (v.cols !== u.cols) throw new ShapeMismatchError('fixSigns: v must have as many columns as u', [v.rows, u.cols], v.shape, { u: u.shape });
  }
  fixSignsRaw(u.data, u.rows, u.cols, v?.data, v?.rows ?? 0);
  return { u, v };
}

/** {@link fixSigns} on raw row-major arrays (internal). */
export function fixSignsRaw(u: Float64Array, m: number, k: number, v: Float64Array | undefined, n: number): void {
  for (let j = 0; j < k; j++) {
    let best = -1;
    let bestIdx = 0;
    for (let i = 0; i < m; i++) {
      const x = Math.abs(u[i * k + j]!);
      if (x > best) {
        best = x;
        bestIdx = i;
      }
    }
    if (m === 0 || u[bestIdx * k + j]! >= 0) continue;
    for (let i = 0; i < m; i++) u[i * k + j] = -u[i * k + j]!;
    if (v) for (let i = 0; i < n; i++) v[i * k + j] = -v[i * k + j]!;
  }
}
