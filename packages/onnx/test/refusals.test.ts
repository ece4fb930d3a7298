import { describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { GraphProtoSchema, TensorProto_DataType } from 'onnx-buf';
import { GradmaxError, Rng, UnsupportedError } from '@gradmax/core';
import { findSites, growthSite, makeNode, makeTensor, makeValueInfo, widen, type OnnxModel } from '@gradmax/onnx';
import { GraphBuilder } from './helpers.js';
import { growAndCheck, makeUnits, saveTemp } from './grow-helpers.js';

/** x -> Gemm fc1 -> between(...) -> Gemm fc2 -> y */
function dense(between: (b: GraphBuilder, h: string) => string, options: { fc1Bias?: number[]; extra?: (b: GraphBuilder) => void } = {}): OnnxModel {
  const b = new GraphBuilder(new Rng(31));
  const x = b.input('x', ['N', 4]);
  const h = b.op('Gemm', [x, b.weight([4, 4]), options.fc1Bias ? b.tensor([options.fc1Bias.length / 4, 4], options.fc1Bias) : b.weight([4])], {}, 1, 'fc1');
  const y = b.op('Gemm', [between(b, h), b.weight([4, 3])], {}, 1, 'fc2');
  b.output(y, ['N', 3]);
  options.extra?.(b);
  return b.model();
}

function reasonOf(model: OnnxModel, current = 'fc1'): string {
  const site = findSites(model).find((s) => s.current === current);
  expect(site, `site of ${current}`).toBeDefined();
  expect(site!.growable).toBe(false);
  expect(() => growthSite(model, site!)).toThrow(UnsupportedError);
  return site!.reason!;
}

describe('not growable, with a precise reason', () => {
  it('LayerNormalization between the layers', () => {
    const m = dense((b, h) => b.op('LayerNormalization', [h, b.weight([4]), b.weight([4])], { axis: -1 }, 1, 'ln'));
    expect(reasonOf(m)).toMatch(/LayerNormalization "ln" normalises over channels/);
  });

  it('decomposed LayerNorm (ReduceMean/Sub/Pow/Sqrt/Div)', () => {
    const m = dense((b, h) => {
      const mean = b.op('ReduceMean', [h], { axes: [-1] }, 1, 'rm');
      const d = b.op('Sub', [h, mean]);
      const v = b.op('ReduceMean', [b.op('Pow', [d, b.tensor([], [2])])], { axes: [-1] });
      return b.op('Div', [d, b.op('Sqrt', [b.op('Add', [v, b.tensor([], [1e-5])])])]);
    });
    expect(reasonOf(m)).toMatch(/ReduceMean "rm" reduces over the channel axis/);
  });

  it('Softmax over channels', () => {
    expect(reasonOf(dense((b, h) => b.op('Softmax', [h], { axis: 1 }, 1, 'sm')))).toMatch(/Softmax "sm" normalises over channels/);
  });

  it('residual Add with a tensor from outside the site', () => {
    const m = dense((b, h) => b.op('Add', [b.op('Relu', [h]), 'x'], {}, 1, 'res'));
    expect(reasonOf(m)).toMatch(/Add "res" combines the widened channels with "x", which comes from outside the site/);
  });

  it('Concat', () => {
    const m = dense((b, h) => b.op('Gemm', [b.op('Concat', [h, 'x'], { axis: 1 }, 1, 'cat'), b.weight([8, 4])], {}, 1, 'fc1b'));
    expect(reasonOf(m)).toMatch(/Concat "cat" joins the widened channels/);
  });

  it('fan-out to a second consumer', () => {
    const m = dense((b, h) => {
      const r = b.op('Relu', [h]);
      b.op('Gemm', [r, b.weight([4, 2])], {}, 1, 'side');
      return r;
    });
    expect(reasonOf(m)).toMatch(/fan-out/);
  });

  it('intermediate value that is a graph output', () => {
    const m = dense((b, h) => b.op('Relu', [h]), { extra: (b) => b.output(b.nodes[1]!.output[0]!, ['N', 4]) });
    expect(reasonOf(m)).toMatch(/is a graph output/);
  });

  it('quantized layer and quantized weights', () => {
    const b = new GraphBuilder(new Rng(32));
    const x = b.input('x', ['N', 4]);
    const q = b.op('QuantizeLinear', [x, b.tensor([], [0.1])]);
    const wq = makeTensor('wq', TensorProto_DataType.UINT8, [4, 4], new Array(16).fill(3));
    b.inits.push(wq);
    const mm = b.op('MatMulInteger', [q, 'wq'], {}, 1, 'qmm');
    const wd = b.op('DequantizeLinear', ['wq', b.tensor([], [0.1])]);
    const y = b.op('MatMul', [b.op('Cast', [mm], { to: 1 }), wd], {}, 1, 'mm');
    b.output(y, ['N', 4]);
    const m = b.model();
    expect(reasonOf(m, 'qmm')).toMatch(/quantized op/);
    expect(reasonOf(m, 'mm')).toMatch(/comes from the quantized op DequantizeLinear/);
  });

  it('layers inside If/Loop subgraphs, and values captured by them', () => {
    const b = new GraphBuilder(new Rng(33));
    const x = b.input('x', ['N', 4]);
    const c = b.input('cond', [], TensorProto_DataType.BOOL);
    const h = b.op('Gemm', [x, b.weight([4, 4])], {}, 1, 'fc1');
    const inner = makeTensor('w_in', TensorProto_DataType.FLOAT, [4, 4], new Array(16).fill(0.5));
    const branch = (name: string) => create(GraphProtoSchema, { name, node: [makeNode('MatMul', [h, 'w_in'], [`${name}_y`], {}, `${name}_mm`)], initializer: [inner], output: [makeValueInfo(`${name}_y`, TensorProto_DataType.FLOAT, ['N', 4])] });
    b.nodes.push(makeNode('If', [c], ['y'], { then_branch: branch('then'), else_branch: branch('else') }, 'if'));
    b.output('y', ['N', 4]);
    const m = b.model();
    expect(reasonOf(m, 'then_mm')).toMatch(/inside a subgraph of If "if"/);
    expect(reasonOf(m, 'fc1')).toMatch(/used inside a subgraph of If "if"/);
  });

  it('grouped conv as the grown layer, grouped and dilated next layers', () => {
    const b = new GraphBuilder(new Rng(34));
    const x = b.input('x', ['N', 4, 6, 6]);
    const g = b.op('Conv', [x, b.weight([4, 2, 1, 1])], { group: 2 }, 1, 'gconv');
    const c = b.op('Conv', [g, b.weight([4, 4, 1, 1])], {}, 1, 'conv');
    const n = b.op('Conv', [c, b.weight([4, 2, 1, 1])], { group: 2 }, 1, 'gconv2');
    const d = b.op('Conv', [n, b.weight([4, 4, 3, 3])], { dilations: [2, 2] }, 1, 'dil');
    b.output(b.op('Conv', [d, b.weight([2, 4, 1, 1])], {}, 1, 'last'));
    const m = b.model();
    expect(reasonOf(m, 'gconv')).toMatch(/grouped conv \(group=2\); grouped convs cannot be the grown layer/);
    expect(reasonOf(m, 'conv')).toMatch(/next layer Conv "gconv2" is a grouped conv/);
    expect(reasonOf(m, 'dil')).toMatch(/dilated/);
    expect(reasonOf(m, 'last')).toMatch(/no next Gemm\/MatMul\/Conv layer|graph output/);
  });

  it('op not known to keep zero channels, ops reading the shape, batch-varying bias, weights that are graph inputs', () => {
    expect(reasonOf(dense((b, h) => b.op('Custom', [h], {}, 1, 'cu')))).toMatch(/Custom "cu" is not known to keep new channels at zero/);
    expect(reasonOf(dense((b, h) => b.op('Reshape', [h, b.op('Shape', [h], {}, 1, 'shp')])))).toMatch(/Shape "shp" reads the shape/);
    expect(reasonOf(dense((b, h) => h, { fc1Bias: new Array(12).fill(0.1) }))).toMatch(/varies over the batch axis/);
    const b = new GraphBuilder(new Rng(35));
    const x = b.input('x', ['N', 4]);
    const w = b.input('w', [4, 4]);
    b.output(b.op('Gemm', [b.op('Gemm', [x, w], {}, 1, 'fc1'), b.weight([4, 2])], {}, 1, 'fc2'), ['N', 2]);
    expect(reasonOf(b.model())).toMatch(/weight B "w" of Gemm "fc1" is a graph input, not a stored tensor/);
  });
});

describe('activation with f(0) != 0', () => {
  const model = () => dense((b, h) => b.op('Sigmoid', [h], {}, 1, 'sig'));
  it('is growable but reports f(0) and refuses incoming-zero units', () => {
    const m = model();
    const site = findSites(m).find((s) => s.current === 'fc1')!;
    expect(site.growable).toBe(true);
    expect(site.activation).toMatchObject({ name: 'Sigmoid', f0: 0.5, df0: 0.25 });
    expect(site.notes.join()).toMatch(/f\(0\) = 0.5/);
    const units = makeUnits(growthSite(m, site), 2, 'incoming-zero');
    let err: unknown;
    try {
      widen(m, [{ site: site.name, newUnits: units }]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnsupportedError);
    expect((err as GradmaxError).message).toMatch(/f\(0\) = 0.5/);
  });
  it('accepts outgoing-zero and copying units (function preserved)', async () => {
    const file = saveTemp(model());
    await growAndCheck(file, 'fc1', 2, 'outgoing-zero');
    await growAndCheck(file, 'fc1', 2, 'split');
  });
});

describe('more precise reasons', () => {
  const conv = (between: (b: GraphBuilder, h: string) => string, opset = 13) => {
    const b = new GraphBuilder(new Rng(36));
    const x = b.input('x', ['N', 2, 6, 6]);
    const c1 = b.op('Conv', [x, b.weight([3, 2, 3, 3])], { pads: [1, 1, 1, 1] }, 1, 'fc1');
    b.output(b.op('Conv', [between(b, c1), b.weight([2, 3, 1, 1])], {}, 1, 'fc2'));
    return b.model(opset);
  };
  it('Pad on the channel axis, Clip bounds computed at run time, Reshape that is not a flatten', () => {
    expect(reasonOf(conv((b, h) => b.op('Pad', [h, b.int64([0, 1, 0, 0, 0, 0, 0, 0])], {}, 1, 'pad')))).toMatch(/Pad "pad" pads the channel axis/);
    expect(reasonOf(conv((b, h) => b.op('Clip', [h, b.op('ReduceMin', ['x'], { keepdims: 0 })], {}, 1, 'clip')))).toMatch(/Clip "clip": bound ".*" is computed at run time/);
    const m = dense((b, h) => b.op('Reshape', [h, b.int64([-1, 2, 2])], {}, 1, 'rs'));
    expect(reasonOf(m)).toMatch(/Reshape "rs" does not flatten an NCHW map/);
  });
  it('Dropout in training mode, extra outputs in use, and a weight fed to the next layer as its B input', () => {
    const d = dense((b, h) => {
      const out = b.op('Dropout', [h, b.tensor([], [0.5]), b.input('train', [], TensorProto_DataType.BOOL)], {}, 1, 'drop');
      return out;
    });
    expect(reasonOf(d)).toMatch(/Dropout "drop": training_mode is not a constant false/);
    const mp = conv((b, h) => {
      const outs = b.op('MaxPool', [h], { kernel_shape: [1, 1] }, 2, 'mp');
      b.output(b.nodes.at(-1)!.output[1]!, undefined, TensorProto_DataType.INT64);
      return outs;
    });
    expect(reasonOf(mp)).toMatch(/MaxPool "mp": its extra output ".*" is used/);
    const w = dense((b, h) => b.op('MatMul', [b.weight([2, 4]), h], {}, 1, 'mmw'));
    expect(reasonOf(w)).toMatch(/feed input 1 \(the weight\) of MatMul "mmw"/);
  });
  it('INT8 weights and weights of different types in the two layers', () => {
    const b = new GraphBuilder(new Rng(37));
    const x = b.input('x', ['N', 4]);
    b.inits.push(makeTensor('w8', TensorProto_DataType.INT8, [4, 4], new Array(16).fill(1)));
    const h = b.op('MatMul', [b.op('Cast', [x], { to: TensorProto_DataType.INT8 }), 'w8'], {}, 1, 'fc1');
    b.output(b.op('MatMul', [h, b.weight([4, 2])], {}, 1, 'fc2'));
    expect(reasonOf(b.model())).toMatch(/weight "w8" of MatMul "fc1" is INT8; only FLOAT, FLOAT16 and DOUBLE/);
  });
});
