import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import '@gradmax/strategies/register';
import { RELU1, collectStatistics, findGrowthSites, grow, setupBackend, toCoreSite } from '@gradmax/tfjs';
import { oneHotTargets, outputOf, randomTensor } from './helpers.js';

function mlp(): tfl.LayersModel {
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({ units: 6, inputShape: [5], activation: RELU1, name: 'h1' }),
      tfl.layers.dense({ units: 4, activation: RELU1, name: 'h2' }),
      tfl.layers.dense({ units: 3, activation: 'softmax', name: 'out' }),
    ],
  });
  model.compile({ optimizer: tf.train.sgd(0.1), loss: 'categoricalCrossentropy' });
  return model;
}

describe('dense growth', () => {
  beforeAll(async () => {
    await setupBackend('cpu', { log: false });
  });

  it('finds Dense→Dense sites and names them after their layers', () => {
    const model = mlp();
    const scan = findGrowthSites(model);
    expect(scan.sites.map((s) => s.name)).toEqual(['h1->h2', 'h2->out']);
    expect(scan.notGrowable).toEqual([expect.objectContaining({ layer: 'out' })]);
    expect(scan.sites[0]!.activation).toEqual({ name: 'relu1', f0: 0, df0: 1 });
    model.dispose();
  });

  it('GradMax preserves the function and the new incoming gradient equals f\'(0)·ΩᵀM', () => {
    const model = mlp();
    const xs = randomTensor([16, 5], 1);
    const ys = oneHotTargets(16, 3, 2);
    const before = outputOf(model, xs);
    const site = findGrowthSites(model).sites[0]!;
    const stats = collectStatistics(model, [site], { xs, ys }).get(site.name)!.snapshot();
    const { report } = grow(model, { site: 'h1->h2', units: 2, strategy: 'gradmax', batch: { xs, ys }, seed: 3 });
    expect(report.widthAfter).toBe(8);
    const after = outputOf(model, xs);
    for (let i = 0; i < before.length; i++) expect(Math.abs(after[i]! - before[i]!)).toBeLessThan(1e-5);
    // autodiff gradient of the mean loss with respect to the new incoming weights
    const kernel = model.getLayer('h1').weights[0]!;
    const grads = tf.tidy(() => {
      const { grads } = tf.variableGrads(() => tf.mean(tfl.metrics.categoricalCrossentropy(ys, model.predict(xs) as tf.Tensor)) as tf.Scalar, [kernel.read() as tf.Variable]);
      return Object.values(grads)[0]!.arraySync() as number[][];
    });
    const grown = toCoreSite(model, findGrowthSites(model).sites[0]!);
    for (let j = 0; j < 2; j++) {
      let num = 0;
      let den = 0;
      for (let i = 0; i < 5; i++) {
        let pred = 0;
        for (let o = 0; o < 4; o++) pred += grown.outgoing.get(o, 6 + j) * stats.moment.get(o, i);
        num += (grads[i]![6 + j]! - pred) ** 2;
        den += pred ** 2;
      }
      expect(Math.sqrt(num / den)).toBeLessThan(1e-4);
    }
    model.dispose();
    tf.dispose([xs, ys]);
  });
});
