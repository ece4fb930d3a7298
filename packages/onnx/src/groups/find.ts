/**
 * Finding channel groups. From a layer's output channels, the channel axis is followed through the graph with the
 * per-op rules of {@link CHANNEL_RULES}; an elementwise join with a value that carries the same channels pulls the
 * layers producing that value into the group (a residual stage grows as one group; a squeeze-excitation gate's
 * producer gets zero rows), and the walk restarts until nothing new joins. Every layer reading the channels is a
 * consumer. Refusals name the node that blocks growth.
 * @packageDocumentation
 */
import { InvalidArgumentError } from '@gradmax/core';
import type { NodeProto } from 'onnx-buf';
import { nodeLabel } from '../attributes.js';
import type { OnnxModel, WeightRef } from '../model.js';
import { inferShapes, type Shape } from '../shapes.js';
import { dataTypeName } from '../tensor.js';
import { GroupRefusal, resolveWeight, isDepthwise, isLayerCandidate, parseConsumer, parseProducer, producerUnits, refuse } from './layers.js';
import { seed } from './lin.js';
import { CHANNEL_RULES, TRACE_JOIN, TRACE_LAYOUT, TRACE_THROUGH, type ChannelContext, type ChannelValue, type Hit } from './rules.js';
import type { GroupLayer, GroupParam, GroupPlan, OnnxGroup, ParamFill } from './types.js';

const QUANTIZED = /^(Q|DynamicQuantize|Dequantize|Quantize)|Integer|^QLinear/;
const SUBGRAPH_OPS = new Set(['If', 'Loop', 'Scan']);
const LAYOUT_OPS = new Set(['Identity', 'Dropout', 'Cast', 'Transpose', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Shape', 'Concat', 'Slice', 'Gather', 'Split']);

const plans = new WeakMap<OnnxGroup, GroupPlan>();
const origins = new WeakMap<OnnxGroup, { model: OnnxModel; revision: number }>();

/** The internal plan of a growable group found by {@link findGroups} (undefined when not growable). */
export function groupPlan(group: OnnxGroup): GroupPlan | undefined {
  return plans.get(group);
}

/** True when `group` was found on `model` and the model has not been edited since. */
export function isCurrentGroup(model: OnnxModel, group: OnnxGroup): boolean {
  const o = origins.get(group);
  return Boolean(o && o.model === model && o.revision === model.revision);
}

/** Thrown inside a walk when a joined operand brings new producers: the walk restarts with them. */
class JoinSignal {
  constructor(
    readonly nodes: NodeProto[],
    readonly role: 'main' | 'gate',
  ) {}
}

/** Nodes in a topological order that keeps the file's order where it is already valid. */
export function topologicalOrder(model: OnnxModel): NodeProto[] {
  const nodes = model.graph.node;
  const done = new Set<NodeProto>();
  const active = new Set<NodeProto>();
  const out: NodeProto[] = [];
  const visit = (root: NodeProto) => {
    const stack: { node: NodeProto; next: number }[] = [{ node: root, next: 0 }];
    active.add(root);
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      if (top.next < top.node.input.length) {
        const name = top.node.input[top.next++];
        const p = name ? model.producerOf(name) : undefined;
        if (p && !done.has(p) && !active.has(p)) {
          active.add(p);
          stack.push({ node: p, next: 0 });
        }
        continue;
      }
      stack.pop();
      active.delete(top.node);
      done.add(top.node);
      out.push(top.node);
    }
  };
  for (const n of nodes) if (!done.has(n)) visit(n);
  return out;
}

interface Walk {
  cvs: Map<string, ChannelValue>;
  mains: GroupLayer[];
  gates: GroupLayer[];
  consumers: GroupLayer[];
  params: GroupParam[];
  depthwise: NodeProto[];
  targets: GroupPlan['targets'];
  values: GroupPlan['values'];
  passthrough: Map<NodeProto, string>;
  inexact: string[];
  units: number;
  /** Producers that also read the group's channels. */
  selfLayers: NodeProto[];
}

function isDefaultDomain(n: NodeProto): boolean {
  return n.domain === '' || n.domain === 'ai.onnx';
}

class Context implements ChannelContext {
  readonly walk: Walk;
  readonly opset: number;
  constructor(
    readonly model: OnnxModel,
    private readonly shapes: Map<string, Shape>,
    readonly units: number,
    readonly directions: number,
    private readonly position: Map<NodeProto, number>,
    private readonly members: Map<NodeProto, 'main' | 'gate'>,
  ) {
    this.opset = model.opsetVersion('') ?? 13;
    this.walk = { cvs: new Map(), mains: [], gates: [], consumers: [], params: [], depthwise: [], targets: [], values: [], passthrough: new Map(), inexact: [], units, selfLayers: [] };
  }
  weight(value: string): WeightRef | undefined {
    return resolveWeight(this.model, value);
  }
  shape(value: string): Shape {
    const w = this.weight(value);
    if (w) return w.tensor.dims.map((d) => Number(d));
    return this.shapes.get(value);
  }
  constant(value: string | undefined): number[] | undefined {
    if (!value) return undefined;
    const w = this.weight(value);
    if (!w) return undefined;
    try {
      return Array.from(this.model.readNumbers(w.tensor));
    } catch {
      return undefined;
    }
  }
  register(value: string, cv: ChannelValue): void {
    const model = this.model;
    if (model.indexes.outputs.has(value)) refuse(`value "${value}" carries the group's channels and is a graph output; widening would change the model's outputs`);
    for (const c of model.consumersOf(value)) {
      if (SUBGRAPH_OPS.has(c.opType)) refuse(`value "${value}" is used inside a subgraph of ${c.opType} "${nodeLabel(c)}"; subgraphs are not rewritten`);
    }
    if (this.walk.cvs.has(value)) refuse(`value "${value}" receives the group's channels twice`);
    this.walk.cvs.set(value, cv);
    this.walk.values.push({ name: value, axis: cv.axis, blk: cv.blk });
  }
  emit(node: NodeProto, value: string, cv: ChannelValue, effect: string): void {
    this.register(value, cv);
    this.walk.passthrough.set(node, effect);
  }
  consumer(node: NodeProto, idx: number, cv: ChannelValue): void {
    const role = this.members.get(node);
    if (role === 'gate') refuse(`${node.opType} "${nodeLabel(node)}" both reads the group's channels and produces its gate`);
    if (this.walk.consumers.some((c) => c.node === node)) refuse(`${node.opType} "${nodeLabel(node)}" reads the group's channels twice`);
    const layer = parseConsumer(this.model, node, idx, cv, this.units);
    if (role === 'main') {
      // A layer that reads the channels and writes them back (a residual block's last conv): its weight grows on both
      // axes; the corner (new outputs × new inputs) stays zero, new channels are appended at the end of both.
      if (cv.offset !== 0) refuse(`${node.opType} "${nodeLabel(node)}" produces the group's channels and reads them behind a Concat offset`);
      if (layer.groups > 1) refuse(`grouped ${node.opType} "${nodeLabel(node)}" both reads and produces the group's channels`);
      this.walk.selfLayers.push(node);
    }
    layer.coefficients = [...cv.lin.d];
    layer.f0 = cv.lin.v;
    if (cv.stride) layer.stride = [...cv.stride];
    if (cv.mean) layer.mean = true;
    if (cv.maps) layer.maps = cv.maps.map((m) => m?.map((idx) => [...idx]));
    this.walk.consumers.push(layer);
  }
  param(node: NodeProto, input: number, weight: WeightRef, axis: number, cv: ChannelValue, fill: ParamFill, eps?: number): void {
    const dims = weight.tensor.dims.map((d) => Number(d));
    if (axis < 0 || axis >= dims.length || dims[axis]! < cv.offset + this.units * cv.blk) {
      refuse(`${node.opType} "${nodeLabel(node)}": parameter "${weight.name}" has shape [${dims.join(', ')}], which does not hold ${this.units} channels on axis ${axis}`);
    }
    this.walk.params.push({ node, input, weight, axis, blk: cv.blk, offset: cv.offset, fill, ...(eps !== undefined ? { eps } : {}) });
  }
  depthwise(node: NodeProto): void {
    this.walk.depthwise.push(node);
  }
  target(node: NodeProto, input: number, index: number, blk: number): void {
    const w = this.weight(node.input[input] ?? '');
    if (!w) refuse(`${node.opType} "${nodeLabel(node)}": input ${input} is not a stored tensor`);
    this.walk.targets.push({ node, input, weight: w, index, blk });
  }
  join(node: NodeProto, value: string, role: 'main' | 'gate'): never {
    const found = traceBack(this.model, this.shapes, value, node);
    const fresh = found.filter((p) => !this.members.has(p));
    for (const p of found) {
      const r = this.members.get(p);
      if (r && r !== role) refuse(`${nodeLabel(p)} would be both a producer and a gate of the group (through ${node.opType} "${nodeLabel(node)}")`);
    }
    if (!fresh.length) refuse(`${node.opType} "${nodeLabel(node)}" combines the group's channels with "${value}", whose channels come from the group in a way that cannot be traced`);
    throw new JoinSignal(fresh, role);
  }
  inexact(_node: NodeProto, why: string): void {
    if (!this.walk.inexact.includes(why)) this.walk.inexact.push(why);
  }
  pos(node: NodeProto): number {
    return this.position.get(node) ?? -1;
  }
}

/** Layers that produce `value` (through per-channel ops and elementwise joins), or a refusal. */
function traceBack(model: OnnxModel, shapes: Map<string, Shape>, value: string, via: NodeProto): NodeProto[] {
  const found: NodeProto[] = [];
  const seen = new Set<string>();
  const visit = (v: string) => {
    if (seen.has(v)) return;
    seen.add(v);
    const p = model.producerOf(v);
    if (!p) refuse(`${via.opType} "${nodeLabel(via)}" combines the group's channels with "${v}", a graph input; its channels cannot grow`);
    if (!isDefaultDomain(p)) refuse(`${via.opType} "${nodeLabel(via)}": the joined value "${v}" comes from ${p.opType} (domain "${p.domain}")`);
    if (isLayerCandidate(model, p)) {
      found.push(p);
      return;
    }
    if ((p.opType === 'Conv' && isDepthwise(model, p)) || TRACE_THROUGH.has(p.opType) || TRACE_LAYOUT.has(p.opType)) {
      visit(p.input[0]!);
      return;
    }
    if (TRACE_JOIN.has(p.opType)) {
      const out = shapes.get(v);
      for (const i of p.input) {
        if (!i || resolveWeight(model, i)) continue;
        const s = shapes.get(i);
        if (out && s && s.length === out.length && s.some((d, k) => d === 1 && out[k] !== 1 && k === 1)) continue; // broadcast along channels
        visit(i);
      }
      return;
    }
    refuse(`${via.opType} "${nodeLabel(via)}" combines the group's channels with "${v}", produced by ${p.opType} "${nodeLabel(p)}"; its channels cannot be traced back to a layer`);
  };
  visit(value);
  return found;
}

interface Analysis {
  group: OnnxGroup;
  plan?: GroupPlan;
  members: NodeProto[];
}

/**
 * Finds every channel group: one entry per layer (Conv of any rank and group count, ConvTranspose, Gemm, MatMul
 * with a stored weight) that does not already belong to an earlier group, growable or not. Never throws for
 * unsupported structures: they become entries with `growable: false` and a reason naming the node.
 */
export function findGroups(model: OnnxModel): OnnxGroup[] {
  const order = topologicalOrder(model);
  const position = new Map(order.map((n, i) => [n, i]));
  const shapes = inferShapes(model);
  const assigned = new Set<NodeProto>();
  const groups: OnnxGroup[] = [];
  for (const node of order) {
    if (assigned.has(node)) continue;
    if (SUBGRAPH_OPS.has(node.opType)) {
      for (const inner of subgraphLayers(node)) {
        groups.push({ name: nodeLabel(inner), growable: false, reason: `${inner.opType} "${nodeLabel(inner)}" is inside a subgraph of ${node.opType} "${nodeLabel(node)}"; subgraphs are not rewritten`, members: { producers: [nodeLabel(inner)], passthrough: [], consumers: [] }, notes: [] });
      }
      continue;
    }
    if (isDefaultDomain(node) && QUANTIZED.test(node.opType) && /Conv|MatMul|Gemm/.test(node.opType)) {
      groups.push({ name: nodeLabel(node), growable: false, reason: `${node.opType} "${nodeLabel(node)}" is a quantized op; quantized layers cannot be widened`, members: { producers: [nodeLabel(node)], passthrough: [], consumers: [] }, notes: [] });
      continue;
    }
    if (!isLayerCandidate(model, node)) continue;
    const a = analyse(model, node, order, position, shapes);
    for (const m of a.members) assigned.add(m);
    groups.push(a.group);
  }
  for (const g of groups) origins.set(g, { model, revision: model.revision });
  return groups;
}

/** Layers (Conv, ConvTranspose, Gemm, MatMul) inside the If/Loop/Scan subgraphs of `node`, recursively. */
export function subgraphLayers(node: NodeProto, depth = 0): NodeProto[] {
  const out: NodeProto[] = [];
  if (depth > 16) return out;
  for (const a of node.attribute) {
    for (const g of a.g ? [a.g, ...a.graphs] : a.graphs) {
      for (const n of g.node) {
        if (['Conv', 'ConvTranspose', 'Gemm', 'MatMul'].includes(n.opType)) out.push(n);
        if (SUBGRAPH_OPS.has(n.opType)) out.push(...subgraphLayers(n, depth + 1));
      }
    }
  }
  return out;
}

/**
 * Finds a group by its name, any producer's node label, or `"<producer>-><consumer>"`. Throws
 * {@link InvalidArgumentError} listing the growable groups when nothing matches.
 */
export function findGroup(model: OnnxModel, name: string, groups = findGroups(model)): OnnxGroup {
  const byName = groups.find((g) => g.name === name) ?? groups.find((g) => g.members.producers.includes(name));
  if (byName) return byName;
  const arrow = name.indexOf('->');
  if (arrow > 0) {
    const p = name.slice(0, arrow);
    const c = name.slice(arrow + 2);
    const g = groups.find((x) => x.members.producers.includes(p) && (c === '?' || x.members.consumers.includes(c)));
    if (g) return g;
  }
  const growable = groups.filter((g) => g.growable).map((g) => g.name);
  throw new InvalidArgumentError(`no group named "${name}" in ${model.label}; growable groups: ${growable.join(', ') || '(none)'}`, { group: name, file: model.label });
}

function analyse(model: OnnxModel, start: NodeProto, order: NodeProto[], position: Map<NodeProto, number>, shapes: Map<string, Shape>): Analysis {
  const members = new Map<NodeProto, 'main' | 'gate'>([[start, 'main']]);
  const group: OnnxGroup = { name: nodeLabel(start), growable: false, members: { producers: [nodeLabel(start)], passthrough: [], consumers: [] }, notes: [] };
  const list = () => [...members.keys()];
  let walk: Walk | undefined;
  try {
    for (let round = 0; ; round++) {
      if (round > 256) refuse('too many layers join the group');
      try {
        walk = runWalk(model, order, position, shapes, members);
        break;
      } catch (e) {
        if (!(e instanceof JoinSignal)) throw e;
        for (const n of e.nodes) members.set(n, e.role);
        const mains = [...members].filter(([, r]) => r === 'main').map(([n]) => n).sort((x, y) => position.get(x)! - position.get(y)!);
        group.name = nodeLabel(mains[0]!);
        group.members.producers = mains.map(nodeLabel);
      }
    }
    const plan = finish(model, walk, group);
    plans.set(group, plan);
    return { group, plan, members: list() };
  } catch (e) {
    if (!(e instanceof GroupRefusal)) {
      if (e instanceof Error) group.reason = `cannot analyse: ${e.message}`;
      else throw e;
    } else group.reason = e.message;
    group.growable = false;
    return { group, members: list() };
  }
}

function runWalk(model: OnnxModel, order: NodeProto[], position: Map<NodeProto, number>, shapes: Map<string, Shape>, members: Map<NodeProto, 'main' | 'gate'>): Walk {
  const sorted = [...members.keys()].sort((a, b) => position.get(a)! - position.get(b)!);
  const mains = sorted.filter((n) => members.get(n) === 'main');
  const rankOf = (v: string) => shapes.get(v)?.length;
  const parsed = sorted.map((n) => ({ node: n, p: parseProducer(model, n, rankOf) }));
  const units = producerUnits(parsed.find((x) => x.node === mains[0])!.p.layer);
  const ctx = new Context(model, shapes, units, mains.length, position, members);
  const w = ctx.walk;
  const folded = new Set<NodeProto>();
  for (const { node, p } of parsed) {
    const u = producerUnits(p.layer);
    if (u !== units) refuse(`the layers joined into this group have different widths: ${nodeLabel(mains[0]!)} has ${units} channels, ${nodeLabel(node)} has ${u}`);
    const main = members.get(node) === 'main';
    (main ? w.mains : w.gates).push(p.layer);
    for (const f of p.folded) folded.add(f);
    if (p.output !== node.output[0]) w.values.push({ name: node.output[0]!, axis: p.axis, blk: 1 });
    ctx.register(p.output, { axis: p.axis, rank: p.rank, blk: 1, offset: 0, lin: seed(mains.length, main ? mains.indexOf(node) : -1) });
  }
  const first = position.get(sorted[0]!)!;
  for (let i = first; i < order.length; i++) {
    const node = order[i]!;
    if (folded.has(node)) continue;
    const hits: Hit[] = [];
    node.input.forEach((n, idx) => {
      const cv = n ? w.cvs.get(n) : undefined;
      if (cv) hits.push({ idx, cv });
    });
    if (!hits.length) continue;
    const nl = nodeLabel(node);
    if (members.get(node) === 'gate') refuse(`${node.opType} "${nl}" both reads the group's channels and produces its gate`);
    if (!isDefaultDomain(node)) refuse(`${node.opType} "${nl}" (domain "${node.domain}") is not known to keep new channels at zero`);
    if (QUANTIZED.test(node.opType)) refuse(`${node.opType} "${nl}" is a quantized op on the path of the group`);
    if (SUBGRAPH_OPS.has(node.opType)) refuse(`the group's channels are used inside a subgraph of ${node.opType} "${nl}"`);
    const rule = CHANNEL_RULES[node.opType];
    if (!rule) refuse(`${node.opType} "${nl}" is not known to keep new channels at zero (no channel rule for ${node.opType})`);
    rule(ctx, node, hits);
  }
  return w;
}

function finish(model: OnnxModel, w: Walk, group: OnnxGroup): GroupPlan {
  if (!w.consumers.length) refuse(`no layer reads the channels of ${group.members.producers.join(', ')}; nothing absorbs new units`);
  const dataType = w.mains[0]!.weight.tensor.dataType;
  for (const l of [...w.mains, ...w.gates, ...w.consumers]) {
    if (l.weight.tensor.dataType !== dataType) refuse(`weights of the group have different types (${dataTypeName(dataType)} and ${dataTypeName(l.weight.tensor.dataType)} in ${nodeLabel(l.node)})`);
  }
  const grouped = [...new Set([...w.mains, ...w.gates, ...w.consumers].filter((l) => l.groups > 1).map((l) => l.groups))];
  if (grouped.length > 1) refuse(`the group's grouped convolutions have different group counts (${grouped.join(', ')})`);
  const multiple = grouped[0] ?? 1;
  if (w.units % multiple !== 0) refuse(`${w.units} channels do not split into ${multiple} conv groups`);
  if (multiple > 1 && w.selfLayers.length) refuse(`${nodeLabel(w.selfLayers[0]!)} both reads and produces the channels of a group with grouped convolutions`);
  let fanIn = 0;
  for (const l of w.mains) {
    l.start = fanIn;
    fanIn += l.length;
  }
  let fanOut = 0;
  for (const l of w.consumers) {
    l.start = fanOut;
    fanOut += l.length;
  }
  const f0s = w.consumers.map((c) => c.f0 ?? 0);
  const f0 = f0s.find((v) => v !== 0) ?? 0;
  let df0 = 0;
  let anyNaN = false;
  for (const c of w.consumers) {
    for (const d of c.coefficients ?? []) {
      if (Number.isNaN(d)) anyNaN = true;
      else if (Math.abs(d) > Math.abs(df0)) df0 = d;
    }
  }
  const ops: string[] = [];
  for (const [n] of w.passthrough) if (!LAYOUT_OPS.has(n.opType) && !ops.includes(n.opType)) ops.push(n.opType);
  const activation = { name: ops.join('+') || 'identity', f0: Number.isNaN(f0) ? NaN : f0, df0: anyNaN && df0 === 0 ? NaN : df0 };
  group.growable = true;
  group.units = w.units;
  group.multiple = multiple;
  group.fanIn = fanIn;
  group.fanOut = fanOut;
  group.dataType = dataTypeName(dataType);
  group.activation = activation;
  group.members = {
    producers: w.mains.map((l) => nodeLabel(l.node)),
    passthrough: [...w.gates.map((l) => nodeLabel(l.node)), ...[...w.passthrough.keys()].map(nodeLabel)],
    consumers: w.consumers.map((l) => nodeLabel(l.node)),
  };
  group.incomingBlocks = w.mains.map((l) => ({ node: nodeLabel(l.node), start: l.start, end: l.start + l.length }));
  group.outgoingBlocks = w.consumers.map((l) => ({ node: nodeLabel(l.node), start: l.start, end: l.start + l.length }));
  if (w.gates.length) group.notes.push(`gate producers ${w.gates.map((l) => nodeLabel(l.node)).join(', ')} get zero rows for the new channels`);
  if (f0 !== 0) group.notes.push(`a consumer sees f(0) = ${f0} on a new channel: incoming-zero strategies (e.g. gradmax, random) would change the function here; use an outgoing-zero or copying strategy (randomOutgoingZero, north, net2net)`);
  if (w.inexact.length) group.notes.push(`GradMax statistics as pair correlations would be inexact: ${w.inexact.slice(0, 3).join('; ')}${w.inexact.length > 3 ? '; …' : ''}`);
  if (w.selfLayers.length) group.notes.push(`${w.selfLayers.map(nodeLabel).join(', ')} both read and produce the group's channels: their weights grow on both axes, the new-to-new block stays zero`);
  if (multiple > 1) group.notes.push(`grouped convolutions: new units come in multiples of ${multiple}, one share per conv group`);
  return {
    producers: w.mains,
    gates: w.gates,
    consumers: w.consumers,
    params: w.params,
    depthwise: w.depthwise,
    targets: w.targets,
    values: w.values,
    units: w.units,
    multiple,
    fanIn,
    fanOut,
    activation,
    dataType,
    inexact: [...w.inexact],
  };
}
