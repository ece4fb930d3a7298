/** Small graphs with the channel-coupling patterns of real exported models (shared by the group test suites). */
import { Rng } from '@gradmax/core';
import { F32, F64, GraphBuilder } from './helpers.js';
import { bn, conv } from './group-helpers.js';

/** ResNet: stem, two basic blocks, a strided block with a downsample conv, head. */
export function resnetStage(): GraphBuilder {
  const b = new GraphBuilder(new Rng(31));
  const x = b.input('x', ['N', 3, 12, 12]);
  let h = b.op('Relu', [bn(b, conv(b, x, 4, 3, [3, 3], { pads: [1, 1, 1, 1] }, 'stem'), 4)]);
  h = b.op('MaxPool', [h], { kernel_shape: [2, 2], strides: [2, 2] });
  for (const i of [1, 2]) {
    const a = b.op('Relu', [bn(b, conv(b, h, 4, 4, [3, 3], { pads: [1, 1, 1, 1] }, `b${i}.conv1`), 4)]);
    const c = bn(b, conv(b, a, 4, 4, [3, 3], { pads: [1, 1, 1, 1] }, `b${i}.conv2`), 4);
    h = b.op('Relu', [b.op('Add', [c, h])]);
  }
  const a = b.op('Relu', [conv(b, h, 6, 4, [3, 3], { pads: [1, 1, 1, 1], strides: [2, 2] }, 'b3.conv1')]);
  const c = conv(b, a, 6, 6, [3, 3], { pads: [1, 1, 1, 1] }, 'b3.conv2');
  const ds = conv(b, h, 6, 4, [1, 1], { strides: [2, 2] }, 'b3.down');
  h = b.op('Relu', [b.op('Add', [ds, c])]);
  const pooled = b.op('Flatten', [b.op('GlobalAveragePool', [h])]);
  const y = b.op('Gemm', [pooled, b.weight([5, 6]), b.weight([5])], { transB: 1 }, 1, 'fc');
  b.output(y, ['N', 5]);
  return b;
}

/** Inverted residual with decomposed HardSwish, depthwise conv, squeeze-excitation gate, dynamic H/W. */
export function mbconvSE(): GraphBuilder {
  const b = new GraphBuilder(new Rng(32));
  const x = b.input('x', ['N', 4, 'H', 'W']);
  const stem = b.op('Relu', [conv(b, x, 6, 4, [1, 1], {}, 'stem')]);
  const e = bn(b, conv(b, stem, 12, 6, [1, 1], {}, 'expand'), 12);
  // HardSwish decomposed: x * Clip(x + 3, 0, 6) / 6
  const hs = b.op('Div', [b.op('Mul', [e, b.op('Clip', [b.op('Add', [e, b.tensor([], [3])]), b.tensor([], [0]), b.tensor([], [6])])]), b.tensor([], [6])]);
  const dw = b.op('Relu', [bn(b, b.op('Conv', [hs, b.weight([12, 1, 3, 3]), b.weight([12], 0.1)], { group: 12, pads: [1, 1, 1, 1] }, 1, 'dw'), 12)]);
  const s = b.op('Relu', [conv(b, b.op('GlobalAveragePool', [dw]), 3, 12, [1, 1], {}, 'se.reduce')]);
  const gate = b.op('HardSigmoid', [conv(b, s, 12, 3, [1, 1], {}, 'se.expand')], { alpha: 1 / 6, beta: 0.5 });
  const scaled = b.op('Mul', [dw, gate]);
  const proj = bn(b, conv(b, scaled, 6, 12, [1, 1], {}, 'project'), 6);
  const out = b.op('Add', [proj, stem]);
  const y = conv(b, out, 2, 6, [3, 3], { pads: [1, 1, 1, 1] }, 'head');
  b.output(y, ['N', 2, 'H', 'W']);
  return b;
}

/**
 * EfficientNet / MobileNetV3 first stage: an MBConv1 block (depthwise, SiLU, squeeze-excitation, 1×1 projection)
 * with a residual Add, so the projection conv both reads the stage's channels and writes them back.
 */
export function mbconv1Residual(): GraphBuilder {
  const b = new GraphBuilder(new Rng(37));
  const x = b.input('x', ['N', 3, 8, 8]);
  const silu = (v: string) => b.op('Mul', [v, b.op('Sigmoid', [v])]);
  const stem = bn(b, conv(b, x, 6, 3, [3, 3], { pads: [1, 1, 1, 1] }, 'stem'), 6);
  const dw = silu(bn(b, b.op('Conv', [stem, b.weight([6, 1, 3, 3], 0.5)], { group: 6, pads: [1, 1, 1, 1] }, 1, 'dw'), 6));
  const s = silu(conv(b, b.op('GlobalAveragePool', [dw]), 2, 6, [1, 1], {}, 'se.reduce'));
  const gated = b.op('Mul', [dw, b.op('Sigmoid', [conv(b, s, 6, 2, [1, 1], {}, 'se.expand')])]);
  const proj = bn(b, conv(b, gated, 6, 6, [1, 1], {}, 'project'), 6);
  const out = b.op('Add', [proj, stem]);
  const y = conv(b, out, 4, 6, [3, 3], { pads: [1, 1, 1, 1], strides: [2, 2] }, 'head');
  b.output(y, ['N', 4, 4, 4]);
  return b;
}

/** Layers that read and write their group's channels: a 3×3 conv residual (pre-activation) and a MatMul one. */
export function residualLoops(): GraphBuilder {
  const b = new GraphBuilder(new Rng(38));
  const x = b.input('x', ['N', 2, 6, 6]);
  const stem = conv(b, x, 5, 2, [3, 3], { pads: [1, 1, 1, 1] }, 'stem');
  const loop = conv(b, b.op('Relu', [bn(b, stem, 5)]), 5, 5, [3, 3], { pads: [1, 1, 1, 1] }, 'loop');
  const r = b.op('Add', [stem, loop]);
  const flat = b.op('Flatten', [b.op('GlobalAveragePool', [r])]);
  const h = b.op('Add', [b.op('MatMul', [flat, b.weight([5, 4])], {}, 1, 'fc0'), b.weight([4], 0.1)]);
  const l2 = b.op('Add', [b.op('MatMul', [b.op('Tanh', [h]), b.weight([4, 4])], {}, 1, 'fc.loop'), b.weight([4], 0.1)]);
  const y = b.op('Gemm', [b.op('Add', [h, l2]), b.weight([3, 4])], { transB: 1 }, 1, 'head');
  b.output(y, ['N', 3]);
  return b;
}

/** A DenseNet block: every layer's output concatenated into the input of all later layers. */
export function denseBlock(): GraphBuilder {
  const b = new GraphBuilder(new Rng(33));
  const x = b.input('x', ['N', 3, 8, 8]);
  const x0 = b.op('Relu', [bn(b, conv(b, x, 4, 3, [3, 3], { pads: [1, 1, 1, 1] }, 'conv0'), 4)]);
  const layer = (inp: string, c: number, name: string) => {
    const h = conv(b, b.op('Relu', [bn(b, inp, c)]), 6, c, [1, 1], {}, `${name}.conv1`);
    return conv(b, b.op('Relu', [bn(b, h, 6)]), 3, 6, [3, 3], { pads: [1, 1, 1, 1] }, `${name}.conv2`);
  };
  const f1 = layer(x0, 4, 'l1');
  const c1 = b.op('Concat', [x0, f1], { axis: 1 });
  const f2 = layer(c1, 7, 'l2');
  const c2 = b.op('Concat', [x0, f1, f2], { axis: 1 });
  const t = conv(b, b.op('Relu', [bn(b, c2, 10)]), 5, 10, [1, 1], {}, 'transition');
  const y = b.op('Gemm', [b.op('Flatten', [b.op('GlobalAveragePool', [t])]), b.weight([5, 2])], {}, 1, 'fc');
  b.output(y, ['N', 2]);
  return b;
}

/** ResNeXt-style bottleneck with a grouped conv (group 4). */
export function resnextBlock(): GraphBuilder {
  const b = new GraphBuilder(new Rng(36));
  const x = b.input('x', ['N', 4, 6, 6]);
  const a = b.op('Relu', [bn(b, conv(b, x, 8, 4, [1, 1], {}, 'reduce'), 8)]);
  const g = b.op('Relu', [bn(b, conv(b, a, 8, 8, [3, 3], { group: 4, pads: [1, 1, 1, 1] }, 'grouped'), 8)]);
  const y = conv(b, g, 3, 8, [1, 1], {}, 'expand');
  b.output(y, ['N', 3, 6, 6]);
  return b;
}

/** A transformer block: decomposed LayerNorm on the residual stream, FFN with Erf- and tanh-GELU (opset 17). */
export function transformerBlock(): GraphBuilder {
  const b = new GraphBuilder(new Rng(41));
  const x = b.input('x', ['N', 'S', 8]);
  const embed = b.op('Add', [b.op('MatMul', [x, b.weight([8, 8])], {}, 1, 'embed'), b.weight([8], 0.1)]);
  // decomposed LayerNorm over the last axis
  const mean = b.op('ReduceMean', [embed], { axes: [-1] });
  const xc = b.op('Sub', [embed, mean]);
  const v = b.op('ReduceMean', [b.op('Pow', [xc, b.tensor([], [2])])], { axes: [-1] }, 1, 'ln.var');
  const ln = b.op('Add', [b.op('Mul', [b.op('Div', [xc, b.op('Sqrt', [b.op('Add', [v, b.tensor([], [1e-5])])])]), b.weight([8])]), b.weight([8], 0.1)]);
  const h = b.op('Add', [b.op('MatMul', [ln, b.weight([8, 16])], {}, 1, 'ffn.up'), b.weight([16], 0.1)]);
  // GELU, Erf form: 0.5 · x · (1 + erf(x / √2))
  const gelu = b.op('Mul', [b.op('Mul', [h, b.op('Add', [b.op('Erf', [b.op('Div', [h, b.tensor([], [Math.SQRT2])])]), b.tensor([], [1])])]), b.tensor([], [0.5])]);
  // GELU, tanh form: 0.5 · x · (1 + tanh(√(2/π) (x + 0.044715 x³)))
  const cube = b.op('Pow', [gelu, b.tensor([], [3])]);
  const inner = b.op('Mul', [b.op('Add', [gelu, b.op('Mul', [cube, b.tensor([], [0.044715])])]), b.tensor([], [Math.sqrt(2 / Math.PI)])]);
  const gelu2 = b.op('Mul', [b.op('Mul', [gelu, b.tensor([], [0.5])]), b.op('Add', [b.op('Tanh', [inner]), b.tensor([], [1])])]);
  const down = b.op('Add', [b.op('MatMul', [gelu2, b.weight([16, 8])], {}, 1, 'ffn.down'), b.weight([8], 0.1)]);
  const y = b.op('Add', [embed, down]);
  b.output(b.op('MatMul', [y, b.weight([8, 3])], {}, 1, 'head'), ['N', 'S', 3]);
  return b;
}

/** A dense residual group: fc0 and fc2 produce (joined by the Add), fc1 and head consume; f'(0) is 1/2 on fc0's paths. */
export function denseResidualGroup(): GraphBuilder {
  const b = new GraphBuilder(new Rng(61), F64);
  const x = b.input('x', ['N', 4]);
  const g0 = b.op('Gemm', [x, b.weight([4, 5]), b.weight([5], 0.1)], {}, 1, 'fc0');
  const h0 = b.op('Mul', [b.op('Tanh', [g0]), b.tensor([], [0.5])]); // f'(0) = 1/2
  const h1 = b.op('Tanh', [b.op('Gemm', [h0, b.weight([5, 6]), b.weight([6], 0.1)], {}, 1, 'fc1')]);
  const h2 = b.op('Gemm', [h1, b.weight([6, 5]), b.weight([5], 0.1)], { alpha: 0.7 }, 1, 'fc2');
  const r = b.op('Tanh', [b.op('Add', [h2, h0])]);
  b.output(b.op('Gemm', [r, b.weight([5, 3])], {}, 1, 'head'), ['N', 3]);
  return b;
}

/** A conv residual group (asymmetric pads) read by a Flatten -> Gemm head. */
export function convResidualFlatten(): GraphBuilder {
  const b = new GraphBuilder(new Rng(62), F32);
  const x = b.input('x', ['N', 2, 5, 5]);
  const h0 = b.op('Tanh', [b.op('Conv', [x, b.weight([3, 2, 3, 3], 0.4), b.weight([3], 0.1)], { pads: [1, 1, 1, 1] }, 1, 'conv0')]);
  const h1 = b.op('Tanh', [b.op('Conv', [h0, b.weight([4, 3, 3, 3], 0.4)], { pads: [1, 1, 1, 1] }, 1, 'conv1')]);
  const h2 = b.op('Conv', [h1, b.weight([3, 4, 3, 3], 0.4)], { pads: [1, 0, 1, 2], strides: [1, 1] }, 1, 'conv2');
  const r = b.op('Tanh', [b.op('Add', [h2, h0])]);
  b.output(b.op('Gemm', [b.op('Flatten', [r]), b.weight([75, 3], 0.2)], {}, 1, 'head'), ['N', 3]);
  return b;
}

/** Expand conv -> strided depthwise -> project conv -> GlobalAveragePool -> Gemm. */
export function stridedDepthwiseGap(): GraphBuilder {
  const b = new GraphBuilder(new Rng(64), F32);
  const x = b.input('x', ['N', 2, 7, 7]);
  const h0 = b.op('Tanh', [b.op('Conv', [x, b.weight([4, 2, 3, 3], 0.4), b.weight([4], 0.1)], { pads: [1, 1, 1, 1] }, 1, 'expand')]);
  const dw = b.op('Tanh', [b.op('Conv', [h0, b.weight([4, 1, 3, 3], 0.5), b.weight([4], 0.1)], { group: 4, pads: [1, 1, 1, 1], strides: [2, 2] }, 1, 'dw')]);
  const p = b.op('Tanh', [b.op('Conv', [dw, b.weight([3, 4, 3, 3], 0.4)], { pads: [1, 1, 1, 1] }, 1, 'project')]);
  b.output(b.op('Gemm', [b.op('Flatten', [b.op('GlobalAveragePool', [p])]), b.weight([3, 3], 0.8)], {}, 1, 'head'), ['N', 3]);
  return b;
}
