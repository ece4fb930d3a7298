/**
 * Small helpers shared by the strategies: option checks, random unit directions, magnitudes, reports.
 */
import { InvalidArgumentError, Matrix, meanRowNorm } from '@gradmax/core';
import type { GrowthReport, GrowthSite, Rng, ScaleMethod } from '@gradmax/core';

/** Distribution of random directions before normalisation. */
export type Distribution = 'normal' | 'uniformPositive';

/** Throws unless `value` is a finite number > 0 (or ≥ 0 when `allowZero`). */
export function checkPositive(strategy: string, option: string, value: number, allowZero = false): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new InvalidArgumentError(`${strategy}: option "${option}" must be a finite number ${allowZero ? '≥ 0' : '> 0'}, got ${String(value)}`, {
      strategy,
      option,
      value,
    });
  }
  return value;
}

/** Throws unless `value` is an integer ≥ `min`. */
export function checkInteger(strategy: string, option: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min) {
    throw new InvalidArgumentError(`${strategy}: option "${option}" must be an integer ≥ ${min}, got ${String(value)}`, { strategy, option, value });
  }
  return value;
}

/** Throws unless `value` is one of `allowed`. */
export function checkChoice<T extends string>(strategy: string, option: string, value: T, allowed: readonly T[]): T {
  if (!allowed.includes(value)) {
    throw new InvalidArgumentError(`${strategy}: option "${option}" must be one of ${allowed.map((a) => `"${a}"`).join(', ')}, got "${String(value)}"`, {
      strategy,
      option,
      value,
    });
  }
  return value;
}

/** Fills `out` with a random direction of unit Euclidean norm. */
export function randomUnitVector(out: Float64Array, rng: Rng, distribution: Distribution): Float64Array {
  for (;;) {
    let norm = 0;
    for (let i = 0; i < out.length; i++) {
      const v = distribution === 'normal' ? rng.normal() : rng.uniform();
      out[i] = v;
      norm += v * v;
    }
    norm = Math.sqrt(norm);
    if (norm > 0 || out.length === 0) {
      for (let i = 0; i < out.length; i++) out[i]! /= norm;
      return out;
    }
  }
}

/** `[rows × cols]` matrix whose columns are independent random directions of norm `magnitude`. */
export function randomColumns(rows: number, cols: number, magnitude: number, rng: Rng, distribution: Distribution): Matrix {
  const m = new Matrix(rows, cols);
  const v = new Float64Array(rows);
  for (let j = 0; j < cols; j++) {
    randomUnitVector(v, rng, distribution);
    for (let i = 0; i < rows; i++) m.data[i * cols + j] = magnitude * v[i]!;
  }
  return m;
}

/** `[rows × cols]` matrix whose rows are independent random directions of norm `magnitude`. */
export function randomRows(rows: number, cols: number, magnitude: number, rng: Rng, distribution: Distribution): Matrix {
  const m = new Matrix(rows, cols);
  for (let i = 0; i < rows; i++) {
    const row = m.data.subarray(i * cols, (i + 1) * cols);
    randomUnitVector(row, rng, distribution);
    for (let j = 0; j < cols; j++) row[j]! *= magnitude;
  }
  return m;
}

/** Options for strategies whose new *incoming* weights get a common norm. */
export interface IncomingScaleOptions {
  /** Multiplier of the magnitude (default 0.5). */
  scale?: number;
  /**
   * `'meanNorm'` (default): norm = scale × mean norm of the existing units' incoming vectors.
   * `'fixed'`: norm = scale.
   */
  scaleMethod?: ScaleMethod;
}

/**
 * The incoming magnitude for new units of `site`: `scale × mean ‖incoming row‖` (`meanNorm`) or `scale`
 * (`fixed`). Throws when `meanNorm` is asked of a site whose existing incoming weights are all zero.
 */
export function incomingMagnitude(strategy: string, site: GrowthSite, options: IncomingScaleOptions, defaultScale = 0.5): number {
  const scale = checkPositive(strategy, 'scale', options.scale ?? defaultScale);
  const method = checkChoice(strategy, 'scaleMethod', options.scaleMethod ?? 'meanNorm', ['meanNorm', 'fixed']);
  if (method === 'fixed') return scale;
  const mean = meanRowNorm(site.incoming);
  if (!(mean > 0)) {
    throw new InvalidArgumentError(`${strategy} on site "${site.name}": scaleMethod "meanNorm" needs non-zero existing incoming weights; use scaleMethod "fixed"`, {
      site: site.name,
      strategy,
    });
  }
  return scale * mean;
}

/** A report with the well-known fields filled in. */
export function baseReport(strategy: string, site: GrowthSite, count: number, notes: string[] = []): GrowthReport {
  return { strategy, site: site.name, count, notes };
}

/** For incoming-zero strategies: a note when the site's f(0) ≠ 0 (then the function is not preserved). */
export function zeroIncomingNotes(strategy: string, site: GrowthSite): string[] {
  return site.activation.f0 === 0
    ? []
    : [`${strategy}: activation "${site.activation.name}" has f(0) = ${site.activation.f0} ≠ 0, so zero incoming weights do NOT preserve the function at site "${site.name}"`];
}

/** Euclidean norm of a vector. */
export function norm2(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

/** Dot product of two vectors of equal length. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}
