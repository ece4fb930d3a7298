import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import '@gradmax/strategies/register';
import { allAtOnce, roundRobin } from '@gradmax/core';
import { GrowthController, RELU1, findGrowthSites, growthCallback, scheduledSites, setupBackend } from '@gradmax/tfjs';
import { oneHotTargets, randomTensor } from './helpers.js';

function mlp(): tfl.LayersModel {
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({ kernelInitializer: tfl.initializers.glorotUniform({ seed: 101 }), units: 4, inputShape: [6], activation: RELU1, name: 'h1' }),
      tfl.layers.dense({ kernelInitializer: tfl.initializers.glorotUniform({ seed: 102 }), units: 4, activation: RELU1, name: 'h2' }),
      tfl.layers.dense({ kernelInitializer: tfl.initializers.glorotUniform({ seed: 103 }), units: 3, activation: 'softmax', name: 'out' }),
    ],
  });
  model.compile({ optimizer: tf.train.momentum(0.05, 0.9), loss: 'categoricalCrossentropy' });
  return model;
}

describe('GrowthController and growthCallback', () => {
  beforeAll(async () => {
    await setupBackend('cpu', { log: false });
  });

  it('runs an all-at-once schedule in a custom loop', async () => {
    const model = mlp();
    const xs = randomTensor([16, 6], 1);
    const ys = oneHotTargets(16, 3, 2);
    const schedule = allAtOnce({ sites: scheduledSites(model), start: 2, every: 2, times: 2, amount: { fraction: 0.5 } });
    const events: number[] = [];
    const controller = new GrowthController(model, { schedule, strategy: 'gradmax', growBatch: { xs, ys }, onGrow: (e) => events.push(e.step) });
    const losses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const { loss, grown } = await controller.step({ xs, ys });
      losses.push(loss as number);
      expect(grown.length).toBe(i === 2 || i === 4 ? 2 : 0);
    }
    expect(events).toEqual([2, 4]);
    expect(controller.stepCount).toBe(6);
    expect(findGrowthSites(model).sites.map((s) => s.units)).toEqual([8, 8]);
    expect(controller.history.map((r) => r.site)).toEqual(['h1->h2', 'h2->out', 'h1->h2', 'h2->out']);
    expect(losses.every(Number.isFinite)).toBe(true);
    model.dispose();
    tf.dispose([xs, ys]);
  });

  it('grows during model.fit (in place, between batches) on a round-robin schedule', async () => {
    const model = mlp();
    const xs = randomTensor([32, 6], 3);
    const ys = oneHotTargets(32, 3, 4);
    const gx = randomTensor([8, 6], 5);
    const gy = oneHotTargets(8, 3, 6);
    const schedule = roundRobin({ sites: scheduledSites(model), start: 1, every: 3, times: 3, amount: { units: 2 } });
    const callback = growthCallback(model, { schedule, strategy: 'gradmax', growBatch: { xs: gx, ys: gy } });
    await model.trainOnBatch(gx, gy); // creates the optimizer slots before the tensor baseline
    const before = tf.memory().numTensors;
    const history = await model.fit(xs, ys, { batchSize: 8, epochs: 3, shuffle: false, callbacks: [callback], verbose: 0 });
    expect(history.history['loss']!.every((v) => Number.isFinite(v as number))).toBe(true);
    expect(callback.controller.stepCount).toBe(12);
    expect(callback.controller.history.map((r) => r.site)).toEqual(['h1->h2', 'h2->out', 'h1->h2']);
    expect(findGrowthSites(model).sites.map((s) => s.units)).toEqual([8, 6]);
    // The slots carried across growth were used by the next batches: their shapes follow the widened kernels.
    const optimizer = (model as unknown as { model: { optimizer_: { accumulations: { variable: tf.Variable }[] } } }).model.optimizer_;
    expect(optimizer.accumulations[0]!.variable.shape).toEqual([6, 8]);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
    tf.dispose([xs, ys, gx, gy]);
  });
});
