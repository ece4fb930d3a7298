import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import '@gradmax/strategies/register';
import { InvalidArgumentError, NonFiniteError, ShapeMismatchError, UnknownNameError, UnsupportedError, MissingStatisticError } from '@gradmax/core';
import { collectStatistics, findGrowthSites, grow, setupBackend } from '@gradmax/tfjs';
import { oneHotTargets, randomTensor } from './helpers.js';
import { mlpWithBn, residual } from './models.js';

describe('bad input gives typed errors naming what and where', () => {
  beforeAll(async () => {
    await setupBackend('cpu', { log: false });
  });

  it('unknown site (with the known ones listed), non-growable layer (with the reason)', () => {
    const model = mlpWithBn();
    expect(() => grow(model, { site: 'nope->h2', units: 1, strategy: 'random' })).toThrow(UnknownNameError);
    expect(() => grow(model, { site: 'nope->h2', units: 1, strategy: 'random' })).toThrow(/h1->h2, h2->out/);
    const res = residual();
    expect(() => grow(res, { site: 'out->x', units: 1, strategy: 'random' })).toThrow(UnsupportedError);
    expect(() => grow(res, { site: 'out->x', units: 1, strategy: 'random' })).toThrow(/layer "out" its output is a model output/);
    // A layer that grows as part of a channel group: the error names the group.
    expect(() => grow(res, { site: 'b->out', units: 1, strategy: 'random' })).toThrow(InvalidArgumentError);
    expect(() => grow(res, { site: 'b->out', units: 1, strategy: 'random' })).toThrow(/channel group "stem\+b->a\+out"/);
    model.dispose();
    res.dispose();
  });

  it('k ≤ 0 or not an integer', () => {
    const model = mlpWithBn();
    for (const units of [0, -2, 1.5]) {
      expect(() => grow(model, { site: 'h1->h2', units, strategy: 'random' })).toThrow(InvalidArgumentError);
    }
    model.dispose();
  });

  it('unknown strategy and unknown loss', () => {
    const model = mlpWithBn();
    const xs = randomTensor([4, 5], 1);
    const ys = oneHotTargets(4, 3, 1);
    expect(() => grow(model, { site: 'h1->h2', units: 1, strategy: 'nope' })).toThrow(UnknownNameError);
    expect(() => grow(model, { site: 'h1->h2', units: 1, strategy: 'gradmax', batch: { xs, ys }, loss: 'nope' })).toThrow(UnknownNameError);
    model.dispose();
    tf.dispose([xs, ys]);
  });

  it('a disposed tensor in the batch is a typed error naming it (issue 15 item 16)', () => {
    const model = mlpWithBn();
    const xs = randomTensor([4, 5], 1);
    const ys = oneHotTargets(4, 3, 1);
    ys.dispose();
    expect(() => grow(model, { site: 'h1->h2', units: 1, strategy: 'gradmax', batch: { xs, ys } })).toThrow(InvalidArgumentError);
    expect(() => grow(model, { site: 'h1->h2', units: 1, strategy: 'gradmax', batch: { xs, ys } })).toThrow(/grow batch targets ys has been disposed/);
    model.dispose();
    xs.dispose();
  });

  it('a strategy that needs statistics without a batch', () => {
    const model = mlpWithBn();
    expect(() => grow(model, { site: 'h1->h2', units: 1, strategy: 'gradmax' })).toThrow(MissingStatisticError);
    model.dispose();
  });

  it('non-finite and shape-mismatched batches, before anything changes', () => {
    const model = mlpWithBn();
    const site = findGrowthSites(model).sites[0]!;
    const good = randomTensor([4, 5], 1);
    const ys = oneHotTargets(4, 3, 1);
    const nan = tf.tensor2d([[0, 1, 2, 3, 4], [0, 1, NaN, 3, 4], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]]);
    const inf = tf.tensor2d([[0, 1, 2, 3, Infinity], [0, 1, 2, 3, 4], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]]);
    const wide = randomTensor([4, 6], 2);
    const fewTargets = oneHotTargets(3, 3, 1);
    const wrongClasses = oneHotTargets(4, 4, 1);
    const loss = 'categoricalCrossentropy';
    expect(() => collectStatistics(model, [site], { xs: nan, ys }, { loss })).toThrow(NonFiniteError);
    expect(() => collectStatistics(model, [site], { xs: nan, ys }, { loss })).toThrow(/flat index 7/);
    expect(() => grow(model, { site: site.name, units: 1, strategy: 'gradmax', batch: { xs: inf, ys }, loss })).toThrow(NonFiniteError);
    expect(() => grow(model, { site: site.name, units: 1, strategy: 'gradmax', batch: { xs: wide, ys }, loss })).toThrow(ShapeMismatchError);
    expect(() => grow(model, { site: site.name, units: 1, strategy: 'gradmax', batch: { xs: good, ys: fewTargets }, loss })).toThrow(ShapeMismatchError);
    expect(() => grow(model, { site: site.name, units: 1, strategy: 'gradmax', batch: { xs: good, ys: wrongClasses }, loss })).toThrow(ShapeMismatchError);
    expect(() => grow(model, { site: site.name, units: 1, strategy: 'gradmax', batch: { xs: good } as never, loss })).toThrow(InvalidArgumentError);
    expect(findGrowthSites(model).sites[0]!.units).toBe(6);
    model.dispose();
    tf.dispose([good, ys, nan, inf, wide, fewTargets, wrongClasses]);
  });

  it('an uncompiled model without a loss', () => {
    const model = mlpWithBn();
    const xs = randomTensor([4, 5], 1);
    const ys = oneHotTargets(4, 3, 1);
    expect(() => grow(model, { site: 'h1->h2', units: 1, strategy: 'gradmax', batch: { xs, ys } })).toThrow(/no loss given/);
    model.dispose();
    tf.dispose([xs, ys]);
  });
});
