/**
 * Per-strategy behaviour (norms, copies, options) and typed errors.
 */
import { describe, expect, it } from 'vitest';
import { GradmaxError, InvalidArgumentError, Matrix, MissingStatisticError, Rng, UnsupportedError } from '@gradmax/core';
import type { GrowthRequest, GrowthStrategy } from '@gradmax/core';
import { allZero, firefly, gradmax, gradmaxOpt, net2net, north, random, randomOutgoingZero, strategyCatalog, tiny } from '@gradmax/strategies';
import { convFixture, denseFixture, maxAbsDiff, type Fixture } from './fixtures.js';

const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));
const meanOf = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

function req(f: Fixture, count: number, seed = 4): GrowthRequest {
  return { site: f.site, count, statistics: f.statistics, rng: new Rng(seed) };
}

describe('random', () => {
  const f = convFixture();
  it('gives every new outgoing vector the GradMax magnitude c, with zero incoming weights and biases', () => {
    const meanOut = meanOf(Array.from({ length: f.site.units }, (_, j) => norm(f.site.outgoing.col(j))));
    const units = random().grow(req(f, 3));
    for (let j = 0; j < 3; j++) expect(norm(units.outgoing.col(j))).toBeCloseTo(0.5 * meanOut, 12);
    expect(units.incoming.data.every((v) => v === 0)).toBe(true);
    expect(units.incomingBias.every((v) => v === 0)).toBe(true);
    const fixed = random({ scaleMethod: 'fixed', scale: 2, distribution: 'uniformPositive' }).grow(req(f, 3));
    for (let j = 0; j < 3; j++) expect(norm(fixed.outgoing.col(j))).toBeCloseTo(2, 12);
    expect(fixed.outgoing.data.every((v) => v >= 0)).toBe(true);
    expect(units.outgoing.data.some((v) => v < 0)).toBe(true);
  });
  it('notes sites where f(0) ≠ 0 (zero incoming weights do not preserve the function there)', () => {
    const site = { ...f.site, activation: { name: 'sigmoid', f0: 0.5, df0: 0.25 } };
    const units = random().grow({ site, count: 1, rng: new Rng(1) });
    expect(units.report.notes.join(' ')).toMatch(/do NOT preserve/);
  });
});

describe('randomOutgoingZero', () => {
  it('gives every new incoming vector norm scale × mean incoming norm and zero outgoing weights', () => {
    const f = denseFixture();
    const meanIn = meanOf(Array.from({ length: f.site.units }, (_, j) => norm(f.site.incoming.row(j))));
    const units = randomOutgoingZero({ scale: 0.7 }).grow(req(f, 2));
    for (let i = 0; i < 2; i++) expect(norm(units.incoming.row(i))).toBeCloseTo(0.7 * meanIn, 12);
    expect(units.outgoing.data.every((v) => v === 0)).toBe(true);
  });
});

describe('allZero', () => {
  it('sets every new weight to zero and every new bias to the option', () => {
    const units = allZero({ bias: 0.25 }).grow(req(denseFixture(), 2));
    expect(Array.from(units.incomingBias)).toEqual([0.25, 0.25]);
    expect(units.incoming.data.every((v) => v === 0) && units.outgoing.data.every((v) => v === 0)).toBe(true);
  });
  it('the bias gives the new outgoing weights a gradient (the point of the variant)', () => {
    const f = denseFixture();
    const grown = (f.net as any).grow(allZero().grow(req(f, 1)));
    const grads = grown.gradients(f.x, f.target);
    const n1 = grown.units;
    const col = Array.from({ length: 5 }, (_, o) => grads.w2.get(o, n1 - 1));
    expect(norm(col)).toBeGreaterThan(1e-3);
  });
  it('refuses a layer without a bias', () => {
    const f = denseFixture();
    const site = { ...f.site, incomingBias: undefined };
    expect(() => allZero().grow({ site, count: 1, rng: new Rng(1) })).toThrow(UnsupportedError);
  });
});

describe('net2net', () => {
  const f = denseFixture();
  it('copies incoming weights and biases and divides outgoing weights among the copies', () => {
    const units = net2net({ select: 'norm' }).grow(req(f, 5));
    const src = Array.from(units.sourceUnits!);
    // 'norm' order: largest ‖incoming‖·‖outgoing‖ first, cycling over the 4 units.
    const score = Array.from({ length: 4 }, (_, j) => norm(f.site.incoming.row(j)) * norm(f.site.outgoing.col(j)));
    const order = [0, 1, 2, 3].sort((a, b) => score[b]! - score[a]!);
    expect(src).toEqual([order[0], order[1], order[2], order[3], order[0]]);
    const replicas = [1, 1, 1, 1];
    for (const s of src) replicas[s]!++;
    expect(Array.from(units.existingOutgoingScale!)).toEqual(replicas.map((r) => 1 / r));
    src.forEach((s, i) => {
      expect(Array.from(units.incoming.row(i))).toEqual(Array.from(f.site.incoming.row(s)));
      expect(units.incomingBias[i]).toBe(f.site.incomingBias![s]);
      expect(maxAbsDiff(units.outgoing.col(i), f.site.outgoing.col(s).map((v) => v / replicas[s]!))).toBe(0);
    });
  });
  it('declares functionPreserving from its noise option', () => {
    expect(net2net().functionPreserving).toBe(true);
    expect(net2net({ noise: 0.01 }).functionPreserving).toBe(false);
  });
  it('noise perturbs only the copies incoming weights', () => {
    const plain = net2net().grow(req(f, 2, 9));
    const noisy = net2net({ noise: 0.1 }).grow(req(f, 2, 9));
    expect(Array.from(noisy.sourceUnits!)).toEqual(Array.from(plain.sourceUnits!));
    expect(maxAbsDiff(noisy.incoming.data, plain.incoming.data)).toBeGreaterThan(0);
    expect(maxAbsDiff(noisy.outgoing.data, plain.outgoing.data)).toBe(0);
  });
});

describe('typed errors', () => {
  const f = denseFixture();
  const everyStrategy: [string, () => GrowthStrategy][] = strategyCatalog.map((e) => [e.name, () => e.factory()]);

  it.each(everyStrategy)('%s refuses a bad number of new units', (_name, make) => {
    for (const count of [0, -1, 1.5, Number.NaN]) {
      expect(() => make().grow({ ...req(f, 1), count })).toThrow(InvalidArgumentError);
    }
  });

  it.each(everyStrategy.filter(([name]) => ['gradmax', 'gradmaxOpt', 'firefly', 'north', 'tiny'].includes(name)))('%s names the missing statistic', (name, make) => {
    const s = make();
    const err = (() => {
      try {
        s.grow({ site: f.site, count: 1, rng: new Rng(1) });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(MissingStatisticError);
    expect((err as GradmaxError).details).toMatchObject({ strategy: name, site: f.site.name });
    if (s.needs.samples) {
      const noSamples = { moment: f.statistics.moment, count: f.statistics.count };
      expect(() => s.grow({ site: f.site, count: 1, statistics: noSamples, rng: new Rng(1) })).toThrow(MissingStatisticError);
    }
  });

  it('rejects bad options when the strategy is created', () => {
    expect(() => firefly({ epsilon: 0 })).toThrow(InvalidArgumentError);
    expect(() => firefly({ steps: -1 })).toThrow(InvalidArgumentError);
    expect(() => firefly({ poolSize: 0 })).toThrow(InvalidArgumentError);
    expect(() => random({ distribution: 'cauchy' as any })).toThrow(InvalidArgumentError);
    expect(() => random({ scale: -1 })).toThrow(InvalidArgumentError);
    expect(() => random({ scaleMethod: 'median' as any })).toThrow(InvalidArgumentError);
    expect(() => north({ scaleMethod: 'median' as any })).toThrow(InvalidArgumentError);
    expect(() => randomOutgoingZero({ scale: Number.NaN })).toThrow(InvalidArgumentError);
    expect(() => net2net({ select: 'best' as any })).toThrow(InvalidArgumentError);
    expect(() => net2net({ noise: -0.1 })).toThrow(InvalidArgumentError);
    expect(() => north({ tolerance: 0 })).toThrow(InvalidArgumentError);
    expect(() => tiny({ maxEvaluations: 2 })).toThrow(InvalidArgumentError);
    expect(() => allZero({ bias: Number.POSITIVE_INFINITY })).toThrow(InvalidArgumentError);
  });

  it('firefly refuses a pool smaller than the number of new units', () => {
    expect(() => firefly({ poolSize: 2 }).grow(req(f, 3))).toThrow(/poolSize 2/);
  });

  it('strategies that evaluate the activation refuse unknown ones, TINY refuses f\'(0) = 0', () => {
    const odd = { ...f.site, activation: { name: 'swishy', f0: 0, df0: 1 } };
    for (const s of [firefly(), tiny()]) expect(() => s.grow({ ...req(f, 1), site: odd })).toThrow(UnsupportedError);
    const relu = { ...f.site, activation: { name: 'relu', f0: 0, df0: 0 } };
    expect(() => tiny().grow({ ...req(f, 1), site: relu })).toThrow(UnsupportedError);
    expect(() => gradmaxOpt().grow({ ...req(f, 1), site: relu })).toThrow(UnsupportedError);
  });

  it('meanNorm needs non-zero existing weights', () => {
    const zeroIn = { ...f.site, incoming: new Matrix(f.site.units, f.site.fanIn) };
    expect(() => randomOutgoingZero().grow({ ...req(f, 1), site: zeroIn })).toThrow(InvalidArgumentError);
    expect(() => north().grow({ ...req(f, 1), site: zeroIn })).toThrow(InvalidArgumentError);
    expect(() => firefly().grow({ ...req(f, 1), site: zeroIn })).toThrow(InvalidArgumentError);
    expect(() => north({ scaleMethod: 'fixed' }).grow({ ...req(f, 1), site: zeroIn })).not.toThrow();
  });

  it('gradmax is the core strategy, re-exported', () => {
    expect(gradmax().name).toBe('gradmax');
  });
});

describe('activations by name', () => {
  const f = denseFixture('relu1');
  it('accepts adapter spellings and composites, and checks the declared f(0)', () => {
    for (const name of ['Relu', 'relu1', 'relu∘relu6', 'Relu+Tanh', 'linear', 'leakyReLU(0.3)', 'elu(1)', 'swish', 'selu∘tanh']) {
      const site = { ...f.site, activation: { name, f0: 0, df0: 1 } };
      expect(() => firefly().grow({ ...req(f, 1), site }), name).not.toThrow();
    }
    const mislabelled = { ...f.site, activation: { name: 'sigmoid', f0: 0, df0: 0.25 } };
    expect(() => firefly().grow({ ...req(f, 1), site: mislabelled })).toThrow(UnsupportedError);
    const unknownPart = { ...f.site, activation: { name: 'relu∘mish', f0: 0, df0: 1 } };
    expect(() => tiny().grow({ ...req(f, 1), site: unknownPart })).toThrow(/mish/);
    const noSlope = { ...f.site, activation: { name: 'LeakyRelu', f0: 0, df0: 1 } };
    expect(() => firefly().grow({ ...req(f, 1), site: noSlope })).toThrow(UnsupportedError);
  });
});
