import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import '@gradmax/strategies/register';
import { strategyCatalog } from '@gradmax/strategies';
import { findGrowthSites, grow, setupBackend } from '@gradmax/tfjs';
import { maxAbsDiff, oneHotTargets, outputOf, randomTensor, perturbBatchNorm } from './helpers.js';
import { cnnWithBnPool, cnnWithDepthwise, cnnWithGlobalPool, mlpWithBn, residual } from './models.js';

const preserving = strategyCatalog.filter((e) => e.functionPreserving).map((e) => e.name);

type Loss = string | ((yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor);
const logits: Loss = (yTrue, yPred) => tf.losses.softmaxCrossEntropy(yTrue, yPred);

const cases: { name: string; build: () => tfl.LayersModel; input: number[]; classes: number; sites: string[]; loss?: Loss }[] = [
  { name: 'MLP with BatchNorm', build: mlpWithBn, input: [5], classes: 3, sites: ['h1->h2', 'h2->out'] },
  { name: 'CNN with BatchNorm, max pooling and a conv→flatten→dense head', build: cnnWithBnPool, input: [8, 8, 2], classes: 3, sites: ['c1->c2', 'c2->out'] },
  { name: 'CNN with depthwise conv and average pooling', build: cnnWithDepthwise, input: [7, 7, 2], classes: 2, sites: ['c1->c2', 'c2->out'], loss: logits },
  { name: 'CNN with a global-average-pooling head', build: () => cnnWithGlobalPool(false, false), input: [6, 6, 2], classes: 3, sites: ['c1->c2', 'c2->out'] },
  { name: 'residual block', build: residual, input: [6, 6, 2], classes: 2, sites: ['a->b'], loss: logits },
];


describe('function preservation (float32, 1e-5)', () => {
  beforeAll(async () => {
    await setupBackend('cpu', { log: false });
  });

  it('covers the function-preserving strategies of the catalogue', () => {
    expect(preserving).toEqual(expect.arrayContaining(['gradmax', 'gradmaxOpt', 'random', 'randomOutgoingZero', 'allZero', 'net2net', 'north']));
  });

  for (const c of cases) {
    describe(c.name, () => {
      for (const strategy of preserving) {
        it(`${strategy}: every site, inference and training mode`, () => {
          const model = c.build();
          perturbBatchNorm(model, 11);
          expect(findGrowthSites(model).sites.map((s) => s.name)).toEqual(c.sites);
          const xs = randomTensor([6, ...c.input], 5);
          const ys = oneHotTargets(6, c.classes, 6);
          const infer = outputOf(model, xs);
          const train = outputOf(model, xs, true);
          const options = strategy === 'gradmaxOpt' ? { steps: 20 } : undefined;
          c.sites.forEach((site, i) => {
            const { report } = grow(model, { site, units: 2, strategy, batch: { xs, ys }, loss: c.loss ?? 'categoricalCrossentropy', seed: 10 + i, ...(options ? { strategyOptions: options } : {}) });
            expect(report.unitsAdded).toBe(2);
          });
          const widths = findGrowthSites(model).sites.map((s) => s.units);
          const start = c.build === residual ? [4] : c.build === mlpWithBn ? [6, 5] : c.build === cnnWithBnPool ? [4, 3] : c.build === cnnWithDepthwise ? [3, 4] : [4, 3];
          expect(widths).toEqual(start.map((w) => w + 2));
          expect(maxAbsDiff(outputOf(model, xs), infer)).toBeLessThan(1e-5);
          expect(maxAbsDiff(outputOf(model, xs, true), train)).toBeLessThan(1e-5);
          model.dispose();
          tf.dispose([xs, ys]);
        });
      }
    });
  }
});
