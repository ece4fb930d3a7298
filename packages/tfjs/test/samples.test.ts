import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { collectStatistics, findGrowthSites, setupBackend } from '@gradmax/tfjs';
import { oneHotTargets, randomTensor } from './helpers.js';
import { cnnWithBnPool, cnnWithDepthwise, cnnWithGlobalPool } from './models.js';

describe('retained samples of conv sites (also through pooling / depthwise / global pooling)', () => {
  beforeAll(async () => {
    await setupBackend('cpu', { log: false });
  });

  it('with every row retained, weight · Σ gᵀh equals the moment; count is the number of examples', () => {
    for (const [build, shape, classes] of [[cnnWithBnPool, [8, 8, 2], 3], [cnnWithDepthwise, [7, 7, 2], 2], [() => cnnWithGlobalPool(true), [6, 6, 2], 3]] as const) {
      const model = build();
      const xs = randomTensor([3, ...shape], 1);
      const ys = oneHotTargets(3, classes, 2);
      const loss = (yt: tf.Tensor, yp: tf.Tensor) => (classes === 2 ? tf.losses.softmaxCrossEntropy(yt, yp) : tf.mean(tf.sum(tf.mul(yt, tf.neg(tf.log(tf.add(yp, 1e-7)))), -1)));
      for (const site of findGrowthSites(model).sites) {
        const stats = collectStatistics(model, [site], { xs, ys }, { loss, retainSamples: 100000 }).get(site.name)!.snapshot();
        expect(stats.count).toBe(3);
        const { h, g, weight } = stats.samples!;
        const m = stats.moment;
        let err = 0;
        let scale = 0;
        for (let o = 0; o < m.rows; o++) {
          for (let i = 0; i < m.cols; i++) {
            let sum = 0;
            for (let r = 0; r < h.rows; r++) sum += g.get(r, o) * h.get(r, i);
            err = Math.max(err, Math.abs(weight * sum - m.get(o, i)));
            scale = Math.max(scale, Math.abs(m.get(o, i)));
          }
        }
        expect(scale).toBeGreaterThan(0);
        expect(err / scale).toBeLessThan(1e-5);
      }
      model.dispose();
      tf.dispose([xs, ys]);
    }
  });
});
