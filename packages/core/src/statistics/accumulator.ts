/**
 * The shared machinery of {@link DenseStatistics} and {@link ConvStatistics}: a running sum of g hᵀ outer
 * products, an example count, a deterministic mergeable sample reservoir, and the versioned JSON format.
 *
 * Reservoir rule (bottom-k sampling): every offered (g, h) row gets a key in [0, 1) computed by hashing
 * (seed, sequence number of the row within its accumulator). The reservoir keeps the `retainSamples` rows with the
 * smallest keys, ties broken by comparing g then h lexicographically. Because "the k smallest of a union" does not
 * depend on how the union was formed, `merge` is exactly associative and commutative for the retained samples,
 * and the moment sums are equal up to float rounding. Give independent workers different seeds: equal seeds give
 * equal key streams, which is still deterministic but correlates the workers' selections.
 * @packageDocumentation
 */
import { InvalidArgumentError, NonFiniteError, ShapeMismatchError } from '../errors.js';
import { Matrix } from '../matrix.js';
import type { ConvPairGeometry, SiteStatistics } from '../site.js';
import { decodeFloat64Base64, encodeFloat64Base64 } from './base64.js';

/** Options shared by the statistics accumulators. */
export interface StatisticsOptions {
  /** Maximum number of raw (g, h) rows to retain (default 0: none). */
  retainSamples?: number;
  /** Seed of the reservoir keys (default 0). */
  seed?: number;
}

/** A matrix-shaped input: a {@link Matrix} or any `{rows, cols, data}` with row-major float data. */
export interface MatrixLike {
  /** Row count. */
  rows: number;
  /** Column count. */
  cols: number;
  /** Row-major entries, length rows·cols. */
  data: ArrayLike<number>;
}

/** The versioned JSON form of a statistics accumulator. Float64 arrays are base64 of little-endian bytes. */
export interface StatisticsJSON {
  /** Always `"gradmax-statistics"`. */
  format: 'gradmax-statistics';
  /** Format version (currently 1). */
  version: 1;
  /** Which accumulator. */
  kind: 'dense' | 'conv';
  /** Accumulator name (used in errors). */
  name: string;
  /** Rows of M. */
  fanOut: number;
  /** Columns of M. */
  fanIn: number;
  /** Examples accumulated. */
  count: number;
  /** Σ g hᵀ, `[fanOut × fanIn]` row-major, base64 float64. */
  sum: string;
  /** Reservoir capacity. */
  retainSamples: number;
  /** Reservoir key seed. */
  seed: number;
  /** Number of reservoir keys drawn so far (the next row's sequence number). */
  sequence: number;
  /** Rows offered to the reservoir. */
  offeredRows: number;
  /** Examples whose rows were offered to the reservoir. */
  sampledCount: number;
  /** Retained rows, sorted by key. */
  samples: StatisticsSamplesJSON;
  /** Conv geometry (conv accumulators only). */
  geometry?: ConvPairGeometry;
}

/** Retained rows in {@link StatisticsJSON}: base64 float64 arrays. */
export interface StatisticsSamplesJSON {
  /** Number of retained rows. */
  rows: number;
  /** Reservoir keys, length rows. */
  keys: string;
  /** `[rows × fanOut]` gradients. */
  g: string;
  /** `[rows × fanIn]` inputs (patches for conv). */
  h: string;
}

/** Current version of {@link StatisticsJSON}. */
export const STATISTICS_JSON_VERSION = 1;

interface Retained {
  key: number;
  g: Float64Array;
  h: Float64Array;
}

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/** Deterministic key in [0, 1) of row number `sequence` under `seed`. */
export function reservoirKey(seed: number, sequence: number): number {
  let a = mix32((seed >>> 0) ^ 0x85ebca6b);
  a = mix32(a ^ (Math.floor(seed / 0x100000000) >>> 0));
  a = mix32(a ^ (sequence >>> 0));
  a = mix32(a ^ (Math.floor(sequence / 0x100000000) >>> 0) ^ 0x27d4eb2d);
  const b = mix32(a ^ 0x165667b1);
  return ((a >>> 5) * 67108864 + (b >>> 6)) / 9007199254740992;
}

function compareArrays(a: ArrayLike<number>, b: ArrayLike<number>): number {
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

function compareRows(ak: number, ag: ArrayLike<number>, ah: ArrayLike<number>, bk: number, bg: ArrayLike<number>, bh: ArrayLike<number>): number {
  if (ak !== bk) return ak < bk ? -1 : 1;
  return compareArrays(ag, bg) || compareArrays(ah, bh);
}

function compareRetained(a: Retained, b: Retained): number {
  return compareRows(a.key, a.g, a.h, b.key, b.g, b.h);
}

function checkCount(count: number, what: string): void {
  if (!Number.isInteger(count) || count <= 0) throw new InvalidArgumentError(`${what}: count must be a positive integer, got ${count}`, { what, count });
}

/**
 * Base class of the statistics accumulators. Holds Σ g hᵀ (`[fanOut × fanIn]`), the example count and the
 * sample reservoir; subclasses add the layer-specific ways of feeding it.
 */
export abstract class MomentAccumulator {
  /** Rows of M (outputs side). */
  readonly fanOut: number;
  /** Columns of M (inputs side). */
  readonly fanIn: number;
  /** Name used in error messages. */
  readonly name: string;
  /** Reservoir capacity (rows). */
  readonly retainSamples: number;
  /** Reservoir key seed. */
  readonly seed: number;
  /** Running Σ g hᵀ, row-major `[fanOut × fanIn]`. */
  protected readonly sum: Float64Array;
  /** Examples accumulated. */
  protected examples = 0;
  /** Next reservoir sequence number. */
  protected sequence = 0;
  /** Rows offered to the reservoir. */
  protected offeredRows = 0;
  /** Examples whose rows were offered to the reservoir. */
  protected sampledCount = 0;
  private reservoir: Retained[] = [];
  private maxIndex = -1;

  protected constructor(kind: string, fanOut: number, fanIn: number, options: StatisticsOptions | undefined, name: string) {
    if (typeof name !== 'string') throw new InvalidArgumentError(`${kind} statistics: name must be a string`, { name });
    for (const [what, v] of [['fanOut', fanOut], ['fanIn', fanIn]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`${name}: ${what} must be a positive integer, got ${v}`, { statistic: name, [what]: v });
    }
    const retain = options?.retainSamples ?? 0;
    if (!Number.isInteger(retain) || retain < 0) throw new InvalidArgumentError(`${name}: retainSamples must be a non-negative integer, got ${retain}`, { statistic: name, retainSamples: retain });
    const seed = options?.seed ?? 0;
    if (!Number.isSafeInteger(seed)) throw new InvalidArgumentError(`${name}: seed must be a safe integer, got ${seed}`, { statistic: name, seed });
    this.fanOut = fanOut;
    this.fanIn = fanIn;
    this.name = name;
    this.retainSamples = retain;
    this.seed = seed;
    this.sum = new Float64Array(fanOut * fanIn);
  }

  /** Number of examples accumulated so far. */
  get count(): number {
    return this.examples;
  }

  /** Number of rows currently held by the sample reservoir. */
  get retainedCount(): number {
    return this.reservoir.length;
  }

  /** The accumulated sum Σ g hᵀ (a copy), `[fanOut × fanIn]`. */
  sumMatrix(): Matrix {
    return new Matrix(this.fanOut, this.fanIn, this.sum.slice());
  }

  /**
   * The growth matrix M = (1/count) Σ g hᵀ, `[fanOut × fanIn]`.
   * Throws {@link InvalidArgumentError} when nothing has been accumulated.
   */
  moment(): Matrix {
    if (this.examples === 0) throw new InvalidArgumentError(`${this.name}: no examples accumulated, the growth matrix is undefined`, { statistic: this.name });
    const m = new Matrix(this.fanOut, this.fanIn);
    for (let i = 0; i < m.data.length; i++) m.data[i] = this.sum[i]! / this.examples;
    return m;
  }

  /**
   * The statistics a strategy reads. `samples` is present whenever retention is on (0 rows and weight 0 when no
   * row was offered); its weight is
   * offeredRows / (retained · sampledCount), so `weight · gᵀh` is an unbiased estimate of the moment of the sampled
   * examples (exactly 1/count, and exactly the moment, when every row was retained).
   */
  snapshot(): SiteStatistics {
    const stats: SiteStatistics = { moment: this.moment(), count: this.examples };
    if (this.retainSamples > 0) {
      // With retention on, samples are always present (possibly 0 rows, weight 0), so a strategy that needs them
      // sees "no rows offered" rather than a missing statistic.
      const rows = this.sortedReservoir();
      const h = new Matrix(rows.length, this.fanIn);
      const g = new Matrix(rows.length, this.fanOut);
      rows.forEach((r, i) => {
        h.data.set(r.h, i * this.fanIn);
        g.data.set(r.g, i * this.fanOut);
      });
      stats.samples = { h, g, weight: rows.length > 0 ? this.offeredRows / (rows.length * this.sampledCount) : 0 };
    }
    return stats;
  }

  /** Adds a precomputed Σ g hᵀ over `count` examples (row-major `[fanOut × fanIn]`). */
  protected addSumData(sumGH: ArrayLike<number>, count: number, what: string): void {
    checkCount(count, `${this.name}: ${what}`);
    if (sumGH.length !== this.sum.length) throw new ShapeMismatchError(`${this.name}: ${what}`, [this.fanOut, this.fanIn], [sumGH.length], { statistic: this.name });
    this.assertFinite(what, sumGH);
    for (let i = 0; i < this.sum.length; i++) this.sum[i] += sumGH[i]!;
    this.examples += count;
  }

  /** Throws {@link NonFiniteError} naming this statistic when `values` holds NaN or ±Infinity. */
  protected assertFinite(what: string, values: ArrayLike<number>): void {
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (!Number.isFinite(v)) throw new NonFiniteError(`${this.name}: ${what}`, i, v, { statistic: this.name });
    }
  }

  /** Offers one (g, h) row to the reservoir (copied only when kept). */
  protected offer(g: ArrayLike<number>, h: ArrayLike<number>): void {
    const key = reservoirKey(this.seed, this.sequence);
    this.sequence++;
    this.offeredRows++;
    const cap = this.retainSamples;
    if (cap === 0) return;
    if (this.reservoir.length < cap) {
      this.reservoir.push({ key, g: Float64Array.from(g), h: Float64Array.from(h) });
      if (this.reservoir.length === cap) this.updateMax();
      return;
    }
    const max = this.reservoir[this.maxIndex]!;
    if (compareRows(key, g, h, max.key, max.g, max.h) >= 0) return;
    this.reservoir[this.maxIndex] = { key, g: Float64Array.from(g), h: Float64Array.from(h) };
    this.updateMax();
  }

  /** Records that `count` examples had all their rows offered. */
  protected markSampled(count: number): void {
    this.sampledCount += count;
  }

  private updateMax(): void {
    let best = 0;
    for (let i = 1; i < this.reservoir.length; i++) if (compareRetained(this.reservoir[i]!, this.reservoir[best]!) > 0) best = i;
    this.maxIndex = best;
  }

  private sortedReservoir(): Retained[] {
    return this.reservoir.slice().sort(compareRetained);
  }

  /** Checks that `other` can be merged into an accumulator like this one. */
  protected checkMergeable(other: MomentAccumulator): void {
    if (!(other instanceof MomentAccumulator) || other.constructor !== this.constructor) {
      throw new InvalidArgumentError(`${this.name}: can only merge statistics of the same kind`, { statistic: this.name });
    }
    if (other.fanOut !== this.fanOut || other.fanIn !== this.fanIn) {
      throw new ShapeMismatchError(`${this.name}: merge with "${other.name}"`, [this.fanOut, this.fanIn], [other.fanOut, other.fanIn], { statistic: this.name });
    }
    if (other.retainSamples !== this.retainSamples) {
      throw new InvalidArgumentError(`${this.name}: cannot merge with "${other.name}": retainSamples differ (${this.retainSamples} vs ${other.retainSamples})`, { statistic: this.name });
    }
  }

  /**
   * Fills `target` (a fresh accumulator) with the merge of this and `other`: sums and counts add; the reservoir
   * is the `retainSamples` smallest rows of the union; seed = min of the seeds, sequence = max of the sequences.
   */
  protected mergeInto<T extends MomentAccumulator>(target: T, other: MomentAccumulator): T {
    for (let i = 0; i < this.sum.length; i++) target.sum[i] = this.sum[i]! + other.sum[i]!;
    target.examples = this.examples + other.examples;
    target.sequence = Math.max(this.sequence, other.sequence);
    target.offeredRows = this.offeredRows + other.offeredRows;
    target.sampledCount = this.sampledCount + other.sampledCount;
    const union = this.reservoir.concat(other.reservoir).sort(compareRetained);
    target.reservoir = union.slice(0, this.retainSamples).map((r) => ({ key: r.key, g: r.g.slice(), h: r.h.slice() }));
    if (target.reservoir.length === target.retainSamples && target.retainSamples > 0) target.updateMax();
    return target;
  }

  /** Serialises losslessly (see {@link StatisticsJSON}). */
  protected baseJSON(kind: 'dense' | 'conv'): StatisticsJSON {
    const rows = this.sortedReservoir();
    const keys = new Float64Array(rows.length);
    const g = new Float64Array(rows.length * this.fanOut);
    const h = new Float64Array(rows.length * this.fanIn);
    rows.forEach((r, i) => {
      keys[i] = r.key;
      g.set(r.g, i * this.fanOut);
      h.set(r.h, i * this.fanIn);
    });
    return {
      format: 'gradmax-statistics',
      version: STATISTICS_JSON_VERSION,
      kind,
      name: this.name,
      fanOut: this.fanOut,
      fanIn: this.fanIn,
      count: this.examples,
      sum: encodeFloat64Base64(this.sum),
      retainSamples: this.retainSamples,
      seed: this.seed,
      sequence: this.sequence,
      offeredRows: this.offeredRows,
      sampledCount: this.sampledCount,
      samples: { rows: rows.length, keys: encodeFloat64Base64(keys), g: encodeFloat64Base64(g), h: encodeFloat64Base64(h) },
    };
  }

  /** Restores the state part of a validated JSON object into this (fresh) accumulator. */
  protected restoreJSON(json: StatisticsJSON): void {
    const what = `statistics JSON "${this.name}"`;
    const intField = (key: 'count' | 'sequence' | 'offeredRows' | 'sampledCount') => {
      const v = json[key];
      if (!Number.isSafeInteger(v) || v < 0) throw new InvalidArgumentError(`${what}: field "${key}" must be a non-negative integer, got ${JSON.stringify(v)}`, { statistic: this.name, field: key });
      return v;
    };
    this.examples = intField('count');
    this.sequence = intField('sequence');
    this.offeredRows = intField('offeredRows');
    this.sampledCount = intField('sampledCount');
    const sum = decodeFloat64Base64(json.sum, this.fanOut * this.fanIn, `${what}: sum`);
    this.assertFinite('sum (from JSON)', sum);
    this.sum.set(sum);
    const s = json.samples;
    if (!s || typeof s !== 'object') throw new InvalidArgumentError(`${what}: missing "samples"`, { statistic: this.name });
    if (!Number.isInteger(s.rows) || s.rows < 0 || s.rows > this.retainSamples) {
      throw new InvalidArgumentError(`${what}: samples.rows must be an integer in [0, ${this.retainSamples}], got ${JSON.stringify(s.rows)}`, { statistic: this.name });
    }
    if (s.rows > this.offeredRows || this.sampledCount > this.examples || (s.rows > 0 && this.sampledCount === 0)) {
      throw new InvalidArgumentError(`${what}: inconsistent counters (rows ${s.rows}, offeredRows ${this.offeredRows}, sampledCount ${this.sampledCount}, count ${this.examples})`, { statistic: this.name });
    }
    const keys = decodeFloat64Base64(s.keys, s.rows, `${what}: samples.keys`);
    const g = decodeFloat64Base64(s.g, s.rows * this.fanOut, `${what}: samples.g`);
    const h = decodeFloat64Base64(s.h, s.rows * this.fanIn, `${what}: samples.h`);
    this.assertFinite('samples.g (from JSON)', g);
    this.assertFinite('samples.h (from JSON)', h);
    this.reservoir = [];
    for (let i = 0; i < s.rows; i++) {
      const key = keys[i]!;
      if (!(key >= 0 && key < 1)) throw new InvalidArgumentError(`${what}: samples.keys[${i}] = ${key} is outside [0, 1)`, { statistic: this.name });
      this.reservoir.push({ key, g: g.slice(i * this.fanOut, (i + 1) * this.fanOut), h: h.slice(i * this.fanIn, (i + 1) * this.fanIn) });
    }
    if (this.reservoir.length === this.retainSamples && this.retainSamples > 0) this.updateMax();
  }
}

/** Parses and validates the common header of a statistics JSON value (object or JSON text). */
export function parseStatisticsJSON(value: unknown, kind: 'dense' | 'conv'): StatisticsJSON {
  let json: unknown = value;
  if (typeof value === 'string') {
    try {
      json = JSON.parse(value);
    } catch (e) {
      throw new InvalidArgumentError(`statistics JSON: not valid JSON (${(e as Error).message})`, { kind });
    }
  }
  if (!json || typeof json !== 'object') throw new InvalidArgumentError('statistics JSON: expected an object', { kind });
  const o = json as Record<string, unknown>;
  if (o.format !== 'gradmax-statistics') throw new InvalidArgumentError(`statistics JSON: format must be "gradmax-statistics", got ${JSON.stringify(o.format)}`, { kind });
  if (o.version !== STATISTICS_JSON_VERSION) throw new InvalidArgumentError(`statistics JSON: unsupported version ${JSON.stringify(o.version)} (supported: ${STATISTICS_JSON_VERSION})`, { kind, version: o.version });
  if (o.kind !== kind) throw new InvalidArgumentError(`statistics JSON: kind is ${JSON.stringify(o.kind)}, expected "${kind}"`, { kind, actual: o.kind });
  if (typeof o.name !== 'string') throw new InvalidArgumentError('statistics JSON: "name" must be a string', { kind });
  for (const f of ['fanOut', 'fanIn', 'retainSamples', 'seed']) {
    if (!Number.isSafeInteger(o[f])) throw new InvalidArgumentError(`statistics JSON "${o.name}": field "${f}" must be an integer, got ${JSON.stringify(o[f])}`, { kind, field: f });
  }
  return o as unknown as StatisticsJSON;
}
