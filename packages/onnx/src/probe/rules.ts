/**
 * Vector-Jacobian rules, written as ONNX ops, for the operators the probe can differentiate through.
 * @packageDocumentation
 */
import { UnsupportedError } from '@gradmax/core';
import type { NodeProto, TensorProto } from 'onnx-buf';
import { clone } from '@bufbuild/protobuf';
import { AttributeProtoSchema, TensorProto_DataLocation, TensorProto_DataType } from 'onnx-buf';
import type { Emitter } from './emitter.js';
import { makeTensor } from '../model.js';
import { attrFloat, attrInt, attrInts, attrString } from '../attributes.js';
import { resolveNodePads as resolveIrPads } from '../shapes.js';
import { TensorBuffer, elementCount, elementSize, tensorDims, typedFieldBytes } from '../tensor.js';
import { float } from './onnx-util.js';
import type { TensorInfo } from './shapes.js';

/** What a rule sees of one node being differentiated. */
export interface RuleContext {
  /** The forward node. */
  readonly node: NodeProto;
  /** Emits the gradient nodes. */
  readonly e: Emitter;
  /** Opset version of the default domain. */
  readonly opset: number;
  /** Static type and shape of a tensor (throws when unknown). */
  info(name: string): TensorInfo;
  /** Complete gradient of output `i`, or undefined when no gradient reaches it. */
  gradOut(i: number): string | undefined;
  /** Whether input `i` needs a gradient. */
  needs(i: number): boolean;
  /** Adds a gradient contribution for input `i`. */
  addGrad(i: number, grad: string): void;
  /** An initializer by name, when the tensor is one. */
  initializer(name: string): TensorProto | undefined;
  /** The value of an initializer or of a Constant node's output (undefined otherwise). */
  constant?(name: string): TensorProto | undefined;
  /**
   * Whether a tensor is also a graph input: an initializer listed as an input is only a default the run can
   * override, so rules must not bake its value into constants. Absent: unknown, and no initializer value is baked.
   */
  isGraphInput?(name: string): boolean;
}

/** A vector-Jacobian rule. */
export type VjpRule = (ctx: RuleContext) => void;

function unsupported(ctx: Pick<RuleContext, 'node'>, why: string): never {
  const n = ctx.node;
  throw new UnsupportedError(`node "${n.name || n.output[0]}" (${n.opType}): ${why}`, { node: n.name, opType: n.opType, output: n.output[0] });
}

/** Reduces a gradient shaped like `outInfo` back to the (broadcast) shape of input tensor `x`. */
export function unbroadcast(ctx: RuleContext, grad: string, outDims: readonly (number | null)[], x: string): string {
  const xi = ctx.info(x);
  const r = outDims.length - xi.dims.length;
  if (r < 0) unsupported(ctx, `input "${x}" has a higher rank than the output`);
  const axes: number[] = [];
  for (let i = 0; i < r; i++) axes.push(i);
  for (let i = 0; i < xi.dims.length; i++) {
    const dx = xi.dims[i];
    const dout = outDims[i + r];
    if (dx === 1 && dout !== 1) axes.push(i + r);
  }
  if (axes.length === 0) return grad;
  const summed = ctx.e.reduceSum(grad, axes, true);
  return ctx.e.op('Reshape', [summed, ctx.e.shape(x)]);
}

function dtype(ctx: RuleContext, name: string): number {
  return ctx.info(name).elemType;
}

function gradAll(ctx: RuleContext, f: (g: string) => string): void {
  const g = ctx.gradOut(0);
  if (g === undefined || !ctx.needs(0)) return;
  ctx.addGrad(0, f(g));
}

function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** Axes reduced by Softmax/LogSoftmax: the axis alone from opset 13, the axis and all after it before. */
function softmaxAxes(ctx: RuleContext, rank: number): number[] {
  if (ctx.opset >= 13) return [normAxis(attrInt(ctx.node, 'axis', -1), rank)];
  const a = normAxis(attrInt(ctx.node, 'axis', 1), rank);
  return Array.from({ length: rank - a }, (_, i) => a + i);
}

/** Per-side pads `[b0, b1, ..., e0, e1, ...]` a conv/pool node applies (auto_pad resolved); typed error when unknown. */
export function resolveNodePads(ctx: Pick<RuleContext, 'node'>, spatial: readonly (number | null)[], kernel: number[], strides: number[], dilations: number[]): number[] {
  const pads = resolveIrPads(ctx.node, spatial.map((d) => d ?? undefined), kernel, strides, dilations);
  if (!pads) unsupported(ctx, `cannot resolve its padding (auto_pad ${attrString(ctx.node, 'auto_pad', 'NOTSET')} needs static spatial sizes; pads must have ${2 * kernel.length} entries)`);
  return pads;
}

/**
 * Whether the input gradient of a stride-1 conv (weights `[M, Cg, ...]`, M = group·Mg) runs faster in onnxruntime
 * (1.30, CPU) as a Conv of the gradient ({@link convInputGradStride1}) than as a ConvTranspose. The Conv gets MLAS's
 * NCHWc kernels (with a constant weight), ConvTranspose never does; both measured on [128, ·, 14..28, 14..28]:
 * 3×3 32→32 1.7×, 16→32 1.4×, groups 2 and 4 1.7–2×, dilation 2 1.9×, 5×3 1.8×, depthwise 3–5× faster as Conv,
 * 1×1 equal; a weight fed at run time (no NCHWc) still 1.1×. But with few gradient channels per group (Cg < 8) fed
 * by more (Mg > Cg) the Conv's im2col spans Mg·k taps for a Cg-row product and loses: Cg 1/3/4 from Mg 16/16/32
 * 0.33–0.56×, Cg 1 from Mg 2 (depthwise multiplier 2) 0.84×. Those keep ConvTranspose. Strides > 1 keep it too:
 * the s² output phases as one Conv + DepthToSpace (exact) measured 0.5× (3×3/2, 2×2/2, depthwise 3×3/2).
 * Reproduce with `BENCH_CONV_GRAD=1 node packages/onnx/bench/probe.bench.mjs`.
 */
function preferConvForInputGrad(inPerGroup: number, outPerGroup: number): boolean {
  return inPerGroup >= 8 || inPerGroup >= outPerGroup;
}

/** Little-endian element bytes of an initializer stored in the model (undefined for external or malformed data). */
function initializerBytes(t: TensorProto): { dims: number[]; bytes: Uint8Array } | undefined {
  const size = elementSize(t.dataType);
  if (size === undefined || t.dataLocation === TensorProto_DataLocation.EXTERNAL || t.externalData.length > 0) return undefined;
  let dims: number[];
  try {
    dims = tensorDims(t);
  } catch {
    return undefined;
  }
  const count = elementCount(dims);
  let bytes: Uint8Array;
  if (t.rawData.length > 0 || count === 0) bytes = t.rawData;
  else {
    try {
      bytes = typedFieldBytes(t, count);
    } catch {
      return undefined;
    }
  }
  return bytes.length === count * size ? { dims, bytes } : undefined;
}

/**
 * Element `order[i]` of `bytes` (elements of `size` bytes) as element i of a new buffer: bit patterns copied
 * through same-width unsigned integer views, never converted.
 */
function gatherElements(bytes: Uint8Array, size: number, order: Int32Array): Uint8Array {
  // new Uint8Array(view) copies; a Node Buffer's slice() would not (it shares memory, at the same odd offset).
  const src = bytes.byteOffset % size === 0 ? bytes : new Uint8Array(bytes);
  const count = src.length / size;
  const gather = <T>(from: { readonly [i: number]: T }, to: { [i: number]: T }): void => {
    for (let i = 0; i < order.length; i++) to[i] = from[order[i]!]!;
  };
  switch (size) {
    case 2: {
      const to = new Uint16Array(order.length);
      gather(new Uint16Array(src.buffer, src.byteOffset, count), to);
      return new Uint8Array(to.buffer);
    }
    case 4: {
      const to = new Uint32Array(order.length);
      gather(new Uint32Array(src.buffer, src.byteOffset, count), to);
      return new Uint8Array(to.buffer);
    }
    case 8: {
      const to = new BigUint64Array(order.length);
      gather(new BigUint64Array(src.buffer, src.byteOffset, count), to);
      return new Uint8Array(to.buffer);
    }
    default: {
      const to = new Uint8Array(order.length * size);
      for (let i = 0; i < order.length; i++) to.set(src.subarray(order[i]! * size, (order[i]! + 1) * size), i * size);
      return to;
    }
  }
}

/**
 * The weight of the conv that computes a stride-1 conv's input gradient: W'[g·Cg + c, m, i] = W[g·Mg + m, c, k−1−i]
 * (in/out channels swapped within each group, every spatial axis flipped). An initializer no graph input overrides
 * is rearranged here, element bytes copied as they are (exact in any element type); any other weight gets
 * Reshape/Transpose + Slice(step −1) nodes (onnxruntime folds them when the weight is a constant: the same NCHWc
 * Conv, bit-identical output).
 */
function flippedConvWeight(ctx: RuleContext, weight: string, outChannels: number, inPerGroup: number, group: number, kernel: number[]): string {
  const e = ctx.e;
  return e.memo(`conv-input-grad-weight:${weight}:${group}`, () => {
    const outPerGroup = outChannels / group;
    const taps = kernel.reduce((p, k) => p * k, 1);
    const newDims = [group * inPerGroup, outPerGroup, ...kernel];
    const init = ctx.isGraphInput && !ctx.isGraphInput(weight) ? ctx.initializer(weight) : undefined;
    const stored = init ? initializerBytes(init) : undefined;
    if (init && stored && stored.dims.length === kernel.length + 2 && stored.dims.every((d, i) => d === [outChannels, inPerGroup, ...kernel][i])) {
      const order = new Int32Array(outChannels * inPerGroup * taps);
      // Flipping every spatial axis reverses the row-major tap index.
      for (let g = 0; g < group; g++) {
        for (let m = 0; m < outPerGroup; m++) {
          for (let c = 0; c < inPerGroup; c++) {
            const from = ((g * outPerGroup + m) * inPerGroup + c) * taps + taps - 1;
            const to = ((g * inPerGroup + c) * outPerGroup + m) * taps;
            for (let t = 0; t < taps; t++) order[to + t] = from - t;
          }
        }
      }
      const bytes = gatherElements(stored.bytes, elementSize(init.dataType)!, order);
      return e.constantBuffer(new TensorBuffer(init.dataType, newDims, bytes), 'conv_input_grad_weight');
    }
    const spatialAxes = kernel.map((_, i) => i + 2);
    let swapped: string;
    if (group === 1) swapped = e.transpose(weight, [1, 0, ...spatialAxes]);
    else if (outPerGroup === 1 && inPerGroup === 1) swapped = weight;
    else {
      const perGroup = e.reshape(weight, [group, outPerGroup, inPerGroup, ...kernel]);
      swapped = e.reshape(e.transpose(perGroup, [0, 2, 1, ...kernel.map((_, i) => i + 3)]), newDims);
    }
    const flipAxes = spatialAxes.filter((a) => kernel[a - 2]! > 1);
    if (flipAxes.length === 0) return swapped;
    const starts = flipAxes.map((a) => kernel[a - 2]! - 1);
    const ends = flipAxes.map((a) => -kernel[a - 2]! - 1); // + size = −1: through index 0 with step −1
    return e.op('Slice', [swapped, e.ints(starts), e.ints(ends), e.ints(flipAxes), e.ints(flipAxes.map(() => -1))]);
  });
}

/**
 * The input gradient of a conv with all strides 1 as a plain Conv: dX = Conv(dY, W') with the flipped, channel-swapped
 * weight of {@link flippedConvWeight}, the same dilations and groups, and per side pads d·(k−1) − p, which give back
 * exactly the input size (dY has I + p_begin + p_end − d·(k−1) positions). A pad p > d·(k−1) would make the new pad
 * negative: the first (last) p − d·(k−1) outputs read only padding and get no input gradient, so dY is cropped by
 * that many instead. Undefined when the weight's shape is not static or ConvTranspose is faster
 * ({@link preferConvForInputGrad}).
 */
function convInputGradStride1(
  ctx: RuleContext,
  grad: string,
  weight: string,
  weightDims: readonly (number | null)[],
  spatialIn: readonly (number | null)[],
  spatialOut: readonly (number | null)[],
  kernel: number[],
  dilations: number[],
  pads: number[],
  group: number,
  flipped?: string,
): string | undefined {
  const d = kernel.length;
  const [outChannels, inPerGroup] = weightDims;
  if (typeof outChannels !== 'number' || typeof inPerGroup !== 'number' || outChannels % group !== 0) return undefined;
  if (!preferConvForInputGrad(inPerGroup, outChannels / group)) return undefined;
  const newPads = new Array<number>(2 * d).fill(0);
  const starts: number[] = [];
  const ends: number[] = [];
  const cropAxes: number[] = [];
  for (let i = 0; i < d; i++) {
    const reach = dilations[i]! * (kernel[i]! - 1);
    const inSize = spatialIn[i];
    const outSize = spatialOut[i];
    if (typeof inSize === 'number' && typeof outSize === 'number' && outSize !== inSize + pads[i]! + pads[i + d]! - reach) {
      unsupported(ctx, `inconsistent geometry on spatial axis ${i}`);
    }
    const begin = reach - pads[i]!;
    const end = reach - pads[i + d]!;
    newPads[i] = Math.max(0, begin);
    newPads[i + d] = Math.max(0, end);
    if (begin < 0 || end < 0) {
      cropAxes.push(i + 2);
      starts.push(Math.max(0, -begin));
      ends.push(end < 0 ? end : 2 ** 31 - 1);
    }
  }
  const e = ctx.e;
  const input = cropAxes.length ? e.op('Slice', [grad, e.ints(starts), e.ints(ends), e.ints(cropAxes)]) : grad;
  const w = flipped ?? flippedConvWeight(ctx, weight, outChannels, inPerGroup, group, kernel);
  return e.op('Conv', [input, w], { kernel_shape: kernel, dilations, pads: newPads, group });
}

/**
 * Emits the input gradient of a strided (transposed) correlation: ConvTranspose of `grad` with `weight`,
 * producing exactly the input's spatial size through output_padding.
 */
function convInputGrad(
  ctx: RuleContext,
  grad: string,
  weight: string,
  spatialIn: readonly (number | null)[],
  spatialOut: readonly (number | null)[],
  kernel: number[],
  strides: number[],
  dilations: number[],
  pads: number[],
  group: number,
  input?: string,
): string {
  const d = kernel.length;
  if (spatialIn.some((v) => typeof v !== 'number') || spatialOut.some((v) => typeof v !== 'number')) {
    if (!input) unsupported(ctx, 'the gradient needs static spatial sizes');
    // Sizes known only at run time: the largest output padding (stride − 1) reaches every input position a window
    // covers; with dilation > stride up to d − s trailing positions may still be missing (they get no gradient) and
    // are padded with zeros; then the result is cropped to the input's size.
    const e = ctx.e;
    let out = e.op('ConvTranspose', [grad, weight], { kernel_shape: kernel, strides, dilations, pads, output_padding: strides.map((v) => v - 1), group });
    const extra = dilations.map((v, i) => Math.max(0, v - strides[i]!));
    if (extra.some((v) => v > 0)) out = e.op('Pad', [out, e.ints([0, 0, ...new Array<number>(d).fill(0), 0, 0, ...extra])]);
    const axes = Array.from({ length: d }, (_, i) => i + 2);
    const ends = e.op('Slice', [e.shape(input), e.ints([2]), e.ints([2 + d])]);
    return e.op('Slice', [out, e.ints(new Array<number>(d).fill(0)), ends, e.ints(axes)]);
  }
  const outputPadding: number[] = [];
  for (let i = 0; i < d; i++) {
    const inSize = spatialIn[i];
    const outSize = spatialOut[i];
    if (inSize === null || inSize === undefined || outSize === null || outSize === undefined) {
      unsupported(ctx, 'the gradient needs static spatial sizes');
    }
    const rem = inSize + pads[i]! + pads[i + d]! - (kernel[i]! - 1) * dilations[i]! - 1 - strides[i]! * (outSize - 1);
    if (rem < 0 || rem >= Math.max(strides[i]!, dilations[i]!)) unsupported(ctx, `inconsistent geometry on spatial axis ${i}`);
    outputPadding.push(rem);
  }
  return ctx.e.op('ConvTranspose', [grad, weight], {
    kernel_shape: kernel,
    strides,
    dilations,
    pads,
    output_padding: outputPadding,
    group,
  });
}

function spatialAttrs(ctx: RuleContext, kernel: number[]): { strides: number[]; dilations: number[] } {
  const d = kernel.length;
  return {
    strides: attrInts(ctx.node, 'strides') ?? new Array<number>(d).fill(1),
    dilations: attrInts(ctx.node, 'dilations') ?? new Array<number>(d).fill(1),
  };
}

const passThrough: VjpRule = (ctx) => gradAll(ctx, (g) => g);

const reshapeBack: VjpRule = (ctx) => gradAll(ctx, (g) => ctx.e.op('Reshape', [g, ctx.e.shape(ctx.node.input[0]!)]));

function maskedGrad(ctx: RuleContext, g: string, mask: string): string {
  return ctx.e.op('Where', [mask, g, ctx.e.scalar(0, dtype(ctx, ctx.node.output[0]!))]);
}

/**
 * g · relu'(x) read from the ReLU OUTPUT y = relu(x) (or a tensor equal to it wherever g is non-zero):
 * relu'(x) = [y > 0]. Multiplying by the 0/1 mask is exact and faster in onnxruntime than Where (or Sign).
 */
export function reluMask(e: Emitter, g: string, y: string, elemType: number): string {
  return e.op('Mul', [g, e.op('Cast', [e.op('Greater', [y, e.scalar(0, elemType)])], { to: elemType })]);
}

/** The rules by operator type (default domain). */
export const VJP_RULES: Readonly<Record<string, VjpRule>> = {
  Identity: passThrough,
  Dropout: (ctx) => {
    const training = ctx.node.input[2];
    if (training) {
      const t = ctx.constant?.(training) ?? ctx.initializer(training);
      const on = t ? (t.rawData.length ? t.rawData[0] !== 0 : (t.int32Data[0] ?? 0) !== 0) : true;
      // Training mode with a constant ratio of 0 (as some exports have) drops nothing: the identity.
      const ratio = ctx.node.input[1] ? constValues(ctx, ctx.node.input[1]) : [0.5];
      if (on && !(ratio?.length === 1 && ratio[0] === 0)) unsupported(ctx, 'Dropout in training mode (or with a non-constant training_mode) has no inference gradient');
    }
    passThrough(ctx);
  },
  Flatten: reshapeBack,
  Reshape: reshapeBack,
  Squeeze: reshapeBack,
  Unsqueeze: reshapeBack,
  // Reads the output, not the input, which leaves the input to onnxruntime's Conv+Relu fusion.
  Relu: (ctx) => gradAll(ctx, (g) => reluMask(ctx.e, g, ctx.node.output[0]!, dtype(ctx, ctx.node.output[0]!))),
  LeakyRelu: (ctx) =>
    gradAll(ctx, (g) => {
      const alpha = attrFloat(ctx.node, 'alpha', 0.01);
      const t = dtype(ctx, ctx.node.output[0]!);
      const pos = ctx.e.op('Greater', [ctx.node.input[0]!, ctx.e.scalar(0, t)]);
      return ctx.e.op('Where', [pos, g, ctx.e.op('Mul', [g, ctx.e.scalar(alpha, t)])]);
    }),
  // clip(x) = x exactly where lo ≤ x ≤ hi (bounds included), so the mask is Equal(x, y): one comparison instead of
  // two plus their negations and conjunction (the Clip mask was a third of mobilenet_v2's backward pass), multiplied
  // in as 0/1 (faster in onnxruntime than Where).
  Clip: (ctx) =>
    gradAll(ctx, (g) => {
      const x = ctx.node.input[0]!;
      const y = ctx.node.output[0]!;
      const t = dtype(ctx, y);
      if (ctx.opset >= 11) {
        if (!ctx.node.input[1] && !ctx.node.input[2]) return g;
        return ctx.e.op('Mul', [g, ctx.e.op('Cast', [ctx.e.op('Equal', [x, y])], { to: t })]);
      }
      // Before opset 11 Equal takes no floats: compare with the attribute bounds (the probe upgrades such models to
      // opset 11 first; this serves buildVjpModel).
      const minA = attrFloat(ctx.node, 'min', -Infinity);
      const maxA = attrFloat(ctx.node, 'max', Infinity);
      let mask: string | undefined;
      if (Number.isFinite(minA)) mask = ctx.e.op('Not', [ctx.e.op('Less', [x, ctx.e.scalar(minA, t)])]);
      if (Number.isFinite(maxA)) {
        const m = ctx.e.op('Not', [ctx.e.op('Greater', [x, ctx.e.scalar(maxA, t)])]);
        mask = mask ? ctx.e.op('And', [mask, m]) : m;
      }
      return mask ? maskedGrad(ctx, g, mask) : g;
    }),
  Sigmoid: (ctx) =>
    gradAll(ctx, (g) => {
      const y = ctx.node.output[0]!;
      const one = ctx.e.scalar(1, dtype(ctx, ctx.node.output[0]!));
      return ctx.e.op('Mul', [g, ctx.e.op('Mul', [y, ctx.e.op('Sub', [one, y])])]);
    }),
  Tanh: (ctx) =>
    gradAll(ctx, (g) => {
      const y = ctx.node.output[0]!;
      const one = ctx.e.scalar(1, dtype(ctx, ctx.node.output[0]!));
      return ctx.e.op('Mul', [g, ctx.e.op('Sub', [one, ctx.e.op('Mul', [y, y])])]);
    }),
  HardSigmoid: (ctx) =>
    gradAll(ctx, (g) => {
      const t = dtype(ctx, ctx.node.output[0]!);
      const alpha = attrFloat(ctx.node, 'alpha', 0.2);
      const beta = attrFloat(ctx.node, 'beta', 0.5);
      const lin = ctx.e.op('Add', [ctx.e.op('Mul', [ctx.node.input[0]!, ctx.e.scalar(alpha, t)]), ctx.e.scalar(beta, t)]);
      const mask = ctx.e.op('And', [ctx.e.op('Greater', [lin, ctx.e.scalar(0, t)]), ctx.e.op('Less', [lin, ctx.e.scalar(1, t)])]);
      return maskedGrad(ctx, ctx.e.op('Mul', [g, ctx.e.scalar(alpha, t)]), mask);
    }),
  HardSwish: (ctx) =>
    gradAll(ctx, (g) => {
      const t = dtype(ctx, ctx.node.output[0]!);
      const x = ctx.node.input[0]!;
      const inner = ctx.e.op('Add', [ctx.e.op('Div', [x, ctx.e.scalar(3, t)]), ctx.e.scalar(0.5, t)]);
      const d1 = ctx.e.op('Where', [ctx.e.op('Less', [x, ctx.e.scalar(-3, t)]), ctx.e.scalar(0, t), inner]);
      const d = ctx.e.op('Where', [ctx.e.op('Greater', [x, ctx.e.scalar(3, t)]), ctx.e.scalar(1, t), d1]);
      return ctx.e.op('Mul', [g, d]);
    }),
  Softmax: (ctx) =>
    gradAll(ctx, (g) => {
      const y = ctx.node.output[0]!;
      const axes = softmaxAxes(ctx, ctx.info(y).dims.length);
      const s = ctx.e.reduceSum(ctx.e.op('Mul', [g, y]), axes, true);
      return ctx.e.op('Mul', [y, ctx.e.op('Sub', [g, s])]);
    }),
  LogSoftmax: (ctx) =>
    gradAll(ctx, (g) => {
      const y = ctx.node.output[0]!;
      const axes = softmaxAxes(ctx, ctx.info(y).dims.length);
      const s = ctx.e.reduceSum(g, axes, true);
      return ctx.e.op('Sub', [g, ctx.e.op('Mul', [ctx.e.op('Exp', [y]), s])]);
    }),
  Transpose: (ctx) =>
    gradAll(ctx, (g) => {
      const rank = ctx.info(ctx.node.input[0]!).dims.length;
      const perm = attrInts(ctx.node, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
      const inv = new Array<number>(rank);
      perm.forEach((p, i) => (inv[p] = i));
      return ctx.e.transpose(g, inv);
    }),
  Add: (ctx) => elementwise(ctx, 'Add'),
  Sub: (ctx) => elementwise(ctx, 'Sub'),
  Mul: (ctx) => elementwise(ctx, 'Mul'),
  Div: (ctx) => elementwise(ctx, 'Div'),
  Gemm: (ctx) => {
    const g = ctx.gradOut(0);
    if (g === undefined) return;
    const [a, b, c] = ctx.node.input as [string, string, string | undefined];
    const alpha = attrFloat(ctx.node, 'alpha', 1);
    const beta = attrFloat(ctx.node, 'beta', 1);
    const transA = attrInt(ctx.node, 'transA', 0);
    const transB = attrInt(ctx.node, 'transB', 0);
    if (ctx.needs(0)) {
      ctx.addGrad(
        0,
        transA
          ? ctx.e.op('Gemm', [b, g], { alpha: float(alpha), transA: transB, transB: 1 })
          : ctx.e.op('Gemm', [g, b], { alpha: float(alpha), transA: 0, transB: 1 - transB }),
      );
    }
    if (ctx.needs(1)) {
      ctx.addGrad(
        1,
        transB
          ? ctx.e.op('Gemm', [g, a], { alpha: float(alpha), transA: 1, transB: transA })
          : ctx.e.op('Gemm', [a, g], { alpha: float(alpha), transA: 1 - transA, transB: 0 }),
      );
    }
    if (c && ctx.needs(2)) {
      const scaled = beta === 1 ? g : ctx.e.op('Mul', [g, ctx.e.scalar(beta, dtype(ctx, ctx.node.output[0]!))]);
      ctx.addGrad(2, unbroadcast(ctx, scaled, ctx.info(ctx.node.output[0]!).dims, c));
    }
  },
  MatMul: (ctx) => {
    const g = ctx.gradOut(0);
    if (g === undefined) return;
    const [a, b] = ctx.node.input as [string, string];
    const ai = ctx.info(a);
    const bi = ctx.info(b);
    if (ai.dims.length < 2 || bi.dims.length < 2) unsupported(ctx, '1-D MatMul operands are not supported');
    const ydims = ctx.info(ctx.node.output[0]!).dims;
    const swap = (r: number) => [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2];
    if (ctx.needs(0)) {
      const full = ctx.e.op('MatMul', [g, ctx.e.transpose(b, swap(bi.dims.length))]);
      ctx.addGrad(0, unbroadcast(ctx, full, [...ydims.slice(0, -1), ai.dims[ai.dims.length - 1]!], a));
    }
    if (ctx.needs(1)) {
      const full = ctx.e.op('MatMul', [ctx.e.transpose(a, swap(ai.dims.length)), g]);
      ctx.addGrad(1, unbroadcast(ctx, full, [...ydims.slice(0, -2), bi.dims[bi.dims.length - 2]!, ydims[ydims.length - 1]!], b));
    }
  },
  Conv: (ctx) => {
    const g = ctx.gradOut(0);
    if (g === undefined) return;
    if (ctx.needs(1) || ctx.needs(2)) unsupported(ctx, 'gradients with respect to Conv weights or bias are not supported');
    if (!ctx.needs(0)) return;
    const [x, w] = ctx.node.input as [string, string];
    const xi = ctx.info(x);
    const wi = ctx.info(w);
    const kernel = attrInts(ctx.node, 'kernel_shape') ?? (wi.dims.slice(2) as number[]);
    if (kernel.some((k) => k === null)) unsupported(ctx, 'kernel shape is not static');
    const { strides, dilations } = spatialAttrs(ctx, kernel);
    const spatialIn = xi.dims.slice(2);
    const pads = resolveNodePads(ctx, spatialIn, kernel, strides, dilations);
    const spatialOut = ctx.info(ctx.node.output[0]!).dims.slice(2);
    const group = attrInt(ctx.node, 'group', 1);
    const asConv = strides.every((s) => s === 1) ? convInputGradStride1(ctx, g, w, wi.dims, spatialIn, spatialOut, kernel, dilations, pads, group) : undefined;
    ctx.addGrad(0, asConv ?? convInputGrad(ctx, g, w, spatialIn, spatialOut, kernel, strides, dilations, pads, group, x));
  },
  BatchNormalization: (ctx) => {
    if (ctx.node.output.filter((o) => o).length > 1 || attrInt(ctx.node, 'training_mode', 0) !== 0) {
      unsupported(ctx, 'BatchNormalization in training mode is not supported (inference form only)');
    }
    if ([1, 2, 3, 4].some((i) => ctx.needs(i))) unsupported(ctx, 'gradients with respect to BatchNormalization parameters are not supported');
    gradAll(ctx, (g) => {
      const [x, scale, , , variance] = ctx.node.input as [string, string, string, string, string];
      const t = dtype(ctx, ctx.node.output[0]!);
      const eps = attrFloat(ctx.node, 'epsilon', 1e-5);
      const factor = ctx.e.op('Div', [scale, ctx.e.op('Sqrt', [ctx.e.op('Add', [variance, ctx.e.scalar(eps, t)])])]);
      const rank = ctx.info(x).dims.length;
      const shaped = ctx.e.reshape(factor, [1, -1, ...new Array<number>(Math.max(rank - 2, 0)).fill(1)]);
      return ctx.e.op('Mul', [g, shaped]);
    });
  },
  MaxPool: (ctx) =>
    gradAll(ctx, (g) => {
      const x = ctx.node.input[0]!;
      const indices = ctx.node.output[1];
      if (!indices) {
        const taps = maxPoolTapGeometry(ctx.node, ctx.info(x), ctx.info(ctx.node.output[0]!));
        if (!taps) unsupported(ctx, 'MaxPool needs its Indices output (the probe builder adds it), or else to be a FLOAT 2-D pool with static shapes');
        return emitMaxPoolTapVjp(ctx.e, x, g, taps);
      }
      if (attrInt(ctx.node, 'storage_order', 0) !== 0) unsupported(ctx, 'storage_order=1 is not supported');
      const overlapping = maxPoolWindowsOverlap(ctx.node);
      const flatX = ctx.e.op('Reshape', [ctx.e.op('Size', [x]), ctx.e.ints([1])]);
      const zeros = ctx.e.op('ConstantOfShape', [flatX], { value: scalarTensor(dtype(ctx, ctx.node.output[0]!)) });
      const flatG = ctx.e.reshape(g, [-1]);
      const flatI = ctx.e.reshape(indices, [-1]);
      let scattered: string;
      if (ctx.opset >= 16) scattered = ctx.e.op('ScatterElements', [zeros, flatI, flatG], { axis: 0, reduction: 'add' });
      else if (!overlapping) scattered = ctx.e.op('ScatterElements', [zeros, flatI, flatG], { axis: 0 });
      else unsupported(ctx, 'overlapping MaxPool windows need opset ≥ 16 (ScatterElements with reduction=add)');
      return ctx.e.op('Reshape', [scattered, ctx.e.shape(x)]);
    }),
  AveragePool: (ctx) =>
    gradAll(ctx, (g) => {
      const x = ctx.node.input[0]!;
      const xi = ctx.info(x);
      const t = dtype(ctx, ctx.node.output[0]!);
      if (attrInt(ctx.node, 'ceil_mode', 0) !== 0) unsupported(ctx, 'ceil_mode=1 is not supported');
      const kernel = (attrInts(ctx.node, 'kernel_shape') ?? []);
      const { strides, dilations } = spatialAttrs(ctx, kernel);
      if (dilations.some((d) => d !== 1)) unsupported(ctx, 'dilated AveragePool is not supported');
      const channels = xi.dims[1];
      if (channels === null || channels === undefined) unsupported(ctx, 'the channel count is not static');
      const spatialIn = xi.dims.slice(2);
      const pads = resolveNodePads(ctx, spatialIn, kernel, strides, dilations);
      const window = kernel.reduce((p, k) => p * k, 1);
      let scaled: string;
      if (attrInt(ctx.node, 'count_include_pad', 0) !== 0 || pads.every((p) => p === 0)) {
        scaled = ctx.e.op('Div', [g, ctx.e.scalar(window, t)]);
      } else {
        const ones = ctx.e.op('ConstantOfShape', [ctx.e.shape(x)], { value: scalarTensor(t, 1) });
        const frac = ctx.e.op('AveragePool', [ones], { kernel_shape: kernel, strides, pads, count_include_pad: 1 });
        scaled = ctx.e.op('Div', [g, ctx.e.op('Mul', [frac, ctx.e.scalar(window, t)])]);
      }
      const onesKernel = ctx.e.constant(t, [channels, 1, ...kernel], new Array<number>(channels * window).fill(1), 'pool_ones');
      const spatialOut = ctx.info(ctx.node.output[0]!).dims.slice(2);
      // The depthwise all-ones kernel is its own flipped, channel-swapped weight.
      const asConv = strides.every((s) => s === 1) ? convInputGradStride1(ctx, scaled, onesKernel, [channels, 1, ...kernel], spatialIn, spatialOut, kernel, dilations, pads, channels, onesKernel) : undefined;
      return asConv ?? convInputGrad(ctx, scaled, onesKernel, spatialIn, spatialOut, kernel, strides, dilations, pads, channels, x);
    }),
  GlobalAveragePool: (ctx) =>
    gradAll(ctx, (g) => {
      const x = ctx.node.input[0]!;
      const spatial = ctx.info(x).dims.slice(2);
      const t = dtype(ctx, ctx.node.output[0]!);
      let count: string;
      if (spatial.every((d) => d !== null)) count = ctx.e.scalar((spatial as number[]).reduce((p, d) => p * d, 1), t);
      else {
        const sizes = ctx.e.op('Slice', [ctx.e.shape(x), ctx.e.ints([2]), ctx.e.ints([2 ** 31 - 1])]);
        count = ctx.e.op('Cast', [ctx.e.op('ReduceProd', [sizes], { keepdims: 0 })], { to: t });
      }
      return ctx.e.op('Expand', [ctx.e.op('Div', [g, count]), ctx.e.shape(x)]);
    }),
  Concat: (ctx) => {
    const g = ctx.gradOut(0);
    if (g === undefined) return;
    const inputs = ctx.node.input;
    const rank = ctx.info(ctx.node.output[0]!).dims.length;
    const axis = normAxis(attrInt(ctx.node, 'axis', 0), rank);
    const sizes = inputs.map((x) => ctx.e.op('Gather', [ctx.e.shape(x), ctx.e.ints([axis])], { axis: 0 }));
    const splitSizes = ctx.e.op('Concat', sizes, { axis: 0 });
    const parts =
      ctx.opset >= 13
        ? ctx.e.ops('Split', [g, splitSizes], { axis }, inputs.length)
        : splitStatic(ctx, g, inputs, axis);
    inputs.forEach((_, i) => {
      if (ctx.needs(i)) ctx.addGrad(i, parts[i]!);
    });
  },
  Split: (ctx) => {
    if (!ctx.needs(0)) return;
    const outs = ctx.node.output;
    if (outs.every((_, i) => ctx.gradOut(i) === undefined)) return;
    const rank = ctx.info(ctx.node.input[0]!).dims.length;
    const axis = normAxis(attrInt(ctx.node, 'axis', 0), rank);
    const t = dtype(ctx, ctx.node.input[0]!);
    const parts = outs.map((o, i) => ctx.gradOut(i) ?? ctx.e.zerosLike(o, t));
    ctx.addGrad(0, ctx.e.op('Concat', parts, { axis }));
  },
  // Reductions: the gradient of the kept elements, broadcast back over the reduced axes.
  ReduceSum: (ctx) => reduceRule(ctx, 'sum'),
  ReduceMean: (ctx) => reduceRule(ctx, 'mean'),
  ReduceMax: (ctx) => reduceRule(ctx, 'extreme'),
  ReduceMin: (ctx) => reduceRule(ctx, 'extreme'),
  ReduceSumSquare: (ctx) => reduceRule(ctx, 'sumSquare'),
  ReduceL1: (ctx) => reduceRule(ctx, 'l1'),
  ReduceL2: (ctx) => reduceRule(ctx, 'l2'),
  ReduceLogSumExp: (ctx) => reduceRule(ctx, 'logSumExp'),
  // Elementwise functions.
  Neg: (ctx) => gradAll(ctx, (g) => ctx.e.op('Neg', [g])),
  Exp: (ctx) => gradAll(ctx, (g) => ctx.e.op('Mul', [g, ctx.node.output[0]!])),
  Log: (ctx) => gradAll(ctx, (g) => ctx.e.op('Div', [g, ctx.node.input[0]!])),
  Sqrt: (ctx) => gradAll(ctx, (g) => ctx.e.op('Div', [g, ctx.e.op('Mul', [ctx.node.output[0]!, ctx.e.scalar(2, dtype(ctx, ctx.node.output[0]!))])])),
  Reciprocal: (ctx) =>
    gradAll(ctx, (g) => {
      const y = ctx.node.output[0]!;
      return ctx.e.op('Neg', [ctx.e.op('Mul', [g, ctx.e.op('Mul', [y, y])])]);
    }),
  Abs: (ctx) => gradAll(ctx, (g) => ctx.e.op('Mul', [g, ctx.e.op('Sign', [ctx.node.input[0]!])])),
  Erf: (ctx) =>
    gradAll(ctx, (g) => {
      const x = ctx.node.input[0]!;
      const t = dtype(ctx, ctx.node.output[0]!);
      const gauss = ctx.e.op('Exp', [ctx.e.op('Neg', [ctx.e.op('Mul', [x, x])])]);
      return ctx.e.op('Mul', [g, ctx.e.op('Mul', [gauss, ctx.e.scalar(2 / Math.sqrt(Math.PI), t)])]);
    }),
  Softplus: (ctx) => gradAll(ctx, (g) => ctx.e.op('Mul', [g, ctx.e.op('Sigmoid', [ctx.node.input[0]!])])),
  Elu: (ctx) =>
    gradAll(ctx, (g) => {
      const t = dtype(ctx, ctx.node.output[0]!);
      const alpha = attrFloat(ctx.node, 'alpha', 1);
      const pos = ctx.e.op('Greater', [ctx.node.input[0]!, ctx.e.scalar(0, t)]);
      return ctx.e.op('Where', [pos, g, ctx.e.op('Mul', [g, ctx.e.op('Add', [ctx.node.output[0]!, ctx.e.scalar(alpha, t)])])]);
    }),
  Pow: (ctx) => {
    const g = ctx.gradOut(0);
    if (g === undefined) return;
    const [a, b] = ctx.node.input as [string, string];
    const y = ctx.node.output[0]!;
    const t = dtype(ctx, y);
    const ydims = ctx.info(y).dims;
    const bf = dtype(ctx, b) === t ? b : ctx.e.op('Cast', [b], { to: t });
    if (ctx.needs(0)) {
      const exponent = constValues(ctx, b);
      const single = exponent?.length === 1 ? exponent[0] : undefined;
      const slope =
        single === 2 ? ctx.e.op('Mul', [a, ctx.e.scalar(2, t)]) : ctx.e.op('Mul', [bf, ctx.e.op('Pow', [a, ctx.e.op('Sub', [bf, ctx.e.scalar(1, t)])])]);
      ctx.addGrad(0, unbroadcast(ctx, single === 1 ? g : ctx.e.op('Mul', [g, slope]), ydims, a));
    }
    if (ctx.needs(1) && isFloatType(dtype(ctx, b))) {
      ctx.addGrad(1, unbroadcast(ctx, ctx.e.op('Mul', [g, ctx.e.op('Mul', [y, ctx.e.op('Log', [a])])]), ydims, b));
    }
  },
  Cast: (ctx) => {
    const x = ctx.node.input[0]!;
    const from = dtype(ctx, x);
    if (!isFloatType(from) || !isFloatType(dtype(ctx, ctx.node.output[0]!))) return;
    gradAll(ctx, (g) => ctx.e.op('Cast', [g], { to: from }));
  },
  Max: (ctx) => extremeRule(ctx),
  Min: (ctx) => extremeRule(ctx),
  Sum: (ctx) => {
    const g = ctx.gradOut(0);
    if (g === undefined) return;
    const ydims = ctx.info(ctx.node.output[0]!).dims;
    ctx.node.input.forEach((x, i) => ctx.needs(i) && ctx.addGrad(i, unbroadcast(ctx, g, ydims, x)));
  },
  Mean: (ctx) => {
    const g = ctx.gradOut(0);
    if (g === undefined) return;
    const y = ctx.node.output[0]!;
    const scaled = ctx.e.op('Div', [g, ctx.e.scalar(ctx.node.input.length, dtype(ctx, y))]);
    ctx.node.input.forEach((x, i) => ctx.needs(i) && ctx.addGrad(i, unbroadcast(ctx, scaled, ctx.info(y).dims, x)));
  },
  Where: (ctx) => {
    const g = ctx.gradOut(0);
    if (g === undefined) return;
    const [cond, a, b] = ctx.node.input as [string, string, string];
    const y = ctx.node.output[0]!;
    const zero = ctx.e.scalar(0, dtype(ctx, y));
    const ydims = ctx.info(y).dims;
    if (ctx.needs(1)) ctx.addGrad(1, unbroadcast(ctx, ctx.e.op('Where', [cond, g, zero]), ydims, a));
    if (ctx.needs(2)) ctx.addGrad(2, unbroadcast(ctx, ctx.e.op('Where', [cond, zero, g]), ydims, b));
  },
  Expand: (ctx) => gradAll(ctx, (g) => unbroadcast(ctx, g, ctx.info(ctx.node.output[0]!).dims, ctx.node.input[0]!)),
  Tile: (ctx) =>
    gradAll(ctx, (g) => {
      const x = ctx.node.input[0]!;
      const rank = ctx.info(x).dims.length;
      const repeats = constValues(ctx, ctx.node.input[1]!);
      if (!repeats || repeats.length !== rank) unsupported(ctx, 'the repeats must be a constant with one entry per axis');
      if (repeats.every((r) => r === 1)) return g;
      // g as [r0, d0, r1, d1, ...], summed over the repeat axes.
      const e = ctx.e;
      const parts: string[] = [];
      for (let i = 0; i < rank; i++) parts.push(e.ints([repeats[i]!]), e.op('Slice', [e.shape(x), e.ints([i]), e.ints([i + 1])]));
      const split = e.op('Reshape', [g, e.op('Concat', parts, { axis: 0 })]);
      const summed = e.reduceSum(split, repeats.map((_, i) => 2 * i), false);
      return e.op('Reshape', [summed, e.shape(x)]);
    }),
  Slice: (ctx) =>
    gradAll(ctx, (g) => {
      // The same Slice applied to the flat element positions of the input says where each output element came
      // from; those positions are distinct, so a plain ScatterElements puts the gradient back.
      const e = ctx.e;
      const x = ctx.node.input[0]!;
      if (ctx.opset < 10) unsupported(ctx, 'Slice before opset 10 (attributes) is upgraded first; this one was not');
      const positions = e.op('Reshape', [elementPositions(ctx, x), e.shape(x)]);
      const picked = e.op('Slice', [positions, ...ctx.node.input.slice(1)]);
      return scatterBack(ctx, x, picked, g, false);
    }),
  Gather: (ctx) =>
    gradAll(ctx, (g) => {
      const e = ctx.e;
      const [x, indices] = ctx.node.input as [string, string];
      const xi = ctx.info(x);
      const axis = normAxis(attrInt(ctx.node, 'axis', 0), xi.dims.length);
      // Constant indices that pick distinct elements (all of one sign, no repeats: swin's q/k/v split) need no
      // accumulation, in any opset.
      const picked = constValues(ctx, indices);
      const distinct = !!picked && new Set(picked).size === picked.length && (picked.every((v) => v >= 0) || picked.every((v) => v < 0));
      if (ctx.opset >= 16 || distinct) {
        const positions = e.op('Reshape', [elementPositions(ctx, x), e.shape(x)]);
        return scatterBack(ctx, x, e.op('Gather', [positions, indices], { axis }), g, !distinct);
      }
      // Before opset 16 (no ScatterElements reduction=add): a one-hot product sums repeated indices.
      const t = dtype(ctx, ctx.node.output[0]!);
      const D = xi.dims[axis];
      const ii = ctx.info(indices);
      const after = xi.dims.slice(axis + 1);
      if (typeof D !== 'number' || ii.dims.some((d) => d === null) || after.some((d) => d === null)) {
        unsupported(ctx, 'the gradient before opset 16 with repeated or computed indices needs a static gathered axis, indices shape and trailing dims');
      }
      const Q = (ii.dims as number[]).reduce((p, d) => p * d, 1);
      const R = (after as number[]).reduce((p, d) => p * d, 1);
      const I64 = TensorProto_DataType.INT64;
      const idx = e.reshape(ii.elemType === I64 ? indices : e.op('Cast', [indices], { to: I64 }), [Q, 1]);
      const wrapped = e.op('Where', [e.op('Less', [idx, e.scalar(0, I64)]), e.op('Add', [idx, e.scalar(D, I64)]), idx]);
      const range = e.op('Range', [e.scalar(0, I64), e.scalar(D, I64), e.scalar(1, I64)]);
      const oneHotT = e.transpose(e.op('Cast', [e.op('Equal', [wrapped, range])], { to: t }), [1, 0]); // [D, Q]
      const g3 = e.reshape(g, [-1, Q, R]);
      return e.op('Reshape', [e.op('MatMul', [oneHotT, g3]), e.shape(x)]);
    }),
  Resize: (ctx) => gradAll(ctx, (g) => resizeVjp(ctx, g)),
  Pad: (ctx) =>
    gradAll(ctx, (g) => {
      const e = ctx.e;
      const x = ctx.node.input[0]!;
      if (ctx.opset < 11) unsupported(ctx, 'Pad before opset 11 (attributes) is upgraded first; this one was not');
      const pads = ctx.node.input[1]!;
      const axes = ctx.node.input[3] || undefined;
      const mode = attrString(ctx.node, 'mode', 'constant');
      // Constant padding is adjoint to padding by the negated amounts: padded positions are cropped, cropped ones
      // come back as zeros.
      if (mode === 'constant') return e.op('Pad', [g, e.op('Neg', [pads]), '', ...(axes ? [axes] : [])]);
      if (ctx.opset < 16) unsupported(ctx, `mode "${mode}" needs opset ≥ 16 (ScatterElements with reduction=add)`);
      const positions = e.op('Reshape', [elementPositions(ctx, x), e.shape(x)]);
      const padded = e.op('Pad', [positions, pads, '', ...(axes ? [axes] : [])], { mode });
      return scatterBack(ctx, x, padded, g, true);
    }),
  ConvTranspose: (ctx) => {
    const g = ctx.gradOut(0);
    if (g === undefined) return;
    if (ctx.needs(1) || ctx.needs(2)) unsupported(ctx, 'gradients with respect to ConvTranspose weights or bias are not supported');
    if (!ctx.needs(0)) return;
    const [, w] = ctx.node.input as [string, string];
    const wi = ctx.info(w);
    const kernel = attrInts(ctx.node, 'kernel_shape') ?? (wi.dims.slice(2) as number[]);
    if (kernel.some((k) => typeof k !== 'number')) unsupported(ctx, 'kernel shape is not static');
    const autoPad = attrString(ctx.node, 'auto_pad', 'NOTSET');
    if (autoPad !== 'NOTSET' && autoPad !== 'VALID') unsupported(ctx, `auto_pad ${autoPad} is not supported (explicit pads only)`);
    if (attrInts(ctx.node, 'output_shape')) unsupported(ctx, 'output_shape is not supported (explicit pads and output_padding only)');
    const { strides, dilations } = spatialAttrs(ctx, kernel);
    const pads = autoPad === 'VALID' ? new Array<number>(2 * kernel.length).fill(0) : (attrInts(ctx.node, 'pads') ?? new Array<number>(2 * kernel.length).fill(0));
    const outputPadding = attrInts(ctx.node, 'output_padding') ?? [];
    if (outputPadding.some((p, i) => p >= strides[i]!)) unsupported(ctx, 'output_padding must be smaller than the stride');
    // A transposed convolution is the adjoint of the convolution with the same weight and geometry.
    ctx.addGrad(0, ctx.e.op('Conv', [g, w], { kernel_shape: kernel, strides, dilations, pads, group: attrInt(ctx.node, 'group', 1) }));
  },
  Einsum: (ctx) => einsumRule(ctx),
  LayerNormalization: (ctx) => layerNormRule(ctx),
};

function splitStatic(ctx: RuleContext, g: string, inputs: string[], axis: number): string[] {
  const sizes = inputs.map((x) => ctx.info(x).dims[axis]);
  if (sizes.some((s) => s === null || s === undefined)) unsupported(ctx, 'Concat gradient before opset 13 needs static sizes');
  return ctx.e.ops('Split', [g], { axis, split: sizes as number[] }, inputs.length);
}

function scalarTensor(dataType: number, value = 0): TensorProto {
  return makeTensorLocal(dataType, value);
}

function makeTensorLocal(dataType: number, value: number): TensorProto {
  return makeTensor('', dataType === TensorProto_DataType.UNDEFINED ? TensorProto_DataType.FLOAT : dataType, [1], [value]);
}

function elementwise(ctx: RuleContext, op: 'Add' | 'Sub' | 'Mul' | 'Div'): void {
  const g = ctx.gradOut(0);
  if (g === undefined) return;
  const [a, b] = ctx.node.input as [string, string];
  const y = ctx.node.output[0]!;
  const ydims = ctx.info(y).dims;
  if (ctx.needs(0)) {
    let ga = g;
    if (op === 'Mul') ga = ctx.e.op('Mul', [g, b]);
    else if (op === 'Div') ga = ctx.e.op('Div', [g, b]);
    ctx.addGrad(0, unbroadcast(ctx, ga, ydims, a));
  }
  if (ctx.needs(1)) {
    let gb = g;
    if (op === 'Sub') gb = ctx.e.op('Neg', [g]);
    else if (op === 'Mul') gb = ctx.e.op('Mul', [g, a]);
    else if (op === 'Div') gb = ctx.e.op('Neg', [ctx.e.op('Div', [ctx.e.op('Mul', [g, y]), b])]);
    ctx.addGrad(1, unbroadcast(ctx, gb, ydims, b));
  }
}

/** Operator types that have a rule. */
export function supportedOps(): string[] {
  return Object.keys(VJP_RULES).sort();
}

/** A 2-D MaxPool whose windows tile the input (see {@link maxPoolTiling}). */
export interface MaxPoolTiling {
  /** Window = stride, [kh, kw]. */
  kernel: [number, number];
  /** Channels. */
  channels: number;
  /** Output height and width (floor mode: rows/columns past the last whole window get no gradient). */
  outSize: [number, number];
}

/**
 * The tiling of a MaxPool whose windows tile its input: FLOAT (onnxruntime's CPU Conv has no DOUBLE kernel), 2-D,
 * strides equal to the kernel, at least two taps, no dilation or padding, floor mode, row-major storage, static
 * channels and spatial size. Undefined otherwise.
 */
export function maxPoolTiling(node: NodeProto, input: TensorInfo): MaxPoolTiling | undefined {
  if (input.elemType !== TensorProto_DataType.FLOAT || input.dims.length !== 4) return undefined;
  if (attrInt(node, 'storage_order', 0) !== 0 || attrInt(node, 'ceil_mode', 0) !== 0) return undefined;
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  if (autoPad !== 'NOTSET' && autoPad !== 'VALID') return undefined;
  const kernel = attrInts(node, 'kernel_shape');
  if (!kernel || kernel.length !== 2 || kernel[0]! * kernel[1]! < 2) return undefined;
  const strides = attrInts(node, 'strides') ?? [1, 1];
  const dilations = attrInts(node, 'dilations') ?? [1, 1];
  const pads = attrInts(node, 'pads') ?? [0, 0, 0, 0];
  if (strides.some((s, i) => s !== kernel[i]) || dilations.some((d) => d !== 1) || pads.some((p) => p !== 0)) return undefined;
  const [c, h, w] = input.dims.slice(1);
  if (typeof c !== 'number' || typeof h !== 'number' || typeof w !== 'number' || h < kernel[0]! || w < kernel[1]!) return undefined;
  return { kernel: [kernel[0]!, kernel[1]!], channels: c, outSize: [Math.floor(h / kernel[0]!), Math.floor(w / kernel[1]!)] };
}

/** Whether a pool node's windows overlap (a window spans more than its stride on some axis). */
export function maxPoolWindowsOverlap(node: NodeProto): boolean {
  const kernel = attrInts(node, 'kernel_shape') ?? [];
  const strides = attrInts(node, 'strides') ?? [];
  const dilations = attrInts(node, 'dilations') ?? [];
  return kernel.some((k, i) => (k - 1) * (dilations[i] ?? 1) + 1 > (strides[i] ?? 1));
}

/** A 2-D FLOAT MaxPool whose gradient can be routed per window tap without the Indices output (see {@link emitMaxPoolTapVjp}). */
export interface MaxPoolTapGeometry {
  /** Channels C. */
  channels: number;
  /** Window [kh, kw]. */
  kernel: [number, number];
  /** Strides. */
  strides: [number, number];
  /** Dilations. */
  dilations: [number, number];
  /**
   * Pads `[top, left, bottom, right]` of the equivalent Conv: the pool's leading pads, and trailing pads that give
   * exactly the pool's output size (ceil_mode included).
   */
  pads: [number, number, number, number];
  /** Input size [H, W]. */
  inSize: [number, number];
  /** Output size [Ho, Wo]. */
  outSize: [number, number];
  /** ConvTranspose output_padding that restores [H, W]. */
  outputPadding: [number, number];
  /** Per tap (row-major) and output position: whether the tap reads the input (false: padding), when any does not. */
  inside?: boolean[][];
}

/**
 * The tap geometry of a MaxPool: FLOAT (onnxruntime's CPU Conv has no DOUBLE kernel), 2-D, static channels and
 * spatial sizes of input and output, any window, strides, pads (auto_pad included), dilations and ceil_mode.
 * Undefined otherwise (the gradient then needs the Indices output).
 */
export function maxPoolTapGeometry(node: NodeProto, input: TensorInfo, output: TensorInfo): MaxPoolTapGeometry | undefined {
  if (input.elemType !== TensorProto_DataType.FLOAT || input.dims.length !== 4 || output.dims.length !== 4) return undefined;
  const kernel = attrInts(node, 'kernel_shape');
  if (!kernel || kernel.length !== 2 || kernel.some((k) => k < 1)) return undefined;
  const strides = attrInts(node, 'strides') ?? [1, 1];
  const dilations = attrInts(node, 'dilations') ?? [1, 1];
  if (strides.length !== 2 || dilations.length !== 2 || strides.some((s) => s < 1) || dilations.some((d) => d < 1)) return undefined;
  const [c, h, w] = input.dims.slice(1);
  const [ho, wo] = output.dims.slice(2);
  if (![c, h, w, ho, wo].every((d) => typeof d === 'number' && d > 0)) return undefined;
  const inSize = [h as number, w as number];
  const outSize = [ho as number, wo as number];
  const pads = resolveIrPads(node, inSize, kernel, strides, dilations);
  if (!pads) return undefined;
  const convPads = [...pads];
  const outputPadding: number[] = [];
  for (let i = 0; i < 2; i++) {
    const span = (kernel[i]! - 1) * dilations[i]! + 1;
    const convOut = (end: number) => Math.floor((inSize[i]! + pads[i]! + end - span) / strides[i]!) + 1;
    // ceil_mode (or an output size the trailing pads do not give): trailing pads that give exactly the output size.
    if (convOut(pads[i + 2]!) !== outSize[i]) convPads[i + 2] = strides[i]! * (outSize[i]! - 1) + span - inSize[i]! - pads[i]!;
    if (convPads[i + 2]! < 0 || convOut(convPads[i + 2]!) !== outSize[i]) return undefined;
    outputPadding.push(inSize[i]! + pads[i]! + convPads[i + 2]! - span - strides[i]! * (outSize[i]! - 1));
  }
  const [kh, kw] = kernel as [number, number];
  const reads = (axis: number, o: number, k: number) => {
    const at = strides[axis]! * o - pads[axis]! + k * dilations[axis]!;
    return at >= 0 && at < inSize[axis]!;
  };
  const masks: boolean[][] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const m: boolean[] = [];
      for (let oy = 0; oy < outSize[0]!; oy++) for (let ox = 0; ox < outSize[1]!; ox++) m.push(reads(0, oy, i) && reads(1, ox, j));
      masks.push(m);
    }
  }
  const inside = masks.some((m) => m.some((v) => !v)) ? masks : undefined;
  return {
    channels: c as number,
    kernel: [kh, kw],
    strides: strides as [number, number],
    dilations: dilations as [number, number],
    pads: convPads as [number, number, number, number],
    inSize: inSize as [number, number],
    outSize: outSize as [number, number],
    outputPadding: outputPadding as [number, number],
    ...(inside ? { inside } : {}),
  };
}

/**
 * Exact MaxPool gradient without the Indices output. A depthwise Conv with one-hot kernels extracts every window tap
 * as channel c·T + t (T = kh·kw taps, row-major; Conv pads with 0, so taps in the padding are pushed to −∞ by a
 * constant); ArgMax over the taps picks the FIRST maximum — the element onnxruntime's Indices names, so ties route
 * the gradient to exactly one element; the pooled gradient goes to that tap, and ONE depthwise ConvTranspose with the
 * same one-hot kernels scatters every tap back to the input, summing overlapping windows.
 */
export function emitMaxPoolTapVjp(e: Emitter, x: string, g: string, geo: MaxPoolTapGeometry): string {
  const t = TensorProto_DataType.FLOAT;
  const C = geo.channels;
  const [kh, kw] = geo.kernel;
  const T = kh * kw;
  const [ho, wo] = geo.outSize;
  const oneHot = new Float64Array(C * T * T);
  for (let c = 0; c < C; c++) for (let k = 0; k < T; k++) oneHot[(c * T + k) * T + k] = 1;
  const kernel = e.constant(t, [C * T, 1, kh, kw], oneHot, 'pool_taps');
  const common = { kernel_shape: [kh, kw], strides: [...geo.strides], dilations: [...geo.dilations], pads: [...geo.pads], group: C };
  let taps = e.reshape(e.op('Conv', [x, kernel], common), [-1, C, T, ho, wo]);
  if (geo.inside) {
    const outside = geo.inside.flatMap((m) => m.map((v) => (v ? 0 : -Infinity)));
    taps = e.op('Add', [taps, e.constant(t, [1, 1, T, ho, wo], outside, 'pool_pad_taps')]);
  }
  const first = e.op('ArgMax', [taps], { axis: 2, keepdims: 1 });
  const chosen = e.op('Equal', [first, e.constant(TensorProto_DataType.INT64, [1, 1, T, 1, 1], Array.from({ length: T }, (_, k) => k), 'pool_tap_ids')]);
  const routed = e.op('Where', [chosen, e.reshape(g, [-1, C, 1, ho, wo]), e.scalar(0, t)]);
  return e.op('ConvTranspose', [e.reshape(routed, [-1, C * T, ho, wo]), kernel], { ...common, output_padding: [...geo.outputPadding] });
}

/** Whether an ONNX element type is a floating-point type (the types gradients flow through). */
export function isFloatType(elemType: number): boolean {
  return elemType === TensorProto_DataType.FLOAT || elemType === TensorProto_DataType.DOUBLE || elemType === TensorProto_DataType.FLOAT16 || elemType === TensorProto_DataType.BFLOAT16;
}

/** The elements of a constant tensor (initializer or Constant node output) as numbers; undefined when not constant. */
function constValues(ctx: RuleContext, name: string | undefined): number[] | undefined {
  if (!name) return undefined;
  const t = ctx.constant?.(name) ?? (ctx.isGraphInput && !ctx.isGraphInput(name) ? ctx.initializer(name) : undefined);
  if (!t) return undefined;
  const stored = initializerBytes(t);
  if (!stored) return undefined;
  return Array.from(new TensorBuffer(t.dataType, stored.dims, stored.bytes).toFloat64());
}

/** `Unsqueeze(x, axes)` in the form of the model's opset (axes as input from opset 13). */
function unsqueeze(e: Emitter, x: string, axes: readonly number[]): string {
  if (e.opset >= 13) return e.op('Unsqueeze', [x, e.ints(axes)]);
  return e.op('Unsqueeze', [x], { axes: [...axes] });
}

/** `ReduceMean(x, axes, keepdims)` in the form of the model's opset (axes as input from opset 18). */
function reduceMean(e: Emitter, x: string, axes: readonly number[], keepdims: boolean): string {
  if (e.opset >= 18) return e.op('ReduceMean', [x, e.ints(axes)], { keepdims: keepdims ? 1 : 0 });
  return e.op('ReduceMean', [x], { axes: [...axes], keepdims: keepdims ? 1 : 0 });
}

/**
 * The reduced axes of a Reduce* node (normalised, sorted), `undefined` for "no reduction" (noop_with_empty_axes
 * with empty axes). Axes given as an input must be constant.
 */
function reducedAxes(ctx: RuleContext, rank: number): number[] | undefined {
  const fromInput = ctx.node.opType === 'ReduceSum' ? ctx.opset >= 13 : ctx.opset >= 18;
  let axes: number[] | undefined;
  if (fromInput) {
    const a = ctx.node.input[1];
    if (a) {
      axes = constValues(ctx, a);
      if (!axes) unsupported(ctx, 'its axes input must be a constant');
    }
  } else axes = attrInts(ctx.node, 'axes');
  if (!axes || axes.length === 0) {
    if (fromInput && attrInt(ctx.node, 'noop_with_empty_axes', 0) === 1) return undefined;
    return Array.from({ length: rank }, (_, i) => i);
  }
  return [...new Set(axes.map((a) => normAxis(a, rank)))].sort((p, q) => p - q);
}

function reduceRule(ctx: RuleContext, kind: 'sum' | 'mean' | 'extreme' | 'sumSquare' | 'l1' | 'l2' | 'logSumExp'): void {
  gradAll(ctx, (g) => {
    const e = ctx.e;
    const x = ctx.node.input[0]!;
    const y = ctx.node.output[0]!;
    const t = dtype(ctx, y);
    const xi = ctx.info(x);
    const rank = xi.dims.length;
    const axes = reducedAxes(ctx, rank);
    const keep = attrInt(ctx.node, 'keepdims', 1) === 1;
    // g and y with the reduced axes kept (size 1), so that they broadcast against x.
    let gk = g;
    let yk = y;
    if (axes === undefined) {
      gk = g;
    } else if (!keep) {
      gk = unsqueeze(e, g, axes);
      yk = unsqueeze(e, y, axes);
    }
    switch (kind) {
      case 'sum':
        return e.op('Expand', [gk, e.shape(x)]);
      case 'mean': {
        if (axes === undefined) return g;
        const dims = axes.map((a) => xi.dims[a]);
        const count = dims.every((d) => typeof d === 'number')
          ? e.scalar((dims as number[]).reduce((p, d) => p * d, 1), t)
          : e.op('Cast', [e.op('Div', [e.op('Size', [x]), e.op('Size', [y])])], { to: t });
        return e.op('Expand', [e.op('Div', [gk, count]), e.shape(x)]);
      }
      case 'extreme': {
        if (axes === undefined) return g;
        // Ties share the gradient equally (a subgradient); in general position one element gets all of it.
        const mask = e.op('Cast', [e.op('Equal', [x, yk])], { to: t });
        const count = e.reduceSum(mask, axes, true);
        return e.op('Mul', [gk, e.op('Div', [mask, count])]);
      }
      case 'sumSquare':
        return e.op('Mul', [gk, e.op('Mul', [x, e.scalar(2, t)])]);
      case 'l1':
        return e.op('Mul', [gk, e.op('Sign', [x])]);
      case 'l2':
        return e.op('Mul', [gk, e.op('Div', [x, yk])]);
      case 'logSumExp':
        return e.op('Mul', [gk, e.op('Exp', [e.op('Sub', [x, yk])])]);
    }
  });
}

/** Max/Min over several (broadcast) inputs: the gradient goes to the first input holding the extreme value. */
function extremeRule(ctx: RuleContext): void {
  const g = ctx.gradOut(0);
  if (g === undefined) return;
  const e = ctx.e;
  const y = ctx.node.output[0]!;
  const ydims = ctx.info(y).dims;
  const zero = e.scalar(0, dtype(ctx, y));
  const inputs = ctx.node.input;
  let taken: string | undefined;
  inputs.forEach((x, i) => {
    const eq = e.op('Equal', [x, y]);
    const first = taken ? e.op('And', [eq, e.op('Not', [taken])]) : eq;
    if (i < inputs.length - 1) taken = taken ? e.op('Or', [taken, eq]) : eq;
    if (ctx.needs(i)) ctx.addGrad(i, unbroadcast(ctx, e.op('Where', [first, g, zero]), ydims, x));
  });
}

/** INT64 `[0, 1, ..., size(x) − 1]`: the flat element positions of `x`. */
function elementPositions(ctx: RuleContext, x: string): string {
  const e = ctx.e;
  const I64 = TensorProto_DataType.INT64;
  return e.memo(`positions:${x}`, () => e.op('Range', [e.scalar(0, I64), e.op('Size', [x]), e.scalar(1, I64)]));
}

/**
 * The gradient of `x` when output element k is x's element `positions[k]` (flat): the output gradient scattered
 * back to those positions, summed where positions repeat (`accumulate`; opset ≥ 16).
 */
function scatterBack(ctx: RuleContext, x: string, positions: string, g: string, accumulate: boolean): string {
  const e = ctx.e;
  const t = dtype(ctx, ctx.node.output[0]!);
  const flatSize = e.op('Reshape', [e.op('Size', [x]), e.ints([1])]);
  const zeros = e.op('ConstantOfShape', [flatSize], { value: scalarTensor(t) });
  const scattered = e.op('ScatterElements', [zeros, e.reshape(positions, [-1]), e.reshape(g, [-1])], accumulate ? { axis: 0, reduction: 'add' } : { axis: 0 });
  return e.op('Reshape', [scattered, e.shape(x)]);
}

/**
 * Resize (nearest, linear, cubic; not tf_crop_and_resize) is linear in its input and separable: along each resized
 * axis k the output is A_k·x with a constant [out, in] matrix. A_k is computed by the same Resize (same attributes)
 * applied, along axis k only, to an identity matrix; the gradient contracts g with A_k along every resized axis.
 */
function resizeVjp(ctx: RuleContext, g: string): string {
  const e = ctx.e;
  const node = ctx.node;
  const x = node.input[0]!;
  const y = node.output[0]!;
  const t = dtype(ctx, y);
  if (ctx.opset < 11) unsupported(ctx, 'Resize before opset 11 is upgraded first; this one was not');
  const ctm = attrString(node, 'coordinate_transformation_mode', 'half_pixel');
  if (ctm === 'tf_crop_and_resize') unsupported(ctx, 'coordinate_transformation_mode tf_crop_and_resize is not supported');
  if (attrInts(node, 'axes')) unsupported(ctx, 'the axes attribute is not supported');
  const xd = ctx.info(x).dims;
  const yd = ctx.info(y).dims;
  const rank = xd.length;
  const scalesName = node.input[2] || undefined;
  const sizesName = node.input[3] || undefined;
  const scales = constValues(ctx, scalesName);
  const useSizes = !!sizesName && !(scales && scales.length > 0);
  if (useSizes && attrString(node, 'keep_aspect_ratio_policy', 'stretch') !== 'stretch') unsupported(ctx, 'keep_aspect_ratio_policy other than stretch is not supported');
  const axes: number[] = [];
  for (let k = 0; k < rank; k++) {
    const [i, o] = [xd[k], yd[k]];
    const scaleKnown = !useSizes && scales && scales.length === rank ? scales[k] : undefined;
    const staticPair = typeof i === 'number' && typeof o === 'number';
    // Axes whose size is not static (besides batch and channels) are taken as resized: if one is not, its matrix is
    // the identity (the gradient is still exact).
    const moves = scaleKnown !== undefined ? scaleKnown !== 1 : staticPair ? i !== o || (!useSizes && k >= 2) : k >= 2;
    if (moves) axes.push(k);
  }
  const F32 = TensorProto_DataType.FLOAT;
  const I64 = TensorProto_DataType.INT64;
  /** The size of axis k of `tensor` as an INT64 [1] tensor (a constant when static). */
  const sizeOf = (tensor: string, dims: readonly (number | null)[], k: number): { value: number | undefined; tensor: string } => {
    const d = dims[k];
    return typeof d === 'number' ? { value: d, tensor: e.ints([d]) } : { value: undefined, tensor: e.op('Slice', [e.shape(tensor), e.ints([k]), e.ints([k + 1])]) };
  };
  /** A 1-D INT64 shape from per-axis [1] tensors (a constant when all are). */
  const shapeOf = (parts: { value: number | undefined; tensor: string }[]): string =>
    parts.every((p) => p.value !== undefined) ? e.ints(parts.map((p) => p.value!)) : e.op('Concat', parts.map((p) => p.tensor), { axis: 0 });
  const one = { value: 1, tensor: e.ints([1]) };
  let grad = g;
  for (const k of axes) {
    const hi = sizeOf(x, xd, k);
    const ho = sizeOf(y, yd, k);
    const j = k === 0 ? 1 : 0;
    const basisDims = Array.from({ length: rank }, (_, a) => (a === j || a === k ? hi : one));
    let basis: string;
    if (hi.value !== undefined) {
      const n = hi.value;
      const identity = new Float64Array(n * n);
      for (let b = 0; b < n; b++) identity[b * n + b] = 1;
      basis = e.constant(t, basisDims.map((d) => d.value!), identity, 'resize_basis');
    } else {
      const square = e.op('ConstantOfShape', [e.op('Concat', [hi.tensor, hi.tensor], { axis: 0 })], { value: makeTensor('', t, [1], [0]) });
      basis = e.op('Reshape', [e.op('EyeLike', [square]), shapeOf(basisDims)]);
    }
    const empty = e.constant(F32, [0], [], 'resize_empty');
    let inputs: string[];
    if (useSizes) {
      inputs = [basis, empty, empty, shapeOf(basisDims.map((d, a) => (a === k ? ho : d)))];
    } else {
      let axisScales: string;
      if (scales && scales.length === rank) axisScales = e.constant(F32, [rank], basisDims.map((_, a) => (a === k ? scales[k]! : 1)), 'resize_scales');
      else {
        if (!scalesName) unsupported(ctx, 'neither scales nor sizes are given');
        const parts: string[] = [];
        if (k > 0) parts.push(e.constant(F32, [k], new Array<number>(k).fill(1), 'ones'));
        parts.push(e.op('Slice', [scalesName, e.ints([k]), e.ints([k + 1])]));
        if (k < rank - 1) parts.push(e.constant(F32, [rank - 1 - k], new Array<number>(rank - 1 - k).fill(1), 'ones'));
        axisScales = e.op('Concat', parts, { axis: 0 });
      }
      inputs = [basis, empty, axisScales];
    }
    const resized = e.op('Resize', inputs);
    // The same attributes as the forward node (mode, coordinate mapping, nearest_mode, cubic_coeff_a, ...).
    e.nodes[e.nodes.length - 1]!.attribute = node.attribute.map((a) => clone(AttributeProtoSchema, a));
    // resized holds A_k[o, b] at (b on axis j, o on axis k): [hi, ho] when j < k, [ho, hi] when j > k.
    const a = j < k ? e.transpose(e.op('Reshape', [resized, shapeOf([hi, ho])]), [1, 0]) : e.op('Reshape', [resized, shapeOf([ho, hi])]);
    const perm = Array.from({ length: rank }, (_, i) => i).filter((i) => i !== k);
    perm.push(k);
    const inv = new Array<number>(rank);
    perm.forEach((p, i) => (inv[p] = i));
    const moved = k === rank - 1 ? grad : e.transpose(grad, perm);
    const contracted = e.op('MatMul', [moved, a]);
    grad = k === rank - 1 ? contracted : e.transpose(contracted, inv);
  }
  return grad;
}

/** Einsum without ellipses or repeated indices within a term: operand i's gradient is Einsum(out, others → term i). */
function einsumRule(ctx: RuleContext): void {
  const g = ctx.gradOut(0);
  if (g === undefined) return;
  const eq = attrString(ctx.node, 'equation', '').replace(/\s+/g, '');
  if (eq.includes('.')) unsupported(ctx, `equation "${eq}" uses an ellipsis`);
  const [lhs, explicit] = eq.split('->') as [string, string | undefined];
  const terms = lhs.split(',');
  let out = explicit;
  if (out === undefined) {
    const counts = new Map<string, number>();
    for (const c of lhs.replace(/,/g, '')) counts.set(c, (counts.get(c) ?? 0) + 1);
    out = [...counts].filter(([, n]) => n === 1).map(([c]) => c).sort().join('');
  }
  for (const term of [...terms, out]) if (new Set(term).size !== term.length) unsupported(ctx, `equation "${eq}" repeats an index within a term`);
  terms.forEach((term, i) => {
    if (!ctx.needs(i)) return;
    const others = terms.filter((_, k) => k !== i);
    const available = new Set([...out!, ...others.join('')]);
    const missing = [...term].filter((c) => !available.has(c));
    if (missing.length) unsupported(ctx, `index ${missing.join(', ')} of operand ${i} is summed away within that operand alone`);
    const inputs = [g, ...ctx.node.input.filter((_, k) => k !== i)];
    ctx.addGrad(i, ctx.e.op('Einsum', inputs, { equation: `${[out, ...others].join(',')}->${term}` }));
  });
}

/** LayerNormalization (opset 17): the input gradient through the recomputed mean and inverse standard deviation. */
function layerNormRule(ctx: RuleContext): void {
  const g = ctx.gradOut(0);
  if (ctx.gradOut(1) !== undefined || ctx.gradOut(2) !== undefined) unsupported(ctx, 'gradients through its Mean/InvStdDev outputs are not supported');
  if (g === undefined) return;
  const e = ctx.e;
  const [x, scale, bias] = ctx.node.input as [string, string, string | undefined];
  const y = ctx.node.output[0]!;
  const t = dtype(ctx, y);
  const ydims = ctx.info(y).dims;
  const rank = ctx.info(x).dims.length;
  const axis = normAxis(attrInt(ctx.node, 'axis', -1), rank);
  const axes = Array.from({ length: rank - axis }, (_, i) => axis + i);
  const eps = attrFloat(ctx.node, 'epsilon', 1e-5);
  const centered = e.op('Sub', [x, reduceMean(e, x, axes, true)]);
  const variance = reduceMean(e, e.op('Mul', [centered, centered]), axes, true);
  const rstd = e.op('Reciprocal', [e.op('Sqrt', [e.op('Add', [variance, e.scalar(eps, t)])])]);
  const xhat = e.op('Mul', [centered, rstd]);
  if (ctx.needs(0)) {
    const dxhat = e.op('Mul', [g, scale]);
    const inner = e.op('Sub', [e.op('Sub', [dxhat, reduceMean(e, dxhat, axes, true)]), e.op('Mul', [xhat, reduceMean(e, e.op('Mul', [dxhat, xhat]), axes, true)])]);
    ctx.addGrad(0, e.op('Mul', [rstd, inner]));
  }
  if (ctx.needs(1)) ctx.addGrad(1, unbroadcast(ctx, e.op('Mul', [g, xhat]), ydims, scale));
  if (bias && ctx.needs(2)) ctx.addGrad(2, unbroadcast(ctx, g, ydims, bias));
}
