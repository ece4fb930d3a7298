/**
 * The dilated-conv gradients (space-to-batch identity) against an independent formulation on every backend: a conv
 * with dilation d equals an undilated conv with the kernel spread out by d (zeros between the taps, same padding
 * rule on the same effective size), whose gradient tfjs has; the filter gradient is then the spread kernel's gradient
 * read at the taps. Plus central finite differences in float64 arithmetic on cpu for a few entries.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { registerDilatedConvGradients } from '@gradmax/tfjs';
import { describeEachBackend } from './backends.js';
import { randomTensor, relativeError } from './helpers.js';

/** `[kh, kw, ...]` → `[(kh−1)dh+1, (kw−1)dw+1, ...]` with the taps at multiples of the dilation and zeros between. */
function spread(w: tf.Tensor4D, [dh, dw]: [number, number]): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw, a, b] = w.shape;
    const data = w.dataSync();
    const H = (kh - 1) * dh + 1;
    const W = (kw - 1) * dw + 1;
    const out = new Float32Array(H * W * a * b);
    for (let r = 0; r < kh; r++) for (let c = 0; c < kw; c++) for (let i = 0; i < a * b; i++) out[((r * dh) * W + c * dw) * a * b + i] = data[(r * kw + c) * a * b + i]!;
    return tf.tensor4d(out, [H, W, a, b]);
  });
}

/** Reads the taps of a spread kernel's gradient back into `[kh, kw, ...]`. */
function gather(g: tf.Tensor4D, [kh, kw]: [number, number], [dh, dw]: [number, number]): Float32Array {
  const [, W, a, b] = g.shape;
  const data = g.dataSync();
  const out = new Float32Array(kh * kw * a * b);
  for (let r = 0; r < kh; r++) for (let c = 0; c < kw; c++) for (let i = 0; i < a * b; i++) out[(r * kw + c) * a * b + i] = data[((r * dh) * W + c * dw) * a * b + i]!;
  return out;
}

const CASES: { name: string; x: [number, number, number, number]; k: [number, number]; d: [number, number]; pad: 'same' | 'valid'; depthwise: boolean }[] = [
  { name: 'conv 3×3, d 2, same, odd map', x: [2, 7, 7, 3], k: [3, 3], d: [2, 2], pad: 'same', depthwise: false },
  { name: 'conv 3×3, d 2, same, even map', x: [2, 8, 6, 2], k: [3, 3], d: [2, 2], pad: 'same', depthwise: false },
  { name: 'conv 2×3, d (3, 2), valid', x: [1, 9, 8, 2], k: [2, 3], d: [3, 2], pad: 'valid', depthwise: false },
  { name: 'conv 1×3, d (1, 4), same (Conv1D as tfjs runs it)', x: [2, 1, 11, 3], k: [1, 3], d: [1, 4], pad: 'same', depthwise: false },
  { name: 'depthwise 3×3, d 2, same, multiplier 2', x: [2, 7, 6, 3], k: [3, 3], d: [2, 2], pad: 'same', depthwise: true },
  { name: 'depthwise 3×3, d 3, valid', x: [1, 10, 9, 2], k: [3, 3], d: [3, 3], pad: 'valid', depthwise: true },
];

describeEachBackend('dilated convolution gradients (space-to-batch identity)', () => {
  it('the Conv2D and DepthwiseConv2dNative gradients are extended (idempotent)', () => {
    expect(registerDilatedConvGradients()).toEqual(['Conv2D', 'DepthwiseConv2dNative']);
    const first = tf.getGradient('Conv2D')!.gradFunc;
    registerDilatedConvGradients();
    expect(tf.getGradient('Conv2D')!.gradFunc).toBe(first);
  });

  for (const c of CASES) {
    it(`${c.name}: input and filter gradients equal those of the spread-kernel undilated conv (1e-5)`, async () => {
      registerDilatedConvGradients();
      const x = randomTensor(c.x, 1) as tf.Tensor4D;
      const out = c.depthwise ? 2 : 4;
      const w = randomTensor([...c.k, c.x[3], out], 2) as tf.Tensor4D;
      const op = (input: tf.Tensor4D, filter: tf.Tensor4D, dilations: [number, number]) =>
        c.depthwise ? tf.depthwiseConv2d(input, filter, 1, c.pad, 'NHWC', dilations) : tf.conv2d(input, filter, 1, c.pad, 'NHWC', dilations);
      const y0 = op(x, w, c.d);
      const weights = randomTensor(y0.shape, 3);
      const loss = (dil: boolean) => (input: tf.Tensor, filter: tf.Tensor) => tf.sum(tf.mul(op(input as tf.Tensor4D, filter as tf.Tensor4D, dil ? c.d : [1, 1]), weights));
      const [gx, gw] = tf.grads(loss(true))([x, w]);
      const wide = spread(w, c.d);
      const [rx, rw] = tf.grads(loss(false))([x, wide]);
      // Same function first (the reference is the same convolution).
      const y1 = op(x, wide, [1, 1]);
      expect(relativeError(await y0.data(), await y1.data())).toBeLessThan(1e-5);
      expect(relativeError(await gx!.data(), await rx!.data())).toBeLessThan(1e-5);
      const rwData = gather(rw as tf.Tensor4D, c.k, c.d);
      expect(relativeError(await gw!.data(), rwData)).toBeLessThan(1e-5);
      tf.dispose([x, w, y0, y1, weights, gx!, gw!, wide, rx!, rw!]);
    });
  }

  it('dilated Conv1D and SeparableConv2D layers train with model.fit (the loss decreases)', async () => {
    registerDilatedConvGradients();
    const x0 = tfl.input({ shape: [6, 6, 2] });
    const sep = tfl.layers.separableConv2d({ filters: 3, kernelSize: 3, dilationRate: 2, padding: 'same', activation: 'tanh', depthwiseInitializer: tfl.initializers.glorotUniform({ seed: 1 }), pointwiseInitializer: tfl.initializers.glorotUniform({ seed: 2 }) }).apply(x0) as tfl.SymbolicTensor;
    const seq = tfl.layers.reshape({ targetShape: [36, 3] }).apply(sep) as tfl.SymbolicTensor;
    const c1 = tfl.layers.conv1d({ filters: 2, kernelSize: 3, dilationRate: 3, padding: 'same', kernelInitializer: tfl.initializers.glorotUniform({ seed: 3 }) }).apply(seq) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: x0, outputs: tfl.layers.globalAveragePooling1d({}).apply(c1) as tfl.SymbolicTensor });
    model.compile({ optimizer: tf.train.sgd(0.5), loss: 'meanSquaredError' });
    const xs = randomTensor([8, 6, 6, 2], 9);
    const ys = randomTensor([8, 2], 10);
    const history = await model.fit(xs, ys, { epochs: 5, batchSize: 8, verbose: 0 });
    const losses = history.history['loss'] as number[];
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[4]!).toBeLessThan(losses[0]!);
    model.dispose();
    tf.dispose([xs, ys]);
  });

  it('no tensor leaks', () => {
    registerDilatedConvGradients();
    const x = randomTensor([1, 6, 6, 2], 4) as tf.Tensor4D;
    const w = randomTensor([3, 3, 2, 2], 5) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    const grads = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same', 'NHWC', 2)))([x, w]);
    tf.dispose(grads);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, w]);
  });
}, ['cpu', 'wasm']);

describeEachBackend('dilated convolution gradients: finite differences', () => {
  it('central differences of the loss agree with the filter and input gradients (cpu)', () => {
    registerDilatedConvGradients();
    const x = randomTensor([1, 7, 6, 2], 6) as tf.Tensor4D;
    const w = randomTensor([3, 2, 2, 3], 7) as tf.Tensor4D;
    const weights = randomTensor([1, 7, 6, 3], 8);
    const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same', 'NHWC', [2, 3]), weights));
    const [gx, gw] = tf.grads(f)([x, w]);
    const value = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => f(a, b).dataSync()[0]!);
    const h = 1e-2;
    for (const [target, grad, index] of [[w, gw!, 5], [w, gw!, 17], [x, gx!, 3], [x, gx!, 40]] as const) {
      const base = target.dataSync().slice();
      const shifted = (delta: number) => {
        const copy = Float32Array.from(base);
        copy[index] = copy[index]! + delta;
        return tf.tensor(copy, target.shape);
      };
      const plus = shifted(h);
      const minus = shifted(-h);
      const fd = target === w ? (value(x, plus) - value(x, minus)) / (2 * h) : (value(plus, w) - value(minus, w)) / (2 * h);
      expect(Math.abs(fd - grad.dataSync()[index]!)).toBeLessThan(2e-3 * Math.max(1, Math.abs(fd)));
      tf.dispose([plus, minus]);
    }
    tf.dispose([x, w, weights, gx!, gw!]);
  });
}, ['cpu']);
