/**
 * The probe's in-graph sketches (Y = M·Ω, W = Ψ·M) against the naive sketch of the exact probe's M on the same data
 * (`SketchStatistics.addSum` with the same seeded test matrices): conv pairs with strides, symmetric, asymmetric and
 * large pads, an intermediate map no output window fully covers, conv→flatten→dense, gradients arriving through a
 * tiling MaxPool (per-tap lattices), and dense pairs (float64, float32). Also the `auto` rule and the
 * reconstruction's captured GradMax objective against the exact M.
 */
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { Matrix, Rng, SketchStatistics, makeConvPairGeometry, svd } from '@gradmax/core';
import type { ModelProto } from 'onnx-buf';
import { GraphBuilder } from './__tests__/graph.js';
import { DOUBLE, FLOAT } from './__tests__/fd.js';
import { relErr } from './__tests__/rel-err.js';
import { buildProbe, computeStatistics, preferSketch, statisticCosts } from './index.js';
import type { NodePairSite, ProbeBatch } from './index.js';

interface ConvCase {
  name: string;
  size: [number, number];
  k1: number;
  s1: number;
  p1: [number, number, number, number];
  k2: number;
  s2: number;
  p2: [number, number, number, number];
  pool?: boolean;
}

const convCases: ConvCase[] = [
  { name: '3×3 same, stride 1', size: [7, 6], k1: 3, s1: 1, p1: [1, 1, 1, 1], k2: 3, s2: 1, p2: [1, 1, 1, 1] },
  { name: 'stride 2 both, even map', size: [8, 8], k1: 3, s1: 2, p1: [1, 1, 1, 1], k2: 3, s2: 2, p2: [1, 1, 1, 1] },
  { name: 'TF-style asymmetric same padding, stride 2', size: [8, 7], k1: 3, s1: 2, p1: [0, 1, 1, 1], k2: 3, s2: 2, p2: [0, 0, 1, 1] },
  { name: 'valid 3×3 stride 2 leaves the last intermediate row unread', size: [8, 8], k1: 1, s1: 1, p1: [0, 0, 0, 0], k2: 3, s2: 2, p2: [0, 0, 0, 0] },
  { name: '3×3 then 1×1 stride 2 (one-tap weight gradients, strided reads)', size: [8, 8], k1: 3, s1: 1, p1: [1, 1, 1, 1], k2: 1, s2: 2, p2: [0, 0, 0, 0] },
  { name: '1×1 then 1×1 (both weight gradients one-tap)', size: [5, 6], k1: 1, s1: 1, p1: [0, 0, 0, 0], k2: 1, s2: 1, p2: [0, 0, 0, 0] },
  { name: '1×1 then 3×3 with pads 3 and 1 (beyond the kernel reach: the flipped Conv crops g)', size: [5, 6], k1: 1, s1: 1, p1: [0, 0, 0, 0], k2: 3, s2: 1, p2: [3, 1, 0, 3] },
  { name: '2×2 then 3×3 with pad 2', size: [6, 5], k1: 2, s1: 1, p1: [0, 0, 0, 0], k2: 3, s2: 1, p2: [2, 1, 2, 2] },
  { name: 'gradient through a tiling 2×2 MaxPool (lattices)', size: [8, 8], k1: 3, s1: 1, p1: [1, 1, 1, 1], k2: 3, s2: 1, p2: [1, 1, 1, 1], pool: true },
];

function convModel(cc: ConvCase, rng: Rng, m0: number, m1: number, m2: number, classes: number): ModelProto {
  const b = new GraphBuilder(FLOAT);
  const [H, W] = cc.size;
  b.input('x', ['N', m0, H, W]);
  const w1 = b.init([m1, m0, cc.k1, cc.k1], rng.fillNormal(new Float64Array(m1 * m0 * cc.k1 * cc.k1)));
  const z1 = b.op1('Conv', ['x', w1], { strides: [cc.s1, cc.s1], pads: [...cc.p1] }, 'conv1');
  const a1 = b.op1('Relu', [z1]);
  const w2 = b.init([m2, m1, cc.k2, cc.k2], rng.fillNormal(new Float64Array(m2 * m1 * cc.k2 * cc.k2)));
  const z2 = b.op1('Conv', [a1, w2], { strides: [cc.s2, cc.s2], pads: [...cc.p2] }, 'conv2');
  let a2 = b.op1('Relu', [z2]);
  if (cc.pool) a2 = b.op1('MaxPool', [a2], { kernel_shape: [2, 2], strides: [2, 2] });
  const pooled = b.op1('GlobalAveragePool', [a2]);
  const flat = b.op1('Flatten', [pooled]);
  const w3 = b.init([m2, classes], rng.fillNormal(new Float64Array(m2 * classes)));
  b.output(b.op1('Gemm', [flat, w3], {}, 'fc'), ['N', classes]);
  return b.build();
}

/** The naive sketch of an exact statistic's summed M with the seeded test matrices of (rank, seed). */
function naiveSketch(exact: { snapshot(): { moment: Matrix; count: number } }, rank: number, seed: number): SketchStatistics {
  const snap = exact.snapshot();
  const sum = new Matrix(snap.moment.rows, snap.moment.cols, snap.moment.data.map((v) => v * snap.count));
  const s = new SketchStatistics(sum.rows, sum.cols, { rank, seed });
  s.addSum(sum, snap.count);
  return s;
}

function expectSketchesMatch(actual: SketchStatistics, expected: SketchStatistics, tolerance: number): void {
  expect(actual.count).toBe(expected.count);
  expect([actual.fanOut, actual.fanIn, actual.rank, actual.rowSketch]).toEqual([expected.fanOut, expected.fanIn, expected.rank, expected.rowSketch]);
  expect(relErr(actual.rangeSum().data, expected.rangeSum().data, 1e-300)).toBeLessThan(tolerance);
  expect(relErr(actual.coRangeSum().data, expected.coRangeSum().data, 1e-300)).toBeLessThan(tolerance);
}

describe('sketched conv statistics equal the naive sketch of the exact M', () => {
  for (const cc of convCases) {
    it(cc.name, async () => {
      const rng = new Rng(31);
      const [N, m0, m1, m2, classes] = [5, 3, 4, 5, 4];
      const model = convModel(cc, rng, m0, m1, m2, classes);
      const [H, W] = cc.size;
      const x = new ort.Tensor('float32', Float32Array.from(rng.fillNormal(new Float64Array(N * m0 * H * W))), [N, m0, H, W]);
      const data: ProbeBatch[] = [
        { inputs: x, labels: Int32Array.from({ length: N }, () => rng.int(classes)) },
        { inputs: x, labels: Int32Array.from({ length: N }, () => rng.int(classes)) },
      ];
      const sites: NodePairSite[] = [{ current: 'conv1', next: 'conv2' }];
      const exact = await computeStatistics(model, { sites, loss: { kind: 'ce-logits' }, data });
      const sketch = await computeStatistics(model, { sites, loss: { kind: 'ce-logits' }, data, statistics: 'sketch', sketchRank: 3, sketchSeed: 7 });
      expect(sketch.probe.outputs[0]!.layout).toBe('sketch');
      const actual = sketch.statistics.get('conv1->conv2') as SketchStatistics;
      expect(actual).toBeInstanceOf(SketchStatistics);
      expectSketchesMatch(actual, naiveSketch(exact.statistics.get('conv1->conv2')!, 3, 7), 1e-4);
    });
  }

  it('conv→Flatten→Gemm site', async () => {
    const rng = new Rng(5);
    const [N, m0, m1, H0, W0, classes] = [4, 2, 3, 5, 4, 3];
    const b = new GraphBuilder(FLOAT);
    b.input('x', ['N', m0, H0, W0]);
    const z1 = b.op1('Conv', ['x', b.init([m1, m0, 3, 3], rng.fillNormal(new Float64Array(m1 * m0 * 9)))], { strides: [2, 1], pads: [1, 0, 1, 1] }, 'conv1');
    const flat = b.op1('Flatten', [b.op1('Relu', [z1])]);
    const F = m1 * 3 * 3;
    b.output(b.op1('Gemm', [flat, b.init([F, classes], rng.fillNormal(new Float64Array(F * classes)))], {}, 'fc'), ['N', classes]);
    const model = b.build();
    const data = [{ inputs: new ort.Tensor('float32', Float32Array.from(rng.fillNormal(new Float64Array(N * m0 * H0 * W0))), [N, m0, H0, W0]), labels: [0, 2, 1, 1] }];
    const sites = [{ current: 'conv1', next: 'fc' }];
    const exact = await computeStatistics(model, { sites, loss: { kind: 'ce-logits' }, data });
    const sketch = await computeStatistics(model, { sites, loss: { kind: 'ce-logits' }, data, statistics: 'sketch', sketchRank: 2 });
    expectSketchesMatch(sketch.statistics.get('conv1->fc') as SketchStatistics, naiveSketch(exact.statistics.get('conv1->fc')!, 2, 0), 1e-4);
  });
});

describe('sketched dense statistics equal the naive sketch of the exact M', () => {
  for (const dtype of [DOUBLE, FLOAT]) {
    it(`Gemm→Relu→Gemm, ${dtype === DOUBLE ? 'float64' : 'float32'}`, async () => {
      const rng = new Rng(17);
      const [N, n0, n1, n2] = [9, 7, 5, 6];
      const b = new GraphBuilder(dtype);
      b.input('x', ['N', n0]);
      const z1 = b.op1('Gemm', ['x', b.init([n1, n0], rng.fillNormal(new Float64Array(n1 * n0)))], { transB: 1 }, 'fc1');
      const z2 = b.op1('Gemm', [b.op1('Relu', [z1]), b.init([n1, n2], rng.fillNormal(new Float64Array(n1 * n2)))], {}, 'fc2');
      b.output(z2, ['N', n2]);
      const model = b.build();
      const type = dtype === DOUBLE ? 'float64' : 'float32';
      const xs = rng.fillNormal(new Float64Array(N * n0));
      const x = new ort.Tensor(type, type === 'float64' ? xs : Float32Array.from(xs), [N, n0]);
      const labels = Int32Array.from({ length: N }, () => rng.int(n2));
      const sites = [{ current: 'fc1', next: 'fc2', name: 'hidden' }];
      const opts = { sites, loss: { kind: 'ce-logits' as const }, data: [{ inputs: x, labels }] };
      const exact = await computeStatistics(model, opts);
      const sketch = await computeStatistics(model, { ...opts, statistics: 'sketch', sketchRank: 4, sketchSeed: 3 });
      expectSketchesMatch(sketch.statistics.get('hidden') as SketchStatistics, naiveSketch(exact.statistics.get('hidden')!, 4, 3), dtype === DOUBLE ? 1e-10 : 1e-4);
    });
  }
});

describe('auto statistics and the sketch’s GradMax objective', () => {
  it('auto keeps the exact M for small sites and sketches large ones (the documented rule)', async () => {
    const settings = { rank: 16, rowSketch: 33, seed: 0 };
    const resnet = (m0: number, m1: number, m2: number, size: number, s1: 1 | 2) =>
      makeConvPairGeometry({ inChannels: m0, midChannels: m1, outChannels: m2, inputSize: [size * s1, size * s1], kernel1: [3, 3], stride1: s1, padding1: 'same', kernel2: [3, 3], stride2: 1, padding2: 'same' });
    const decide = (geo: ReturnType<typeof resnet>) => {
      const F = 9 * geo.outChannels;
      const K = 9 * geo.inChannels;
      return preferSketch(F, K, statisticCosts(F, K, geo, settings), 'conv');
    };
    // ResNet-18 at 64×64: every pair is sketched; a 3×3 pair of 16 channels (M 144 × 144) stays exact.
    expect(decide(resnet(64, 64, 64, 16, 1))).toBe(true);
    expect(decide(resnet(16, 16, 16, 16, 1))).toBe(false);
    expect(decide(resnet(64, 128, 128, 8, 2))).toBe(true);
    expect(decide(resnet(256, 512, 512, 2, 2))).toBe(true);
    // Dense: an MLP's 256 × 784 stays exact (too small), 3072 × 768 is sketched.
    expect(preferSketch(256, 784, statisticCosts(256, 784, undefined, settings), 'dense')).toBe(false);
    expect(preferSketch(3072, 768, statisticCosts(3072, 768, undefined, settings), 'dense')).toBe(true);
    // A DenseNet-121 pair: 1×1 (256 → 128) then 3×3 (128 → 32) on 8×8: M is 288 × 256.
    const dense121 = makeConvPairGeometry({ inChannels: 256, midChannels: 128, outChannels: 32, inputSize: [8, 8], kernel1: [1, 1], kernel2: [3, 3], padding2: 'same' });
    expect(preferSketch(288, 256, statisticCosts(288, 256, dense121, settings), 'conv')).toBe(true);
    const rng = new Rng(2);
    const model = convModel(convCases[0]!, rng, 2, 3, 2, 3);
    const probe = await buildProbe(model, { sites: [{ current: 'conv1', next: 'conv2' }], loss: { kind: 'ce-logits' }, statistics: 'auto' });
    expect(probe.outputs[0]!.layout).toBe('tap-gradient');
    await expect(buildProbe(model, { sites: [{ current: 'conv1', next: 'conv2' }], loss: { kind: 'ce-logits' }, statistics: 'fast' as never })).rejects.toThrow(/statistics must be/);
  });

  it('recovers the exact M and GradMax’s top-k objective ‖U_kᵀM‖_F when rank(M) ≤ r', async () => {
    // One example: M is a sum of one rank-1 term per intermediate position (4×4 = 16), below r = 20.
    const rng = new Rng(44);
    const cc = convCases[1]!;
    const [N, m0, m1, m2, classes] = [1, 4, 6, 8, 5];
    const model = convModel(cc, rng, m0, m1, m2, classes);
    const [H, W] = cc.size;
    const x = new ort.Tensor('float32', Float32Array.from(rng.fillNormal(new Float64Array(N * m0 * H * W))), [N, m0, H, W]);
    const data = [{ inputs: x, labels: Int32Array.from({ length: N }, () => rng.int(classes)) }];
    const sites = [{ current: 'conv1', next: 'conv2' }];
    const exact = (await computeStatistics(model, { sites, loss: { kind: 'ce-logits' }, data })).statistics.get('conv1->conv2')!.snapshot().moment;
    const sk = (await computeStatistics(model, { sites, loss: { kind: 'ce-logits' }, data, statistics: 'sketch', sketchRank: 20 })).statistics.get('conv1->conv2') as SketchStatistics;
    expect(relErr(sk.approximation().data, exact.data, 1e-300)).toBeLessThan(1e-4);
    const k = 4;
    const u = sk.reconstruct().u;
    const ue = svd(exact).u;
    const captured = (basis: Matrix) => {
      let t = 0;
      for (let j = 0; j < k; j++) for (let c = 0; c < exact.cols; c++) {
        let v = 0;
        for (let i = 0; i < exact.rows; i++) v += basis.data[i * basis.cols + j]! * exact.data[i * exact.cols + c]!;
        t += v * v;
      }
      return Math.sqrt(t);
    };
    const ratio = captured(u) / captured(ue);
    expect(ratio).toBeGreaterThan(1 - 1e-6);
    expect(ratio).toBeLessThan(1 + 1e-6);
  });
});
