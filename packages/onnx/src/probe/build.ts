/**
 * The probe builder: appends a backward pass (vector-Jacobian rules as ordinary ONNX ops), a loss and
 * per-site statistics reductions to a model, so that onnxruntime computes GradMax's statistics.
 * @packageDocumentation
 */
import { clone } from '@bufbuild/protobuf';
import { ModelProtoSchema, TensorProto_DataType } from 'onnx-buf';
import type { ModelProto, NodeProto, TensorProto } from 'onnx-buf';
import { InvalidArgumentError, UnsupportedError, makeConvPairGeometry } from '@gradmax/core';
import type { ConvPairGeometry } from '@gradmax/core';
import { OnnxModel, makeValueInfo } from '../model.js';
import { Emitter } from './emitter.js';
import { MissingGradientRuleError } from './errors.js';
import { attrInt, attrInts, nodeLabel } from '../attributes.js';
import { findSite, sitePlan } from '../sites.js';
import { defaultOpset } from './onnx-util.js';
import { VJP_RULES, resolveNodePads } from './rules.js';
import type { RuleContext } from './rules.js';
import { discoverShapes } from './shapes.js';
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
   */
  layout: 'sum-gh' | 'tap-gradient';
  /** Static shape of the output. */
  shape: number[];
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

/** Tensors that depend on any of `targets` (including them). */
function dependents(nodes: readonly NodeProto[], targets: Iterable<string>): Set<string> {
  const dep = new Set(targets);
  for (const node of nodes) if (node.input.some((i) => i && dep.has(i))) for (const o of node.output) if (o) dep.add(o);
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
function resolvePairSite(nodes: readonly NodeProto[], s: NodePairSite, infos: Map<string, TensorInfo> | undefined): ProbeSite {
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
}

/** Plans the backward pass from `seeds` (tensors with an incoming gradient) back to `targets`. */
export function planBackward(nodes: NodeProto[], targets: Iterable<string>, seeds: Iterable<string>, skipNode: NodeProto | undefined, names: Set<string>): BackwardPlan {
  const dep = dependents(nodes, targets);
  const anc = ancestors(nodes, seeds);
  const onPath = (node: NodeProto) => node !== skipNode && node.output.some((o) => o && dep.has(o) && anc.has(o)) && node.input.some((i) => i && dep.has(i));
  return {
    dep,
    anc,
    onPath,
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
        }
      }
    },
  };
}

/** Emits the vector-Jacobian nodes of a planned backward pass and accumulates gradients per tensor. */
export class BackwardPass {
  private readonly grads = new Map<string, string[]>();
  private readonly init: Map<string, TensorProto>;
  constructor(
    private readonly e: Emitter,
    private readonly nodes: readonly NodeProto[],
    private readonly plan: BackwardPlan,
    private readonly info: (name: string) => TensorInfo,
    initializers: readonly TensorProto[],
  ) {
    this.init = new Map(initializers.map((x) => [x.name, x]));
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
    for (let k = this.nodes.length - 1; k >= 0; k--) {
      const node = this.nodes[k]!;
      if (!onPath(node)) continue;
      const outGrads = node.output.map((o) => (o && dep.has(o) ? this.finalGrad(o) : undefined));
      if (outGrads.every((g) => g === undefined)) continue;
      const ctx: RuleContext = {
        node,
        e: this.e,
        opset: this.e.opset,
        info: this.info,
        gradOut: (i) => outGrads[i],
        needs: (i) => {
          const x = node.input[i];
          return !!x && dep.has(x) && !this.init.has(x);
        },
        addGrad: (i, g) => this.addGrad(node.input[i]!, g),
        initializer: (name) => this.init.get(name),
      };
      VJP_RULES[node.opType]!(ctx);
    }
  }
}

function inlineExternal(source: OnnxModel): ModelProto {
  const proto = clone(ModelProtoSchema, source.proto);
  const originals = source.graph.initializer;
  proto.graph!.initializer.forEach((t, i) => {
    const orig = originals[i]!;
    if (source.externalSources.has(orig) || source.externalOverrides.has(orig)) {
      t.rawData = source.tensorBytes(orig) as Uint8Array<ArrayBuffer>;
      t.externalData = [];
      t.dataLocation = 0;
    }
  });
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
  const graph = proto.graph;
  if (!graph) throw new InvalidArgumentError('model has no graph');
  const opset = defaultOpset(proto);
  if (opset < 11) throw new UnsupportedError(`the probe needs opset ≥ 11 (model imports opset ${opset})`, { opset });
  if (!options.sites?.length) throw new InvalidArgumentError('buildProbe: at least one site is required');
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
  const named = new Map<string, ProbeSite>();
  for (const s of options.sites) if (typeof s === 'string') named.set(s, probeSiteOf(ir, s));
  const resolve = (s: string | ProbeSite | NodePairSite, infos: Map<string, TensorInfo> | undefined): ProbeSite =>
    typeof s === 'string' ? named.get(s)! : isPairSite(s) ? resolvePairSite(nodes, s, infos) : s;
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
  const back = new BackwardPass(e, nodes, plan, info, graph.initializer);
  const addGrad = (tensor: string, grad: string) => back.addGrad(tensor, grad);
  const finalGrad = (tensor: string) => back.finalGrad(tensor);

  // Loss and its gradient seed.
  const labelsInput = kind === 'mse' ? (options.loss.targetsName ?? 'targets') : (options.loss.labelsName ?? 'labels');
  if (names.has(labelsInput)) throw new InvalidArgumentError(`the labels/targets input name "${labelsInput}" is already used in the model`, { name: labelsInput });
  names.add(labelsInput);
  const { lossSum, labelsType } = emitLoss(e, kind, lossOutput, outInfo.dims.length, floatType, labelsInput, seedTensor, skipNode, addGrad);

  back.run();

  // Statistics.
  const outputs: ProbeOutput[] = [];
  for (const site of sites) {
    const g = finalGrad(site.preActivation);
    if (!g) throw new InvalidArgumentError(`site "${site.name}": no gradient reaches "${site.preActivation}"`, { site: site.name });
    const h = site.input;
    const hInfo = info(h);
    const zInfo = info(site.preActivation);
    if (hInfo.elemType !== floatType) throw new UnsupportedError(`site "${site.name}": input "${h}" is not of the loss's float type`, { site: site.name });
    if (site.kind === 'dense') {
      const fanIn = site.inputTransposed ? hInfo.dims[0] : hInfo.dims[hInfo.dims.length - 1];
      const fanOut = zInfo.dims[zInfo.dims.length - 1];
      if (typeof fanIn !== 'number' || typeof fanOut !== 'number') throw new UnsupportedError(`site "${site.name}": fan sizes must be static`, { site: site.name });
      // Σ_n g_n h_nᵀ. Einsum (opset ≥ 12) is several times faster in onnxruntime than Gemm(transA) or the
      // FusedMatMul(transA) its optimizer makes of MatMul(Transpose(g), h).
      const g2 = e.reshape(g, [-1, fanOut]);
      const h2 = site.inputTransposed ? h : e.reshape(h, [-1, fanIn]);
      const out =
        opset >= 12
          ? e.op('Einsum', [g2, h2], { equation: site.inputTransposed ? 'nk,jn->kj' : 'nk,nj->kj' })
          : e.op('MatMul', [e.transpose(g2, [1, 0]), site.inputTransposed ? e.transpose(h2, [1, 0]) : h2]);
      outputs.push({ site, output: out, layout: 'sum-gh', shape: [fanOut, fanIn] });
    } else {
      const geo = site.geometry;
      if (!geo) throw new InvalidArgumentError(`conv site "${site.name}" needs a geometry`, { site: site.name });
      outputs.push({ site, output: emitTapGradient(e, g, h, zInfo, geo, floatType), layout: 'tap-gradient', shape: [geo.kernel1[0], geo.kernel1[1], geo.inChannels, geo.kernel2[0] * geo.kernel2[1] * geo.outChannels] });
    }
  }

  graph.node.push(...e.nodes);
  graph.initializer.push(...e.initializers);
  const batchDim = 'N';
  if (kind === 'mse') graph.input.push(makeValueInfo(labelsInput, floatType, outInfo.dims.map((d) => (d === null ? batchDim : d))));
  else graph.input.push(makeValueInfo(labelsInput, TensorProto_DataType.INT64, [batchDim]));
  graph.output = [makeValueInfo(lossSum, floatType, []), ...outputs.map((o) => makeValueInfo(o.output, floatType, o.shape))];
  const inputs = graph.input.filter((i) => !initializerNames.has(i.name) && i.name !== labelsInput).map((i) => i.name);
  return { model: proto, inputs, labelsInput, labelsType, lossOutput: lossSum, outputs, floatType };
}

function normalizeAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/**
 * A depthwise conv with one-hot kernels that extracts, for every input channel c and every kernel tap (r, q), the
 * strided window [s·y + (r, q) − pad] as output channel c·kh·kw + r·kw + q (zero outside the input).
 */
function windowsConv(e: Emitter, x: string, channels: number, kernel: [number, number], stride: [number, number], pads: { top: number; left: number; bottom: number; right: number }, t: number): string {
  const [kh, kw] = kernel;
  const taps = kh * kw;
  if (taps === 1 && stride[0] === 1 && stride[1] === 1 && pads.top + pads.left + pads.bottom + pads.right === 0) return x;
  const w = new Float64Array(channels * taps * taps);
  for (let c = 0; c < channels; c++) for (let k = 0; k < taps; k++) w[(c * taps + k) * taps + k] = 1;
  const kernelName = e.constant(t, [channels * taps, 1, kh, kw], w, 'onehot_windows');
  return e.op('Conv', [x, kernelName], { group: channels, kernel_shape: [kh, kw], strides: [stride[0], stride[1]], pads: [pads.top, pads.left, pads.bottom, pads.right] });
}

/**
 * Emits the conv tap gradient `[k1h, k1w, m0, k2h·k2w·m2]` (the current conv's weight gradient against the
 * tap-scattered next-layer gradient, summed over the batch) without materialising the scattered gradient:
 * P = the current conv's input windows (a one-hot depthwise conv: `[N, m0·k1h·k1w, H1, W1]`); the next conv's
 * windows of P (another one-hot depthwise conv with stride s2 and pads p2, so positions u = s2·y + b − p2 outside
 * the intermediate map are zero — the exact masking) give, per output position y, every (c_in, a, b) product
 * partner of g[y]; one batched MatMul against g contracts positions, a ReduceSum the examples.
 */
function emitTapGradient(e: Emitter, g: string, x: string, zInfo: TensorInfo, geo: ConvPairGeometry, t: number): string {
  const [k1h, k1w] = geo.kernel1;
  const [k2h, k2w] = geo.kernel2;
  const m0 = geo.inChannels;
  const m2 = geo.outChannels;
  const [H1, W1] = geo.midSize;
  const [H2, W2] = geo.outputSize;
  const K1 = k1h * k1w * m0;
  const F = k2h * k2w * m2;
  const patches = windowsConv(e, x, m0, geo.kernel1, geo.stride1, geo.pad1, t); // channel c_in·k1² + a
  const p2 = geo.pad2;
  const flattenDense = H2 === 1 && W2 === 1 && k2h === H1 && k2w === W1 && p2.top === 0 && p2.left === 0;
  let r: string;
  let rows: number[];
  if (flattenDense) {
    // One tap per intermediate position: R[(c_in, a, u), c_out] = Σ_n P[n, (c_in, a), u] · g[n, c_out].
    const pf = e.reshape(patches, [-1, K1 * H1 * W1]);
    const gf = e.reshape(g, [-1, m2]);
    r = e.opset >= 12 ? e.op('Einsum', [pf, gf], { equation: 'nk,nm->km' }) : e.op('MatMul', [e.transpose(pf, [1, 0]), gf]);
    rows = [m0, k1h, k1w, k2h, k2w];
  } else {
    const taps = windowsConv(e, patches, K1, geo.kernel2, geo.stride2, p2, t); // channel (c_in·k1² + a)·k2² + b
    const kc = K1 * k2h * k2w;
    const g3 = e.reshape(zInfo.dims.length === 4 ? g : e.reshape(g, [-1, m2, 1, 1]), [-1, m2, H2 * W2]);
    const t3 = e.reshape(taps, [-1, kc, H2 * W2]);
    r = e.opset >= 12 ? e.op('Einsum', [t3, g3], { equation: 'nks,nms->km' }) : e.reduceSum(e.op('MatMul', [t3, e.transpose(g3, [0, 2, 1])]), [0], false);
    rows = [m0, k1h, k1w, k2h, k2w];
  }
  const ordered = e.transpose(e.reshape(r, [...rows, m2]), [1, 2, 0, 3, 4, 5]); // [k1h, k1w, m0, k2h, k2w, m2]
  return e.reshape(ordered, [k1h, k1w, m0, F]);
}
