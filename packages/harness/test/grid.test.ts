import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MAX_SEEDS, expandGrid, parseSeeds, parseShard, shardGrid } from '@gradmax/harness';

describe('grid and sharding', () => {
  it('the union of all shards is the full grid, without duplicates, for any grid and shard count', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 40 }), (nt, na, ns, n) => {
        const cells = expandGrid(
          Array.from({ length: nt }, (_, i) => `t${i}`),
          Array.from({ length: na }, (_, i) => `a${i}`),
          Array.from({ length: ns }, (_, i) => i * 3),
        );
        const key = (c: { task: string; arm: string; seed: number }) => `${c.task}/${c.arm}/${c.seed}`;
        const seen = new Map<string, number>();
        for (let i = 0; i < n; i++) for (const c of shardGrid(cells, { index: i, count: n })) seen.set(key(c), (seen.get(key(c)) ?? 0) + 1);
        expect(seen.size).toBe(cells.length);
        expect([...seen.values()].every((v) => v === 1)).toBe(true);
        // Deterministic: the same shard twice gives the same cells in the same order.
        expect(shardGrid(cells, { index: 0, count: n })).toEqual(shardGrid(cells, { index: 0, count: n }));
        // Balanced: shard sizes differ by at most one.
        const sizes = Array.from({ length: n }, (_, i) => shardGrid(cells, { index: i, count: n }).length);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      }),
    );
  });

  it('expands in a fixed order and removes duplicates', () => {
    expect(expandGrid(['t'], ['b', 'a', 'b'], [1, 0, 1])).toEqual([
      { task: 't', arm: 'b', seed: 1 },
      { task: 't', arm: 'a', seed: 1 },
      { task: 't', arm: 'b', seed: 0 },
      { task: 't', arm: 'a', seed: 0 },
    ]);
  });

  it('parses shards and seeds, and rejects bad ones with a message naming the flag', () => {
    expect(parseShard('2/5')).toEqual({ index: 2, count: 5 });
    for (const bad of ['5/5', '1/0', 'a/b', '1', '-1/3']) expect(() => parseShard(bad)).toThrow(/--shard/);
    expect(parseSeeds('3')).toEqual([0, 1, 2]);
    expect(parseSeeds('4-6')).toEqual([4, 5, 6]);
    expect(parseSeeds('0,7,2')).toEqual([0, 7, 2]);
    for (const bad of ['0', '5-2', 'x', '1,,2']) expect(() => parseSeeds(bad)).toThrow(/--seeds/);
  });

  it('--seeds ranges and counts are bounded before anything is allocated (issue 15 item 13)', () => {
    for (const huge of ['0-1000000000', '0-1000000', '1000000000', `${MAX_SEEDS}`.replace(/^/, '1')]) {
      expect(() => parseSeeds(huge)).toThrow(/selects \d+ seeds, more than 100000; split the study into several runs/);
    }
    expect(parseSeeds(`0-${MAX_SEEDS - 1}`)).toHaveLength(MAX_SEEDS);
    expect(parseSeeds('1000000000-1000000002')).toEqual([1e9, 1e9 + 1, 1e9 + 2]);
    expect(() => parseSeeds('0-99999999999999999999')).toThrow(/seeds must be integers below 2\^53/);
    // a large grid expands without overflowing the stack
    expect(expandGrid(['t'], Array.from({ length: 10 }, (_, i) => `a${i}`), parseSeeds(`${MAX_SEEDS}`))).toHaveLength(10 * MAX_SEEDS);
  });
});
