import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { expect } from 'vitest';
import { collectGroupStatistics, findGrowthSites, groupToCoreSite, grow, type ChannelGroup } from '@gradmax/tfjs';
import type { Loss } from './gradient-check.js';

function group(model: tfl.LayersModel, name: string): ChannelGroup {
  const g = findGrowthSites(model).groups.find((x) => x.name === name);
  expect(g, `group ${name}`).toBeDefined();
  return g!;
}

/**
 * The autodiff gradient of every producer's kernel (inference mode), read in the group's core layout: each kernel
 * temporarily holds its own gradient, and the group's core site is read from that (its `incoming` rows are then the
 * units' incoming-weight gradients, producers' blocks side by side).
 */
function incomingGradient(model: tfl.LayersModel, g: ChannelGroup, xs: tf.Tensor, ys: tf.Tensor, loss: Loss) {
  const kernels = g.producers.map((p) => {
    const layer = model.getLayer(p.name);
    return layer.weights.find((w) => w.originalName.endsWith(layer.getClassName() === 'SeparableConv2D' ? 'pointwise_kernel' : '/kernel'))!;
  });
  const saved = kernels.map((k) => tf.clone(k.read()));
  const grads = tf.tidy(() => {
    const { grads } = tf.variableGrads(() => loss(ys, model.predict(xs) as tf.Tensor) as tf.Scalar, kernels.map((k) => k.read() as tf.Variable));
    return kernels.map((k) => tf.keep(grads[k.read().name]!));
  });
  kernels.forEach((k, i) => k.write(grads[i]!));
  const site = groupToCoreSite(model, g);
  kernels.forEach((k, i) => k.write(saved[i]!));
  tf.dispose([...saved, ...grads]);
  return site.incoming;
}

/**
 * Grows group `name` by k GradMax units and checks, for each new unit j within M's numerical rank, that the autodiff gradient of its incoming
 * weights (all producers) equals f'(0)·Σ_f Ω[f, j]·M[f, :] (M collected before growth), to 1e-4 relative.
 */
export function checkGroup(model: tfl.LayersModel, name: string, xs: tf.Tensor, ys: tf.Tensor, loss: Loss, k = 2): void {
  const g = group(model, name);
  const m = collectGroupStatistics(model, g, { xs, ys }, { loss }).snapshot().moment;
  const n = g.units;
  const { report } = grow(model, { site: name, units: k, strategy: 'gradmax', batch: { xs, ys }, loss, seed: 4 });
  // Directions beyond M's numerical rank are random and get no gradient; the others are checked.
  const rank = Math.min(k, report.strategyReport.numericalRank ?? k);
  expect(rank).toBeGreaterThan(0);
  const grownName = findGrowthSites(model).groups.find((x) => x.producers[0]!.name === g.producers[0]!.name)!.name;
  const grown = group(model, grownName);
  const core = groupToCoreSite(model, grown);
  const grad = incomingGradient(model, grown, xs, ys, loss);
  // M is the mean over examples of each example's own gradient: the gradient of the batch-mean loss.
  for (let j = 0; j < rank; j++) {
    let num = 0;
    let den = 0;
    for (let i = 0; i < m.cols; i++) {
      let pred = 0;
      for (let f = 0; f < m.rows; f++) pred += core.outgoing.get(f, n + j) * m.get(f, i);
      pred *= g.activation.df0;
      const actual = grad.get(n + j, i);
      num += (actual - pred) ** 2;
      den += pred ** 2;
    }
    expect(den).toBeGreaterThan(0);
    expect(Math.sqrt(num / den)).toBeLessThan(1e-4);
  }
}
