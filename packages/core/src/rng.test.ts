import { describe, expect, it } from 'vitest';
import { Rng } from './rng.js';

describe('Rng', () => {
  it('is deterministic per seed and differs across seeds', () => {
    const a = new Rng(42), b = new Rng(42), c = new Rng(43);
    const xs = Array.from({ length: 20 }, () => a.uniform());
    expect(Array.from({ length: 20 }, () => b.uniform())).toEqual(xs);
    expect(Array.from({ length: 20 }, () => c.uniform())).not.toEqual(xs);
  });

  it('uniform lies in [0,1) with the right mean and normal has mean 0, variance 1', () => {
    const r = new Rng(7);
    let su = 0, sn = 0, sn2 = 0;
    const n = 200_000;
    for (let i = 0; i < n; i++) {
      const u = r.uniform();
      expect(u >= 0 && u < 1).toBe(true);
      su += u;
      const z = r.normal();
      sn += z;
      sn2 += z * z;
    }
    expect(Math.abs(su / n - 0.5)).toBeLessThan(0.005);
    expect(Math.abs(sn / n)).toBeLessThan(0.01);
    expect(Math.abs(sn2 / n - 1)).toBeLessThan(0.02);
  });

  it('fork depends only on the seed and label, not on draws so far', () => {
    const a = new Rng(1);
    const f1 = a.fork('site').uniform();
    a.uniform();
    expect(a.fork('site').uniform()).toBe(f1);
    expect(a.fork('other').uniform()).not.toBe(f1);
  });

  it('int covers its range and shuffle is a permutation', () => {
    const r = new Rng(3);
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i++) seen.add(r.int(5));
    expect([...seen].sort()).toEqual([0, 1, 2, 3, 4]);
    expect(r.shuffle([1, 2, 3, 4, 5, 6]).sort()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(() => r.int(0)).toThrow(/positive integer/);
    expect(() => new Rng(0.5)).toThrow(/safe integer/);
  });
});
