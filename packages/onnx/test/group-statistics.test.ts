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
import { meanCrossEntropy } from './group-helpers.js';
import { convResidualFlatten, denseResidualGroup, stridedDepthwiseGap } from './group-patterns.js';

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
    const { group, worst } = await gradientCheck(denseResidualGroup, 'fc0', [8, 4], 3, F64, 1e-5, 1e-6);
    expect(group.members.producers).toEqual(['fc0', 'fc2']);
    expect(group.members.consumers).toEqual(['fc1', 'head']);
    expect(group.activation!.df0).toBeCloseTo(1, 12); // the largest path derivative (fc2's); fc0's blocks carry 0.5·tanh'(0) = 1/2
    expect(worst).toBeLessThan(1e-6);
  });

  it('conv residual group with a Flatten -> Gemm consumer (FLOAT)', async () => {
    const { group } = await gradientCheck(convResidualFlatten, 'conv0', [6, 2, 5, 5], 3, F32, 4e-3, 1e-3);
    expect(group.members.producers).toEqual(['conv0', 'conv2']);
  });

  it('through a strided centre-delta depthwise conv, and into a dense layer after GlobalAveragePool (FLOAT)', async () => {
    await gradientCheck(stridedDepthwiseGap, 'expand', [5, 2, 7, 7], 3, F32, 4e-3, 1e-3);
    await gradientCheck(stridedDepthwiseGap, 'project', [5, 2, 7, 7], 3, F32, 4e-3, 1e-3);
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
