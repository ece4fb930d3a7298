/**
 * Group statistics against finite differences: widen with one unit of zero incoming weights and outgoing Ω, then the
 * loss gradient with respect to the stacked incoming weights must equal f'(0) · Ωᵀ M_group. The activations on the
 * new channels' paths are smooth at 0 (tanh, GELU): at a ReLU kink central differences average the two one-sided
 * derivatives, while GradMax (and autodiff) use f'(0) = 1.
 */
import { describe, expect, it } from 'vitest';
import { Matrix, Rng, type NewUnits } from '@gradmax/core';
import { F32, F64, GraphBuilder } from './helpers.js';
import { findGroup, groupGrowthSite, runModel, widenGroup, type OnnxModel } from '@gradmax/onnx';
import { computeGroupStatistics } from '@gradmax/onnx/probe';

function meanCrossEntropy(logits: Float64Array, classes: number, labels: number[]): number {
  let total = 0;
  for (let n = 0; n < labels.length; n++) {
    const row = logits.subarray(n * classes, (n + 1) * classes);
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
    total += lse - row[labels[n]!]!;
  }
  return total / labels.length;
}

async function gradientCheck(build: () => GraphBuilder, groupName: string, inputShape: number[], classes: number, dtype: number, eps: number, tol: number) {
  const rng = new Rng(5);
  const n = inputShape[0]!;
  const size = inputShape.reduce((a, b) => a * b, 1);
  const x = Array.from({ length: size }, () => rng.normal());
  const labels = Array.from({ length: n }, () => rng.int(classes));
  const type = dtype === F64 ? 'float64' : 'float32';
  const data = dtype === F64 ? Float64Array.from(x) : Float32Array.from(x);
  const model = build().model();
  const { statistics, refused } = await computeGroupStatistics(model, {
    groups: [groupName],
    loss: { kind: 'ce-logits' },
    data: [{ inputs: { type, data, dims: inputShape }, labels }],
  });
  expect(refused.get(groupName), 'refused').toBeUndefined();
  const m = statistics.get(groupName)!.moment;
  const group = findGroup(model, groupName);
  const site = groupGrowthSite(model, group);
  expect([m.rows, m.cols]).toEqual([site.fanOut, site.fanIn]);
  const omega = Matrix.zeros(site.fanOut, 1);
  rng.fillNormal(omega.data);
  // predicted ∂L/∂A = f'(0) · Ωᵀ M
  const predicted = new Float64Array(site.fanIn);
  for (let i = 0; i < site.fanIn; i++) for (let r = 0; r < site.fanOut; r++) predicted[i] += site.activation.df0 * omega.data[r]! * m.data[r * site.fanIn + i]!;
  const loss = async (i: number, delta: number) => {
    const fresh: OnnxModel = build().model();
    const incoming = Matrix.zeros(1, site.fanIn);
    incoming.data[i] = delta;
    const units: NewUnits = { incoming, outgoing: omega, incomingBias: new Float64Array(1), report: { strategy: 'fd', site: groupName, count: 1, notes: [] } };
    widenGroup(fresh, groupName, units);
    const out = await runModel(fresh, { x: { type, data, dims: inputShape } });
    return meanCrossEntropy([...out.values()][0]!.data, classes, labels);
  };
  let worst = 0;
  const scale = Math.max(...predicted.map(Math.abs));
  for (let i = 0; i < site.fanIn; i++) {
    const fd = ((await loss(i, eps)) - (await loss(i, -eps))) / (2 * eps);
    worst = Math.max(worst, Math.abs(fd - predicted[i]!) / scale);
  }
  expect(scale).toBeGreaterThan(1e-3);
  expect(worst).toBeLessThan(tol);
  return { group, worst };
}

describe('group statistics (probe) against finite differences', () => {
  it('dense residual group (two producers, two consumers, DOUBLE)', async () => {
    const build = () => {
      const b = new GraphBuilder(new Rng(61), F64);
      const x = b.input('x', ['N', 4]);
      const g0 = b.op('Gemm', [x, b.weight([4, 5]), b.weight([5], 0.1)], {}, 1, 'fc0');
      const h0 = b.op('Mul', [b.op('Tanh', [g0]), b.tensor([], [0.5])]); // f'(0) = 1/2
      const h1 = b.op('Tanh', [b.op('Gemm', [h0, b.weight([5, 6]), b.weight([6], 0.1)], {}, 1, 'fc1')]);
      const h2 = b.op('Gemm', [h1, b.weight([6, 5]), b.weight([5], 0.1)], { alpha: 0.7 }, 1, 'fc2');
      const r = b.op('Tanh', [b.op('Add', [h2, h0])]);
      b.output(b.op('Gemm', [r, b.weight([5, 3])], {}, 1, 'head'), ['N', 3]);
      return b;
    };
    const { group, worst } = await gradientCheck(build, 'fc0', [8, 4], 3, F64, 1e-5, 1e-6);
    expect(group.members.producers).toEqual(['fc0', 'fc2']);
    expect(group.members.consumers).toEqual(['fc1', 'head']);
    expect(group.activation!.df0).toBeCloseTo(1, 12); // the largest path derivative (fc2's); fc0's blocks carry 0.5·tanh'(0) = 1/2
    expect(worst).toBeLessThan(1e-6);
  });

  it('conv residual group with a Flatten -> Gemm consumer (FLOAT)', async () => {
    const build = () => {
      const b = new GraphBuilder(new Rng(62), F32);
      const x = b.input('x', ['N', 2, 5, 5]);
      const h0 = b.op('Tanh', [b.op('Conv', [x, b.weight([3, 2, 3, 3], 0.4), b.weight([3], 0.1)], { pads: [1, 1, 1, 1] }, 1, 'conv0')]);
      const h1 = b.op('Tanh', [b.op('Conv', [h0, b.weight([4, 3, 3, 3], 0.4)], { pads: [1, 1, 1, 1] }, 1, 'conv1')]);
      const h2 = b.op('Conv', [h1, b.weight([3, 4, 3, 3], 0.4)], { pads: [1, 0, 1, 2] , strides: [1, 1] }, 1, 'conv2');
      const r = b.op('Tanh', [b.op('Add', [h2, h0])]);
      b.output(b.op('Gemm', [b.op('Flatten', [r]), b.weight([75, 3], 0.2)], {}, 1, 'head'), ['N', 3]);
      return b;
    };
    const { group } = await gradientCheck(build, 'conv0', [6, 2, 5, 5], 3, F32, 4e-3, 1e-3);
    expect(group.members.producers).toEqual(['conv0', 'conv2']);
  });

  it('through a strided centre-delta depthwise conv, and into a dense layer after GlobalAveragePool (FLOAT)', async () => {
    const build = () => {
      const b = new GraphBuilder(new Rng(64), F32);
      const x = b.input('x', ['N', 2, 7, 7]);
      const h0 = b.op('Tanh', [b.op('Conv', [x, b.weight([4, 2, 3, 3], 0.4), b.weight([4], 0.1)], { pads: [1, 1, 1, 1] }, 1, 'expand')]);
      const dw = b.op('Tanh', [b.op('Conv', [h0, b.weight([4, 1, 3, 3], 0.5), b.weight([4], 0.1)], { group: 4, pads: [1, 1, 1, 1], strides: [2, 2] }, 1, 'dw')]);
      const p = b.op('Tanh', [b.op('Conv', [dw, b.weight([3, 4, 3, 3], 0.4)], { pads: [1, 1, 1, 1] }, 1, 'project')]);
      b.output(b.op('Gemm', [b.op('Flatten', [b.op('GlobalAveragePool', [p])]), b.weight([3, 3], 0.8)], {}, 1, 'head'), ['N', 3]);
      return b;
    };
    await gradientCheck(build, 'expand', [5, 2, 7, 7], 3, F32, 4e-3, 1e-3);
    await gradientCheck(build, 'project', [5, 2, 7, 7], 3, F32, 4e-3, 1e-3);
  });

  it('a residual block whose last conv reads and writes the group (EfficientNet stage 1), FLOAT', async () => {
    const build = () => {
      const b = new GraphBuilder(new Rng(65), F32);
      const x = b.input('x', ['N', 2, 5, 5]);
      const h0 = b.op('Conv', [x, b.weight([3, 2, 3, 3], 0.4), b.weight([3], 0.1)], { pads: [1, 1, 1, 1] }, 1, 'conv0');
      const l = b.op('Conv', [b.op('Tanh', [h0]), b.weight([3, 3, 3, 3], 0.4), b.weight([3], 0.1)], { pads: [1, 1, 1, 1] }, 1, 'loop');
      const r = b.op('Tanh', [b.op('Add', [l, h0])]);
      b.output(b.op('Gemm', [b.op('Flatten', [r]), b.weight([75, 3], 0.2)], {}, 1, 'head'), ['N', 3]);
      return b;
    };
    const { group } = await gradientCheck(build, 'conv0', [6, 2, 5, 5], 3, F32, 4e-3, 1e-3);
    expect(group.members.producers).toEqual(['conv0', 'loop']);
    expect(group.members.consumers).toEqual(['loop', 'head']);
  });

  it('refuses a group whose pair matrices would be inexact, with the reason', async () => {
    const b = new GraphBuilder(new Rng(63), F32);
    const x = b.input('x', ['N', 2, 6, 6]);
    const h = b.op('AveragePool', [b.op('Relu', [b.op('Conv', [x, b.weight([3, 2, 3, 3])], {}, 1, 'c1')])], { kernel_shape: [2, 2], strides: [2, 2] });
    b.output(b.op('Conv', [h, b.weight([2, 3, 2, 2])], {}, 1, 'c2'), ['N', 2, 1, 1]);
    const { refused } = await computeGroupStatistics(b.model(), { groups: ['c1'], loss: { kind: 'mse' }, data: [] });
    expect(refused.get('c1')).toMatch(/inexact: AveragePool ".*" pools over space/);
  });
});
