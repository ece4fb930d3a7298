/**
 * Widening a site in place: new units appended at the end of the channel axis of the current layer, in-between
 * per-channel layers identity-extended (or copied from `sourceUnits`), new input slices appended to the next layer,
 * optimizer state padded. Layer objects, names and variable names are kept; replaced tensors are disposed.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { InvalidArgumentError, ShapeMismatchError, UnsupportedError, assertFinite, type ActivationInfo, type NewUnits } from '@gradmax/core';
import { functionalOf, type AnyLayer } from '../model/graph.js';
import { findVariable, readValues, replaceVariable, requireVariable, type LayerVariable } from '../model/weights.js';
import { assertKnownOptimizer, padOptimizerSlots, resetOptimizerSlots } from '../optimizer/slots.js';
import { inputShapeOf, siteLayers } from '../sites/core-site.js';
import type { TfjsGrowthSite } from '../sites/types.js';
import { extendAxis, extensionSourceIndex, type AxisExtension } from './extend-axis.js';

/** Options of {@link widenSite}. */
export interface WidenOptions {
  /** Reset optimizer state for all variables instead of carrying it (default false). */
  resetOptimizer?: boolean;
  /** Leave optimizer state untouched (for a temporary widening that is undone, e.g. a loss oracle). */
  skipOptimizer?: boolean;
}

/** A variable's new shape and values, and for each new element the old element it continues (-1 for new). */
export interface VariableChange {
  variable: LayerVariable;
  shape: number[];
  values: Float32Array;
  source: Int32Array;
}
type Change = VariableChange;

/**
 * Replaces every changed variable and carries the optimizer's slots along (zeros for new entries), or resets them,
 * as `options` say. Optimizer positions are looked up before any variable changes.
 */
export function applyVariableChanges(model: tfl.LayersModel, changes: readonly VariableChange[], options: WidenOptions): void {
  const compiled = functionalOf(model) as unknown as { optimizer_?: tf.Optimizer; collectedTrainableWeights?: LayerVariable[] };
  const optimizer = options.skipOptimizer ? undefined : compiled.optimizer_;
  const trainable = compiled.collectedTrainableWeights ?? model.trainableWeights;
  if (optimizer && !options.resetOptimizer) assertKnownOptimizer(optimizer);
  for (const c of changes) {
    replaceVariable(c.variable, c.shape, c.values);
    if (optimizer && !options.resetOptimizer) {
      const index = trainable.indexOf(c.variable);
      if (index >= 0) padOptimizerSlots(optimizer, index, c.shape, c.source);
    }
  }
  if (optimizer && options.resetOptimizer) resetOptimizerSlots(optimizer);
}

type Config = Record<string, unknown>;

function dims(v: LayerVariable): number[] {
  return v.shape.map((d) => Number(d));
}

function change(variable: LayerVariable, e: AxisExtension, shape: number[], fill: (o: number, c: number, i: number) => number, oldScale?: ArrayLike<number>): Change {
  const old = readValues(variable);
  if (old.length !== e.outer * e.channels * e.inner) {
    throw new ShapeMismatchError(`variable "${variable.originalName}"`, [e.outer, e.channels, e.inner], dims(variable));
  }
  return { variable, shape, values: extendAxis(old, e, fill, oldScale), source: extensionSourceIndex(e) };
}

function withLast(shape: unknown, last: number): unknown {
  if (!Array.isArray(shape)) return shape;
  if (Array.isArray(shape[0])) return shape.map((s) => withLast(s, last));
  const copy = shape.slice();
  copy[copy.length - 1] = last;
  return copy;
}

/** Updates the recorded symbolic output shape of `layer` (and the matching input shape of its consumers). */
function setOutputChannels(layer: AnyLayer, channels: number): void {
  const node = layer.inboundNodes[0] as unknown as { outputShapes: unknown; outputTensors: { shape: unknown }[] } | undefined;
  if (!node) return;
  node.outputShapes = withLast(node.outputShapes, channels);
  for (const t of node.outputTensors) t.shape = withLast(t.shape, channels);
  for (const out of layer.outboundNodes as unknown as { inputShapes: unknown; inboundLayers: AnyLayer[] }[]) {
    if (out.inboundLayers.length === 1) out.inputShapes = withLast(out.inputShapes, channels);
  }
}

/** Replaces `old` by `now` in the axes of a layer's input specs. */
function setInputSpecAxis(layer: AnyLayer, old: number, now: number): void {
  const specs = (layer as unknown as { inputSpec?: { axes?: Record<string, number> }[] }).inputSpec;
  for (const spec of specs ?? []) {
    if (!spec?.axes) continue;
    for (const key of Object.keys(spec.axes)) if (spec.axes[key] === old) spec.axes[key] = now;
  }
}

/** Strategies that keep the function whatever f(0) is (zero or copied outgoing weights). */
const ANY_ACTIVATION_STRATEGIES = 'randomOutgoingZero, allZero, north or net2net';

/**
 * Refuses new units that would change the network function through an activation with f(0) ≠ 0: a unit with zero
 * incoming weights and bias outputs the constant f(0), which its non-zero outgoing weights pass on (sigmoid,
 * softplus, hardSigmoid with gradmax or random). Throws before anything is changed.
 *
 * @throws UnsupportedError naming the site, the layer, the activation and strategies that keep the function.
 */
export function refuseConstantUnits(site: string, layer: string, activation: ActivationInfo, units: NewUnits): void {
  if (activation.f0 === 0) return;
  const k = units.incoming.rows;
  const fanIn = units.incoming.cols;
  for (let j = 0; j < k; j++) {
    if (units.sourceUnits && units.sourceUnits[j]! >= 0) continue;
    let incomingZero = units.incomingBias[j] === 0;
    for (let i = 0; incomingZero && i < fanIn; i++) if (units.incoming.data[j * fanIn + i] !== 0) incomingZero = false;
    if (!incomingZero) continue;
    let outgoing = false;
    for (let f = 0; !outgoing && f < units.outgoing.rows; f++) if (units.outgoing.data[f * k + j] !== 0) outgoing = true;
    if (!outgoing) continue;
    throw new UnsupportedError(
      `site "${site}": layer "${layer}" feeds its new units through activation "${activation.name}" with f(0) = ${activation.f0} ≠ 0; ` +
        `new unit ${j} has zero incoming weights and non-zero outgoing weights, so it would add the constant f(0)·(outgoing weights) and change the model's predictions. ` +
        `Use a strategy with zero or copied outgoing weights (${ANY_ACTIVATION_STRATEGIES}), or an activation with f(0) = 0 on "${layer}"`,
      { site, layer, activation: activation.name, f0: activation.f0 },
    );
  }
}

/**
 * Applies `units` to `site` of `model`, in place. Returns the number of units added.
 *
 * @throws `ShapeMismatchError` (from `@gradmax/core`) when `units` does not fit the site; {@link InvalidArgumentError} for a bad
 *   `sourceUnits`/`existingOutgoingScale`; `UnsupportedError` for incoming-zero units through an activation with
 *   f(0) ≠ 0 (see {@link refuseConstantUnits}).
 */
export function widenSite(model: tfl.LayersModel, site: TfjsGrowthSite, units: NewUnits, options: WidenOptions = {}): number {
  const { current, next, between } = siteLayers(model, site);
  const n1 = site.units;
  const k = units.incoming.rows;
  const where = { site: site.name };
  if (k <= 0) throw new InvalidArgumentError(`site "${site.name}": no new units to add`, where);
  const kernel1 = requireVariable(current, 'kernel');
  const fanIn = dims(kernel1).reduce((a, b) => a * b, 1) / n1;
  if (units.incoming.cols !== fanIn) throw new ShapeMismatchError(`site "${site.name}" new incoming weights`, [k, fanIn], units.incoming.shape, where);
  if (units.incomingBias.length !== k) throw new ShapeMismatchError(`site "${site.name}" new biases`, [k], [units.incomingBias.length], where);
  if (units.outgoing.cols !== k) throw new ShapeMismatchError(`site "${site.name}" new outgoing weights`, [units.outgoing.rows, k], units.outgoing.shape, where);
  assertFinite(`site "${site.name}" new incoming weights`, units.incoming.data, where);
  assertFinite(`site "${site.name}" new outgoing weights`, units.outgoing.data, where);
  const scale = units.existingOutgoingScale;
  if (scale) {
    if (scale.length !== n1) throw new ShapeMismatchError(`site "${site.name}" existingOutgoingScale`, [n1], [scale.length], where);
    assertFinite(`site "${site.name}" existingOutgoingScale`, scale, where);
  }
  const sources = units.sourceUnits;
  if (sources) {
    if (sources.length !== k) throw new ShapeMismatchError(`site "${site.name}" sourceUnits`, [k], [sources.length], where);
    for (const s of sources) if (!Number.isInteger(s) || s < -1 || s >= n1) throw new InvalidArgumentError(`site "${site.name}": sourceUnits entry ${s} is not -1 or an existing unit`, where);
  }
  const src = (j: number) => (sources ? sources[j]! : -1);
  refuseConstantUnits(site.name, site.current, site.activation, units);

  const changes: Change[] = [];
  const inc = units.incoming.data;
  changes.push(change(kernel1, { outer: fanIn, channels: n1, inner: 1, added: k }, [...dims(kernel1).slice(0, -1), n1 + k], (o, j) => inc[j * fanIn + o]!));
  const bias1 = findVariable(current, 'bias');
  if (bias1) changes.push(change(bias1, { outer: 1, channels: n1, inner: 1, added: k }, [n1 + k], (_o, j) => units.incomingBias[j]!));

  for (let b = 0; b < between.length; b++) {
    const layer = between[b]!;
    const role = site.between[b]!.role;
    if (role === 'batchnorm') {
      const eps = Number((layer.getConfig() as Config)['epsilon'] ?? 1e-3);
      const fills: Record<string, number> = { gamma: 1, beta: 0, moving_mean: 0, moving_variance: 1 - eps };
      for (const [roleName, value] of Object.entries(fills)) {
        const v = findVariable(layer, roleName);
        if (!v) continue;
        const old = readValues(v);
        changes.push(change(v, { outer: 1, channels: n1, inner: 1, added: k }, [n1 + k], (_o, j) => (src(j) >= 0 ? old[src(j)]! : value)));
      }
    } else if (role === 'depthwise') {
      const dk = requireVariable(layer, 'depthwise_kernel');
      const [kh, kw] = dims(dk) as [number, number, number, number];
      const centre = Math.floor((kh - 1) / 2) * kw + Math.floor((kw - 1) / 2);
      const old = readValues(dk);
      changes.push(change(dk, { outer: kh * kw, channels: n1, inner: 1, added: k }, [kh, kw, n1 + k, 1], (o, j) => (src(j) >= 0 ? old[o * n1 + src(j)]! : o === centre ? 1 : 0)));
      const db = findVariable(layer, 'bias');
      if (db) {
        const oldB = readValues(db);
        changes.push(change(db, { outer: 1, channels: n1, inner: 1, added: k }, [n1 + k], (_o, j) => (src(j) >= 0 ? oldB[src(j)]! : 0)));
      }
    }
  }

  const kernel2 = requireVariable(next, 'kernel');
  const out = units.outgoing.data;
  const s2 = dims(kernel2);
  let positions = 1;
  if (site.kind === 'dense') {
    const n2 = s2[1]!;
    if (units.outgoing.rows !== n2) throw new ShapeMismatchError(`site "${site.name}" new outgoing weights`, [n2, k], units.outgoing.shape, where);
    changes.push(change(kernel2, { outer: 1, channels: n1, inner: n2, added: k }, [n1 + k, n2], (_o, j, i) => out[i * k + j]!, scale));
  } else if (site.kind === 'conv-dense') {
    const n2 = s2[1]!;
    positions = s2[0]! / n1;
    if (units.outgoing.rows !== positions * n2) throw new ShapeMismatchError(`site "${site.name}" new outgoing weights`, [positions * n2, k], units.outgoing.shape, where);
    changes.push(change(kernel2, { outer: positions, channels: n1, inner: n2, added: k }, [positions * (n1 + k), n2], (p, j, i) => out[(p * n2 + i) * k + j]!, scale));
  } else {
    const [kh, kw, , m2] = s2 as [number, number, number, number];
    if (units.outgoing.rows !== kh * kw * m2) throw new ShapeMismatchError(`site "${site.name}" new outgoing weights`, [kh * kw * m2, k], units.outgoing.shape, where);
    changes.push(change(kernel2, { outer: kh * kw, channels: n1, inner: m2, added: k }, [kh, kw, n1 + k, m2], (b, j, i) => out[(b * m2 + i) * k + j]!, scale));
  }

  applyVariableChanges(model, changes, options);

  setSiteWidth(model, site, n1, n1 + k, positions);
  return k;
}

/**
 * Updates the layer attributes and recorded shapes of a site from width `from` to width `to` (both directions):
 * the current layer's `units`/`filters`, input specs of the in-between and next layers, and symbolic output shapes.
 * `positions` is the number of flattened positions per channel for conv-dense sites (1 otherwise).
 */
export function setSiteWidth(model: tfl.LayersModel, site: TfjsGrowthSite, from: number, to: number, positions: number): void {
  const { current, next, between } = siteLayers(model, site);
  const cfgField = current.getClassName() === 'Dense' ? 'units' : 'filters';
  (current as unknown as Record<string, number>)[cfgField] = to;
  setOutputChannels(current, to);
  let flattened = false;
  for (let b = 0; b < between.length; b++) {
    const layer = between[b]!;
    const role = site.between[b]!.role;
    setInputSpecAxis(layer, flattened ? positions * from : from, flattened ? positions * to : to);
    if (role === 'flatten' || role === 'global-pool') flattened = true;
    setOutputChannels(layer, flattened ? positions * to : to);
  }
  if (site.kind === 'conv-dense') setInputSpecAxis(next, positions * from, positions * to);
  else setInputSpecAxis(next, from, to);
}

/** Current width of a Dense/Conv2D layer (units or filters). */
export function layerWidth(layer: AnyLayer): number {
  const c = layer.getConfig() as Config;
  return Number(c['units'] ?? c['filters']);
}

/** The input channel count a layer sees (last axis of its input shape). */
export function inputChannels(layer: AnyLayer): number {
  const s = inputShapeOf(layer);
  return Number(s[s.length - 1]);
}
