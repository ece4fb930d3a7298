/**
 * Every vector-Jacobian rule against central finite differences on random shapes and attributes, in float64
 * where onnxruntime's CPU kernels support it (float32 otherwise, with steps suited to linear/piecewise ops).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Rng } from '@gradmax/core';
import { GraphBuilder } from './__tests__/graph.js';
import { DOUBLE, FLOAT, checkAgainstFiniteDifferences } from './__tests__/fd.js';
import type { FdInput } from './__tests__/fd.js';
import { TensorProto_DataType } from 'onnx-buf';
import { makeTensor } from '../model.js';

const INT64 = TensorProto_DataType.INT64;
import { buildVjpModel, supportedOps } from './index.js';

interface Built {
  inputs: FdInput[];
  wrt: string[];
  /** Piecewise-linear or linear in the inputs (a large step is exact in float32). */
  linear?: boolean;
  /** Finite-difference step in float32 (default: 0.5 when linear, 2e-3 otherwise). */
  eps?: number;
}

interface Case {
  name: string;
  ops: string[];
  opset?: number;
  /** Element types to try, in order (default: float64, then float32 where onnxruntime lacks a float64 kernel). */
  dtypes?: number[];
  /** The op the gradient graph must compute a conv input gradient with (and not the other one). */
  convGradOp?: 'Conv' | 'ConvTranspose';
  build(b: GraphBuilder, rng: Rng): Built;
}

function rand(rng: Rng, dims: number[], f: (v: number) => number = (v) => v): Float64Array {
  const n = dims.reduce((a, b) => a * b, 1);
  return Float64Array.from({ length: n }, () => f(rng.normal()));
}

function inp(b: GraphBuilder, rng: Rng, name: string, dims: number[], f?: (v: number) => number): FdInput {
  b.input(name, dims);
  return { name, dims, values: rand(rng, dims, f) };
}

/** Moves values within 0.1 of a kink by 0.25, so that a finite-difference step never crosses one. */
function away(points: number[], scale = 1): (v: number) => number {
  return (v) => {
    let x = scale * v;
    while (points.some((p) => Math.abs(x - p) < 0.1)) x += 0.25;
    return x;
  };
}

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)]!;
}

const unary = (op: string, attrs: Record<string, number | { float: number }> = {}, linear = false, f?: (v: number) => number): Case => ({
  name: op,
  ops: [op],
  build(b, rng) {
    const dims = [2, 1 + rng.int(4), 1 + rng.int(4)];
    const x = inp(b, rng, 'x', dims, f);
    b.output(b.op1(op, ['x'], attrs));
    return { inputs: [x], wrt: ['x'], linear };
  },
});

const cases: Case[] = [];
for (const op of ['Relu', 'Sigmoid', 'Tanh', 'Identity', 'Dropout']) cases.push(unary(op, {}, op === 'Relu' || op === 'Identity' || op === 'Dropout'));
cases.push(unary('LeakyRelu', { alpha: { float: 0.13 } }, true));
cases.push(unary('HardSigmoid', { alpha: { float: 0.3 }, beta: { float: 0.4 } }, false, away([-4 / 3, 2], 3)));
cases.push(unary('HardSwish', {}, false, away([-3, 3], 4)));
cases.push({
  name: 'Dropout in training mode with ratio 0 (a Constant node) is the identity',
  ops: ['Dropout'],
  build(b, rng) {
    const x = inp(b, rng, 'x', [2, 3]);
    const ratio = b.op1('Constant', [], { value: makeTensor('r', b.dtype, [], [0]) });
    const mode = b.op1('Constant', [], { value: makeTensor('m', TensorProto_DataType.BOOL, [], [1]) });
    b.output(b.op1('Tanh', [b.op1('Dropout', ['x', ratio, mode])]));
    return { inputs: [x], wrt: ['x'] };
  },
});
cases.push({
  name: 'Clip (min and max inputs)',
  ops: ['Clip'],
  build(b, rng) {
    const x = inp(b, rng, 'x', [3, 5], away([-0.4, 0.5]));
    const lo = b.init([], [-0.4]);
    const hi = b.init([], [0.5]);
    b.output(b.op1('Clip', ['x', lo, hi]));
    return { inputs: [x], wrt: ['x'], linear: true };
  },
});
cases.push({
  name: 'Clip (max only)',
  ops: ['Clip'],
  build(b, rng) {
    const x = inp(b, rng, 'x', [3, 5], away([0.3]));
    const hi = b.init([], [0.3]);
    b.output(b.op1('Clip', ['x', '', hi]));
    return { inputs: [x], wrt: ['x'], linear: true };
  },
});
cases.push({
  name: 'Clip (opset 6 attributes)',
  ops: ['Clip'],
  opset: 10,
  build(b, rng) {
    const x = inp(b, rng, 'x', [4, 3], away([-0.2, 0.6]));
    b.output(b.op1('Clip', ['x'], { min: { float: -0.2 }, max: { float: 0.6 } }));
    return { inputs: [x], wrt: ['x'] };
  },
});
for (const op of ['Softmax', 'LogSoftmax']) {
  for (const opset of [13, 11]) {
    cases.push({
      name: `${op} opset ${opset}`,
      ops: [op],
      opset,
      build(b, rng) {
        const dims = [2, 2 + rng.int(3), 2 + rng.int(3)];
        const x = inp(b, rng, 'x', dims);
        b.output(b.op1(op, ['x'], { axis: pick(rng, [-1, 1, 2]) }));
        return { inputs: [x], wrt: ['x'] };
      },
    });
  }
}
for (let k = 0; k < 16; k++) {
  cases.push({
    name: `Gemm #${k}`,
    ops: ['Gemm'],
    build(b, rng) {
      const M = 2 + rng.int(3);
      const K = 2 + rng.int(3);
      const N = 2 + rng.int(3);
      const transA = k & 1;
      const transB = (k >> 1) & 1;
      const alpha = k & 4 ? 0.7 : 1;
      const beta = k & 8 ? 0.3 : 1;
      const cShape = pick(rng, [null, [N], [1, N], [M, 1], [M, N], []] as (number[] | null)[]);
      const inputs = [inp(b, rng, 'a', transA ? [K, M] : [M, K]), inp(b, rng, 'b', transB ? [N, K] : [K, N])];
      if (cShape) inputs.push(inp(b, rng, 'c', cShape));
      b.output(b.op1('Gemm', inputs.map((i) => i.name), { alpha: { float: alpha }, beta: { float: beta }, transA, transB }));
      return { inputs, wrt: inputs.map((i) => i.name), linear: true };
    },
  });
}
for (const [da, db] of [
  [[3, 4], [4, 5]],
  [[2, 3, 4], [4, 5]],
  [[2, 3, 4], [2, 4, 5]],
  [[1, 3, 4], [2, 4, 5]],
  [[2, 2, 3, 4], [2, 1, 4, 2]],
] as [number[], number[]][]) {
  cases.push({
    name: `MatMul ${JSON.stringify(da)}·${JSON.stringify(db)}`,
    ops: ['MatMul'],
    build(b, rng) {
      const inputs = [inp(b, rng, 'a', da), inp(b, rng, 'b', db)];
      b.output(b.op1('MatMul', ['a', 'b']));
      return { inputs, wrt: ['a', 'b'], linear: true };
    },
  });
}
for (const op of ['Add', 'Sub', 'Mul', 'Div']) {
  for (const [da, db] of [
    [[2, 3, 4], [2, 3, 4]],
    [[2, 3, 4], [4]],
    [[2, 3, 4], [3, 1]],
    [[2, 1, 4], [2, 3, 1]],
    [[3], [2, 3]],
    [[2, 3], []],
  ] as [number[], number[]][]) {
    cases.push({
      name: `${op} ${JSON.stringify(da)} ${JSON.stringify(db)}`,
      ops: [op],
      build(b, rng) {
        const inputs = [inp(b, rng, 'a', da), inp(b, rng, 'b', db, op === 'Div' ? (v) => (v >= 0 ? 1 + v : -1 + v) : undefined)];
        b.output(b.op1(op, ['a', 'b']));
        return { inputs, wrt: ['a', 'b'], linear: op === 'Add' || op === 'Sub' };
      },
    });
  }
}
cases.push({
  name: 'Mul of a tensor with itself (two consumers)',
  ops: ['Mul'],
  build(b, rng) {
    const x = inp(b, rng, 'x', [3, 4]);
    b.output(b.op1('Mul', ['x', 'x']));
    return { inputs: [x], wrt: ['x'] };
  },
});
for (let k = 0; k < 12; k++) {
  cases.push({
    name: `Conv #${k}`,
    ops: ['Conv'],
    build(b, rng) {
      const groupsKind = k % 3;
      const cin = pick(rng, [2, 4]);
      const group = groupsKind === 0 ? 1 : groupsKind === 1 ? 2 : cin;
      const cout = groupsKind === 2 ? cin * pick(rng, [1, 2]) : group * pick(rng, [1, 2]);
      const kh = 1 + rng.int(3);
      const kw = 1 + rng.int(3);
      const dil = k % 4 === 3 ? [2, 1 + rng.int(2)] : [1, 1];
      const strides = [1 + rng.int(2), 1 + rng.int(2)];
      const H = 5 + rng.int(4);
      const W = 5 + rng.int(4);
      const attrs: Record<string, number[] | string | number> = { strides, dilations: dil, group };
      if (k === 5 || k === 10) attrs.auto_pad = k === 5 ? 'SAME_UPPER' : 'SAME_LOWER';
      else attrs.pads = [rng.int(kh), rng.int(kw), rng.int(kh), rng.int(kw)];
      if (k === 5 || k === 10) attrs.dilations = [1, 1];
      const x = inp(b, rng, 'x', [2, cin, H, W]);
      const w = b.init([cout, cin / group, kh, kw], rand(rng, [cout, cin / group, kh, kw]));
      const bias = b.init([cout], rand(rng, [cout]));
      b.output(b.op1('Conv', ['x', w, bias], attrs));
      return { inputs: [x], wrt: ['x'], linear: true };
    },
  });
}
// Conv input gradients by path: all strides 1 → a Conv with the flipped, channel-swapped weight (baked, or flipped at
// run time when the weight is a graph input); strides > 1, or few gradient channels per group fed by more →
// ConvTranspose. onnxruntime's CPU Conv has no float64 kernel, so these run in float32.
const convPaths: { name: string; x: number[]; w: number[]; attrs: Record<string, number[] | number | string>; op: 'Conv' | 'ConvTranspose'; weightInput?: boolean }[] = [
  { name: 'stride 1, pads 0', x: [2, 4, 6, 7], w: [4, 4, 3, 3], attrs: {}, op: 'Conv' },
  { name: 'stride 1, pads 1, 8 → 16 channels', x: [2, 8, 6, 5], w: [16, 8, 3, 3], attrs: { pads: [1, 1, 1, 1] }, op: 'Conv' },
  { name: 'stride 1, asymmetric pads', x: [2, 4, 6, 7], w: [3, 4, 3, 3], attrs: { pads: [2, 0, 1, 2] }, op: 'Conv' },
  { name: 'stride 1, pads beyond the kernel reach (cropped gradient)', x: [2, 4, 5, 6], w: [4, 4, 3, 3], attrs: { pads: [3, 1, 0, 4] }, op: 'Conv' },
  { name: 'stride 1, dilations 2', x: [2, 4, 8, 7], w: [2, 4, 3, 3], attrs: { dilations: [2, 2], pads: [2, 1, 0, 3] }, op: 'Conv' },
  { name: 'stride 1, dilations 2×1, pads beyond the reach', x: [2, 4, 7, 6], w: [4, 4, 2, 3], attrs: { dilations: [2, 1], pads: [3, 0, 1, 3] }, op: 'Conv' },
  { name: 'stride 1, groups 2', x: [2, 4, 6, 6], w: [4, 2, 3, 3], attrs: { group: 2, pads: [1, 1, 1, 1] }, op: 'Conv' },
  { name: 'stride 1, groups 2, 8 → 4 channels per group', x: [2, 16, 5, 5], w: [8, 8, 3, 3], attrs: { group: 2, pads: [0, 1, 2, 1] }, op: 'Conv' },
  { name: 'stride 1, depthwise', x: [2, 4, 6, 6], w: [4, 1, 3, 3], attrs: { group: 4, pads: [1, 1, 1, 1] }, op: 'Conv' },
  { name: 'stride 1, depthwise 5×3, dilations 1×2', x: [2, 3, 8, 9], w: [3, 1, 5, 3], attrs: { group: 3, dilations: [1, 2], pads: [1, 2, 3, 0] }, op: 'Conv' },
  { name: 'stride 1, kernel 1×1', x: [2, 4, 5, 6], w: [2, 4, 1, 1], attrs: {}, op: 'Conv' },
  { name: 'stride 1, kernel 1×1, pads (cropped gradient)', x: [2, 4, 5, 6], w: [4, 4, 1, 1], attrs: { pads: [1, 0, 1, 1] }, op: 'Conv' },
  { name: 'stride 1, kernel 5×3', x: [2, 4, 8, 7], w: [4, 4, 5, 3], attrs: { pads: [2, 1, 1, 0] }, op: 'Conv' },
  { name: 'stride 1, SAME_UPPER 2×2', x: [2, 4, 5, 6], w: [4, 4, 2, 2], attrs: { auto_pad: 'SAME_UPPER' }, op: 'Conv' },
  { name: 'stride 1, SAME_LOWER 4×3', x: [2, 4, 6, 6], w: [4, 4, 4, 3], attrs: { auto_pad: 'SAME_LOWER' }, op: 'Conv' },
  { name: 'stride 1, 1-D', x: [2, 4, 9], w: [4, 4, 3], attrs: { pads: [2, 0] }, op: 'Conv' },
  { name: 'stride 1, 3-D', x: [2, 4, 4, 5, 3], w: [4, 4, 2, 3, 1], attrs: { pads: [1, 0, 0, 0, 1, 0] }, op: 'Conv' },
  { name: 'stride 1, weight fed at run time', x: [2, 4, 6, 6], w: [4, 4, 3, 3], attrs: { pads: [1, 2, 0, 1] }, op: 'Conv', weightInput: true },
  { name: 'stride 1, groups 2, weight fed at run time', x: [2, 4, 6, 6], w: [4, 2, 3, 2], attrs: { group: 2, pads: [1, 0, 1, 1] }, op: 'Conv', weightInput: true },
  { name: 'stride 1, depthwise, weight fed at run time', x: [2, 4, 6, 6], w: [4, 1, 3, 3], attrs: { group: 4, pads: [2, 1, 0, 1] }, op: 'Conv', weightInput: true },
  { name: 'stride 1, 2 gradient channels from 8', x: [2, 2, 6, 6], w: [8, 2, 3, 3], attrs: { pads: [1, 1, 1, 1] }, op: 'ConvTranspose' },
  { name: 'stride 1, depthwise multiplier 2', x: [2, 2, 6, 6], w: [4, 1, 3, 3], attrs: { group: 2, pads: [1, 1, 1, 1] }, op: 'ConvTranspose' },
  { name: 'strides 2, pads 1', x: [2, 4, 7, 8], w: [4, 4, 3, 3], attrs: { strides: [2, 2], pads: [1, 1, 1, 1] }, op: 'ConvTranspose' },
  { name: 'strides 2×1, dilations 1×2, groups 2', x: [2, 4, 9, 8], w: [4, 2, 3, 3], attrs: { strides: [2, 1], dilations: [1, 2], group: 2, pads: [1, 0, 0, 2] }, op: 'ConvTranspose' },
  { name: 'strides 2, depthwise', x: [2, 4, 8, 8], w: [4, 1, 3, 3], attrs: { strides: [2, 2], group: 4, pads: [1, 1, 0, 0] }, op: 'ConvTranspose' },
];
// Spatial sizes known only at run time (an audio or segmentation export): ConvTranspose with the largest output
// padding, cropped to the input's size.
for (const [name, x, w, attrs] of [
  ['1-D stride 2, pads 1, dynamic length', [2, 3, 11], [4, 3, 3], { strides: [2], pads: [1, 1] }],
  ['2-D strides 2×3, dilations 1×2, dynamic H and W', [2, 2, 9, 10], [3, 2, 3, 2], { strides: [2, 3], dilations: [1, 2], pads: [1, 0, 0, 1] }],
  ['2-D strides 2, dilations 3 (padded tail), dynamic H and W', [2, 2, 11, 12], [2, 2, 3, 3], { strides: [2, 2], dilations: [3, 3] }],
] as [string, number[], number[], Record<string, number[]>][]) {
  cases.push({
    name: `Conv ${name}`,
    ops: ['Conv'],
    dtypes: [FLOAT],
    build(b, rng) {
      b.input('x', x.map((d, i) => (i < 2 ? d : `s${i}`)));
      const xi = { name: 'x', dims: x, values: rand(rng, x) };
      b.output(b.op1('Conv', ['x', b.init(w, rand(rng, w))], attrs));
      return { inputs: [xi], wrt: ['x'], linear: true };
    },
  });
}
for (const c of convPaths) {
  cases.push({
    name: `Conv ${c.name} (${c.op})`,
    ops: ['Conv'],
    dtypes: [FLOAT],
    convGradOp: c.op,
    build(b, rng) {
      const x = inp(b, rng, 'x', c.x);
      const inputs = [x];
      let w: string;
      if (c.weightInput) {
        inputs.push(inp(b, rng, 'w', c.w));
        w = 'w';
      } else w = b.init(c.w, rand(rng, c.w));
      const bias = b.init([c.w[0]!], rand(rng, [c.w[0]!]));
      b.output(b.op1('Conv', ['x', w, bias], c.attrs));
      return { inputs, wrt: ['x'], linear: true };
    },
  });
}
cases.push({
  name: 'BatchNormalization',
  ops: ['BatchNormalization'],
  build(b, rng) {
    const C = 3;
    const x = inp(b, rng, 'x', [2, C, 3, 2]);
    const ins = [rand(rng, [C]), rand(rng, [C]), rand(rng, [C]), rand(rng, [C], (v) => 0.5 + v * v)].map((v) => b.init([C], v));
    b.output(b.op1('BatchNormalization', ['x', ...ins], { epsilon: { float: 1e-3 } }));
    return { inputs: [x], wrt: ['x'], linear: true };
  },
});
for (let k = 0; k < 5; k++) {
  cases.push({
    name: `MaxPool #${k}`,
    ops: ['MaxPool'],
    build(b, rng) {
      const kernel = [2 + rng.int(2), 2 + rng.int(2)];
      const strides = k < 2 ? kernel : [1 + rng.int(2), 1 + rng.int(2)];
      const x = inp(b, rng, 'x', [2, 2, 6 + rng.int(3), 5 + rng.int(3)]);
      b.output(b.op1('MaxPool', ['x'], { kernel_shape: kernel, strides, pads: k === 4 ? [1, 1, 1, 0] : [0, 0, 0, 0], ceil_mode: k === 3 ? 1 : 0 }));
      return { inputs: [x], wrt: ['x'], linear: true };
    },
  });
}
// Overlapping windows before opset 16: the gradient without Indices (per-tap routing), FLOAT only (onnxruntime's CPU
// Conv/ConvTranspose have no float64 kernel). Small integers distinct within every window (a random relabelling of
// 8·(row mod 5) + (column mod 8), per map): a step of 0.1 along a direction (|d| < 5) never changes a window's
// maximum. Ties and padding are checked against a hand-routed gradient in maxpool-taps.test.ts.
const tapPools: [string, Record<string, number[] | number | string>, [number, number]][] = [
  ['3×3/2 pads 1', { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }, [9, 8]],
  ['2×2/1', { kernel_shape: [2, 2] }, [6, 7]],
  ['3×3/2 asymmetric pads', { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 0, 2, 1] }, [8, 9]],
  ['kernel 2×3, strides 1×2', { kernel_shape: [2, 3], strides: [1, 2], pads: [0, 1, 1, 2] }, [7, 9]],
  ['3×2/1 dilations 2×1', { kernel_shape: [3, 2], dilations: [2, 1], pads: [2, 1, 1, 0] }, [9, 7]],
  ['3×3/2 ceil_mode', { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 }, [8, 10]],
];
for (const [name, attrs, [H, W]] of tapPools) {
  cases.push({
    name: `MaxPool without Indices (opset 13): ${name}`,
    ops: ['MaxPool'],
    opset: 13,
    dtypes: [FLOAT],
    build(b, rng) {
      const dims = [2, 2, H, W];
      const values = new Float64Array(4 * H * W);
      for (let m = 0; m < 4; m++) {
        const label = Array.from({ length: 40 }, (_, i) => i - 20);
        for (let i = 39; i > 0; i--) {
          const j = rng.int(i + 1);
          [label[i], label[j]] = [label[j]!, label[i]!];
        }
        for (let r = 0; r < H; r++) for (let c = 0; c < W; c++) values[(m * H + r) * W + c] = label[8 * (r % 5) + (c % 8)]!;
      }
      b.input('x', dims);
      b.output(b.op1('MaxPool', ['x'], attrs));
      return { inputs: [{ name: 'x', dims, values }], wrt: ['x'], linear: true, eps: 0.1 };
    },
  });
}
for (let k = 0; k < 4; k++) {
  cases.push({
    name: `AveragePool #${k}`,
    ops: ['AveragePool'],
    build(b, rng) {
      const kernel = [2 + rng.int(2), 2 + rng.int(2)];
      const strides = [1 + rng.int(2), 1 + rng.int(2)];
      const x = inp(b, rng, 'x', [2, 3, 6 + rng.int(3), 5 + rng.int(3)]);
      const pads = k < 2 ? [1, 0, 1, 1] : [0, 0, 0, 0];
      b.output(b.op1('AveragePool', ['x'], { kernel_shape: kernel, strides, pads, count_include_pad: k % 2 }));
      return { inputs: [x], wrt: ['x'], linear: true };
    },
  });
}
// Stride 1: the depthwise all-ones kernel's input gradient is a Conv (the kernel is its own flipped weight).
for (const [name, attrs] of [
  ['3×2/1 pads, count_include_pad 0', { kernel_shape: [3, 2], strides: [1, 1], pads: [1, 0, 2, 1], count_include_pad: 0 }],
  ['2×2/1 pads, count_include_pad 1', { kernel_shape: [2, 2], pads: [0, 1, 1, 0], count_include_pad: 1 }],
] as [string, Record<string, number[] | number>][]) {
  cases.push({
    name: `AveragePool ${name} (Conv)`,
    ops: ['AveragePool'],
    convGradOp: 'Conv',
    build(b, rng) {
      const x = inp(b, rng, 'x', [2, 3, 6, 5]);
      b.output(b.op1('AveragePool', ['x'], attrs));
      return { inputs: [x], wrt: ['x'], linear: true };
    },
  });
}
cases.push({
  name: 'GlobalAveragePool',
  ops: ['GlobalAveragePool'],
  build(b, rng) {
    const x = inp(b, rng, 'x', [2, 3, 4, 5]);
    b.output(b.op1('GlobalAveragePool', ['x']));
    return { inputs: [x], wrt: ['x'], linear: true };
  },
});
cases.push({
  name: 'Flatten / Reshape / Transpose / Squeeze / Unsqueeze',
  ops: ['Flatten', 'Reshape', 'Transpose', 'Squeeze', 'Unsqueeze'],
  build(b, rng) {
    const x = inp(b, rng, 'x', [2, 3, 4, 1]);
    const f = b.op1('Flatten', ['x'], { axis: 2 });
    const r = b.op1('Reshape', [f, b.init([3], [2, 2, 6], 'shape', 7)]);
    const t = b.op1('Transpose', [r], { perm: [2, 0, 1] });
    const u = b.op1('Unsqueeze', [t, b.init([1], [1], 'ax', 7)]);
    const s = b.op1('Squeeze', [u, b.init([1], [1], 'ax2', 7)]);
    b.output(b.op1('Mul', [s, s]));
    return { inputs: [x], wrt: ['x'] };
  },
});
cases.push({
  name: 'Transpose default perm',
  ops: ['Transpose'],
  build(b, rng) {
    const x = inp(b, rng, 'x', [2, 3, 4]);
    b.output(b.op1('Transpose', ['x']));
    return { inputs: [x], wrt: ['x'], linear: true };
  },
});
cases.push({
  name: 'Concat (with a repeated input) and Split (one output unused)',
  ops: ['Concat', 'Split'],
  build(b, rng) {
    const x = inp(b, rng, 'x', [2, 3, 2]);
    const y = inp(b, rng, 'y', [2, 1, 2]);
    const c = b.op1('Concat', ['x', 'y', 'x'], { axis: 1 });
    const [s0, , s2] = b.op('Split', [c, b.init([3], [2, 3, 2], 'split', 7)], { axis: -2 }, 3);
    b.output(b.op1('Tanh', [s0!]));
    b.output(s2!);
    return { inputs: [x, y], wrt: ['x', 'y'] };
  },
});

// ---- Reductions, elementwise functions, indexing, resampling, attention and normalisation (issue 12) ----
const positive = (v: number) => Math.abs(v) + 0.5;
for (const op of ['ReduceSum', 'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceSumSquare', 'ReduceL1', 'ReduceL2', 'ReduceLogSumExp']) {
  for (const [axes, keepdims] of [[[1], 1], [[0, 2], 0], [[-1], 0], [undefined, 1], [undefined, 0]] as [number[] | undefined, number][]) {
    for (const opset of [13, 18]) {
      cases.push({
        name: `${op} axes ${JSON.stringify(axes ?? 'all')} keepdims ${keepdims} opset ${opset}`,
        ops: [op],
        opset,
        build(b, rng) {
          const x = inp(b, rng, 'x', [2, 3, 4], op === 'ReduceL1' ? away([0]) : undefined);
          const axesAsInput = op === 'ReduceSum' ? opset >= 13 : opset >= 18;
          const ins = ['x'];
          const attrs: Record<string, number | number[]> = { keepdims };
          if (axes && axesAsInput) ins.push(b.init([axes.length], axes, `axes`, INT64));
          else if (axes) attrs.axes = axes;
          b.output(b.op1(op, ins, attrs));
          return { inputs: [x], wrt: ['x'], linear: op === 'ReduceSum' || op === 'ReduceMean' };
        },
      });
    }
  }
}
cases.push({
  name: 'ReduceSum noop_with_empty_axes',
  ops: ['ReduceSum'],
  build(b, rng) {
    const x = inp(b, rng, 'x', [2, 3]);
    b.output(b.op1('ReduceSum', ['x'], { noop_with_empty_axes: 1 }));
    return { inputs: [x], wrt: ['x'], linear: true };
  },
});
for (const [op, f] of [
  ['Neg', undefined],
  ['Exp', undefined],
  ['Log', positive],
  ['Sqrt', positive],
  ['Reciprocal', away([0], 2)],
  ['Abs', away([0])],
  ['Erf', undefined],
  ['Softplus', undefined],
] as [string, ((v: number) => number) | undefined][]) {
  cases.push(unary(op, {}, op === 'Neg', f));
}
cases.push(unary('Elu', { alpha: { float: 0.7 } }, false, away([0])));
for (const [name, exponent, dims] of [
  ['Pow by a constant 2', [2], []],
  ['Pow by a constant 3 (INT64)', [3], []],
  ['Pow by a constant 1', [1], []],
  ['Pow by a computed exponent (broadcast)', undefined, [3, 1]],
] as [string, number[] | undefined, number[]][]) {
  cases.push({
    name,
    ops: ['Pow'],
    build(b, rng) {
      const x = inp(b, rng, 'x', [2, 3, 4], positive);
      if (exponent) {
        const e = b.init(dims, exponent, 'e', name.includes('INT64') ? INT64 : undefined);
        b.output(b.op1('Pow', ['x', e]));
        return { inputs: [x], wrt: ['x'], linear: exponent[0] === 1 };
      }
      const e = inp(b, rng, 'e', dims, (v) => v * 0.5);
      b.output(b.op1('Pow', ['x', 'e']));
      return { inputs: [x, e], wrt: ['x', 'e'] };
    },
  });
}
cases.push({
  name: 'Cast between float types, and to INT64 (a constant)',
  ops: ['Cast'],
  build(b, rng) {
    const x = inp(b, rng, 'x', [3, 4], away([-2, -1, 0, 1, 2]));
    const wide = b.op1('Cast', ['x'], { to: DOUBLE });
    const back = b.op1('Cast', [b.op1('Mul', [wide, wide])], { to: b.dtype });
    const steps = b.op1('Cast', [b.op1('Cast', ['x'], { to: INT64 })], { to: b.dtype });
    b.output(b.op1('Mul', [back, steps]));
    return { inputs: [x], wrt: ['x'] };
  },
});
for (const op of ['Max', 'Min']) {
  cases.push({
    name: `${op} of three broadcast inputs`,
    ops: [op],
    build(b, rng) {
      const inputs = [inp(b, rng, 'a', [2, 3, 4]), inp(b, rng, 'b', [3, 1]), inp(b, rng, 'c', [4])];
      b.output(b.op1(op, ['a', 'b', 'c']));
      return { inputs, wrt: ['a', 'b', 'c'], linear: true, eps: 1e-3 };
    },
  });
}
for (const op of ['Sum', 'Mean']) {
  cases.push({
    name: `${op} of broadcast inputs`,
    ops: [op],
    build(b, rng) {
      const inputs = [inp(b, rng, 'a', [2, 3]), inp(b, rng, 'b', [3]), inp(b, rng, 'c', [2, 1])];
      b.output(b.op1(op, ['a', 'b', 'c']));
      return { inputs, wrt: ['a', 'b', 'c'], linear: true };
    },
  });
}
cases.push({
  name: 'Where (condition from a comparison: a constant)',
  ops: ['Where'],
  build(b, rng) {
    const inputs = [inp(b, rng, 'a', [2, 3, 4], away([0])), inp(b, rng, 'b', [3, 1])];
    const cond = b.op1('Greater', ['a', b.init([], [0])]);
    b.output(b.op1('Where', [cond, 'a', 'b']));
    return { inputs, wrt: ['a', 'b'], linear: true };
  },
});
cases.push({
  name: 'Expand',
  ops: ['Expand'],
  build(b, rng) {
    const x = inp(b, rng, 'x', [3, 1]);
    b.output(b.op1('Expand', ['x', b.init([3], [2, 3, 4], 'shape', INT64)]));
    return { inputs: [x], wrt: ['x'], linear: true };
  },
});
cases.push({
  name: 'Tile',
  ops: ['Tile'],
  build(b, rng) {
    const x = inp(b, rng, 'x', [2, 3, 1]);
    b.output(b.op1('Tile', ['x', b.init([3], [2, 1, 3], 'repeats', INT64)]));
    return { inputs: [x], wrt: ['x'], linear: true };
  },
});
for (const [name, starts, ends, axes, steps] of [
  ['Slice of two axes', [1, 0], [3, -1], [1, 2], undefined],
  ['Slice with steps 2 and −1', [0, -1], [4, -100], [2, 1], [2, -1]],
  ['Slice past the end, default axes', [0, 1, 1], [9, 99, 3], undefined, undefined],
] as [string, number[], number[], number[] | undefined, number[] | undefined][]) {
  cases.push({
    name,
    ops: ['Slice'],
    build(b, rng) {
      const x = inp(b, rng, 'x', [2, 3, 5]);
      const ins = ['x', b.init([starts.length], starts, 'starts', INT64), b.init([ends.length], ends, 'ends', INT64)];
      if (axes || steps) ins.push(axes ? b.init([axes.length], axes, 'axes', INT64) : '');
      if (steps) ins.push(b.init([steps.length], steps, 'steps', INT64));
      b.output(b.op1('Slice', ins));
      return { inputs: [x], wrt: ['x'], linear: true };
    },
  });
}
for (const opset of [13, 16]) {
  for (const [name, idxDims, idx, axis] of [
    ['repeated and negative indices, axis 1', [2, 2], [0, 2, -1, 0], 1],
    ['a scalar index, axis 1 (a token)', [], [0], 1],
    ['axis 0', [3], [1, 1, 0], 0],
  ] as [string, number[], number[], number][]) {
    cases.push({
      name: `Gather ${name} opset ${opset}`,
      ops: ['Gather'],
      opset,
      build(b, rng) {
        const x = inp(b, rng, 'x', [2, 3, 4]);
        b.output(b.op1('Gather', ['x', b.init(idxDims, idx, 'idx', INT64)], { axis }));
        return { inputs: [x], wrt: ['x'], linear: true };
      },
    });
  }
}
cases.push({
  name: 'Gather of distinct constant indices with dynamic dims, opset 13 (no one-hot, no accumulation)',
  ops: ['Gather'],
  opset: 13,
  build(b, rng) {
    const dims = [3, 2, 4];
    b.input('x', [3, 'B', 'T']);
    b.output(b.op1('Gather', ['x', b.init([], [1], 'idx', INT64)], { axis: 0 }));
    return { inputs: [{ name: 'x', dims, values: rand(rng, dims) }], wrt: ['x'], linear: true };
  },
});
for (const [name, attrs, scales, sizes, dims] of [
  ['nearest ×2 (asymmetric, floor)', { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }, [1, 1, 2, 2], undefined, [1, 2, 3, 4]],
  ['nearest to sizes 5×3 (half_pixel, round_prefer_floor)', { mode: 'nearest' }, undefined, [1, 2, 5, 3], [1, 2, 7, 4]],
  ['linear ×2 (half_pixel)', { mode: 'linear' }, [1, 1, 2, 2], undefined, [2, 2, 3, 4]],
  ['linear ×1.5×0.5 (pytorch_half_pixel)', { mode: 'linear', coordinate_transformation_mode: 'pytorch_half_pixel' }, [1, 1, 1.5, 0.5], undefined, [1, 2, 4, 6]],
  ['linear to sizes 5×7 (align_corners)', { mode: 'linear', coordinate_transformation_mode: 'align_corners' }, undefined, [1, 2, 5, 7], [1, 2, 3, 4]],
] as [string, Record<string, string>, number[] | undefined, number[] | undefined, number[]][]) {
  cases.push({
    name: `Resize ${name}`,
    ops: ['Resize'],
    opset: 13,
    build(b, rng) {
      const x = inp(b, rng, 'x', dims);
      const ins = ['x', '', scales ? b.init([4], scales, 'scales', FLOAT) : ''];
      if (sizes) ins.push(b.init([4], sizes, 'sizes', INT64));
      b.output(b.op1('Resize', ins, attrs));
      return { inputs: [x], wrt: ['x'], linear: true };
    },
  });
}
// Spatial sizes unknown until run time (a segmentation export): the resampling matrices are built in the graph.
for (const [name, attrs, sizesFromShape] of [
  ['linear ×2, dynamic H and W', { mode: 'linear' }, false],
  ['nearest, sizes computed from Shape (2H, W + 1), dynamic H and W', { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }, true],
] as [string, Record<string, string>, boolean][]) {
  cases.push({
    name: `Resize ${name}`,
    ops: ['Resize'],
    opset: 13,
    build(b, rng) {
      const dims = [1, 2, 3, 4];
      b.input('x', [1, 2, 'H', 'W']);
      const x = { name: 'x', dims, values: rand(rng, dims) };
      let ins: string[];
      if (sizesFromShape) {
        const shape = b.op1('Shape', ['x']);
        const hw = b.op1('Slice', [shape, b.init([1], [2], 's', INT64), b.init([1], [4], 'e', INT64)]);
        const scaled = b.op1('Add', [b.op1('Mul', [hw, b.init([2], [2, 1], 'm', INT64)]), b.init([2], [0, 1], 'a', INT64)]);
        const sizes = b.op1('Concat', [b.init([2], [1, 2], 'nc', INT64), scaled], { axis: 0 });
        ins = ['x', '', '', sizes];
      } else ins = ['x', '', b.init([4], [1, 1, 2, 2], 'scales', FLOAT)];
      b.output(b.op1('Resize', ins, attrs));
      return { inputs: [x], wrt: ['x'], linear: true };
    },
  });
}
for (const [name, x, w, attrs] of [
  ['strides 2, pads 1, output_padding 1', [2, 4, 3, 4], [4, 3, 3, 3], { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] }],
  ['stride 1, dilations 2, groups 2', [2, 4, 4, 3], [4, 2, 2, 3], { dilations: [2, 2], group: 2, pads: [0, 1, 1, 0] }],
  ['strides 3×2, kernel 2×2 (upsampling head)', [1, 3, 3, 3], [3, 2, 2, 2], { strides: [3, 2] }],
] as [string, number[], number[], Record<string, number[] | number>][]) {
  cases.push({
    name: `ConvTranspose ${name}`,
    ops: ['ConvTranspose'],
    dtypes: [FLOAT],
    build(b, rng) {
      const xi = inp(b, rng, 'x', x);
      const wt = b.init(w, rand(rng, w));
      const bias = b.init([w[1]! * ((attrs.group as number | undefined) ?? 1)], rand(rng, [w[1]! * ((attrs.group as number | undefined) ?? 1)]));
      b.output(b.op1('ConvTranspose', ['x', wt, bias], attrs));
      return { inputs: [xi], wrt: ['x'], linear: true };
    },
  });
}
for (const [eq, da, db] of [
  ['bij,bjk->bik', [2, 3, 4], [2, 4, 5]],
  ['ij,kj->ik', [3, 4], [5, 4]],
  ['bhqd,bhkd->bhqk', [2, 2, 3, 4], [2, 2, 5, 4]],
  ['ij,jk', [3, 4], [4, 2]],
] as [string, number[], number[]][]) {
  cases.push({
    name: `Einsum ${eq}`,
    ops: ['Einsum'],
    build(b, rng) {
      const inputs = [inp(b, rng, 'a', da), inp(b, rng, 'b', db)];
      b.output(b.op1('Einsum', ['a', 'b'], { equation: eq }));
      return { inputs, wrt: ['a', 'b'], linear: true };
    },
  });
}
for (const [axis, wrtParams] of [[-1, false], [1, true]] as [number, boolean][]) {
  cases.push({
    name: `LayerNormalization axis ${axis}${wrtParams ? ' (scale and bias computed)' : ''}`,
    ops: ['LayerNormalization'],
    opset: 17,
    build(b, rng) {
      const dims = [2, 3, 4];
      const norm = dims.slice(axis < 0 ? axis + 3 : axis);
      const x = inp(b, rng, 'x', dims);
      const inputs = [x];
      let scale: string;
      let bias: string;
      if (wrtParams) {
        inputs.push(inp(b, rng, 'scale', norm), inp(b, rng, 'bias', norm));
        scale = 'scale';
        bias = 'bias';
      } else {
        scale = b.init(norm, rand(rng, norm));
        bias = b.init(norm, rand(rng, norm));
      }
      b.output(b.op1('LayerNormalization', ['x', scale, bias], { axis, epsilon: { float: 1e-3 } }));
      return { inputs, wrt: inputs.map((i) => i.name) };
    },
  });
}
for (const [name, pads, mode, opset] of [
  ['Pad constant (pads and crops)', [0, 1, -1, 0, 2, 1], 'constant', 13],
  ['Pad reflect', [0, 1, 2, 0, 1, 1], 'reflect', 16],
  ['Pad edge', [1, 0, 2, 0, 2, 1], 'edge', 16],
] as [string, number[], string, number][]) {
  cases.push({
    name,
    ops: ['Pad'],
    opset,
    build(b, rng) {
      const x = inp(b, rng, 'x', [2, 3, 4]);
      b.output(b.op1('Pad', ['x', b.init([6], pads, 'pads', INT64), b.init([], [0.5], 'value')], { mode }));
      return { inputs: [x], wrt: ['x'], linear: true };
    },
  });
}
cases.push({
  name: 'Decomposed LayerNorm (ReduceMean, Sub, Pow, Add, Sqrt, Div) on a shape computed from the input',
  ops: ['ReduceMean', 'Sub', 'Pow', 'Sqrt', 'Div', 'Reshape'],
  build(b, rng) {
    const x = inp(b, rng, 'x', [2, 3, 4]);
    const mu = b.op1('ReduceMean', ['x'], { axes: [-1], keepdims: 1 });
    const c = b.op1('Sub', ['x', mu]);
    const v = b.op1('ReduceMean', [b.op1('Pow', [c, b.init([], [2])])], { axes: [-1], keepdims: 1 });
    const n = b.op1('Div', [c, b.op1('Sqrt', [b.op1('Add', [v, b.init([], [1e-3])])])]);
    // A Reshape to Shape(x) (Shape is not differentiable: a constant for the backward pass).
    const flat = b.op1('Reshape', [n, b.init([2], [6, 4], 'flat', INT64)]);
    b.output(b.op1('Reshape', [b.op1('Tanh', [flat]), b.op1('Shape', ['x'])]));
    return { inputs: [x], wrt: ['x'] };
  },
});
cases.push({
  name: 'Attention: MatMul of two computed operands, Softmax, MatMul',
  ops: ['MatMul', 'Softmax', 'Transpose'],
  build(b, rng) {
    const x = inp(b, rng, 'x', [2, 3, 4]);
    const q = b.op1('MatMul', ['x', b.init([4, 4], rand(rng, [4, 4]))]);
    const k = b.op1('MatMul', ['x', b.init([4, 4], rand(rng, [4, 4]))]);
    const v = b.op1('MatMul', ['x', b.init([4, 4], rand(rng, [4, 4]))]);
    const s = b.op1('Softmax', [b.op1('MatMul', [q, b.op1('Transpose', [k], { perm: [0, 2, 1] })])], { axis: -1 });
    b.output(b.op1('MatMul', [s, v]));
    return { inputs: [x], wrt: ['x'] };
  },
});

describe('vector-Jacobian rules against finite differences', () => {
  it('covers every rule', () => {
    const covered = new Set(cases.flatMap((c) => c.ops));
    expect(supportedOps().filter((op) => !covered.has(op))).toEqual([]);
  });

  const usedFloat32: string[] = [];
  afterAll(() => {
    if (usedFloat32.length) console.info(`checked in float32 (no float64 CPU kernel): ${usedFloat32.join(', ')}`);
  });
  for (const [index, c] of cases.entries()) {
    it(c.name, async () => {
      let lastError: unknown;
      for (const dtype of c.dtypes ?? [DOUBLE, FLOAT]) {
        const b = new GraphBuilder(dtype);
        const built = c.build(b, new Rng(1000 + index));
        const model = b.build(c.opset ?? 17);
        const f64 = dtype === DOUBLE;
        try {
          const res = await checkAgainstFiniteDifferences(model, f64 ? 'float64' : 'float32', built.inputs, built.wrt, {
            eps: f64 ? 1e-6 : (built.eps ?? (built.linear ? 0.5 : 2e-3)),
            seed: 7 + index,
          });
          if (!f64) usedFloat32.push(`${c.name} (${res.worst.toExponential(1)})`);
          expect(res.worst, JSON.stringify(res.checks)).toBeLessThan(f64 ? 1e-6 : built.linear ? 2e-4 : 2e-3);
          if (c.convGradOp) {
            const generated = (await buildVjpModel(model, { wrt: built.wrt })).model.graph!.node.filter((n) => n.name.startsWith('gm_probe/')).map((n) => n.opType);
            const other = c.convGradOp === 'Conv' ? 'ConvTranspose' : 'Conv';
            expect(generated).toContain(c.convGradOp);
            expect(generated).not.toContain(other);
          }
          return;
        } catch (err) {
          lastError = err;
          const msg = String((err as Error).message);
          if (f64 && /NOT_IMPLEMENTED|Could not find an implementation|not supported|type/i.test(msg) && !/expected/.test(msg)) continue;
          throw err;
        }
      }
      throw lastError;
    });
  }
});
