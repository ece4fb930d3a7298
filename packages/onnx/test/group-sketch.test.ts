/**
 * Sketched group statistics against the naive sketch of the exact stacked group matrix on the same data: every pair
 * gets the blocks of its group's test matrices, and the pair sketches (scaled by the path derivative, averaged over
 * the taps of a mean-reading consumer) must add up to the group's Y = M·Ω and W = Ψ·M.
 */
import { describe, expect, it } from 'vitest';
import { Matrix, Rng, SketchStatistics } from '@gradmax/core';
import { F32, F64, GraphBuilder } from './helpers.js';
import { computeGroupStatistics } from '@gradmax/onnx/probe';
import { convResidualFlatten, denseResidualGroup, stridedDepthwiseGap } from './group-patterns.js';

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-300));
}

async function compare(build: () => GraphBuilder, group: string, inputShape: number[], classes: number, dtype: number, tolerance: number): Promise<void> {
  const rng = new Rng(9);
  const size = inputShape.reduce((a, b) => a * b, 1);
  const x = Array.from({ length: size }, () => rng.normal());
  const labels = Array.from({ length: inputShape[0]! }, () => rng.int(classes));
  const type = dtype === F64 ? 'float64' : 'float32';
  const data = [{ inputs: { type, data: dtype === F64 ? Float64Array.from(x) : Float32Array.from(x), dims: inputShape }, labels }];
  const model = build().model();
  const exact = await computeGroupStatistics(model, { groups: [group], loss: { kind: 'ce-logits' }, data });
  const sketched = await computeGroupStatistics(model, { groups: [group], loss: { kind: 'ce-logits' }, data, statistics: 'sketch', sketchRank: 3, sketchSeed: 5 });
  expect(exact.sketches.size).toBe(0);
  const sk = sketched.sketches.get(group)!;
  expect(sk).toBeInstanceOf(SketchStatistics);
  const snap = exact.statistics.get(group)!;
  const naive = new SketchStatistics(snap.moment.rows, snap.moment.cols, { rank: 3, seed: 5 });
  naive.addSum(new Matrix(snap.moment.rows, snap.moment.cols, snap.moment.data.map((v) => v * snap.count)), snap.count);
  expect(sk.count).toBe(snap.count);
  expect(relErr(sk.rangeSum().data, naive.rangeSum().data)).toBeLessThan(tolerance);
  expect(relErr(sk.coRangeSum().data, naive.coRangeSum().data)).toBeLessThan(tolerance);
  // The statistics entry is the sketch's snapshot: a rank-≤3 matrix of the group's shape.
  const approx = sketched.statistics.get(group)!.moment;
  expect([approx.rows, approx.cols]).toEqual([snap.moment.rows, snap.moment.cols]);
}

describe('sketched group statistics equal the naive sketch of the exact group matrix', () => {
  it('dense residual group (two producers, two consumers, DOUBLE)', async () => {
    await compare(denseResidualGroup, 'fc0', [7, 4], 3, F64, 1e-10);
  });

  it('conv residual group with a Flatten -> Gemm consumer (FLOAT)', async () => {
    await compare(convResidualFlatten, 'conv0', [6, 2, 5, 5], 3, F32, 1e-4);
  });

  it('through a strided centre-delta depthwise conv, and into a dense layer after GlobalAveragePool (FLOAT)', async () => {
    await compare(stridedDepthwiseGap, 'expand', [5, 2, 7, 7], 3, F32, 1e-4);
    await compare(stridedDepthwiseGap, 'project', [5, 2, 7, 7], 3, F32, 1e-4);
  });

  it('through a MaxPool (ResNet stem k3 s2 p1) into a residual stage whose last conv reads and writes the group (FLOAT)', async () => {
    const build = () => {
      const b = new GraphBuilder(new Rng(66), F32);
      const x = b.input('x', ['N', 2, 8, 8]);
      const stem = b.op('Conv', [x, b.weight([3, 2, 3, 3], 0.4), b.weight([3], 0.1)], { pads: [1, 1, 1, 1], strides: [2, 2] }, 1, 'stem');
      const p = b.op('MaxPool', [b.op('Tanh', [stem])], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
      const loop = b.op('Conv', [b.op('Tanh', [p]), b.weight([3, 3, 3, 3], 0.4), b.weight([3], 0.1)], { pads: [1, 1, 1, 1] }, 1, 'loop');
      const r = b.op('Tanh', [b.op('Add', [loop, p])]);
      b.output(b.op('Gemm', [b.op('Flatten', [r]), b.weight([12, 3], 0.2)], {}, 1, 'head'), ['N', 3]);
      return b;
    };
    await compare(build, 'stem', [6, 2, 8, 8], 3, F32, 1e-4);
  });
});
