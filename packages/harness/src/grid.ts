/**
 * The run grid (task × arm × seed) and its deterministic sharding.
 */
import { InvalidArgumentError } from '@gradmax/core';

/** One cell of the grid. */
export interface GridCell {
  /** Task name. */
  task: string;
  /** Arm name. */
  arm: string;
  /** Seed. */
  seed: number;
}

/** A shard: `index` in [0, count). */
export interface Shard {
  /** This shard, 0-based. */
  index: number;
  /** Number of shards. */
  count: number;
}

/**
 * All cells in a fixed order: tasks in the given order, then seeds ascending, then arms in the given order.
 * Duplicate tasks, arms or seeds are removed (first occurrence kept).
 */
export function expandGrid(tasks: readonly string[], arms: readonly string[], seeds: readonly number[]): GridCell[] {
  const uniq = <T>(xs: readonly T[]) => [...new Set(xs)];
  const cells: GridCell[] = [];
  for (const task of uniq(tasks)) for (const seed of uniq(seeds)) for (const arm of uniq(arms)) cells.push({ task, arm, seed });
  return cells;
}

/**
 * Parses `i/n` (0-based i, e.g. `SLURM_ARRAY_TASK_ID/N` or `JOB_COMPLETION_INDEX/N`).
 * Throws {@link InvalidArgumentError} on anything else.
 */
export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!m) throw new InvalidArgumentError(`--shard must look like i/n with 0 ≤ i < n (e.g. 0/4), got "${text}"`, { shard: text });
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || index >= count) throw new InvalidArgumentError(`--shard ${text}: need 0 ≤ i < n and n ≥ 1`, { shard: text });
  return { index, count };
}

/** The cells of shard `index` of `count`: every cell whose position p in the grid has p mod count = index. */
export function shardGrid<T>(cells: readonly T[], shard: Shard): T[] {
  if (!Number.isInteger(shard.count) || shard.count < 1 || !Number.isInteger(shard.index) || shard.index < 0 || shard.index >= shard.count) {
    throw new InvalidArgumentError(`invalid shard ${shard.index}/${shard.count}`, { ...shard });
  }
  return cells.filter((_, p) => p % shard.count === shard.index);
}

/** Most seeds one `--seeds` may select (a count or the length of a range); larger studies split into several runs. */
export const MAX_SEEDS = 100_000;

/**
 * Parses `--seeds`: a count `N` (seeds 0..N−1), a range `a-b`, or a comma list `0,3,7`. Seeds are integers in
 * [0, 2^53); at most {@link MAX_SEEDS} of them, checked before any list is built. Throws {@link InvalidArgumentError}.
 */
export function parseSeeds(text: string): number[] {
  const t = text.trim();
  const tooMany = (n: number) =>
    new InvalidArgumentError(`--seeds ${t} selects ${n} seeds, more than ${MAX_SEEDS}; split the study into several runs (e.g. --seeds 0-${MAX_SEEDS - 1}, then --seeds ${MAX_SEEDS}-${2 * MAX_SEEDS - 1})`, { seeds: t, count: n });
  const checkSafe = (v: number) => {
    if (!Number.isSafeInteger(v)) throw new InvalidArgumentError(`--seeds ${t}: seeds must be integers below 2^53, got ${v}`, { seeds: t });
    return v;
  };
  let seeds: number[];
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    if (n > MAX_SEEDS) throw tooMany(n);
    seeds = Array.from({ length: n }, (_, i) => i);
  } else if (/^\d+-\d+$/.test(t)) {
    const [a, b] = t.split('-').map((x) => checkSafe(Number(x))) as [number, number];
    if (b < a) throw new InvalidArgumentError(`--seeds range ${t} is empty`, { seeds: t });
    if (b - a + 1 > MAX_SEEDS) throw tooMany(b - a + 1);
    seeds = Array.from({ length: b - a + 1 }, (_, i) => a + i);
  } else if (/^\d+(,\d+)+$/.test(t)) {
    seeds = t.split(',').map((x) => checkSafe(Number(x)));
    if (seeds.length > MAX_SEEDS) throw tooMany(seeds.length);
  } else throw new InvalidArgumentError(`--seeds must be a count (5), a range (0-9) or a list (0,3,7), got "${text}"`, { seeds: text });
  if (!seeds.length) throw new InvalidArgumentError('--seeds selects no seed', { seeds: text });
  return seeds;
}
