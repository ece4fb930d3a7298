import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, NonFiniteError, ShapeMismatchError } from '../errors.js';
import { Matrix } from '../matrix.js';
import { Rng } from '../rng.js';
import {
  naiveConv2dBackpropFilter,
  naiveConvGrowthMatrix,
  naiveDenseMoment,
  naiveTapScatter,
  randomTensor4,
  relativeError,
} from '../reference/index.js';
import type { PaddingSpec } from './index.js';
import { ConvStatistics, DenseStatistics, encodeFloat64Base64, makeConvPairGeometry, reservoirKey } from './index.js';

function randomMatrix(rows: number, cols: number, rng: Rng): Matrix {
  return new Matrix(rows, cols, rng.fillNormal(new Float64Array(rows * cols)));
}

function slice(m: Matrix, start: number, end: number): Matrix {
  return new Matrix(end - start, m.cols, m.data.slice(start * m.cols, end * m.cols));
}

/** Folds a list of accumulators with a random binary tree shape and random operand order. */
function mergeRandomly(parts: DenseStatistics[], rng: Rng): DenseStatistics {
  const pool = parts.slice();
  while (pool.length > 1) {
    const i = rng.int(pool.length);
    const a = pool.splice(i, 1)[0]!;
    const j = rng.int(pool.length);
    const b = pool.splice(j, 1)[0]!;
    pool.push(rng.uniform() < 0.5 ? a.merge(b) : b.merge(a));
  }
  return pool[0]!;
}

describe('DenseStatistics', () => {
  it('accumulates the mean of g hᵀ, in batches, from float32 or float64 inputs', () => {
    const rng = new Rng(1);
    const g = randomMatrix(13, 4, rng);
    const h = randomMatrix(13, 6, rng);
    const s = new DenseStatistics(4, 6);
    s.accumulate(slice(g, 0, 5), slice(h, 0, 5));
    s.accumulate({ rows: 8, cols: 4, data: Float32Array.from(g.data.subarray(20)) }, { rows: 8, cols: 6, data: h.data.subarray(30) });
    expect(s.count).toBe(13);
    // The float32 rows are rounded; compare against the reference on the same rounded values.
    const g32 = g.clone();
    g32.data.set(Float32Array.from(g.data.subarray(20)), 20);
    expect(relativeError(s.moment().data, naiveDenseMoment(g32, h).data)).toBeLessThan(1e-14);
    expect(s.snapshot().samples).toBeUndefined();
  });

  it('addSum matches accumulate', () => {
    const rng = new Rng(2);
    const g = randomMatrix(7, 3, rng);
    const h = randomMatrix(7, 2, rng);
    const a = new DenseStatistics(3, 2);
    a.accumulate(g, h);
    const b = new DenseStatistics(3, 2);
    const sum = naiveDenseMoment(g, h);
    for (let i = 0; i < sum.data.length; i++) sum.data[i] *= 7;
    b.addSum(sum, 7);
    expect(relativeError(a.moment().data, b.moment().data)).toBeLessThan(1e-14);
    expect(() => b.addSum(sum, 0)).toThrow(InvalidArgumentError);
    expect(() => b.addSum(new Matrix(2, 3), 1)).toThrow(ShapeMismatchError);
  });

  it('throws typed errors naming the statistic and both shapes', () => {
    const s = new DenseStatistics(3, 2, {}, 'site "fc1" statistics');
    const err = (() => {
      try {
        s.accumulate(new Matrix(4, 3), new Matrix(5, 2));
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ShapeMismatchError);
    expect(err!.message).toContain('fc1');
    expect(err!.message).toContain('[4, 3]');
    expect(err!.message).toContain('[5, 2]');
    expect(() => s.accumulate(new Matrix(2, 2), new Matrix(2, 2))).toThrow(ShapeMismatchError);
    const g = new Matrix(2, 3);
    g.data[4] = Number.NaN;
    expect(() => s.accumulate(g, new Matrix(2, 2))).toThrow(NonFiniteError);
    expect(() => s.accumulate(g, new Matrix(2, 2))).toThrow(/fc1.*gradients g/);
    const h = new Matrix(2, 2);
    h.data[1] = Number.POSITIVE_INFINITY;
    expect(() => s.accumulate(new Matrix(2, 3), h)).toThrow(/inputs h/);
    expect(s.count).toBe(0);
    expect(() => s.moment()).toThrow(InvalidArgumentError);
    expect(() => new DenseStatistics(0, 2)).toThrow(InvalidArgumentError);
    expect(() => new DenseStatistics(2, 2, { retainSamples: -1 })).toThrow(InvalidArgumentError);
    expect(() => new DenseStatistics(2, 2, { seed: 0.5 })).toThrow(InvalidArgumentError);
  });

  it('retains the rows with the smallest keys, and the full reservoir reproduces the moment', () => {
    const rng = new Rng(3);
    const g = randomMatrix(40, 3, rng);
    const h = randomMatrix(40, 2, rng);
    const s = new DenseStatistics(3, 2, { retainSamples: 6, seed: 77 });
    for (let i = 0; i < 40; i += 7) s.accumulate(slice(g, i, Math.min(40, i + 7)), slice(h, i, Math.min(40, i + 7)));
    // Brute force: the 6 row indices with the smallest keys.
    const order = Array.from({ length: 40 }, (_, i) => i).sort((a, b) => reservoirKey(77, a) - reservoirKey(77, b)).slice(0, 6);
    const snap = s.snapshot();
    expect(snap.samples!.g.toArray()).toEqual(order.map((i) => Array.from(g.row(i))));
    expect(snap.samples!.h.toArray()).toEqual(order.map((i) => Array.from(h.row(i))));
    expect(snap.samples!.weight).toBeCloseTo(1 / 6, 15);

    const all = new DenseStatistics(3, 2, { retainSamples: 100, seed: 5 });
    all.accumulate(g, h);
    const samples = all.snapshot().samples!;
    expect(samples.g.rows).toBe(40);
    expect(samples.weight).toBe(1 / 40);
    const est = naiveDenseMoment(samples.g, samples.h);
    expect(relativeError(est.data, all.moment().data)).toBeLessThan(1e-14);
  });

  it('merge is order-independent and associative; retained samples are identical whatever the order', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 30 }),
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 0, max: 12 }),
        fc.integer({ min: 0, max: 1000 }),
        fc.boolean(),
        (rows, chunkSizes, retain, seed, sharedSeed) => {
          const rng = new Rng(seed);
          const g = randomMatrix(rows, 3, rng);
          const h = randomMatrix(rows, 4, rng);
          // Split the rows into consecutive parts; each part is its own accumulator (a "worker").
          const parts: DenseStatistics[] = [];
          let start = 0;
          let c = 0;
          while (start < rows) {
            const end = Math.min(rows, start + chunkSizes[c++ % chunkSizes.length]!);
            const part = new DenseStatistics(3, 4, { retainSamples: retain, seed: sharedSeed ? 3 : 100 + parts.length });
            part.accumulate(slice(g, start, end), slice(h, start, end));
            parts.push(part);
            start = end;
          }
          const a = mergeRandomly(parts, new Rng(seed + 1)).snapshot();
          const b = mergeRandomly(parts, new Rng(seed + 2)).snapshot();
          expect(a.count).toBe(rows);
          expect(b.count).toBe(rows);
          expect(relativeError(a.moment.data, b.moment.data)).toBeLessThan(1e-14);
          expect(relativeError(a.moment.data, naiveDenseMoment(g, h).data)).toBeLessThan(1e-13);
          expect(a.samples?.g.toArray()).toEqual(b.samples?.g.toArray());
          expect(a.samples?.h.toArray()).toEqual(b.samples?.h.toArray());
          expect(a.samples?.weight).toBe(b.samples?.weight);
          expect(a.samples?.g.rows ?? 0).toBe(Math.min(retain, rows));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('is deterministic: same data and seed give identical JSON; inputs are not modified by merge', () => {
    const build = () => {
      const rng = new Rng(12);
      const s = new DenseStatistics(2, 3, { retainSamples: 4, seed: 9 });
      for (let i = 0; i < 3; i++) s.accumulate(randomMatrix(5, 2, rng), randomMatrix(5, 3, rng));
      return s;
    };
    expect(JSON.stringify(build())).toBe(JSON.stringify(build()));
    const a = build();
    const before = JSON.stringify(a);
    a.merge(build());
    expect(JSON.stringify(a)).toBe(before);
  });

  it('merge refuses incompatible accumulators', () => {
    const a = new DenseStatistics(2, 3);
    expect(() => a.merge(new DenseStatistics(3, 2))).toThrow(ShapeMismatchError);
    expect(() => a.merge(new DenseStatistics(2, 3, { retainSamples: 1 }))).toThrow(InvalidArgumentError);
    const geo = makeConvPairGeometry({ inChannels: 1, midChannels: 1, outChannels: 2, inputSize: 3, kernel1: 3, kernel2: 1 });
    expect(() => a.merge(new ConvStatistics(geo) as never)).toThrow(InvalidArgumentError);
  });

  it('JSON round trip is exact, including -0, subnormals and extremes', () => {
    const rng = new Rng(4);
    const s = new DenseStatistics(2, 3, { retainSamples: 3, seed: -17 }, 'fc "x"');
    const h = randomMatrix(5, 3, rng);
    h.data[0] = -0;
    h.data[1] = 5e-324;
    h.data[2] = 1.7976931348623157e308 / 1e10;
    s.accumulate(randomMatrix(5, 2, rng), h);
    s.addSum(new Matrix(2, 3, Float64Array.of(1 / 3, -2 / 7, 1e-300, 0, 3, -0)), 2);
    const text = JSON.stringify(s);
    const back = DenseStatistics.fromJSON(text);
    expect(JSON.stringify(back)).toBe(text);
    expect(back.name).toBe('fc "x"');
    expect(back.count).toBe(7);
    expect(Array.from(back.moment().data)).toEqual(Array.from(s.moment().data));
    expect(back.snapshot()).toEqual(s.snapshot());
    // The restored accumulator continues exactly like the original.
    const more = [randomMatrix(4, 2, rng), randomMatrix(4, 3, rng)] as const;
    s.accumulate(...more);
    back.accumulate(...more);
    expect(JSON.stringify(back)).toBe(JSON.stringify(s));
    // And the object form works too.
    expect(JSON.stringify(DenseStatistics.fromJSON(s.toJSON()))).toBe(JSON.stringify(s));
  });

  it('fromJSON validates and throws typed errors', () => {
    const s = new DenseStatistics(2, 2, { retainSamples: 2 });
    s.accumulate(new Matrix(3, 2, Float64Array.of(1, 2, 3, 4, 5, 6)), new Matrix(3, 2, Float64Array.of(1, 0, 0, 1, 1, 1)));
    const good = s.toJSON();
    const bad = (patch: Record<string, unknown>) => () => DenseStatistics.fromJSON({ ...good, ...patch });
    expect(() => DenseStatistics.fromJSON('{nope')).toThrow(InvalidArgumentError);
    expect(() => DenseStatistics.fromJSON(null)).toThrow(InvalidArgumentError);
    expect(bad({ version: 2 })).toThrow(/version/);
    expect(bad({ format: 'other' })).toThrow(/format/);
    expect(bad({ kind: 'conv' })).toThrow(/kind/);
    expect(bad({ fanIn: 3 })).toThrow(/expected 6/);
    expect(bad({ sum: good.sum.slice(4) })).toThrow(InvalidArgumentError);
    expect(bad({ sum: '!' + good.sum.slice(1) })).toThrow(/invalid base64/);
    expect(bad({ count: -1 })).toThrow(/count/);
    expect(bad({ samples: { ...good.samples, rows: 3 } })).toThrow(/samples.rows/);
    expect(bad({ sampledCount: 99 })).toThrow(/inconsistent/);
    expect(bad({ offeredRows: 1 })).toThrow(/inconsistent/);
    const withNaN = new DenseStatistics(2, 2);
    expect(() => DenseStatistics.fromJSON({ ...withNaN.toJSON(), count: 1, sum: encodeFloat64Base64([0, Number.NaN, 0, 0]) })).toThrow(NonFiniteError);
  });
});

describe('ConvStatistics', () => {
  const configs: [number, number, number, number, PaddingSpec, PaddingSpec, number][] = [
    [3, 3, 1, 1, 'same', 'same', 8],
    [3, 3, 2, 2, 'same', 'same', 8],
    [3, 3, 2, 1, 'valid', 'same', 9],
    [5, 3, 1, 2, 'same', 'valid', 9],
    [1, 5, 2, 2, 'valid', 'same', 10],
    [3, 1, 2, 1, 'same', 'valid', 7],
    [2, 4, 1, 2, [0, 1], 'same', 8],
  ];

  it.each(configs)('tap-gradient path equals the naive growth matrix (k1=%i k2=%i s1=%i s2=%i %s/%s, map %i)', (k1, k2, s1, s2, p1, p2, size) => {
    const rng = new Rng(k1 * 100 + k2 * 10 + s1 + s2);
    const geo = makeConvPairGeometry({ inChannels: 2, midChannels: 3, outChannels: 2, inputSize: [size, size - 1], kernel1: k1, stride1: s1, padding1: p1, kernel2: k2, stride2: s2, padding2: p2 });
    const B = 3;
    const x = randomTensor4([B, geo.inputSize[0], geo.inputSize[1], 2], rng);
    const g = randomTensor4([B, geo.outputSize[0], geo.outputSize[1], 2], rng);
    const tap = naiveConv2dBackpropFilter(x, naiveTapScatter(g, geo), geo.kernel1, { stride: geo.stride1, padding: geo.pad1 });
    const viaTap = new ConvStatistics(geo);
    viaTap.accumulateTapGradient(tap.data, B);
    const naive = naiveConvGrowthMatrix(x, g, geo);
    expect(relativeError(viaTap.moment().data, naive.data)).toBeLessThan(1e-14);
    // The naive accumulate path, with all rows retained: samples reproduce the moment too.
    const direct = new ConvStatistics(geo, { retainSamples: 1_000_000 });
    direct.accumulate(x, g);
    expect(relativeError(direct.moment().data, naive.data)).toBeLessThan(1e-14);
    const snap = direct.snapshot();
    expect(snap.samples!.weight).toBe(1 / B);
    const est = naiveDenseMoment(snap.samples!.g, snap.samples!.h);
    for (let i = 0; i < est.data.length; i++) est.data[i] *= snap.samples!.g.rows / B;
    expect(relativeError(est.data, naive.data)).toBeLessThan(1e-13);
    // Flat arrays with an explicit batch size give the same sums.
    const flat = new ConvStatistics(geo);
    flat.accumulate(x.data, g.data, B);
    expect(Array.from(flat.moment().data)).toEqual(Array.from(direct.moment().data));
  });

  it('validates inputs with typed errors', () => {
    const geo = makeConvPairGeometry({ inChannels: 2, midChannels: 3, outChannels: 2, inputSize: 5, kernel1: 3, kernel2: 3, padding2: 'same' });
    const s = new ConvStatistics(geo, {}, 'conv1->conv2');
    expect(() => s.accumulateTapGradient(new Float64Array(5), 1)).toThrow(ShapeMismatchError);
    expect(() => s.accumulateTapGradient(new Float64Array(3 * 3 * 2 * 18), 0)).toThrow(InvalidArgumentError);
    const bad = new Float64Array(3 * 3 * 2 * 18);
    bad[7] = Number.NaN;
    expect(() => s.accumulateTapGradient(bad, 1)).toThrow(NonFiniteError);
    const rng = new Rng(1);
    const x = randomTensor4([2, 5, 5, 2], rng);
    const g = randomTensor4([2, 3, 3, 2], rng);
    expect(() => s.accumulate(x, randomTensor4([2, 4, 3, 2], rng))).toThrow(ShapeMismatchError);
    expect(() => s.accumulate(x, randomTensor4([1, 3, 3, 2], rng))).toThrow(/batch sizes/);
    expect(() => s.accumulate(x.data, g.data)).toThrow(InvalidArgumentError);
    g.data[3] = Number.NEGATIVE_INFINITY;
    expect(() => s.accumulate(x, g)).toThrow(/conv1->conv2: gradient g/);
    expect(() => new ConvStatistics({ ...geo, midSize: [2, 2] })).toThrow(ShapeMismatchError);
  });

  it('merge is order-independent; JSON round trip is exact and keeps the geometry', () => {
    const geo = makeConvPairGeometry({ inChannels: 2, midChannels: 3, outChannels: 2, inputSize: 6, kernel1: 3, stride1: 2, padding1: 'same', kernel2: 3, padding2: 'same' });
    const rng = new Rng(6);
    const parts = [0, 1, 2, 3].map((i) => {
      const s = new ConvStatistics(geo, { retainSamples: 10, seed: i % 2 });
      s.accumulate(randomTensor4([2, 6, 6, 2], rng), randomTensor4([2, 3, 3, 2], rng));
      return s;
    });
    const [a, b, c, d] = parts as [ConvStatistics, ConvStatistics, ConvStatistics, ConvStatistics];
    const m1 = a.merge(b).merge(c.merge(d)).snapshot();
    const m2 = d.merge(b.merge(a)).merge(c).snapshot();
    expect(m1.count).toBe(8);
    expect(relativeError(m1.moment.data, m2.moment.data)).toBeLessThan(1e-14);
    expect(m1.samples).toEqual(m2.samples);
    const merged = a.merge(b);
    const back = ConvStatistics.fromJSON(JSON.stringify(merged));
    expect(JSON.stringify(back)).toBe(JSON.stringify(merged));
    expect(back.geometry).toEqual(geo);
    expect(() => ConvStatistics.fromJSON({ ...merged.toJSON(), geometry: undefined })).toThrow(InvalidArgumentError);
    expect(() => ConvStatistics.fromJSON({ ...merged.toJSON(), fanOut: 3 })).toThrow(ShapeMismatchError);
    expect(() => DenseStatistics.fromJSON(merged.toJSON())).toThrow(/kind/);
    const other = new ConvStatistics(makeConvPairGeometry({ inChannels: 2, midChannels: 3, outChannels: 2, inputSize: 6, kernel1: 3, stride1: 2, padding1: 'valid', kernel2: 3, padding2: 'same' }), { retainSamples: 10 });
    expect(() => a.merge(other)).toThrow(/geometries differ/);
  });
});
