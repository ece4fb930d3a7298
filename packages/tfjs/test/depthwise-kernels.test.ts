import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { depthwiseBackpropFilterViaOps, depthwiseBackpropInputViaOps, hasDepthwiseBackprop, setupBackend } from '@gradmax/tfjs';
import { randomTensor, relativeError } from './helpers.js';

type Case = { x: [number, number, number, number]; k: [number, number]; m: number; s: [number, number]; pad: 'valid' | 'same'; d: [number, number] };
const cases: Case[] = [
  { x: [2, 7, 7, 3], k: [3, 3], m: 1, s: [1, 1], pad: 'same', d: [1, 1] },
  { x: [2, 8, 7, 2], k: [3, 3], m: 2, s: [2, 2], pad: 'same', d: [1, 1] },
  { x: [1, 9, 6, 2], k: [2, 3], m: 1, s: [2, 1], pad: 'valid', d: [1, 1] },
  { x: [2, 6, 6, 3], k: [3, 3], m: 3, s: [1, 1], pad: 'valid', d: [1, 1] },
  { x: [2, 8, 8, 2], k: [5, 5], m: 1, s: [2, 2], pad: 'same', d: [1, 1] },
  { x: [2, 9, 9, 2], k: [3, 3], m: 2, s: [1, 1], pad: 'same', d: [2, 2] },
  { x: [1, 10, 8, 3], k: [3, 2], m: 1, s: [1, 1], pad: 'valid', d: [2, 3] },
];

/** Naive loops over the definition: y[b, y, x, c·m + q] = Σ_{a, a'} xpad[b, s·y + d·a, s·x + d·a', c] · w[a, a', c, q]. */
function naive(c: Case, x: Float32Array, w: Float32Array, dy: Float32Array, ho: number, wo: number, top: number, left: number): { dx: Float64Array; dw: Float64Array } {
  const [B, H, W, C] = c.x;
  const [kh, kw] = c.k;
  const m = c.m;
  const dx = new Float64Array(B * H * W * C);
  const dw = new Float64Array(kh * kw * C * m);
  for (let b = 0; b < B; b++) for (let y = 0; y < ho; y++) for (let xx = 0; xx < wo; xx++) for (let a = 0; a < kh; a++) for (let a2 = 0; a2 < kw; a2++) {
    const i = c.s[0] * y + c.d[0] * a - top;
    const j = c.s[1] * xx + c.d[1] * a2 - left;
    if (i < 0 || i >= H || j < 0 || j >= W) continue;
    for (let ch = 0; ch < C; ch++) for (let q = 0; q < m; q++) {
      const g = dy[((b * ho + y) * wo + xx) * C * m + ch * m + q]!;
      dx[((b * H + i) * W + j) * C + ch]! += g * w[((a * kw + a2) * C + ch) * m + q]!;
      dw[((a * kw + a2) * C + ch) * m + q]! += g * x[((b * H + i) * W + j) * C + ch]!;
    }
  }
  return { dx, dw };
}

describe('depthwise conv backprop kernels built from ops (registered for wasm, which has none)', () => {
  beforeAll(async () => {
    await setupBackend('cpu', { log: false });
  });

  for (const c of cases) {
    it(`x [${c.x}], kernel ${c.k.join('×')}, multiplier ${c.m}, stride ${c.s}, ${c.pad}, dilation ${c.d}: equal to naive loops (and to the stock cpu kernels)`, () => {
      expect(hasDepthwiseBackprop('cpu')).toBe(false);
      const x = randomTensor(c.x, 1) as tf.Tensor4D;
      const w = randomTensor([c.k[0], c.k[1], c.x[3], c.m], 2) as tf.Tensor4D;
      const y = tf.depthwiseConv2d(x, w, c.s, c.pad, 'NHWC', c.d);
      const dy = randomTensor(y.shape, 3) as tf.Tensor4D;
      const info = tf.backend_util.computeConv2DInfo(c.x, w.shape, c.s, c.d, c.pad, undefined, true);
      const ref = naive(c, x.dataSync() as Float32Array, w.dataSync() as Float32Array, dy.dataSync() as Float32Array, y.shape[1], y.shape[2], info.padInfo.top, info.padInfo.left);
      const before = tf.memory().numTensors;
      const attrs = { strides: c.s, pad: c.pad, dilations: c.d };
      const dx = depthwiseBackpropInputViaOps(c.x, dy, w, attrs);
      const dw = depthwiseBackpropFilterViaOps(x, dy, w.shape, attrs);
      expect(tf.memory().numTensors).toBe(before + 2);
      expect(relativeError(dx.dataSync(), ref.dx)).toBeLessThan(1e-5);
      expect(relativeError(dw.dataSync(), ref.dw)).toBeLessThan(1e-5);
      if (c.d[0] === 1 && c.d[1] === 1) {
        // The stock cpu kernels, through tf.grads (tfjs's depthwise gradient refuses dilations).
        const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, c.pad))([x, w], dy);
        expect(relativeError(gx!.dataSync(), ref.dx)).toBeLessThan(1e-5);
        expect(relativeError(gw!.dataSync(), ref.dw)).toBeLessThan(1e-5);
        tf.dispose([gx!, gw!]);
      }
      tf.dispose([x, w, y, dy, dx, dw]);
    });
  }
});
