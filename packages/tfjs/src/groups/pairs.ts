/**
 * Fast exact group statistics where the group allows it: a group whose producers and consumers are Dense or
 * undilated Conv2D layers, whose joins scale a new channel by constants (Add, Average, Concatenate) and whose
 * per-channel layers are those the pair statistics know (Dropout, activations, BatchNorm, DepthwiseConv2D, 2-D
 * pooling, Flatten, global pooling) has, for each (producer p, consumer c) block of M, the pair growth matrix of
 * "p → c through the layers on the path", times the path's derivative at 0 over the group's f'(0). All blocks come
 * from one forward/backward pass of the unwidened model (the pair statistics' probes), instead of a pass of the
 * model widened by Σ(consumer fan-outs) virtual channels.
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import { scalarActivation } from '../activation/info.js';
import { modelGraph, type GraphNode, type ModelGraph } from '../model/graph.js';
import type { BetweenLayer, TfjsGrowthSite } from '../sites/types.js';
import { groupDuals } from './find.js';
import { layerRule, ownActivation, type Config } from './rules.js';
import type { ChannelGroup, GroupMember } from './types.js';

/** A block of the group's M computed as a pair site. */
export interface PairBlock {
  /** Index of the producer in `group.producers`. */
  producer: number;
  /** Index of the consumer in `group.consumers`. */
  consumer: number;
  /** The pair site p → c (a virtual site: its name is unique, its layers are the model's). */
  site: TfjsGrowthSite;
  /** Path derivative at 0 over the group's f'(0). */
  factor: number;
}

const CONSTANT_JOINS = new Set(['add', 'average', 'concatenate']);

function undilated2d(node: GraphNode): boolean {
  const c = node.layer.getConfig() as Config;
  const recorded = node.layer.inboundNodes[0]?.inputShapes as unknown as unknown[];
  const inShape = Array.isArray(recorded) && Array.isArray(recorded[0]) ? (recorded[0] as unknown[]) : recorded;
  if (node.className === 'Dense') return Array.isArray(inShape) && inShape.length === 2;
  if (node.className !== 'Conv2D') return false;
  const d = c['dilationRate'];
  return (Array.isArray(d) ? d.map(Number) : [Number(d ?? 1)]).every((v) => v === 1);
}

/** Every path from `from` to consumer `to` through group members: the pass-through members on each, in order. */
function paths(graph: ModelGraph, members: ReadonlyMap<string, GroupMember>, from: string, to: string): GraphNode[][] {
  const out: GraphNode[][] = [];
  const walk = (name: string, trail: GraphNode[]) => {
    for (const next of graph.byName.get(name)!.consumers) {
      if (next === to) out.push(trail);
      const m = members.get(next);
      if (!m || m.role === 'consumer' || m.role === 'producer') continue;
      const node = graph.byName.get(next)!;
      walk(next, m.role === 'pass' ? [...trail, node] : trail);
    }
  };
  walk(from, []);
  return out;
}

/** The pair blocks of `group`, or undefined when the group needs the general (virtual-unit) statistics. */
export function pairBlocks(model: tfl.LayersModel, group: ChannelGroup): PairBlock[] | undefined {
  const graph = modelGraph(model);
  const node = (m: GroupMember) => graph.byName.get(m.name)!;
  if (![...group.producers, ...group.consumers].every((m) => undilated2d(node(m)))) return undefined;
  if (!group.joins.every((m) => CONSTANT_JOINS.has(layerRule(m.className)?.join ?? ''))) return undefined;
  const pairRole = (m: GroupMember) => layerRule(m.className)?.pass?.pairRole;
  if (!group.passThrough.every((m) => pairRole(m) !== undefined && (m.className !== 'DepthwiseConv2D' || undilated2d({ ...node(m), className: 'Conv2D' })))) return undefined;
  const members = new Map([...group.producers, ...group.passThrough, ...group.joins, ...group.consumers].map((m) => [m.name, m]));
  const { consumers: duals } = groupDuals(graph, members);
  const df0 = group.activation.df0 === 0 ? 1 : group.activation.df0;
  const blocks: PairBlock[] = [];
  for (const [pi, p] of group.producers.entries()) {
    for (const [ci, c] of group.consumers.entries()) {
      const found = paths(graph, members, p.name, c.name);
      if (found.length === 0) continue;
      if (found.length > 1) return undefined;
      const trail = found[0]!;
      const between: BetweenLayer[] = trail.map((n) => {
        const entry: BetweenLayer = { name: n.name, className: n.className, role: pairRole(members.get(n.name)!)! };
        return entry;
      });
      const flattened = between.some((b) => b.role === 'flatten' || b.role === 'global-pool');
      const kind = p.className === 'Dense' ? 'dense' : flattened ? 'conv-dense' : 'conv';
      if ((kind === 'dense' && c.className !== 'Dense') || (kind === 'conv' && c.className !== 'Conv2D') || (kind === 'conv-dense' && c.className !== 'Dense')) return undefined;
      const own = ownActivation(node(p).layer.getConfig() as Config);
      const activation = typeof own === 'string' ? scalarActivation('linear')! : own;
      blocks.push({
        producer: pi,
        consumer: ci,
        factor: (duals.get(c.name)?.d.get(p.name) ?? 0) / df0,
        site: { name: `${group.name}#${p.name}->${c.name}`, kind, current: p.name, next: c.name, between, units: group.units, activation: group.activation, activationChain: [activation] },
      });
    }
  }
  return blocks;
}
