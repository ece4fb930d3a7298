import { afterAll, describe, expect, it } from 'vitest';
import { Rng, convFanIn, convFanOut } from '@gradmax/core';
import { findSites, growthSite } from '@gradmax/onnx';
import { F16, GraphBuilder, flushOnnxChecks } from './helpers.js';
import { growAndCheck, saveTemp, type UnitsKind } from './grow-helpers.js';

const KINDS: UnitsKind[] = ['incoming-zero', 'outgoing-zero', 'split'];

afterAll(() => {
  expect(flushOnnxChecks()).toBe('');
});

function bn(b: GraphBuilder, x: string, c: number): string {
  const scale = b.tensor([c], Array.from({ length: c }, () => 0.5 + b.rng.uniform()));
  const bias = b.weight([c], 0.1);
  const mean = b.weight([c], 0.1);
  const v = b.tensor([c], Array.from({ length: c }, () => 0.5 + b.rng.uniform()));
  return b.op('BatchNormalization', [x, scale, bias, mean, v], { epsilon: 1e-3 });
}

describe('Conv -> Conv', () => {
  it('Conv -> BN -> Relu -> Conv (stride 2, pads), exact geometry', async () => {
    const b = new GraphBuilder(new Rng(21));
    const x = b.input('x', ['N', 3, 9, 9]);
    const c1 = b.op('Conv', [x, b.weight([4, 3, 3, 3]), b.weight([4])], { pads: [1, 1, 1, 1] }, 1, 'conv1');
    const r = b.op('Relu', [bn(b, c1, 4)]);
    const c2 = b.op('Conv', [r, b.weight([5, 4, 3, 3])], { pads: [0, 1, 1, 0], strides: [2, 2] }, 1, 'conv2');
    b.output(c2, ['N', 5, 4, 4]);
    const model = b.model();
    const site = findSites(model).find((s) => s.current === 'conv1')!;
    expect(site.growable, site.reason).toBe(true);
    expect(site.exactGeometry).toBe(true);
    const gs = growthSite(model, site);
    expect(gs.kind).toBe('conv');
    expect(gs.conv!.midSize).toEqual([9, 9]);
    expect(gs.conv!.pad2).toEqual({ top: 0, left: 1, bottom: 1, right: 0 });
    expect(convFanIn(gs.conv!)).toBe(gs.fanIn);
    expect(convFanOut(gs.conv!)).toBe(gs.fanOut);
    // OIHW -> (a_r, a_c, c_in) incoming layout, checked against a direct read
    const w1 = model.readNumbers(model.weight(model.graph.node[0]!.input[1]!)!.tensor);
    expect(gs.incoming.get(2, (1 * 3 + 2) * 3 + 1)).toBe(w1[((2 * 3 + 1) * 3 + 1) * 3 + 2]);
    const file = saveTemp(model);
    for (const kind of KINDS) await growAndCheck(file, 'conv1', 3, kind);
  });

  it('depthwise conv (centre delta), pooling, Pad and SAME_UPPER auto_pad between', async () => {
    const b = new GraphBuilder(new Rng(22));
    const x = b.input('x', ['N', 2, 10, 10]);
    const c1 = b.op('Conv', [x, b.weight([4, 2, 3, 3]), b.weight([4])], { auto_pad: 'SAME_UPPER', strides: [2, 2] }, 1, 'conv1');
    const r = b.op('Relu', [c1]);
    const dw = b.op('Conv', [r, b.weight([4, 1, 3, 3]), b.weight([4])], { group: 4, pads: [1, 1, 1, 1] }, 1, 'dw');
    const r2 = b.op('Relu', [bn(b, dw, 4)]);
    const p = b.op('MaxPool', [r2], { kernel_shape: [2, 2], strides: [1, 1] });
    const pd = b.op('Pad', [p, b.int64([0, 0, 1, 1, 0, 0, 0, 1])], { mode: 'constant' });
    const a = b.op('AveragePool', [pd], { kernel_shape: [2, 2] });
    const c2 = b.op('Conv', [a, b.weight([3, 4, 1, 1])], {}, 1, 'conv2');
    b.output(c2, ['N', 3, 4, 5]);
    const model = b.model();
    const site = findSites(model).find((s) => s.current === 'conv1')!;
    expect(site.growable, site.reason).toBe(true);
    expect(site.exactGeometry).toBe(false);
    expect(site.between.map((o) => o.opType)).toEqual(['Relu', 'Conv', 'BatchNormalization', 'Relu', 'MaxPool', 'Pad', 'AveragePool']);
    expect(findSites(model).find((s) => s.current === 'dw')!.reason).toMatch(/depthwise conv \(group=4\); it cannot be the grown layer/);
    const file = saveTemp(model);
    for (const kind of KINDS) await growAndCheck(file, 'conv1', 2, kind);
  });

  it('HardSwish decomposed as Add/Clip/Mul/Div, Clip in opset-9 attribute form', async () => {
    const b = new GraphBuilder(new Rng(23));
    const x = b.input('x', ['N', 2, 6, 6]);
    const c1 = b.op('Conv', [x, b.weight([3, 2, 3, 3])], { pads: [1, 1, 1, 1] }, 1, 'conv1');
    const a = b.op('Add', [c1, b.tensor([], [3])]);
    const cl = b.op('Clip', [a], { min: { float: 0 }, max: { float: 6 } });
    const m = b.op('Mul', [c1, cl]);
    const d = b.op('Div', [m, b.tensor([], [6])]);
    const c2 = b.op('Conv', [d, b.weight([2, 3, 3, 3])], { pads: [1, 1, 1, 1] }, 1, 'conv2');
    b.output(c2, ['N', 2, 6, 6]);
    const model = b.model(10);
    const site = findSites(model).find((s) => s.current === 'conv1')!;
    expect(site.growable, site.reason).toBe(true);
    expect(site.activation!.f0).toBe(0);
    expect(site.activation!.df0).toBeCloseTo(0.5, 12);
    const file = saveTemp(model);
    for (const kind of KINDS) await growAndCheck(file, 'conv1', 2, kind);
  });

  it('Clip in opset-13 input form and per-channel Mul/Add constants', async () => {
    const b = new GraphBuilder(new Rng(24));
    const x = b.input('x', ['N', 2, 5, 5]);
    const c1 = b.op('Conv', [x, b.weight([3, 2, 3, 3])], {}, 1, 'conv1');
    const cl = b.op('Clip', [c1, b.tensor([], [-1]), b.tensor([], [1])]);
    const m = b.op('Mul', [cl, b.weight([3, 1, 1])]);
    const ad = b.op('Add', [m, b.weight([1, 3, 1, 1])]);
    const c2 = b.op('Conv', [b.op('Relu', [ad]), b.weight([2, 3, 1, 1])], {}, 1, 'conv2');
    b.output(c2, ['N', 2, 3, 3]);
    const file = saveTemp(b.model(13));
    for (const kind of KINDS) await growAndCheck(file, 'conv1', 2, kind);
  });
});

describe('Conv -> ... -> Flatten/Reshape -> Gemm/MatMul', () => {
  it('Conv -> Relu -> Flatten -> BatchNorm -> Gemm (c, h, w) rows, exact flatten-dense geometry', async () => {
    const b = new GraphBuilder(new Rng(25));
    const x = b.input('x', ['N', 2, 4, 4]);
    const c1 = b.op('Conv', [x, b.weight([3, 2, 3, 3]), b.weight([3])], {}, 1, 'conv1');
    const f = b.op('Flatten', [b.op('Relu', [c1])], { axis: 1 });
    const y = b.op('Gemm', [bn(b, f, 12), b.weight([12, 5]), b.weight([5])], {}, 1, 'fc');
    b.output(y, ['N', 5]);
    const model = b.model();
    const site = findSites(model).find((s) => s.current === 'conv1')!;
    expect(site.growable, site.reason).toBe(true);
    expect(site.exactGeometry).toBe(true);
    const gs = growthSite(model, site);
    expect(gs.conv!.kernel2).toEqual([2, 2]);
    expect(gs.fanOut).toBe(2 * 2 * 5);
    // outgoing row (h·W + w)·n2 + o, column c = dense row c·H·W + h·W + w
    const w2 = model.readNumbers(model.weight(model.graph.node.find((n) => n.name === 'fc')!.input[1]!)!.tensor);
    expect(gs.outgoing.get((1 * 2 + 0) * 5 + 3, 2)).toBe(w2[(2 * 4 + 1 * 2 + 0) * 5 + 3]);
    const file = saveTemp(model);
    for (const kind of KINDS) await growAndCheck(file, 'conv1', 2, kind);
  });

  it('Conv -> BN -> Relu -> GlobalAveragePool -> Reshape -> MatMul', async () => {
    const b = new GraphBuilder(new Rng(26));
    const x = b.input('x', ['N', 3, 6, 6]);
    const c1 = b.op('Conv', [x, b.weight([4, 3, 3, 3])], { pads: [1, 1, 1, 1] }, 1, 'conv1');
    const g = b.op('GlobalAveragePool', [b.op('Relu', [bn(b, c1, 4)])]);
    const rs = b.op('Reshape', [g, b.int64([-1, 4])]);
    const y = b.op('MatMul', [rs, b.weight([4, 3])], {}, 1, 'fc');
    b.output(y, ['N', 3]);
    const file = saveTemp(b.model());
    for (const kind of KINDS) await growAndCheck(file, 'conv1', 3, kind);
  });

  it('Conv -> MaxPool -> Reshape(0, C·H·W) -> Gemm(transB) with FP16 weights', async () => {
    const b = new GraphBuilder(new Rng(27), F16);
    const x = b.input('x', ['N', 2, 6, 6]);
    const c1 = b.op('Conv', [x, b.weight([3, 2, 3, 3]), b.weight([3])], { pads: [1, 1, 1, 1] }, 1, 'conv1');
    const p = b.op('MaxPool', [b.op('Relu', [c1])], { kernel_shape: [2, 2], strides: [2, 2] });
    const rs = b.op('Reshape', [p, b.int64([0, 27])]);
    const y = b.op('Gemm', [rs, b.weight([4, 27]), b.weight([4])], { transB: 1 }, 1, 'fc');
    b.output(y, ['N', 4]);
    const file = saveTemp(b.model());
    for (const kind of KINDS) await growAndCheck(file, 'conv1', 2, kind, { fp16: true });
  });

  it('x.view(x.size(0), -1): Reshape with a target computed from Shape/Gather/Unsqueeze/Concat', async () => {
    const b = new GraphBuilder(new Rng(28));
    const x = b.input('x', ['N', 2, 4, 4]);
    const c1 = b.op('Conv', [x, b.weight([3, 2, 3, 3]), b.weight([3])], { pads: [1, 1, 1, 1] }, 1, 'conv1');
    const r = b.op('Relu', [c1]);
    const shp = b.op('Shape', [r], {}, 1, 'shape');
    const n = b.op('Gather', [shp, b.int64([0])], { axis: 0 });
    const target = b.op('Concat', [n, b.int64([-1])], { axis: 0 });
    const flat = b.op('Reshape', [r, target]);
    const y = b.op('Gemm', [flat, b.weight([48, 3])], {}, 1, 'fc');
    b.output(y, ['N', 3]);
    const model = b.model();
    const site = findSites(model).find((s) => s.current === 'conv1')!;
    expect(site.growable, site.reason).toBe(true);
    expect(site.between.find((o) => o.opType === 'Shape')?.effect).toBe('reads non-channel dims only');
    const file = saveTemp(model);
    for (const kind of KINDS) await growAndCheck(file, 'conv1', 2, kind);
  });

  it('a Shape that reads the channel dim is refused', () => {
    const b = new GraphBuilder(new Rng(29));
    const x = b.input('x', ['N', 2, 4, 4]);
    const c1 = b.op('Conv', [x, b.weight([3, 2, 3, 3])], {}, 1, 'conv1');
    const shp = b.op('Shape', [c1], {}, 1, 'shape');
    const c = b.op('Gather', [shp, b.int64([1])], { axis: 0 });
    const flat = b.op('Reshape', [c1, b.op('Concat', [c, b.int64([-1])], { axis: 0 })]);
    b.output(b.op('MatMul', [flat, b.weight([8, 3])], {}, 1, 'fc'));
    expect(findSites(b.model()).find((s) => s.current === 'conv1')!.reason).toMatch(/Shape "shape" reads the shape of the widened tensor/);
  });
});
