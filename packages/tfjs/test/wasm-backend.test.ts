import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '@gradmax/strategies/register';
import { RELU1, conv2dBackpropFilterViaConv, hasDepthwiseBackprop, findGrowthSites, grow, hasConvBackpropFilterReplacement, hasMaxPoolGradReplacement, registerMaxPoolGrad, restoreStockMaxPoolGrad, setupBackend } from '@gradmax/tfjs';
import { naiveConv2dBackpropFilter } from '@gradmax/core/reference';
import { maxAbsDiff, oneHotTargets, outputOf, randomTensor, relativeError } from './helpers.js';
import { checkSite } from './gradient-check.js';
import { cnnWithBnPool, cnnWithDepthwise } from './models.js';
import { mobilenetV2Style } from './architectures.js';
import { checkGroup } from './group-check.js';

type DwCase = { x: [number, number, number, number]; k: [number, number]; m: number; s: [number, number]; pad: Pad; d?: [number, number] };
const dwConfigs: DwCase[] = [
  { x: [2, 7, 7, 3], k: [3, 3], m: 1, s: [1, 1], pad: 'same' },
  { x: [2, 8, 7, 2], k: [3, 3], m: 2, s: [2, 2], pad: 'same' },
  { x: [1, 9, 6, 2], k: [2, 3], m: 1, s: [2, 1], pad: 'valid' },
  { x: [2, 6, 6, 3], k: [3, 3], m: 3, s: [1, 1], pad: 'valid' },
  { x: [2, 8, 8, 2], k: [5, 5], m: 1, s: [2, 2], pad: 'same' },
];

/** Depthwise conv gradients with respect to x and the filter, through tf.grad (the backend's registered kernels). */
function depthwiseGrads(x: tf.Tensor4D, w: tf.Tensor4D, dy: tf.Tensor4D, c: DwCase): [Float32Array, Float32Array] {
  return tf.tidy(() => {
    const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, c.pad))([x, w], dy);
    return [gx!.dataSync() as Float32Array, gw!.dataSync() as Float32Array];
  });
}

type Pad = 'valid' | 'same';
const configs: { x: [number, number, number, number]; k: [number, number]; co: number; s: [number, number]; pad: Pad }[] = [
  { x: [3, 7, 7, 2], k: [3, 3], co: 4, s: [1, 1], pad: 'valid' },
  { x: [2, 8, 8, 3], k: [3, 3], co: 2, s: [2, 2], pad: 'same' },
  { x: [2, 9, 6, 2], k: [2, 3], co: 3, s: [2, 1], pad: 'same' },
  { x: [2, 9, 9, 1], k: [3, 3], co: 2, s: [2, 2], pad: 'valid' },
  { x: [1, 5, 5, 2], k: [1, 1], co: 3, s: [1, 1], pad: 'same' },
];

/** The backend's registered Conv2DBackpropFilter kernel, reached through tf.grad of conv2d with respect to the filter. */
function filterGradient(x: tf.Tensor4D, dy: tf.Tensor4D, k: [number, number], co: number, s: [number, number], pad: Pad): Float32Array {
  return tf.tidy(() => {
    const w = tf.zeros([k[0], k[1], x.shape[3], co]);
    return tf.grad((f: tf.Tensor) => tf.conv2d(x, f as tf.Tensor4D, s, pad))(w, dy).dataSync() as Float32Array;
  });
}

describe('wasm backend', () => {
  let setupMessage = '';
  const cpuResults: Float32Array[] = [];
  const inputs: { x: Float32Array; dy: Float32Array; dyShape: number[] }[] = [];
  const poolCases: { x: Float32Array; shape: [number, number, number, number]; dy: Float32Array; dyShape: number[]; cpu: Float32Array; k: number; s: number; pad: 'valid' | 'same' }[] = [];

  const dwData: { x: Float32Array; w: Float32Array; dy: Float32Array; dyShape: number[]; cpu: [Float32Array, Float32Array] }[] = [];

  beforeAll(async () => {
    // Reference values from the stock cpu kernel first.
    await setupBackend('cpu', { log: false });
    dwConfigs.forEach((c, i) => {
      const x = randomTensor(c.x, 300 + i) as tf.Tensor4D;
      const w = randomTensor([c.k[0], c.k[1], c.x[3], c.m], 400 + i) as tf.Tensor4D;
      const y = tf.depthwiseConv2d(x, w, c.s, c.pad);
      const dy = randomTensor(y.shape, 500 + i) as tf.Tensor4D;
      const cpu = depthwiseGrads(x, w, dy, c);
      dwData.push({ x: x.dataSync() as Float32Array, w: w.dataSync() as Float32Array, dy: dy.dataSync() as Float32Array, dyShape: dy.shape, cpu });
      tf.dispose([x, w, y, dy]);
    });
    expect(hasConvBackpropFilterReplacement('cpu')).toBe(false);
    configs.forEach((c, i) => {
      const x = randomTensor(c.x, 100 + i) as tf.Tensor4D;
      const y = tf.conv2d(x, tf.zeros([c.k[0], c.k[1], c.x[3], c.co]) as tf.Tensor4D, c.s, c.pad);
      const dy = randomTensor(y.shape, 200 + i) as tf.Tensor4D;
      cpuResults.push(filterGradient(x, dy, c.k, c.co, c.s, c.pad));
      inputs.push({ x: x.dataSync() as Float32Array, dy: dy.dataSync() as Float32Array, dyShape: dy.shape });
      tf.dispose([x, y, dy]);
    });
    for (const [shape, k, s, pad] of [[[2, 6, 6, 3], 2, 2, 'valid'], [[1, 7, 6, 2], 3, 2, 'same'], [[2, 5, 5, 2], 2, 2, 'same']] as const) {
      const n = shape.reduce((a, b) => a * b, 1);
      const x = tf.tensor4d(Float32Array.from({ length: n }, (_, i) => (i % 7 < 3 ? 0 : (i % 5) - 2)), [...shape]);
      const y = tf.maxPool(x, k, s, pad);
      const dy = randomTensor(y.shape, 7);
      const cpu = tf.grad((t: tf.Tensor) => tf.maxPool(t as tf.Tensor4D, k, s, pad))(x, dy).dataSync() as Float32Array;
      poolCases.push({ x: x.dataSync() as Float32Array, shape: [...shape], dy: dy.dataSync() as Float32Array, dyShape: dy.shape, cpu, k, s, pad });
      tf.dispose([x, y, dy]);
    }
    const setup = await setupBackend('auto', { log: (m) => (setupMessage = m) });
    expect(setup.backend).toBe('wasm');
  });

  afterAll(async () => {
    await setupBackend('cpu', { log: false });
  });

  it('auto falls back past the (absent) native packages to wasm and says so', () => {
    expect(tf.getBackend()).toBe('wasm');
    expect(setupMessage).toMatch(/running on the wasm/);
    expect(setupMessage).toMatch(/@tensorflow\/tfjs-node-gpu/);
    expect(setupMessage).toMatch(/@tensorflow\/tfjs-node/);
  });

  it('the registered Conv2DBackpropFilter kernel matches the stock cpu kernel and the naive reference', () => {
    expect(hasConvBackpropFilterReplacement('wasm')).toBe(true);
    configs.forEach((c, i) => {
      const x = tf.tensor4d(inputs[i]!.x, c.x);
      const dy = tf.tensor(inputs[i]!.dy, inputs[i]!.dyShape) as tf.Tensor4D;
      const wasm = filterGradient(x, dy, c.k, c.co, c.s, c.pad);
      expect(relativeError(wasm, cpuResults[i]!)).toBeLessThan(1e-5);
      tf.dispose([x, dy]);
    });
  });

  it('the registered depthwise backprop kernels (absent in stock wasm) match the stock cpu kernels', () => {
    expect(hasDepthwiseBackprop('wasm')).toBe(true);
    dwConfigs.forEach((c, i) => {
      const d = dwData[i]!;
      const x = tf.tensor4d(d.x, c.x);
      const w = tf.tensor4d(d.w, [c.k[0], c.k[1], c.x[3], c.m]);
      const dy = tf.tensor(d.dy, d.dyShape) as tf.Tensor4D;
      const [gx, gw] = depthwiseGrads(x, w, dy, c);
      expect(relativeError(gx, d.cpu[0])).toBeLessThan(1e-5);
      expect(relativeError(gw, d.cpu[1])).toBeLessThan(1e-5);
      tf.dispose([x, w, dy]);
    });
  });

  it('trains and grows a depthwise model on wasm; GradMax matches wasm autodiff through the depthwise conv', async () => {
    const model = cnnWithDepthwise();
    model.compile({ optimizer: tf.train.adam(0.01), loss: 'meanSquaredError' });
    const xs = randomTensor([6, 7, 7, 2], 61);
    const ys = oneHotTargets(6, 2, 62);
    const loss = (await model.trainOnBatch(xs, ys)) as number;
    expect(Number.isFinite(loss)).toBe(true);
    checkSite(model, 'c1->c2', xs, ys, (a, b) => tf.losses.meanSquaredError(a, b));
    model.dispose();
    tf.dispose([xs, ys]);
  });

  it('a MobileNetV2-style channel group grows on wasm: function preserved, GradMax matches wasm autodiff', () => {
    const model = mobilenetV2Style();
    const xs = randomTensor([4, 8, 8, 3], 71);
    const ys = oneHotTargets(4, 3, 72);
    const loss = (a: tf.Tensor, b: tf.Tensor) => tf.losses.softmaxCrossEntropy(a, b);
    const before = outputOf(model, xs);
    const name = findGrowthSites(model).groups[0]!.name;
    checkGroup(model, name, xs, ys, loss);
    expect(maxAbsDiff(outputOf(model, xs), before)).toBeLessThan(1e-5);
    model.dispose();
    tf.dispose([xs, ys]);
  });

  it('the registered MaxPoolGrad kernel matches the cpu kernel on tied windows (the stock wasm kernel drops them)', () => {
    expect(hasMaxPoolGradReplacement('wasm')).toBe(true);
    for (const c of poolCases) {
      const x = tf.tensor4d(c.x, c.shape);
      const dy = tf.tensor(c.dy, c.dyShape);
      const wasm = tf.tidy(() => tf.grad((t: tf.Tensor) => tf.maxPool(t as tf.Tensor4D, c.k, c.s, c.pad))(x, dy).dataSync());
      expect(maxAbsDiff(wasm, c.cpu)).toBeLessThan(1e-6);
      expect(wasm.some((v) => v !== 0)).toBe(true);
      tf.dispose([x, dy]);
    }
    // The stock wasm kernel gets these tied windows wrong (why the replacement exists).
    restoreStockMaxPoolGrad('wasm');
    const c = poolCases[0]!;
    const x = tf.tensor4d(c.x, c.shape);
    const dy = tf.tensor(c.dy, c.dyShape);
    const stock = tf.tidy(() => tf.grad((t: tf.Tensor) => tf.maxPool(t as tf.Tensor4D, c.k, c.s, c.pad))(x, dy).dataSync());
    expect(maxAbsDiff(stock, c.cpu)).toBeGreaterThan(1e-3);
    registerMaxPoolGrad('wasm');
    tf.dispose([x, dy]);
  });

  it('the conv2d-based weight gradient agrees with the naive core reference (explicit per-side padding)', () => {
    const c = configs[2]!;
    const x = tf.tensor4d(inputs[2]!.x, c.x);
    const dy = tf.tensor(inputs[2]!.dy, inputs[2]!.dyShape) as tf.Tensor4D;
    const ours = conv2dBackpropFilterViaConv(x, dy, [c.k[0], c.k[1], c.x[3], c.co], c.s, c.pad);
    const info = tf.backend_util.computeConv2DInfo(c.x, [c.k[0], c.k[1], c.x[3], c.co], c.s, 1, c.pad, undefined, false, 'channelsLast');
    const naive = naiveConv2dBackpropFilter(
      { shape: c.x, data: inputs[2]!.x },
      { shape: inputs[2]!.dyShape, data: inputs[2]!.dy },
      c.k,
      { stride: c.s, padding: { top: info.padInfo.top, bottom: info.padInfo.bottom, left: info.padInfo.left, right: info.padInfo.right } },
    );
    expect(relativeError(ours.dataSync(), naive.data)).toBeLessThan(1e-5);
    tf.dispose([x, dy, ours]);
  });

  it('trains a CNN and grows it with GradMax on wasm, preserving its function', async () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ kernelInitializer: tfl.initializers.glorotUniform({ seed: 101 }), inputShape: [6, 6, 1], filters: 3, kernelSize: 3, padding: 'same', activation: RELU1, name: 'c1' }),
        tfl.layers.conv2d({ kernelInitializer: tfl.initializers.glorotUniform({ seed: 102 }), filters: 2, kernelSize: 3, strides: 2, padding: 'same', activation: RELU1, name: 'c2' }),
        tfl.layers.flatten({ name: 'flat' }),
        tfl.layers.dense({ kernelInitializer: tfl.initializers.glorotUniform({ seed: 103 }), units: 2, activation: 'softmax', name: 'out' }),
      ],
    });
    model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
    const xs = randomTensor([8, 6, 6, 1], 7);
    const ys = oneHotTargets(8, 2, 8);
    await model.trainOnBatch(xs, ys);
    const before = outputOf(model, xs);
    for (const site of findGrowthSites(model).sites) grow(model, { site: site.name, units: 2, strategy: 'gradmax', batch: { xs, ys } });
    expect(maxAbsDiff(outputOf(model, xs), before)).toBeLessThan(1e-5);
    const loss = (await model.trainOnBatch(xs, ys)) as number;
    expect(Number.isFinite(loss)).toBe(true);
    model.dispose();
    tf.dispose([xs, ys]);
  });

  it("GradMax's predicted gradient matches wasm autodiff through BatchNorm + max pooling and a conv→flatten→dense head", () => {
    const model = cnnWithBnPool();
    const xs = randomTensor([6, 8, 8, 2], 41);
    const ys = oneHotTargets(6, 3, 42);
    checkSite(model, 'c1->c2', xs, ys);
    checkSite(model, 'c2->out', xs, ys);
    model.dispose();
    tf.dispose([xs, ys]);
  });
});
