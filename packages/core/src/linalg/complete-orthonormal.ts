/**
 * Random orthonormal completion of a basis.
 */
import { InvalidArgumentError } from '../errors.js';
import { Matrix } from '../matrix.js';
import { Rng } from '../rng.js';
import { checkMatrix, safeNorm } from './checks.js';

/**
 * `extra` random unit directions (n×extra) orthonormal to each other and to the columns of `basis`
 * (n×r, assumed orthonormal; r may be 0). Directions are Gaussian draws from `rng`, projected out of the
 * span twice (classical Gram–Schmidt with re-orthogonalisation) and normalised; a draw that loses too much
 * of its length to the projection is redrawn. Used when more directions are needed than a matrix has rank.
 * @throws InvalidArgumentError when `extra` is not a non-negative integer or `extra + r > n`
 */
export function completeOrthonormal(basis: Matrix, extra: number, rng: Rng): Matrix {
  checkMatrix('completeOrthonormal argument basis', basis);
  if (!(rng instanceof Rng)) throw new InvalidArgumentError('completeOrthonormal: rng must be an Rng (e.g. createRng(seed))');
  const n = basis.rows;
  const r = basis.cols;
  if (!Number.isInteger(extra) || extra < 0) throw new InvalidArgumentError(`completeOrthonormal: extra must be a non-negative integer, got ${extra}`, { extra });
  if (extra + r > n) {
    throw new InvalidArgumentError(`completeOrthonormal: cannot add ${extra} directions to ${r} basis columns in dimension ${n} (extra + r must be ≤ n)`, { extra, r, n });
  }
  // Work with rows: existing basis columns and new directions as contiguous rows of length n.
  const rowsOf = new Float64Array((r + extra) * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < r; j++) rowsOf[j * n + i] = basis.data[i * r + j]!;
  completeRows(rowsOf, n, r, extra, rng);
  const out = new Matrix(n, extra);
  for (let j = 0; j < extra; j++) for (let i = 0; i < n; i++) out.data[i * extra + j] = rowsOf[(r + j) * n + i]!;
  return out;
}

/**
 * Fills rows r..r+extra of `rows` (each of length n) with random unit vectors orthogonal to all earlier rows
 * (internal; earlier rows must be orthonormal).
 */
export function completeRows(rows: Float64Array, n: number, r: number, extra: number, rng: Rng): void {
  for (let t = r; t < r + extra; t++) {
    const base = t * n;
    for (let attempt = 0; ; attempt++) {
      for (let i = 0; i < n; i++) rows[base + i] = rng.normal();
      const before = safeNorm(rows, base, n);
      for (let pass = 0; pass < 2; pass++) {
        for (let s = 0; s < t; s++) {
          const sb = s * n;
          let d = 0;
          for (let i = 0; i < n; i++) d += rows[sb + i]! * rows[base + i]!;
          if (d !== 0) for (let i = 0; i < n; i++) rows[base + i] = rows[base + i]! - d * rows[sb + i]!;
        }
      }
      const after = safeNorm(rows, base, n);
      if (after > 1e-3 * before || attempt > 50) {
        const inv = 1 / after;
        for (let i = 0; i < n; i++) rows[base + i] = rows[base + i]! * inv;
        break;
      }
    }
  }
}
