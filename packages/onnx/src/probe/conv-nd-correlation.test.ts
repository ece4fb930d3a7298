/**
 * The N-axis conv growth matrix (1-D, 2-D, 3-D convs, dilations on both layers; `ProbeSite.geometryND`) against the
 * core's naive N-D reference: conv1 → Relu → conv2 with an MSE loss on conv2's output, so the per-example gradient
 * at the site's pre-activation is g = 2(z2 − t)/(m2·Π H2).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { toBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema } from 'onnx-buf';
import { Rng, makeConvPairGeometryND } from '@gradmax/core';
import { naiveConvGrowthMatrixND } from '@gradmax/core/reference';
import { GraphBuilder } from './__tests__/graph.js';
import { FLOAT } from './__tests__/fd.js';
import { relErr } from './__tests__/rel-err.js';
import { computeStatistics } from './index.js';

interface NdCase {
  name: string;
  size: number[];
  k1: number[];
  s1?: number[];
  e1?: number[];
  p1?: number[];
  k2: number[];
  s2?: number[];
  e2?: number[];
  p2?: number[];
  m0: number;
  m2: number;
  opset?: number;
}

const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

async function ndSiteError(c: NdCase, seed: number, nonZero = true): Promise<number> {
  const rng = new Rng(seed);
  const n = c.size.length;
  const ones = new Array<number>(n).fill(1);
  const zeros = new Array<number>(2 * n).fill(0);
  const [N, m1] = [3, 2];
  const geo = makeConvPairGeometryND({ inChannels: c.m0, midChannels: m1, outChannels: c.m2, inputSize: c.size, kernel1: c.k1, stride1: c.s1 ?? ones, dilation1: c.e1 ?? ones, pads1: c.p1 ?? zeros, kernel2: c.k2, stride2: c.s2 ?? ones, dilation2: c.e2 ?? ones, pads2: c.p2 ?? zeros });
  const mid = geo.axes.map((a) => a.midSize);
  const out = geo.axes.map((a) => a.outSize);
  const b = new GraphBuilder(FLOAT);
  b.input('x', ['N', c.m0, ...c.size]);
  const w1 = b.init([m1, c.m0, ...c.k1], rng.fillNormal(new Float64Array(m1 * c.m0 * prod(c.k1))));
  const z1 = b.op1('Conv', ['x', w1], { strides: c.s1 ?? ones, dilations: c.e1 ?? ones, pads: c.p1 ?? zeros }, 'conv1');
  const a1 = b.op1('Relu', [z1]);
  const w2 = b.init([c.m2, m1, ...c.k2], rng.fillNormal(new Float64Array(c.m2 * m1 * prod(c.k2))));
  const z2 = b.op1('Conv', [a1, w2], { strides: c.s2 ?? ones, dilations: c.e2 ?? ones, pads: c.p2 ?? zeros }, 'conv2');
  b.output(z2, ['N', c.m2, ...out]);
  const model = b.build(c.opset ?? 17);
  const x = Float32Array.from(rng.fillNormal(new Float64Array(N * c.m0 * prod(c.size))));
  const t = Float32Array.from(rng.fillNormal(new Float64Array(N * c.m2 * prod(out))));
  const xT = new ort.Tensor('float32', x, [N, c.m0, ...c.size]);
  const s = await ort.InferenceSession.create(toBinary(ModelProtoSchema, model));
  const z = (await s.run({ x: xT }))[z2]!;
  await s.release();
  expect(z.dims).toEqual([N, c.m2, ...out]);
  const per = c.m2 * prod(out);
  const g = Float64Array.from(z.data as Float32Array, (v, i) => (2 * (v - t[i]!)) / per);
  const res = await computeStatistics(model, {
    sites: [{ name: 'pair', kind: 'conv', input: 'x', preActivation: z2, geometryND: geo }],
    loss: { kind: 'mse' },
    data: [{ inputs: xT, labels: new ort.Tensor('float32', t, [N, c.m2, ...out]) }],
  });
  const got = res.statistics.get('pair')!.snapshot().moment;
  const layer = (k: number[], s: number[] | undefined, e: number[] | undefined, p: number[] | undefined) => ({ kernel: k, stride: s ?? ones, dilation: e ?? ones, padBegin: (p ?? zeros).slice(0, n) });
  const expected = naiveConvGrowthMatrixND({ dims: [N, c.m0, ...c.size], data: x }, { dims: [N, c.m2, ...out], data: g }, { producer: layer(c.k1, c.s1, c.e1, c.p1), consumer: layer(c.k2, c.s2, c.e2, c.p2), midSize: mid });
  expect([got.rows, got.cols]).toEqual([expected.rows, expected.cols]);
  const scale = Math.max(...expected.data.map(Math.abs));
  if (nonZero) expect(scale).toBeGreaterThan(1e-4);
  if (scale === 0) return Math.max(...got.data.map(Math.abs)); // every window reads padding
  return relErr(got.data, expected.data, 1e-300);
}

const cases: NdCase[] = [
  { name: '1-D, pads on both sides', size: [11], k1: [3], p1: [1, 1], k2: [3], p2: [1, 1], m0: 2, m2: 3 },
  { name: '1-D, strides 2 and 3, asymmetric pads', size: [17], k1: [4], s1: [2], p1: [2, 1], k2: [3], s2: [3], p2: [0, 2], m0: 2, m2: 2 },
  { name: '1-D, dilations 2 and 3 with same padding (audio-style)', size: [20], k1: [3], e1: [2], p1: [2, 2], k2: [3], e2: [3], p2: [3, 3], m0: 2, m2: 2 },
  { name: '1-D, opset 11 (no Einsum), dilated strided next conv', size: [15], k1: [2], p1: [1, 0], k2: [3], s2: [2], e2: [2], p2: [2, 2], m0: 1, m2: 2, opset: 11 },
  { name: '2-D, dilated current conv (2, 1), pads on both sides', size: [9, 8], k1: [3, 3], e1: [2, 1], p1: [2, 1, 2, 1], k2: [3, 3], p2: [1, 1, 1, 1], m0: 2, m2: 2 },
  { name: '2-D, dilated next conv (DeepLab-style rate 2), stride 2 current conv', size: [12, 11], k1: [3, 3], s1: [2, 2], p1: [1, 1, 1, 1], k2: [3, 3], e2: [2, 2], p2: [2, 2, 2, 2], m0: 2, m2: 3 },
  { name: '3-D, pads on every side', size: [5, 6, 5], k1: [3, 3, 3], p1: [1, 1, 1, 1, 1, 1], k2: [3, 3, 3], p2: [1, 1, 1, 1, 1, 1], m0: 2, m2: 2 },
  { name: '3-D, (1,2,2) strides, (1,3,3) kernels (video stem)', size: [4, 9, 8], k1: [1, 3, 3], s1: [1, 2, 2], p1: [0, 1, 1, 0, 1, 1], k2: [3, 3, 3], s2: [1, 1, 2], p2: [1, 1, 1, 1, 1, 1], m0: 2, m2: 2 },
  { name: '3-D, dilated next conv, asymmetric pads', size: [6, 5, 7], k1: [2, 3, 1], p1: [1, 0, 0, 0, 2, 0], k2: [3, 2, 3], e2: [2, 1, 2], p2: [2, 1, 0, 1, 0, 3], m0: 1, m2: 2 },
];

describe('N-axis conv growth matrix (1-D, 3-D, dilated) equals the naive N-D reference', () => {
  cases.forEach((c, i) => {
    it(c.name, async () => {
      expect(await ndSiteError(c, 300 + i)).toBeLessThan(3e-6);
    });
  });

  it('random 1-D and 3-D geometries (kernels 1..4, strides 1..3, dilations 1..3, pads below the dilated kernel)', async () => {
    const axis = fc
      .record({ k1: fc.integer({ min: 1, max: 4 }), s1: fc.integer({ min: 1, max: 3 }), e1: fc.integer({ min: 1, max: 3 }), k2: fc.integer({ min: 1, max: 4 }), s2: fc.integer({ min: 1, max: 3 }), e2: fc.integer({ min: 1, max: 3 }), size: fc.integer({ min: 1, max: 12 }) })
      .chain((a) => fc.record({ p1: fc.tuple(fc.integer({ min: 0, max: a.e1 * (a.k1 - 1) }), fc.integer({ min: 0, max: a.e1 * (a.k1 - 1) })), p2: fc.tuple(fc.integer({ min: 0, max: a.e2 * (a.k2 - 1) }), fc.integer({ min: 0, max: a.e2 * (a.k2 - 1) })) }).map((p) => ({ ...a, ...p })));
    const geometry = fc
      .oneof(fc.array(axis, { minLength: 1, maxLength: 1 }), fc.array(axis, { minLength: 3, maxLength: 3 }))
      .map((axes): NdCase => ({
        name: 'random',
        size: axes.map((a) => a.size),
        k1: axes.map((a) => a.k1),
        s1: axes.map((a) => a.s1),
        e1: axes.map((a) => a.e1),
        p1: [...axes.map((a) => a.p1[0]), ...axes.map((a) => a.p1[1])],
        k2: axes.map((a) => a.k2),
        s2: axes.map((a) => a.s2),
        e2: axes.map((a) => a.e2),
        p2: [...axes.map((a) => a.p2[0]), ...axes.map((a) => a.p2[1])],
        m0: 1 + (axes[0]!.size % 2),
        m2: 2,
      }))
      .filter((c) => {
        try {
          const n = c.size.length;
          makeConvPairGeometryND({ inChannels: 1, midChannels: 1, outChannels: 1, inputSize: c.size, kernel1: c.k1, stride1: c.s1!, dilation1: c.e1!, pads1: c.p1!, kernel2: c.k2, stride2: c.s2!, dilation2: c.e2!, pads2: c.p2! });
          return n === 1 || prod(c.size) <= 400;
        } catch {
          return false;
        }
      });
    await fc.assert(
      fc.asyncProperty(geometry, fc.integer({ min: 0, max: 1 << 20 }), async (c, seed) => {
        expect(await ndSiteError(c, seed, false)).toBeLessThan(3e-6);
      }),
      { numRuns: 25, seed: 20261202 },
    );
  });
});
