import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeConvPairGeometry, tapScatterKernel, tapScatterKernelShape } from '@gradmax/core';
import { naiveTapScatter } from '@gradmax/core/reference';
import { applyBlockRoutingByOps, tapScatter, tapScatterByOps } from './conv-tap.js';
import { blockRoutingJs } from './js-kernels.js';
import { convPatches, convPatchesByConv, convPatchesBySlices } from './patches.js';

function random(shape: number[], seed: number): tf.Tensor {
  return tf.randomUniform(shape, -1, 1, 'float32', seed);
}

describe('tap scatter and patches (internal kernels of the conv statistics)', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  const configs: [number, number, number, 'valid' | 'same'][] = [
    [7, 3, 1, 'valid'],
    [7, 3, 1, 'same'],
    [8, 3, 2, 'same'],
    [9, 3, 2, 'valid'],
    [8, 2, 2, 'same'],
    [6, 1, 1, 'valid'],
  ];
  for (const [h, k, s, pad] of configs) {
    it(`tapScatter = conv2dTranspose with the core's one-hot kernel = naive reference (map ${h}, kernel ${k}, stride ${s}, ${pad})`, () => {
      const geometry = makeConvPairGeometry({ inChannels: 1, midChannels: 2, outChannels: 3, inputSize: h, kernel1: 1, kernel2: k, stride2: s, padding2: pad });
      const [h2, w2] = geometry.outputSize;
      const g = random([2, h2, w2, 3], h + k + s) as tf.Tensor4D;
      const ours = tapScatter(g, [k, k], [s, s], pad, [h, h]);
      const byOps = tapScatterByOps(g, [k, k], [s, s], pad, [h, h]);
      expect(Array.from(byOps.dataSync())).toEqual(Array.from(ours.dataSync()));
      byOps.dispose();
      const shape = tapScatterKernelShape(geometry);
      const viaTranspose = tf.conv2dTranspose(g, tf.tensor4d(tapScatterKernel(geometry), shape), [2, h, h, shape[2]], s, pad);
      expect(ours.shape).toEqual(viaTranspose.shape);
      expect(Array.from(ours.dataSync())).toEqual(Array.from(viaTranspose.dataSync()));
      const naive = naiveTapScatter({ shape: g.shape, data: g.dataSync() }, geometry);
      expect(Array.from(ours.dataSync())).toEqual(Array.from(naive.data, (v) => Math.fround(v)));
      tf.dispose([g, ours, viaTranspose]);
    });
  }

  it('the three patch formulations agree exactly', () => {
    const x = random([2, 9, 7, 3], 3) as tf.Tensor4D;
    for (const [k, s, pad] of [[[3, 3], [1, 1], 'same'], [[3, 2], [2, 2], 'same'], [[2, 3], [2, 1], 'valid']] as const) {
      const a = convPatches(x, [...k], [...s], pad);
      const b = convPatchesBySlices(x, [...k], [...s], pad);
      const c = convPatchesByConv(x, [...k], [...s], pad);
      expect(a.shape).toEqual(b.shape);
      expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
      const cd = c.dataSync();
      const ad = a.dataSync();
      for (let i = 0; i < ad.length; i++) expect(Math.abs(cd[i]! - ad[i]!)).toBeLessThan(1e-6);
      tf.dispose([a, b, c]);
    }
    x.dispose();
  });

  it('block routing: loops and tensor ops agree (max-pool mask and average-pool weights, remainder rows)', () => {
    const t = random([2, 3, 3, 5], 4) as tf.Tensor4D;
    for (const mask of [Float32Array.from([0, 0, 1, 0]), Float32Array.from([0.25, 0.25, 0.25, 0.25])]) {
      const routing = { stride: [2, 2] as [number, number], mask, size: [7, 6] as [number, number] };
      const a = blockRoutingJs(t, routing.stride, mask, routing.size);
      const b = applyBlockRoutingByOps(t, routing);
      expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
      tf.dispose([a, b]);
    }
    t.dispose();
  });

  it('patches · kernel = conv2d (stride 2, same, asymmetric padding)', () => {
    const x = random([2, 8, 7, 3], 1) as tf.Tensor4D;
    const w = random([3, 2, 3, 4], 2) as tf.Tensor4D;
    const patches = convPatches(x, [3, 2], [2, 2], 'same');
    const viaPatches = tf.matMul(tf.reshape(patches, [-1, 18]), tf.reshape(w, [18, 4]));
    const direct = tf.reshape(tf.conv2d(x, w, 2, 'same'), [-1, 4]);
    const a = viaPatches.dataSync();
    const b = direct.dataSync();
    for (let i = 0; i < b.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(1e-5);
    tf.dispose([x, w, patches, viaPatches, direct]);
  });
});
