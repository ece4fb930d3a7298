/**
 * The conv tap gradient computed as one combined-kernel correlation plus inclusion–exclusion corrections for the
 * boundary rows/columns that the next conv's padding masks, against the core's naive exact growth matrix — on
 * geometries where the mask matters (pads on both sides, stride 2 with odd and even maps, k2 = 5 with p2 = 2,
 * asymmetric pads, boundary blocks that read only padding, opset 11) and on random geometries; and conv → [Relu →]
 * MaxPool sites (per-window-tap gradients, or the Indices path) with tied window maxima, against a gradient routed
 * by hand.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { toBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema } from 'onnx-buf';
import type { ModelProto } from 'onnx-buf';
import { Rng } from '@gradmax/core';
import type { ConvPairGeometry } from '@gradmax/core';
import { naiveConvGrowthMatrix } from '@gradmax/core/reference';
import { GraphBuilder } from './__tests__/graph.js';
import { FLOAT } from './__tests__/fd.js';
import { relErr } from './__tests__/rel-err.js';
import { buildProbe, computeStatistics } from './index.js';

type Pads = [number, number, number, number]; // top, left, bottom, right

interface Geometry {
  size: [number, number];
  k1: [number, number];
  s1: [number, number];
  p1: Pads;
  k2: [number, number];
  s2: [number, number];
  p2: Pads;
  m0: number;
  m2: number;
}

function outSize(size: number, k: number, s: number, before: number, after: number): number {
  return Math.floor((size + before + after - k) / s) + 1;
}

/** Spatial sizes [H1, W1, H2, W2] of a geometry (ONNX Conv, floor mode). */
function sizes(g: Geometry): [number, number, number, number] {
  const h1 = outSize(g.size[0], g.k1[0], g.s1[0], g.p1[0], g.p1[2]);
  const w1 = outSize(g.size[1], g.k1[1], g.s1[1], g.p1[1], g.p1[3]);
  return [h1, w1, outSize(h1, g.k2[0], g.s2[0], g.p2[0], g.p2[2]), outSize(w1, g.k2[1], g.s2[1], g.p2[1], g.p2[3])];
}

/** NCHW flat → NHWC flat. */
function toNhwc(data: ArrayLike<number>, [n, c, h, w]: number[]): Float64Array {
  const out = new Float64Array(n * c * h * w);
  for (let i = 0; i < n; i++) for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[((i * h + y) * w + x) * c + ch] = data[((i * c + ch) * h + y) * w + x]!;
  return out;
}

async function forward(model: ModelProto, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const s = await ort.InferenceSession.create(toBinary(ModelProtoSchema, model));
  try {
    return await s.run(feeds);
  } finally {
    await s.release();
  }
}

/**
 * conv1 → Relu → conv2 with an MSE loss read directly on conv2's output, so the per-example gradient at the site's
 * pre-activation is g = 2(z2 − t)/(m2·H2·W2): the probe's statistic is compared with the naive growth matrix of g.
 * Returns the relative error.
 */
async function mseSiteError(geo: Geometry, seed: number, opset = 17): Promise<number> {
  const rng = new Rng(seed);
  const [N, m1] = [3, 2];
  const { m0, m2 } = geo;
  const [H0, W0] = geo.size;
  const [, , H2, W2] = sizes(geo);
  const b = new GraphBuilder(FLOAT);
  b.input('x', ['N', m0, H0, W0]);
  const w1 = b.init([m1, m0, geo.k1[0], geo.k1[1]], rng.fillNormal(new Float64Array(m1 * m0 * geo.k1[0] * geo.k1[1])));
  const z1 = b.op1('Conv', ['x', w1], { strides: geo.s1, pads: geo.p1 }, 'conv1');
  const a1 = b.op1('Relu', [z1]);
  const w2 = b.init([m2, m1, geo.k2[0], geo.k2[1]], rng.fillNormal(new Float64Array(m2 * m1 * geo.k2[0] * geo.k2[1])));
  const z2 = b.op1('Conv', [a1, w2], { strides: geo.s2, pads: geo.p2 }, 'conv2');
  b.output(z2, ['N', m2, H2, W2]);
  const model = b.build(opset);
  const x = Float32Array.from(rng.fillNormal(new Float64Array(N * m0 * H0 * W0)));
  const t = Float32Array.from(rng.fillNormal(new Float64Array(N * m2 * H2 * W2)));
  const xT = new ort.Tensor('float32', x, [N, m0, H0, W0]);
  const z = (await forward(model, { x: xT }))[z2]!;
  expect(z.dims).toEqual([N, m2, H2, W2]);
  const per = m2 * H2 * W2;
  const g = Float64Array.from(z.data as Float32Array, (v, i) => (2 * (v - t[i]!)) / per);
  const res = await computeStatistics(model, {
    sites: [{ current: 'conv1', next: 'conv2' }],
    loss: { kind: 'mse' },
    data: [{ inputs: xT, labels: new ort.Tensor('float32', t, [N, m2, H2, W2]) }],
  });
  const stats = res.statistics.get('conv1->conv2')!;
  const geometry = (stats as unknown as { geometry: ConvPairGeometry }).geometry;
  expect(geometry.outputSize).toEqual([H2, W2]);
  const expected = naiveConvGrowthMatrix({ shape: [N, H0, W0, m0], data: toNhwc(x, [N, m0, H0, W0]) }, { shape: [N, H2, W2, m2], data: toNhwc(g, [N, m2, H2, W2]) }, geometry);
  const got = stats.snapshot().moment;
  expect([got.rows, got.cols]).toEqual([expected.rows, expected.cols]);
  return relErr(got.data, expected.data, 1e-300);
}

const sq = (v: number): [number, number] => [v, v];

const cases: (Geometry & { name: string; opset?: number })[] = [
  { name: '3×3 pads on both sides, stride 1, odd map', size: [9, 7], k1: sq(3), s1: sq(1), p1: [1, 1, 1, 1], k2: sq(3), s2: sq(1), p2: [1, 1, 1, 1], m0: 2, m2: 3 },
  { name: 'stride 2 next conv, odd map', size: [9, 9], k1: sq(3), s1: sq(1), p1: [1, 1, 1, 1], k2: sq(3), s2: sq(2), p2: [1, 1, 1, 1], m0: 2, m2: 2 },
  { name: 'stride 2 next conv, even map', size: [8, 10], k1: sq(3), s1: sq(1), p1: [1, 1, 1, 1], k2: sq(3), s2: sq(2), p2: [1, 1, 1, 1], m0: 1, m2: 3 },
  { name: 'stride 2 both convs, odd map', size: [11, 9], k1: sq(3), s1: sq(2), p1: [1, 1, 1, 1], k2: sq(3), s2: sq(2), p2: [1, 1, 1, 1], m0: 2, m2: 2 },
  { name: 'k2 = 5 with p2 = 2 (two masked rows/columns per side)', size: [8, 9], k1: sq(3), s1: sq(1), p1: [1, 1, 1, 1], k2: sq(5), s2: sq(1), p2: [2, 2, 2, 2], m0: 2, m2: 2 },
  { name: 'k2 = 5, p2 = 2, stride 2 both', size: [12, 11], k1: sq(3), s1: sq(2), p1: [1, 1, 1, 1], k2: sq(5), s2: sq(2), p2: [2, 2, 2, 2], m0: 1, m2: 2 },
  { name: 'asymmetric pads on both convs', size: [9, 8], k1: sq(4), s1: sq(1), p1: [0, 2, 3, 1], k2: sq(5), s2: sq(1), p2: [3, 0, 1, 4], m0: 2, m2: 2 },
  { name: 'TF-style same, stride 2, even map', size: [8, 8], k1: sq(3), s1: sq(2), p1: [0, 0, 1, 1], k2: sq(3), s2: sq(2), p2: [0, 0, 1, 1], m0: 2, m2: 2 },
  { name: 'non-square kernels and strides', size: [10, 7], k1: [2, 3], s1: [1, 2], p1: [1, 0, 0, 2], k2: [3, 1], s2: [2, 1], p2: [2, 0, 1, 0], m0: 2, m2: 3 },
  { name: '1×1 current conv with pads 2: boundary blocks that read only padding', size: [5, 6], k1: sq(1), s1: sq(1), p1: [2, 2, 2, 2], k2: sq(3), s2: sq(1), p2: [2, 2, 2, 2], m0: 2, m2: 2 },
  { name: '1×1 then 1×1 (one offset: a product over batch and positions)', size: [6, 5], k1: sq(1), s1: sq(1), p1: [0, 0, 0, 0], k2: sq(1), s2: sq(1), p2: [0, 0, 0, 0], m0: 3, m2: 2 },
  { name: '1×1 then 1×1 stride 2 (one offset, strided reads)', size: [7, 6], k1: sq(1), s1: sq(1), p1: [0, 0, 0, 0], k2: sq(1), s2: sq(2), p2: [0, 0, 0, 0], m0: 2, m2: 3 },
  { name: 'valid convs (no mask at all)', size: [9, 8], k1: sq(3), s1: sq(1), p1: [0, 0, 0, 0], k2: sq(3), s2: sq(2), p2: [0, 0, 0, 0], m0: 3, m2: 2 },
  { name: 'opset 11 (no Einsum), pads on both sides, stride 2', size: [9, 8], k1: sq(3), s1: sq(1), p1: [1, 1, 1, 1], k2: sq(3), s2: sq(2), p2: [1, 1, 1, 1], m0: 2, m2: 2, opset: 11 },
];

describe('conv tap gradient: correlation + boundary corrections equal the naive exact growth matrix', () => {
  cases.forEach((c, i) => {
    it(c.name, async () => {
      expect(await mseSiteError(c, 100 + i, c.opset)).toBeLessThan(2e-6);
    });
  });

  it('random geometries (kernels 1..5, strides 1..3, any pads below the kernel size)', async () => {
    const kernel = fc.integer({ min: 1, max: 5 });
    const stride = fc.integer({ min: 1, max: 3 });
    const geometry = fc
      .record({ k1: fc.tuple(kernel, kernel), s1: fc.tuple(stride, stride), k2: fc.tuple(kernel, kernel), s2: fc.tuple(stride, stride), size: fc.tuple(fc.integer({ min: 1, max: 13 }), fc.integer({ min: 1, max: 13 })), m0: fc.integer({ min: 1, max: 2 }), m2: fc.integer({ min: 1, max: 3 }) })
      .chain((g) =>
        fc.record({
          p1: fc.tuple(fc.integer({ min: 0, max: g.k1[0] - 1 }), fc.integer({ min: 0, max: g.k1[1] - 1 }), fc.integer({ min: 0, max: g.k1[0] - 1 }), fc.integer({ min: 0, max: g.k1[1] - 1 })),
          p2: fc.tuple(fc.integer({ min: 0, max: g.k2[0] - 1 }), fc.integer({ min: 0, max: g.k2[1] - 1 }), fc.integer({ min: 0, max: g.k2[0] - 1 }), fc.integer({ min: 0, max: g.k2[1] - 1 })),
        }).map((p) => ({ ...g, ...p }) as Geometry),
      )
      .filter((g) => sizes(g).every((s) => s >= 1));
    await fc.assert(
      fc.asyncProperty(geometry, fc.integer({ min: 0, max: 1 << 20 }), async (g, seed) => {
        expect(await mseSiteError(g, seed)).toBeLessThan(2e-6);
      }),
      { numRuns: 30, seed: 20261126 },
    );
  });
});

interface PoolCase {
  name: string;
  /** Relu between conv2 and the pool. */
  relu: boolean;
  pool: [number, number];
  /** Pool strides (default = the window). */
  poolStrides?: [number, number];
  size: [number, number];
  k2: number;
  s2: number;
  p2: Pads;
  /** Also request the upstream site conv0→conv1 (then conv2's input needs a gradient too). */
  upstreamSite?: boolean;
  /**
   * Whether the probe's MaxPool runs without Indices: conv2's gradient per pool window tap (tiling pools), or the
   * per-tap MaxPool gradient (overlapping pools before opset 16).
   */
  taps: boolean;
  opset?: number;
}

const poolCases: PoolCase[] = [
  { name: 'Relu → 2×2 pool, same-padded conv', relu: true, pool: [2, 2], size: [10, 10], k2: 3, s2: 1, p2: [1, 1, 1, 1], taps: true },
  { name: 'Relu → 2×2 pool, opset 11', relu: true, pool: [2, 2], size: [9, 10], k2: 3, s2: 1, p2: [1, 1, 1, 1], taps: true, opset: 11 },
  { name: 'no Relu, 2×2 pool', relu: false, pool: [2, 2], size: [8, 10], k2: 3, s2: 1, p2: [1, 1, 1, 1], taps: true },
  { name: 'Relu → 3×2 pool cropping the last row/column, stride-2 conv with p2 = 1', relu: true, pool: [3, 2], size: [15, 11], k2: 3, s2: 2, p2: [1, 1, 1, 1], taps: true },
  { name: 'Relu → 2×2 pool after a 5×5 conv with p2 = 2 and asymmetric pads', relu: true, pool: [2, 2], size: [11, 9], k2: 5, s2: 1, p2: [2, 1, 3, 2], taps: true },
  { name: 'overlapping 3×3/2 pool: Indices path', relu: true, pool: [3, 3], poolStrides: [2, 2], size: [17, 16], k2: 3, s2: 1, p2: [1, 1, 1, 1], taps: false },
  { name: 'overlapping 3×3/2 pool at opset 13: MaxPool gradient without Indices', relu: true, pool: [3, 3], poolStrides: [2, 2], size: [17, 16], k2: 3, s2: 1, p2: [1, 1, 1, 1], taps: true, opset: 13 },
  { name: 'no Relu, overlapping 3×2/1 pool at opset 15: MaxPool gradient without Indices', relu: false, pool: [3, 2], poolStrides: [1, 1], size: [12, 11], k2: 3, s2: 2, p2: [1, 1, 1, 1], taps: true, opset: 15 },
  { name: 'an upstream site needs conv2\'s input gradient: Indices path', relu: true, pool: [2, 2], size: [10, 10], k2: 3, s2: 1, p2: [1, 1, 1, 1], upstreamSite: true, taps: false },
];

describe('conv → [Relu →] MaxPool sites: gradient routed to the first window maximum, ties included', () => {
  poolCases.forEach((pc, caseIndex) => {
    it(pc.name, async () => {
      const rng = new Rng(42 + caseIndex);
      const [N, m0, m1, m2, classes] = [4, 2, 3, 4, 3];
      const [H0, W0] = pc.size;
      const [kh, kw] = pc.pool;
      const [sh, sw] = pc.poolStrides ?? pc.pool;
      const b = new GraphBuilder(FLOAT);
      b.input('x', ['N', 1, H0, W0]);
      const w0 = b.init([m0, 1, 3, 3], rng.fillNormal(new Float64Array(m0 * 9)));
      const h1 = b.op1('Relu', [b.op1('Conv', ['x', w0, b.init([m0], [0.3, 0.6])], { pads: [1, 1, 1, 1] }, 'conv0')]);
      const w1 = b.init([m1, m0, 3, 3], rng.fillNormal(new Float64Array(m1 * m0 * 9)));
      const a1 = b.op1('Relu', [b.op1('Conv', [h1, w1], { pads: [1, 1, 1, 1] }, 'conv1')]);
      const w2 = b.init([m2, m1, pc.k2, pc.k2], rng.fillNormal(new Float64Array(m2 * m1 * pc.k2 * pc.k2)));
      // Positive biases: over the constant background conv2's outputs repeat the same positive values (ties).
      const z2 = b.op1('Conv', [a1, w2, b.init([m2], [0.5, 0.25, -0.5, 1])], { strides: [pc.s2, pc.s2], pads: pc.p2 }, 'conv2');
      const r2 = pc.relu ? b.op1('Relu', [z2]) : z2;
      const pooled = b.op1('MaxPool', [r2], { kernel_shape: pc.pool, strides: [sh, sw] });
      const flat = b.op1('Flatten', [pooled]);
      const [H2, W2] = [outSize(H0, pc.k2, pc.s2, pc.p2[0], pc.p2[2]), outSize(W0, pc.k2, pc.s2, pc.p2[1], pc.p2[3])];
      const [Ho, Wo] = [Math.floor((H2 - kh) / sh) + 1, Math.floor((W2 - kw) / sw) + 1];
      const F = m2 * Ho * Wo;
      // Small head weights keep the softmax away from saturation (a vanishing gradient would test nothing).
      const w3 = b.init([F, classes], rng.fillNormal(new Float64Array(F * classes)).map((v) => v * 0.01));
      const logits = b.op1('Gemm', [flat, w3], {}, 'head');
      b.output(logits, ['N', classes]);
      b.output(z2);
      b.output(h1);
      const model = b.build(pc.opset);
      // Zero background with a few random blobs: the windows away from the blobs tie.
      const x = new Float32Array(N * H0 * W0);
      for (let n = 0; n < N; n++) for (let y = 1 + n; y < 4 + n; y++) for (let c = 2; c < 5 + (n % 3); c++) x[(n * H0 + y) * W0 + c] = rng.normal();
      const labels = Array.from({ length: N }, () => rng.int(classes));
      const xT = new ort.Tensor('float32', x, [N, 1, H0, W0]);
      const fwd = await forward(model, { x: xT });
      const zv = fwd[z2]!.data as Float32Array;
      const lv = fwd[logits]!.data as Float32Array;
      expect(fwd[z2]!.dims).toEqual([N, m2, H2, W2]);
      const w3v = new Float32Array(b.inits.find((t) => t.name === w3)!.rawData.slice().buffer);
      // g at z2: softmax − one-hot through the Gemm, routed to the first (row-major) maximum of each window,
      // masked by relu'(z2); overlapping windows add up.
      const g = new Float64Array(N * m2 * H2 * W2);
      let positiveTies = 0;
      for (let n = 0; n < N; n++) {
        let max = -Infinity;
        for (let k = 0; k < classes; k++) max = Math.max(max, lv[n * classes + k]!);
        let sum = 0;
        for (let k = 0; k < classes; k++) sum += Math.exp(lv[n * classes + k]! - max);
        const gl = Array.from({ length: classes }, (_, k) => Math.exp(lv[n * classes + k]! - max) / sum - (labels[n] === k ? 1 : 0));
        for (let c = 0; c < m2; c++) {
          for (let ph = 0; ph < Ho; ph++) {
            for (let pw = 0; pw < Wo; pw++) {
              let gp = 0;
              for (let k = 0; k < classes; k++) gp += gl[k]! * w3v[((c * Ho + ph) * Wo + pw) * classes + k]!;
              const idx = (i: number, j: number) => ((n * m2 + c) * H2 + sh * ph + i) * W2 + sw * pw + j;
              const act = (i: number, j: number) => (pc.relu ? Math.max(0, zv[idx(i, j)]!) : zv[idx(i, j)]!);
              const taps: [number, number][] = [];
              for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) taps.push([i, j]);
              const best = Math.max(...taps.map(([i, j]) => act(i, j)));
              const maxima = taps.filter(([i, j]) => act(i, j) === best);
              if (best > 0 && maxima.length > 1) positiveTies++;
              const [fi, fj] = maxima[0]!;
              if (!pc.relu || zv[idx(fi, fj)]! > 0) g[idx(fi, fj)] += gp;
            }
          }
        }
      }
      expect(positiveTies).toBeGreaterThan(5);
      const sites = [{ current: 'conv1', next: 'conv2' }, ...(pc.upstreamSite ? [{ current: 'conv0', next: 'conv1' }] : [])];
      const loss = { kind: 'ce-logits' as const, output: logits };
      const probe = await buildProbe(model, { sites, loss });
      const pool = probe.model.graph!.node.find((node) => node.opType === 'MaxPool')!;
      expect(pool.output.filter((o) => o).length).toBe(pc.taps ? 1 : 2);
      const res = await computeStatistics(model, { sites, loss, data: [{ inputs: xT, labels }] });
      const stats = res.statistics.get('conv1->conv2')!;
      const geometry = (stats as unknown as { geometry: ConvPairGeometry }).geometry;
      const expected = naiveConvGrowthMatrix(
        { shape: [N, H0, W0, m0], data: toNhwc(fwd[h1]!.data as Float32Array, [N, m0, H0, W0]) },
        { shape: [N, H2, W2, m2], data: toNhwc(g, [N, m2, H2, W2]) },
        geometry,
      );
      expect(Math.hypot(...expected.data)).toBeGreaterThan(1e-4);
      expect(relErr(stats.snapshot().moment.data, expected.data, 1e-300)).toBeLessThan(2e-6);
    });
  });
});
