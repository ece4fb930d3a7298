import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect } from 'vitest';
import { collectStatistics, findGrowthSites, grow, toCoreSite } from '@gradmax/tfjs';

export type Loss = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor;
export const crossEntropy: Loss = (yTrue, yPred) => tf.mean(tfl.metrics.categoricalCrossentropy(yTrue, yPred));
export const softmaxCrossEntropy: Loss = (yTrue, yPred) => tf.losses.softmaxCrossEntropy(yTrue, yPred);

/** Autodiff gradient (inference mode) of a layer's kernel, flat. */
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
export function checkSite(model: tfl.LayersModel, siteName: string, xs: tf.Tensor, ys: tf.Tensor, loss: Loss = crossEntropy, k = 2): void {
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

