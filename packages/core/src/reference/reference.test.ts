import { describe, expect, it } from 'vitest';
import { Matrix } from '../matrix.js';
import { Rng } from '../rng.js';
import type { NewUnits } from '../site.js';
import { InvalidArgumentError, ShapeMismatchError, UnknownNameError } from '../errors.js';
import { makeConvPairGeometry, tapScatterKernel, tapScatterKernelShape } from '../statistics/conv-geometry.js';
import type { PaddingSpec } from '../statistics/conv-geometry.js';
import {
  ConvDenseReferenceNet,
  ConvReferenceNet,
  DenseReferenceNet,
  finiteDifferenceGradient,
  maxAbsDifference,
  naiveConv2d,
  naiveConv2dBackpropFilter,
  naiveConv2dBackpropInput,
  naiveConvGrowthMatrix,
  naiveDenseMoment,
  naiveTapScatter,
  randomTensor4,
  referenceActivation,
  relativeError,
  tensor4,
  zeros4,
} from './index.js';
import type { Conv2DGeometry } from './index.js';

/** Ωᵀ M (k × fanIn) with Ω [fanOut × k]. */
function omegaTM(omega: Matrix, m: Matrix): Matrix {
  const out = new Matrix(omega.cols, m.cols);
  for (let j = 0; j < omega.cols; j++) {
    for (let i = 0; i < m.cols; i++) {
      let s = 0;
      for (let f = 0; f < m.rows; f++) s += omega.get(f, j) * m.get(f, i);
      out.set(j, i, s);
    }
  }
  return out;
}

function zeroIncomingUnits(fanIn: number, fanOut: number, k: number, rng: Rng, units: number, scale?: Float64Array): NewUnits {
  const outgoing = new Matrix(fanOut, k);
  rng.fillNormal(outgoing.data);
  return {
    incoming: new Matrix(k, fanIn),
    incomingBias: new Float64Array(k),
    outgoing,
    ...(scale ? { existingOutgoingScale: scale } : {}),
    report: { strategy: 'test', site: 'test', count: k, notes: [`units ${units}`] },
  };
}

describe('naive conv kernels', () => {
  const geometries: Conv2DGeometry[] = [
    { stride: [1, 1], padding: { top: 0, bottom: 0, left: 0, right: 0 } },
    { stride: [2, 1], padding: { top: 1, bottom: 0, left: 2, right: 1 } },
    { stride: [2, 2], padding: { top: 0, bottom: 1, left: 1, right: 1 } },
  ];
  it.each(geometries.map((g, i) => [i, g] as const))('backprops are the gradients of Σ conv ⊙ dy (geometry %i)', (_i, geo) => {
    const rng = new Rng(11);
    const x = randomTensor4([2, 6, 5, 2], rng);
    const w = randomTensor4([3, 2, 2, 3], rng);
    const y = naiveConv2d(x, w, geo);
    const dy = randomTensor4(y.shape, rng);
    const f = () => {
      const out = naiveConv2d(x, w, geo);
      let s = 0;
      for (let i = 0; i < out.data.length; i++) s += out.data[i]! * dy.data[i]!;
      return s;
    };
    const dw = naiveConv2dBackpropFilter(x, dy, [3, 2], geo);
    const dx = naiveConv2dBackpropInput(dy, w, [6, 5], geo);
    expect(relativeError(dw.data, finiteDifferenceGradient(f, w.data, { step: 1e-3 }))).toBeLessThan(1e-9);
    expect(relativeError(dx.data, finiteDifferenceGradient(f, x.data, { step: 1e-3 }))).toBeLessThan(1e-9);
  });

  it('conv forward matches a hand-computed 1-channel example', () => {
    // 3×3 input 1..9, 2×2 kernel of ones, stride 1, valid: sums of 2×2 windows.
    const x = tensor4([1, 3, 3, 1], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const w = tensor4([2, 2, 1, 1], [1, 1, 1, 1]);
    const y = naiveConv2d(x, w, { stride: [1, 1], padding: { top: 0, bottom: 0, left: 0, right: 0 } });
    expect(Array.from(y.data)).toEqual([12, 16, 24, 28]);
    // Same with one pixel of padding on top/left only and stride 2: windows at (-1,-1), (-1,1), (1,-1), (1,1).
    const z = naiveConv2d(x, w, { stride: [2, 2], padding: { top: 1, bottom: 0, left: 1, right: 0 } });
    expect(z.shape).toEqual([1, 2, 2, 1]);
    expect(Array.from(z.data)).toEqual([1, 2 + 3, 4 + 7, 5 + 6 + 8 + 9]);
  });

  it('rejects inconsistent shapes with typed errors', () => {
    const x = zeros4([1, 4, 4, 2]);
    const w = zeros4([3, 3, 3, 1]);
    expect(() => naiveConv2d(x, w, { stride: [1, 1], padding: { top: 0, bottom: 0, left: 0, right: 0 } })).toThrow(ShapeMismatchError);
    expect(() => tensor4([1, 2, 2, 1], [1, 2, 3])).toThrow(ShapeMismatchError);
  });

  it('tapScatterKernel through a conv-transpose equals naiveTapScatter', () => {
    const rng = new Rng(5);
    for (const [k2, s2, p2, size] of [[3, 2, 'same', 8], [3, 1, 'same', 7], [5, 2, 2, 9], [2, 2, 'valid', 6], [3, 2, [0, 1], 7]] as const) {
      const geo = makeConvPairGeometry({ inChannels: 2, midChannels: 3, outChannels: 2, inputSize: size, kernel1: 1, kernel2: k2, stride2: s2, padding2: p2 as PaddingSpec });
      const g = randomTensor4([2, geo.outputSize[0], geo.outputSize[1], 2], rng);
      const kernel = tensor4(tapScatterKernelShape(geo), tapScatterKernel(geo));
      const viaTranspose = naiveConv2dBackpropInput(g, kernel, geo.midSize, { stride: geo.stride2, padding: geo.pad2 });
      const direct = naiveTapScatter(g, geo);
      expect(viaTranspose.shape).toEqual(direct.shape);
      expect(maxAbsDifference(viaTranspose.data, direct.data)).toBe(0);
    }
  });
});

describe('activations', () => {
  it('relu1 has derivative 1 at 0, relu 0', () => {
    expect(referenceActivation('relu1').info).toEqual({ name: 'relu1', f0: 0, df0: 1 });
    expect(referenceActivation('relu').info).toEqual({ name: 'relu', f0: 0, df0: 0 });
    expect(referenceActivation('tanh').info.df0).toBe(1);
    expect(referenceActivation('identity').df(-3)).toBe(1);
    expect(() => referenceActivation('gelu' as never)).toThrow(UnknownNameError);
  });
});

/** Each named analytic gradient is within relative error 1e-7 of central finite differences of `loss` in that parameter. */
function expectGradientsMatchFiniteDifferences(loss: () => number, params: Record<string, Float64Array>, analytic: Record<string, Float64Array>): void {
  for (const [name, gradient] of Object.entries(analytic)) {
    expect(relativeError(gradient, finiteDifferenceGradient(loss, params[name]!)), name).toBeLessThan(1e-7);
  }
}

describe('reference networks: analytic gradients match finite differences', () => {
  const rng = new Rng(3);
  it.each(['tanh', 'relu1'] as const)('dense (%s)', (act) => {
    const net = DenseReferenceNet.random({ inputs: 4, hidden: 5, outputs: 3, activation: act, seed: 1 });
    const x = new Matrix(6, 4, rng.fillNormal(new Float64Array(24)));
    const t = new Matrix(6, 3, rng.fillNormal(new Float64Array(18)));
    const grads = net.gradients(x, t);
    expectGradientsMatchFiniteDifferences(() => net.loss(x, t), net.parameters(), { w1: grads.w1.data, b1: grads.b1, w2: grads.w2.data, b2: grads.b2 });
  });

  it.each([
    ['tanh', 3, 2, 'same', 3, 2, 'same', 7],
    ['relu1', 3, 1, 'valid', 3, 2, 'same', 8],
    ['tanh', 5, 2, 'same', 1, 1, 'valid', 8],
    ['tanh', 1, 1, 'valid', 5, 2, 2, 6],
  ] as const)('conv (%s, k1=%i s1=%i %s, k2=%i s2=%i %s, map %i)', (act, k1, s1, p1, k2, s2, p2, size) => {
    const net = ConvReferenceNet.random({ inChannels: 2, midChannels: 3, outChannels: 2, inputSize: size, kernel1: k1, stride1: s1, padding1: p1 as PaddingSpec, kernel2: k2, stride2: s2, padding2: p2 as PaddingSpec, activation: act, seed: 2 });
    const x = randomTensor4(net.inputShape(2), rng);
    const t = randomTensor4(net.outputShape(2), rng);
    const grads = net.gradients(x, t);
    expectGradientsMatchFiniteDifferences(() => net.loss(x, t), net.parameters(), { w1: grads.w1.data, b1: grads.b1, w2: grads.w2.data, b2: grads.b2 });
  });

  it('conv→flatten→dense', () => {
    const net = ConvDenseReferenceNet.random({ inChannels: 2, midChannels: 3, outChannels: 4, inputSize: [5, 6], kernel1: 3, stride1: 2, padding1: 'same', activation: 'tanh', seed: 4 });
    const x = randomTensor4(net.inputShape(3), rng);
    const t = new Matrix(3, 4, rng.fillNormal(new Float64Array(12)));
    const grads = net.gradients(x, t);
    expectGradientsMatchFiniteDifferences(() => net.loss(x, t), net.parameters(), { w1: grads.w1.data, b1: grads.b1, wd: grads.wd.data, bd: grads.bd });
  });

  it('rejects bad targets and NewUnits with typed errors', () => {
    const net = DenseReferenceNet.random({ inputs: 3, hidden: 2, outputs: 2, seed: 1 });
    const x = new Matrix(2, 3);
    expect(() => net.loss(x, new Matrix(2, 3))).toThrow(ShapeMismatchError);
    const bad = zeroIncomingUnits(3, 3, 1, new Rng(1), 2);
    expect(() => net.grow(bad)).toThrow(ShapeMismatchError);
    expect(() => net.newIncomingGradient(x, new Matrix(2, 2))).toThrow(InvalidArgumentError);
  });
});

describe('growth: function preservation and the predicted new-incoming gradient', () => {
  it('dense: grown net computes the same function and its new incoming gradient is f\'(0)·Ωᵀ M', () => {
    const rng = new Rng(9);
    const net = DenseReferenceNet.random({ inputs: 5, hidden: 4, outputs: 3, activation: 'relu1', seed: 7 });
    const x = new Matrix(10, 5, rng.fillNormal(new Float64Array(50)));
    const t = new Matrix(10, 3, rng.fillNormal(new Float64Array(30)));
    const site = net.site();
    const units = zeroIncomingUnits(site.fanIn, site.fanOut, 2, rng, site.units);
    const grown = net.grow(units);
    expect(grown.units).toBe(6);
    expect(maxAbsDifference(grown.forward(x).data, net.forward(x).data)).toBe(0);
    const stats = net.statistics(x, t);
    const { g } = net.gradients(x, t);
    expect(maxAbsDifference(stats.moment.data, naiveDenseMoment(g, x).data)).toBeLessThan(1e-14);
    const predicted = omegaTM(units.outgoing, stats.moment);
    expect(relativeError(grown.newIncomingGradient(x, t).data, predicted.data)).toBeLessThan(1e-13);
    // With plain ReLU (f'(0) = 0) the new units get no gradient at all.
    const reluNet = new DenseReferenceNet({ w1: net.w1, b1: net.b1, w2: net.w2, b2: net.b2, activation: 'relu' });
    const g2 = reluNet.grow(units).newIncomingGradient(x, t);
    expect(Math.max(...Array.from(g2.data, Math.abs))).toBe(0);
  });

  it('dense: existingOutgoingScale is applied (Net2Net-style split keeps the function)', () => {
    const rng = new Rng(2);
    const net = DenseReferenceNet.random({ inputs: 3, hidden: 3, outputs: 2, activation: 'tanh', seed: 5 });
    const site = net.site();
    // Copy unit 0 with half of its outgoing weights on each copy.
    const units: NewUnits = {
      incoming: new Matrix(1, 3, site.incoming.row(0)),
      incomingBias: Float64Array.of(site.incomingBias![0]!),
      outgoing: new Matrix(2, 1, Float64Array.from(site.outgoing.col(0), (v) => v / 2)),
      existingOutgoingScale: Float64Array.of(0.5, 1, 1),
      report: { strategy: 'test', site: site.name, count: 1, notes: [] },
    };
    const x = new Matrix(4, 3, rng.fillNormal(new Float64Array(12)));
    expect(maxAbsDifference(net.grow(units).forward(x).data, net.forward(x).data)).toBeLessThan(1e-15);
  });

  // The exact conv growth matrix against the true gradient, across kernels, strides, paddings and map parity.
  const configs: [number, number, number, number, PaddingSpec, PaddingSpec, number][] = [];
  for (const k1 of [1, 3, 5]) for (const k2 of [1, 3, 5]) for (const s1 of [1, 2]) for (const s2 of [1, 2]) {
    for (const p1 of ['valid', 'same'] as const) for (const p2 of ['valid', 'same'] as const) for (const size of [9, 10]) {
      configs.push([k1, k2, s1, s2, p1, p2, size]);
    }
  }
  it(`conv: M·Ω equals the new units' true incoming gradient (${configs.length} configurations)`, () => {
    const rng = new Rng(21);
    let checked = 0;
    for (const [k1, k2, s1, s2, p1, p2, size] of configs) {
      let net: ConvReferenceNet;
      try {
        net = ConvReferenceNet.random({ inChannels: 2, midChannels: 2, outChannels: 2, inputSize: size, kernel1: k1, stride1: s1, padding1: p1, kernel2: k2, stride2: s2, padding2: p2, activation: 'relu1', seed: checked + 1 });
      } catch (e) {
        expect(e).toBeInstanceOf(InvalidArgumentError); // map too small for a valid kernel
        continue;
      }
      const x = randomTensor4(net.inputShape(2), rng);
      const t = randomTensor4(net.outputShape(2), rng);
      const site = net.site();
      const units = zeroIncomingUnits(site.fanIn, site.fanOut, 2, rng, site.units);
      const grown = net.grow(units);
      const label = JSON.stringify({ k1, k2, s1, s2, p1, p2, size });
      expect(maxAbsDifference(grown.forward(x).data, net.forward(x).data), label).toBe(0);
      const { g } = net.gradients(x, t);
      const m = naiveConvGrowthMatrix(x, g, net.geometry);
      const truth = grown.newIncomingGradient(x, t);
      expect(relativeError(omegaTM(units.outgoing, m).data, truth.data), label).toBeLessThan(1e-12);
      // Via the statistics class (naive accumulate path), in two batches.
      const stats = net.statistics(x, t, { batchSize: 1 });
      expect(relativeError(stats.moment.data, m.data), label).toBeLessThan(1e-13);
      checked++;
    }
    expect(checked).toBeGreaterThan(200);
  });

  it('conv→flatten→dense: M·Ω equals the true gradient and growth preserves the function', () => {
    const rng = new Rng(8);
    for (const [k1, s1, p1, size] of [[3, 1, 'same', 5], [3, 2, 'same', 6], [2, 2, 'valid', 7]] as const) {
      const net = ConvDenseReferenceNet.random({ inChannels: 2, midChannels: 3, outChannels: 3, inputSize: size, kernel1: k1, stride1: s1, padding1: p1, activation: 'relu1', seed: 3 });
      const x = randomTensor4(net.inputShape(3), rng);
      const t = new Matrix(3, 3, rng.fillNormal(new Float64Array(9)));
      const site = net.site();
      const units = zeroIncomingUnits(site.fanIn, site.fanOut, 2, rng, site.units);
      const grown = net.grow(units);
      expect(maxAbsDifference(grown.forward(x).data, net.forward(x).data)).toBe(0);
      const stats = net.statistics(x, t);
      expect(relativeError(omegaTM(units.outgoing, stats.moment).data, grown.newIncomingGradient(x, t).data)).toBeLessThan(1e-12);
      // Independent: the same network viewed as conv→conv with a whole-map kernel gives the same outputs.
      const asConv = new ConvReferenceNet({
        geometry: net.geometry,
        w1: net.w1,
        b1: net.b1,
        w2: (() => {
          const [H1, W1] = net.geometry.midSize;
          const m1 = net.units;
          const w2 = zeros4([H1, W1, m1, 3]);
          for (let p = 0; p < H1 * W1; p++) for (let c = 0; c < m1; c++) for (let o = 0; o < 3; o++) w2.data[(p * m1 + c) * 3 + o] = net.wd.get(o, p * m1 + c);
          return w2;
        })(),
        b2: net.bd,
        activation: 'relu1',
      });
      expect(maxAbsDifference(asConv.forward(x).data, net.forward(x).data)).toBeLessThan(1e-13);
      expect(maxAbsDifference(asConv.site().outgoing.data, site.outgoing.data)).toBe(0);
    }
  });

  it('finite differences on the grown net (tanh) confirm f\'(0)·Ωᵀ M for conv and conv→flatten→dense', () => {
    const rng = new Rng(13);
    const nets = [
      ConvReferenceNet.random({ inChannels: 2, midChannels: 2, outChannels: 2, inputSize: 6, kernel1: 3, stride1: 2, padding1: 'same', kernel2: 3, stride2: 1, padding2: 'same', activation: 'tanh', seed: 1 }),
      ConvDenseReferenceNet.random({ inChannels: 2, midChannels: 2, outChannels: 3, inputSize: 5, kernel1: 3, stride1: 2, padding1: 'same', activation: 'tanh', seed: 2 }),
    ];
    for (const net of nets) {
      const x = randomTensor4(net.inputShape(2), rng);
      const out = net.forward(x);
      const t = { shape: [1, 1, 1, out.data.length], data: rng.fillNormal(new Float64Array(out.data.length)) };
      const site = net.site();
      const units = zeroIncomingUnits(site.fanIn, site.fanOut, 2, rng, site.units);
      const grown = net.grow(units);
      const w1 = grown.parameters().w1!;
      const m1 = grown.units;
      // Entries of the new units' incoming kernels in HWIO order; FD over them, then rearrange to [k × fanIn].
      const fd = finiteDifferenceGradient(() => grown.loss(x, t), w1);
      const fdNew = new Matrix(2, site.fanIn);
      for (let f = 0; f < site.fanIn; f++) for (let j = 0; j < 2; j++) fdNew.set(j, f, fd[f * m1 + m1 - 2 + j]!);
      const predicted = omegaTM(units.outgoing, net.statistics(x, t).moment);
      expect(relativeError(predicted.data, fdNew.data)).toBeLessThan(1e-7);
    }
  });

  it('a 1×1 conv pair on a larger map equals the dense case with positions as extra samples', () => {
    const rng = new Rng(17);
    const net = ConvReferenceNet.random({ inChannels: 3, midChannels: 2, outChannels: 2, inputSize: [3, 4], kernel1: 1, kernel2: 1, activation: 'relu1', seed: 3 });
    const x = randomTensor4(net.inputShape(2), rng);
    const t = randomTensor4(net.outputShape(2), rng);
    const { g } = net.gradients(x, t);
    const positions = 3 * 4;
    const dense = naiveDenseMoment(new Matrix(2 * positions, 2, g.data), new Matrix(2 * positions, 3, x.data));
    const conv = net.statistics(x, t).moment;
    for (let i = 0; i < dense.data.length; i++) dense.data[i] *= positions;
    expect(relativeError(conv.data, dense.data)).toBeLessThan(1e-14);
  });

  it('a 1×1 conv pair on a 1×1 map is exactly the dense case', () => {
    const rng = new Rng(4);
    const dense = DenseReferenceNet.random({ inputs: 3, hidden: 4, outputs: 2, activation: 'relu1', seed: 6 });
    const conv = new ConvReferenceNet({
      geometry: makeConvPairGeometry({ inChannels: 3, midChannels: 4, outChannels: 2, inputSize: 1, kernel1: 1, kernel2: 1 }),
      w1: tensor4([1, 1, 3, 4], transposeData(dense.w1)),
      b1: dense.b1,
      w2: tensor4([1, 1, 4, 2], transposeData(dense.w2)),
      b2: dense.b2,
      activation: 'relu1',
    });
    const xd = new Matrix(5, 3, rng.fillNormal(new Float64Array(15)));
    const td = new Matrix(5, 2, rng.fillNormal(new Float64Array(10)));
    const xc = tensor4([5, 1, 1, 3], xd.data);
    const tc = tensor4([5, 1, 1, 2], td.data);
    expect(maxAbsDifference(conv.forward(xc).data, dense.forward(xd).data)).toBeLessThan(1e-15);
    expect(maxAbsDifference(conv.site().incoming.data, dense.site().incoming.data)).toBe(0);
    expect(maxAbsDifference(conv.site().outgoing.data, dense.site().outgoing.data)).toBe(0);
    expect(maxAbsDifference(conv.statistics(xc, tc).moment.data, dense.statistics(xd, td).moment.data)).toBeLessThan(1e-15);
  });
});

function transposeData(m: Matrix): Float64Array {
  const out = new Float64Array(m.rows * m.cols);
  for (let i = 0; i < m.rows; i++) for (let j = 0; j < m.cols; j++) out[j * m.rows + i] = m.get(i, j);
  return out;
}
