/**
 * Statistics for reports: means, spreads, seeded bootstrap intervals and paired permutation tests over seeds.
 */
import { InvalidArgumentError, Rng } from '@gradmax/core';

/** Arithmetic mean (NaN for an empty list). */
export function mean(xs: readonly number[]): number {
  if (!xs.length) return NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Sample standard deviation (n − 1 denominator); 0 for a single value, NaN for none. */
export function std(xs: readonly number[]): number {
  if (!xs.length) return NaN;
  if (xs.length === 1) return 0;
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) * (x - m);
  return Math.sqrt(s / (xs.length - 1));
}

/** Formats a number with `digits` significant digits (fixed notation for moderate magnitudes). */
export function fmt(x: number, digits = 4): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? '–' : String(x);
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e-3 && a < 1e5) return Number(x.toPrecision(digits)).toString();
  return x.toExponential(digits - 1);
}

/** `mean ± std` of the values (just the value when there is one). */
export function meanStd(xs: readonly number[], digits = 4): string {
  if (!xs.length) return '–';
  if (xs.length === 1) return fmt(xs[0]!, digits);
  return `${fmt(mean(xs), digits)} ± ${fmt(std(xs), digits === 4 ? 2 : digits)}`;
}

/**
 * Point-wise mean and standard deviation of several curves sampled at the same steps. Curves of different
 * lengths are truncated to the shortest common prefix of steps.
 */
export function aggregateCurves(curves: readonly { step: number[]; value: number[] }[]): { step: number[]; mean: number[]; std: number[] } {
  if (!curves.length) return { step: [], mean: [], std: [] };
  const first = curves[0]!;
  let n = first.step.length;
  for (const c of curves) {
    let k = 0;
    while (k < Math.min(n, c.step.length) && c.step[k] === first.step[k]) k++;
    n = k;
  }
  const step = first.step.slice(0, n);
  const m: number[] = [];
  const s: number[] = [];
  for (let i = 0; i < n; i++) {
    const col = curves.map((c) => c.value[i]!);
    m.push(mean(col));
    s.push(std(col));
  }
  return { step, mean: m, std: s };
}

/** Mean of a curve's values over steps in [from, to). NaN when no point falls inside. */
export function windowMean(curve: { step: number[]; value: number[] }, from: number, to: number): number {
  let s = 0;
  let n = 0;
  for (let i = 0; i < curve.step.length; i++) {
    const t = curve.step[i]!;
    if (t >= from && t < to) {
      s += curve.value[i]!;
      n++;
    }
  }
  return n ? s / n : NaN;
}

// ---------------------------------------------------------------------------------------------------------------
// Confidence over seeds.


/** Options of {@link bootstrapCi} and {@link bootstrapStatisticCi}. */
export interface BootstrapOptions {
  /** Confidence level in (0, 1); default 0.95. */
  level?: number;
  /** Number of bootstrap resamples; default 10 000. */
  resamples?: number;
  /** Seed of the resampling; default 0 (same data and seed → same interval). */
  seed?: number;
}

/** A confidence interval. */
export interface Interval {
  /** Lower end. */
  lo: number;
  /** Upper end. */
  hi: number;
  /** Confidence level, e.g. 0.95. */
  level: number;
}

/**
 * Percentile bootstrap interval of a statistic of `n` paired observations: resamples `n` indices with replacement
 * (the same indices for every arm, so pairing by seed is kept), evaluates `statistic(indices)` and takes the
 * (1 − level)/2 and (1 + level)/2 quantiles (linear interpolation between order statistics). Non-finite
 * statistics of a resample are dropped. Deterministic for a given seed. NaN ends when `n` is 0.
 */
export function bootstrapStatisticCi(n: number, statistic: (indices: readonly number[]) => number, options: BootstrapOptions = {}): Interval {
  const level = options.level ?? 0.95;
  const resamples = options.resamples ?? 10_000;
  if (!(level > 0 && level < 1)) throw new InvalidArgumentError(`bootstrap level must be in (0, 1), got ${level}`, { level });
  if (!Number.isInteger(resamples) || resamples < 1) throw new InvalidArgumentError(`bootstrap resamples must be a positive integer, got ${resamples}`, { resamples });
  if (n === 0) return { lo: NaN, hi: NaN, level };
  const rng = new Rng(options.seed ?? 0);
  const stats: number[] = [];
  const idx = new Array<number>(n);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < n; i++) idx[i] = rng.int(n);
    const v = statistic(idx);
    if (Number.isFinite(v)) stats.push(v);
  }
  if (!stats.length) return { lo: NaN, hi: NaN, level };
  stats.sort((a, b) => a - b);
  return { lo: quantile(stats, (1 - level) / 2), hi: quantile(stats, (1 + level) / 2), level };
}

/** Percentile bootstrap interval of the mean of `xs` (see {@link bootstrapStatisticCi}). */
export function bootstrapCi(xs: readonly number[], options: BootstrapOptions = {}): Interval {
  return bootstrapStatisticCi(xs.length, (idx) => {
    let s = 0;
    for (const i of idx) s += xs[i]!;
    return s / idx.length;
  }, options);
}

/** Quantile `p` ∈ [0, 1] of ascending `sorted` by linear interpolation between order statistics (type 7). */
export function quantile(sorted: readonly number[], p: number): number {
  if (!sorted.length) return NaN;
  const h = (sorted.length - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

/** Result of a paired test. */
export interface PairedTest {
  /** Number of pairs. */
  n: number;
  /** Mean of the differences a − b. */
  meanDiff: number;
  /** Two-sided p-value. */
  p: number;
  /** Smallest p-value the test can reach with `n` pairs (2/2ⁿ for the sign-flip test). */
  minP: number;
  /** `exact` (all 2ⁿ sign patterns) or `monte-carlo` (seeded random sign patterns). */
  method: 'exact' | 'monte-carlo';
}

/** Options of {@link pairedPermutationTest}. */
export interface PermutationOptions {
  /** Up to this many pairs, all 2ⁿ sign patterns are enumerated (default 16). */
  exactUpTo?: number;
  /** Random sign patterns beyond `exactUpTo` (default 20 000). */
  resamples?: number;
  /** Seed of the random sign patterns (default 0). */
  seed?: number;
}

/**
 * Paired sign-flip permutation test of H₀: the differences dᵢ = aᵢ − bᵢ are symmetric about 0 (no effect). The
 * statistic is |mean d|; the p-value is the share of sign patterns whose |mean| is at least the observed one
 * (relative slack 1e-12 for float ties), the identity pattern included. Exact for n ≤ `exactUpTo`; otherwise
 * (1 + count)/(1 + resamples) over seeded random patterns. With n pairs the smallest reachable p is 2/2ⁿ (n = 3
 * seeds: 0.25, so nothing can be significant at 5 %; n = 5: 0.0625; n = 6: 0.03125).
 */
export function pairedPermutationTest(a: readonly number[], b: readonly number[], options: PermutationOptions = {}): PairedTest {
  if (a.length !== b.length) throw new InvalidArgumentError(`paired test: ${a.length} vs ${b.length} values (pairs must match)`, { a: a.length, b: b.length });
  const n = a.length;
  const d = a.map((x, i) => x - b[i]!);
  if (n === 0) return { n, meanDiff: NaN, p: NaN, minP: NaN, method: 'exact' };
  const observed = Math.abs(d.reduce((s, x) => s + x, 0));
  const threshold = observed * (1 - 1e-12) - 1e-300;
  const exactUpTo = options.exactUpTo ?? 16;
  const minP = Math.min(1, 2 / 2 ** n);
  if (n <= exactUpTo) {
    let count = 0;
    const total = 2 ** n;
    for (let mask = 0; mask < total; mask++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += mask & (1 << i) ? -d[i]! : d[i]!;
      if (Math.abs(s) >= threshold) count++;
    }
    return { n, meanDiff: mean(d), p: count / total, minP, method: 'exact' };
  }
  const resamples = options.resamples ?? 20_000;
  const rng = new Rng(options.seed ?? 0);
  let count = 0;
  for (let r = 0; r < resamples; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += rng.uniform() < 0.5 ? -d[i]! : d[i]!;
    if (Math.abs(s) >= threshold) count++;
  }
  return { n, meanDiff: mean(d), p: (1 + count) / (1 + resamples), minP: 1 / (1 + resamples), method: 'monte-carlo' };
}

/** Formats an interval as `[lo, hi]` with {@link fmt}. */
export function fmtInterval(ci: Interval, digits = 4): string {
  if (!Number.isFinite(ci.lo) || !Number.isFinite(ci.hi)) return '–';
  return `[${fmt(ci.lo, digits)}, ${fmt(ci.hi, digits)}]`;
}

/** Formats a p-value: 2 significant digits, `< 0.001` below that. */
export function fmtP(p: number): string {
  if (!Number.isFinite(p)) return '–';
  if (p < 0.001) return '< 0.001';
  return Number(p.toPrecision(2)).toString();
}
