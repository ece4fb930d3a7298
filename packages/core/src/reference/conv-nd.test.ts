import { describe, expect, it } from 'vitest';
import { Rng } from '../rng.js';
import { makeConvPairGeometry } from '../statistics/conv-geometry.js';
import { convPairGeometryToND, makeConvPairGeometryND } from '../statistics/conv-geometry-nd.js';
import { naiveConvGrowthMatrix, naiveConvGrowthMatrixND, naiveConvND, relativeError, type NaiveConvLayer, type TensorND } from './index.js';

const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

function random(dims: number[], rng: Rng): TensorND & { data: Float64Array } {
  const data = new Float64Array(prod(dims));
  rng.fillNormal(data);
  return { dims, data };
}

interface Case {
  name: string;
  inSize: number[];
  m0: number;
  m2: number;
  producer: NaiveConvLayer;
  consumer: NaiveConvLayer;
  midSize: number[];
  outSize: number[];
  inChannels?: [number, number];
  outChannels?: [number, number];
}

const cases: Case[] = [
  { name: '1-D, strided producer, padded consumer', inSize: [11], m0: 2, m2: 3, producer: { kernel: [3], stride: [2], padBegin: [1] }, consumer: { kernel: [3], padBegin: [1] }, midSize: [6], outSize: [6] },
  { name: '1-D, dilated both sides', inSize: [12], m0: 2, m2: 2, producer: { kernel: [3], dilation: [2], padBegin: [2] }, consumer: { kernel: [2], dilation: [3], stride: [2], padBegin: [1] }, midSize: [12], outSize: [6] },
  { name: '3-D, strided and padded', inSize: [5, 4, 6], m0: 2, m2: 2, producer: { kernel: [3, 1, 3], stride: [1, 1, 2], padBegin: [1, 0, 1] }, consumer: { kernel: [2, 3, 3], stride: [2, 1, 1], padBegin: [0, 1, 1] }, midSize: [5, 4, 3], outSize: [2, 4, 3] },
  { name: '2-D dilated, grouped channel ranges', inSize: [7, 6], m0: 4, m2: 6, producer: { kernel: [3, 3], dilation: [2, 1], padBegin: [2, 1] }, consumer: { kernel: [3, 2], dilation: [1, 2], padBegin: [1, 1] }, midSize: [7, 6], outSize: [7, 5], inChannels: [2, 4], outChannels: [3, 6] },
  { name: 'transposed producer (stride 2)', inSize: [4, 3], m0: 2, m2: 2, producer: { transposed: true, kernel: [3, 2], stride: [2, 2], padBegin: [1, 0] }, consumer: { kernel: [3, 3], padBegin: [1, 1] }, midSize: [8, 6], outSize: [8, 6] },
  { name: 'transposed consumer (stride 2, dilation 2)', inSize: [5], m0: 3, m2: 2, producer: { kernel: [3], padBegin: [1] }, consumer: { transposed: true, kernel: [3], stride: [2], dilation: [2], padBegin: [1] }, midSize: [5], outSize: [12] },
];

describe('naiveConvGrowthMatrixND', () => {
  it.each(cases.map((c) => [c.name, c] as const))('is the gradient of the loss with respect to the new unit (%s)', (_n, c) => {
    const rng = new Rng(3);
    const N = 2;
    const [c0, c1] = c.inChannels ?? [0, c.m0];
    const [o0, o1] = c.outChannels ?? [0, c.m2];
    const x = random([N, c.m0, ...c.inSize], rng);
    const r = random([N, c.m2, ...c.outSize], rng); // the loss is Σ r ⊙ z, so g = r
    const fanIn = prod(c.producer.kernel) * (c1 - c0);
    const fanOut = prod(c.consumer.kernel) * (o1 - o0);
    const omega = new Float64Array(fanOut);
    rng.fillNormal(omega);
    // the new unit reads channels [c0, c1) of x and writes outputs [o0, o1) of z
    const xs: TensorND = { dims: [N, c1 - c0, ...c.inSize], data: new Float64Array(N * (c1 - c0) * prod(c.inSize)) };
    const sp = prod(c.inSize);
    for (let n = 0; n < N; n++) for (let ch = c0; ch < c1; ch++) for (let p = 0; p < sp; p++) (xs.data as Float64Array)[(n * (c1 - c0) + ch - c0) * sp + p] = x.data[(n * c.m0 + ch) * sp + p]!;
    const taps1 = prod(c.producer.kernel);
    const taps2 = prod(c.consumer.kernel);
    const loss = (A: Float64Array): number => {
      // weight [1, mIn, k…] (conv) or [mIn, 1, k…] (transposed): entry (c, t) at c·taps + t either way
      const w1 = new Float64Array(fanIn);
      for (let t = 0; t < taps1; t++) for (let ch = 0; ch < c1 - c0; ch++) w1[ch * taps1 + t] = A[t * (c1 - c0) + ch]!;
      const dims1 = c.producer.transposed ? [c1 - c0, 1, ...c.producer.kernel] : [1, c1 - c0, ...c.producer.kernel];
      const h = naiveConvND(xs, { dims: dims1, data: w1 }, c.producer, c.midSize);
      const w2 = new Float64Array(fanOut);
      for (let t = 0; t < taps2; t++) for (let o = 0; o < o1 - o0; o++) w2[o * taps2 + t] = omega[t * (o1 - o0) + o]!;
      const dims2 = c.consumer.transposed ? [1, o1 - o0, ...c.consumer.kernel] : [o1 - o0, 1, ...c.consumer.kernel];
      const z = naiveConvND(h, { dims: dims2, data: w2 }, c.consumer, c.outSize);
      const osp = prod(c.outSize);
      let s = 0;
      for (let n = 0; n < N; n++) for (let o = 0; o < o1 - o0; o++) for (let p = 0; p < osp; p++) s += z.data[(n * (o1 - o0) + o) * osp + p]! * r.data[(n * c.m2 + o0 + o) * osp + p]!;
      return s;
    };
    // L is linear in A: ∂L/∂A_i = L(e_i).
    const grad = new Float64Array(fanIn);
    for (let i = 0; i < fanIn; i++) {
      const e = new Float64Array(fanIn);
      e[i] = 1;
      grad[i] = loss(e) / N;
    }
    const m = naiveConvGrowthMatrixND(x, r, { producer: c.producer, consumer: c.consumer, midSize: c.midSize, ...(c.inChannels ? { inChannels: c.inChannels } : {}), ...(c.outChannels ? { outChannels: c.outChannels } : {}) });
    expect([m.rows, m.cols]).toEqual([fanOut, fanIn]);
    const predicted = new Float64Array(fanIn);
    for (let i = 0; i < fanIn; i++) for (let f = 0; f < fanOut; f++) predicted[i] += omega[f]! * m.data[f * fanIn + i]!;
    expect(Math.max(...grad.map(Math.abs))).toBeGreaterThan(1e-3);
    expect(relativeError(predicted, grad)).toBeLessThan(1e-12);
  });

  it('equals the 2-D reference (NHWC) on 2-D undilated pairs', () => {
    const rng = new Rng(9);
    const geo = makeConvPairGeometry({ inChannels: 2, midChannels: 3, outChannels: 2, inputSize: [6, 5], kernel1: [3, 2], stride1: [2, 1], padding1: { top: 1, bottom: 0, left: 1, right: 1 }, kernel2: [2, 3], stride2: [1, 2], padding2: { top: 1, bottom: 1, left: 0, right: 2 } });
    const nd = convPairGeometryToND(geo);
    const [N, H0, W0, m0] = [3, 6, 5, 2];
    const [H2, W2] = geo.outputSize;
    const x = random([N, m0, H0, W0], rng);
    const g = random([N, 2, H2, W2], rng);
    const nhwc = (t: TensorND) => {
      const [n, c, h, w] = t.dims as number[];
      const out = new Float64Array(prod(t.dims));
      for (let a = 0; a < n!; a++) for (let b = 0; b < c!; b++) for (let i = 0; i < h!; i++) for (let j = 0; j < w!; j++) out[((a * h! + i) * w! + j) * c! + b] = t.data[((a * c! + b) * h! + i) * w! + j]!;
      return { shape: [n!, h!, w!, c!] as [number, number, number, number], data: out };
    };
    const ref = naiveConvGrowthMatrix(nhwc(x), nhwc(g), geo);
    const layer = (k: 1 | 2): NaiveConvLayer => ({ kernel: nd.axes.map((a) => (k === 1 ? a.kernel1 : a.kernel2)), stride: nd.axes.map((a) => (k === 1 ? a.stride1 : a.stride2)), padBegin: nd.axes.map((a) => (k === 1 ? a.padBegin1 : a.padBegin2)) });
    const m = naiveConvGrowthMatrixND(x, g, { producer: layer(1), consumer: layer(2), midSize: nd.axes.map((a) => a.midSize) });
    expect(relativeError(m.data, ref.data)).toBeLessThan(1e-14);
  });

  it('makeConvPairGeometryND computes dilated sizes and refuses kernels that do not fit', () => {
    const geo = makeConvPairGeometryND({ inChannels: 1, midChannels: 2, outChannels: 3, inputSize: [10], kernel1: [3], dilation1: [2], pads1: [1, 2], kernel2: [2], stride2: [2], dilation2: [3] });
    expect(geo.axes[0]).toMatchObject({ midSize: 9, outSize: 3 });
    expect(() => makeConvPairGeometryND({ inChannels: 1, midChannels: 1, outChannels: 1, inputSize: [4], kernel1: [3], dilation1: [2], kernel2: [1] })).toThrow(/smaller than the dilated kernel 5/);
  });
});
