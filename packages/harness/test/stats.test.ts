import { describe, expect, it } from 'vitest';
import { Rng } from '@gradmax/core';
import { bootstrapCi, bootstrapStatisticCi, mean, pairedPermutationTest, quantile, std } from '../src/report/stats.js';

/** All sign vectors of length n, by recursion (independent of the bit-mask enumeration in the library). */
function signVectors(n: number): number[][] {
  if (n === 0) return [[]];
  return signVectors(n - 1).flatMap((v) => [[...v, 1], [...v, -1]]);
}

/** Exact bootstrap distribution of the mean: every one of the nⁿ index tuples, by recursion. */
function allResampleMeans(xs: number[]): number[] {
  const n = xs.length;
  const out: number[] = [];
  const rec = (depth: number, sum: number) => {
    if (depth === n) {
      out.push(sum / n);
      return;
    }
    for (const x of xs) rec(depth + 1, sum + x);
  };
  rec(0, 0);
  return out.sort((a, b) => a - b);
}

describe('report statistics', () => {
  it('mean, sample std and type-7 quantiles match hand-computed values', () => {
    expect(mean([1, 2, 3, 4])).toBe(2.5);
    // Σ(x − 2.5)² = 5, /3.
    expect(std([1, 2, 3, 4])).toBeCloseTo(Math.sqrt(5 / 3), 15);
    expect(quantile([1, 2, 3, 4], 0.25)).toBeCloseTo(1.75, 15);
    expect(quantile([1, 2, 3, 4], 0.5)).toBeCloseTo(2.5, 15);
    expect(quantile([10], 0.9)).toBe(10);
  });

  it('the bootstrap is seeded (same seed, same interval) and degenerate cases are exact', () => {
    const xs = [0.91, 0.93, 0.9, 0.95, 0.92];
    expect(bootstrapCi(xs, { seed: 7 })).toEqual(bootstrapCi(xs, { seed: 7 }));
    expect(bootstrapCi(xs)).toEqual(bootstrapCi(xs, { seed: 0 }));
    const many = Array.from({ length: 20 }, (_, i) => Math.sin(i * 1.7) + i / 10);
    expect(bootstrapCi(many, { seed: 7 })).not.toEqual(bootstrapCi(many, { seed: 8 }));
    expect(bootstrapCi([3, 3, 3])).toEqual({ lo: 3, hi: 3, level: 0.95 });
    // Two values 0 and 1: resample means are 0 (¼), ½ (½), 1 (¼), so the 2.5 % and 97.5 % quantiles are 0 and 1.
    const two = bootstrapCi([0, 1], { resamples: 4000 });
    expect(two.lo).toBe(0);
    expect(two.hi).toBe(1);
    expect(Number.isNaN(bootstrapCi([]).lo)).toBe(true);
  });

  it('the bootstrap interval matches the exact bootstrap distribution enumerated over all nⁿ resamples', () => {
    const xs = [0.2, 1.5, -0.7, 3.1, 0.4, 2.2];
    const exact = allResampleMeans(xs); // 6⁶ = 46 656 resample means
    const lo = quantile(exact, 0.025);
    const hi = quantile(exact, 0.975);
    const ci = bootstrapCi(xs, { resamples: 100_000, seed: 3 });
    const spread = hi - lo;
    expect(Math.abs(ci.lo - lo)).toBeLessThan(0.02 * spread);
    expect(Math.abs(ci.hi - hi)).toBeLessThan(0.02 * spread);
  });

  it('a paired bootstrap keeps pairs together (a statistic of indices)', () => {
    const a = [1, 2, 3, 4, 5];
    const b = a.map((x) => x + 0.5);
    // Every resample of the paired difference b − a is exactly 0.5.
    const ci = bootstrapStatisticCi(5, (idx) => mean(idx.map((i) => b[i]! - a[i]!)));
    expect(ci.lo).toBeCloseTo(0.5, 12);
    expect(ci.hi).toBeCloseTo(0.5, 12);
  });

  it('the sign-flip test matches hand-computed cases', () => {
    // d = 1, 2, 3: sums ±1±2±3 ∈ {6, 4, 2, 0, 0, −2, −4, −6}; |s| ≥ 6 in 2 of 8 → p = 0.25 (the minimum for n = 3).
    const t = pairedPermutationTest([2, 3, 4], [1, 1, 1]);
    expect(t.p).toBe(0.25);
    expect(t.minP).toBe(0.25);
    expect(t.meanDiff).toBe(2);
    expect(t.method).toBe('exact');
    // d = 1, −1: sums {0, 2, −2, 0}; |s| ≥ 0 always → p = 1.
    expect(pairedPermutationTest([1, 0], [0, 1]).p).toBe(1);
    // Six positive differences: only the all-plus and all-minus patterns reach |Σ| → 2/64.
    expect(pairedPermutationTest([1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 0]).p).toBeCloseTo(2 / 64, 15);
    expect(() => pairedPermutationTest([1], [1, 2])).toThrow(/pairs must match/);
  });

  it('the exact sign-flip p-value equals a brute-force enumeration of all sign vectors', () => {
    const rng = new Rng(5);
    for (let trial = 0; trial < 30; trial++) {
      const n = 1 + rng.int(9);
      const a = Array.from({ length: n }, () => rng.normal());
      const b = Array.from({ length: n }, () => rng.normal() + 0.3);
      const d = a.map((x, i) => x - b[i]!);
      const observed = Math.abs(d.reduce((s, x) => s + x, 0));
      const vectors = signVectors(n);
      const hits = vectors.filter((v) => Math.abs(v.reduce((s, e, i) => s + e * d[i]!, 0)) >= observed - 1e-12).length;
      const t = pairedPermutationTest(a, b);
      expect(t.p).toBeCloseTo(hits / vectors.length, 12);
      // Symmetric in the order of the arms.
      expect(pairedPermutationTest(b, a).p).toBeCloseTo(t.p, 12);
    }
  });

  it('the Monte-Carlo sign-flip test agrees with the exact one and is seeded', () => {
    const rng = new Rng(9);
    const a = Array.from({ length: 12 }, () => rng.normal() + 0.4);
    const b = Array.from({ length: 12 }, () => rng.normal());
    const exact = pairedPermutationTest(a, b);
    const mc = pairedPermutationTest(a, b, { exactUpTo: 0, resamples: 50_000, seed: 1 });
    expect(mc.method).toBe('monte-carlo');
    expect(Math.abs(mc.p - exact.p)).toBeLessThan(0.01);
    expect(pairedPermutationTest(a, b, { exactUpTo: 0, seed: 4 })).toEqual(pairedPermutationTest(a, b, { exactUpTo: 0, seed: 4 }));
  });
});
