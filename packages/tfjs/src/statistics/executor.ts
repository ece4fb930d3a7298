/**
 * A layer-by-layer forward pass over a LayersModel's graph that can record a layer's input and add a "probe" to a
 * Dense/Conv2D layer's pre-activation (the gradient of the loss with respect to a zero probe is the gradient with
 * respect to that pre-activation).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { UnsupportedError } from '@gradmax/core';
import { modelGraph, type AnyLayer } from '../model/graph.js';
import { findVariable, requireVariable } from '../model/weights.js';

/** Hooks of {@link runGraph}. */
export interface GraphHooks {
  /** Layer names whose (single) input tensor is recorded (kept: the caller disposes it). */
  recordInputs?: ReadonlySet<string>;
  /** Dense/Conv2D layer name → tensor added to its pre-activation. */
  probes?: ReadonlyMap<string, tf.Tensor>;
  /** Stop as soon as every input of `recordInputs` is recorded (the outputs are then not computed: empty). */
  stopWhenRecorded?: boolean;
}

/** Result of {@link runGraph}. */
export interface GraphRun {
  /** Model outputs, in the model's output order. */
  outputs: tf.Tensor[];
  /** Recorded inputs by layer name (kept tensors). */
  inputs: Map<string, tf.Tensor>;
}

type Config = Record<string, unknown>;

function pair(v: unknown): [number, number] {
  return Array.isArray(v) ? [Number(v[0]), Number(v[1] ?? v[0])] : [Number(v), Number(v)];
}

/**
 * Whether `layer` is a dilated Conv2D. tfjs-layers runs Conv2D through `tf.fused.conv2d`, whose own gradient (not the
 * registry's) refuses dilations, so statistics passes evaluate such layers with unfused ops, whose gradient
 * `registerDilatedConvGradients` provides. The values are the same.
 */
function dilatedConv2d(layer: AnyLayer): boolean {
  if (layer.getClassName() !== 'Conv2D') return false;
  const [dh, dw] = pair((layer.getConfig() as Config)['dilationRate'] ?? 1);
  return dh !== 1 || dw !== 1;
}

/** Computes a Dense/Conv2D layer with unfused ops, with `probe` (if any) added before its activation. */
function probedLayer(layer: AnyLayer, x: tf.Tensor, probe?: tf.Tensor): tf.Tensor {
  const kernel = requireVariable(layer, 'kernel').read();
  const bias = findVariable(layer, 'bias')?.read();
  const c = layer.getConfig() as Config;
  let z: tf.Tensor;
  if (layer.getClassName() === 'Dense') {
    if (x.rank !== 2) throw new UnsupportedError(`layer "${layer.name}": statistics need a rank-2 input to Dense layers, got rank ${x.rank}`, { layer: layer.name });
    z = tf.matMul(x as tf.Tensor2D, kernel as tf.Tensor2D);
  } else {
    z = tf.conv2d(x as tf.Tensor4D, kernel as tf.Tensor4D, pair(c['strides'] ?? 1), (c['padding'] ?? 'valid') as 'valid' | 'same', 'NHWC', pair(c['dilationRate'] ?? 1));
  }
  if (bias) z = tf.add(z, bias);
  if (probe) z = tf.add(z, probe);
  const activation = (layer as unknown as { activation?: { apply(t: tf.Tensor): tf.Tensor } }).activation;
  return activation ? activation.apply(z) : z;
}

/**
 * Runs `model` on `xs` layer by layer (inference mode unless `training`), applying the hooks. Call inside a tidy
 * or gradient scope; recorded inputs are `tf.keep`-ed.
 */
export function runGraph(model: tfl.LayersModel, xs: tf.Tensor[], hooks: GraphHooks = {}, training = false): GraphRun {
  const graph = modelGraph(model);
  const values = new Map<string, tf.Tensor>();
  const inputs = new Map<string, tf.Tensor>();
  const inputLayers = graph.functional.inputLayers;
  inputLayers.forEach((l, i) => values.set(l.name, xs[i]!));
  for (const node of graph.nodes) {
    if (node.className === 'InputLayer') continue;
    const args = node.inputs.map((n) => values.get(n)!);
    const x = args.length === 1 ? args[0]! : args;
    if (hooks.recordInputs?.has(node.name)) {
      if (Array.isArray(x)) throw new UnsupportedError(`layer "${node.name}" has several inputs`, { layer: node.name });
      inputs.set(node.name, tf.keep(tf.clone(x)));
      if (hooks.stopWhenRecorded && inputs.size === hooks.recordInputs.size) return { outputs: [], inputs };
    }
    const probe = hooks.probes?.get(node.name);
    const y = probe || dilatedConv2d(node.layer) ? probedLayer(node.layer, x as tf.Tensor, probe) : (node.layer.apply(x, { training }) as tf.Tensor | tf.Tensor[]);
    if (Array.isArray(y)) throw new UnsupportedError(`layer "${node.name}" has several outputs; not supported`, { layer: node.name });
    values.set(node.name, y);
  }
  return { outputs: graph.functional.outputLayers.map((l) => values.get(l.name)!), inputs };
}
