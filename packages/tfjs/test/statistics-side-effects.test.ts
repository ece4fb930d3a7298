import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { collectStatistics, findGrowthSites, setupBackend } from '@gradmax/tfjs';
import { oneHotTargets, randomTensor } from './helpers.js';
import { cnnWithBnPool } from './models.js';

describe('collectStatistics has no side effects', () => {
  beforeAll(async () => {
    await setupBackend('cpu', { log: false });
  });

  it('weights, BatchNorm moving statistics, optimizer slots and counters are unchanged; no tensors leak', async () => {
    const model = cnnWithBnPool();
    const optimizer = tf.train.adam(0.01);
    model.compile({ optimizer, loss: 'categoricalCrossentropy' });
    const xs = randomTensor([6, 8, 8, 2], 1);
    const ys = oneHotTargets(6, 3, 2);
    await model.trainOnBatch(xs, ys);
    const snapshot = () => ({
      weights: model.weights.map((w) => Array.from(w.read().dataSync())),
      slots: (optimizer as unknown as { accumulatedFirstMoment: { variable: tf.Variable }[]; accumulatedSecondMoment: { variable: tf.Variable }[] }).accumulatedFirstMoment
        .concat((optimizer as unknown as { accumulatedSecondMoment: { variable: tf.Variable }[] }).accumulatedSecondMoment)
        .map((s) => Array.from(s.variable.dataSync())),
      iterations: (optimizer as unknown as { iterations: number }).iterations,
      beta1: (optimizer as unknown as { accBeta1: tf.Variable }).accBeta1.dataSync()[0],
    });
    const before = snapshot();
    expect(before.weights.some((w, i) => model.weights[i]!.originalName.endsWith('moving_mean') && w.some((v) => v !== 0))).toBe(true);
    const tensors = tf.memory().numTensors;
    const stats = collectStatistics(model, findGrowthSites(model).sites, { xs, ys });
    expect(tf.memory().numTensors).toBe(tensors);
    expect([...stats.values()].every((acc) => acc.count === 6)).toBe(true);
    expect(snapshot()).toEqual(before);
    // Accumulating a second batch into the same accumulators: counts add, the moment is the mean over both.
    const first = [...stats.values()].map((acc) => Array.from(acc.snapshot().moment.data));
    collectStatistics(model, findGrowthSites(model).sites, { xs, ys }, { into: stats });
    [...stats.values()].forEach((acc, i) => {
      expect(acc.count).toBe(12);
      const m = acc.snapshot().moment.data;
      for (let j = 0; j < m.length; j++) expect(m[j]!).toBeCloseTo(first[i]![j]!, 6);
    });
    model.dispose();
    tf.dispose([xs, ys]);
  });
});
