/**
 * Input samples of channel groups (what NORTH reads): each producer's block of a sample row, times the producer's
 * incoming weights, must equal that producer's pre-activation at the row's (example, position), computed
 * independently by a fresh tfjs-layers layer of the same class and geometry (linear, no bias) on the producer's
 * input. Covers every producer class and geometry of the test models (strided, dilated, transposed,
 * separable, Dense on rank-3 inputs, broadcast Dense gates), the reservoir rule, leaks, and NORTH's orthogonality on
 * a group.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import '@gradmax/strategies/register';
import { reservoirKey, type Matrix } from '@gradmax/core';
import { collectGroupInputSamples, findGrowthSites, groupToCoreSite, grow, setupBackend, type ChannelGroup } from '@gradmax/tfjs';
import { imageToImageModel } from './architectures.js';
import { ARCHS, batchFor, logits, type Arch } from './group-archs.js';
import { oneHotTargets, perturbBatchNorm, randomTensor } from './helpers.js';

type T = tfl.SymbolicTensor;

/** Conv1D dilated, Conv1D strided valid, Dense on a rank-3 input; Conv3D dilated and strided; Conv2DTranspose valid stride 2, dilated Conv2D. */
function geometryModels(): { name: string; model: tfl.LayersModel; input: number[] }[] {
  let seed = 70;
  const init = () => ({ kernelInitializer: tfl.initializers.glorotUniform({ seed: seed++ }), biasInitializer: tfl.initializers.randomUniform({ minval: -0.2, maxval: 0.2, seed: seed++ }) });
  const s0 = tfl.input({ shape: [11, 3] });
  let s = tfl.layers.conv1d({ ...init(), filters: 3, kernelSize: 3, dilationRate: 2, padding: 'same', name: 'dilated1d' }).apply(s0) as T;
  s = tfl.layers.conv1d({ ...init(), filters: 4, kernelSize: 3, strides: 2, padding: 'valid', name: 'strided' }).apply(s) as T;
  s = tfl.layers.dense({ ...init(), units: 3, name: 'rank3' }).apply(s) as T;
  s = tfl.layers.dense({ ...init(), units: 2, name: 'mix' }).apply(s) as T;
  const seq = tfl.model({ inputs: s0, outputs: tfl.layers.dense({ ...init(), units: 2, name: 'out' }).apply(tfl.layers.flatten().apply(s) as T) as T });
  const i0 = tfl.input({ shape: [4, 5, 2] });
  let x = tfl.layers.conv2dTranspose({ ...init(), filters: 3, kernelSize: 3, strides: 2, padding: 'valid', name: 'tvalid' }).apply(i0) as T;
  x = tfl.layers.conv2d({ ...init(), filters: 3, kernelSize: 3, dilationRate: 2, padding: 'same', name: 'dil' }).apply(x) as T;
  x = tfl.layers.conv2d({ ...init(), filters: 2, kernelSize: 1, name: 'pw' }).apply(x) as T;
  const img = tfl.model({ inputs: i0, outputs: tfl.layers.dense({ ...init(), units: 2, name: 'out' }).apply(tfl.layers.globalAveragePooling2d({}).apply(x) as T) as T });
  const v0 = tfl.input({ shape: [5, 4, 4, 2] });
  let v = tfl.layers.conv3d({ ...init(), filters: 2, kernelSize: [2, 3, 2], dilationRate: [2, 1, 2], padding: 'same', name: 'dil3d' }).apply(v0) as T;
  v = tfl.layers.conv3d({ ...init(), filters: 2, kernelSize: 2, strides: 2, padding: 'valid', name: 'str3d' }).apply(v) as T;
  v = tfl.layers.conv3d({ ...init(), filters: 2, kernelSize: 1, name: 'pw3d' }).apply(v) as T;
  const vol = tfl.model({ inputs: v0, outputs: tfl.layers.dense({ ...init(), units: 2, name: 'out' }).apply(tfl.layers.flatten().apply(v) as T) as T });
  return [
    { name: 'Conv1D dilated and strided, Dense on rank 3', model: seq, input: [11, 3] },
    { name: 'Conv3D dilated and strided', model: vol, input: [5, 4, 4, 2] },
    { name: 'Conv2DTranspose valid stride 2, dilated Conv2D', model: img, input: [4, 5, 2] },
  ];
}

/** A fresh linear, bias-free layer of `layer`'s class and geometry holding its kernel(s). */
function linearTwin(layer: tfl.layers.Layer): tfl.layers.Layer {
  const c = layer.getConfig() as Record<string, unknown>;
  const common = { useBias: false, activation: 'linear' as const };
  const geometry = { kernelSize: c['kernelSize'] as number[], strides: c['strides'] as number[], padding: c['padding'] as 'same', dilationRate: c['dilationRate'] as number[] };
  const make: Record<string, () => tfl.layers.Layer> = {
    Dense: () => tfl.layers.dense({ ...common, units: c['units'] as number }),
    Conv1D: () => tfl.layers.conv1d({ ...common, ...geometry, filters: c['filters'] as number } as Parameters<typeof tfl.layers.conv1d>[0]),
    Conv2D: () => tfl.layers.conv2d({ ...common, ...geometry, filters: c['filters'] as number }),
    Conv3D: () => tfl.layers.conv3d({ ...common, ...geometry, filters: c['filters'] as number }),
    SeparableConv2D: () => tfl.layers.separableConv2d({ ...common, ...geometry, filters: c['filters'] as number, depthMultiplier: c['depthMultiplier'] as number }),
    Conv2DTranspose: () => tfl.layers.conv2dTranspose({ ...common, kernelSize: geometry.kernelSize, strides: geometry.strides, padding: geometry.padding, filters: c['filters'] as number }),
  };
  const twin = make[layer.getClassName()]!();
  twin.build(layer.inboundNodes[0]!.inputShapes as tfl.Shape);
  const kernels = layer.getWeights().filter((_, i) => !layer.weights[i]!.originalName.endsWith('/bias'));
  twin.setWeights(kernels);
  return twin;
}

/** Pre-activations `[B, P, units]` (no bias) of every producer of `group`, independently of the adapter. */
function producerPreActivations(model: tfl.LayersModel, group: ChannelGroup, xs: tf.Tensor): { data: Float32Array; positions: number }[] {
  return group.producers.map((p) => {
    const layer = model.getLayer(p.name);
    const sub = tfl.model({ inputs: model.inputs, outputs: layer.input as T });
    const twin = linearTwin(layer);
    const out = tf.tidy(() => twin.apply(sub.predict(xs) as tf.Tensor) as tf.Tensor);
    const positions = out.size / (out.shape[0]! * group.units);
    const data = out.dataSync() as Float32Array;
    out.dispose();
    for (const w of twin.weights) w.dispose();
    return { data, positions };
  });
}

/** Row index (example·P + position) of each retained row: all rows, sorted by reservoir key. */
function keyOrder(rows: number, seed: number): number[] {
  return Array.from({ length: rows }, (_, r) => r).sort((a, b) => reservoirKey(seed, a) - reservoirKey(seed, b));
}

/** Checks every producer block of every retained row against the independent pre-activations (1e-5 relative). */
function checkRows(model: tfl.LayersModel, group: ChannelGroup, xs: tf.Tensor, h: Matrix, order: number[]): void {
  const core = groupToCoreSite(model, group);
  const pre = producerPreActivations(model, group, xs);
  const P = Math.max(...pre.map((p) => p.positions));
  expect(h.rows).toBe(order.length);
  let col = 0;
  group.producers.forEach((p, i) => {
    const width = blockWidth(model, group, i);
    const { data, positions } = pre[i]!;
    let num = 0;
    let den = 0;
    order.forEach((r, row) => {
      const n = Math.floor(r / P);
      const u = positions === 1 ? 0 : r % P;
      for (let j = 0; j < group.units; j++) {
        let v = 0;
        for (let c = col; c < col + width; c++) v += h.get(row, c) * core.incoming.get(j, c);
        const expected = data[(n * positions + u) * group.units + j]!;
        num = Math.max(num, Math.abs(v - expected));
        den = Math.max(den, Math.abs(expected));
      }
    });
    expect(den, `producer ${p.name}`).toBeGreaterThan(0);
    expect(num / den, `producer ${p.name}`).toBeLessThan(1e-5);
    col += width;
  });
  expect(col).toBe(core.fanIn);
}

/** Width of producer i's block in the stacked incoming matrix (its kernel size over the units). */
function blockWidth(model: tfl.LayersModel, group: ChannelGroup, i: number): number {
  const layer = model.getLayer(group.producers[i]!.name);
  const kernel = layer.weights.find((w) => w.originalName.endsWith(layer.getClassName() === 'SeparableConv2D' ? 'pointwise_kernel' : '/kernel'))!;
  return kernel.shape.reduce((a, b) => a! * b!, 1)! / group.units;
}

describe('group input samples', () => {
  beforeAll(async () => {
    await setupBackend('cpu', { log: false, fastCpuConvBackward: true });
  });

  const cases: { name: string; model: () => tfl.LayersModel; batch: (n: number, seed: number) => { xs: tf.Tensor; ys: tf.Tensor } }[] = [
    ...ARCHS.map((arch: Arch) => ({ name: arch.name, model: arch.build, batch: (n: number, seed: number) => batchFor(arch, n, seed) })),
    { name: 'dilated Conv2D (image-to-image)', model: () => imageToImageModel(2), batch: (n: number, seed: number) => batchFor(ARCHS[7]!, n, seed) },
    ...geometryModels().map((g) => ({ name: g.name, model: () => g.model, batch: (n: number, seed: number) => ({ xs: randomTensor([n, ...g.input], seed), ys: oneHotTargets(n, 2, seed + 1) }) })),
  ];

  for (const c of cases) {
    it(`${c.name}: every producer's block of every row gives its pre-activation (independent layers); no leaks`, () => {
      const model = c.model();
      perturbBatchNorm(model, 5);
      const { xs, ys } = c.batch(3, 9);
      const groups = findGrowthSites(model).groups;
      expect(groups.length).toBeGreaterThan(0);
      for (const group of groups) {
        const before = tf.memory().numTensors;
        const stats = collectGroupInputSamples(model, group, { xs, ys }, { retainSamples: 100000, seed: 3 });
        expect(tf.memory().numTensors).toBe(before);
        expect(stats.inputsOnly).toBe(true);
        expect([stats.moment.rows, stats.samples!.g.cols]).toEqual([0, 0]);
        const rows = stats.samples!.h.rows;
        expect(rows % 3).toBe(0);
        checkRows(model, group, xs, stats.samples!.h, keyOrder(rows, 3));
      }
      model.dispose();
      tf.dispose([xs, ys]);
    });
  }

  it('the reservoir keeps the retainSamples rows with the smallest keys (deterministic per seed)', () => {
    const arch = ARCHS[0]!;
    const model = arch.build();
    const { xs, ys } = batchFor(arch, 3, 4);
    const group = findGrowthSites(model).groups[0]!;
    const all = collectGroupInputSamples(model, group, { xs, ys }, { retainSamples: 100000, seed: 8 }).samples!.h;
    const few = collectGroupInputSamples(model, group, { xs, ys }, { retainSamples: 7, seed: 8 }).samples!.h;
    expect(all.rows).toBe(3 * 64);
    expect(few.rows).toBe(7);
    expect(Array.from(few.data)).toEqual(Array.from(all.data.subarray(0, 7 * all.cols)));
    const other = collectGroupInputSamples(model, group, { xs, ys }, { retainSamples: 7, seed: 9 }).samples!.h;
    expect(Array.from(other.data)).not.toEqual(Array.from(few.data));
    expect(() => collectGroupInputSamples(model, group, { xs, ys }, { retainSamples: 0 })).toThrow(/retainSamples must be a positive integer/);
    model.dispose();
    tf.dispose([xs, ys]);
  });

  it('NORTH on a group: new units have group pre-activations orthogonal to the existing ones on the samples', () => {
    const arch = ARCHS[0]!;
    const model = arch.build();
    perturbBatchNorm(model, 6);
    const { xs, ys } = batchFor(arch, 4, 12);
    const name = arch.groups[0]!;
    const group = findGrowthSites(model).groups.find((g) => g.name === name)!;
    const { report } = grow(model, { site: name, units: 2, strategy: 'north', batch: { xs, ys }, loss: logits, seed: 3 });
    expect(report.strategyReport['notOrthogonal']).toBe(0);
    expect(report.statisticsExamples).toBe(4);
    // Producers' inputs are unchanged by this growth (zero outgoing weights): the same rows, now with the new units.
    const grown = findGrowthSites(model).groups.find((g) => g.producers[0]!.name === 'stem')!;
    const h = collectGroupInputSamples(model, grown, { xs, ys }, { seed: 3 }).samples!.h;
    const core = groupToCoreSite(model, grown);
    const bias = core.incomingBias!;
    const pre = (j: number, withBias: boolean) => Array.from({ length: h.rows }, (_, r) => {
      let v = withBias ? bias[j]! : 0;
      for (let c = 0; c < h.cols; c++) v += h.get(r, c) * core.incoming.get(j, c);
      return v;
    });
    const dot = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i]!, 0);
    const norm = (a: number[]) => Math.sqrt(dot(a, a));
    const n = group.units;
    for (let k = n; k < n + 2; k++) {
      const added = pre(k, false);
      expect(norm(added)).toBeGreaterThan(0);
      for (let j = 0; j < k; j++) {
        const other = pre(j, j < n);
        expect(Math.abs(dot(added, other)) / (norm(added) * norm(other))).toBeLessThan(1e-6);
      }
    }
    model.dispose();
    tf.dispose([xs, ys]);
  });
});
