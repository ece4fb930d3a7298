/**
 * Growth sites of an ONNX model: pairs (current layer l, next layer l+1) connected by channel-wise ops whose new
 * channels can be kept exactly zero (or identity). {@link findSites} reports every candidate pair, growable or not,
 * with a precise reason; {@link growthSite} reads a growable site's weights into the core's framework-neutral
 * {@link GrowthSite}.
 *
 * Supported layer pairs: Gemm→Gemm (any transA/transB/alpha/beta), MatMul(+Add bias)→MatMul/Gemm,
 * Conv→Conv (group 1, 2-D), Conv→…→Flatten/Reshape→Gemm/MatMul.
 *
 * Weight layouts (core conventions: incoming `[units × fanIn]`, outgoing `[fanOut × units]`):
 * - Gemm weights are read as the *effective* weights `alpha·B` (and bias `beta·C`); new weights are divided by
 *   alpha/beta when written, so the strategies see the function the layer computes.
 * - Conv weights are ONNX OIHW. Incoming row m, column `(a_r·k1w + a_c)·m0 + c_in` = `W1[m, c_in, a_r, a_c]`.
 *   Outgoing row `(b_r·k2w + b_c)·m2 + c_out`, column m = `W2[c_out, m, b_r, b_c]`. This is the HWIO order of the
 *   core's conv statistics.
 * - Conv→Flatten→Dense: ONNX flattens NCHW in (c, h, w) order, so the dense weight's input row for channel c at
 *   position (h, w) is `c·H·W + h·W + w`. The site views the dense layer as a conv whose kernel covers the whole
 *   H×W map (core `flattenDenseGeometry`): outgoing row `(h·W + w)·n2 + o`, column c = effective weight of dense input
 *   row `c·H·W + h·W + w` to output o. New channels' H·W rows are appended at the end of the dense input axis.
 * @packageDocumentation
 */
import { Matrix, UnsupportedError, InvalidArgumentError, flattenDenseGeometry, makeConvPairGeometry, type ActivationInfo, type ConvPairGeometry, type GrowthSite } from '@gradmax/core';
import { TensorProto_DataType, type NodeProto } from 'onnx-buf';
import { attr, attrFloat, attrInt, attrInts, attrString, nodeLabel } from './attributes.js';
import type { OnnxModel, WeightRef } from './model.js';
import { inferShapes, resolveNodePads, type Shape } from './shapes.js';
import * as S from './scalar.js';
import { subgraphLayers } from './groups/find.js';
import type { GroupBias } from './groups/types.js';
import { FLOAT_TYPES, dataTypeName, tensorDims } from './tensor.js';

/** One op between the two layers of a site and what widening does to it. */
export interface BetweenOp {
  /** Node label. */
  node: string;
  /** ONNX op type. */
  opType: string;
  /** What happens to it when the site grows (e.g. `"identity channels"`, `"per-channel constant extended"`). */
  effect: string;
}

/** A candidate site (growable or not), as reported by {@link findSites} and `gradmax onnx inspect --json`. */
export interface OnnxSite {
  /** `"<current node>-><next node>"` (`"<current node>->?"` when no next layer was reached). */
  name: string;
  /** `"dense"` (Gemm/MatMul → Gemm/MatMul) or `"conv"` (Conv → Conv, Conv → … → Flatten → Gemm/MatMul). */
  kind: 'dense' | 'conv';
  /** Op chain, e.g. `"Conv->BatchNormalization->Relu->Conv"`. */
  pattern: string;
  /** Whether {@link widen} can grow it. */
  growable: boolean;
  /** Why it is not growable (absent when growable). */
  reason?: string;
  /** The layer that gains units. */
  current: string;
  /** The layer that consumes them. */
  next?: string;
  /** Current number of units (output channels / columns of the current layer). */
  units?: number;
  /** Length of a unit's incoming weight vector. */
  fanIn?: number;
  /** Length of a unit's outgoing weight vector. */
  fanOut?: number;
  /** Element type of the weights (`"FLOAT"`, `"FLOAT16"`, `"DOUBLE"`). */
  dataType?: string;
  /** Shape of the current layer's weight. */
  currentWeightShape?: number[];
  /** Shape of the next layer's weight. */
  nextWeightShape?: number[];
  /** Ops between the two layers. */
  between: BetweenOp[];
  /** Composite activation seen by a new unit (f(0), f'(0)). */
  activation?: ActivationInfo;
  /**
   * True when the conv geometry describes the new units exactly (no pooling/padding/resampling between the layers),
   * so conv growth-matrix statistics computed with it are exact. Weights-only strategies do not depend on it.
   */
  exactGeometry?: boolean;
  /** Extra remarks. */
  notes: string[];
}

/** How a layer's weight is laid out (internal plan, exported for the widener). */
export interface LayerPlan {
  /** The layer's node. */
  node: NodeProto;
  /** Its op type. */
  type: 'Gemm' | 'MatMul' | 'Conv';
  /** Its weight tensor. */
  weight: WeightRef;
  /** Input index of the weight. */
  weightInput: number;
  /** Axis of the weight indexing units (current layer) or input features (next layer). */
  axis: number;
  /** Gemm alpha (1 otherwise). */
  scale: number;
  /** Weight shape. */
  dims: number[];
}

/** Bias of the current layer (the same description as a group producer's bias). */
export type BiasPlan = GroupBias;

/** A per-channel tensor of an in-between op that must be extended. */
export interface ParamPlan {
  /** The in-between node. */
  node: NodeProto;
  /** Input index of the tensor. */
  input: number;
  /** The tensor. */
  weight: WeightRef;
  /** Axis indexing channels. */
  axis: number;
  /** Entries per unit along `axis` (H·W after a flatten, else 1). */
  blk: number;
  /** Value of new channels: 0, 1, BatchNorm variance 1−ε, depthwise centre delta, PRelu slope 0.25 (unless copied from sourceUnits). */
  fill: 'zero' | 'one' | 'bnvar' | 'delta' | 'prelu';
  /** BatchNorm epsilon (fill `bnvar`). */
  eps?: number;
}

/** Internal plan of a growable site. */
export interface SitePlan {
  /** Current layer. */
  l1: LayerPlan;
  /** Next layer. */
  l2: LayerPlan;
  /** Current layer's bias, if any. */
  bias?: BiasPlan;
  /** Where a bias can be added when the current layer has none (`undefined` for MatMul). */
  biasSlot?: number;
  /** Current units. */
  units: number;
  /** Incoming fan-in. */
  fanIn: number;
  /** Outgoing fan-out. */
  fanOut: number;
  /** Entries per unit at the next layer's input (H·W for conv→flatten→dense, else 1). */
  blk: number;
  /** Flattened map [H, W] for conv→flatten→dense. */
  flatMap?: [number, number];
  /** Per-channel tensors to extend. */
  params: ParamPlan[];
  /** Depthwise convs whose `group` grows. */
  depthwise: NodeProto[];
  /** Reshape targets whose flattened size grows. */
  reshapes: { node: NodeProto; weight: WeightRef }[];
  /** Values whose channel axis grows: name, axis, entries per unit. */
  values: { name: string; axis: number; blk: number }[];
  /** Composite activation seen by new units. */
  activation: ActivationInfo;
  /** Conv geometry (conv sites). */
  geometry?: ConvPairGeometry;
  /** See {@link OnnxSite.exactGeometry}. */
  exactGeometry: boolean;
  /** Weight element type. */
  dataType: number;
}

const plans = new WeakMap<OnnxSite, SitePlan>();
const origins = new WeakMap<OnnxSite, { model: OnnxModel; revision: number }>();

/** True when `site` was found on `model` and the model has not been edited since. */
export function isCurrentSite(model: OnnxModel, site: OnnxSite): boolean {
  const o = origins.get(site);
  return Boolean(o && o.model === model && o.revision === model.revision);
}

/** The internal plan of a site returned by {@link findSites} (undefined when not growable). */
export function sitePlan(site: OnnxSite): SitePlan | undefined {
  return plans.get(site);
}

const QUANTIZED = new Set(['QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear', 'QLinearConv', 'QLinearMatMul', 'ConvInteger', 'MatMulInteger', 'QGemm', 'QLinearAdd', 'QLinearMul', 'QLinearSigmoid', 'QLinearLeakyRelu', 'QLinearAveragePool', 'QLinearGlobalAveragePool', 'QLinearConcat', 'DynamicQuantizeMatMul', 'MatMulIntegerToFloat']);
const LAYERS = new Set(['Gemm', 'MatMul', 'Conv']);
const NORMALISATIONS = new Set(['LayerNormalization', 'GroupNormalization', 'LpNormalization', 'MeanVarianceNormalization', 'Softmax', 'LogSoftmax', 'Hardmax', 'SimplifiedLayerNormalization', 'SkipLayerNormalization', 'RMSNormalization']);
const REDUCES = new Set(['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceL1', 'ReduceL2', 'ReduceProd', 'ReduceSumSquare', 'ReduceLogSumExp', 'ReduceLogSum']);
const POOLS = new Set(['MaxPool', 'AveragePool', 'LpPool', 'GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool']);
const SUBGRAPH_OPS = new Set(['If', 'Loop', 'Scan']);

class Refusal extends Error {}
const refuse = (msg: string): never => {
  throw new Refusal(msg);
};

interface RegionValue {
  axis: number;
  rank: number;
  blk: number;
  dual: S.Dual;
}

function isDefaultDomain(n: NodeProto): boolean {
  return n.domain === '' || n.domain === 'ai.onnx';
}

/**
 * Finds every candidate site: one entry per current layer (Gemm, MatMul, Conv — also quantized layers and layers
 * inside If/Loop/Scan subgraphs, which are reported as not growable). Never throws for unsupported structures:
 * they become entries with `growable: false` and a reason.
 */
export function findSites(model: OnnxModel): OnnxSite[] {
  const shapes = inferShapes(model);
  const sites: OnnxSite[] = [];
  const names = new Map<string, number>();
  const push = (site: OnnxSite) => {
    const seen = names.get(site.name) ?? 0;
    names.set(site.name, seen + 1);
    if (seen) site.name = `${site.name}#${seen + 1}`;
    sites.push(site);
  };
  for (const node of model.graph.node) {
    if (QUANTIZED.has(node.opType)) {
      push({ name: `${nodeLabel(node)}->?`, kind: node.opType.includes('Conv') ? 'conv' : 'dense', pattern: node.opType, growable: false, reason: `${node.opType} "${nodeLabel(node)}" is a quantized op; quantized layers cannot be widened`, current: nodeLabel(node), between: [], notes: [] });
      continue;
    }
    if (SUBGRAPH_OPS.has(node.opType)) {
      for (const inner of subgraphLayers(node)) {
        push({ name: `${nodeLabel(inner)}->?`, kind: inner.opType === 'Conv' ? 'conv' : 'dense', pattern: inner.opType, growable: false, reason: `${inner.opType} "${nodeLabel(inner)}" is inside a subgraph of ${node.opType} "${nodeLabel(node)}"; subgraphs are not rewritten`, current: nodeLabel(inner), between: [], notes: [] });
      }
      continue;
    }
    if (!isDefaultDomain(node) || !LAYERS.has(node.opType)) continue;
    push(analyseSite(model, node, shapes));
  }
  for (const s of sites) origins.set(s, { model, revision: model.revision });
  return sites;
}

function isDepthwiseLike(model: OnnxModel, node: NodeProto): boolean {
  const group = attrInt(node, 'group', 1);
  if (group <= 1) return false;
  const w = model.weight(node.input[1] ?? '');
  if (!w) return false;
  try {
    const d = tensorDims(w.tensor);
    return d.length === 4 && d[1] === 1 && d[0] === group;
  } catch {
    return false;
  }
}

/** Finds a site by its name or by its current layer's node name. Throws {@link InvalidArgumentError} when unknown. */
export function findSite(model: OnnxModel, name: string, sites = findSites(model)): OnnxSite {
  const found = sites.find((s) => s.name === name) ?? sites.filter((s) => s.current === name).at(0);
  if (!found) {
    throw new InvalidArgumentError(`no site named "${name}" in ${model.label}; sites: ${sites.map((s) => s.name).join(', ') || '(none)'}`, { site: name, file: model.label });
  }
  return found;
}

function analyseSite(model: OnnxModel, l1: NodeProto, shapes: Map<string, Shape>): OnnxSite {
  const site: OnnxSite = {
    name: `${nodeLabel(l1)}->?`,
    kind: l1.opType === 'Conv' ? 'conv' : 'dense',
    pattern: l1.opType,
    growable: false,
    current: nodeLabel(l1),
    between: [],
    notes: [],
  };
  try {
    const plan = planSite(model, l1, shapes, site);
    site.growable = true;
    site.units = plan.units;
    site.fanIn = plan.fanIn;
    site.fanOut = plan.fanOut;
    site.activation = plan.activation;
    site.dataType = dataTypeName(plan.dataType);
    site.currentWeightShape = plan.l1.dims;
    site.nextWeightShape = plan.l2.dims;
    if (site.kind === 'conv') site.exactGeometry = plan.exactGeometry;
    if (plan.activation.f0 !== 0) {
      site.notes.push(`the in-between activation has f(0) = ${plan.activation.f0}: incoming-zero strategies (e.g. gradmax) would change the function here; use an outgoing-zero or copying strategy`);
    }
    plans.set(site, plan);
  } catch (e) {
    if (e instanceof Refusal) site.reason = e.message;
    else if (e instanceof Error) site.reason = `cannot analyse: ${e.message}`;
    else throw e;
  }
  return site;
}

function storedWeight(model: OnnxModel, node: NodeProto, input: number, what: string): WeightRef {
  const name = node.input[input];
  if (!name) refuse(`${node.opType} "${nodeLabel(node)}" has no ${what}`);
  const w = model.weight(name!);
  if (!w) {
    const p = model.producerOf(name!);
    if (p && QUANTIZED.has(p.opType)) refuse(`${what} "${name}" of ${node.opType} "${nodeLabel(node)}" comes from the quantized op ${p.opType} "${nodeLabel(p)}"`);
    refuse(`${what} "${name}" of ${node.opType} "${nodeLabel(node)}" is ${p ? `computed by ${p.opType} "${nodeLabel(p)}"` : 'a graph input'}, not a stored tensor`);
  }
  if (!FLOAT_TYPES.has(w!.tensor.dataType)) refuse(`${what} "${name}" of ${node.opType} "${nodeLabel(node)}" is ${dataTypeName(w!.tensor.dataType)}; only FLOAT, FLOAT16 and DOUBLE weights can be widened`);
  return w!;
}

function notStored(model: OnnxModel, name: string | undefined): boolean {
  return !name || !model.weight(name);
}

function planSite(model: OnnxModel, l1: NodeProto, shapes: Map<string, Shape>, site: OnnxSite): SitePlan {
  const label = nodeLabel(l1);
  const params: ParamPlan[] = [];
  const depthwise: NodeProto[] = [];
  const reshapes: SitePlan['reshapes'] = [];
  const values: SitePlan['values'] = [];
  let bias: BiasPlan | undefined;
  let biasSlot: number | undefined;
  let layer1: LayerPlan;
  let start: string;
  let rank: number;
  let fanIn: number;
  let units: number;
  let convInfo1: { kernel: [number, number]; stride: [number, number]; pads: number[]; inputSize?: [number, number]; inChannels: number } | undefined;

  if (l1.opType === 'Gemm') {
    if (!notStored(model, l1.input[0])) refuse(`Gemm "${label}": input A is a stored tensor; only layers Y = A·B with activations A and weights B are supported`);
    const w = storedWeight(model, l1, 1, 'weight B');
    const dims = tensorDims(w.tensor);
    if (dims.length !== 2) refuse(`Gemm "${label}": weight B has shape [${dims.join(', ')}], expected 2-D`);
    const transB = attrInt(l1, 'transB', 0) === 1;
    const alpha = attrFloat(l1, 'alpha', 1);
    if (alpha === 0 || !Number.isFinite(alpha)) refuse(`Gemm "${label}": alpha = ${alpha}`);
    layer1 = { node: l1, type: 'Gemm', weight: w, weightInput: 1, axis: transB ? 0 : 1, scale: alpha, dims };
    units = dims[transB ? 0 : 1]!;
    fanIn = dims[transB ? 1 : 0]!;
    biasSlot = 2;
    if (l1.input[2]) {
      const c = storedWeight(model, l1, 2, 'bias C');
      const cd = tensorDims(c.tensor);
      const beta = attrFloat(l1, 'beta', 1);
      const perUnit = cd.length >= 1 && cd[cd.length - 1] === units && cd.slice(0, -1).every((d) => d === 1);
      const single = cd.every((d) => d === 1);
      if (!perUnit && !single) refuse(`Gemm "${label}": bias C "${c.name}" has shape [${cd.join(', ')}], which varies over the batch axis; only per-unit or scalar biases are supported`);
      bias = { weight: c, node: l1, input: 2, scale: beta, broadcast: !perUnit || (units === 1 && single), axis: Math.max(0, cd.length - 1) };
    }
    start = l1.output[0]!;
    rank = 2;
  } else if (l1.opType === 'MatMul') {
    if (!notStored(model, l1.input[0])) refuse(`MatMul "${label}": input A is a stored tensor; only layers Y = X·W with a stored weight W are supported`);
    const w = storedWeight(model, l1, 1, 'weight');
    const dims = tensorDims(w.tensor);
    if (dims.length !== 2) refuse(`MatMul "${label}": weight has shape [${dims.join(', ')}], expected 2-D`);
    layer1 = { node: l1, type: 'MatMul', weight: w, weightInput: 1, axis: 1, scale: 1, dims };
    units = dims[1]!;
    fanIn = dims[0]!;
    const xs = shapes.get(l1.input[0]!);
    rank = xs ? xs.length : 2;
    if (rank < 2) refuse(`MatMul "${label}": input "${l1.input[0]}" has rank ${rank}`);
    start = l1.output[0]!;
    const consumers = model.consumersOf(start);
    const add = consumers[0];
    if (consumers.length === 1 && add && add.opType === 'Add' && isDefaultDomain(add) && !model.indexes.outputs.has(start)) {
      const other = add.input[0] === start ? 1 : 0;
      const ow = model.weight(add.input[other] ?? '');
      if (ow && FLOAT_TYPES.has(ow.tensor.dataType)) {
        const cd = tensorDims(ow.tensor);
        if (cd.length >= 1 && cd.length <= rank && cd[cd.length - 1] === units && cd.slice(0, -1).every((d) => d === 1)) {
          bias = { weight: ow, node: add, input: other, scale: 1, broadcast: false, axis: cd.length - 1 };
          values.push({ name: start, axis: rank - 1, blk: 1 });
          start = add.output[0]!;
          site.between.push({ node: nodeLabel(add), opType: 'Add', effect: 'bias of the current layer' });
        }
      }
    }
  } else {
    // Conv
    const w = storedWeight(model, l1, 1, 'weight W');
    const dims = tensorDims(w.tensor);
    const group = attrInt(l1, 'group', 1);
    if (group !== 1 && isDepthwiseLike(model, l1)) {
      refuse(`Conv "${label}" is a depthwise conv (group=${group}); it cannot be the grown layer, but it gains centre-delta channels when the conv before it grows`);
    }
    if (group !== 1) refuse(`Conv "${label}" is a grouped conv (group=${group}); grouped convs cannot be the grown layer`);
    if (dims.length !== 4) refuse(`Conv "${label}": weight has shape [${dims.join(', ')}]; only 2-D convolutions (OIHW weights) are supported`);
    const dil = attrInts(l1, 'dilations') ?? [1, 1];
    if (dil.some((d) => d !== 1)) refuse(`Conv "${label}" is dilated (dilations [${dil.join(', ')}]); conv growth geometry does not support dilation`);
    layer1 = { node: l1, type: 'Conv', weight: w, weightInput: 1, axis: 0, scale: 1, dims };
    units = dims[0]!;
    fanIn = dims[1]! * dims[2]! * dims[3]!;
    biasSlot = 2;
    if (l1.input[2]) {
      const b = storedWeight(model, l1, 2, 'bias B');
      const bd = tensorDims(b.tensor);
      if (bd.length !== 1 || bd[0] !== units) refuse(`Conv "${label}": bias "${b.name}" has shape [${bd.join(', ')}], expected [${units}]`);
      bias = { weight: b, node: l1, input: 2, scale: 1, broadcast: false, axis: 0 };
    }
    const xs = shapes.get(l1.input[0]!);
    const kernel: [number, number] = [dims[2]!, dims[3]!];
    const strides = attrInts(l1, 'strides') ?? [1, 1];
    const inputSize = xs && typeof xs[2] === 'number' && typeof xs[3] === 'number' ? ([xs[2], xs[3]] as [number, number]) : undefined;
    const pads = resolveNodePads(l1, inputSize ? [inputSize[0], inputSize[1]] : [undefined, undefined], kernel, strides, [1, 1]);
    convInfo1 = { kernel, stride: [strides[0]!, strides[1]!], pads: pads ?? [], inputSize, inChannels: dims[1]! };
    if (!pads) refuse(`Conv "${label}": auto_pad needs the input's spatial size, which is unknown (add value_info or static input shapes)`);
    start = l1.output[0]!;
    rank = 4;
  }
  const dataType = layer1.weight.tensor.dataType;

  // Walk the region of values derived from the current layer's output.
  const region = new Map<string, RegionValue>();
  region.set(start, { axis: l1.opType === 'Conv' ? 1 : rank - 1, rank, blk: 1, dual: { v: 0, d: 1 } });
  const startIdx = model.graph.node.indexOf(bias && bias.node !== l1 ? bias.node : l1);
  let next: { node: NodeProto; value: string } | undefined;
  const chain: string[] = [l1.opType];
  let exact = true;
  let flatMap: [number, number] | undefined;
  const checkOutputs = (name: string) => {
    if (model.indexes.outputs.has(name)) refuse(`value "${name}" between the layers is a graph output; widening would change the model's outputs`);
  };
  if (model.indexes.outputs.has(start) && !model.consumersOf(start).length) {
    refuse(`the output "${start}" of ${l1.opType} "${label}" is a graph output (the last layer): no next layer absorbs new units`);
  }
  checkOutputs(start);
  for (let i = startIdx + 1; i < model.graph.node.length; i++) {
    const node = model.graph.node[i]!;
    const regionInputs = node.input.map((n, idx) => ({ n, idx })).filter((x) => x.n && region.has(x.n));
    const captured = !regionInputs.length && SUBGRAPH_OPS.has(node.opType) && [...region.keys()].some((v) => model.consumersOf(v).includes(node));
    if (captured) refuse(`value between the layers is used inside a subgraph of ${node.opType} "${nodeLabel(node)}"`);
    if (!regionInputs.length) continue;
    const nl = nodeLabel(node);
    if (next) refuse(`fan-out: the widened channels reach both ${next.node.opType} "${nodeLabel(next.node)}" and ${node.opType} "${nl}"; a consumer that cannot widen follows the current layer`);
    if (QUANTIZED.has(node.opType)) refuse(`${node.opType} "${nl}" is a quantized op on the path between the layers`);
    if (!isDefaultDomain(node)) refuse(`${node.opType} "${nl}" (domain "${node.domain}") is not known to keep new channels at zero`);
    if (SUBGRAPH_OPS.has(node.opType)) refuse(`value between the layers is used inside a subgraph of ${node.opType} "${nl}"`);
    const rv = region.get(regionInputs[0]!.n)!;
    // Next layer?
    if ((node.opType === 'Gemm' || node.opType === 'MatMul' || (node.opType === 'Conv' && !isDepthwiseLike(model, node))) && regionInputs.length === 1) {
      if (regionInputs[0]!.idx !== 0) refuse(`the widened channels feed input ${regionInputs[0]!.idx} (the weight) of ${node.opType} "${nl}"`);
      next = { node, value: regionInputs[0]!.n };
      continue;
    }
    const outs = node.output.filter((o) => o);
    const out = outs[0]!;
    const extraOutputs = node.output.slice(1).filter((o) => o && (model.consumersOf(o).length || model.indexes.outputs.has(o)));
    if (extraOutputs.length) refuse(`${node.opType} "${nl}": its extra output "${extraOutputs[0]}" is used; only the main output may follow the widened channels`);
    const attrF = (name: string, fb: number) => attrFloat(node, name, fb);
    const constScalarOrPerChannel = (idx: number, neutral: number, fill: ParamPlan['fill']): number => {
      // Returns the value a new channel sees; registers per-channel params for extension.
      const w = model.weight(node.input[idx]!);
      if (!w) refuse(`${node.opType} "${nl}" combines the widened channels with "${node.input[idx]}", which comes from outside the site (e.g. a residual connection); the other branch cannot widen`);
      const cd = tensorDims(w!.tensor);
      const outRank = Math.max(rv.rank, cd.length);
      const ca = rv.axis + (outRank - rv.rank) - (outRank - cd.length);
      const width = units * rv.blk;
      if (ca >= 0 && cd[ca] !== 1) {
        if (cd[ca] !== width) refuse(`${node.opType} "${nl}": constant "${w!.name}" has shape [${cd.join(', ')}], which does not broadcast along the ${width} channels`);
        if (!FLOAT_TYPES.has(w!.tensor.dataType)) refuse(`${node.opType} "${nl}": constant "${w!.name}" is ${dataTypeName(w!.tensor.dataType)}`);
        params.push({ node, input: idx, weight: w!, axis: ca, blk: rv.blk, fill });
        return neutral;
      }
      const vals = model.readNumbers(w!.tensor);
      const first = vals[0] ?? 0;
      return vals.every((v) => v === first) ? first : NaN;
    };
    let dual: S.Dual | undefined;
    let outAxis = rv.axis;
    let outRank = rv.rank;
    let outBlk = rv.blk;
    let effect = 'activation';
    const op = node.opType;
    if (NORMALISATIONS.has(op)) refuse(`${op} "${nl}" normalises over channels; adding channels would change the existing ones`);
    if (op === 'InstanceNormalization') refuse(`InstanceNormalization "${nl}" is not supported between grown layers`);
    if (op === 'Concat') refuse(`Concat "${nl}" joins the widened channels with other tensors; it cannot widen`);
    if (op === 'Shape' && shapeReadsOnlyOtherDims(model, node, rv.axis, rv.rank)) {
      // e.g. x.view(x.size(0), -1): only the batch (or another non-channel) dim is read, which widening keeps
      site.between.push({ node: nl, opType: op, effect: 'reads non-channel dims only' });
      continue;
    }
    if (op === 'Shape' || op === 'Size') refuse(`${op} "${nl}" reads the shape of the widened tensor`);
    if (REDUCES.has(op)) {
      const axes = attrInts(node, 'axes') ?? (node.input[1] ? Array.from(model.readNumbers(model.weight(node.input[1])?.tensor ?? refuse(`${op} "${nl}": axes are computed at run time`))) : undefined);
      const norm = (axes ?? Array.from({ length: rv.rank }, (_, k) => k)).map((a) => (a < 0 ? a + rv.rank : a));
      if (norm.includes(rv.axis) || (!axes?.length && attrInt(node, 'noop_with_empty_axes', 0) === 0)) {
        refuse(`${op} "${nl}" reduces over the channel axis: a normalisation over channels (e.g. a decomposed LayerNorm: ReduceMean/Sub/Pow/Sqrt/Div) is not function-preserving when channels are added`);
      }
      if (rv.blk !== 1) refuse(`${op} "${nl}" after a flatten is not supported`);
      const keep = attrInt(node, 'keepdims', 1) === 1;
      if (!keep) {
        outAxis = rv.axis - norm.filter((a) => a < rv.axis).length;
        outRank = rv.rank - norm.length;
      }
      dual = rv.dual;
      effect = 'spatial reduction';
      exact = false;
    } else if (op === 'BatchNormalization') {
      if (regionInputs.length !== 1 || regionInputs[0]!.idx !== 0 || rv.axis !== 1) refuse(`BatchNormalization "${nl}" is not applied along the widened channel axis`);
      if (attrInt(node, 'training_mode', 0) !== 0) refuse(`BatchNormalization "${nl}" is in training mode`);
      const eps = attrF('epsilon', 1e-5);
      const fills: ParamPlan['fill'][] = ['one', 'zero', 'zero', 'bnvar'];
      for (let k = 1; k <= 4; k++) {
        const w = model.weight(node.input[k] ?? '');
        if (!w) refuse(`BatchNormalization "${nl}": parameter "${node.input[k]}" is not a stored tensor`);
        const cd = tensorDims(w!.tensor);
        if (cd.length !== 1 || cd[0] !== units * rv.blk) refuse(`BatchNormalization "${nl}": parameter "${w!.name}" has shape [${cd.join(', ')}], expected [${units * rv.blk}]`);
        params.push({ node, input: k, weight: w!, axis: 0, blk: rv.blk, fill: fills[k - 1]!, eps });
      }
      dual = S.div(rv.dual, S.constant(Math.sqrt(1 - eps + eps)));
      effect = 'identity channels (scale 1, bias 0, mean 0, var 1-eps)';
    } else if (op === 'Conv') {
      // depthwise
      if (regionInputs[0]!.idx !== 0 || rv.axis !== 1 || rv.blk !== 1) refuse(`depthwise Conv "${nl}" is not applied along the widened channel axis`);
      const w = model.weight(node.input[1] ?? '');
      if (!w || !FLOAT_TYPES.has(w.tensor.dataType)) refuse(`depthwise Conv "${nl}": weight is not a stored float tensor`);
      const wd = tensorDims(w!.tensor);
      if (wd[0] !== units) refuse(`Conv "${nl}" is a grouped conv (group=${attrInt(node, 'group', 1)}) whose channels do not match the ${units} widened channels`);
      params.push({ node, input: 1, weight: w!, axis: 0, blk: 1, fill: 'delta' });
      if (node.input[2]) {
        const b = model.weight(node.input[2]);
        if (!b) refuse(`depthwise Conv "${nl}": bias "${node.input[2]}" is not a stored tensor`);
        params.push({ node, input: 2, weight: b!, axis: 0, blk: 1, fill: 'zero' });
      }
      depthwise.push(node);
      dual = rv.dual;
      effect = 'depthwise: centre-delta kernel for new channels';
      const strides = attrInts(node, 'strides') ?? [1, 1];
      const xs = shapes.get(node.input[0]!);
      const pads = resolveNodePads(node, xs ? xs.slice(2) : [undefined, undefined], [wd[2]!, wd[3]!], strides, attrInts(node, 'dilations') ?? [1, 1]);
      const centre = [Math.floor((wd[2]! - 1) / 2), Math.floor((wd[3]! - 1) / 2)];
      if (!pads || strides.some((s) => s !== 1) || pads[0] !== centre[0] || pads[1] !== centre[1] || pads[2] !== wd[2]! - 1 - centre[0]! || pads[3] !== wd[3]! - 1 - centre[1]!) exact = false;
    } else if (POOLS.has(op)) {
      if (rv.axis !== 1 || rv.blk !== 1) refuse(`${op} "${nl}" is not applied along the widened channel axis`);
      dual = rv.dual;
      effect = 'pooling (per channel)';
      exact = false;
    } else if (op === 'Pad') {
      if (rv.blk !== 1) refuse(`Pad "${nl}" after a flatten is not supported`);
      const pads = attrInts(node, 'pads') ?? (node.input[1] ? Array.from(model.readNumbers(model.weight(node.input[1])?.tensor ?? refuse(`Pad "${nl}": pads are computed at run time`))) : undefined);
      if (!pads || pads.length !== 2 * rv.rank) refuse(`Pad "${nl}": pads must have ${2 * rv.rank} entries`);
      if (node.input[3]) refuse(`Pad "${nl}" uses the axes input, which is not supported`);
      if (pads![rv.axis] !== 0 || pads![rv.axis + rv.rank] !== 0) refuse(`Pad "${nl}" pads the channel axis`);
      const mode = attrString(node, 'mode', 'constant');
      let value = attrFloat(node, 'value', 0);
      if (node.input[2]) {
        const cw = model.weight(node.input[2]);
        if (!cw) refuse(`Pad "${nl}": constant_value is computed at run time`);
        value = model.readNumbers(cw!.tensor)[0] ?? 0;
      }
      dual = mode === 'constant' && value !== 0 ? { v: NaN, d: NaN } : rv.dual;
      effect = 'padding (per channel)';
      exact = false;
    } else if (op === 'Flatten' || op === 'Reshape') {
      if (rv.rank === 2 && rv.axis === 1 && op === 'Flatten' && attrInt(node, 'axis', 1) === 1) {
        dual = rv.dual;
        effect = 'no-op flatten';
      } else {
        if (rv.rank !== 4 || rv.axis !== 1 || rv.blk !== 1) refuse(`${op} "${nl}" does not flatten an NCHW map with the widened channels on axis 1`);
        const xs = shapes.get(regionInputs[0]!.n);
        const h = xs?.[2];
        const wdt = xs?.[3];
        if (typeof h !== 'number' || typeof wdt !== 'number') refuse(`${op} "${nl}": spatial size of "${regionInputs[0]!.n}" is unknown (add value_info or static input shapes)`);
        if (op === 'Flatten') {
          if (attrInt(node, 'axis', 1) !== 1) refuse(`Flatten "${nl}" uses axis ${attrInt(node, 'axis', 1)}; only axis 1 keeps the batch axis apart`);
        } else {
          if (regionInputs[0]!.idx !== 0) refuse(`Reshape "${nl}": the widened tensor is its shape input`);
          const sw = model.weight(node.input[1] ?? '');
          const target = sw ? Array.from(model.readNumbers(sw.tensor)) : dynamicTarget(model, node.input[1] ?? '', regionInputs[0]!.n);
          if (!target) refuse(`Reshape "${nl}": target shape is computed at run time`);
          const flat = units * (h as number) * (wdt as number);
          if (target!.length !== 2 || !(target![0] === 0 || target![0] === -1 || target![0] === xs?.[0]) || !(target![1] === -1 || target![1] === flat) || (target![0] === -1 && target![1] === -1)) {
            refuse(`Reshape "${nl}" to [${target!.join(', ')}] does not flatten (C, H, W) into one axis`);
          }
          if (target![1] === flat) {
            if (!sw) refuse(`Reshape "${nl}": computed target with a fixed flattened size`);
            reshapes.push({ node, weight: sw! });
          }
        }
        outRank = 2;
        outAxis = 1;
        outBlk = (h as number) * (wdt as number);
        flatMap = [h as number, wdt as number];
        dual = rv.dual;
        effect = `flatten (c, h, w): ${outBlk} entries per channel`;
      }
    } else if (op === 'Transpose') {
      if (rv.blk !== 1) refuse(`Transpose "${nl}" after a flatten is not supported`);
      const perm = attrInts(node, 'perm') ?? Array.from({ length: rv.rank }, (_, k) => rv.rank - 1 - k);
      outAxis = perm.indexOf(rv.axis);
      dual = rv.dual;
      effect = 'moves the channel axis';
    } else if (op === 'Squeeze' || op === 'Unsqueeze') {
      const axes = attrInts(node, 'axes') ?? (node.input[1] ? Array.from(model.readNumbers(model.weight(node.input[1])?.tensor ?? refuse(`${op} "${nl}": axes are computed at run time`))) : undefined);
      if (!axes) refuse(`${op} "${nl}" without axes is not supported`);
      if (op === 'Squeeze') {
        const norm = axes!.map((a) => (a < 0 ? a + rv.rank : a));
        if (norm.includes(rv.axis)) refuse(`Squeeze "${nl}" removes the channel axis`);
        outAxis = rv.axis - norm.filter((a) => a < rv.axis).length;
        outRank = rv.rank - norm.length;
      } else {
        outRank = rv.rank + axes!.length;
        const norm = axes!.map((a) => (a < 0 ? a + outRank : a)).sort((a, b) => a - b);
        outAxis = rv.axis;
        for (const a of norm) if (a <= outAxis) outAxis++;
      }
      dual = rv.dual;
      effect = 'reshapes around the channel axis';
    } else if (op === 'Clip') {
      let lo = -Infinity;
      let hi = Infinity;
      if ((model.opsetVersion('') ?? 13) < 11) {
        lo = attrF('min', -3.4028234663852886e38);
        hi = attrF('max', 3.4028234663852886e38);
      } else {
        for (const [k, set] of [[1, (v: number) => (lo = v)], [2, (v: number) => (hi = v)]] as const) {
          if (!node.input[k]) continue;
          if (region.has(node.input[k]!)) refuse(`Clip "${nl}": bound depends on the widened channels`);
          const w = model.weight(node.input[k]!);
          if (!w) refuse(`Clip "${nl}": bound "${node.input[k]}" is computed at run time`);
          const v = model.readNumbers(w!.tensor);
          if (v.length !== 1) refuse(`Clip "${nl}": bound "${w!.name}" is not a scalar`);
          set(v[0]!);
        }
      }
      if (regionInputs[0]!.idx !== 0) refuse(`Clip "${nl}": the widened channels are a bound`);
      dual = S.clip(rv.dual, lo, hi);
    } else if (op === 'Dropout') {
      if (node.input[2]) {
        const tm = model.weight(node.input[2]);
        if (!tm || model.readNumbers(tm.tensor)[0] !== 0) refuse(`Dropout "${nl}": training_mode is not a constant false`);
      }
      dual = rv.dual;
      effect = 'identity (inference)';
    } else if (op === 'PRelu') {
      if (regionInputs.length !== 1 || regionInputs[0]!.idx !== 0) refuse(`PRelu "${nl}": slope depends on the widened channels`);
      const slope = constScalarOrPerChannel(1, 0.25, 'prelu');
      dual = S.leaky(rv.dual, slope);
    } else if (['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min'].includes(op)) {
      if (node.input.length !== 2) refuse(`${op} "${nl}" with ${node.input.length} inputs is not supported`);
      if (regionInputs.length === 2) {
        const a = region.get(node.input[0]!)!;
        const b = region.get(node.input[1]!)!;
        if (a.rank !== b.rank || a.axis !== b.axis || a.blk !== b.blk) refuse(`${op} "${nl}" combines two differently shaped views of the widened channels`);
        const f = { Add: S.add, Sub: S.sub, Mul: S.mul, Div: S.div } as Record<string, ((x: S.Dual, y: S.Dual) => S.Dual) | undefined>;
        if (!f[op]) refuse(`${op} "${nl}" of two widened tensors is not supported`);
        dual = f[op]!(a.dual, b.dual);
      } else {
        const ri = regionInputs[0]!.idx;
        const ci = 1 - ri;
        if (op === 'Max' || op === 'Min' || op === 'Pow') {
          const w = model.weight(node.input[ci]!);
          if (!w) refuse(`${op} "${nl}" combines the widened channels with "${node.input[ci]}", which comes from outside the site`);
          const v = model.readNumbers(w!.tensor);
          const first = v[0] ?? 0;
          if (!v.every((x) => x === first)) refuse(`${op} "${nl}": only scalar constants are supported`);
          if (op === 'Pow' && ri !== 0) refuse(`Pow "${nl}": the widened channels are the exponent`);
          dual = op === 'Max' ? (rv.dual.v >= first ? rv.dual : S.constant(first)) : op === 'Min' ? (rv.dual.v <= first ? rv.dual : S.constant(first)) : S.apply(rv.dual, (x) => x ** first, (x) => first * x ** (first - 1));
        } else {
          const neutral = op === 'Add' || op === 'Sub' ? 0 : 1;
          const c = S.constant(constScalarOrPerChannel(ci, neutral, neutral === 0 ? 'zero' : 'one'));
          const x = rv.dual;
          dual = op === 'Add' ? S.add(x, c) : op === 'Sub' ? (ri === 0 ? S.sub(x, c) : S.sub(c, x)) : op === 'Mul' ? S.mul(x, c) : ri === 0 ? S.div(x, c) : S.div(c, x);
          const w = model.weight(node.input[ci]!)!;
          const cd = tensorDims(w.tensor);
          outRank = Math.max(rv.rank, cd.length);
          outAxis = rv.axis + (outRank - rv.rank);
          effect = params.at(-1)?.node === node ? 'per-channel constant extended' : 'scalar constant';
        }
      }
    } else {
      const a = S.unaryOp(op, rv.dual, attrF);
      if (!a || regionInputs.length !== 1 || regionInputs[0]!.idx !== 0) refuse(`${op} "${nl}" is not known to keep new channels at zero (unsupported op between layers)`);
      if (node.input.length > 1 && op !== 'Dropout') refuse(`${op} "${nl}" with extra inputs is not supported`);
      dual = a;
    }
    for (const o of outs) checkOutputs(o);
    region.set(out, { axis: outAxis, rank: outRank, blk: outBlk, dual: dual! });
    values.push({ name: out, axis: outAxis, blk: outBlk });
    site.between.push({ node: nl, opType: op, effect });
    chain.push(op);
  }
  // Every consumer of a value between the layers must have been visited (guards against graphs that are not
  // topologically sorted, where a consumer could sit before the current layer).
  for (const v of region.keys()) {
    for (const c of model.consumersOf(v)) {
      const idx = model.graph.node.indexOf(c);
      if (idx >= 0 && idx <= startIdx) refuse(`${c.opType} "${nodeLabel(c)}" reads "${v}" but comes before the current layer: the graph is not topologically sorted`);
    }
  }
  if (!next) {
    const outsReached = [...region.keys()].filter((v) => model.indexes.outputs.has(v));
    refuse(outsReached.length ? `value "${outsReached[0]}" is a graph output; no next layer absorbs new units` : `no next Gemm/MatMul/Conv layer consumes the output of ${l1.opType} "${label}"`);
  }
  const rvNext = region.get(next!.value)!;
  const l2 = next!.node;
  const l2label = nodeLabel(l2);
  site.name = `${label}->${l2label}`;
  site.next = l2label;
  chain.push(l2.opType);
  site.pattern = chain.join('->');
  values.unshift({ name: start, axis: region.get(start)!.axis, blk: 1 });
  // Dead-end region values (consumed by nothing) are harmless; region values with other consumers were refused above.
  let layer2: LayerPlan;
  let fanOut: number;
  const blk = rvNext.blk;
  const width = units * blk;
  if (l2.opType === 'Gemm') {
    if (rvNext.rank !== 2) refuse(`Gemm "${l2label}" input has rank ${rvNext.rank}`);
    const transA = attrInt(l2, 'transA', 0) === 1;
    if (rvNext.axis !== (transA ? 0 : 1)) refuse(`Gemm "${l2label}" (transA=${transA ? 1 : 0}) contracts over axis ${transA ? 0 : 1}, but the widened channels are on axis ${rvNext.axis}`);
    const w = storedWeight(model, l2, 1, 'weight B');
    const dims = tensorDims(w.tensor);
    const transB = attrInt(l2, 'transB', 0) === 1;
    const alpha = attrFloat(l2, 'alpha', 1);
    if (alpha === 0 || !Number.isFinite(alpha)) refuse(`Gemm "${l2label}": alpha = ${alpha}`);
    if (dims.length !== 2 || dims[transB ? 1 : 0] !== width) refuse(`Gemm "${l2label}": weight B has shape [${dims.join(', ')}], expected ${width} inputs`);
    layer2 = { node: l2, type: 'Gemm', weight: w, weightInput: 1, axis: transB ? 1 : 0, scale: alpha, dims };
    fanOut = dims[transB ? 0 : 1]! * blk;
  } else if (l2.opType === 'MatMul') {
    if (rvNext.axis !== rvNext.rank - 1) refuse(`MatMul "${l2label}" contracts over the last axis, but the widened channels are on axis ${rvNext.axis}`);
    const w = storedWeight(model, l2, 1, 'weight');
    const dims = tensorDims(w.tensor);
    if (dims.length !== 2 || dims[0] !== width) refuse(`MatMul "${l2label}": weight has shape [${dims.join(', ')}], expected [${width}, n]`);
    layer2 = { node: l2, type: 'MatMul', weight: w, weightInput: 1, axis: 0, scale: 1, dims };
    fanOut = dims[1]! * blk;
  } else {
    if (rvNext.rank !== 4 || rvNext.axis !== 1 || blk !== 1) refuse(`Conv "${l2label}" does not read the widened channels on axis 1 of an NCHW map`);
    const group = attrInt(l2, 'group', 1);
    if (group !== 1) refuse(`next layer Conv "${l2label}" is a grouped conv (group=${group})`);
    const dil = attrInts(l2, 'dilations') ?? [1, 1];
    if (dil.some((d) => d !== 1)) refuse(`next layer Conv "${l2label}" is dilated (dilations [${dil.join(', ')}])`);
    const w = storedWeight(model, l2, 1, 'weight W');
    const dims = tensorDims(w.tensor);
    if (dims.length !== 4 || dims[1] !== units) refuse(`Conv "${l2label}": weight has shape [${dims.join(', ')}], expected [m, ${units}, kh, kw]`);
    layer2 = { node: l2, type: 'Conv', weight: w, weightInput: 1, axis: 1, scale: 1, dims };
    fanOut = dims[0]! * dims[2]! * dims[3]!;
  }
  if (l1.opType !== 'Conv' && l2.opType === 'Conv') refuse(`a dense layer feeding a conv is not supported`);
  if (layer2.weight.tensor.dataType !== dataType) {
    refuse(`weights of the two layers have different types (${dataTypeName(dataType)} and ${dataTypeName(layer2.weight.tensor.dataType)})`);
  }
  const f0 = rvNext.dual.v;
  const activation: ActivationInfo = { name: chain.slice(1, -1).filter((o) => !['Flatten', 'Reshape', 'Identity', 'Dropout', 'Transpose', 'Squeeze', 'Unsqueeze'].includes(o)).join('+') || 'identity', f0: Number.isNaN(f0) ? NaN : f0, df0: rvNext.dual.d };
  let geometry: ConvPairGeometry | undefined;
  if (l1.opType === 'Conv') {
    const c1 = convInfo1!;
    if (!c1.inputSize) refuse(`Conv "${label}": spatial size of input "${l1.input[0]}" is unknown (add value_info or static input shapes)`);
    const pad1 = { top: c1.pads[0]!, left: c1.pads[1]!, bottom: c1.pads[2]!, right: c1.pads[3]! };
    const midSize: [number, number] = [
      Math.floor((c1.inputSize![0] + pad1.top + pad1.bottom - c1.kernel[0]) / c1.stride[0]) + 1,
      Math.floor((c1.inputSize![1] + pad1.left + pad1.right - c1.kernel[1]) / c1.stride[1]) + 1,
    ];
    const common = { name: site.name, inChannels: c1.inChannels, midChannels: units, inputSize: c1.inputSize!, kernel1: c1.kernel, stride1: c1.stride, padding1: pad1 };
    try {
      if (l2.opType === 'Conv') {
        const k2: [number, number] = [layer2.dims[2]!, layer2.dims[3]!];
        const s2 = attrInts(l2, 'strides') ?? [1, 1];
        const xs = shapes.get(next!.value);
        const l2Input: [number, number] | undefined = xs && typeof xs[2] === 'number' && typeof xs[3] === 'number' ? [xs[2], xs[3]] : undefined;
        const p2 = resolveNodePads(l2, l2Input ?? [undefined, undefined], k2, s2, [1, 1]);
        if (!p2) refuse(`Conv "${l2label}": auto_pad needs the spatial size of "${next!.value}", which is unknown`);
        if (!l2Input || l2Input[0] !== midSize[0] || l2Input[1] !== midSize[1]) exact = false;
        geometry = makeConvPairGeometry({ ...common, outChannels: layer2.dims[0]!, kernel2: k2, stride2: [s2[0]!, s2[1]!], padding2: { top: p2![0]!, left: p2![1]!, bottom: p2![2]!, right: p2![3]! } });
      } else {
        const map = flatMap ?? [1, 1];
        if (map[0] !== midSize[0] || map[1] !== midSize[1]) exact = false;
        // Exact: the dense layer is a conv whose kernel covers the whole map. Otherwise (pooling before the
        // flatten) the dense layer is viewed as a valid conv with the flattened map's size as kernel.
        geometry = exact
          ? flattenDenseGeometry({ name: site.name, inChannels: c1.inChannels, midChannels: units, outUnits: fanOut / blk, inputSize: c1.inputSize!, kernel1: c1.kernel, stride1: c1.stride, padding1: pad1 })
          : makeConvPairGeometry({ ...common, outChannels: fanOut / blk, kernel2: map, stride2: 1, padding2: 'valid' });
      }
    } catch (e) {
      if (e instanceof Refusal) throw e;
      refuse(`conv geometry: ${(e as Error).message}`);
    }
  } else if (blk !== 1) {
    refuse('internal: dense site with a flattened map');
  }
  return {
    l1: layer1,
    l2: layer2,
    bias,
    biasSlot,
    units,
    fanIn,
    fanOut,
    blk,
    flatMap,
    params,
    depthwise,
    reshapes,
    values,
    activation,
    geometry,
    exactGeometry: exact,
    dataType,
  };
}

/** True when a Shape node's output only feeds Gathers of constant indices that avoid the channel axis. */
function shapeReadsOnlyOtherDims(model: OnnxModel, shape: NodeProto, axis: number, rank: number): boolean {
  const start = attrInt(shape, 'start', 0);
  const end = attr(shape, 'end') ? attrInt(shape, 'end', rank) : rank;
  const lo = start < 0 ? start + rank : start;
  const hi = end < 0 ? end + rank : Math.min(end, rank);
  if (axis < lo || axis >= hi) return true; // the channel axis is not even read
  const out = shape.output[0];
  if (!out || model.indexes.outputs.has(out)) return false;
  const users = model.consumersOf(out);
  if (!users.length) return true;
  return users.every((g) => {
    if (g.opType !== 'Gather' || g.input[0] !== out || attrInt(g, 'axis', 0) !== 0) return false;
    const idx = model.weight(g.input[1] ?? '');
    if (!idx) return false;
    const values = Array.from(model.readNumbers(idx.tensor)).map((v) => (v < 0 ? v + (hi - lo) : v) + lo);
    return values.every((v) => v !== axis);
  });
}

/**
 * Resolves a Reshape target computed as Concat(axis 0) of constants and Unsqueeze(Gather(Shape(x), i)) parts, the
 * pattern of `x.view(x.size(0), -1)`. Dims copied from the reshaped value itself become 0 ("copy"). Undefined when
 * the pattern does not match.
 */
function dynamicTarget(model: OnnxModel, name: string, input: string): number[] | undefined {
  const concat = model.producerOf(name);
  if (!concat || concat.opType !== 'Concat' || attrInt(concat, 'axis', 0) !== 0) return undefined;
  const out: number[] = [];
  for (const part of concat.input) {
    const w = model.weight(part);
    if (w) {
      out.push(...Array.from(model.readNumbers(w.tensor)));
      continue;
    }
    let p = model.producerOf(part);
    if (p?.opType === 'Unsqueeze') p = model.producerOf(p.input[0] ?? '');
    if (!p || p.opType !== 'Gather') return undefined;
    const shape = model.producerOf(p.input[0] ?? '');
    const idx = model.weight(p.input[1] ?? '');
    if (!shape || shape.opType !== 'Shape' || shape.input[0] !== input || !idx || attrInt(shape, 'start', 0) !== 0) return undefined;
    const values = Array.from(model.readNumbers(idx.tensor));
    if (values.length !== 1) return undefined;
    if (values[0] !== out.length) return undefined; // only "copy the same dim" is understood
    out.push(0);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Reading a site's weights

/** Flat index in the current layer's weight (of shape `dims`) of unit `u`, fan-in position `i`. */
export function incomingIndex(plan: SitePlan, dims: readonly number[], u: number, i: number): number {
  const l1 = plan.l1;
  if (l1.type === 'Conv') {
    const [, c, kh, kw] = dims as [number, number, number, number];
    const ci = i % c;
    const tap = (i - ci) / c;
    const ac = tap % kw;
    const ar = (tap - ac) / kw;
    return ((u * c + ci) * kh + ar) * kw + ac;
  }
  return l1.axis === 0 ? u * dims[1]! + i : i * dims[1]! + u;
}

/** Flat index in the next layer's weight (of shape `dims`) of fan-out position `r`, unit `u`. */
export function outgoingIndex(plan: SitePlan, dims: readonly number[], r: number, u: number): number {
  const l2 = plan.l2;
  if (l2.type === 'Conv') {
    const [m2, c, kh, kw] = dims as [number, number, number, number];
    const o = r % m2;
    const tap = (r - o) / m2;
    const bc = tap % kw;
    const br = (tap - bc) / kw;
    return ((o * c + u) * kh + br) * kw + bc;
  }
  // dense (possibly after a flatten): fan-out r = p·n2 + o; weight input row u·blk + p
  const n2 = plan.fanOut / plan.blk;
  const o = r % n2;
  const p = (r - o) / n2;
  const row = u * plan.blk + p;
  return l2.axis === 0 ? row * dims[1]! + o : o * dims[1]! + row;
}

/**
 * The core {@link GrowthSite} of a growable site: current weights read from the model in the core's layouts
 * (see the module documentation). Throws {@link UnsupportedError} with the site's reason when it is not growable.
 */
export function growthSite(model: OnnxModel, site: OnnxSite): GrowthSite {
  const lazy = lazyGrowthSite(model, site);
  const eager: GrowthSite = {
    name: lazy.name,
    kind: lazy.kind,
    units: lazy.units,
    fanIn: lazy.fanIn,
    fanOut: lazy.fanOut,
    incoming: lazy.incoming,
    outgoing: lazy.outgoing,
    activation: lazy.activation,
  };
  if (lazy.incomingBias) eager.incomingBias = lazy.incomingBias;
  if (lazy.conv) eager.conv = lazy.conv;
  return eager;
}

/**
 * The same {@link GrowthSite} as `growthSite(model, site)`, except that `incoming`, `outgoing` and `incomingBias` are
 * getters that build their Float64 copies on first access (then cache them). A strategy that never reads a weight
 * matrix never pays for its copy (8 bytes per element, 4× an FP16 layer). The weights are captured when this is
 * called (views of the current tensor bytes, no copy), so the getters return them even after the model is widened.
 */
export function lazyGrowthSite(model: OnnxModel, site: OnnxSite): GrowthSite {
  const plan = plans.get(site);
  if (!plan || !site.growable) throw new UnsupportedError(`site "${site.name}" is not growable: ${site.reason ?? 'unknown reason'}`, { site: site.name, file: model.label });
  const { units, fanIn, fanOut } = plan;
  const w1 = model.viewTensor(plan.l1.weight.tensor);
  const w2 = model.viewTensor(plan.l2.weight.tensor);
  const b = plan.bias ? model.viewTensor(plan.bias.weight.tensor) : undefined;
  const readIncoming = (): Matrix => {
    const incoming = Matrix.zeros(units, fanIn);
    const inc = incoming.data;
    // weight [fanIn, units] (dense, axis 1): a tiled transpose; otherwise element by element
    if (plan.l1.type !== 'Conv' && plan.l1.axis !== 0) w1.toFloat64Transposed(fanIn, units, inc);
    else {
      const v1 = w1.reader();
      if (plan.l1.type !== 'Conv') for (let i = 0; i < inc.length; i++) inc[i] = v1(i);
      else for (let u = 0; u < units; u++) for (let i = 0; i < fanIn; i++) inc[u * fanIn + i] = v1(incomingIndex(plan, w1.dims, u, i));
    }
    if (plan.l1.scale !== 1) for (let i = 0; i < inc.length; i++) inc[i] = plan.l1.scale * inc[i]!;
    return incoming;
  };
  const readOutgoing = (): Matrix => {
    const outgoing = Matrix.zeros(fanOut, units);
    const out = outgoing.data;
    const dense = plan.l2.type !== 'Conv' && plan.blk === 1;
    // weight [units, fanOut] (dense, axis 0): a tiled transpose; otherwise element by element
    if (dense && plan.l2.axis !== 1) w2.toFloat64Transposed(units, fanOut, out);
    else {
      const v2 = w2.reader();
      if (dense) for (let i = 0; i < out.length; i++) out[i] = v2(i);
      else for (let r = 0; r < fanOut; r++) for (let u = 0; u < units; u++) out[r * units + u] = v2(outgoingIndex(plan, w2.dims, r, u));
    }
    if (plan.l2.scale !== 1) for (let i = 0; i < out.length; i++) out[i] = plan.l2.scale * out[i]!;
    return outgoing;
  };
  let incoming: Matrix | undefined;
  let outgoing: Matrix | undefined;
  let incomingBias: Float64Array | undefined;
  const gs = { name: site.name, kind: site.kind, units, fanIn, fanOut } as GrowthSite;
  Object.defineProperty(gs, 'incoming', { enumerable: true, get: () => (incoming ??= readIncoming()) });
  Object.defineProperty(gs, 'outgoing', { enumerable: true, get: () => (outgoing ??= readOutgoing()) });
  gs.activation = { ...plan.activation };
  if (b && plan.bias) {
    const bias = plan.bias;
    Object.defineProperty(gs, 'incomingBias', {
      enumerable: true,
      get: () => {
        if (!incomingBias) {
          incomingBias = new Float64Array(units);
          for (let u = 0; u < units; u++) incomingBias[u] = bias.scale * b.get(bias.broadcast ? 0 : u);
        }
        return incomingBias;
      },
    });
  }
  if (plan.geometry) gs.conv = plan.geometry;
  return gs;
}

/** True when `dataType` is FLOAT16 (used for tolerances). */
export function isHalf(dataType: number | undefined): boolean {
  return dataType === TensorProto_DataType.FLOAT16;
}
