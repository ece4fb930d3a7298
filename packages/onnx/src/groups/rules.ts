/**
 * Per-op channel rules: what each op does to the channels of a group that reach it. One rule per op type (the
 * `VJP_RULES` pattern of the probe); {@link CHANNEL_RULES} is the table, {@link TRACE_RULES} the table that follows a
 * joined operand back to the layers that produce it.
 * @packageDocumentation
 */
import type { NodeProto } from 'onnx-buf';
import { attr, attrFloat, attrInt, attrInts, attrString, nodeLabel } from '../attributes.js';
import type { OnnxModel, WeightRef } from '../model.js';
import type { Shape } from '../shapes.js';
import { FLOAT_TYPES, dataTypeName, tensorDims } from '../tensor.js';
import { isDepthwise, refuse } from './layers.js';
import { addLin, constantLin, divLin, inexactLin, mapLin, maxLin, minLin, mulLin, subLin, unaryLin, unknownLin, type Lin } from './lin.js';
import { resolveNodePads } from '../shapes.js';
import { composeMap, poolOutputSize, poolTieIndex, sameMap, strideMap, type AxisMap, type SpatialMaps } from './spatial-maps.js';
import type { ParamFill } from './types.js';

/** Channels of the group carried by one value. */
export interface ChannelValue {
  /** Axis holding the channels. */
  axis: number;
  /** Rank of the value. */
  rank: number;
  /** Entries per channel along the axis (after a flatten). */
  blk: number;
  /** Entry offset of the group's channel 0 along the axis (after a Concat). */
  offset: number;
  /** What a new channel carries. */
  lin: Lin;
  /** Spatial subsampling of the new channel relative to its producers' output (strided centre-delta depthwise convs). */
  stride?: number[];
  /** The new channel has been averaged over space (GlobalAveragePool, ReduceMean over every spatial axis). */
  mean?: boolean;
  /**
   * Per main producer, the spatial index map from this value's positions to the producer's output positions (MaxPool
   * tie routing, composed with strided depthwise convs after it); see `spatial-maps.ts`. When set, `stride` is unset
   * (folded into the maps).
   */
  maps?: SpatialMaps;
}

/** True when two views of the channels have the same spatial relation to the producers. */
export function sameSpatial(a: ChannelValue, b: ChannelValue): boolean {
  return (a.stride ?? []).join() === (b.stride ?? []).join() && Boolean(a.mean) === Boolean(b.mean) && !a.maps && !b.maps;
}

/** Static spatial sizes (axes 2…) of `value`, or undefined when any is unknown. */
function spatialSizes(ctx: ChannelContext, value: string, rank: number): number[] | undefined {
  const s = ctx.shape(value);
  if (!s || s.length !== rank) return undefined;
  const out = s.slice(2);
  return out.every((d): d is number => typeof d === 'number') ? out : undefined;
}

/** Producer p's map in `cv` (a `stride` expanded over the value's sizes); undefined = identity; null = unknown size. */
function mapOf(cv: ChannelValue, p: number, sizes: number[] | undefined): AxisMap | undefined | null {
  if (cv.maps) return cv.maps[p];
  if (cv.stride) return sizes ? strideMap(sizes, cv.stride) : null;
  return undefined;
}

/**
 * The spatial relation of a join of two views that both depend on the producers, merged per producer: a producer
 * reaching the join through both operands must reach it with the same map (else the statistics are inexact). Returns
 * the merged fields, or a reason.
 */
function mergeSpatial(ctx: ChannelContext, node: NodeProto, a: Hit, b: Hit): Pick<ChannelValue, 'stride' | 'mean' | 'maps'> | string {
  const why = `${node.opType} "${label(node)}" combines views of the channels at different spatial resolutions`;
  if (!a.cv.maps && !b.cv.maps) return sameSpatial(a.cv, b.cv) ? { stride: a.cv.stride, mean: a.cv.mean } : why;
  if (Boolean(a.cv.mean) !== Boolean(b.cv.mean)) return why;
  const sa = spatialSizes(ctx, node.input[a.idx]!, a.cv.rank);
  const sb = spatialSizes(ctx, node.input[b.idx]!, b.cv.rank);
  const maps: SpatialMaps = [];
  for (let p = 0; p < ctx.directions; p++) {
    const ua = a.cv.lin.d[p] !== 0;
    const ub = b.cv.lin.d[p] !== 0;
    const ma = ua ? mapOf(a.cv, p, sa) : undefined;
    const mb = ub ? mapOf(b.cv, p, sb) : undefined;
    if (ma === null || mb === null) return `${why} (the spatial size of an operand is unknown)`;
    if (ua && ub && !sameMap(ma, mb, sa ?? sb)) return `${why}: producer ${p + 1} of the group reaches it through both operands with different spatial maps`;
    maps.push(ua ? ma : mb);
  }
  return { maps, ...(a.cv.mean ? { mean: true } : {}) };
}

/** One input of a node that carries the group's channels. */
export interface Hit {
  /** Input index. */
  idx: number;
  /** The channels it carries. */
  cv: ChannelValue;
}

/** What a rule can do. */
export interface ChannelContext {
  readonly model: OnnxModel;
  /** Channels of the group. */
  readonly units: number;
  /** Number of main producers (length of `Lin.d`). */
  readonly directions: number;
  /** Static shape of a value, when known. */
  shape(value: string): Shape;
  /** The stored tensor named `value` (also behind Identity nodes), or undefined when computed. */
  weight(value: string): WeightRef | undefined;
  /** Constant integer/float contents of a stored tensor input, or undefined when computed. */
  constant(value: string | undefined): number[] | undefined;
  /** The output `value` of `node` carries the channels. */
  emit(node: NodeProto, value: string, cv: ChannelValue, effect: string): void;
  /** `node` reads the channels at input `idx`: it gets the new units' outgoing weights. */
  consumer(node: NodeProto, idx: number, cv: ChannelValue): void;
  /** A per-channel tensor of `node` (input `input`, channels on `axis`) that must be extended. */
  param(node: NodeProto, input: number, weight: WeightRef, axis: number, cv: ChannelValue, fill: ParamFill, eps?: number): void;
  /** A depthwise conv whose `group` attribute counts the channels. */
  depthwise(node: NodeProto): void;
  /** Entry `index` of the constant `input` of `node` holds the size of the channel axis (grows by k·blk). */
  target(node: NodeProto, input: number, index: number, blk: number): void;
  /** `value` (an operand of `node`) must carry the same channels: pull the layers producing it into the group. */
  join(node: NodeProto, value: string, role: 'main' | 'gate'): never;
  /** Statistics through `node` are not a scalar multiple of the pair statistics. */
  inexact(node: NodeProto, why: string): void;
  /** Default-domain opset. */
  readonly opset: number;
}

/** A channel rule. Refuses (throws) when the op cannot carry new channels exactly. */
export type ChannelRule = (ctx: ChannelContext, node: NodeProto, hits: Hit[]) => void;

const label = nodeLabel;
const norm = (a: number, rank: number) => (a < 0 ? a + rank : a);
const fattr = (node: NodeProto) => (name: string, fb: number) => attrFloat(node, name, fb);

function single(node: NodeProto, hits: Hit[], what = 'data input'): ChannelValue {
  if (hits.length !== 1 || hits[0]!.idx !== 0) refuse(`${node.opType} "${label(node)}": the channels reach input ${hits.map((h) => h.idx).join(', ')}, not only its ${what}`);
  return hits[0]!.cv;
}

function withLin(cv: ChannelValue, lin: Lin): ChannelValue {
  return { ...cv, lin };
}

/** Ops that move or select spatial positions break a max-pooled new channel's maps: its statistics become inexact. */
function movesMappedSpace(ctx: ChannelContext, node: NodeProto, cv: ChannelValue, what: string): void {
  if (cv.maps) ctx.inexact(node, `${node.opType} "${label(node)}" ${what} of a max-pooled new channel`);
}

function axesOf(ctx: ChannelContext, node: NodeProto, input: number): number[] | undefined {
  const a = attrInts(node, 'axes');
  if (a) return a;
  if (!node.input[input]) return undefined;
  const c = ctx.constant(node.input[input]);
  if (!c) refuse(`${node.opType} "${label(node)}": axes are computed at run time`);
  return c;
}

/** Elementwise unary ops known to the scalar evaluator. */
const unary: ChannelRule = (ctx, node, hits) => {
  const cv = single(node, hits);
  if (node.input.slice(1).some((i) => i)) refuse(`${node.opType} "${label(node)}" with extra inputs is not supported`);
  const lin = unaryLin(node.opType, cv.lin, fattr(node));
  if (!lin) refuse(`${node.opType} "${label(node)}" is not known to keep new channels at zero`);
  ctx.emit(node, node.output[0]!, withLin(cv, lin), 'activation');
};

const identity: ChannelRule = (ctx, node, hits) => {
  const cv = single(node, hits);
  ctx.emit(node, node.output[0]!, cv, 'identity');
};

const dropout: ChannelRule = (ctx, node, hits) => {
  const cv = single(node, hits);
  if (node.input[2]) {
    // In training mode Dropout is the identity only with a constant ratio of 0.
    const tm = ctx.constant(node.input[2]);
    const ratio = node.input[1] ? ctx.constant(node.input[1]) : [0.5];
    if (!(tm && tm[0] === 0) && !(tm && ratio && ratio[0] === 0)) refuse(`Dropout "${label(node)}": training_mode is not a constant false (and the ratio is not a constant 0)`);
  }
  if (node.output[1] && ctx.model.consumersOf(node.output[1]).length) refuse(`Dropout "${label(node)}": its mask output is used`);
  ctx.emit(node, node.output[0]!, cv, 'identity (inference)');
};

const cast: ChannelRule = (ctx, node, hits) => {
  const cv = single(node, hits);
  const to = attrInt(node, 'to', 1);
  if (!FLOAT_TYPES.has(to)) refuse(`Cast "${label(node)}" casts the channels to ${dataTypeName(to)}`);
  ctx.emit(node, node.output[0]!, cv, 'cast');
};

const clip: ChannelRule = (ctx, node, hits) => {
  const cv = single(node, hits);
  let lo = -Infinity;
  let hi = Infinity;
  if (ctx.opset < 11) {
    lo = attrFloat(node, 'min', -3.4028234663852886e38);
    hi = attrFloat(node, 'max', 3.4028234663852886e38);
  } else {
    for (const k of [1, 2]) {
      if (!node.input[k]) continue;
      const v = ctx.constant(node.input[k]);
      if (!v || v.length !== 1) refuse(`Clip "${label(node)}": bound "${node.input[k]}" is not a stored scalar`);
      if (k === 1) lo = v[0]!;
      else hi = v[0]!;
    }
  }
  const lin = cv.lin.v < lo ? constantLin(lo, ctx.directions) : cv.lin.v > hi ? constantLin(hi, ctx.directions) : cv.lin;
  ctx.emit(node, node.output[0]!, withLin(cv, lin), 'activation');
};

/** Where a constant operand's axis lands relative to the channels. */
function constantAxis(cv: ChannelValue, cdims: number[]): { outRank: number; outAxis: number; ca: number } {
  const outRank = Math.max(cv.rank, cdims.length);
  const outAxis = cv.axis + (outRank - cv.rank);
  return { outRank, outAxis, ca: outAxis - (outRank - cdims.length) };
}

/** Elementwise ops on two carried values; `commutative` ones keep the channels as first operand (ties of Max/Min: a). */
const BINARY_LIN: Readonly<Record<string, { f: (a: Lin, b: Lin) => Lin; commutative: boolean }>> = {
  Add: { f: addLin, commutative: true },
  Sub: { f: subLin, commutative: false },
  Mul: { f: mulLin, commutative: true },
  Div: { f: divLin, commutative: false },
  Max: { f: maxLin, commutative: true },
  Min: { f: minLin, commutative: true },
};

/** Add, Sub, Mul, Div, Pow, Max, Min, PRelu: with a constant, with the group's own channels, or a join. */
const binary: ChannelRule = (ctx, node, hits) => {
  const op = node.opType;
  const n = ctx.directions;
  if (node.input.length !== 2) refuse(`${op} "${label(node)}" with ${node.input.length} inputs is not supported`);
  if (hits.length === 2) {
    const [a, b] = [hits[0]!.cv, hits[1]!.cv];
    if (a.rank !== b.rank || a.axis !== b.axis || a.blk !== b.blk || a.offset !== b.offset) refuse(`${op} "${label(node)}" combines two differently laid out views of the group's channels`);
    const both = a.lin.d.some((x) => x !== 0) && b.lin.d.some((x) => x !== 0);
    const spatial = both ? mergeSpatial(ctx, node, hits[0]!, hits[1]!) : undefined;
    if (typeof spatial === 'string') ctx.inexact(node, spatial);
    const rule = BINARY_LIN[op];
    if (!rule) refuse(`${op} "${label(node)}" of two tensors carrying the group's channels is not supported`);
    // The spatial relation to the producers is that of the operand that depends on them (a gate does not).
    const base = a.lin.d.some((x) => x !== 0) || !b.lin.d.some((x) => x !== 0) ? a : b;
    let joined = base;
    if (spatial && typeof spatial !== 'string' && spatial.maps) {
      const { stride: _stride, ...rest } = base;
      joined = { ...rest, maps: spatial.maps };
    }
    ctx.emit(node, node.output[0]!, withLin(joined, rule.f(a.lin, b.lin)), op === 'Add' || op === 'Sub' ? 'sum of the group\'s channels' : 'elementwise');
    return;
  }
  const { idx: ri, cv } = hits[0]!;
  const ci = 1 - ri;
  const other = node.input[ci]!;
  const w = ctx.weight(other);
  if (!w) {
    // A computed operand: if it broadcasts along the channel axis it is a per-position value, else it carries channels.
    const s = ctx.shape(other);
    const outRank = s ? Math.max(cv.rank, s.length) : cv.rank;
    const ca = s ? cv.axis + (outRank - cv.rank) - (outRank - s.length) : -1;
    const broadcast = s !== undefined && (ca < 0 || s[ca] === 1);
    if (!broadcast) {
      if (op === 'Pow' || op === 'PRelu') refuse(`${op} "${label(node)}": operand "${other}" is computed`);
      ctx.join(node, other, op === 'Mul' || op === 'Div' ? 'gate' : 'main');
    }
    if (op === 'Mul' || (op === 'Div' && ri === 0)) {
      ctx.inexact(node, `${op} "${label(node)}" scales the channels by a computed per-position value`);
      ctx.emit(node, node.output[0]!, { ...cv, rank: outRank, axis: cv.axis + (outRank - cv.rank), lin: cv.lin.v === 0 ? inexactLin(cv.lin) : unknownLin(n) }, 'scaled by a computed map');
      return;
    }
    refuse(`${op} "${label(node)}" combines the channels with "${other}", a computed value that is the same for every channel; new channels would not stay at zero`);
  }
  const cd = tensorDims(w.tensor);
  const { outRank, outAxis, ca } = constantAxis(cv, cd);
  let value: number;
  if (ca >= 0 && cd[ca] !== 1) {
    if (cd[ca]! < cv.offset + ctx.units * cv.blk) refuse(`${op} "${label(node)}": constant "${w.name}" has shape [${cd.join(', ')}], which does not cover the ${ctx.units} channels`);
    if (!FLOAT_TYPES.has(w.tensor.dataType)) refuse(`${op} "${label(node)}": constant "${w.name}" is ${dataTypeName(w.tensor.dataType)}`);
    const fill: ParamFill = op === 'PRelu' ? 'prelu' : op === 'Add' || op === 'Sub' || op === 'Max' || op === 'Min' ? 'zero' : 'one';
    if (op === 'Max' || op === 'Min' || op === 'Pow') refuse(`${op} "${label(node)}": per-channel constants are not supported`);
    ctx.param(node, ci, w, ca, { ...cv, axis: outAxis }, fill);
    value = op === 'PRelu' ? 0.25 : fill === 'zero' ? 0 : 1;
  } else {
    const vals = ctx.constant(other)!;
    const first = vals[0] ?? 0;
    if (!vals.every((x) => x === first)) {
      if (op !== 'Mul' && op !== 'Div') refuse(`${op} "${label(node)}": constant "${w.name}" varies along other axes, so new channels would not stay at zero`);
      ctx.inexact(node, `${op} "${label(node)}" scales by a constant that varies along other axes`);
      ctx.emit(node, node.output[0]!, { ...cv, rank: outRank, axis: outAxis, lin: cv.lin.v === 0 && ri === 0 ? inexactLin(cv.lin) : unknownLin(n) }, 'scaled by a constant map');
      return;
    }
    value = first;
  }
  const c = constantLin(value, n);
  const x = cv.lin;
  const rule = BINARY_LIN[op];
  let lin: Lin;
  if (rule) lin = rule.commutative || ri === 0 ? rule.f(x, c) : rule.f(c, x);
  else if (op === 'Pow') {
    if (ri !== 0) refuse(`Pow "${label(node)}": the channels are the exponent`);
    lin = mapLin(x, (t) => t ** value, (t) => (value === 1 ? 1 : value * t ** (value - 1)));
  } else if (op === 'PRelu') {
    if (ri !== 0) refuse(`PRelu "${label(node)}": the channels are the slope`);
    lin = x.v >= 0 ? x : mapLin(x, (t) => value * t, () => value);
  } else refuse(`${op} "${label(node)}" is not supported`);
  ctx.emit(node, node.output[0]!, { ...cv, rank: outRank, axis: outAxis, lin }, ca >= 0 && cd[ca] !== 1 ? 'per-channel constant extended' : 'scalar constant');
};

const batchNorm: ChannelRule = (ctx, node, hits) => {
  const cv = single(node, hits);
  if (cv.axis !== 1 || cv.blk !== 1) refuse(`BatchNormalization "${label(node)}" is not applied along the channel axis`);
  if (attrInt(node, 'training_mode', 0) !== 0) refuse(`BatchNormalization "${label(node)}" is in training mode`);
  if (node.output.slice(1).some((o) => o && ctx.model.consumersOf(o).length)) refuse(`BatchNormalization "${label(node)}": its running statistics outputs are used`);
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const fills: ParamFill[] = ['one', 'zero', 'zero', 'bnvar'];
  for (let k = 1; k <= 4; k++) {
    const w = ctx.weight(node.input[k] ?? '');
    if (!w) refuse(`BatchNormalization "${label(node)}": parameter "${node.input[k]}" is not a stored tensor`);
    ctx.param(node, k, w, 0, cv, fills[k - 1]!, eps);
  }
  // New channels: scale 1, bias 0, mean 0, variance 1 − ε, so y = x / sqrt(1 − ε + ε) = x.
  ctx.emit(node, node.output[0]!, cv, 'identity channels (scale 1, bias 0, mean 0, var 1−ε)');
};

const instanceNorm: ChannelRule = (ctx, node, hits) => {
  const cv = single(node, hits);
  if (cv.axis !== 1 || cv.blk !== 1) refuse(`InstanceNormalization "${label(node)}" is not applied along the channel axis`);
  for (const [k, fill] of [[1, 'one'], [2, 'zero']] as const) {
    const w = ctx.weight(node.input[k] ?? '');
    if (!w) refuse(`InstanceNormalization "${label(node)}": parameter "${node.input[k]}" is not a stored tensor`);
    ctx.param(node, k, w, 0, cv, fill);
  }
  // A new channel that is constant over space normalises to its bias (0); its gradient is not a scalar multiple.
  ctx.inexact(node, `InstanceNormalization "${label(node)}" normalises each new channel over space`);
  ctx.emit(node, node.output[0]!, withLin(cv, cv.lin.v === 0 ? inexactLin(cv.lin) : unknownLin(ctx.directions)), 'new channels: scale 1, bias 0 (0 maps to 0)');
};

const convPassThrough: ChannelRule = (ctx, node, hits) => {
  // Only depthwise convs reach this rule (other convs are consumers).
  const cv = single(node, hits);
  if (cv.axis !== 1 || cv.blk !== 1) refuse(`depthwise Conv "${label(node)}" does not read the channels on axis 1`);
  const w = ctx.weight(node.input[1] ?? '');
  if (!w || !FLOAT_TYPES.has(w.tensor.dataType)) refuse(`depthwise Conv "${label(node)}": weight is not a stored float tensor`);
  ctx.param(node, 1, w, 0, cv, 'delta');
  if (node.input[2]) {
    const b = ctx.weight(node.input[2]);
    if (!b) refuse(`depthwise Conv "${label(node)}": bias "${node.input[2]}" is not a stored tensor`);
    ctx.param(node, 2, b, 0, cv, 'zero');
  }
  ctx.depthwise(node);
  const dims = tensorDims(w.tensor);
  const strides = attrInts(node, 'strides') ?? [];
  const pads = attrInts(node, 'pads') ?? [];
  const n = dims.length - 2;
  const dil = attrInts(node, 'dilations') ?? [];
  // The centre-delta kernel reads the input at s·y + c·dil − pad: with pad = c·dil the new channel is the input subsampled by s.
  const centred = attrString(node, 'auto_pad', 'NOTSET') === 'NOTSET' && dims.slice(2).every((k, i) => pads[i] === Math.floor((k - 1) / 2) * (dil[i] ?? 1));
  if (!centred || cv.mean) ctx.inexact(node, `depthwise Conv "${label(node)}" is not centred on its kernel`);
  if (cv.maps) {
    // Behind a MaxPool the new channel carries explicit maps: compose the subsampling t → s·t into them.
    // The value's spatial sizes are the lengths of its maps (any active producer's).
    const sizes = cv.maps.find((m) => m)?.map((idx) => idx.length) ?? spatialSizes(ctx, node.input[0]!, cv.rank);
    const out = sizes?.map((size, i) => Math.floor((size + (pads[i] ?? 0) + (pads[i + n] ?? 0) - (dil[i] ?? 1) * (dims[2 + i]! - 1) - 1) / (strides[i] ?? 1)) + 1);
    const outer = sizes && out ? strideMap(out, strides.length ? strides : out.map(() => 1)) : undefined;
    if (!sizes || !outer || outer.some((idx, i) => idx.some((t) => t >= sizes[i]!))) {
      ctx.inexact(node, `depthwise Conv "${label(node)}" subsamples a max-pooled new channel and ${sizes ? 'reads past its end' : `the spatial size of "${node.input[0]}" is unknown`}`);
      ctx.emit(node, node.output[0]!, cv, 'depthwise: centre-delta kernel for new channels');
      return;
    }
    const inner = cv.maps;
    const maps = cv.lin.d.map((d, p) => (d !== 0 ? composeMap(inner[p], outer) : undefined));
    ctx.emit(node, node.output[0]!, { ...cv, maps }, `depthwise: centre-delta kernel for new channels (subsampled by ${strides.join('×') || '1'})`);
    return;
  }
  const sub = dims.slice(2).map((_, i) => (cv.stride?.[i] ?? 1) * (strides[i] ?? 1));
  ctx.emit(node, node.output[0]!, sub.some((v) => v !== 1) ? { ...cv, stride: sub } : cv, sub.some((v) => v !== 1) ? `depthwise: centre-delta kernel for new channels (subsampled by ${sub.join('×')})` : 'depthwise: centre-delta kernel for new channels');
};

const pool: ChannelRule = (ctx, node, hits) => {
  const cv = single(node, hits);
  if (cv.axis !== 1 || cv.blk !== 1) refuse(`${node.opType} "${label(node)}" is not applied along the channel axis`);
  if (node.output[1] && ctx.model.consumersOf(node.output[1]).length) refuse(`${node.opType} "${label(node)}": its Indices output is used`);
  // An AveragePool with one-element windows (torchvision's adaptive pool on a map of the target size) subsamples.
  const oneElement = node.opType === 'AveragePool' && (attrInts(node, 'kernel_shape') ?? []).every((k) => k === 1) && !(attrInts(node, 'pads') ?? []).some((p) => p !== 0) && attrString(node, 'auto_pad', 'NOTSET') !== 'SAME_UPPER' && attrString(node, 'auto_pad', 'NOTSET') !== 'SAME_LOWER';
  if (oneElement && !(attrInts(node, 'strides') ?? []).some((s) => s !== 1)) {
    ctx.emit(node, node.output[0]!, cv, 'one-element pooling (identity)');
    return;
  }
  if (node.opType === 'MaxPool' || node.opType === 'GlobalMaxPool' || oneElement) {
    const pooled = maxPoolMaps(ctx, node, cv);
    if (typeof pooled !== 'string') {
      ctx.emit(node, node.output[0]!, pooled, oneElement ? 'one-element pooling (subsampling)' : 'max pooling (per channel; a new channel ties: first element of each window)');
      return;
    }
    ctx.inexact(node, pooled);
  } else if (node.opType !== 'GlobalAveragePool' || cv.mean) ctx.inexact(node, `${node.opType} "${label(node)}" pools over space`);
  const avgPads = node.opType === 'AveragePool' && attrInt(node, 'count_include_pad', 0) === 1 && (attrInts(node, 'pads') ?? []).some((p) => p !== 0);
  const lin = node.opType.includes('Lp') ? (cv.lin.v === 0 ? inexactLin(cv.lin) : unknownLin(ctx.directions)) : avgPads && cv.lin.v !== 0 ? unknownLin(ctx.directions) : cv.lin;
  ctx.emit(node, node.output[0]!, node.opType === 'GlobalAveragePool' ? { ...cv, lin, mean: true } : withLin(cv, lin), 'pooling (per channel)');
};

/**
 * A MaxPool (or GlobalMaxPool) on a new channel that is constant (zero incoming weights): every window ties, and the
 * gradient autodiff takes routes each window to its first valid element, so the pooled channel reads the input at π(t)
 * per axis ({@link poolTieIndex}), composed into the value's maps. Returns the pooled view, or why it cannot be mapped.
 */
function maxPoolMaps(ctx: ChannelContext, node: NodeProto, cv: ChannelValue): ChannelValue | string {
  const what = `${node.opType} "${label(node)}" pools over space`;
  if (cv.mean) return `${what} after a spatial mean`;
  if (!Number.isFinite(cv.lin.v)) return `${what} and the new channel is not a known constant before it`;
  const input = node.input[0]!;
  const shape = ctx.shape(input);
  const sizes = shape?.slice(2);
  if (!shape || shape.length !== cv.rank || !sizes!.every((d) => typeof d === 'number')) {
    return `${what} and the spatial size of "${input}" is unknown ([${(sizes ?? []).map((d) => d ?? '?').join(', ')}]); the first-element map of its windows needs static sizes`;
  }
  const inSizes = sizes as number[];
  const n = inSizes.length;
  let pi: number[][];
  if (node.opType === 'GlobalMaxPool') pi = inSizes.map(() => [0]);
  else {
    const kernel = attrInts(node, 'kernel_shape');
    if (!kernel || kernel.length !== n) return `${what} with a kernel_shape that does not match its ${n} spatial axes`;
    const strides = attrInts(node, 'strides') ?? new Array<number>(n).fill(1);
    const dil = attrInts(node, 'dilations') ?? new Array<number>(n).fill(1);
    const pads = resolveNodePads(node, inSizes, kernel, strides, dil);
    if (!pads) return `${what} with pads that cannot be resolved`;
    const ceil = attrInt(node, 'ceil_mode', 0) === 1;
    pi = inSizes.map((size, i) => poolTieIndex(size, poolOutputSize(size, kernel[i]!, strides[i]!, pads[i]!, pads[i + n]!, dil[i]!, ceil), kernel[i]!, strides[i]!, pads[i]!, dil[i]!));
    if (pi.some((idx) => idx.includes(-1))) return `${what} with a window that holds no input element`;
  }
  const maps: SpatialMaps = cv.lin.d.map((d, p) => {
    if (d === 0) return undefined;
    const inner = cv.maps ? cv.maps[p] : cv.stride ? strideMap(inSizes, cv.stride) : undefined;
    return composeMap(inner, pi);
  });
  const { stride: _stride, ...rest } = cv;
  return { ...rest, maps };
}

const pad: ChannelRule = (ctx, node, hits) => {
  const cv = single(node, hits);
  if (node.input[3]) refuse(`Pad "${label(node)}" uses the axes input, which is not supported`);
  const pads = attrInts(node, 'pads') ?? ctx.constant(node.input[1]);
  if (!pads || pads.length !== 2 * cv.rank) refuse(`Pad "${label(node)}": pads must be constant with ${2 * cv.rank} entries`);
  if (pads[cv.axis] !== 0 || pads[cv.axis + cv.rank] !== 0) refuse(`Pad "${label(node)}" pads the channel axis`);
  if (pads.some((p) => p !== 0)) movesMappedSpace(ctx, node, cv, 'pads the positions');
  const mode = attrString(node, 'mode', 'constant');
  let value = attrFloat(node, 'value', 0);
  if (node.input[2]) {
    const c = ctx.constant(node.input[2]);
    if (!c) refuse(`Pad "${label(node)}": constant_value is computed at run time`);
    value = c[0] ?? 0;
  }
  const lin = mode === 'constant' && value !== cv.lin.v ? unknownLin(ctx.directions) : cv.lin;
  ctx.emit(node, node.output[0]!, withLin(cv, lin), 'padding (per channel)');
};

const resize: ChannelRule = (ctx, node, hits) => {
  const cv = single(node, hits);
  if (cv.blk !== 1) refuse(`${node.opType} "${label(node)}" after a flatten is not supported`);
  const scalesInput = node.opType === 'Upsample' || ctx.opset < 11 ? 1 : 2;
  const scales = node.opType === 'Upsample' && attr(node, 'scales') ? attr(node, 'scales')!.floats : node.input[scalesInput] ? ctx.constant(node.input[scalesInput]) : undefined;
  const sizesName = node.opType === 'Resize' && ctx.opset >= 11 ? node.input[3] : undefined;
  if (scales && scales.length) {
    if (scales[cv.axis] !== 1) refuse(`${node.opType} "${label(node)}" rescales the channel axis`);
  } else if (sizesName) {
    const sizes = ctx.constant(sizesName);
    if (!sizes) refuse(`${node.opType} "${label(node)}": output sizes are computed at run time`);
    ctx.target(node, 3, cv.axis, 1);
  } else if (node.input[scalesInput]) refuse(`${node.opType} "${label(node)}": scales are computed at run time`);
  ctx.inexact(node, `${node.opType} "${label(node)}" resamples space`);
  ctx.emit(node, node.output[0]!, cv, 'resampling (per channel)');
};

const transpose: ChannelRule = (ctx, node, hits) => {
  const cv = single(node, hits);
  const perm = attrInts(node, 'perm') ?? Array.from({ length: cv.rank }, (_, k) => cv.rank - 1 - k);
  const others = perm.filter((a) => a !== cv.axis);
  if (perm.some((a, i) => a !== i)) movesMappedSpace(ctx, node, cv, 'moves the spatial axes');
  if (others.some((a, i) => i > 0 && a < others[i - 1]!)) ctx.inexact(node, `Transpose "${label(node)}" reorders the axes other than the channels`);
  ctx.emit(node, node.output[0]!, { ...cv, axis: perm.indexOf(cv.axis) }, 'moves the channel axis');
};

const squeeze: ChannelRule = (ctx, node, hits) => {
  const cv = single(node, hits);
  const axes = axesOf(ctx, node, 1);
  if (!axes) refuse(`Squeeze "${label(node)}" without axes is not supported`);
  const ax = axes.map((a) => norm(a, cv.rank));
  if (ax.includes(cv.axis)) refuse(`Squeeze "${label(node)}" removes the channel axis`);
  movesMappedSpace(ctx, node, cv, 'changes the axes');
  ctx.emit(node, node.output[0]!, { ...cv, axis: cv.axis - ax.filter((a) => a < cv.axis).length, rank: cv.rank - ax.length }, 'reshapes around the channel axis');
};

const unsqueeze: ChannelRule = (ctx, node, hits) => {
  const cv = single(node, hits);
  const axes = axesOf(ctx, node, 1);
  if (!axes) refuse(`Unsqueeze "${label(node)}" without axes is not supported`);
  movesMappedSpace(ctx, node, cv, 'changes the axes');
  const rank = cv.rank + axes.length;
  let axis = cv.axis;
  for (const a of axes.map((x) => norm(x, rank)).sort((x, y) => x - y)) if (a <= axis) axis++;
  ctx.emit(node, node.output[0]!, { ...cv, axis, rank }, 'reshapes around the channel axis');
};

function staticDims(ctx: ChannelContext, node: NodeProto, value: string): (number | undefined)[] {
  const s = ctx.shape(value);
  if (!s) refuse(`${node.opType} "${label(node)}": the shape of "${value}" is unknown (add value_info or static input shapes)`);
  return s.map((d) => (typeof d === 'number' ? d : undefined));
}

function merged(ctx: ChannelContext, node: NodeProto, cv: ChannelValue, dims: (number | undefined)[], from: number, to: number): ChannelValue {
  // Merges axes [from, to) (containing the channel axis) of a value into one axis at position `from`.
  for (let a = from; a < cv.axis; a++) if (dims[a] !== 1) refuse(`${node.opType} "${label(node)}" merges axis ${a} (size ${dims[a] ?? '?'}) before the channel axis into it; channels would interleave`);
  let inner = 1;
  for (let a = cv.axis + 1; a < to; a++) {
    const d = dims[a];
    if (d === undefined) refuse(`${node.opType} "${label(node)}": size of axis ${a} of "${node.input[0]}" is unknown, needed to flatten the channels`);
    inner *= d;
  }
  return { ...cv, axis: from, blk: cv.blk * inner, offset: cv.offset * inner };
}

const flatten: ChannelRule = (ctx, node, hits) => {
  const cv = single(node, hits);
  const a = norm(attrInt(node, 'axis', 1), cv.rank);
  if (cv.axis < a) refuse(`Flatten "${label(node)}" (axis ${a}) merges the channel axis into the leading (batch) axis`);
  const dims = staticDims(ctx, node, node.input[0]!);
  const out = merged(ctx, node, cv, dims, a, cv.rank);
  ctx.emit(node, node.output[0]!, { ...out, axis: 1, rank: 2 }, out.blk === cv.blk ? 'no-op flatten' : `flatten: ${out.blk} entries per channel`);
};

const reshape: ChannelRule = (ctx, node, hits) => {
  const cv = single(node, hits);
  const dims = staticDims(ctx, node, node.input[0]!);
  const target = ctx.constant(node.input[1]) ?? copyTarget(ctx, node);
  if (!target) refuse(`Reshape "${label(node)}": target shape is computed at run time`);
  const allowZero = attrInt(node, 'allowzero', 0) === 1;
  // Leading axes must be kept as they are (0 = copy, -1 only for the batch axis, or the same size).
  for (let a = 0; a < cv.axis; a++) {
    const t = target[a];
    const same = (t === 0 && !allowZero) || (t !== undefined && t === dims[a]) || (t === -1 && a === 0);
    if (!same) refuse(`Reshape "${label(node)}" to [${target.join(', ')}] changes the axes before the channel axis`);
  }
  const t = target[cv.axis];
  if (t === undefined) refuse(`Reshape "${label(node)}" to [${target.join(', ')}] drops the channel axis`);
  const width = dims[cv.axis];
  if (t === 0 && !allowZero) {
    ctx.emit(node, node.output[0]!, { ...cv, rank: target.length }, 'keeps the channel axis');
    return;
  }
  // Find how many following axes are merged into the channel axis.
  let to = cv.axis + 1;
  let size = width;
  if (t !== -1) {
    if (size === undefined) refuse(`Reshape "${label(node)}": the size of the channel axis of "${node.input[0]}" is unknown`);
    while (size < t && to < cv.rank) {
      const d = dims[to++];
      if (d === undefined) refuse(`Reshape "${label(node)}": size of axis ${to - 1} is unknown`);
      size *= d;
    }
    if (size !== t) refuse(`Reshape "${label(node)}" to [${target.join(', ')}] splits the channel axis (size ${width}) — a channel shuffle or head split; channels cannot be traced`);
  } else {
    // -1 on the channel axis: everything after it is merged unless the later target dims say otherwise.
    const rest = target.slice(cv.axis + 1);
    if (rest.some((r) => r === -1 || r === 0)) refuse(`Reshape "${label(node)}" to [${target.join(', ')}]: ambiguous target`);
    let tail = rest.reduce((x, y) => x * y, 1);
    to = cv.rank;
    while (tail > 1 && to > cv.axis + 1) {
      const d = dims[to - 1];
      if (d === undefined || tail % d !== 0) refuse(`Reshape "${label(node)}" to [${target.join(', ')}] does not keep the channel axis whole`);
      tail /= d;
      to--;
    }
    if (tail !== 1) refuse(`Reshape "${label(node)}" to [${target.join(', ')}] splits the channel axis`);
  }
  for (let a = to; a < cv.rank; a++) {
    const k = cv.axis + 1 + (a - to);
    if (target[k] !== undefined && target[k] !== -1 && target[k] !== 0 && dims[a] !== undefined && target[k] !== dims[a]) refuse(`Reshape "${label(node)}" to [${target.join(', ')}] rearranges the axes after the channel axis`);
  }
  const out = merged(ctx, node, cv, dims, cv.axis, to);
  if (t !== -1 && ctx.weight(node.input[1] ?? '')) ctx.target(node, 1, cv.axis, out.blk);
  else if (t !== -1) refuse(`Reshape "${label(node)}": computed target with a fixed channel size`);
  ctx.emit(node, node.output[0]!, { ...out, rank: target.length }, out.blk === cv.blk ? 'keeps the channel axis' : `flatten: ${out.blk} entries per channel`);
};

/** Resolves a Reshape target built as Concat(constants, Unsqueeze(Gather(Shape(x), i))) copying x's own dims. */
function copyTarget(ctx: ChannelContext, node: NodeProto): number[] | undefined {
  const model = ctx.model;
  const concat = model.producerOf(node.input[1] ?? '');
  if (!concat || concat.opType !== 'Concat' || attrInt(concat, 'axis', 0) !== 0) return undefined;
  const out: number[] = [];
  for (const part of concat.input) {
    const c = ctx.constant(part);
    if (c) {
      out.push(...c);
      continue;
    }
    let p = model.producerOf(part);
    if (p?.opType === 'Unsqueeze') p = model.producerOf(p.input[0] ?? '');
    if (!p || p.opType !== 'Gather') return undefined;
    const shape = model.producerOf(p.input[0] ?? '');
    const idx = ctx.constant(p.input[1]);
    if (!shape || shape.opType !== 'Shape' || shape.input[0] !== node.input[0] || !idx || idx.length !== 1 || attrInt(shape, 'start', 0) !== 0 || idx[0] !== out.length) return undefined;
    out.push(0);
  }
  return out;
}

const reduce: ChannelRule = (ctx, node, hits) => {
  const cv = single(node, hits);
  const axes = axesOf(ctx, node, 1);
  const all = !axes || axes.length === 0;
  if (all && attrInt(node, 'noop_with_empty_axes', 0) === 1) {
    ctx.emit(node, node.output[0]!, cv, 'no-op reduction');
    return;
  }
  const ax = all ? Array.from({ length: cv.rank }, (_, k) => k) : axes.map((a) => norm(a, cv.rank));
  if (ax.includes(cv.axis)) refuse(`${node.opType} "${label(node)}" reduces over the channel axis: a normalisation over channels (e.g. a decomposed LayerNorm) is not function-preserving when channels are added`);
  if (cv.blk !== 1) refuse(`${node.opType} "${label(node)}" after a flatten is not supported`);
  const keep = attrInt(node, 'keepdims', 1) === 1;
  const op = node.opType;
  const lin = op === 'ReduceMean' || op === 'ReduceMax' || op === 'ReduceMin' ? cv.lin : op === 'ReduceSum' ? inexactLin(cv.lin) : cv.lin.v === 0 ? inexactLin(cv.lin) : unknownLin(ctx.directions);
  const spatialMean = op === 'ReduceMean' && cv.axis === 1 && !cv.mean && ax.length === cv.rank - 2 && ax.every((a) => a >= 2);
  if (!spatialMean) ctx.inexact(node, `${op} "${label(node)}" reduces over other axes`);
  ctx.emit(node, node.output[0]!, { ...cv, lin, axis: keep ? cv.axis : cv.axis - ax.filter((a) => a < cv.axis).length, rank: keep ? cv.rank : cv.rank - ax.length, ...(spatialMean ? { mean: true } : {}) }, 'reduction over other axes');
};

const concat: ChannelRule = (ctx, node, hits) => {
  if (hits.length !== 1) refuse(`Concat "${label(node)}" concatenates the group's channels more than once`);
  const { idx, cv } = hits[0]!;
  const axis = norm(attrInt(node, 'axis', 0), cv.rank);
  if (axis !== cv.axis) refuse(`Concat "${label(node)}" joins along axis ${axis}, not the channel axis ${cv.axis}; the other inputs would need the same channels`);
  let offset = cv.offset;
  for (let i = 0; i < idx; i++) {
    const s = ctx.shape(node.input[i]!);
    const d = s?.[axis];
    if (typeof d !== 'number') refuse(`Concat "${label(node)}": the channel count of input "${node.input[i]}" is unknown (add value_info or static shapes)`);
    offset += d;
  }
  ctx.emit(node, node.output[0]!, { ...cv, offset }, `channels inserted at offset ${offset}`);
};

const sliceLike: ChannelRule = (ctx, node, hits) => {
  const cv = single(node, hits);
  const op = node.opType;
  movesMappedSpace(ctx, node, cv, 'selects positions');
  if (op === 'Slice') {
    const starts = ctx.opset < 10 ? attrInts(node, 'starts') : ctx.constant(node.input[1]);
    const ends = ctx.opset < 10 ? attrInts(node, 'ends') : ctx.constant(node.input[2]);
    const axes = (ctx.opset < 10 ? attrInts(node, 'axes') : node.input[3] ? ctx.constant(node.input[3]) : undefined) ?? starts?.map((_, i) => i);
    if (!starts || !ends || !axes) refuse(`Slice "${label(node)}": starts/ends/axes are computed at run time`);
    const k = axes.map((a) => norm(a, cv.rank)).indexOf(cv.axis);
    if (k >= 0 && !(starts[k] === 0 && ends[k]! >= 2 ** 31 - 1)) refuse(`Slice "${label(node)}" selects channels (a channel split); the channels cannot be traced`);
    ctx.emit(node, node.output[0]!, cv, 'slices other axes');
    return;
  }
  if (op === 'Gather') {
    const a = norm(attrInt(node, 'axis', 0), cv.rank);
    if (a === cv.axis) refuse(`Gather "${label(node)}" selects channels`);
    const idx = ctx.shape(node.input[1]!);
    if (!idx) refuse(`Gather "${label(node)}": rank of the indices is unknown`);
    const rank = cv.rank - 1 + idx.length;
    ctx.emit(node, node.output[0]!, { ...cv, rank, axis: a < cv.axis ? cv.axis - 1 + idx.length : cv.axis }, 'gathers along another axis');
    return;
  }
  // Split
  const a = norm(attrInt(node, 'axis', 0), cv.rank);
  if (a === cv.axis) refuse(`Split "${label(node)}" splits the channel axis; the channels cannot be traced`);
  for (const o of node.output) if (o) ctx.emit(node, o, cv, 'split along another axis');
};

const shape: ChannelRule = (ctx, node, hits) => {
  const cv = single(node, hits);
  const model = ctx.model;
  const start = norm(attrInt(node, 'start', 0), cv.rank);
  const end = attr(node, 'end') ? Math.min(norm(attrInt(node, 'end', cv.rank), cv.rank), cv.rank) : cv.rank;
  if (cv.axis < start || cv.axis >= end) return; // the channel axis is not read
  const out = node.output[0]!;
  if (model.indexes.outputs.has(out)) refuse(`Shape "${label(node)}" of the channels is a graph output`);
  for (const g of model.consumersOf(out)) {
    if (g.opType !== 'Gather' || g.input[0] !== out || attrInt(g, 'axis', 0) !== 0) refuse(`Shape "${label(node)}" reads the channel count, used by ${g.opType} "${label(g)}"`);
    const idx = ctx.constant(g.input[1]);
    if (!idx) refuse(`Shape "${label(node)}" is indexed at run time by Gather "${label(g)}"`);
    if (idx.some((v) => (v < 0 ? v + (end - start) : v) + start === cv.axis)) refuse(`Shape "${label(node)}" reads the channel count (Gather "${label(g)}")`);
  }
};

const layer: ChannelRule = (ctx, node, hits) => {
  if (node.opType === 'Conv' && isDepthwise(ctx.model, node)) {
    convPassThrough(ctx, node, hits);
    return;
  }
  if (hits.length !== 1) refuse(`${node.opType} "${label(node)}" reads the group's channels on more than one input`);
  ctx.consumer(node, hits[0]!.idx, hits[0]!.cv);
};

const refuseWith = (why: string): ChannelRule => (_ctx, node) => refuse(`${node.opType} "${label(node)}" ${why}`);

const softmaxLike: ChannelRule = (_ctx, node, hits) => {
  const cv = hits[0]!.cv;
  const a = norm(attrInt(node, 'axis', -1), cv.rank);
  if (a === cv.axis) refuse(`${node.opType} "${label(node)}" normalises over the channel axis; adding channels would change the existing ones`);
  refuse(`${node.opType} "${label(node)}" normalises each channel along axis ${a}: a new channel of zeros becomes uniform, not zero`);
};

const normalisation: ChannelRule = (_ctx, node, hits) => {
  const cv = hits[0]!.cv;
  if (node.opType === 'LayerNormalization' || node.opType === 'SimplifiedLayerNormalization' || node.opType === 'RMSNormalization') {
    const a = norm(attrInt(node, 'axis', -1), cv.rank);
    if (cv.axis >= a) refuse(`${node.opType} "${label(node)}" normalises over the channel axis; adding channels would change the existing ones`);
    refuse(`${node.opType} "${label(node)}" normalises each channel over axes ≥ ${a}: a new channel of zeros would not stay at zero`);
  }
  refuse(`${node.opType} "${label(node)}" normalises over channels; adding channels would change the existing ones`);
};

const UNARY_OPS = ['Relu', 'LeakyRelu', 'Neg', 'Abs', 'Sigmoid', 'Tanh', 'Exp', 'Log', 'Sqrt', 'Reciprocal', 'Erf', 'Softplus', 'Softsign', 'Elu', 'Celu', 'Selu', 'ThresholdedRelu', 'HardSigmoid', 'HardSwish', 'Mish', 'Gelu'];

/** Forward channel rules, keyed by ONNX op type (default domain). An op without a rule refuses the group. */
export const CHANNEL_RULES: Readonly<Record<string, ChannelRule>> = {
  ...Object.fromEntries(UNARY_OPS.map((op) => [op, unary])),
  Identity: identity,
  Dropout: dropout,
  Cast: cast,
  Clip: clip,
  Add: binary,
  Sub: binary,
  Mul: binary,
  Div: binary,
  Pow: binary,
  Max: binary,
  Min: binary,
  PRelu: binary,
  BatchNormalization: batchNorm,
  InstanceNormalization: instanceNorm,
  MaxPool: pool,
  AveragePool: pool,
  LpPool: pool,
  GlobalAveragePool: pool,
  GlobalMaxPool: pool,
  GlobalLpPool: pool,
  Pad: pad,
  Resize: resize,
  Upsample: resize,
  Transpose: transpose,
  Squeeze: squeeze,
  Unsqueeze: unsqueeze,
  Flatten: flatten,
  Reshape: reshape,
  ReduceMean: reduce,
  ReduceSum: reduce,
  ReduceMax: reduce,
  ReduceMin: reduce,
  ReduceL1: reduce,
  ReduceL2: reduce,
  ReduceSumSquare: reduce,
  Concat: concat,
  Slice: sliceLike,
  Gather: sliceLike,
  Split: sliceLike,
  Shape: shape,
  Conv: layer,
  ConvTranspose: layer,
  Gemm: layer,
  MatMul: layer,
  Size: refuseWith('reads the number of elements of the channels'),
  Softmax: softmaxLike,
  LogSoftmax: softmaxLike,
  Hardmax: softmaxLike,
  LayerNormalization: normalisation,
  GroupNormalization: normalisation,
  LpNormalization: normalisation,
  MeanVarianceNormalization: normalisation,
  SimplifiedLayerNormalization: normalisation,
  SkipLayerNormalization: normalisation,
  RMSNormalization: normalisation,
  Einsum: refuseWith('is not supported on the path of a group (write it as MatMul)'),
  Where: refuseWith('selects between the channels and another value; new channels would not stay at zero'),
  Expand: refuseWith('is not supported on the path of a group'),
  Tile: refuseWith('repeats the channels'),
};

/** Ops a joined operand may be traced back through (same channels in, same channels out). */
export const TRACE_THROUGH: ReadonlySet<string> = new Set([
  ...UNARY_OPS, 'Identity', 'Dropout', 'Cast', 'Clip', 'BatchNormalization', 'InstanceNormalization', 'MaxPool', 'AveragePool', 'LpPool', 'Pad', 'Resize', 'Upsample',
]);

/**
 * Layout ops a joined operand may be traced back through (input 0): the layers found are checked by the forward
 * walk, which refuses them if the op moves or selects channels in a way the group cannot follow.
 */
export const TRACE_LAYOUT: ReadonlySet<string> = new Set(['Transpose', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Slice', 'Gather', 'Split']);

/** Elementwise ops whose every channel-carrying operand is traced back. */
export const TRACE_JOIN: ReadonlySet<string> = new Set(['Add', 'Sub', 'Mul', 'Div', 'Max', 'Min', 'Sum', 'PRelu', 'Pow']);
