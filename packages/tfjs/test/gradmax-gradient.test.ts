import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { RELU1, setupBackend } from '@gradmax/tfjs';
import { checkSite, crossEntropy, softmaxCrossEntropy } from './gradient-check.js';
import { oneHotTargets, randomTensor } from './helpers.js';
import { cnnWithBnPool, cnnWithDepthwise, cnnWithGlobalPool, mlpWithBn } from './models.js';

function convPair(h: number, s1: number, p1: 'valid' | 'same', s2: number, p2: 'valid' | 'same'): tfl.LayersModel {
  return tfl.sequential({
    layers: [
      tfl.layers.conv2d({ kernelInitializer: tfl.initializers.glorotUniform({ seed: 101 }), inputShape: [h, h, 2], filters: 3, kernelSize: 3, strides: s1, padding: p1, activation: RELU1, name: 'c1' }),
      tfl.layers.conv2d({ kernelInitializer: tfl.initializers.glorotUniform({ seed: 102 }), filters: 4, kernelSize: 3, strides: s2, padding: p2, activation: RELU1, name: 'c2' }),
      tfl.layers.flatten({ name: 'flat' }),
      tfl.layers.dense({ kernelInitializer: tfl.initializers.glorotUniform({ seed: 103 }), units: 3, activation: 'softmax', name: 'out' }),
    ],
  });
}

describe('gradient of the new incoming weights right after GradMax = f\'(0)·ΩᵀM (tfjs autodiff)', () => {
  beforeAll(async () => {
    await setupBackend('cpu', { log: false });
  });

  it('dense sites (with BatchNorm in between)', () => {
    const model = mlpWithBn();
    const xs = randomTensor([24, 5], 21);
    const ys = oneHotTargets(24, 3, 22);
    checkSite(model, 'h1->h2', xs, ys);
    checkSite(model, 'h2->out', xs, ys);
    model.dispose();
    tf.dispose([xs, ys]);
  });

  const configs: [number, number, 'valid' | 'same', number, 'valid' | 'same'][] = [
    [7, 1, 'valid', 1, 'valid'],
    [7, 1, 'same', 1, 'same'],
    [8, 2, 'same', 1, 'same'],
    [8, 1, 'same', 2, 'same'],
    [9, 2, 'valid', 2, 'same'],
    [8, 2, 'same', 2, 'valid'],
  ];
  for (const [h, s1, p1, s2, p2] of configs) {
    it(`conv→conv ${h}×${h}, stride ${s1}/${s2}, padding ${p1}/${p2}, and its conv→flatten→dense head`, () => {
      const model = convPair(h, s1, p1, s2, p2);
      const xs = randomTensor([6, h, h, 2], 31 + h);
      const ys = oneHotTargets(6, 3, 32);
      checkSite(model, 'c1->c2', xs, ys);
      checkSite(model, 'c2->out', xs, ys);
      model.dispose();
      tf.dispose([xs, ys]);
    });
  }

  it('conv sites through BatchNorm + max pooling, and through depthwise conv + average pooling', () => {
    for (const [build, shape] of [[cnnWithBnPool, [8, 8, 2]], [cnnWithDepthwise, [7, 7, 2]]] as const) {
      const model = build();
      const classes = (model.outputs[0]!.shape[1] as number);
      const xs = randomTensor([6, ...shape], 41);
      const ys = oneHotTargets(6, classes, 42);
      const loss = classes === 3 ? crossEntropy : softmaxCrossEntropy;
      checkSite(model, 'c1->c2', xs, ys, loss);
      checkSite(model, 'c2->out', xs, ys, loss);
      model.dispose();
      tf.dispose([xs, ys]);
    }
  });

  it('conv→global average / max pooling→dense heads', () => {
    for (const max of [false, true]) {
      const model = cnnWithGlobalPool(max);
      const xs = randomTensor([6, 6, 6, 2], 51);
      const ys = oneHotTargets(6, 3, 52);
      checkSite(model, 'c1->c2', xs, ys);
      checkSite(model, 'c2->out', xs, ys);
      model.dispose();
      tf.dispose([xs, ys]);
    }
  });
});
