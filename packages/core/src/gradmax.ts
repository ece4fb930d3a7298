/**
 * GradMax (Evci et al., ICLR 2022), closed form: new units get zero incoming weights and biases, and
 * outgoing weights along the top-k left singular vectors of the growth matrix M, which maximises the
 * gradient norm of the new incoming weights ‖f'(0)·Ωᵀ M‖_F under a per-unit norm constraint.
 */
import { InvalidArgumentError, UnsupportedError } from './errors.js';
import { completeOrthonormal } from './linalg/index.js';
import { svd, topKSvd, type TopKSvdOptions } from './linalg/index.js';
import { Matrix } from './matrix.js';
import type { Rng } from './rng.js';
import type { GrowthRequest, GrowthSite, GrowthStrategy, NewUnits } from './site.js';
import { validateRequest } from './validate.js';

/** How the outgoing magnitude c of new units is chosen. */
export type ScaleMethod = 'meanNorm' | 'fixed';

/** Options shared by strategies whose new outgoing weights get a common norm c. */
export interface OutgoingScaleOptions {
  /** Multiplier of the magnitude (default 0.5, the reference configs' value). */
  scale?: number;
  /**
   * `'meanNorm'` (default): c = scale × mean norm of the existing units' outgoing vectors.
   * `'fixed'`: c = scale.
   */
  scaleMethod?: ScaleMethod;
}

/**
 * The outgoing magnitude c for new units of `site`: `scale × mean ‖outgoing column‖` (`meanNorm`) or `scale`
 * (`fixed`). Throws when `meanNorm` is asked of a site whose existing outgoing weights are all zero.
 */
export function outgoingMagnitude(site: GrowthSite, options: OutgoingScaleOptions = {}): number {
  const scale = options.scale ?? 0.5;
  const method = options.scaleMethod ?? 'meanNorm';
  if (!(scale > 0) || !Number.isFinite(scale)) throw new InvalidArgumentError(`scale must be a positive finite number, got ${scale}`, { site: site.name, scale });
  if (method === 'fixed') return scale;
  if (method !== 'meanNorm') throw new InvalidArgumentError(`unknown scaleMethod "${String(method)}" (use "meanNorm" or "fixed")`, { site: site.name });
  const mean = meanColumnNorm(site.outgoing);
  if (!(mean > 0)) {
    throw new InvalidArgumentError(`site "${site.name}": scaleMethod "meanNorm" needs non-zero existing outgoing weights; use scaleMethod "fixed"`, { site: site.name });
  }
  return scale * mean;
}

/** Mean Euclidean norm of the columns of `m` (0 for a matrix without columns). */
export function meanColumnNorm(m: Matrix): number {
  if (m.cols === 0) return 0;
  // Row by row (cache-friendly); each column's sum still runs over rows in order.
  const sums = new Float64Array(m.cols);
  for (let i = 0; i < m.rows; i++) {
    const row = i * m.cols;
    for (let j = 0; j < m.cols; j++) {
      const v = m.data[row + j]!;
      sums[j] += v * v;
    }
  }
  let total = 0;
  for (let j = 0; j < m.cols; j++) total += Math.sqrt(sums[j]!);
  return total / m.cols;
}

/** Mean Euclidean norm of the rows of `m` (0 for a matrix without rows). */
export function meanRowNorm(m: Matrix): number {
  if (m.rows === 0) return 0;
  let total = 0;
  for (let i = 0; i < m.rows; i++) {
    let s = 0;
    for (let j = 0; j < m.cols; j++) {
      const v = m.data[i * m.cols + j]!;
      s += v * v;
    }
    total += Math.sqrt(s);
  }
  return total / m.rows;
}

/** Throws the GradMax-family error for activations with f'(0) = 0 (the new units would get no gradient). */
export function requireNonZeroSlopeAtZero(strategy: string, site: GrowthSite): void {
  if (site.activation.df0 === 0) {
    throw new UnsupportedError(
      `${strategy} on site "${site.name}": activation "${site.activation.name}" has f'(0) = 0, so new units with zero incoming weights ` +
        `get exactly zero gradient and ${strategy} is a no-op. Use a ReLU whose derivative at 0 is 1 (e.g. relu1) on the grown layer.`,
      { site: site.name, activation: site.activation.name },
    );
  }
}

/** Options of {@link gradmax}. */
export interface GradMaxOptions extends OutgoingScaleOptions {
  /**
   * Keep the singular values: new unit j's outgoing vector is c·(σⱼ/σ₁)·uⱼ instead of c·uⱼ. Default false
   * (the reference discards them).
   */
  keepSingularValues?: boolean;
  /**
   * Singular values at or below `rankTolerance × σ₁` count as zero (default 1e-10). Directions beyond the
   * numerical rank are filled with random directions orthogonal to the others, and the report says so.
   */
  rankTolerance?: number;
  /** Options forwarded to `topKSvd` (its seed defaults to one drawn from the request's rng). */
  svd?: TopKSvdOptions;
  /**
   * Sign of each outgoing direction (singular vectors are defined up to sign; the sign does not change the
   * gradient gain but does change training after growth):
   * - `'largestPositive'` (default): each direction's largest-magnitude entry is positive;
   * - `'largestNegative'`: the opposite of the default;
   * - `'random'`: an independent seeded coin flip per direction (from the request's rng).
   */
  sign?: SignConvention;
}

/** Sign convention for GradMax's outgoing directions; see {@link GradMaxOptions.sign}. */
export type SignConvention = 'largestPositive' | 'largestNegative' | 'random';

/** Applies a {@link SignConvention} to the columns of `u` (which carry the largest-positive convention), in place. */
export function applySignConvention(u: Matrix, convention: SignConvention, rng: Rng): void {
  if (convention === 'largestPositive') return;
  if (convention !== 'largestNegative' && convention !== 'random') {
    throw new InvalidArgumentError(`unknown sign convention "${String(convention)}" (use largestPositive, largestNegative or random)`);
  }
  for (let j = 0; j < u.cols; j++) {
    const flip = convention === 'largestNegative' || rng.uniform() < 0.5;
    if (!flip) continue;
    for (let i = 0; i < u.rows; i++) u.data[i * u.cols + j] = -u.data[i * u.cols + j]!;
  }
}

/**
 * Creates the closed-form GradMax strategy.
 *
 * Incoming weights and biases of the new units are zero, so the function is preserved when f(0) = 0. The
 * outgoing weights are Ω = c·U_k, the top-k left singular vectors of M = E[g hᵀ] (`[fanOut × fanIn]`), each of
 * norm c (see {@link OutgoingScaleOptions}). At the next step, new unit j's incoming gradient is
 * f'(0)·c·σⱼ·vⱼᵀ, the largest possible under the norm constraint. Sign convention (option `sign`): by default
 * each uⱼ has its largest-magnitude entry positive. Needs the growth matrix; refuses activations with f'(0) = 0.
 *
 * @param options - {@link GradMaxOptions}; defaults: scale 0.5, scaleMethod `meanNorm`, keepSingularValues false, sign `largestPositive`.
 */
export function gradmax(options: GradMaxOptions = {}): GrowthStrategy {
  const strategy: GrowthStrategy = {
    name: 'gradmax',
    functionPreserving: true,
    needs: { moment: true, samples: false, lossOracle: false },
    grow(request: GrowthRequest): NewUnits {
      const stats = validateRequest(strategy, request)!;
      const { site, count, rng } = request;
      requireNonZeroSlopeAtZero('GradMax', site);
      const c = outgoingMagnitude(site, options);
      const directions = topLeftSingularDirections(stats.moment, count, rng, options.rankTolerance ?? 1e-10, options.svd);
      applySignConvention(directions.u, options.sign ?? 'largestPositive', rng);
      const outgoing = new Matrix(site.fanOut, count);
      const sigma1 = directions.singularValues[0] ?? 0;
      for (let j = 0; j < count; j++) {
        const sj = directions.singularValues[j] ?? 0;
        const weight = options.keepSingularValues ? (sigma1 > 0 ? sj / sigma1 : 0) : 1;
        for (let i = 0; i < site.fanOut; i++) outgoing.data[i * count + j] = c * weight * directions.u.data[i * count + j]!;
      }
      const notes = [...directions.notes];
      return {
        incoming: new Matrix(count, site.fanIn),
        incomingBias: new Float64Array(count),
        outgoing,
        report: {
          strategy: 'gradmax',
          site: site.name,
          count,
          singularValues: directions.singularValues.slice(0, count),
          numericalRank: directions.rank,
          ...(directions.rankIsLowerBound ? { numericalRankIsLowerBound: true } : {}),
          predictedGradientNorm: Math.abs(site.activation.df0) * projectedNorm(outgoing, stats.moment),
          filledAtRandom: directions.filled,
          outgoingNorm: c,
          notes,
        },
      };
    },
  };
  return strategy;
}

/**
 * ‖Ωᵀ M‖_F for `omega` `[rows × k]` and `m` `[rows × cols]`: the Frobenius norm of the new units' incoming
 * gradient at the next step, divided by |f'(0)|. Computed from the outgoing weights actually returned, so it
 * is the realised value also for filled directions (beyond the numerical rank or beyond the fan-out, where the
 * extra directions are random and not orthogonal to the singular ones).
 */
export function projectedNorm(omega: Matrix, m: Matrix): number {
  if (omega.rows !== m.rows) throw new InvalidArgumentError(`projectedNorm: omega has ${omega.rows} rows, the growth matrix ${m.rows}`, { omegaRows: omega.rows, rows: m.rows });
  const k = omega.cols;
  const row = new Float64Array(m.cols);
  let total = 0;
  for (let j = 0; j < k; j++) {
    row.fill(0);
    for (let i = 0; i < m.rows; i++) {
      const w = omega.data[i * k + j]!;
      if (w === 0) continue;
      const base = i * m.cols;
      for (let q = 0; q < m.cols; q++) row[q] += w * m.data[base + q]!;
    }
    for (let q = 0; q < m.cols; q++) total += row[q]! * row[q]!;
  }
  return Math.sqrt(total);
}

/** Result of {@link topLeftSingularDirections}. */
export interface SingularDirections {
  /** `[rows × count]` unit-norm directions: top left singular vectors, then random fill. */
  u: Matrix;
  /** Singular values of the computed directions (0 for filled ones). */
  singularValues: number[];
  /**
   * Numerical rank of the whole matrix (number of singular values above tolerance × σ₁), not only of the
   * top `count`: when all `count` computed singular values are above tolerance and `count < min(rows, cols)`,
   * the remaining singular values come from a full SVD (one-sided Jacobi) if min(rows, cols) ≤
   * {@link FULL_SPECTRUM_LIMIT}; above, `rank` is the lower bound `count` and `rankIsLowerBound` is set.
   */
  rank: number;
  /** True when `rank` is only a lower bound: the matrix is larger than {@link FULL_SPECTRUM_LIMIT} on both sides. */
  rankIsLowerBound?: boolean;
  /** Number of directions filled at random. */
  filled: number;
  /** Notes for the report. */
  notes: string[];
}

/**
 * Largest min(rows, cols) for which {@link topLeftSingularDirections} computes the full spectrum to report the
 * numerical rank (a full SVD takes about 0.5 s at 256 in JS and grows cubically).
 */
export const FULL_SPECTRUM_LIMIT = 256;

/**
 * The top `count` left singular directions of `m` (`[rows × cols]`), completed with random orthonormal
 * directions when `count` exceeds the numerical rank, and with random unit directions (no longer orthogonal)
 * when `count` exceeds `rows`. Never silent: `notes` says what was filled.
 */
export function topLeftSingularDirections(m: Matrix, count: number, rng: Rng, rankTolerance = 1e-10, svdOptions: TopKSvdOptions = {}): SingularDirections {
  const notes: string[] = [];
  const kSvd = Math.min(count, m.rows, m.cols);
  let rank = 0;
  let rankIsLowerBound = false;
  let kept = 0;
  const singularValues: number[] = [];
  let basis = new Matrix(m.rows, 0);
  if (kSvd > 0) {
    const res = topKSvd(m, kSvd, { seed: rng.nextUint32(), ...svdOptions });
    if (!res.converged) notes.push(`top-k SVD did not converge (residual ${res.residual.toExponential(2)} after ${res.iterations} iterations)`);
    const s1 = res.s[0] ?? 0;
    for (let j = 0; j < kSvd; j++) if (res.s[j]! > rankTolerance * s1 && s1 > 0) rank++;
    kept = rank;
    // All top-k values are above tolerance: the rank of m may be larger; count the rest from the full spectrum,
    // unless that costs far more than the growth itself (a full SVD is cubic: seconds at 512, minutes at 1,500).
    if (rank === kSvd && kSvd < Math.min(m.rows, m.cols) && Math.min(m.rows, m.cols) > FULL_SPECTRUM_LIMIT) {
      rankIsLowerBound = true;
      notes.push(`numerical rank ≥ ${rank}: the full spectrum of the ${m.rows}×${m.cols} growth matrix is not computed (only for min(rows, cols) ≤ ${FULL_SPECTRUM_LIMIT})`);
    } else if (rank === kSvd && kSvd < Math.min(m.rows, m.cols)) {
      const all = svd(m).s;
      rank = 0;
      for (let j = 0; j < all.length; j++) if (all[j]! > rankTolerance * s1) rank++;
      rank = Math.max(rank, kept);
    }
    basis = new Matrix(m.rows, kept);
    for (let i = 0; i < m.rows; i++) for (let j = 0; j < kept; j++) basis.data[i * kept + j] = res.u.data[i * res.u.cols + j]!;
    for (let j = 0; j < kept; j++) singularValues.push(res.s[j]!);
  }
  const u = new Matrix(m.rows, count);
  for (let i = 0; i < m.rows; i++) for (let j = 0; j < kept; j++) u.data[i * count + j] = basis.data[i * kept + j]!;
  const orthogonalFill = Math.min(count, m.rows) - kept;
  if (orthogonalFill > 0) {
    const extra = completeOrthonormal(basis, orthogonalFill, rng);
    for (let i = 0; i < m.rows; i++) for (let j = 0; j < orthogonalFill; j++) u.data[i * count + kept + j] = extra.data[i * orthogonalFill + j]!;
    notes.push(`${count} units requested but the growth matrix has numerical rank ${rank}: ${orthogonalFill} direction(s) filled with random directions orthogonal to the others (their incoming gradient is ~0 at the next step)`);
  }
  const beyond = count - Math.min(count, m.rows);
  for (let j = count - beyond; j < count; j++) {
    let norm = 0;
    for (let i = 0; i < m.rows; i++) {
      const v = rng.normal();
      u.data[i * count + j] = v;
      norm += v * v;
    }
    norm = Math.sqrt(norm) || 1;
    for (let i = 0; i < m.rows; i++) u.data[i * count + j]! /= norm;
  }
  if (beyond > 0) notes.push(`${count} units requested but fan-out is ${m.rows}: ${beyond} direction(s) are random unit vectors, not orthogonal to the others`);
  while (singularValues.length < count) singularValues.push(0);
  return { u, singularValues, rank, ...(rankIsLowerBound ? { rankIsLowerBound } : {}), filled: count - kept, notes };
}
