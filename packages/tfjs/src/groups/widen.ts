/**
 * Widening a channel group in place: every producer gains output channels (its block of the new units' incoming
 * weights), every pass-through layer gets identity parameters for them (or copies from `sourceUnits`), every consumer
 * reads them (its block of the outgoing weights) right after the group's channels, joins and recorded shapes follow,
 * and optimizer slots of every changed variable are padded. A journal of everything changed allows an exact undo (for
 * temporary widenings).
 */
import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { InvalidArgumentError, ShapeMismatchError, assertFinite, type NewUnits } from '@gradmax/core';
import { functionalOf, type AnyLayer } from '../model/graph.js';
import { readValues, replaceVariable, type LayerVariable } from '../model/weights.js';
import { assertKnownOptimizer, padOptimizerSlots, resetOptimizerSlots } from '../optimizer/slots.js';
import { extendAxis, extensionSourceIndex } from '../widen/extend-axis.js';
import { applyVariableChanges, refuseConstantUnits, type WidenOptions } from '../widen/apply.js';
import { groupLayout, type AxisView } from './layout.js';
import { layerRule } from './rules.js';
import type { ChannelGroup } from './types.js';

interface Change {
  variable: LayerVariable;
  oldShape: number[];
  oldValues: Float32Array;
  shape: number[];
  values: Float32Array;
  source: Int32Array;
}

/** Records (object, key, old value) before each metadata change, so that it can be undone in reverse order. */
class Journal {
  private readonly entries: { target: Record<string, unknown>; key: string; value: unknown }[] = [];
  set(target: object, key: string, value: unknown): void {
    const t = target as Record<string, unknown>;
    this.entries.push({ target: t, key, value: t[key] });
    t[key] = value;
  }
  undo(): void {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries[i]!;
      e.target[e.key] = e.value;
    }
  }
}

function withLast(shape: unknown, last: number): unknown {
  if (!Array.isArray(shape)) return shape;
  const copy = shape.slice();
  copy[copy.length - 1] = last;
  return copy;
}

/** Sets the recorded output channel count of `layer` and the matching input shape entries of its consumers. */
function setOutputLast(journal: Journal, layer: AnyLayer, last: number): void {
  const node = layer.inboundNodes[0] as unknown as { outputShapes: unknown; outputTensors: { shape: unknown }[] } | undefined;
  if (!node) return;
  const shapes = node.outputShapes;
  journal.set(node, 'outputShapes', Array.isArray(shapes) && Array.isArray(shapes[0]) ? shapes.map((s: unknown) => withLast(s, last)) : withLast(shapes, last));
  for (const t of node.outputTensors) journal.set(t, 'shape', withLast(t.shape, last));
  for (const out of layer.outboundNodes as unknown as { inputShapes: unknown; inboundLayers: AnyLayer[] }[]) {
    const shapes = out.inputShapes;
    if (out.inboundLayers.length === 1) journal.set(out, 'inputShapes', Array.isArray(shapes) && Array.isArray(shapes[0]) ? [withLast(shapes[0], last)] : withLast(shapes, last));
    else journal.set(out, 'inputShapes', (shapes as unknown[]).map((s, i) => (out.inboundLayers[i] === layer ? withLast(s, last) : s)));
  }
}

/** Replaces `old` by `now` in the axes of a layer's input specs. */
function setInputAxis(journal: Journal, layer: AnyLayer, old: number, now: number): void {
  const specs = (layer as unknown as { inputSpec?: { axes?: Record<string, number> }[] }).inputSpec;
  for (const spec of specs ?? []) {
    if (!spec?.axes) continue;
    const axes = { ...spec.axes };
    let changed = false;
    for (const key of Object.keys(axes)) if (axes[key] === old) (axes[key] = now), (changed = true);
    if (changed) journal.set(spec, 'axes', axes);
  }
}

function change(view: AxisView, at: number, k: number, fill: (o: number, j: number, i: number) => number, oldScale?: Float64Array): Change {
  const e = { outer: view.outer, channels: view.channels, inner: view.inner, added: k, at };
  const oldValues = readValues(view.variable);
  const oldShape = view.variable.shape.map(Number);
  const shape = oldShape.slice();
  const total = oldValues.length;
  const positions = shape[view.axis]! / view.channels;
  shape[view.axis] = positions * (view.channels + k);
  if (total !== view.outer * view.channels * view.inner) throw new ShapeMismatchError(`variable "${view.variable.originalName}"`, [view.outer, view.channels, view.inner], oldShape);
  return { variable: view.variable, oldShape, oldValues, shape, values: extendAxis(oldValues, e, fill, oldScale), source: extensionSourceIndex(e) };
}

/** Result of {@link widenGroup}. */
export interface GroupWidening {
  /** Units added. */
  added: number;
  /** Restores every variable, attribute and recorded shape (not optimizer state). */
  undo(): void;
}

/**
 * Applies `units` (in the group's core layout: incoming `[k × Σ fanIn]`, outgoing `[Σ fanOut × k]`) to `group` of
 * `model`, in place.
 *
 * @throws ShapeMismatchError, InvalidArgumentError for units that do not fit; UnsupportedError for incoming-zero
 *   units through an f(0) ≠ 0 path (nothing is changed then).
 */
export function widenGroup(model: tfl.LayersModel, group: ChannelGroup, units: NewUnits, options: WidenOptions = {}): GroupWidening {
  const layout = groupLayout(model, group);
  const n = group.units;
  const k = units.incoming.rows;
  const where = { group: group.name };
  if (k <= 0) throw new InvalidArgumentError(`group "${group.name}": no new units to add`, where);
  if (units.incoming.cols !== layout.fanIn) throw new ShapeMismatchError(`group "${group.name}" new incoming weights`, [k, layout.fanIn], units.incoming.shape, where);
  if (units.outgoing.rows !== layout.fanOut || units.outgoing.cols !== k) throw new ShapeMismatchError(`group "${group.name}" new outgoing weights`, [layout.fanOut, k], units.outgoing.shape, where);
  if (units.incomingBias.length !== k) throw new ShapeMismatchError(`group "${group.name}" new biases`, [k], [units.incomingBias.length], where);
  assertFinite(`group "${group.name}" new incoming weights`, units.incoming.data, where);
  assertFinite(`group "${group.name}" new outgoing weights`, units.outgoing.data, where);
  const scale = units.existingOutgoingScale;
  if (scale && scale.length !== n) throw new ShapeMismatchError(`group "${group.name}" existingOutgoingScale`, [n], [scale.length], where);
  const sources = units.sourceUnits;
  if (sources) {
    if (sources.length !== k) throw new ShapeMismatchError(`group "${group.name}" sourceUnits`, [k], [sources.length], where);
    for (const s of sources) if (!Number.isInteger(s) || s < -1 || s >= n) throw new InvalidArgumentError(`group "${group.name}": sourceUnits entry ${s} is not -1 or an existing unit`, where);
  }
  refuseConstantUnits(group.name, group.producers.map((p) => p.name).join(', '), group.activation, units);
  const src = (j: number) => (sources ? sources[j]! : -1);

  const changes: Change[] = [];
  const inc = units.incoming.data;
  const fanIn = layout.fanIn;
  let biasGiven = false;
  for (const p of layout.producers) {
    const { kernel } = p;
    changes.push(change(kernel, n, k, (o, j, i) => inc[j * fanIn + p.col0 + o * kernel.inner + i]!));
    if (p.bias) {
      const old = readValues(p.bias);
      // A copied unit copies each producer's own bias; otherwise the strategy's bias goes to the first producer.
      const first = !biasGiven;
      biasGiven = true;
      changes.push(change({ variable: p.bias, axis: 0, outer: 1, channels: n, inner: 1 }, n, k, (_o, j) => (src(j) >= 0 ? old[src(j)]! : first ? units.incomingBias[j]! : 0)));
    }
  }
  for (const b of layout.pass) {
    for (const { view, param } of b.params) {
      const at = b.member.offset + n;
      const old = readValues(view.variable);
      const ctx = { layer: b.layer, shape: view.variable.shape.map(Number), old };
      changes.push(change(view, at, k, (o, j, i) => (src(j) >= 0 ? old[(o * view.channels + b.member.offset + src(j)) * view.inner + i]! : param.fill(o, i, ctx))));
    }
  }
  const out = units.outgoing.data;
  for (const c of layout.consumers) {
    const { kernel, member } = c;
    const at = member.offset + n;
    let oldScale: Float64Array | undefined;
    if (scale) {
      oldScale = new Float64Array(kernel.channels).fill(1);
      for (let u = 0; u < n; u++) oldScale[member.offset + u] = scale[u]!;
    }
    changes.push(change(kernel, at, k, (o, j, i) => out[(c.row0 + o * kernel.inner + i) * k + j]!, oldScale));
    for (const { view, param } of c.params) {
      const old = readValues(view.variable);
      const ctx = { layer: c.layer, shape: view.variable.shape.map(Number), old };
      changes.push(change(view, at, k, (o, j, i) => (src(j) >= 0 ? old[(o * view.channels + member.offset + src(j)) * view.inner + i]! : param.fill(o, i, ctx))));
    }
  }

  applyVariableChanges(model, changes, options);

  const journal = new Journal();
  for (const p of layout.producers) {
    journal.set(p.layer, layerRule(p.member.className)!.producer!.widthField, n + k);
    setOutputLast(journal, p.layer, n + k);
  }
  for (const b of layout.pass) {
    const m = b.member;
    setInputAxis(journal, b.layer, m.positions * m.channels, m.positions * (m.channels + k));
    setOutputLast(journal, b.layer, m.outPositions * (m.channels + k));
    if (m.className === 'Reshape') {
      const target = (b.layer as unknown as { targetShape: number[] }).targetShape;
      journal.set(b.layer, 'targetShape', withLast(target, m.channels + k));
    }
  }
  for (const j of layout.joins) setOutputLast(journal, j.layer, j.member.channels + k);
  for (const c of layout.consumers) setInputAxis(journal, c.layer, c.member.positions * c.member.channels, c.member.positions * (c.member.channels + k));

  return {
    added: k,
    undo: () => {
      for (const c of changes) replaceVariable(c.variable, c.oldShape, c.oldValues);
      journal.undo();
    },
  };
}
