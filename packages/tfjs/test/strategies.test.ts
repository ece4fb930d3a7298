import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import '@gradmax/strategies/register';
import { listStrategies } from '@gradmax/core';
import { findGrowthSites, grow, setupBackend } from '@gradmax/tfjs';
import { oneHotTargets, outputOf, randomTensor } from './helpers.js';
import { mlpWithBn, residual } from './models.js';

describe('every registered strategy runs through grow()', () => {
  beforeAll(async () => {
    await setupBackend('cpu', { log: false });
  });

  it('registers the full catalogue', () => {
    expect(listStrategies()).toEqual(expect.arrayContaining(['gradmax', 'gradmaxOpt', 'random', 'randomOutgoingZero', 'allZero', 'firefly', 'net2net', 'north', 'tiny']));
  });

  for (const strategy of ['firefly', 'tiny', 'gradmax', 'net2net']) {
    it(`${strategy}: dense site and conv site (through BatchNorm), outputs finite, report filled`, () => {
      for (const [build, input, site, loss] of [
        [mlpWithBn, [5], 'h1->h2', 'categoricalCrossentropy'],
        [residual, [6, 6, 2], 'a->b', (yt: tf.Tensor, yp: tf.Tensor) => tf.losses.softmaxCrossEntropy(yt, yp)],
      ] as const) {
        const model = build();
        const classes = model.outputs[0]!.shape[1] as number;
        const xs = randomTensor([8, ...input], 1);
        const ys = oneHotTargets(8, classes, 2);
        const before = findGrowthSites(model).sites.find((s) => s.name === site)!.units;
        const { report } = grow(model, { site, units: 2, strategy, batch: { xs, ys }, loss, seed: 3 });
        expect(report.strategy).toBe(strategy);
        expect(report.widthAfter).toBe(before + 2);
        expect(report.strategyReport.site).toBe(site);
        expect(outputOf(model, xs).every(Number.isFinite)).toBe(true);
        model.dispose();
        tf.dispose([xs, ys]);
      }
    });
  }
});
