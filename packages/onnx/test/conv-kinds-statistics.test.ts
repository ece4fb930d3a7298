/**
 * Group statistics for every conv kind (1-D and 3-D convs, dilations, grouped convs, stride-1 ConvTransposes) against
 * finite differences: widen with one zero-incoming unit per share and outgoing Ω, then the loss gradient with respect
 * to unit j's stacked incoming weights must equal f'(0) · Ω_jᵀ M_s(j), with M_s the growth matrix of j's share (the
 * only one for ungrouped groups). Activations are tanh (smooth at 0); graphs are FLOAT (onnxruntime's CPU Conv has no
 * DOUBLE kernel), so differences use eps 4e-3 and a 1e-3 relative tolerance.
 */
import { describe, expect, it } from 'vitest';
import { Matrix, Rng, gradmax, type NewUnits } from '@gradmax/core';
import { F32, GraphBuilder } from './helpers.js';
import { findGroup, groupGrowthSite, growModel, runModel, widenGroup, type OnnxModel } from '@gradmax/onnx';
import { computeGroupStatistics } from '@gradmax/onnx/probe';
import { meanCrossEntropy } from './group-helpers.js';

type Omega = 'random' | 'gradmax';

/** Finite-difference check of every new unit's incoming gradient; returns the group and the worst relative error. */
async function sharesCheck(build: () => GraphBuilder, groupName: string, inputShape: number[], classes: number, omegaFrom: Omega = 'random', eps = 4e-3) {
  const rng = new Rng(5);
  const n = inputShape[0]!;
  const size = inputShape.reduce((a, b) => a * b, 1);
  const data = Float32Array.from({ length: size }, () => rng.normal());
  const labels = Array.from({ length: n }, () => rng.int(classes));
  const input = { type: 'float32', data, dims: inputShape };
  const model = build().model();
  const { statistics, refused } = await computeGroupStatistics(model, { groups: [groupName], loss: { kind: 'ce-logits' }, data: [{ inputs: input, labels }] });
  expect(refused.get(groupName), 'refused').toBeUndefined();
  const stats = statistics.get(groupName)!;
  const group = findGroup(model, groupName);
  const G = group.multiple ?? 1;
  const shares = stats.shares?.map((s) => s.moment) ?? [stats.moment];
  expect(shares.length).toBe(G);
  const site = groupGrowthSite(model, group);
  for (const m of shares) expect([m.rows, m.cols]).toEqual([site.fanOut, site.fanIn]);
  let omega: Matrix;
  if (omegaFrom === 'gradmax') {
    const grown = growModel(build().model(), [{ site: groupName, count: G, statistics: stats }], { strategy: gradmax() });
    omega = grown[0]!.newUnits.outgoing;
    expect(grown[0]!.newUnits.incoming.data.every((v) => v === 0)).toBe(true);
  } else {
    omega = Matrix.zeros(site.fanOut, G);
    rng.fillNormal(omega.data);
  }
  const loss = async (j: number, i: number, delta: number) => {
    const fresh: OnnxModel = build().model();
    const incoming = Matrix.zeros(G, site.fanIn);
    incoming.data[j * site.fanIn + i] = delta;
    const units: NewUnits = { incoming, outgoing: omega, incomingBias: new Float64Array(G), report: { strategy: 'fd', site: groupName, count: G, notes: [] } };
    widenGroup(fresh, groupName, units);
    const out = await runModel(fresh, { x: input });
    return meanCrossEntropy([...out.values()][0]!.data, classes, labels);
  };
  let worst = 0;
  let scale = 0;
  const predictedAll: Float64Array[] = [];
  for (let j = 0; j < G; j++) {
    const m = shares[j]!;
    const predicted = new Float64Array(site.fanIn);
    for (let i = 0; i < site.fanIn; i++) for (let r = 0; r < site.fanOut; r++) predicted[i] += site.activation.df0 * omega.data[r * G + j]! * m.data[r * site.fanIn + i]!;
    predictedAll.push(predicted);
    scale = Math.max(scale, ...predicted.map(Math.abs));
  }
  for (let j = 0; j < G; j++) {
    for (let i = 0; i < site.fanIn; i++) {
      const fd = ((await loss(j, i, eps)) - (await loss(j, i, -eps))) / (2 * eps);
      worst = Math.max(worst, Math.abs(fd - predictedAll[j]![i]!) / scale);
    }
  }
  expect(scale).toBeGreaterThan(1e-3);
  expect(worst).toBeLessThan(1e-3);
  return { group, worst, shares };
}

const tanh = (b: GraphBuilder, x: string) => b.op('Tanh', [x]);

describe('group statistics for every conv kind, against finite differences', () => {
  it('1-D convs: a dilated consumer, and a Flatten -> Gemm consumer', async () => {
    const build = () => {
      const b = new GraphBuilder(new Rng(71), F32);
      const x = b.input('x', ['N', 2, 9]);
      const h0 = tanh(b, b.op('Conv', [x, b.weight([3, 2, 3], 0.4), b.weight([3], 0.1)], { pads: [1, 1] }, 1, 'c0'));
      const h1 = tanh(b, b.op('Conv', [h0, b.weight([2, 3, 3], 0.4)], { dilations: [2], pads: [2, 1], strides: [2] }, 1, 'c1'));
      b.output(b.op('Gemm', [b.op('Flatten', [h1]), b.weight([8, 3], 0.3)], {}, 1, 'head'), ['N', 3]);
      return b;
    };
    await sharesCheck(build, 'c0', [5, 2, 9], 3);
    await sharesCheck(build, 'c1', [5, 2, 9], 3);
  });

  it('3-D convs: strided kernels and a GlobalAveragePool -> Gemm consumer', async () => {
    const build = () => {
      const b = new GraphBuilder(new Rng(72), F32);
      const x = b.input('x', ['N', 2, 4, 5, 4]);
      const h0 = tanh(b, b.op('Conv', [x, b.weight([3, 2, 3, 3, 3], 0.3), b.weight([3], 0.1)], { pads: [1, 1, 1, 1, 1, 1] }, 1, 'c0'));
      const h1 = tanh(b, b.op('Conv', [h0, b.weight([3, 3, 2, 3, 3], 0.3)], { strides: [1, 2, 2], pads: [0, 1, 1, 1, 1, 0] }, 1, 'c1'));
      b.output(b.op('Gemm', [b.op('Flatten', [b.op('GlobalAveragePool', [h1])]), b.weight([3, 3], 0.8)], {}, 1, 'head'), ['N', 3]);
      return b;
    };
    await sharesCheck(build, 'c0', [4, 2, 4, 5, 4], 3);
    await sharesCheck(build, 'c1', [4, 2, 4, 5, 4], 3);
  });

  it('2-D dilations on the producer and on the consumer', async () => {
    const build = () => {
      const b = new GraphBuilder(new Rng(73), F32);
      const x = b.input('x', ['N', 2, 8, 7]);
      const h0 = tanh(b, b.op('Conv', [x, b.weight([3, 2, 3, 3], 0.4), b.weight([3], 0.1)], { dilations: [2, 1], pads: [2, 1, 2, 1] }, 1, 'c0'));
      const h1 = tanh(b, b.op('Conv', [h0, b.weight([2, 3, 3, 3], 0.4)], { dilations: [2, 2], pads: [2, 2, 2, 2] }, 1, 'c1'));
      b.output(b.op('Gemm', [b.op('Flatten', [h1]), b.weight([112, 3], 0.1)], {}, 1, 'head'), ['N', 3]);
      return b;
    };
    await sharesCheck(build, 'c0', [4, 2, 8, 7], 3);
  });

  const resnext = () => {
    const b = new GraphBuilder(new Rng(74), F32);
    const x = b.input('x', ['N', 4, 6, 6]);
    const h1 = tanh(b, b.op('Conv', [x, b.weight([4, 4, 1, 1], 0.4), b.weight([4], 0.1)], {}, 1, 'c1'));
    const h2 = tanh(b, b.op('Conv', [h1, b.weight([6, 2, 3, 3], 0.4), b.weight([6], 0.1)], { group: 2, pads: [1, 1, 1, 1] }, 1, 'c2'));
    const h3 = tanh(b, b.op('Conv', [h2, b.weight([3, 6, 1, 1], 0.4)], {}, 1, 'c3'));
    b.output(b.op('Gemm', [b.op('Flatten', [b.op('GlobalAveragePool', [h3])]), b.weight([3, 3], 0.8)], {}, 1, 'head'), ['N', 3]);
    return b;
  };

  it('grouped convs (ResNeXt block, group 2): a grouped consumer and a grouped producer, one matrix per share', async () => {
    const into = await sharesCheck(resnext, 'c1', [4, 4, 6, 6], 3);
    expect(into.group.multiple).toBe(2);
    const from = await sharesCheck(resnext, 'c2', [4, 4, 6, 6], 3);
    expect(from.group.multiple).toBe(2);
    // the shares differ: one growth matrix could not serve both
    for (const { shares } of [into, from]) {
      let diff = 0;
      for (let i = 0; i < shares[0]!.data.length; i++) diff = Math.max(diff, Math.abs(shares[0]!.data[i]! - shares[1]!.data[i]!));
      expect(diff).toBeGreaterThan(1e-3);
    }
  });

  it('grouped convs: GradMax grows per share, and the gradient identity holds for the units it creates', async () => {
    await sharesCheck(resnext, 'c2', [4, 4, 6, 6], 3, 'gradmax');
    await sharesCheck(resnext, 'c1', [4, 4, 6, 6], 3, 'gradmax');
  });

  it('stride-1 ConvTranspose as producer and as (dilated) consumer', async () => {
    const build = () => {
      const b = new GraphBuilder(new Rng(75), F32);
      const x = b.input('x', ['N', 2, 5, 5]);
      // ConvTranspose weight [in, out/group, k…]
      const h0 = tanh(b, b.op('ConvTranspose', [x, b.weight([2, 3, 3, 3], 0.4), b.weight([3], 0.1)], { pads: [0, 1, 1, 0] }, 1, 't0'));
      const h1 = tanh(b, b.op('ConvTranspose', [h0, b.weight([3, 2, 2, 3], 0.4)], { dilations: [2, 1], pads: [1, 0, 0, 1] }, 1, 't1'));
      b.output(b.op('Gemm', [b.op('Flatten', [b.op('GlobalAveragePool', [h1])]), b.weight([2, 3], 0.8)], {}, 1, 'head'), ['N', 3]);
      return b;
    };
    await sharesCheck(build, 't0', [4, 2, 5, 5], 3);
  });

  it('refuses a strided ConvTranspose with the reason', async () => {
    const b = new GraphBuilder(new Rng(76), F32);
    const x = b.input('x', ['N', 2, 4, 4]);
    const h0 = tanh(b, b.op('Conv', [x, b.weight([3, 2, 3, 3], 0.4)], { pads: [1, 1, 1, 1] }, 1, 'c0'));
    const h1 = tanh(b, b.op('ConvTranspose', [h0, b.weight([3, 2, 2, 2], 0.4)], { strides: [2, 2] }, 1, 'up'));
    b.output(b.op('Gemm', [b.op('Flatten', [b.op('GlobalAveragePool', [h1])]), b.weight([2, 3], 0.8)], {}, 1, 'head'), ['N', 3]);
    const { refused } = await computeGroupStatistics(b.model(), { groups: ['c0'], loss: { kind: 'ce-logits' }, data: [] });
    expect(refused.get('c0')).toMatch(/ConvTranspose "up" \(consumer\) with strides \[2, 2\] are not supported/);
  });

  it('growModel refuses GradMax on a grouped group without per-share statistics', () => {
    const model = resnext().model();
    const group = findGroup(model, 'c2');
    const site = groupGrowthSite(model, group);
    expect(() => growModel(model, [{ site: 'c2', count: 2, statistics: { moment: Matrix.zeros(site.fanOut, site.fanIn), count: 1 } }], { strategy: gradmax() })).toThrow(/has no per-share matrices|have no per-share matrices/);
  });
});
