/**
 * The probe's statistics against the core's naive references on the same data: dense M (Gemm pairs, float64 and
 * float32, several minibatches merged) and the exact conv growth matrix (stride 1/2, symmetric and asymmetric
 * pads, conv→flatten→dense). The gradient g is computed here in plain TypeScript from the forward activations.
 */
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { toBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema } from 'onnx-buf';
import { Matrix, Rng } from '@gradmax/core';
import { naiveConvGrowthMatrix, naiveDenseMoment } from '@gradmax/core/reference';
import { GraphBuilder } from './__tests__/graph.js';
import { DOUBLE, FLOAT } from './__tests__/fd.js';
import { relErr } from './__tests__/rel-err.js';
import { describeEachProvider, type TestProvider } from './__tests__/providers.js';
import { OnnxModel } from '../index.js';
import { computeStatistics } from './index.js';
import type { ProbeBatch } from './index.js';

/** float32 tolerance: GPU reductions sum in another order than the CPU provider. */
function tol(ep: TestProvider, cpu: number): number {
  return ep === 'webgpu' ? Math.max(cpu, 1e-5) : cpu;
}

function softmaxMinusOneHot(logits: ArrayLike<number>, n: number, c: number, labels: number[]): Float64Array {
  const g = new Float64Array(n * c);
  for (let i = 0; i < n; i++) {
    let max = -Infinity;
    for (let j = 0; j < c; j++) max = Math.max(max, logits[i * c + j]!);
    let s = 0;
    for (let j = 0; j < c; j++) s += Math.exp(logits[i * c + j]! - max);
    for (let j = 0; j < c; j++) g[i * c + j] = Math.exp(logits[i * c + j]! - max) / s - (labels[i] === j ? 1 : 0);
  }
  return g;
}

async function runForward(model: ReturnType<GraphBuilder['build']>, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const s = await ort.InferenceSession.create(toBinary(ModelProtoSchema, model));
  const out = await s.run(feeds);
  await s.release();
  return out;
}

describeEachProvider('dense statistics equal the naive moment', (ep) => {
  for (const dtype of [DOUBLE, FLOAT]) {
    it(`Gemm→Relu→Gemm (transB, alpha on the next layer), ${dtype === DOUBLE ? 'float64' : 'float32'}, merged over uneven minibatches`, async () => {
      const rng = new Rng(11);
      const [N, n0, n1, n2] = [23, 6, 5, 4];
      const b = new GraphBuilder(dtype);
      b.input('x', ['N', n0]);
      const w1 = b.init([n1, n0], rng.fillNormal(new Float64Array(n1 * n0)));
      const b1 = b.init([n1], rng.fillNormal(new Float64Array(n1)));
      const z1 = b.op1('Gemm', ['x', w1, b1], { transB: 1 }, 'fc1');
      const a1 = b.op1('Relu', [z1]);
      const w2 = b.init([n1, n2], rng.fillNormal(new Float64Array(n1 * n2)));
      const b2 = b.init([1, n2], rng.fillNormal(new Float64Array(n2)));
      const z2 = b.op1('Gemm', [a1, w2, b2], { alpha: { float: 0.8 } }, 'fc2');
      b.output(z2, ['N', n2]);
      const model = b.build();
      const x = rng.fillNormal(new Float64Array(N * n0));
      const labels = Array.from({ length: N }, () => rng.int(n2));
      const type = dtype === DOUBLE ? 'float64' : 'float32';
      const mk = (data: Float64Array, dims: number[]) => new ort.Tensor(type, type === 'float64' ? data : Float32Array.from(data), dims);
      const logits = (await runForward(model, { x: mk(x, [N, n0]) }))[z2]!.data as ArrayLike<number>;
      const g = softmaxMinusOneHot(logits, N, n2, labels);
      const expected = naiveDenseMoment(Matrix.from(N, n2, g), Matrix.from(N, n0, x));
      const cuts = [0, 7, 8, 23];
      const data: ProbeBatch[] = [];
      for (let k = 0; k + 1 < cuts.length; k++) {
        data.push({ inputs: mk(x.slice(cuts[k]! * n0, cuts[k + 1]! * n0), [cuts[k + 1]! - cuts[k]!, n0]), labels: Int32Array.from(labels.slice(cuts[k], cuts[k + 1])) });
      }
      const res = await computeStatistics(model, { executionProvider: ep, sites: [{ current: 'fc1', next: 'fc2', name: 'hidden' }], loss: { kind: 'ce-logits' }, data, batchSize: 5 });
      const snap = res.statistics.get('hidden')!.snapshot();
      expect(snap.count).toBe(N);
      expect([snap.moment.rows, snap.moment.cols]).toEqual([n2, n0]);
      expect(relErr(snap.moment.data, expected.data, 1e-300)).toBeLessThan(dtype === DOUBLE ? 1e-12 : tol(ep, 1e-5));
      let loss = 0;
      for (let i = 0; i < N; i++) {
        let max = -Infinity;
        for (let j = 0; j < n2; j++) max = Math.max(max, logits[i * n2 + j]!);
        let s = 0;
        for (let j = 0; j < n2; j++) s += Math.exp(logits[i * n2 + j]! - max);
        loss += Math.log(s) + max - logits[i * n2 + labels[i]!]!;
      }
      expect(Math.abs(res.meanLoss - loss / N)).toBeLessThan(dtype === DOUBLE ? 1e-12 : tol(ep, 1e-5));
    });
  }
});

describeEachProvider('MSE loss', (ep) => {
  it('dense M with targets streamed as plain tensors equals the naive moment of g = 2(y − t)/D', async () => {
    const rng = new Rng(21);
    const [N, n0, n1, n2] = [9, 3, 4, 2];
    const b = new GraphBuilder(DOUBLE);
    b.input('x', ['N', n0]);
    const w1 = b.init([n0, n1], rng.fillNormal(new Float64Array(n0 * n1)));
    const a1 = b.op1('Tanh', [b.op1('MatMul', ['x', w1], {}, 'l1')]);
    const w2 = b.init([n1, n2], rng.fillNormal(new Float64Array(n1 * n2)));
    const y = b.op1('MatMul', [a1, w2], {}, 'l2');
    b.output(y, ['N', n2]);
    const model = b.build();
    const x = rng.fillNormal(new Float64Array(N * n0));
    const t = rng.fillNormal(new Float64Array(N * n2));
    const yv = (await runForward(model, { x: new ort.Tensor('float64', x, [N, n0]) }))[y]!.data as Float64Array;
    const g = yv.map((v, i) => (2 * (v - t[i]!)) / n2);
    const expected = naiveDenseMoment(Matrix.from(N, n2, g), Matrix.from(N, n0, x));
    const res = await computeStatistics(model, { executionProvider: ep,
      sites: [{ current: 'l1', next: 'l2' }],
      loss: { kind: 'mse' },
      data: [{ inputs: { type: 'float64', data: x, dims: [N, n0] }, labels: { type: 'float64', data: t, dims: [N, n2] } }],
      batchSize: 4,
    });
    expect(relErr(res.statistics.get('l1->l2')!.snapshot().moment.data, expected.data, 1e-300)).toBeLessThan(1e-12);
    let loss = 0;
    for (let i = 0; i < N * n2; i++) loss += (yv[i]! - t[i]!) ** 2 / n2;
    expect(Math.abs(res.meanLoss - loss / N)).toBeLessThan(1e-12);
  });
});

interface ConvCase {
  name: string;
  size: [number, number];
  k1: number;
  s1: number;
  p1: [number, number, number, number];
  k2: number;
  s2: number;
  p2: [number, number, number, number];
}

const convCases: ConvCase[] = [
  { name: '3×3 same, stride 1', size: [7, 6], k1: 3, s1: 1, p1: [1, 1, 1, 1], k2: 3, s2: 1, p2: [1, 1, 1, 1] },
  { name: 'stride 2 both, even map', size: [8, 8], k1: 3, s1: 2, p1: [1, 1, 1, 1], k2: 3, s2: 2, p2: [1, 1, 1, 1] },
  { name: 'TF-style asymmetric same padding, stride 2', size: [8, 7], k1: 3, s1: 2, p1: [0, 1, 1, 1], k2: 3, s2: 2, p2: [0, 0, 1, 1] },
  { name: 'valid 1×1 then 3×3 stride 2', size: [7, 7], k1: 1, s1: 1, p1: [0, 0, 0, 0], k2: 3, s2: 2, p2: [0, 0, 0, 0] },
  { name: '2×2 then 3×3 with pad 2', size: [6, 5], k1: 2, s1: 1, p1: [0, 0, 0, 0], k2: 3, s2: 1, p2: [2, 1, 2, 2] },
];

/** NCHW flat → NHWC flat. */
function toNhwc(data: ArrayLike<number>, [n, c, h, w]: number[]): Float64Array {
  const out = new Float64Array(n * c * h * w);
  for (let i = 0; i < n; i++) for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[((i * h + y) * w + x) * c + ch] = data[((i * c + ch) * h + y) * w + x]!;
  return out;
}

describeEachProvider('conv statistics equal the naive exact growth matrix', (ep) => {
  for (const cc of convCases) {
    it(cc.name, async () => {
      const rng = new Rng(5);
      const [N, m0, m1, m2, classes] = [5, 2, 3, 4, 3];
      const [H0, W0] = cc.size;
      const b = new GraphBuilder(FLOAT);
      b.input('x', ['N', m0, H0, W0]);
      const w1 = b.init([m1, m0, cc.k1, cc.k1], rng.fillNormal(new Float64Array(m1 * m0 * cc.k1 * cc.k1)));
      const z1 = b.op1('Conv', ['x', w1], { strides: [cc.s1, cc.s1], pads: [cc.p1[0], cc.p1[1], cc.p1[2], cc.p1[3]] }, 'conv1');
      const a1 = b.op1('Relu', [z1]);
      const w2 = b.init([m2, m1, cc.k2, cc.k2], rng.fillNormal(new Float64Array(m2 * m1 * cc.k2 * cc.k2)));
      const b2 = b.init([m2], rng.fillNormal(new Float64Array(m2)));
      const z2 = b.op1('Conv', [a1, w2, b2], { strides: [cc.s2, cc.s2], pads: [cc.p2[0], cc.p2[1], cc.p2[2], cc.p2[3]] }, 'conv2');
      const a2 = b.op1('Relu', [z2]);
      const pooled = b.op1('GlobalAveragePool', [a2]);
      const flat = b.op1('Flatten', [pooled]);
      const w3 = b.init([m2, classes], rng.fillNormal(new Float64Array(m2 * classes)));
      const logits = b.op1('Gemm', [flat, w3], {}, 'head');
      b.output(logits, ['N', classes]);
      b.output(z2);
      const model = b.build();
      const x = Float32Array.from(rng.fillNormal(new Float64Array(N * m0 * H0 * W0)));
      const labels = Array.from({ length: N }, () => rng.int(classes));
      const fwd = await runForward(model, { x: new ort.Tensor('float32', x, [N, m0, H0, W0]) });
      const z2v = fwd[z2]!;
      const [, , H2, W2] = z2v.dims as number[];
      const gl = softmaxMinusOneHot(fwd[logits]!.data as Float32Array, N, classes, labels);
      const w3v = b.inits.find((t) => t.name === w3)!;
      const w3d = new Float32Array(w3v.rawData.slice().buffer);
      const gz2 = new Float64Array(N * m2 * H2! * W2!);
      for (let n = 0; n < N; n++) {
        for (let c = 0; c < m2; c++) {
          let gp = 0;
          for (let k = 0; k < classes; k++) gp += gl[n * classes + k]! * w3d[c * classes + k]!;
          for (let p = 0; p < H2! * W2!; p++) {
            const idx = (n * m2 + c) * H2! * W2! + p;
            gz2[idx] = (z2v.data as Float32Array)[idx]! > 0 ? gp / (H2! * W2!) : 0;
          }
        }
      }
      const res = await computeStatistics(model, { executionProvider: ep,
        sites: [{ current: 'conv1', next: 'conv2' }],
        loss: { kind: 'ce-logits', output: logits },
        data: [{ inputs: new ort.Tensor('float32', x, [N, m0, H0, W0]), labels }],
      });
      const stats = res.statistics.get('conv1->conv2')!;
      const geo = (stats as unknown as { geometry: Parameters<typeof naiveConvGrowthMatrix>[2] }).geometry;
      expect(geo.outputSize).toEqual([H2, W2]);
      const expected = naiveConvGrowthMatrix(
        { shape: [N, H0, W0, m0], data: toNhwc(x, [N, m0, H0, W0]) },
        { shape: [N, H2!, W2!, m2], data: toNhwc(gz2, [N, m2, H2!, W2!]) },
        geo,
      );
      const snap = stats.snapshot();
      expect([snap.moment.rows, snap.moment.cols]).toEqual([expected.rows, expected.cols]);
      expect(relErr(snap.moment.data, expected.data, 1e-300)).toBeLessThan(tol(ep, 2e-6));
      // The same site found by the IR's site finder (by name) gives the same geometry and statistics.
      const byName = await computeStatistics(new OnnxModel(model), { executionProvider: ep,
        sites: ['conv1->conv2'],
        loss: { kind: 'ce-logits', output: logits },
        data: [{ inputs: new ort.Tensor('float32', x, [N, m0, H0, W0]), labels }],
      });
      const named = byName.statistics.get('conv1->conv2')!;
      expect((named as unknown as { geometry: unknown }).geometry).toEqual(geo);
      expect(Array.from(named.snapshot().moment.data)).toEqual(Array.from(snap.moment.data));
    });
  }

  it('conv→Flatten→Gemm site (the dense layer as a conv covering the map)', async () => {
    const rng = new Rng(8);
    const [N, m0, m1, classes, H0, W0] = [6, 2, 3, 4, 5, 6];
    const b = new GraphBuilder(FLOAT);
    b.input('x', ['N', m0, H0, W0]);
    const w1 = b.init([m1, m0, 3, 3], rng.fillNormal(new Float64Array(m1 * m0 * 9)));
    const z1 = b.op1('Conv', ['x', w1], { strides: [2, 1], pads: [1, 0, 1, 1] }, 'conv1');
    const a1 = b.op1('Relu', [z1]);
    const flat = b.op1('Flatten', [a1]);
    b.output(z1);
    const feeds = { x: new ort.Tensor('float32', Float32Array.from(rng.fillNormal(new Float64Array(N * m0 * H0 * W0))), [N, m0, H0, W0]) };
    const midDims = (await runForward(b.build(), feeds))[z1]!.dims as number[];
    b.outputs = [];
    const F = m1 * midDims[2]! * midDims[3]!;
    const w2 = b.init([F, classes], rng.fillNormal(new Float64Array(F * classes)));
    const logits = b.op1('Gemm', [flat, w2], {}, 'fc');
    b.output(logits, ['N', classes]);
    const model = b.build();
    const labels = Array.from({ length: N }, () => rng.int(classes));
    const fwd = await runForward(model, feeds);
    const g = softmaxMinusOneHot(fwd[logits]!.data as Float32Array, N, classes, labels);
    const res = await computeStatistics(model, { executionProvider: ep, sites: [{ current: 'conv1', next: 'fc' }], loss: { kind: 'ce-logits' }, data: [{ inputs: feeds.x, labels }] });
    const stats = res.statistics.get('conv1->fc')!;
    const geo = (stats as unknown as { geometry: Parameters<typeof naiveConvGrowthMatrix>[2] }).geometry;
    expect(geo.kernel2).toEqual([midDims[2], midDims[3]]);
    const expected = naiveConvGrowthMatrix({ shape: [N, H0, W0, m0], data: toNhwc(feeds.x.data as Float32Array, [N, m0, H0, W0]) }, { shape: [N, 1, 1, classes], data: g }, geo);
    expect(relErr(stats.snapshot().moment.data, expected.data, 1e-300)).toBeLessThan(tol(ep, 2e-6));
  });

  it('refuses node-pair conv sites with pooling or another branch between the layers (the geometry would be wrong)', async () => {
    const rng = new Rng(12);
    const [N, m0, m1, m2, classes, H0] = [3, 2, 4, 3, 4, 8];
    const make = (between: (b: GraphBuilder, a: string) => string) => {
      const b = new GraphBuilder(FLOAT);
      b.input('x', ['N', m0, H0, H0]);
      const z1 = b.op1('Conv', ['x', b.init([m1, m0, 3, 3], rng.fillNormal(new Float64Array(m1 * m0 * 9)))], { pads: [1, 1, 1, 1] }, 'conv1');
      const mid = between(b, b.op1('Relu', [z1]));
      const z2 = b.op1('Conv', [mid, b.init([m2, m1, 3, 3], rng.fillNormal(new Float64Array(m2 * m1 * 9)))], { pads: [1, 1, 1, 1] }, 'conv2');
      const flat = b.op1('Flatten', [b.op1('GlobalAveragePool', [z2])]);
      b.output(b.op1('Gemm', [flat, b.init([m2, classes], rng.fillNormal(new Float64Array(m2 * classes)))], {}, 'fc'), ['N', classes]);
      return b.build();
    };
    const data = [{ inputs: new ort.Tensor('float32', Float32Array.from(rng.fillNormal(new Float64Array(N * m0 * H0 * H0))), [N, m0, H0, H0]), labels: [0, 1, 2] }];
    const run = (model: ReturnType<typeof make>) => computeStatistics(model, { executionProvider: ep, sites: [{ current: 'conv1', next: 'conv2' }], loss: { kind: 'ce-logits' }, data });
    // a 2x2 pool halves the map; a 3x3/1 'same' pool keeps its size but mixes positions; a residual Add joins a branch
    await expect(run(make((b, a) => b.op1('MaxPool', [a], { kernel_shape: [2, 2], strides: [2, 2] })))).rejects.toThrow(/MaxPool .* is not a per-channel op/);
    await expect(run(make((b, a) => b.op1('MaxPool', [a], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] })))).rejects.toThrow(/not a per-channel op/);
    await expect(run(make((b, a) => b.op1('Add', [a, b.op1('Relu', [a])])))).rejects.toThrow(/joins another branch/);
    // per-channel ops between (BatchNormalization, Mul by a constant) are accepted
    const ok = await run(make((b, a) => b.op1('Mul', [b.op1('BatchNormalization', [a, b.init([m1], [1, 2, 1, 1]), b.init([m1], [0, 0, 1, 0]), b.init([m1], [0, 0, 0, 0]), b.init([m1], [1, 1, 1, 1])]), b.init([1], [0.5])])));
    expect(ok.statistics.get('conv1->conv2')!.count).toBe(N);
  });
});
