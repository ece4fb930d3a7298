import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { RELU1, collectStatistics, findGrowthSites, grow, setupBackend, toCoreSite } from '@gradmax/tfjs';
import { oneHotTargets, randomTensor } from './helpers.js';
import { cnnWithBnPool, cnnWithDepthwise, mlpWithBn } from './models.js';

/** Autodiff gradient (inference mode, mean categorical cross-entropy) of a layer's kernel, flat. */
type Loss = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor;
const crossEntropy: Loss = (yTrue, yPred) => tf.mean(tfl.metrics.categoricalCrossentropy(yTrue, yPred));
const softmaxCrossEntropy: Loss = (yTrue, yPred) => tf.losses.softmaxCrossEntropy(yTrue, yPred);

function kernelGradient(model: tfl.LayersModel, layer: string, xs: tf.Tensor, ys: tf.Tensor, loss: Loss): Float32Array {
  const kernel = model.getLayer(layer).weights.find((w) => w.originalName.endsWith('kernel'))!;
  return tf.tidy(() => {
    const { grads } = tf.variableGrads(() => loss(ys, model.predict(xs) as tf.Tensor) as tf.Scalar, [kernel.read() as tf.Variable]);
    return Object.values(grads)[0]!.dataSync() as Float32Array;
  });
}

/**
 * Grows `site` by k GradMax units and checks, for each new unit j, that the autodiff gradient of its incoming weights
 * equals f'(0)·Σ_f Ω[f, j]·M[f, :] (M collected before growth) to 1e-4 relative, and that its norm is c·σ_j.
 */
function checkSite(model: tfl.LayersModel, siteName: string, xs: tf.Tensor, ys: tf.Tensor, loss: Loss = crossEntropy, k = 2): void {
  const site = findGrowthSites(model).sites.find((s) => s.name === siteName)!;
  expect(site).toBeDefined();
  const m = collectStatistics(model, [site], { xs, ys }, { loss }).get(siteName)!.snapshot().moment;
  const n1 = site.units;
  const { report } = grow(model, { site: siteName, units: k, strategy: 'gradmax', batch: { xs, ys }, loss, seed: 4 });
  const grown = toCoreSite(model, findGrowthSites(model).sites.find((s) => s.name === siteName)!);
  const grad = kernelGradient(model, site.current, xs, ys, loss);
  const width = n1 + k;
  const fanIn = grad.length / width;
  const sigma = report.strategyReport.singularValues!;
  const c = report.strategyReport['outgoingNorm'] as number;
  for (let j = 0; j < k; j++) {
    let num = 0;
    let den = 0;
    let norm = 0;
    for (let i = 0; i < fanIn; i++) {
      let pred = 0;
      for (let f = 0; f < m.rows; f++) pred += grown.outgoing.get(f, n1 + j) * m.get(f, i);
      pred *= site.activation.df0;
      const actual = grad[i * width + n1 + j]!;
      num += (actual - pred) ** 2;
      den += pred ** 2;
      norm += actual ** 2;
    }
    expect(den).toBeGreaterThan(0);
    expect(Math.sqrt(num / den)).toBeLessThan(1e-4);
    expect(Math.abs(Math.sqrt(norm) - c * sigma[j]!) / (c * sigma[j]!)).toBeLessThan(1e-4);
  }
}

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
});
