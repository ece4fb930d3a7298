import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import '@gradmax/strategies/register';
import { RELU1, grow, setupBackend } from '@gradmax/tfjs';
import { oneHotTargets, randomTensor } from './helpers.js';

function build(seed: number): tfl.LayersModel {
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({ units: 6, inputShape: [5], activation: RELU1, name: 'h1', kernelInitializer: tfl.initializers.glorotUniform({ seed }) }),
      tfl.layers.dense({ units: 4, activation: RELU1, name: 'h2', kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }) }),
      tfl.layers.dense({ units: 3, activation: 'softmax', name: 'out', kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 2 }) }),
    ],
  });
  return model;
}

// Centered RMSProp is left out: tfjs 4.22 computes sqrt(ms − mg² − ε), which is NaN wherever a gradient is ~0,
// with or without growth.
const optimizers: [string, () => tf.Optimizer][] = [
  ['sgd', () => tf.train.sgd(0.1)],
  ['momentum', () => tf.train.momentum(0.1, 0.9)],
  ['nesterov', () => tf.train.momentum(0.1, 0.9, true)],
  ['adam', () => tf.train.adam(0.01)],
  ['rmsprop', () => tf.train.rmsprop(0.01, 0.9, 0.5)],
  ['adagrad', () => tf.train.adagrad(0.1, 0.2)],
];

/** Values of `layer`'s variable `role`, restricted to the leading block of shape `shape`. */
function block(model: tfl.LayersModel, layer: string, role: string, shape: number[]): number[] {
  const v = model.getLayer(layer).weights.find((w) => w.originalName.endsWith(role))!;
  return tf.tidy(() => Array.from(tf.slice(v.read(), shape.map(() => 0), shape).dataSync()));
}

const blocks: [string, string, number[]][] = [
  ['h1', 'kernel', [5, 6]],
  ['h1', 'bias', [6]],
  ['h2', 'kernel', [6, 4]],
  ['h2', 'bias', [4]],
  ['out', 'kernel', [4, 3]],
  ['out', 'bias', [3]],
];

describe('optimizer state across growth', () => {
  beforeAll(async () => {
    await setupBackend('cpu', { log: false });
  });

  for (const [name, make] of optimizers) {
    it(`${name}: the first step after growth updates the old weights exactly as without growth`, async () => {
      const grown = build(1);
      const plain = build(1);
      grown.compile({ optimizer: make(), loss: 'categoricalCrossentropy' });
      plain.compile({ optimizer: make(), loss: 'categoricalCrossentropy' });
      const xs = randomTensor([16, 5], 2);
      const ys = oneHotTargets(16, 3, 3);
      for (let i = 0; i < 3; i++) {
        await grown.trainOnBatch(xs, ys);
        await plain.trainOnBatch(xs, ys);
      }
      const before = tf.memory().numTensors;
      grow(grown, { site: 'h1->h2', units: 2, strategy: 'gradmax', batch: { xs, ys }, seed: 1 });
      grow(grown, { site: 'h2->out', units: 3, strategy: 'gradmax', batch: { xs, ys }, seed: 2 });
      expect(tf.memory().numTensors).toBe(before);
      // New slot entries start at zero (Adagrad: its initial accumulator value).
      const slots = (grown as unknown as { model: { optimizer_: Record<string, { variable: tf.Variable }[]> } }).model.optimizer_;
      for (const field of ['accumulations', 'accumulatedFirstMoment', 'accumulatedMeanSquares', 'accumulatedGrads']) {
        const kernelSlot = slots[field]?.[0];
        if (!kernelSlot) continue;
        expect(kernelSlot.variable.shape).toEqual([5, 8]);
        const fill = field === 'accumulatedGrads' ? 0.2 : 0;
        const newColumns = tf.tidy(() => Array.from(tf.slice(kernelSlot.variable, [0, 6], [5, 2]).dataSync()));
        for (const v of newColumns) expect(v).toBeCloseTo(fill, 7);
      }
      await grown.trainOnBatch(xs, ys);
      await plain.trainOnBatch(xs, ys);
      for (const [layer, role, shape] of blocks) {
        const a = block(grown, layer, role, shape);
        const b = block(plain, layer, role, shape);
        for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(1e-7 * Math.max(1, Math.abs(b[i]!)));
      }
      // The new units did move (they receive gradient), so the comparison above is not vacuous.
      const newIncoming = tf.tidy(() => Array.from(tf.slice(grown.getLayer('h1').weights[0]!.read(), [0, 6], [5, 2]).dataSync()));
      expect(newIncoming.some((v) => v !== 0)).toBe(true);
      grown.dispose();
      plain.dispose();
      tf.dispose([xs, ys]);
    });
  }

  it('resetOptimizer drops the slots and keeps the step counters', async () => {
    const model = build(3);
    const optimizer = tf.train.adam(0.01);
    model.compile({ optimizer, loss: 'categoricalCrossentropy' });
    const xs = randomTensor([8, 5], 4);
    const ys = oneHotTargets(8, 3, 5);
    await model.trainOnBatch(xs, ys);
    await model.trainOnBatch(xs, ys);
    const internals = optimizer as unknown as { accumulatedFirstMoment: unknown[]; accBeta1: tf.Variable; iterations: number };
    const beta1Power = internals.accBeta1.dataSync()[0];
    const iterations = internals.iterations;
    expect(internals.accumulatedFirstMoment.length).toBeGreaterThan(0);
    grow(model, { site: 'h1->h2', units: 2, strategy: 'random', resetOptimizer: true });
    expect(internals.accumulatedFirstMoment.length).toBe(0);
    expect(internals.accBeta1.dataSync()[0]).toBe(beta1Power);
    expect(internals.iterations).toBe(iterations);
    expect(Number.isFinite((await model.trainOnBatch(xs, ys)) as number)).toBe(true);
    model.dispose();
    tf.dispose([xs, ys]);
  });
});
