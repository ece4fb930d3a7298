import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { hasConvBackpropFilterReplacement, maxPoolGradViaSlices, restoreStockConvBackpropFilter, setupBackend } from '@gradmax/tfjs';
import { createRng } from '@gradmax/core';
import { maxAbsDiff, randomTensor, relativeError } from './helpers.js';

function filterGradient(x: tf.Tensor4D, dy: tf.Tensor4D, shape: [number, number, number, number], s: number, pad: 'valid' | 'same'): Float32Array {
  return tf.tidy(() => tf.grad((f: tf.Tensor) => tf.conv2d(x, f as tf.Tensor4D, s, pad))(tf.zeros(shape), dy).dataSync() as Float32Array);
}

describe('opt-in fast conv weight gradient on cpu', () => {
  beforeAll(async () => {
    await setupBackend('cpu', { log: false });
  });

  it('is off by default, matches the stock kernel when on, and can be put back', async () => {
    expect(hasConvBackpropFilterReplacement('cpu')).toBe(false);
    const x = randomTensor([2, 9, 9, 3], 1) as tf.Tensor4D;
    for (const [s, pad] of [[1, 'same'], [2, 'same'], [2, 'valid']] as const) {
      const dy = tf.tidy(() => randomTensor(tf.conv2d(x, tf.zeros([3, 3, 3, 4]) as tf.Tensor4D, s, pad).shape, 2)) as tf.Tensor4D;
      const stock = filterGradient(x, dy, [3, 3, 3, 4], s, pad);
      const setup = await setupBackend('cpu', { fastCpuConvBackward: true, log: false });
      expect(setup.message).toMatch(/conv2d-based kernel/);
      expect(hasConvBackpropFilterReplacement('cpu')).toBe(true);
      const fast = filterGradient(x, dy, [3, 3, 3, 4], s, pad);
      expect(relativeError(fast, stock)).toBeLessThan(1e-5);
      restoreStockConvBackpropFilter('cpu');
      expect(hasConvBackpropFilterReplacement('cpu')).toBe(false);
      dy.dispose();
    }
    x.dispose();
  });

  it('an explicit unavailable backend is a typed error, an unknown name too', async () => {
    await expect(setupBackend('tensorflow', { log: false })).rejects.toMatchObject({ code: 'invalid-argument' });
    await expect(setupBackend('gpu' as never, { log: false })).rejects.toMatchObject({ code: 'unknown-name' });
    expect(tf.getBackend()).toBe('cpu');
  });

  it('the slice-based MaxPoolGrad matches the stock cpu kernel, ties included (first maximum in the window)', () => {
    const rng = createRng(9);
    const configs: [number[], number, number, 'valid' | 'same'][] = [
      [[2, 6, 6, 3], 2, 2, 'valid'],
      [[2, 7, 7, 2], 2, 2, 'valid'],
      [[1, 7, 6, 2], 3, 2, 'same'],
      [[2, 5, 5, 1], 3, 1, 'same'],
      [[1, 8, 8, 2], 2, 2, 'same'],
    ];
    for (const [shape, k, s, pad] of configs) {
      for (const kind of ['ties', 'zeros'] as const) {
        const n = shape.reduce((a, b) => a * b, 1);
        const values = Float32Array.from({ length: n }, () => (kind === 'zeros' ? 0 : rng.int(3) - 1));
        const x = tf.tensor4d(values, shape as [number, number, number, number]);
        const y = tf.maxPool(x, k, s, pad);
        const dy = randomTensor(y.shape, 3) as tf.Tensor4D;
        const stock = tf.tidy(() => tf.grad((t: tf.Tensor) => tf.maxPool(t as tf.Tensor4D, k, s, pad))(x, dy).dataSync());
        const ours = maxPoolGradViaSlices(dy, x, y, k, s, pad);
        // Same routing; overlapping windows may sum in another order (float rounding only).
        expect(maxAbsDiff(ours.dataSync(), stock)).toBeLessThan(1e-6);
        tf.dispose([x, y, dy, ours]);
      }
    }
  });
});
