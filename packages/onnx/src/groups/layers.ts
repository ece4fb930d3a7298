/**
 * Layers of a channel group: parsing a node as a producer (its output channels grow) or a consumer (its input
 * channels grow), and the flat weight index of each stacked incoming/outgoing entry.
 *
 * Stacked layouts (core conventions, incoming `[units × fanIn]`, outgoing `[fanOut × units]`):
 * - Conv producer, weight `[O, I/G, k…]`: incoming entry `tap·(I/G) + ci` (taps row-major over the kernel).
 * - ConvTranspose producer, weight `[I, O/G, k…]`: incoming entry `tap·(I/G) + ci` of the unit's conv group.
 * - Gemm/MatMul producer: incoming entry = input feature (effective weight `alpha·B`).
 * - Conv consumer, weight `[O, I/G, k…]`: outgoing entry `tap·(O/G) + o` over the outputs of the unit's conv group.
 * - ConvTranspose consumer, weight `[I, O/G, k…]`: outgoing entry `tap·(O/G) + o`.
 * - Gemm/MatMul consumer reading `blk` entries per channel (after a flatten): outgoing entry `p·n + o`.
 * @packageDocumentation
 */
import type { NodeProto } from 'onnx-buf';
import { attrFloat, attrInt, nodeLabel } from '../attributes.js';
import type { OnnxModel, WeightRef } from '../model.js';
import { FLOAT_TYPES, dataTypeName, tensorDims } from '../tensor.js';
import type { GroupLayer } from './types.js';

/** A refusal: the group cannot grow, for the reason in the message. */
export class GroupRefusal extends Error {}

/** Throws a {@link GroupRefusal}. */
export function refuse(message: string): never {
  throw new GroupRefusal(message);
}

const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

/**
 * The stored tensor named `value`: an initializer or Constant, also behind Identity nodes (exporters deduplicate
 * equal initializers that way). Widening writes a private copy and points the reader at it.
 */
export function resolveWeight(model: OnnxModel, value: string): WeightRef | undefined {
  let name = value;
  for (let depth = 0; depth < 8 && name; depth++) {
    const w = model.weight(name);
    if (w) return w;
    const p = model.producerOf(name);
    if (!p || p.opType !== 'Identity' || (p.domain !== '' && p.domain !== 'ai.onnx')) return undefined;
    name = p.input[0] ?? '';
  }
  return undefined;
}

/** The stored float weight at `input` of `node`, or a refusal naming what it is instead. */
export function storedWeight(model: OnnxModel, node: NodeProto, input: number, what: string): WeightRef {
  const name = node.input[input];
  if (!name) refuse(`${node.opType} "${nodeLabel(node)}" has no ${what}`);
  const w = resolveWeight(model, name);
  if (!w) {
    const p = model.producerOf(name);
    refuse(`${what} "${name}" of ${node.opType} "${nodeLabel(node)}" is ${p ? `computed by ${p.opType} "${nodeLabel(p)}"` : 'a graph input'}, not a stored tensor`);
  }
  if (!FLOAT_TYPES.has(w.tensor.dataType)) refuse(`${what} "${name}" of ${node.opType} "${nodeLabel(node)}" is ${dataTypeName(w.tensor.dataType)}; only FLOAT, FLOAT16 and DOUBLE weights can be widened`);
  return w;
}

/** True for a conv whose every output channel reads exactly one input channel (group = channels, multiplier 1). */
export function isDepthwise(model: OnnxModel, node: NodeProto): boolean {
  if (node.opType !== 'Conv') return false;
  const group = attrInt(node, 'group', 1);
  if (group <= 1) return false;
  const w = resolveWeight(model, node.input[1] ?? '');
  if (!w) return false;
  try {
    const d = tensorDims(w.tensor);
    return d[1] === 1 && d[0] === group;
  } catch {
    return false;
  }
}

/** True when `node` can produce a group: a Conv (not depthwise), ConvTranspose, Gemm or MatMul with a stored weight. */
export function isLayerCandidate(model: OnnxModel, node: NodeProto): boolean {
  if (node.domain !== '' && node.domain !== 'ai.onnx') return false;
  switch (node.opType) {
    case 'Conv':
    case 'ConvTranspose':
      return Boolean(resolveWeight(model, node.input[1] ?? '')) && !isDepthwise(model, node);
    case 'Gemm':
    case 'MatMul':
      return Boolean(resolveWeight(model, node.input[1] ?? '')) && !resolveWeight(model, node.input[0] ?? '');
    default:
      return false;
  }
}

/** What a producer looks like to the traversal: the layer and where its channels come out. */
export interface ParsedProducer {
  layer: GroupLayer;
  /** The value carrying the channels (the layer's output, or its bias Add's output). */
  output: string;
  /** Channel axis and rank of that value (rank may be unknown for MatMul: -1). */
  axis: number;
  rank: number;
  /** Nodes folded into the producer (a MatMul's bias Add). */
  folded: NodeProto[];
}

/** Parses `node` as a producer. */
export function parseProducer(model: OnnxModel, node: NodeProto, rankOf: (value: string) => number | undefined): ParsedProducer {
  const label = nodeLabel(node);
  const base = { node, weightInput: 1, blk: 1, offset: 0, start: 0 };
  if (node.opType === 'Gemm') {
    if (resolveWeight(model, node.input[0] ?? '')) refuse(`Gemm "${label}": input A is a stored tensor; only Y = A·B with activations A and weights B is supported`);
    const weight = storedWeight(model, node, 1, 'weight B');
    const dims = tensorDims(weight.tensor);
    if (dims.length !== 2) refuse(`Gemm "${label}": weight B has shape [${dims.join(', ')}], expected 2-D`);
    const transB = attrInt(node, 'transB', 0) === 1;
    const alpha = attrFloat(node, 'alpha', 1);
    if (alpha === 0 || !Number.isFinite(alpha)) refuse(`Gemm "${label}": alpha = ${alpha}`);
    const axis = transB ? 0 : 1;
    const units = dims[axis]!;
    const layer: GroupLayer = { ...base, type: 'Gemm', weight, dims, axis, groups: 1, scale: alpha, length: dims[1 - axis]!, kernel: [], biasSlot: 2 };
    if (node.input[2]) {
      const c = storedWeight(model, node, 2, 'bias C');
      const cd = tensorDims(c.tensor);
      const perUnit = cd.length >= 1 && cd[cd.length - 1] === units && cd.slice(0, -1).every((d) => d === 1);
      if (!perUnit && !cd.every((d) => d === 1)) refuse(`Gemm "${label}": bias C "${c.name}" has shape [${cd.join(', ')}], which varies over the batch axis`);
      layer.bias = { weight: c, node, input: 2, scale: attrFloat(node, 'beta', 1), broadcast: !perUnit || units === 1, axis: Math.max(0, cd.length - 1) };
    }
    return { layer, output: node.output[0]!, axis: 1, rank: 2, folded: [] };
  }
  if (node.opType === 'MatMul') {
    const weight = storedWeight(model, node, 1, 'weight');
    const dims = tensorDims(weight.tensor);
    if (dims.length !== 2) refuse(`MatMul "${label}": weight has shape [${dims.join(', ')}], expected 2-D`);
    const rank = rankOf(node.input[0]!) ?? 2;
    if (rank < 2) refuse(`MatMul "${label}": input "${node.input[0]}" has rank ${rank}`);
    const layer: GroupLayer = { ...base, type: 'MatMul', weight, dims, axis: 1, groups: 1, scale: 1, length: dims[0]!, kernel: [] };
    let output = node.output[0]!;
    const folded: NodeProto[] = [];
    const users = model.consumersOf(output);
    const add = users[0];
    if (users.length === 1 && add?.opType === 'Add' && !model.indexes.outputs.has(output)) {
      const other = add.input[0] === output ? 1 : 0;
      const bw = resolveWeight(model, add.input[other] ?? '');
      if (bw && FLOAT_TYPES.has(bw.tensor.dataType)) {
        const cd = tensorDims(bw.tensor);
        if (cd.length >= 1 && cd.length <= rank && cd[cd.length - 1] === dims[1] && cd.slice(0, -1).every((d) => d === 1)) {
          layer.bias = { weight: bw, node: add, input: other, scale: 1, broadcast: false, axis: cd.length - 1 };
          output = add.output[0]!;
          folded.push(add);
        }
      }
    }
    return { layer, output, axis: rank - 1, rank, folded };
  }
  if (node.opType === 'Conv' || node.opType === 'ConvTranspose') {
    const weight = storedWeight(model, node, 1, 'weight W');
    const dims = tensorDims(weight.tensor);
    if (dims.length < 3) refuse(`${node.opType} "${label}": weight has shape [${dims.join(', ')}]`);
    const groups = attrInt(node, 'group', 1);
    const kernel = dims.slice(2);
    const transposed = node.opType === 'ConvTranspose';
    if (!transposed && dims[1] === 1 && groups > 1 && dims[0] !== groups) refuse(`Conv "${label}" is a depthwise conv with channel multiplier ${dims[0]! / groups}; it cannot be grown`);
    const inPerGroup = transposed ? dims[0]! / groups : dims[1]!;
    if (!Number.isInteger(inPerGroup)) refuse(`${node.opType} "${label}": ${dims[0]} input channels do not split into ${groups} groups`);
    const layer: GroupLayer = { ...base, type: node.opType, weight, dims, axis: transposed ? 1 : 0, groups, scale: 1, length: inPerGroup * prod(kernel), kernel, biasSlot: 2 };
    const units = transposed ? dims[1]! * groups : dims[0]!;
    if (node.input[2]) {
      const b = storedWeight(model, node, 2, 'bias B');
      const bd = tensorDims(b.tensor);
      if (bd.length !== 1 || bd[0] !== units) refuse(`${node.opType} "${label}": bias "${b.name}" has shape [${bd.join(', ')}], expected [${units}]`);
      layer.bias = { weight: b, node, input: 2, scale: 1, broadcast: false, axis: 0 };
    }
    return { layer, output: node.output[0]!, axis: 1, rank: dims.length, folded: [] };
  }
  return refuse(`${node.opType} "${label}" is not a layer`);
}

/** Output channels of a parsed producer. */
export function producerUnits(layer: GroupLayer): number {
  return layer.type === 'ConvTranspose' ? layer.dims[1]! * layer.groups : layer.dims[layer.axis]!;
}

/**
 * Parses `node` as a consumer of channels carried by its input `idx` on `axis` (rank `rank`, `blk` entries per
 * channel starting at entry `offset`); `units` is the group's width.
 */
export function parseConsumer(model: OnnxModel, node: NodeProto, idx: number, cv: { axis: number; rank: number; blk: number; offset: number }, units: number): GroupLayer {
  const label = nodeLabel(node);
  if (idx !== 0) refuse(`the group's channels feed input ${idx} (not the data input) of ${node.opType} "${label}"`);
  const base = { node, weightInput: 1, blk: cv.blk, offset: cv.offset, start: 0, input: node.input[0]! };
  const width = cv.offset + units * cv.blk;
  if (node.opType === 'Gemm') {
    if (cv.rank !== 2) refuse(`Gemm "${label}" input has rank ${cv.rank}`);
    const transA = attrInt(node, 'transA', 0) === 1;
    if (cv.axis !== (transA ? 0 : 1)) refuse(`Gemm "${label}" (transA=${transA ? 1 : 0}) contracts over axis ${transA ? 0 : 1}, but the channels are on axis ${cv.axis}`);
    const weight = storedWeight(model, node, 1, 'weight B');
    const dims = tensorDims(weight.tensor);
    const transB = attrInt(node, 'transB', 0) === 1;
    const alpha = attrFloat(node, 'alpha', 1);
    if (alpha === 0 || !Number.isFinite(alpha)) refuse(`Gemm "${label}": alpha = ${alpha}`);
    const axis = transB ? 1 : 0;
    if (dims.length !== 2 || dims[axis]! < width) refuse(`Gemm "${label}": weight B has shape [${dims.join(', ')}], expected at least ${width} inputs`);
    return { ...base, type: 'Gemm', weight, dims, axis, groups: 1, scale: alpha, length: dims[1 - axis]! * cv.blk, kernel: [] };
  }
  if (node.opType === 'MatMul') {
    if (resolveWeight(model, node.input[0] ?? '')) refuse(`MatMul "${label}" multiplies a stored tensor by the channels`);
    if (!resolveWeight(model, node.input[1] ?? '')) refuse(`MatMul "${label}" multiplies two computed tensors (attention); its channels cannot grow`);
    if (cv.axis !== cv.rank - 1) refuse(`MatMul "${label}" contracts over the last axis, but the channels are on axis ${cv.axis} of ${cv.rank}`);
    const weight = storedWeight(model, node, 1, 'weight');
    const dims = tensorDims(weight.tensor);
    if (dims.length !== 2 || dims[0]! < width) refuse(`MatMul "${label}": weight has shape [${dims.join(', ')}], expected [≥${width}, n]`);
    return { ...base, type: 'MatMul', weight, dims, axis: 0, groups: 1, scale: 1, length: dims[1]! * cv.blk, kernel: [] };
  }
  if (node.opType === 'Conv' || node.opType === 'ConvTranspose') {
    if (cv.axis !== 1 || cv.blk !== 1) refuse(`${node.opType} "${label}" does not read the channels on axis 1`);
    const weight = storedWeight(model, node, 1, 'weight W');
    const dims = tensorDims(weight.tensor);
    if (dims.length !== cv.rank) refuse(`${node.opType} "${label}": weight rank ${dims.length} does not match input rank ${cv.rank}`);
    const groups = attrInt(node, 'group', 1);
    const kernel = dims.slice(2);
    const transposed = node.opType === 'ConvTranspose';
    const inTotal = transposed ? dims[0]! : dims[1]! * groups;
    if (inTotal < width) refuse(`${node.opType} "${label}": weight [${dims.join(', ')}] reads ${inTotal} channels, fewer than the ${width} that reach it`);
    if (groups > 1 && (cv.offset !== 0 || inTotal !== units)) refuse(`grouped ${node.opType} "${label}" (group=${groups}) reads more channels than the group's (after a Concat); its conv groups would shift`);
    const outPerGroup = transposed ? dims[1]! : dims[0]! / groups;
    return { ...base, type: node.opType, weight, dims, axis: transposed ? 0 : 1, groups, scale: 1, length: outPerGroup * prod(kernel), kernel };
  }
  return refuse(`${node.opType} "${label}" is not a layer`);
}

/**
 * Flat index in a producer's weight (grown shape `dims`) of incoming entry `i` of the channel at (new) index `ch`.
 */
export function incomingFlat(layer: GroupLayer, dims: readonly number[], ch: number, i: number): number {
  switch (layer.type) {
    case 'Gemm':
      return layer.axis === 0 ? ch * dims[1]! + i : i * dims[1]! + ch;
    case 'MatMul':
      return i * dims[1]! + ch;
    case 'Conv': {
      const cin = dims[1]!;
      const taps = prod(dims.slice(2));
      const ci = i % cin;
      const tap = (i - ci) / cin;
      return (ch * cin + ci) * taps + tap;
    }
    case 'ConvTranspose': {
      const coutL = dims[1]!;
      const cinL = dims[0]! / layer.groups;
      const taps = prod(dims.slice(2));
      const g = Math.floor(ch / coutL);
      const ul = ch - g * coutL;
      const ci = i % cinL;
      const tap = (i - ci) / cinL;
      return ((g * cinL + ci) * coutL + ul) * taps + tap;
    }
  }
}

/**
 * Flat index in a consumer's weight (grown shape `dims`) of outgoing entry `r` of the channel at (new) index `ch`
 * within the group (the layer's offset is added here).
 */
export function outgoingFlat(layer: GroupLayer, dims: readonly number[], ch: number, r: number): number {
  switch (layer.type) {
    case 'Gemm':
    case 'MatMul': {
      // Outputs are decoded with the layer's own count (`length`), not `dims`: a layer that also produces the group
      // has already gained output rows when its input columns are added.
      const n = layer.length / layer.blk;
      const o = r % n;
      const p = (r - o) / n;
      const e = layer.offset + ch * layer.blk + p;
      return layer.axis === 0 ? e * dims[1]! + o : o * dims[1]! + e;
    }
    case 'Conv': {
      const cinL = dims[1]!;
      const taps = prod(dims.slice(2));
      const oL = dims[0]! / layer.groups;
      const outs = layer.length / taps;
      const c = layer.offset + ch;
      const g = Math.floor(c / cinL);
      const cl = c - g * cinL;
      const ol = r % outs;
      const tap = (r - ol) / outs;
      return ((g * oL + ol) * cinL + cl) * taps + tap;
    }
    case 'ConvTranspose': {
      const coutL = dims[1]!;
      const taps = prod(dims.slice(2));
      const outs = layer.length / taps;
      const ol = r % outs;
      const tap = (r - ol) / outs;
      return ((layer.offset + ch) * coutL + ol) * taps + tap;
    }
  }
}
