/**
 * Finds channel groups over a layers graph by following channels: forward from a producer through per-channel
 * layers to consumers, and backward from every element-wise join to the producers of its other inputs (which must
 * gain the same channels). Concatenate moves the channels to an offset. Every layer is classified by the one rule
 * table (`rules.ts`); anything else refuses the group with the reason.
 */
import type { ScalarActivation } from '../activation/info.js';
import { scalarActivation } from '../activation/info.js';
import type { GraphNode, ModelGraph } from '../model/graph.js';
import { findVariable, readValues } from '../model/weights.js';
import { layerRule, ownActivation, preluNewSlope, type Config } from './rules.js';
import type { ChannelGroup, GroupMember, GroupRole } from './types.js';

/** Thrown inside the tracer to abandon a group; carries the reason. */
class Refusal extends Error {}

function refuse(reason: string): never {
  throw new Refusal(reason);
}

function config(node: GraphNode): Config {
  return node.layer.getConfig() as Config;
}

type Shape = (number | null)[];

function single(s: unknown): Shape {
  return (Array.isArray(s) && Array.isArray(s[0]) ? s[0] : s) as Shape;
}

function outShape(node: GraphNode): Shape {
  return single(node.layer.inboundNodes[0]?.outputShapes);
}

function inShapes(node: GraphNode): Shape[] {
  const s = node.layer.inboundNodes[0]?.inputShapes as unknown;
  return (Array.isArray(s) && Array.isArray(s[0]) ? s : [s]) as Shape[];
}

function lastDim(shape: Shape, what: string): number {
  const c = shape[shape.length - 1];
  if (c == null) refuse(`${what} has an unknown channel count`);
  return c;
}

interface Place {
  offset: number;
  channels: number;
  positions: number;
  flat: boolean;
}

class Tracer {
  readonly members = new Map<string, GroupMember>();
  private readonly seenForward = new Map<string, number>();
  private readonly seenBackward = new Set<string>();

  constructor(
    private readonly graph: ModelGraph,
    readonly units: number,
  ) {}

  private add(node: GraphNode, role: GroupRole, place: Place, outPositions = place.positions): void {
    const existing = this.members.get(node.name);
    if (existing) {
      if (existing.role !== role) refuse(`layer "${node.name}" would both ${existing.role === 'producer' ? 'produce' : 'read'} and ${role === 'producer' ? 'produce' : 'read'} the group's channels`);
      if (existing.offset !== place.offset) refuse(`layer "${node.name}" receives the group's channels at two offsets (${existing.offset}, ${place.offset})`);
      return;
    }
    this.members.set(node.name, { name: node.name, className: node.className, role, offset: place.offset, channels: place.channels, positions: place.positions, outPositions });
  }

  producer(node: GraphNode): void {
    const rule = layerRule(node.className)?.producer;
    if (!rule) refuse(`layer "${node.name}" (${node.className}) cannot gain output channels`);
    if (node.isOutput) refuse(`its output is a model output; widening it would change the output shape`);
    const problem = rule.problem?.(config(node));
    if (problem) refuse(`layer "${node.name}": ${problem}`);
    const act = ownActivation(config(node));
    if (typeof act === 'string') refuse(`layer "${node.name}": ${act}`);
    const width = lastDim(outShape(node), `layer "${node.name}"`);
    if (width !== this.units) refuse(`layer "${node.name}" has ${width} channels where the group has ${this.units}`);
    if (this.members.get(node.name)?.role === 'producer') return;
    this.add(node, 'producer', { offset: 0, channels: width, positions: 1, flat: false });
    this.forward(node, { offset: 0, channels: width, positions: 1, flat: false });
  }

  forward(node: GraphNode, place: Place): void {
    const seen = this.seenForward.get(node.name);
    if (seen !== undefined) {
      if (seen !== place.offset) refuse(`the group's channels reach "${node.name}" at two offsets`);
      return;
    }
    this.seenForward.set(node.name, place.offset);
    if (node.isOutput) refuse(`the channels reach model output "${node.name}"; widening it would change the output shape`);
    if (node.consumers.length === 0) refuse(`the output of "${node.name}" is not consumed by any layer`);
    for (const name of node.consumers) {
      const next = this.graph.byName.get(name)!;
      const rule = layerRule(next.className);
      const c = config(next);
      if (rule?.join) {
        this.join(next, node, place);
      } else if (rule?.pass) {
        const problem = rule.pass.problem?.(c, next.layer);
        if (problem) refuse(`layer "${next.name}": ${problem}`);
        const kind = rule.pass.kind;
        if (rule.pass.activation) {
          const act = rule.pass.activation(c, next.layer);
          if (typeof act === 'string') refuse(`layer "${next.name}": ${act}`);
        }
        let out = place;
        if (kind === 'flatten') {
          if (place.flat) refuse(`${next.className} "${next.name}" after the channels were already flattened`);
          const spatialDims = inShapes(next)[0]!.slice(1, -1);
          const global = next.className.startsWith('Global');
          if (!global && spatialDims.some((d) => d == null)) refuse(`Flatten "${next.name}" of a map whose size is not fixed`);
          const P = global ? 1 : (spatialDims as number[]).reduce((a, b) => a * b, 1);
          out = { ...place, positions: P, flat: true };
        } else if (place.flat && (kind === 'spatial' || kind === 'parameters')) {
          refuse(`${next.className} "${next.name}" after Flatten`);
        } else if (kind === 'reshape') {
          if (place.flat) refuse(`Reshape "${next.name}" after Flatten`);
          if (lastDim(outShape(next), `Reshape "${next.name}"`) !== place.channels) refuse(`Reshape "${next.name}" moves the channel axis`);
        }
        this.add(next, 'pass', place, out.positions);
        this.forward(next, out);
      } else if (rule?.consumer) {
        const problem = rule.consumer.problem?.(c);
        if (problem) refuse(`layer "${next.name}": ${problem}`);
        if (place.flat && next.className !== 'Dense') refuse(`${next.className} "${next.name}" reads flattened channels`);
        if (next.inputs.length !== 1) refuse(`layer "${next.name}" has several inputs`);
        this.add(next, 'consumer', place);
      } else if (rule?.refusal) {
        refuse(`${next.className} "${next.name}" ${rule.refusal}`);
      } else {
        refuse(`layer "${next.name}" (${next.className}) is not known to act per channel (custom or unsupported layer)`);
      }
    }
  }

  private join(join: GraphNode, from: GraphNode, place: Place): void {
    const kind = layerRule(join.className)!.join!;
    const index = join.inputs.indexOf(from.name);
    if (join.inputs.lastIndexOf(from.name) !== index) refuse(`"${from.name}" enters join "${join.name}" twice`);
    const shapes = inShapes(join);
    if (kind === 'concatenate') {
      const rank = shapes[0]!.length;
      const axis = Number(config(join)['axis'] ?? -1);
      if (axis !== -1 && axis !== rank - 1) refuse(`Concatenate "${join.name}" joins along axis ${axis}, not the channel axis`);
      if (place.flat) refuse(`Concatenate "${join.name}" joins flattened channels`);
      let start = 0;
      for (let i = 0; i < index; i++) start += lastDim(shapes[i]!, `input ${i} of "${join.name}"`);
      const total = lastDim(outShape(join), `Concatenate "${join.name}"`);
      const out = { ...place, offset: start + place.offset, channels: total };
      this.add(join, 'join', out);
      this.forward(join, out);
      return;
    }
    shapes.forEach((s, i) => {
      if (lastDim(s, `input ${i} of "${join.name}"`) !== place.channels) refuse(`${join.className} "${join.name}" joins inputs with different channel counts`);
    });
    this.add(join, 'join', place);
    join.inputs.forEach((name, i) => {
      if (i !== index) this.backward(this.graph.byName.get(name)!, place.offset, place.channels, join);
    });
    this.forward(join, place);
  }

  /** `node`'s output must carry the group's channels at `offset` (of `channels`). */
  private backward(node: GraphNode, offset: number, channels: number, via: GraphNode): void {
    const key = `${node.name}@${offset}`;
    if (this.seenBackward.has(key)) return;
    this.seenBackward.add(key);
    const rule = layerRule(node.className);
    if (node.className === 'InputLayer') refuse(`join "${via.name}" adds the model input "${node.name}" to the group's channels; the input cannot gain channels`);
    if (rule?.producer) {
      if (offset !== 0 || channels !== this.units) refuse(`join "${via.name}" would need "${node.name}" to gain channels in the middle of its output`);
      this.producer(node);
    } else if (rule?.pass && node.inputs.length === 1) {
      if (rule.pass.kind === 'flatten') refuse(`join "${via.name}" reads channels flattened by "${node.name}"`);
      this.backward(this.graph.byName.get(node.inputs[0]!)!, offset, channels, via);
    } else if (rule?.join === 'concatenate') {
      const shapes = inShapes(node);
      let start = 0;
      for (let i = 0; i < shapes.length; i++) {
        const width = lastDim(shapes[i]!, `input ${i} of "${node.name}"`);
        if (offset >= start && offset < start + width) {
          if (offset + this.units > start + width) refuse(`join "${via.name}" needs channels that span two inputs of Concatenate "${node.name}"`);
          this.backward(this.graph.byName.get(node.inputs[i]!)!, offset - start, width, via);
          return;
        }
        start += width;
      }
      refuse(`Concatenate "${node.name}" has no channel at offset ${offset}`);
    } else if (rule?.join) {
      node.inputs.forEach((name) => this.backward(this.graph.byName.get(name)!, offset, channels, via));
    } else {
      refuse(`join "${via.name}" needs "${node.name}" (${node.className}) to gain channels, which it cannot`);
    }
  }
}

/** Scalar value and per-producer derivatives of a new channel at a layer's output. */
export interface Dual {
  v: number;
  d: Map<string, number>;
}

function applyScalar(a: ScalarActivation, x: Dual): Dual {
  const slope = x.v === 0 ? a.df0 : a.df(x.v);
  return { v: x.v === 0 ? a.f0 : a.f(x.v), d: new Map([...x.d].map(([k, v]) => [k, v * slope])) };
}

/** The activation a pass-through layer applies to a new channel (PReLU with its new slope), if any. */
function passActivation(node: GraphNode): ScalarActivation | undefined {
  const rule = layerRule(node.className)?.pass;
  if (node.className === 'PReLU') {
    const alpha = findVariable(node.layer, 'alpha');
    return scalarActivation('prelu', alpha ? preluNewSlope(readValues(alpha)) : 0);
  }
  const act = rule?.activation?.(config(node), node.layer);
  return typeof act === 'string' ? undefined : act;
}

/**
 * Dual numbers pushed from each producer's pre-activation (seed 1 at its own activation's f'(0)) through the group's
 * per-channel layers and joins: for every consumer, the value a new unit with zero incoming weights shows it and
 * the derivative of that value with respect to each producer's new pre-activation.
 */
export function groupDuals(graph: ModelGraph, members: ReadonlyMap<string, GroupMember>): { consumers: Map<string, Dual>; names: string[] } {
  const duals = new Map<string, Dual>();
  const consumers = new Map<string, Dual>();
  const names = new Set<string>();
  for (const node of graph.nodes) {
    const m = members.get(node.name);
    if (!m) continue;
    const inputs = node.inputs.map((n) => duals.get(n)).filter((d): d is Dual => d !== undefined);
    let out: Dual;
    if (m.role === 'producer') {
      const act = ownActivation(config(node)) as ScalarActivation;
      names.add(act.name);
      out = { v: act.f0, d: new Map([[node.name, act.df0]]) };
    } else if (m.role === 'consumer') {
      consumers.set(node.name, inputs[0]!);
      continue;
    } else if (m.role === 'pass') {
      const act = passActivation(node);
      if (act && act.name !== 'linear') names.add(act.name);
      out = act ? applyScalar(act, inputs[0]!) : inputs[0]!;
    } else {
      out = joinDual(layerRule(node.className)!.join!, inputs);
      names.add(node.className);
    }
    duals.set(node.name, out);
  }
  return { consumers, names: [...names] };
}

/** f(0) and f'(0) of a group (see {@link ChannelGroup.activation}) from {@link groupDuals}. */
function groupActivation(graph: ModelGraph, members: Map<string, GroupMember>): ChannelGroup['activation'] {
  const { consumers, names } = groupDuals(graph, members);
  let f0 = 0;
  let df0 = 0;
  for (const x of consumers.values()) {
    if (Math.abs(x.v) > Math.abs(f0)) f0 = x.v;
    for (const v of x.d.values()) if (Math.abs(v) > Math.abs(df0)) df0 = v;
  }
  return { name: names.join('·'), f0, df0 };
}

function joinDual(kind: string, xs: Dual[]): Dual {
  if (xs.length === 1 || kind === 'concatenate') return xs[0]!;
  const combine = (weights: number[], v: number): Dual => {
    const d = new Map<string, number>();
    xs.forEach((x, i) => x.d.forEach((g, k) => d.set(k, (d.get(k) ?? 0) + weights[i]! * g)));
    return { v, d };
  };
  switch (kind) {
    case 'add':
      return combine(xs.map(() => 1), xs.reduce((s, x) => s + x.v, 0));
    case 'average':
      return combine(xs.map(() => 1 / xs.length), xs.reduce((s, x) => s + x.v, 0) / xs.length);
    case 'multiply':
      return combine(xs.map((_, i) => xs.reduce((p, x, j) => (j === i ? p : p * x.v), 1)), xs.reduce((p, x) => p * x.v, 1));
    default: {
      // maximum / minimum: tfjs routes the gradient of a tie to the earlier input.
      let best = 0;
      xs.forEach((x, i) => {
        if (kind === 'maximum' ? x.v > xs[best]!.v : x.v < xs[best]!.v) best = i;
      });
      return combine(xs.map((_, i) => (i === best ? 1 : 0)), xs[best]!.v);
    }
  }
}

/** Result of tracing from one producer: a group or the reason there is none. */
export type TraceResult = { group: ChannelGroup } | { reason: string };

/** Traces the channel group of producer `start` in `graph`. */
export function traceGroup(graph: ModelGraph, start: GraphNode): TraceResult {
  const width = outShape(start)[outShape(start).length - 1];
  if (width == null) return { reason: 'its channel count is unknown' };
  const tracer = new Tracer(graph, width);
  try {
    tracer.producer(start);
  } catch (error) {
    if (error instanceof Refusal) return { reason: error.message };
    throw error;
  }
  const ordered = graph.nodes.map((n) => tracer.members.get(n.name)).filter((m): m is GroupMember => m !== undefined);
  const byRole = (role: GroupRole) => ordered.filter((m) => m.role === role);
  const producers = byRole('producer');
  const consumers = byRole('consumer');
  const group: ChannelGroup = {
    name: `${producers.map((m) => m.name).join('+')}->${consumers.map((m) => m.name).join('+')}`,
    units: width,
    producers,
    passThrough: byRole('pass'),
    joins: byRole('join'),
    consumers,
    activation: groupActivation(graph, tracer.members),
  };
  return { group };
}
