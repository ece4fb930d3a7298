/**
 * A small static shape propagation over the main graph for the operators that matter to growth sites (convs,
 * pools, pads, reshapes, elementwise ops, Gemm/MatMul). Symbolic dims are kept as strings; unknown dims as
 * `undefined`. `value_info` entries fill gaps for other operators.
 * @packageDocumentation
 */
import type { NodeProto } from 'onnx-buf';
import { attrInt, attrInts, attrString } from './attributes.js';
import type { OnnxModel } from './model.js';
import { valueInfoShape } from './model.js';
import { tensorDims } from './tensor.js';

/** One dimension: fixed size, symbolic name, or unknown. */
export type Dim = number | string | undefined;
/** A tensor shape (`undefined` = unknown rank). */
export type Shape = Dim[] | undefined;

const ELEMENTWISE_UNARY = new Set([
  'Relu', 'LeakyRelu', 'Clip', 'Identity', 'Dropout', 'Sigmoid', 'Tanh', 'Exp', 'Log', 'Sqrt', 'Neg', 'Abs', 'Erf', 'HardSwish', 'HardSigmoid',
  'Softplus', 'Softsign', 'Elu', 'Selu', 'Celu', 'Gelu', 'Mish', 'ThresholdedRelu', 'Cast', 'Softmax', 'LogSoftmax', 'BatchNormalization',
  'LayerNormalization', 'InstanceNormalization', 'GroupNormalization', 'LpNormalization', 'MeanVarianceNormalization', 'Reciprocal', 'Floor', 'Ceil', 'Round', 'Sign',
]);
const BROADCAST = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'PRelu', 'Where', 'Sum', 'Mean']);

/** Broadcasts shapes numpy-style. */
export function broadcastShapes(shapes: Shape[]): Shape {
  if (shapes.some((s) => s === undefined)) return undefined;
  const rank = Math.max(...shapes.map((s) => s!.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const v = s![s!.length - rank + i];
      if (v === undefined && s!.length - rank + i >= 0) {
        if (d === 1) d = undefined;
        continue;
      }
      if (v === undefined || v === 1) continue;
      if (d === 1 || d === undefined) d = v;
    }
    out.push(d);
  }
  return out;
}

/** Explicit begin/end pads of a conv or pool for each spatial axis, resolving `auto_pad`; undefined when unknown. */
export function resolveNodePads(node: NodeProto, spatial: Dim[], kernel: number[], strides: number[], dilations: number[]): number[] | undefined {
  const n = kernel.length;
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  if (autoPad === 'NOTSET') {
    const pads = attrInts(node, 'pads') ?? new Array(2 * n).fill(0);
    return pads.length === 2 * n ? pads : undefined;
  }
  if (autoPad === 'VALID') return new Array(2 * n).fill(0);
  const out = new Array<number>(2 * n);
  for (let i = 0; i < n; i++) {
    const size = spatial[i];
    if (typeof size !== 'number') return undefined;
    const outSize = Math.ceil(size / strides[i]!);
    const total = Math.max(0, (outSize - 1) * strides[i]! + (kernel[i]! - 1) * dilations[i]! + 1 - size);
    const small = Math.floor(total / 2);
    out[i] = autoPad === 'SAME_LOWER' ? total - small : small;
    out[i + n] = total - out[i]!;
  }
  return out;
}

function windowOutput(node: NodeProto, input: Shape, kernel: number[], channels: Dim): Shape {
  if (!input || input.length !== kernel.length + 2) return undefined;
  const n = kernel.length;
  const strides = attrInts(node, 'strides') ?? new Array(n).fill(1);
  const dilations = attrInts(node, 'dilations') ?? new Array(n).fill(1);
  const pads = resolveNodePads(node, input.slice(2), kernel, strides, dilations);
  const ceil = attrInt(node, 'ceil_mode', 0) === 1;
  const out: Dim[] = [input[0], channels];
  for (let i = 0; i < n; i++) {
    const size = input[2 + i];
    if (typeof size !== 'number' || !pads) {
      out.push(undefined);
      continue;
    }
    const eff = (kernel[i]! - 1) * dilations[i]! + 1;
    const span = size + pads[i]! + pads[i + n]! - eff;
    let o = (ceil ? Math.ceil(span / strides[i]!) : Math.floor(span / strides[i]!)) + 1;
    // ceil_mode: the last window must start inside the input or its leading padding (onnxruntime, ONNX 1.15+).
    if (ceil && (o - 1) * strides[i]! >= size + pads[i]!) o--;
    out.push(o);
  }
  return out;
}

/** The elements of the stored tensor (initializer or Constant) named `name` as numbers; undefined when computed or unreadable. */
export function constantNumbers(model: OnnxModel, name: string | undefined): number[] | undefined {
  if (!name) return undefined;
  const w = model.weight(name);
  if (!w) return undefined;
  try {
    return Array.from(model.readNumbers(w.tensor));
  } catch {
    return undefined;
  }
}

/** Infers shapes of every value of the main graph it can. */
export function inferShapes(model: OnnxModel): Map<string, Shape> {
  const shapes = new Map<string, Shape>();
  const g = model.graph;
  for (const vi of [...g.input, ...g.valueInfo, ...g.output]) shapes.set(vi.name, valueInfoShape(vi));
  for (const t of g.initializer) {
    try {
      shapes.set(t.name, tensorDims(t));
    } catch {
      shapes.set(t.name, undefined);
    }
  }
  const constInts = (name: string | undefined): number[] | undefined => constantNumbers(model, name);
  for (const node of g.node) {
    let out: Shape;
    try {
      out = inferNode(node, (i) => (node.input[i] ? shapes.get(node.input[i]!) : undefined), constInts, model);
    } catch {
      out = undefined;
    }
    const first = node.output[0];
    if (node.opType === 'Split' && (node.domain === '' || node.domain === 'ai.onnx')) {
      const parts = splitShapes(node, node.input[0] ? shapes.get(node.input[0]) : undefined, constInts, model.opsetVersion('') ?? 13);
      node.output.forEach((o, i) => o && !shapes.get(o) && shapes.set(o, parts?.[i]));
      continue;
    }
    if (first && out !== undefined) shapes.set(first, out);
    else if (first && !shapes.has(first)) shapes.set(first, undefined);
  }
  return shapes;
}

/** Output shapes of a Split (sizes from the `split` attribute/input, else equal parts). */
function splitShapes(node: NodeProto, x: Shape, constInts: (n: string | undefined) => number[] | undefined, opset: number): Shape[] | undefined {
  if (!x) return undefined;
  let axis = attrInt(node, 'axis', 0);
  if (axis < 0) axis += x.length;
  const n = node.output.length;
  const sizes = (opset < 13 ? attrInts(node, 'split') : constInts(node.input[1])) ?? (typeof x[axis] === 'number' && (x[axis] as number) % n === 0 ? new Array<number>(n).fill((x[axis] as number) / n) : undefined);
  return node.output.map((_, i) => x.map((d, a) => (a === axis ? sizes?.[i] : d)));
}

function inferNode(node: NodeProto, shapeOf: (i: number) => Shape, constInts: (n: string | undefined) => number[] | undefined, model: OnnxModel): Shape {
  if (node.domain !== '' && node.domain !== 'ai.onnx') return undefined;
  const x = shapeOf(0);
  const op = node.opType;
  if (op === 'Constant') {
    const w = model.weight(node.output[0]!);
    return w ? tensorDims(w.tensor) : undefined;
  }
  if (ELEMENTWISE_UNARY.has(op)) return x;
  if (BROADCAST.has(op)) return broadcastShapes(node.input.map((_, i) => shapeOf(i)));
  switch (op) {
    case 'Conv': {
      const w = shapeOf(1);
      if (!w || !x) return undefined;
      const kernel = attrInts(node, 'kernel_shape') ?? (w.slice(2) as number[]);
      if (kernel.some((k) => typeof k !== 'number')) return undefined;
      return windowOutput(node, x, kernel, w[0]);
    }
    case 'ConvTranspose': {
      const w = shapeOf(1);
      if (!w || !x || typeof w[1] !== 'number') return undefined;
      return [x[0], w[1] * attrInt(node, 'group', 1), ...x.slice(2).map(() => undefined)];
    }
    case 'Concat': {
      const inputs = node.input.map((_, i) => shapeOf(i));
      if (inputs.some((s) => !s) || !inputs.length) return undefined;
      const rank = inputs[0]!.length;
      let axis = attrInt(node, 'axis', 0);
      if (axis < 0) axis += rank;
      const out: Dim[] = [...inputs[0]!];
      out[axis] = inputs.every((s) => typeof s![axis] === 'number') ? inputs.reduce((a, s) => a + (s![axis] as number), 0) : undefined;
      for (let a = 0; a < rank; a++) if (a !== axis && out[a] === undefined) out[a] = inputs.find((s) => s![a] !== undefined)?.[a];
      return out;
    }
    case 'Resize':
    case 'Upsample': {
      if (!x) return undefined;
      const opset = model.opsetVersion('') ?? 13;
      const scales = op === 'Upsample' ? (attrInts(node, 'scales') ? undefined : constInts(node.input[1])) : constInts(node.input[opset < 11 ? 1 : 2]);
      const sizes = op === 'Resize' && opset >= 11 ? constInts(node.input[3]) : undefined;
      if (sizes && sizes.length === x.length) return sizes;
      return x.map((d, i) => (scales && scales.length === x.length && typeof d === 'number' ? Math.floor(d * scales[i]!) : i < 2 ? d : scales?.[i] === 1 ? d : undefined));
    }
    case 'Slice': {
      if (!x) return undefined;
      const axes = constInts(node.input[3]) ?? x.map((_, i) => i);
      const norm = axes.map((a) => (a < 0 ? a + x.length : a));
      return x.map((d, i) => (norm.includes(i) ? undefined : d));
    }
    case 'Gather': {
      const idx = shapeOf(1);
      if (!x || !idx) return undefined;
      let axis = attrInt(node, 'axis', 0);
      if (axis < 0) axis += x.length;
      return [...x.slice(0, axis), ...idx, ...x.slice(axis + 1)];
    }
    case 'MaxPool':
    case 'AveragePool':
    case 'LpPool': {
      const kernel = attrInts(node, 'kernel_shape');
      return kernel && x ? windowOutput(node, x, kernel, x[1]) : undefined;
    }
    case 'GlobalAveragePool':
    case 'GlobalMaxPool':
    case 'GlobalLpPool':
      return x ? [x[0], x[1], ...x.slice(2).map(() => 1)] : undefined;
    case 'Pad': {
      if (!x) return undefined;
      const pads = attrInts(node, 'pads') ?? constInts(node.input[1]);
      if (!pads || pads.length !== 2 * x.length || node.input[3]) return undefined;
      return x.map((d, i) => (typeof d === 'number' ? d + pads[i]! + pads[i + x.length]! : undefined));
    }
    case 'Flatten': {
      if (!x) return undefined;
      let axis = attrInt(node, 'axis', 1);
      if (axis < 0) axis += x.length;
      const prod = (dims: Dim[]) => (dims.every((d) => typeof d === 'number') ? (dims as number[]).reduce((a, b) => a * b, 1) : undefined);
      return [prod(x.slice(0, axis)), prod(x.slice(axis))];
    }
    case 'Reshape': {
      const target = constInts(node.input[1]);
      if (!target) return undefined;
      const allowZero = attrInt(node, 'allowzero', 0) === 1;
      const out: Dim[] = target.map((d, i) => (d === 0 && !allowZero ? x?.[i] : d === -1 ? undefined : d));
      const minus = target.indexOf(-1);
      if (minus >= 0 && x && x.every((d) => typeof d === 'number')) {
        const total = (x as number[]).reduce((a, b) => a * b, 1);
        const known = out.reduce<number>((a, d, i) => (i === minus ? a : a * (typeof d === 'number' ? d : NaN)), 1);
        if (Number.isFinite(known) && known > 0) out[minus] = total / known;
      }
      return out;
    }
    case 'Gemm': {
      const a = x;
      const b = shapeOf(1);
      if (!a || !b || a.length !== 2 || b.length !== 2) return undefined;
      return [attrInt(node, 'transA', 0) ? a[1] : a[0], attrInt(node, 'transB', 0) ? b[0] : b[1]];
    }
    case 'MatMul': {
      const b = shapeOf(1);
      if (!x || !b || x.length < 2 || b.length < 2) return undefined;
      const batch = broadcastShapes([x.slice(0, -2), b.slice(0, -2)]);
      return batch ? [...batch, x[x.length - 2], b[b.length - 1]] : undefined;
    }
    case 'Transpose': {
      if (!x) return undefined;
      const perm = attrInts(node, 'perm') ?? x.map((_, i) => x.length - 1 - i);
      return perm.map((p) => x[p]);
    }
    case 'Squeeze':
    case 'Unsqueeze': {
      if (!x) return undefined;
      const axes = attrInts(node, 'axes') ?? constInts(node.input[1]);
      if (!axes) return undefined;
      if (op === 'Squeeze') {
        const r = x.length;
        const norm = axes.map((a) => (a < 0 ? a + r : a));
        return x.filter((_, i) => !norm.includes(i));
      }
      const r = x.length + axes.length;
      const norm = axes.map((a) => (a < 0 ? a + r : a));
      const out: Dim[] = [];
      let j = 0;
      for (let i = 0; i < r; i++) out.push(norm.includes(i) ? 1 : x[j++]);
      return out;
    }
    case 'ReduceMean':
    case 'ReduceSum':
    case 'ReduceMax':
    case 'ReduceMin':
    case 'ReduceL2':
    case 'ReduceProd': {
      if (!x) return undefined;
      const axes = attrInts(node, 'axes') ?? constInts(node.input[1]) ?? x.map((_, i) => i);
      const norm = axes.map((a) => (a < 0 ? a + x.length : a));
      const keep = attrInt(node, 'keepdims', 1) === 1;
      return keep ? x.map((d, i) => (norm.includes(i) ? 1 : d)) : x.filter((_, i) => !norm.includes(i));
    }
    default:
      return undefined;
  }
}
