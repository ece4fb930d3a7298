import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import '@gradmax/strategies/register';
import { RELU1, collectStatistics, findGrowthSites, grow, setupBackend } from '@gradmax/tfjs';
import { checkSite, softmaxCrossEntropy } from './gradient-check.js';
import { maxAbsDiff, oneHotTargets, outputOf, randomTensor } from './helpers.js';

const seeded = (seed: number) => ({ kernelInitializer: tfl.initializers.glorotUniform({ seed }) });

/** Input [null, null, 3] (any image size): c1 → BN → maxPool → c2 → c3 (stride 2) → global average pooling → out (3 classes). */
function anySizeCnn(size: [number | null, number | null] = [null, null]): tfl.LayersModel {
  const input = tfl.input({ shape: [...size, 3], name: 'img' });
  let x = tfl.layers.conv2d({ ...seeded(1), filters: 4, kernelSize: 3, padding: 'same', activation: RELU1, name: 'c1' }).apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization({ name: 'bn1' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.conv2d({ ...seeded(2), filters: 5, kernelSize: 3, padding: 'same', activation: RELU1, name: 'c2' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.conv2d({ ...seeded(3), filters: 3, kernelSize: 3, strides: 2, padding: 'same', activation: RELU1, name: 'c3' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ ...seeded(4), units: 3, name: 'out' }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out });
}

describe('models with dynamic input sizes ([null, null, null, C])', () => {
  beforeAll(async () => {
    await setupBackend('cpu', { log: false });
  });

  it('every site grows with GradMax on batches of two different image sizes, preserving the function', () => {
    const model = anySizeCnn();
    expect(model.inputs[0]!.shape).toEqual([null, null, null, 3]);
    const sites = findGrowthSites(model).sites.map((s) => s.name);
    expect(sites).toEqual(['c1->c2', 'c2->c3', 'c3->out']);
    for (const [size, seed] of [[8, 1], [11, 2]] as const) {
      const xs = randomTensor([4, size, size + 1, 3], seed);
      const ys = oneHotTargets(4, 3, seed);
      const before = outputOf(model, xs);
      const start = tf.memory().numTensors;
      for (const site of sites) grow(model, { site, units: 2, strategy: 'gradmax', batch: { xs, ys }, loss: softmaxCrossEntropy, seed });
      expect(tf.memory().numTensors).toBe(start);
      expect(maxAbsDiff(outputOf(model, xs), before)).toBeLessThan(1e-5);
      tf.dispose([xs, ys]);
    }
    expect(findGrowthSites(model).sites.map((s) => s.units)).toEqual([8, 9, 7]);
    model.dispose();
  });

  it("GradMax's predicted gradient equals autodiff for every site (as for the same model with a fixed input size)", () => {
    const xs = randomTensor([5, 9, 7, 3], 3);
    const ys = oneHotTargets(5, 3, 4);
    const model = anySizeCnn();
    for (const site of ['c1->c2', 'c2->c3', 'c3->out']) checkSite(model, site, xs, ys, softmaxCrossEntropy);
    model.dispose();
    const fixed = anySizeCnn([9, 7]);
    for (const site of ['c1->c2', 'c2->c3', 'c3->out']) checkSite(fixed, site, xs, ys, softmaxCrossEntropy);
    fixed.dispose();
    tf.dispose([xs, ys]);
  });

  it('statistics accumulate over batches of different sizes; strategies without statistics need no batch', () => {
    const model = anySizeCnn();
    const site = findGrowthSites(model).sites[0]!;
    const a = randomTensor([2, 6, 6, 3], 5);
    const b = randomTensor([3, 10, 8, 3], 6);
    const acc = collectStatistics(model, [site], { xs: a, ys: oneHotTargets(2, 3, 1) }, { loss: softmaxCrossEntropy });
    collectStatistics(model, [site], { xs: b, ys: oneHotTargets(3, 3, 2) }, { loss: softmaxCrossEntropy, into: acc });
    expect(acc.get(site.name)!.snapshot().count).toBe(5);
    const before = outputOf(model, b);
    grow(model, { site: 'c2->c3', units: 3, strategy: 'randomOutgoingZero', seed: 1 });
    expect(maxAbsDiff(outputOf(model, b), before)).toBeLessThan(1e-5);
    model.dispose();
    tf.dispose([a, b]);
  });
});

describe('channel groups with dynamic input sizes', () => {
  beforeAll(async () => {
    await setupBackend('cpu', { log: false });
  });

  it('a residual group of a [null, null, 3] model grows with GradMax and NORTH on two image sizes, function preserved', () => {
    const input = tfl.input({ shape: [null, null, 3], name: 'img' });
    const stem = tfl.layers.conv2d({ ...seeded(11), filters: 4, kernelSize: 3, padding: 'same', name: 'stem' }).apply(input) as tfl.SymbolicTensor;
    const a = tfl.layers.conv2d({ ...seeded(12), filters: 4, kernelSize: 3, padding: 'same', activation: RELU1, name: 'a' }).apply(stem) as tfl.SymbolicTensor;
    const b = tfl.layers.conv2d({ ...seeded(13), filters: 4, kernelSize: 3, strides: 1, padding: 'same', name: 'b' }).apply(a) as tfl.SymbolicTensor;
    const sum = tfl.layers.add({ name: 'add' }).apply([stem, b]) as tfl.SymbolicTensor;
    const pooled = tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool' }).apply(sum) as tfl.SymbolicTensor;
    const c = tfl.layers.conv2d({ ...seeded(14), filters: 3, kernelSize: 3, padding: 'same', activation: RELU1, name: 'c' }).apply(pooled) as tfl.SymbolicTensor;
    const gap = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(c) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: tfl.layers.dense({ ...seeded(15), units: 3, name: 'out' }).apply(gap) as tfl.SymbolicTensor });
    const group = findGrowthSites(model).groups.map((g) => g.name);
    expect(group).toEqual(['stem+b->a+c']);
    for (const [h, w, seed] of [[8, 6, 1], [11, 9, 2]] as const) {
      const xs = randomTensor([3, h, w, 3], seed);
      const ys = oneHotTargets(3, 3, seed);
      const before = outputOf(model, xs);
      const name = findGrowthSites(model).groups[0]!.name;
      grow(model, { site: name, units: 2, strategy: 'gradmax', batch: { xs, ys }, loss: softmaxCrossEntropy, seed });
      expect(maxAbsDiff(outputOf(model, xs), before)).toBeLessThan(1e-5);
      // NORTH's input samples take the map size of the batch too: one row per example and position, all kept here.
      const { report } = grow(model, { site: findGrowthSites(model).groups[0]!.name, units: 1, strategy: 'north', batch: { xs, ys }, seed });
      expect(report.strategyReport['notOrthogonal']).toBe(0);
      expect(maxAbsDiff(outputOf(model, xs), before)).toBeLessThan(1e-5);
      tf.dispose([xs, ys]);
    }
    expect(findGrowthSites(model).groups[0]!.units).toBe(10);
    model.dispose();
  });
});
