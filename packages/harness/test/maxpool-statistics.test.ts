/**
 * The conv1→conv2 growth statistics of mnist-cnn's block (conv → BN → relu1 → max pool → conv) on the wasm backend
 * (set up through `@gradmax/tfjs`'s `setupBackend`) are non-zero and match the cpu backend: the reason mnist-cnn
 * can use max pooling. The stock wasm `MaxPoolGrad` drops windows tied at 0 (every window of a new unit), which made
 * these statistics exactly zero; the check with it restored shows this test can fail.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng, type SiteStatistics } from '@gradmax/core';
import { RELU1, collectStatistics, findGrowthSites, registerMaxPoolGrad, restoreStockMaxPoolGrad, setupBackend } from '@gradmax/tfjs';

const SITE = 'conv1->conv2';
const BATCH = 6;

function buildModel(): tfl.Sequential {
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [12, 12, 1], filters: 3, kernelSize: 3, padding: 'same', useBias: false, name: 'conv1' }),
      tfl.layers.batchNormalization({ name: 'bn1' }),
      tfl.layers.activation({ activation: RELU1, name: 'act1' }),
      tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool1' }),
      tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', useBias: false, name: 'conv2' }),
      tfl.layers.batchNormalization({ name: 'bn2' }),
      tfl.layers.activation({ activation: RELU1, name: 'act2' }),
      tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool2' }),
      tfl.layers.flatten({ name: 'flatten' }),
      tfl.layers.dense({ units: 5, activation: RELU1, name: 'fc1' }),
      tfl.layers.dense({ units: 10, activation: 'softmax', name: 'out' }),
    ],
  });
  model.compile({ optimizer: 'sgd', loss: 'categoricalCrossentropy' });
  return model;
}

/** Seeded weights; conv1's last channel is a freshly grown one (zero kernel, identity BN) so its windows tie at 0. */
function weightValues(model: tfl.LayersModel): { values: Float32Array; shape: number[] }[] {
  const rng = new Rng(11);
  return model.getWeights().map((w, i) => {
    const name = model.weights[i]!.originalName;
    const values = Float32Array.from({ length: w.size }, () => {
      if (name.endsWith('moving_variance') || name.endsWith('gamma')) return rng.uniformRange(0.5, 1.5);
      if (name.endsWith('moving_mean') || name.endsWith('beta')) return rng.uniformRange(-0.2, 0.2);
      return rng.uniformRange(-0.5, 0.5);
    });
    if (name.startsWith('conv1/')) for (let j = 2; j < values.length; j += 3) values[j] = 0;
    if (name.startsWith('bn1/')) values[2] = name.endsWith('gamma') ? 1 : name.endsWith('moving_variance') ? 1 - 1e-3 : 0;
    return { values, shape: w.shape };
  });
}

function batchValues(): { x: Float32Array; y: Float32Array } {
  const rng = new Rng(12);
  const x = Float32Array.from({ length: BATCH * 144 }, () => (rng.uniform() < 0.4 ? 0 : rng.uniform()));
  const y = new Float32Array(BATCH * 10);
  for (let i = 0; i < BATCH; i++) y[i * 10 + rng.int(10)] = 1;
  return { x, y };
}

/** Statistics of the conv1→conv2 site on the active backend (with retained samples, as firefly/north/tiny use). */
function siteStatistics(): SiteStatistics {
  const model = buildModel();
  model.setWeights(weightValues(model).map((w) => tf.tensor(w.values, w.shape)));
  const { x, y } = batchValues();
  const batch = { xs: tf.tensor4d(x, [BATCH, 12, 12, 1]), ys: tf.tensor2d(y, [BATCH, 10]) };
  const site = findGrowthSites(model).sites.find((s) => s.name === SITE)!;
  expect(site.between.map((b) => b.name)).toEqual(['bn1', 'act1', 'pool1']);
  const stats = collectStatistics(model, [site], batch, { retainSamples: 64, seed: 5 }).get(SITE)!.snapshot();
  tf.dispose([batch.xs, batch.ys]);
  model.dispose();
  return stats;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/** max |a − b| / max |b|. */
function relativeDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m / maxAbs(b);
}

describe('max pooling statistics on wasm (mnist-cnn block)', () => {
  let cpu: SiteStatistics;
  let wasm: SiteStatistics;

  beforeAll(async () => {
    await setupBackend('cpu', { log: false, fastCpuConvBackward: true });
    cpu = siteStatistics();
    expect((await setupBackend('wasm', { log: false })).backend).toBe('wasm');
    wasm = siteStatistics();
  });

  afterAll(() => {
    registerMaxPoolGrad('wasm');
  });

  it('are non-zero and equal the cpu backend to float32 tolerance', () => {
    expect(wasm.moment.shape).toEqual([3 * 3 * 4, 3 * 3 * 1]);
    expect(maxAbs(cpu.moment.data)).toBeGreaterThan(1e-3);
    expect(relativeDiff(wasm.moment.data, cpu.moment.data)).toBeLessThan(1e-5);
    expect(wasm.count).toBe(BATCH);
    // Retained (h, g) rows: same reservoir, same values.
    expect(wasm.samples!.h.rows).toBeGreaterThan(0);
    expect(wasm.samples!.h.shape).toEqual(cpu.samples!.h.shape);
    expect(relativeDiff(wasm.samples!.h.data, cpu.samples!.h.data)).toBeLessThan(1e-6);
    expect(maxAbs(cpu.samples!.g.data)).toBeGreaterThan(0);
    expect(relativeDiff(wasm.samples!.g.data, cpu.samples!.g.data)).toBeLessThan(1e-5);
  });

  it('came out as exactly zero with the stock wasm MaxPoolGrad', () => {
    restoreStockMaxPoolGrad('wasm');
    const stock = siteStatistics();
    registerMaxPoolGrad('wasm');
    expect(maxAbs(stock.moment.data)).toBe(0);
  });
});
