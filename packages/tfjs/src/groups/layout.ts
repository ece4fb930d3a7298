/**
 * Where a channel group's weights live: each producer's incoming block (columns of the stacked incoming matrix), each
 * consumer's outgoing block (rows of the stacked outgoing matrix), and the per-channel parameters of pass-through
 * layers, resolved against the model's variables.
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import { UnsupportedError } from '@gradmax/core';
import { modelGraph, type AnyLayer } from '../model/graph.js';
import { findVariable, requireVariable, type LayerVariable } from '../model/weights.js';
import { layerRule, type PerChannelParam } from './rules.js';
import type { ChannelGroup, GroupMember } from './types.js';

/** A kernel viewed as `[outer, channels, inner]` around the axis that grows. */
export interface AxisView {
  variable: LayerVariable;
  /** The growing axis of the variable. */
  axis: number;
  outer: number;
  channels: number;
  inner: number;
}

/** A producer's block. */
export interface ProducerBlock {
  member: GroupMember;
  layer: AnyLayer;
  /** Kernel around its output-channel axis (channels = units). */
  kernel: AxisView;
  bias?: LayerVariable;
  /** First column of this producer in the stacked incoming matrix; its width is `outer · inner`. */
  col0: number;
  fanIn: number;
}

/** A consumer's block. */
export interface ConsumerBlock {
  member: GroupMember;
  layer: AnyLayer;
  /** Kernel around its input-channel axis (outer includes flattened positions; channels = the member's channels). */
  kernel: AxisView;
  /** Per-channel variables of the consumer itself (SeparableConv2D's depthwise kernel). */
  params: ParamView[];
  /** First row of this consumer in the stacked outgoing matrix; its height is `outer · inner`. */
  row0: number;
  fanOut: number;
}

/** A per-channel variable of a pass-through layer or consumer. */
export interface ParamView {
  view: AxisView;
  param: PerChannelParam;
}

/** A pass-through layer's per-channel variables. */
export interface PassBlock {
  member: GroupMember;
  layer: AnyLayer;
  params: ParamView[];
}

/** The resolved layout of a group. */
export interface GroupLayout {
  producers: ProducerBlock[];
  consumers: ConsumerBlock[];
  pass: PassBlock[];
  joins: { member: GroupMember; layer: AnyLayer }[];
  /** Σ fan-ins of the producers. */
  fanIn: number;
  /** Σ fan-outs of the consumers. */
  fanOut: number;
}

function dims(v: LayerVariable): number[] {
  return v.shape.map((d) => Number(d));
}

function viewOf(variable: LayerVariable, view: (s: number[]) => number, channels: number, what: string): AxisView {
  const shape = dims(variable);
  const axis = view(shape);
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const extent = shape[axis]!;
  // A channel axis holding `positions` copies of each channel (after Flatten, index p·C + c) folds them into `outer`.
  if (extent % channels !== 0) {
    throw new UnsupportedError(`${what}: variable "${variable.originalName}" of shape [${shape}] does not hold ${channels} channels on axis ${axis}`, { variable: variable.originalName });
  }
  return { variable, axis, outer: outer * (extent / channels), channels, inner };
}

function paramViews(layer: AnyLayer, params: PerChannelParam[] | undefined, channels: number, what: string): ParamView[] {
  const out: ParamView[] = [];
  for (const param of params ?? []) {
    const variable = findVariable(layer, param.role);
    if (variable) out.push({ view: viewOf(variable, param.view, channels, what), param });
  }
  return out;
}

/** Resolves the layout of `group` in `model` (current widths). */
export function groupLayout(model: tfl.LayersModel, group: ChannelGroup): GroupLayout {
  const graph = modelGraph(model);
  const layerOf = (m: GroupMember) => {
    const node = graph.byName.get(m.name);
    if (!node) throw new UnsupportedError(`group "${group.name}": layer "${m.name}" is not in the model`, { group: group.name, layer: m.name });
    return node.layer;
  };
  let col = 0;
  const producers = group.producers.map((member): ProducerBlock => {
    const layer = layerOf(member);
    const rule = layerRule(member.className)!.producer!;
    const kernel = viewOf(requireVariable(layer, rule.kernel), rule.view, group.units, `producer "${member.name}"`);
    const fanIn = kernel.outer * kernel.inner;
    const block: ProducerBlock = { member, layer, kernel, col0: col, fanIn };
    const bias = findVariable(layer, 'bias');
    if (bias) block.bias = bias;
    col += fanIn;
    return block;
  });
  let row = 0;
  const consumers = group.consumers.map((member): ConsumerBlock => {
    const layer = layerOf(member);
    const rule = layerRule(member.className)!.consumer!;
    const kernel = viewOf(requireVariable(layer, rule.kernel), rule.view, member.channels, `consumer "${member.name}"`);
    const fanOut = kernel.outer * kernel.inner;
    const block: ConsumerBlock = { member, layer, kernel, params: paramViews(layer, rule.perChannel, member.channels, `consumer "${member.name}"`), row0: row, fanOut };
    row += fanOut;
    return block;
  });
  const pass = group.passThrough.map((member): PassBlock => {
    const layer = layerOf(member);
    return { member, layer, params: paramViews(layer, layerRule(member.className)!.pass!.params, member.channels, `layer "${member.name}"`) };
  });
  const joins = group.joins.map((member) => ({ member, layer: layerOf(member) }));
  return { producers, consumers, pass, joins, fanIn: col, fanOut: row };
}
