/**
 * The probe builder: appends a backward pass (vector-Jacobian rules as ordinary ONNX ops), a loss and
 * per-site statistics reductions to a model, so that onnxruntime computes GradMax's statistics.
 * @packageDocumentation
 */
import { clone } from '@bufbuild/protobuf';
import { ModelProtoSchema, TensorProto_DataType } from 'onnx-buf';
import type { ModelProto, NodeProto, TensorProto } from 'onnx-buf';
import { InvalidArgumentError, UnsupportedError, makeConvPairGeometry } from '@gradmax/core';
import type { ConvPairGeometry, ConvPairGeometryND, SketchTestMatrices } from '@gradmax/core';
import { emitPairMoment, emitTapGradient, isFlattenDense, isFlattenDenseND, type LatticeGradient } from './conv-taps.js';
export type { LatticeGradient } from './conv-taps.js';
import { OnnxModel, makeTensor, makeValueInfo } from '../model.js';
import { Emitter } from './emitter.js';
import { MissingGradientRuleError } from './errors.js';
import { attrInt, attrInts, nodeLabel } from '../attributes.js';
import { findSite, sitePlan } from '../sites.js';
import { defaultOpset } from './onnx-util.js';
import { prepareForProbe, sortTopologically } from './prepare.js';
import type { PreparedModel } from './prepare.js';
import { VJP_RULES, maxPoolTapGeometry, maxPoolTiling, maxPoolWindowsOverlap, reluMask, resolveNodePads } from './rules.js';
import type { MaxPoolTiling } from './rules.js';
import type { RuleContext } from './rules.js';
import { discoverShapes } from './shapes.js';
import { denseFromLattices, emitConvSketch, emitDenseSketch, planarGeometry, preferSketch, siteTestMatrices, sketchSettings, statisticCosts } from './sketch.js';
import type { ProbeSketchSettings, ProbeStatisticsMode } from './sketch.js';
import { emitPairWindows, type PairWindows } from './mapped-pairs.js';
import type { TensorInfo } from './shapes.js';

/**
 * A growth site as the probe sees it: which forward tensors carry h and z.
 * - `input`: h, the current layer's input (Gemm/MatMul: `[..., fanIn]`; Conv: NCHW `[N, m0, H0, W0]`).
 * - `preActivation`: z, the next layer's pre-activation output (Gemm/MatMul: `[..., fanOut]`; Conv: NCHW
 *   `[N, m2, H2, W2]`; a dense layer after Flatten: `[N, m2]`). Its gradient is g.
 */
export interface ProbeSite {
  /** Site name (key of the statistics map). */
  name: string;
  /** `"dense"` (Gemm/MatMul pair) or `"conv"` (Conv→Conv, or Conv→Flatten→dense). */
  kind: 'dense' | 'conv';
  /** Tensor holding h. */
  input: string;
  /** True when h is stored transposed (`[fanIn, N]`, a Gemm with transA=1). */
  inputTransposed?: boolean;
  /** Tensor holding z (the next layer's pre-activation). */
  preActivation: string;
  /** Conv geometry (required for conv sites); for Conv→Flatten→dense the dense layer is a conv whose kernel covers the map. */
  geometry?: ConvPairGeometry;
  /**
   * Conv geometry with any number of spatial axes and dilations, instead of `geometry` (1-D/3-D or dilated convs).
   * The statistic is then output as the growth matrix sum `[Π k2 · m2, Π k1 · m0]` (layout `sum-gh`).
   */
  geometryND?: ConvPairGeometryND;
  /**
   * Conv sites through a MaxPool (group pairs): h is replaced by the current layer's input windows at the positions the
   * next layer reads, and `geometry` is that of a 1×1 current layer over them (see `mapped-pairs.ts`).
   */
  windows?: PairWindows;
}

/** A site given by the names of its two layer nodes (`current` grows, `next` consumes). */
export interface NodePairSite {
  /** Site name; defaults to `"<current>-><next>"`. */
  name?: string;
  /** Name of the current layer's node (Gemm, MatMul or Conv). */
  current: string;
  /** Name of the next layer's node (Gemm, MatMul or Conv). */
  next: string;
}

/** Loss kinds: cross-entropy on logits / a Softmax output / a LogSoftmax output with integer labels, or MSE. */
export type ProbeLossKind = 'ce-logits' | 'ce-softmax' | 'ce-logsoftmax' | 'mse';

/** The loss whose per-example gradients the statistics use. */
export interface ProbeLoss {
  /** Loss kind. Cross-entropy outputs must be `[N, classes]`. MSE is the mean over each example's elements. */
  kind: ProbeLossKind;
  /** Model output the loss reads; defaults to the first graph output. */
  output?: string;
  /** Name of the new INT64 `[N]` labels input (cross-entropy); default `"labels"`. */
  labelsName?: string;
  /** Name of the new targets input (MSE; same type and shape as the output); default `"targets"`. */
  targetsName?: string;
}

/** Options of {@link buildProbe}. */
export interface BuildProbeOptions {
  /**
   * Sites whose statistics the probe outputs: names of growable sites as reported by `findSites` (or the current
   * layer's node name), node pairs, or explicit {@link ProbeSite}s.
   */
  sites: readonly (string | ProbeSite | NodePairSite)[];
  /** The loss. */
  loss: ProbeLoss;
  /** Values for named symbolic input dims other than the batch (used for shape discovery). */
  fixedDims?: Record<string, number>;
  /**
   * Relax a batch dimension fixed at 1 in the probe's graph (default true; kept only when batched results equal
   * per-example ones on random inputs).
   */
  relaxBatch?: boolean;
  /**
   * The execution provider the probe will run on (default `cpu`). For another provider (WebGPU) the probe avoids Conv
   * forms that onnxruntime's WebGPU provider computes wrongly (grouped Convs with a channel multiplier).
   */
  executionProvider?: string;
  /**
   * How each site's statistic is computed (default `exact`): the whole growth matrix M, its randomized sketch
   * (`sketch`: Y = M·Ω and W = Ψ·M, see `SketchStatistics`), or `auto` (the sketch where M is large and the sketch
   * cheaper; rule in `preferSketch`).
   */
  statistics?: ProbeStatisticsMode;
  /** Sketch width r (k new units + oversampling; default 16). */
  sketchRank?: number;
  /** Rows l of the co-range sketch (default 2r + 1; at least r). */
  sketchRows?: number;
  /** Seed of the sketch's Gaussian test matrices (default 0). */
  sketchSeed?: number;
  /**
   * Explicit test matrices per site name (such sites are sketched whatever `statistics` says); used for the blocks
   * of a channel group's test matrices.
   */
  sketchTests?: ReadonlyMap<string, SketchTestMatrices>;
}

/** One statistics output of a probe. */
export interface ProbeOutput {
  /** The site. */
  site: ProbeSite;
  /** Graph output name. */
  output: string;
  /**
   * Dense: Σ over examples of g hᵀ, `[fanOut, fanIn]`. Conv: the tap gradient `[k1h, k1w, m0, k2h·k2w·m2]`
   * (HWIO weight gradient of the current conv against the tap-scattered gradient), summed over examples.
   * Sketch: `output` is Σ Y = Σ M·Ω `[fanOut, r]` and `coRange.output` Σ W = Σ Ψ·M `[l, fanIn]`.
   */
  layout: 'sum-gh' | 'tap-gradient' | 'sketch';
  /** Static shape of the output. */
  shape: number[];
  /** Sketch outputs only: the co-range sketch output and its shape `[l, fanIn]`. */
  coRange?: { output: string; shape: number[] };
  /** Sketch outputs only: the settings (`seed` undefined when the site's test matrices were given explicitly). */
  sketch?: { rank: number; rowSketch: number; seed?: number; fanOut: number; fanIn: number; tests?: SketchTestMatrices };
}

/** A built probe model and how to feed and read it. */
export interface ProbeModel {
  /** The probe model (the forward graph plus backward and statistics nodes). */
  model: ModelProto;
  /** Forward data inputs (the original graph inputs that are not initializers). */
  inputs: string[];
  /** Labels (cross-entropy, INT64 `[N]`) or targets (MSE) input name. */
  labelsInput: string;
  /** Element type of the labels/targets input. */
  labelsType: number;
  /** Output holding the loss summed over the batch (0-d). */
  lossOutput: string;
  /** Statistics outputs, one per site, in the order given. */
  outputs: ProbeOutput[];
  /** Element type of the differentiated tensors (FLOAT or DOUBLE). */
  floatType: number;
  /**
   * What the probe changed in its own copy of the model before differentiating it (see `prepareForProbe`): with
   * `promotedHalf`, feed float32 data; with `relaxedBatch`, any batch size runs at once.
   */
  prepared?: PreparedModel;
}

interface GraphStructure {
  producer: Map<string, { node: NodeProto; index: number }>;
  consumers: Map<string, NodeProto[]>;
}

function structure(nodes: readonly NodeProto[]): GraphStructure {
  const producer = new Map<string, { node: NodeProto; index: number }>();
  const consumers = new Map<string, NodeProto[]>();
  nodes.forEach((node) => {
    node.output.forEach((o, index) => o && producer.set(o, { node, index }));
    for (const i of node.input) if (i) (consumers.get(i) ?? consumers.set(i, []).get(i)!).push(node);
  });
  return { producer, consumers };
}

/**
 * Ops whose outputs carry no gradient: shapes, sizes, index and boolean computations, piecewise-constant functions
 * and random draws. Their outputs are constants for the backward pass (a `Shape` of a site tensor feeding a Reshape
 * is not a path from the site to the loss).
 */
export const NON_DIFFERENTIABLE_OPS: ReadonlySet<string> = new Set([
  'Shape', 'Size', 'ConstantOfShape', 'Range', 'EyeLike', 'NonZero', 'ArgMax', 'ArgMin', 'OneHot',
  'Equal', 'Greater', 'GreaterOrEqual', 'Less', 'LessOrEqual', 'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf',
  'Floor', 'Ceil', 'Round', 'Sign', 'BitShift', 'BitwiseAnd', 'BitwiseOr', 'BitwiseXor', 'BitwiseNot',
  'RandomNormalLike', 'RandomUniformLike', 'Bernoulli', 'Multinomial',
]);

const FLOAT_ELEM_TYPES: ReadonlySet<number> = new Set([TensorProto_DataType.FLOAT, TensorProto_DataType.DOUBLE, TensorProto_DataType.FLOAT16, TensorProto_DataType.BFLOAT16]);

/** Whether a default-domain node's outputs can carry a gradient, from its type and attributes alone. */
function differentiableNode(node: NodeProto): boolean {
  if (node.domain !== '' && node.domain !== 'ai.onnx') return true;
  if (NON_DIFFERENTIABLE_OPS.has(node.opType)) return false;
  if (node.opType === 'Cast' || node.opType === 'CastLike') {
    const to = node.attribute.find((a) => a.name === 'to');
    if (node.opType === 'Cast' && to && !FLOAT_ELEM_TYPES.has(Number(to.i))) return false;
  }
  return true;
}

/** Tensors that depend on any of `targets` (including them) through differentiable nodes. */
function dependents(nodes: readonly NodeProto[], targets: Iterable<string>): Set<string> {
  const dep = new Set(targets);
  for (const node of nodes) {
    if (!differentiableNode(node)) continue;
    if (node.input.some((i) => i && dep.has(i))) for (const o of node.output) if (o) dep.add(o);
  }
  return dep;
}

/** Tensors that `roots` depend on (including them). */
function ancestors(nodes: readonly NodeProto[], roots: Iterable<string>): Set<string> {
  const anc = new Set(roots);
  for (let k = nodes.length - 1; k >= 0; k--) {
    const node = nodes[k]!;
    if (node.output.some((o) => o && anc.has(o))) for (const i of node.input) if (i) anc.add(i);
  }
  return anc;
}

function isPairSite(s: ProbeSite | NodePairSite): s is NodePairSite {
  return 'current' in s;
}

/**
 * The {@link ProbeSite} of a growable site found by the model IR's site finder (`findSites`): h is the current
 * layer's data input, z the next layer's output, and the conv geometry that of the site plan. Conv sites whose
 * geometry is not exact (pooling or resampling between the layers) are refused with {@link UnsupportedError}.
 */
export function probeSiteOf(model: OnnxModel, siteName: string): ProbeSite {
  const site = findSite(model, siteName);
  const plan = sitePlan(site);
  if (!plan || !site.growable) throw new UnsupportedError(`site "${site.name}" is not growable: ${site.reason ?? 'unknown reason'}`, { site: site.name });
  const { l1, l2 } = plan;
  if (l1.type === 'Gemm' && l1.weightInput !== 1) throw new UnsupportedError(`site "${site.name}": Gemm "${nodeLabel(l1.node)}" holds its weight in input A; the probe needs the data in A`, { site: site.name });
  if (l2.type === 'Gemm' && l2.weightInput !== 1) throw new UnsupportedError(`site "${site.name}": Gemm "${nodeLabel(l2.node)}" holds its weight in input A; the probe needs the data in A`, { site: site.name });
  const input = l1.node.input[l1.weightInput === 0 ? 1 : 0]!;
  const preActivation = l2.node.output[0]!;
  if (site.kind === 'dense') {
    if (l2.type === 'MatMul' && l2.weightInput === 0) throw new UnsupportedError(`site "${site.name}": MatMul "${nodeLabel(l2.node)}" multiplies the weight from the left`, { site: site.name });
    if (l1.type === 'MatMul' && l1.weightInput === 0) throw new UnsupportedError(`site "${site.name}": MatMul "${nodeLabel(l1.node)}" multiplies the weight from the left`, { site: site.name });
    return { name: site.name, kind: 'dense', input, inputTransposed: l1.type === 'Gemm' && attrInt(l1.node, 'transA', 0) === 1, preActivation };
  }
  if (!plan.geometry) throw new UnsupportedError(`site "${site.name}": no conv geometry`, { site: site.name });
  if (!plan.exactGeometry) {
    throw new UnsupportedError(`site "${site.name}": ops between the layers (${site.pattern}) make the conv growth matrix inexact; the probe supports per-channel ops only`, { site: site.name });
  }
  return { name: site.name, kind: 'conv', input, preActivation, geometry: plan.geometry };
}

function findNode(nodes: readonly NodeProto[], name: string): NodeProto {
  const node = nodes.find((n) => n.name === name) ?? nodes.find((n) => nodeLabel(n) === name) ?? nodes.find((n) => n.output[0] === name);
  if (!node) throw new InvalidArgumentError(`no node named "${name}" in the model`, { node: name });
  return node;
}

/** Dims of a tensor whose every dim except the leading (batch) one is static; the batch dim reads as -1. */
function staticDims(info: TensorInfo | undefined, what: string): number[] {
  if (!info || info.dims.some((d, i) => d === null && i > 0)) throw new UnsupportedError(`${what} needs a static shape`, { what, dims: info?.dims });
  return info.dims.map((d) => d ?? -1);
}

/** Resolves a node-pair site into a {@link ProbeSite}; `pre` uses only graph structure (no shapes). */
function resolvePairSite(nodes: readonly NodeProto[], s: NodePairSite, infos: Map<string, TensorInfo> | undefined, constants: ReadonlySet<string>): ProbeSite {
  const cur = findNode(nodes, s.current);
  const next = findNode(nodes, s.next);
  const name = s.name ?? `${s.current}->${s.next}`;
  const layerOps = ['Gemm', 'MatMul', 'Conv'];
  for (const n of [cur, next]) {
    if (!layerOps.includes(n.opType)) throw new UnsupportedError(`site "${name}": node "${nodeLabel(n)}" is a ${n.opType}, not Gemm/MatMul/Conv`, { site: name, node: nodeLabel(n) });
  }
  const preActivation = next.output[0]!;
  if (cur.opType !== 'Conv') {
    if (next.opType === 'Conv') throw new UnsupportedError(`site "${name}": a dense layer followed by a Conv is not a growth site`, { site: name });
    return { name, kind: 'dense', input: cur.input[0]!, inputTransposed: cur.opType === 'Gemm' && attrInt(cur, 'transA', 0) === 1, preActivation };
  }
  const site: ProbeSite = { name, kind: 'conv', input: cur.input[0]!, preActivation };
  if (!infos) return site;
  const x = staticDims(infos.get(cur.input[0]!), `site "${name}": input of "${nodeLabel(cur)}"`);
  const w = staticDims(infos.get(cur.input[1]!), `site "${name}": weight of "${nodeLabel(cur)}"`);
  const mid = staticDims(infos.get(cur.output[0]!), `site "${name}": output of "${nodeLabel(cur)}"`);
  if (x.length !== 4) throw new UnsupportedError(`site "${name}": only 2-D convolutions are supported`, { site: name });
  const convGeo = (node: NodeProto, inSize: number[], kernel: number[]) => {
    if (attrInt(node, 'group', 1) !== 1) throw new UnsupportedError(`site "${name}": grouped conv "${nodeLabel(node)}" cannot be a site layer`, { site: name });
    const strides = attrInts(node, 'strides') ?? [1, 1];
    const dil = attrInts(node, 'dilations') ?? [1, 1];
    const p = resolveNodePads({ node }, inSize, kernel, strides, dil);
    return { strides: strides as [number, number], dil: dil as [number, number], pad: { top: p[0]!, left: p[1]!, bottom: p[2]!, right: p[3]! } };
  };
  const k1 = [w[2]!, w[3]!];
  const g1 = convGeo(cur, x.slice(2), k1);
  checkOpsBetween(nodes, cur, next, name, constants);
  const nextIn = staticDims(infos.get(next.input[0]!), `site "${name}": input of "${nodeLabel(next)}"`);
  const sameMap = next.opType === 'Conv' ? nextIn.length === 4 && nextIn[1] === mid[1] && nextIn[2] === mid[2] && nextIn[3] === mid[3] : nextIn.slice(1).reduce((a, b) => a * b, 1) === mid[1]! * mid[2]! * mid[3]!;
  if (!sameMap) {
    throw new UnsupportedError(`site "${name}": the ops between "${nodeLabel(cur)}" and "${nodeLabel(next)}" change the map [${mid.slice(1).join(', ')}] to [${nextIn.slice(1).join(', ')}]; the conv growth matrix is exact only with per-channel ops between the layers`, { site: name });
  }
  if (next.opType === 'Conv') {
    const w2 = staticDims(infos.get(next.input[1]!), `site "${name}": weight of "${nodeLabel(next)}"`);
    const k2 = [w2[2]!, w2[3]!];
    const g2 = convGeo(next, mid.slice(2), k2);
    site.geometry = makeConvPairGeometry({
      name,
      inChannels: x[1]!,
      midChannels: mid[1]!,
      outChannels: w2[0]!,
      inputSize: [x[2]!, x[3]!],
      kernel1: k1 as [number, number],
      stride1: g1.strides,
      padding1: g1.pad,
      dilation1: g1.dil,
      kernel2: k2 as [number, number],
      stride2: g2.strides,
      padding2: g2.pad,
      dilation2: g2.dil,
    });
  } else {
    const z = staticDims(infos.get(preActivation), `site "${name}": output of "${nodeLabel(next)}"`);
    site.geometry = makeConvPairGeometry({
      name,
      inChannels: x[1]!,
      midChannels: mid[1]!,
      outChannels: z[z.length - 1]!,
      inputSize: [x[2]!, x[3]!],
      kernel1: k1 as [number, number],
      stride1: g1.strides,
      padding1: g1.pad,
      dilation1: g1.dil,
      kernel2: [mid[2]!, mid[3]!],
      stride2: 1,
      padding2: 'valid',
    });
  }
  return site;
}

/** Ops that act on every position of a feature map on its own (with constant other operands). */
const PER_POSITION_OPS = new Set(['Relu', 'LeakyRelu', 'PRelu', 'Elu', 'Selu', 'Clip', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Softplus', 'BatchNormalization', 'Identity', 'Dropout', 'Add', 'Sub', 'Mul', 'Div', 'Cast']);

/**
 * Refuses a conv pair site unless the data path from `cur` to `next` is a chain of per-position ops (and, before a
 * dense `next`, Flatten/Reshape): pooling, padding or resampling between the layers would make the geometry wrong.
 */
function checkOpsBetween(nodes: readonly NodeProto[], cur: NodeProto, next: NodeProto, name: string, constants: ReadonlySet<string>): void {
  const producer = new Map<string, NodeProto>();
  for (const n of nodes) for (const o of n.output) if (o) producer.set(o, n);
  const reshape = new Set(next.opType === 'Conv' ? [] : ['Flatten', 'Reshape']);
  let value = next.input[0]!;
  for (let steps = 0; value !== cur.output[0]; steps++) {
    const p = producer.get(value);
    if (!p || steps > nodes.length) throw new UnsupportedError(`site "${name}": "${nodeLabel(next)}" does not read the output of "${nodeLabel(cur)}" through a chain of ops`, { site: name });
    if (!PER_POSITION_OPS.has(p.opType) && !reshape.has(p.opType)) {
      throw new UnsupportedError(`site "${name}": ${p.opType} "${nodeLabel(p)}" between the layers is not a per-channel op; the conv growth matrix would not be exact`, { site: name, node: nodeLabel(p) });
    }
    const data = (reshape.has(p.opType) ? p.input.slice(0, 1) : p.input).filter((i) => i && !constants.has(i));
    if (data.length !== 1) throw new UnsupportedError(`site "${name}": ${p.opType} "${nodeLabel(p)}" between the layers joins another branch`, { site: name, node: nodeLabel(p) });
    value = data[0]!;
  }
}

/** Op types without a gradient rule on a backward path, with the nodes that have them (see {@link missingGradientRules}). */
export interface MissingRule {
  /** Operator type. */
  opType: string;
  /** Domain ('' for the default domain). */
  domain: string;
  /** Names (or first outputs) of the nodes of this type on the path. */
  nodes: string[];
}

/**
 * Every op type on a path from `from` (default: the graph's data inputs) to `to` (default: the first graph output)
 * that the probe cannot differentiate through (no rule in {@link VJP_RULES}, or a non-default domain), from the graph
 * structure alone: what stands between a model and the probe, all at once rather than one error at a time.
 */
export function missingGradientRules(model: ModelProto | OnnxModel, options: { from?: readonly string[]; to?: string } = {}): MissingRule[] {
  const proto = model instanceof OnnxModel ? model.proto : model;
  const graph = proto.graph;
  if (!graph) throw new InvalidArgumentError('model has no graph');
  const nodes = [...graph.node];
  sortTopologically(nodes);
  const inits = new Set(graph.initializer.map((t) => t.name));
  const from = options.from ?? graph.input.filter((i) => !inits.has(i.name)).map((i) => i.name);
  const to = options.to ?? graph.output[0]?.name;
  if (!to) throw new InvalidArgumentError('the model has no output');
  const dep = dependents(nodes, from);
  const anc = ancestors(nodes, [to]);
  const found = new Map<string, MissingRule>();
  for (const node of nodes) {
    if (!differentiableNode(node)) continue;
    if (!node.output.some((o) => o && dep.has(o) && anc.has(o)) || !node.input.some((i) => i && dep.has(i))) continue;
    const domain = node.domain === 'ai.onnx' ? '' : node.domain;
    if (domain === '' && VJP_RULES[node.opType]) continue;
    const key = `${domain}::${node.opType}`;
    (found.get(key) ?? found.set(key, { opType: node.opType, domain, nodes: [] }).get(key)!).nodes.push(nodeLabel(node));
  }
  return [...found.values()];
}

/** Which nodes the backward pass goes through, from the structure of the graph alone. */
export interface BackwardPlan {
  /** Tensors that depend on a target. */
  dep: Set<string>;
  /** Tensors the seeds depend on. */
  anc: Set<string>;
  /** Whether a node lies on a path from a target to a seed. */
  onPath(node: NodeProto): boolean;
  /** Throws {@link MissingGradientRuleError} for on-path nodes without a rule; adds MaxPool Indices outputs. */
  check(sitesOf: (node: NodeProto) => string[]): void;
  /** MaxPool nodes whose Indices output {@link BackwardPlan.check} added. */
  readonly addedIndices: Set<NodeProto>;
}

/** Plans the backward pass from `seeds` (tensors with an incoming gradient) back to `targets`. */
export function planBackward(nodes: NodeProto[], targets: Iterable<string>, seeds: Iterable<string>, skipNode: NodeProto | undefined, names: Set<string>): BackwardPlan {
  const dep = dependents(nodes, targets);
  const anc = ancestors(nodes, seeds);
  const onPath = (node: NodeProto) => node !== skipNode && node.output.some((o) => o && dep.has(o) && anc.has(o)) && node.input.some((i) => i && dep.has(i));
  const addedIndices = new Set<NodeProto>();
  return {
    dep,
    anc,
    onPath,
    addedIndices,
    check(sitesOf) {
      for (const node of nodes) {
        if (!onPath(node)) continue;
        const domain = node.domain === 'ai.onnx' ? '' : node.domain;
        if (domain !== '' || !VJP_RULES[node.opType]) throw new MissingGradientRuleError(nodeLabel(node), node.opType, domain, sitesOf(node));
        if (node.opType === 'MaxPool' && !node.output[1]) {
          let idx = `${node.output[0]}__gm_indices`;
          while (names.has(idx)) idx += '_';
          node.output[1] = idx;
          names.add(idx);
          addedIndices.add(node);
        }
      }
    },
  };
}

/** Emits the vector-Jacobian nodes of a planned backward pass and accumulates gradients per tensor. */
export class BackwardPass {
  private readonly grads = new Map<string, string[]>();
  private readonly init: Map<string, TensorProto>;
  private readonly constants = new Map<string, TensorProto>();
  private readonly graphInputs: Set<string> | undefined;
  private readonly tapPools = new Map<NodeProto, PoolTapPlan>();
  private readonly lattices = new Map<string, LatticeGradient[]>();
  /**
   * @param graphInputs - names of the graph inputs: an initializer among them can be overridden at run time, so its
   * value is never baked into a gradient constant. Without it no initializer value is baked.
   */
  constructor(
    private readonly e: Emitter,
    private readonly nodes: readonly NodeProto[],
    private readonly plan: BackwardPlan,
    private readonly info: (name: string) => TensorInfo,
    initializers: readonly TensorProto[],
    graphInputs?: Iterable<string>,
  ) {
    this.init = new Map(initializers.map((x) => [x.name, x]));
    this.graphInputs = graphInputs ? new Set(graphInputs) : undefined;
    for (const n of nodes) {
      const value = n.opType === 'Constant' && (n.domain === '' || n.domain === 'ai.onnx') ? n.attribute.find((a) => a.name === 'value')?.t : undefined;
      if (value && n.output[0]) this.constants.set(n.output[0], value);
    }
  }

  /** Whether a tensor has a floating-point type (integer and boolean tensors carry no gradient). */
  private isFloat(name: string): boolean {
    try {
      return FLOAT_ELEM_TYPES.has(this.info(name).elemType);
    } catch {
      return true;
    }
  }

  /**
   * Makes `pool` (a MaxPool whose windows tile its input) give the gradient of `plan.target` per window tap
   * ({@link BackwardPass.latticeGradient}) instead of a gradient of its input; `plan.relu` is the Relu in between,
   * whose mask is then applied to the pooled gradient. Nothing else may need a gradient of the pool's input.
   */
  tapPool(pool: NodeProto, plan: PoolTapPlan): void {
    this.tapPools.set(pool, plan);
  }

  /** The per-tap gradients of a tensor given by {@link BackwardPass.tapPool}, if any. */
  latticeGradient(tensor: string): LatticeGradient[] | undefined {
    return this.lattices.get(tensor);
  }

  /**
   * Per-tap gradients of a tiling MaxPool: tap (i, j) of every window is extracted by a one-hot depthwise Conv
   * (stride = window); it receives the pooled gradient where it is the FIRST (row-major) element equal to the
   * window's maximum — the element onnxruntime's Indices names, so ties route the gradient to exactly one element.
   */
  private emitPoolTaps(pool: NodeProto, gy: string, plan: PoolTapPlan): LatticeGradient[] {
    const e = this.e;
    const t = TensorProto_DataType.FLOAT;
    const { kernel: [kh, kw], channels, outSize } = plan.tiling;
    const x = pool.input[0]!;
    const y = pool.output[0]!;
    const g = plan.relu ? reluMask(e, gy, y, t) : gy;
    const out: LatticeGradient[] = [];
    let taken: string | undefined;
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const oneHot = new Float64Array(channels * kh * kw);
        for (let c = 0; c < channels; c++) oneHot[(c * kh + i) * kw + j] = 1;
        const tap = e.op('Conv', [x, e.constant(t, [channels, 1, kh, kw], oneHot, 'pool_tap')], { group: channels, kernel_shape: [kh, kw], strides: [kh, kw] });
        const isMax = e.op('Equal', [tap, y]);
        const first = taken ? e.op('And', [isMax, e.op('Not', [taken])]) : isMax;
        if (i < kh - 1 || j < kw - 1) taken = taken ? e.op('Or', [taken, isMax]) : isMax;
        out.push({ grad: e.op('Mul', [g, e.op('Cast', [first], { to: t })]), offset: [i, j], step: [kh, kw], size: outSize });
      }
    }
    return out;
  }

  /** Adds a gradient contribution to `tensor`. */
  addGrad(tensor: string, grad: string): void {
    (this.grads.get(tensor) ?? this.grads.set(tensor, []).get(tensor)!).push(grad);
  }

  /** The summed gradient of `tensor` (undefined when nothing reaches it). */
  finalGrad(tensor: string): string | undefined {
    const list = this.grads.get(tensor);
    if (!list || list.length === 0) return undefined;
    if (list.length > 1) this.grads.set(tensor, [this.e.op('Sum', list)]);
    return this.grads.get(tensor)![0];
  }

  /** Runs the rules in reverse topological order. */
  run(): void {
    const { dep, onPath } = this.plan;
    const { producer, consumers } = structure(this.nodes);
    // Relu → MaxPool (the Relu output feeding only the MaxPool): the MaxPool's gradient reaches only window maxima,
    // where relu'(z) = [pooled output > 0], so the mask is applied to the pooled gradient (a quarter of the size for
    // 2×2 windows) and the Relu passes that contribution through (the mask is idempotent, so other contributions
    // still go through the ordinary Relu rule).
    const premasked = new Map<NodeProto, string>();
    // Overlapping MaxPool windows before opset 16 (no ScatterElements reduction=add to sum the Indices routing): a
    // FLOAT 2-D pool with static shapes takes the exact per-tap gradient instead (`emitMaxPoolTapVjp`). Everywhere
    // else the Indices path stays: in onnxruntime 1.30 (CPU, one thread) the per-tap path measured slower (3x3/2
    // pads 1 on [128, 32, 28, 28]: 62-71 vs 38-45 ms; 2x2/2: 35 vs 30 ms; 3x3/1 pads 1: 155 vs 107 ms) or within
    // noise (2x2/1: 3-9% faster), its ~T passes over T-times-pooled-size tensors costing as much as the Indices kernel.
    if (this.e.opset < 16) {
      for (const pool of this.plan.addedIndices) {
        if (this.tapPools.has(pool) || !pool.output[1] || !maxPoolWindowsOverlap(pool)) continue;
        if (maxPoolTapGeometry(pool, this.info(pool.input[0]!), this.info(pool.output[0]!))) pool.output.length = 1;
      }
    }
    for (let k = this.nodes.length - 1; k >= 0; k--) {
      const node = this.nodes[k]!;
      if (!onPath(node)) continue;
      const outGrads = node.output.map((o) => (o && dep.has(o) && this.isFloat(o) ? this.finalGrad(o) : undefined));
      if (outGrads.every((g) => g === undefined)) continue;
      const tapPlan = this.tapPools.get(node);
      if (tapPlan) {
        if (outGrads[0] !== undefined) this.lattices.set(tapPlan.target, this.emitPoolTaps(node, outGrads[0], tapPlan));
        continue;
      }
      const fused = premasked.get(node);
      if (fused !== undefined && this.grads.get(node.output[0]!)?.length === 1 && this.grads.get(node.output[0]!)![0] === fused) {
        this.addGrad(node.input[0]!, fused);
        continue;
      }
      let addGrad = (i: number, g: string) => this.addGrad(node.input[i]!, g);
      const relu = node.opType === 'MaxPool' ? reluFeeding(node, producer, consumers) : undefined;
      if (relu && outGrads[0] !== undefined) {
        const pooled = node.output[0]!;
        outGrads[0] = reluMask(this.e, outGrads[0], pooled, this.info(pooled).elemType);
        addGrad = (i, g) => {
          if (i === 0) premasked.set(relu, g);
          this.addGrad(node.input[i]!, g);
        };
      }
      const ctx: RuleContext = {
        node,
        e: this.e,
        opset: this.e.opset,
        info: this.info,
        gradOut: (i) => outGrads[i],
        needs: (i) => {
          const x = node.input[i];
          return !!x && dep.has(x) && !this.init.has(x) && !this.constants.has(x) && this.isFloat(x);
        },
        addGrad,
        initializer: (name) => this.init.get(name),
        constant: (name) => (this.graphInputs?.has(name) ? undefined : (this.init.get(name) ?? this.constants.get(name))),
      };
      const graphInputs = this.graphInputs;
      if (graphInputs) ctx.isGraphInput = (name) => graphInputs.has(name);
      VJP_RULES[node.opType]!(ctx);
    }
  }
}

/** How a tiling MaxPool hands per-tap gradients to a site (see {@link BackwardPass.tapPool}). */
export interface PoolTapPlan {
  /** The site's pre-activation, whose gradient the taps are. */
  target: string;
  /** The Relu between the target and the pool, if any. */
  relu?: NodeProto;
  /** The pool's tiling. */
  tiling: MaxPoolTiling;
}

/**
 * The tiling MaxPool through which ALL of a conv site's pre-activation gradient comes (z → [Relu →] MaxPool, each
 * tensor feeding only the next node, nothing upstream of z needing a gradient), so that its per-tap gradients can
 * feed the site's statistic directly: no Indices, no scatter back to the full map.
 */
function poolTapPlan(
  site: ProbeSite,
  structure: GraphStructure,
  plan: BackwardPlan,
  seedTensor: string,
  info: (name: string) => TensorInfo,
): { pool: NodeProto; plan: PoolTapPlan } | undefined {
  const nd = site.geometryND;
  if (site.kind !== 'conv' || (!site.geometry && nd?.axes.length !== 2) || (site.geometry ? isFlattenDense(site.geometry) : isFlattenDenseND(nd!))) return undefined;
  const out = site.geometry ? { size: site.geometry.outputSize, channels: site.geometry.outChannels } : { size: nd!.axes.map((a) => a.outSize), channels: nd!.outChannels };
  const isDefault = (n: NodeProto) => n.domain === '' || n.domain === 'ai.onnx';
  const only = (tensor: string): NodeProto | undefined => {
    const c = structure.consumers.get(tensor);
    return tensor !== seedTensor && c?.length === 1 && isDefault(c[0]!) ? c[0] : undefined;
  };
  const z = site.preActivation;
  const producer = structure.producer.get(z)?.node;
  if (producer && plan.onPath(producer)) return undefined;
  let pool = only(z);
  let relu: NodeProto | undefined;
  if (pool?.opType === 'Relu') {
    relu = pool;
    pool = only(relu.output[0]!);
  }
  if (!pool || pool.opType !== 'MaxPool' || !plan.onPath(pool)) return undefined;
  if (pool.output[1] && !plan.addedIndices.has(pool)) return undefined;
  const tiling = maxPoolTiling(pool, info(pool.input[0]!));
  const zDims = info(z).dims;
  if (!tiling || zDims[2] !== out.size[0] || zDims[3] !== out.size[1] || zDims[1] !== out.channels) return undefined;
  return { pool, plan: { target: z, relu, tiling } };
}

/** The default-domain Relu whose output is `pool`'s input and feeds nothing else, if any. */
function reluFeeding(pool: NodeProto, producer: GraphStructure['producer'], consumers: GraphStructure['consumers']): NodeProto | undefined {
  const x = pool.input[0];
  const p = x ? producer.get(x) : undefined;
  if (!p || p.node.opType !== 'Relu' || (p.node.domain !== '' && p.node.domain !== 'ai.onnx')) return undefined;
  return consumers.get(x!)?.length === 1 ? p.node : undefined;
}

function inlineExternal(source: OnnxModel): ModelProto {
  const proto = clone(ModelProtoSchema, source.proto);
  const originals = source.graph.initializer;
  const inline = (t: TensorProto, orig: TensorProto) => {
    if (!source.storedOutsideProto(orig)) return;
    t.rawData = source.tensorBytes(orig) as Uint8Array<ArrayBuffer>;
    t.externalData = [];
    t.dataLocation = 0;
  };
  proto.graph!.initializer.forEach((t, i) => inline(t, originals[i]!));
  // Constant values (node attribute tensors) too: they may be deferred or external as well.
  proto.graph!.node.forEach((n, i) => n.attribute.forEach((a, j) => a.t && inline(a.t, source.graph.node[i]!.attribute[j]!.t!)));
  return proto;
}

/** Where the loss gradient enters the graph: the loss output, or the input of a Softmax for `ce-softmax`. */
export function lossSeed(nodes: readonly NodeProto[], loss: ProbeLoss, lossOutput: string): { seedTensor: string; skipNode?: NodeProto } {
  if (loss.kind === 'ce-softmax') {
    const p = structure(nodes).producer.get(lossOutput)?.node;
    if (p && p.opType === 'Softmax' && (p.domain === '' || p.domain === 'ai.onnx')) return { seedTensor: p.input[0]!, skipNode: p };
  }
  return { seedTensor: lossOutput };
}

/**
 * Emits the loss summed over the batch and seeds its gradient (of the summed loss, i.e. each example's gradient of
 * its own loss) at `seedTensor`. Returns the loss tensor and the labels' element type.
 */
export function emitLoss(
  e: Emitter,
  kind: ProbeLossKind,
  lossOutput: string,
  outputRank: number,
  floatType: number,
  labelsInput: string,
  seedTensor: string,
  skipNode: NodeProto | undefined,
  addGrad: (tensor: string, grad: string) => void,
): { lossSum: string; labelsType: number } {
  const t = floatType;
  if (kind === 'mse') {
    const diff = e.op('Sub', [lossOutput, labelsInput]);
    const size = e.op('Cast', [e.op('Size', [lossOutput])], { to: t });
    const batch = e.op('Cast', [e.op('Gather', [e.shape(lossOutput), e.ints([0])], { axis: 0 })], { to: t });
    const perExample = e.op('Div', [size, e.reshape(batch, [])]);
    addGrad(seedTensor, e.op('Mul', [diff, e.op('Div', [e.scalar(2, t), perExample])]));
    return { lossSum: e.op('Div', [e.reduceAll(e.op('Mul', [diff, diff])), perExample]), labelsType: floatType };
  }
  if (kind !== 'ce-logits' && kind !== 'ce-logsoftmax' && kind !== 'ce-softmax') {
    throw new InvalidArgumentError(`unknown loss kind "${String(kind)}"; use ce-logits, ce-softmax, ce-logsoftmax or mse`, { kind });
  }
  if (outputRank !== 2) throw new UnsupportedError(`cross-entropy needs a [N, classes] output; "${lossOutput}" has rank ${outputRank}`, { output: lossOutput });
  const I64 = TensorProto_DataType.INT64;
  const classes = e.op('Range', [e.scalar(0, I64), e.reshape(e.op('Gather', [e.shape(lossOutput), e.ints([1])], { axis: 0 }), []), e.scalar(1, I64)]);
  const oneHot = e.op('Cast', [e.op('Equal', [e.reshape(labelsInput, [-1, 1]), classes])], { to: t });
  let lossSum: string;
  if (kind === 'ce-logits') {
    const lsm = e.op('LogSoftmax', [lossOutput], { axis: 1 });
    lossSum = e.op('Neg', [e.reduceAll(e.op('Mul', [oneHot, lsm]))]);
    addGrad(seedTensor, e.op('Sub', [e.op('Exp', [lsm]), oneHot]));
  } else if (kind === 'ce-logsoftmax') {
    lossSum = e.op('Neg', [e.reduceAll(e.op('Mul', [oneHot, lossOutput]))]);
    addGrad(seedTensor, e.op('Neg', [oneHot]));
  } else {
    const safe = e.op('Max', [lossOutput, e.scalar(1e-30, t)]);
    lossSum = e.op('Neg', [e.reduceAll(e.op('Mul', [oneHot, e.op('Log', [safe])]))]);
    if (skipNode) {
      const axis = normalizeAxis(attrInt(skipNode, 'axis', e.opset >= 13 ? -1 : 1), 2);
      if (axis !== 1) throw new UnsupportedError(`ce-softmax: Softmax "${nodeLabel(skipNode)}" is not over the class axis`, { node: nodeLabel(skipNode) });
      addGrad(seedTensor, e.op('Sub', [lossOutput, oneHot]));
    } else {
      addGrad(seedTensor, e.op('Neg', [e.op('Div', [oneHot, safe])]));
    }
  }
  return { lossSum, labelsType: I64 };
}

/**
 * Builds the probe model of `model` for the given sites and loss. The probe's outputs are the loss summed over
 * the batch and, per site, the statistics summed over the batch (see {@link ProbeOutput}); gradients are those of
 * the summed loss, i.e. each example's gradient of its own loss.
 *
 * Shapes are discovered by running the forward model once per symbolic-dim value in onnxruntime.
 * Throws {@link MissingGradientRuleError} when a node on a path from a site to the loss has no rule.
 */
export async function buildProbe(model: ModelProto | OnnxModel, options: BuildProbeOptions): Promise<ProbeModel> {
  const proto = model instanceof OnnxModel ? inlineExternal(model) : clone(ModelProtoSchema, model);
  if (!proto.graph) throw new InvalidArgumentError('model has no graph');
  if (!options.sites?.length) throw new InvalidArgumentError('buildProbe: at least one site is required');
  // The probe's own copy only: sorted, FLOAT16 computed in FLOAT, opset 7–10 upgraded, a fixed batch of 1 relaxed.
  const prepared = await prepareForProbe(proto, { fixedDims: options.fixedDims, relaxBatch: options.relaxBatch });
  const graph = proto.graph;
  const opset = defaultOpset(proto);
  const nodes = graph.node;
  const lossOutput = options.loss.output ?? graph.output[0]?.name;
  if (!lossOutput || !nodes.some((n) => n.output.includes(lossOutput))) {
    throw new InvalidArgumentError(`loss output "${lossOutput}" is not produced by any node`, { output: lossOutput });
  }
  const names = new Set<string>();
  for (const n of nodes) {
    for (const t of [...n.input, ...n.output]) names.add(t);
    names.add(n.name);
  }
  for (const t of graph.initializer) names.add(t.name);
  for (const t of graph.input) names.add(t.name);
  const initializerNames = new Set(graph.initializer.map((t) => t.name));

  // Structure-only pass: site tensors, the loss seed tensor and the nodes on the backward path.
  const ir = model instanceof OnnxModel ? model : new OnnxModel(proto);
  const constants = new Set([...initializerNames, ...nodes.filter((n) => n.opType === 'Constant').flatMap((n) => n.output)]);
  const named = new Map<string, ProbeSite>();
  for (const s of options.sites) if (typeof s === 'string') named.set(s, probeSiteOf(ir, s));
  const resolve = (s: string | ProbeSite | NodePairSite, infos: Map<string, TensorInfo> | undefined): ProbeSite =>
    typeof s === 'string' ? named.get(s)! : isPairSite(s) ? resolvePairSite(nodes, s, infos, constants) : s;
  let sites = options.sites.map((s) => resolve(s, undefined));
  const seen = new Set<string>();
  for (const s of sites) {
    if (seen.has(s.name)) throw new InvalidArgumentError(`duplicate site name "${s.name}"`, { site: s.name });
    seen.add(s.name);
    for (const t of [s.input, s.preActivation]) {
      if (!names.has(t)) throw new InvalidArgumentError(`site "${s.name}": tensor "${t}" is not in the model`, { site: s.name, tensor: t });
    }
  }
  const kind = options.loss.kind;
  const { seedTensor, skipNode } = lossSeed(nodes, options.loss, lossOutput);
  const targets = new Set(sites.map((s) => s.preActivation));
  const plan = planBackward(nodes, targets, [seedTensor], skipNode, names);
  for (const s of sites) {
    if (!plan.anc.has(s.preActivation)) {
      throw new InvalidArgumentError(`site "${s.name}": tensor "${s.preActivation}" does not influence the loss output "${lossOutput}"`, { site: s.name });
    }
  }
  const siteNames = (node: NodeProto) => sites.filter((s) => ancestors(nodes, node.input.filter((i) => i)).has(s.preActivation)).map((s) => s.name);
  plan.check(siteNames);

  // Shapes and types of every tensor.
  const infos = await discoverShapes(proto, { fixedDims: options.fixedDims });
  sites = options.sites.map((s) => resolve(s, infos));
  const info = (name: string): TensorInfo => {
    const i = infos.get(name);
    if (!i) throw new InvalidArgumentError(`no type information for tensor "${name}"`, { tensor: name });
    return i;
  };
  const outInfo = info(lossOutput);
  const floatType = outInfo.elemType;
  if (floatType !== TensorProto_DataType.FLOAT && floatType !== TensorProto_DataType.DOUBLE) {
    throw new UnsupportedError(`loss output "${lossOutput}" has element type ${floatType}; the probe supports FLOAT and DOUBLE`, { output: lossOutput });
  }

  const e = new Emitter(names, opset);
  e.gpuSafeConv = (options.executionProvider ?? 'cpu') !== 'cpu';
  const back = new BackwardPass(e, nodes, plan, info, graph.initializer, graph.input.map((i) => i.name));
  const addGrad = (tensor: string, grad: string) => back.addGrad(tensor, grad);
  const finalGrad = (tensor: string) => back.finalGrad(tensor);

  // Loss and its gradient seed.
  const labelsInput = kind === 'mse' ? (options.loss.targetsName ?? 'targets') : (options.loss.labelsName ?? 'labels');
  if (names.has(labelsInput)) throw new InvalidArgumentError(`the labels/targets input name "${labelsInput}" is already used in the model`, { name: labelsInput });
  names.add(labelsInput);
  const { lossSum, labelsType } = emitLoss(e, kind, lossOutput, outInfo.dims.length, floatType, labelsInput, seedTensor, skipNode, addGrad);

  // Conv sites whose gradient all comes through a tiling MaxPool take it per window tap (see `poolTapPlan`).
  const graphStructure = structure(nodes);
  for (const site of sites) {
    const tap = poolTapPlan(site, graphStructure, plan, seedTensor, info);
    if (!tap) continue;
    back.tapPool(tap.pool, tap.plan);
    if (plan.addedIndices.has(tap.pool)) tap.pool.output.length = 1;
  }
  back.run();

  // Statistics.
  const outputs: ProbeOutput[] = [];
  const mode = options.statistics ?? 'exact';
  if (mode !== 'exact' && mode !== 'sketch' && mode !== 'auto') throw new InvalidArgumentError(`statistics must be "exact", "sketch" or "auto", got ${JSON.stringify(mode)}`, { statistics: mode });
  const settings: ProbeSketchSettings = sketchSettings(options);
  const sketchOf = (site: ProbeSite, fanOut: number, fanIn: number, geometry = site.kind === 'conv' ? site.geometry : undefined): { tests: SketchTestMatrices; seed?: number } | undefined => {
    const given = options.sketchTests?.get(site.name);
    if (given) return { tests: given };
    if (mode === 'exact' || (mode === 'auto' && !preferSketch(fanOut, fanIn, statisticCosts(fanOut, fanIn, geometry, settings), site.kind))) return undefined;
    return { tests: siteTestMatrices(fanOut, fanIn, settings), seed: settings.seed };
  };
  const sketchOutput = (site: ProbeSite, out: { range: string; coRange: string }, fanOut: number, fanIn: number, sk: { tests: SketchTestMatrices; seed?: number }): ProbeOutput => ({
    site,
    output: out.range,
    layout: 'sketch',
    shape: [fanOut, sk.tests.omega.cols],
    coRange: { output: out.coRange, shape: [sk.tests.psi.rows, fanIn] },
    sketch: { rank: sk.tests.omega.cols, rowSketch: sk.tests.psi.rows, fanOut, fanIn, ...(sk.seed !== undefined ? { seed: sk.seed } : { tests: sk.tests }) },
  });
  for (const site of sites) {
    const g = back.latticeGradient(site.preActivation) ?? finalGrad(site.preActivation);
    if (!g) throw new InvalidArgumentError(`site "${site.name}": no gradient reaches "${site.preActivation}"`, { site: site.name });
    const h = site.input;
    const hInfo = info(h);
    const zInfo = info(site.preActivation);
    if (hInfo.elemType !== floatType) throw new UnsupportedError(`site "${site.name}": input "${h}" is not of the loss's float type`, { site: site.name });
    if (site.kind === 'dense') {
      if (typeof g !== 'string') throw new InvalidArgumentError(`dense site "${site.name}" has a per-tap gradient`, { site: site.name });
      const fanIn = site.inputTransposed ? hInfo.dims[0] : hInfo.dims[hInfo.dims.length - 1];
      const fanOut = zInfo.dims[zInfo.dims.length - 1];
      if (typeof fanIn !== 'number' || typeof fanOut !== 'number') throw new UnsupportedError(`site "${site.name}": fan sizes must be static`, { site: site.name });
      // Σ_n g_n h_nᵀ. Einsum (opset ≥ 12) is several times faster in onnxruntime than Gemm(transA) or the
      // FusedMatMul(transA) its optimizer makes of MatMul(Transpose(g), h).
      const g2 = e.reshape(g, [-1, fanOut]);
      const h2 = site.inputTransposed ? h : e.reshape(h, [-1, fanIn]);
      const sk = sketchOf(site, fanOut, fanIn);
      if (sk) {
        outputs.push(sketchOutput(site, emitDenseSketch(e, g2, h2, !!site.inputTransposed, floatType, sk.tests), fanOut, fanIn, sk));
        continue;
      }
      const out =
        opset >= 12
          ? e.op('Einsum', [g2, h2], { equation: site.inputTransposed ? 'nk,jn->kj' : 'nk,nj->kj' })
          : e.op('MatMul', [e.transpose(g2, [1, 0]), site.inputTransposed ? e.transpose(h2, [1, 0]) : h2]);
      outputs.push({ site, output: out, layout: 'sum-gh', shape: [fanOut, fanIn] });
    } else if (site.geometryND) {
      const geo = site.geometryND;
      const rows = geo.axes.reduce((p, a) => p * a.kernel2, 1) * geo.outChannels;
      const cols = geo.axes.reduce((p, a) => p * a.kernel1, 1) * geo.inChannels;
      // Plain 2-D pairs can be sketched (rows (b, o) and columns (a, c) are the 2-D sketch's too).
      const planar = planarGeometry(geo);
      const sk = planar ? sketchOf(site, rows, cols, planar) : undefined;
      if (planar && sk) {
        const dense = typeof g === 'string' ? g : denseFromLattices(e, g, geo.outChannels, planar.outputSize);
        outputs.push(sketchOutput(site, emitConvSketch(e, dense, h, planar, floatType, sk.tests), rows, cols, sk));
        continue;
      }
      if (options.sketchTests?.has(site.name)) throw new UnsupportedError(`site "${site.name}": only plain 2-D conv pairs (no dilation) can be sketched`, { site: site.name });
      outputs.push({ site, output: emitPairMoment(e, g, h, zInfo, geo, floatType), layout: 'sum-gh', shape: [rows, cols] });
    } else {
      const geo = site.geometry;
      if (!geo) throw new InvalidArgumentError(`conv site "${site.name}" needs a geometry`, { site: site.name });
      const fanOut = geo.kernel2[0] * geo.kernel2[1] * geo.outChannels;
      const fanIn = geo.kernel1[0] * geo.kernel1[1] * geo.inChannels;
      const x = site.windows ? emitPairWindows(e, h, site.windows) : h;
      const sk = sketchOf(site, fanOut, fanIn);
      if (sk) {
        const dense = typeof g === 'string' ? g : denseFromLattices(e, g, geo.outChannels, geo.outputSize);
        outputs.push(sketchOutput(site, emitConvSketch(e, dense, x, geo, floatType, sk.tests), fanOut, fanIn, sk));
        continue;
      }
      outputs.push({ site, output: emitTapGradient(e, g, x, zInfo, geo, floatType), layout: 'tap-gradient', shape: [geo.kernel1[0], geo.kernel1[1], geo.inChannels, geo.kernel2[0] * geo.kernel2[1] * geo.outChannels] });
    }
  }

  graph.node.push(...e.nodes);
  graph.initializer.push(...e.initializers);
  const batchDim = 'N';
  if (kind === 'mse') graph.input.push(makeValueInfo(labelsInput, floatType, outInfo.dims.map((d) => (d === null ? batchDim : d))));
  else graph.input.push(makeValueInfo(labelsInput, TensorProto_DataType.INT64, [batchDim]));
  graph.output = [
    makeValueInfo(lossSum, floatType, []),
    ...outputs.flatMap((o) => [makeValueInfo(o.output, floatType, o.shape), ...(o.coRange ? [makeValueInfo(o.coRange.output, floatType, o.coRange.shape)] : [])]),
  ];
  const inputs = graph.input.filter((i) => !initializerNames.has(i.name) && i.name !== labelsInput).map((i) => i.name);
  return { model: proto, inputs, labelsInput, labelsType, lossOutput: lossSum, outputs, floatType, prepared };
}

function normalizeAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}
