/**
 * The op-based `Conv3DBackpropInputV2` kernel (registered for wasm, whose own kernel is wrong under asymmetric
 * padding) against naive loops over the definition, on cpu (the function itself) and on wasm (through the registered
 * kernel, as tfjs's conv3d gradient and `conv3dTranspose` call it).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { conv3dBackpropInputViaOps, hasConv3dBackpropInputReplacement } from '@gradmax/tfjs';
import { describeEachBackend } from './backends.js';
import { randomTensor, relativeError } from './helpers.js';

type Case = { x: [number, number, number, number, number]; k: [number, number, number]; co: number; s: [number, number, number]; pad: 'valid' | 'same' };
const CASES: Case[] = [
  { x: [2, 4, 4, 4, 2], k: [2, 2, 2], co: 3, s: [1, 1, 1], pad: 'same' },
  { x: [1, 5, 4, 6, 2], k: [3, 2, 3], co: 2, s: [1, 1, 1], pad: 'same' },
  { x: [2, 6, 5, 4, 3], k: [3, 3, 2], co: 2, s: [2, 2, 1], pad: 'same' },
  { x: [1, 5, 6, 5, 2], k: [2, 3, 3], co: 3, s: [2, 1, 2], pad: 'valid' },
  { x: [2, 4, 4, 4, 1], k: [2, 2, 2], co: 2, s: [1, 1, 1], pad: 'valid' },
];

/** dx by loops: dx[b, i, c] += dy[b, o, q] · w[a, c, q] for i = s·o + a − p (per axis). */
function naive(c: Case, w: Float32Array, dy: Float32Array): Float64Array {
  const [B, D, H, W, C] = c.x;
  const info = tf.backend_util.computeConv3DInfo(c.x, [...c.k, C, c.co], c.s, 1, c.pad);
  const out = [info.outDepth, info.outHeight, info.outWidth];
  const p = [info.padInfo.front, info.padInfo.top, info.padInfo.left];
  const [kd, kh, kw] = c.k;
  const dx = new Float64Array(B * D * H * W * C);
  for (let b = 0; b < B; b++) for (let od = 0; od < out[0]!; od++) for (let oh = 0; oh < out[1]!; oh++) for (let ow = 0; ow < out[2]!; ow++) {
    for (let ad = 0; ad < kd; ad++) for (let ah = 0; ah < kh; ah++) for (let aw = 0; aw < kw; aw++) {
      const i = [c.s[0] * od + ad - p[0]!, c.s[1] * oh + ah - p[1]!, c.s[2] * ow + aw - p[2]!];
      if (i[0]! < 0 || i[0]! >= D || i[1]! < 0 || i[1]! >= H || i[2]! < 0 || i[2]! >= W) continue;
      for (let ci = 0; ci < C; ci++) for (let q = 0; q < c.co; q++) {
        const g = dy[(((b * out[0]! + od) * out[1]! + oh) * out[2]! + ow) * c.co + q]!;
        dx[(((b * D + i[0]!) * H + i[1]!) * W + i[2]!) * C + ci]! += g * w[(((ad * kh + ah) * kw + aw) * C + ci) * c.co + q]!;
      }
    }
  }
  return dx;
}

describeEachBackend('Conv3DBackpropInputV2 built from ops', (backend) => {
  for (const c of CASES) {
    it(`[${c.x}] kernel ${c.k.join('×')}, strides ${c.s.join('×')}, ${c.pad}: equals naive loops (1e-5)`, () => {
      if (backend === 'wasm') expect(hasConv3dBackpropInputReplacement('wasm')).toBe(true);
      const info = tf.backend_util.computeConv3DInfo(c.x, [...c.k, c.x[4], c.co], c.s, 1, c.pad);
      const w = randomTensor([...c.k, c.x[4], c.co], 1) as tf.Tensor5D;
      const dy = randomTensor([c.x[0], info.outDepth, info.outHeight, info.outWidth, c.co], 2) as tf.Tensor5D;
      const expected = naive(c, w.dataSync() as Float32Array, dy.dataSync() as Float32Array);
      const before = tf.memory().numTensors;
      const viaOps = conv3dBackpropInputViaOps(c.x, dy, w, c.s, c.pad);
      // The engine's path: tfjs's conv3dTranspose runs the backend's Conv3DBackpropInputV2 kernel.
      const viaKernel = tf.conv3dTranspose(dy, w, c.x, c.s, c.pad);
      expect(relativeError(viaOps.dataSync(), expected)).toBeLessThan(1e-5);
      expect(relativeError(viaKernel.dataSync(), expected)).toBeLessThan(1e-5);
      tf.dispose([viaOps, viaKernel]);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([w, dy]);
    });
  }
}, ['cpu', 'wasm']);
