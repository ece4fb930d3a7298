/**
 * Concrete layer shapes for one input size. Models built on `[null, null, null, C]` inputs record spatial sizes as
 * null; statistics need the sizes of the batch at hand. {@link withInputShape} propagates the batch's input shape
 * through every layer (`computeOutputShape`) and makes those shapes the ones {@link recordedOrConcrete} returns while
 * `fn` runs. Widening needs no sizes: it only touches channel axes.
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import { ShapeMismatchError } from '@gradmax/core';
import { modelGraph, type AnyLayer } from './graph.js';

type Shape = (number | null)[];

interface Scope {
  layers: Map<AnyLayer, { input: Shape[]; output: Shape }>;
}

let active: Scope | undefined;

/** Spatial size used for models with dynamic input sizes when no batch is given (nominal geometry only). */
export const NOMINAL_SIZE = 224;

function hasUnknown(shape: Shape): boolean {
  return shape.slice(1).some((d) => d == null);
}

function propagate(model: tfl.LayersModel, inputShape: Shape): Scope['layers'] {
  const graph = modelGraph(model);
  const outputs = new Map<string, Shape>();
  const layers: Scope['layers'] = new Map();
  const inputs = graph.functional.inputLayers;
  if (inputs.length !== 1) return layers;
  for (const node of graph.nodes) {
    if (node.className === 'InputLayer') {
      outputs.set(node.name, inputShape);
      layers.set(node.layer, { input: [inputShape], output: inputShape });
      continue;
    }
    const ins = node.inputs.map((n) => outputs.get(n)!);
    const out = node.layer.computeOutputShape(ins.length === 1 ? ins[0]! : ins) as Shape | Shape[];
    const single = (Array.isArray(out[0]) ? out[0] : out) as Shape;
    outputs.set(node.name, single);
    layers.set(node.layer, { input: ins, output: single });
  }
  return layers;
}

/**
 * Runs `fn` with every layer's shape computed for a model input of shape `inputShape` (batch first). Without
 * `inputShape`, unknown sizes of the model input are set to {@link NOMINAL_SIZE} (enough for a nominal conv geometry,
 * which only statistics read). Nested calls use the innermost shapes.
 */
export function withInputShape<T>(model: tfl.LayersModel, inputShape: readonly number[] | undefined, fn: () => T): T {
  const declared = modelGraph(model).functional.inputs[0]?.shape as Shape | undefined;
  if (!declared || !hasUnknown(declared) || (!inputShape && active)) return fn();
  const shape: Shape = inputShape ? [...inputShape] : declared.map((d, i) => (i === 0 ? null : (d ?? NOMINAL_SIZE)));
  if (shape.length !== declared.length) throw new ShapeMismatchError('model input', declared.map((d) => d ?? -1), shape.map((d) => d ?? -1));
  const previous = active;
  active = { layers: propagate(model, shape) };
  try {
    return fn();
  } finally {
    active = previous;
  }
}

/**
 * The recorded shape when it is fully known, else the concrete one of the active {@link withInputShape} scope (the
 * recorded one when there is no scope).
 */
export function recordedOrConcrete(layer: AnyLayer, which: 'input' | 'output', recorded: Shape): Shape {
  if (!hasUnknown(recorded) || !active) return recorded;
  const entry = active.layers.get(layer);
  if (!entry) return recorded;
  return which === 'output' ? entry.output : entry.input[0]!;
}
