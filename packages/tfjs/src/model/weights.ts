/**
 * Access to a layer's variables by role (`kernel`, `bias`, `gamma`, ...), and in-place replacement of a variable's
 * value with one of a different shape (the LayerVariable object, its name and its place in every weight list stay).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { InvalidArgumentError } from '@gradmax/core';
import type { AnyLayer } from './graph.js';

/** A tfjs layer variable. */
export type LayerVariable = tfl.LayerVariable;

/** The variable of `layer` whose name ends in `/<role>` (e.g. `kernel`, `bias`, `moving_mean`), if any. */
export function findVariable(layer: AnyLayer, role: string): LayerVariable | undefined {
  return layer.weights.find((w) => w.originalName === role || w.originalName.endsWith(`/${role}`));
}

/** Like {@link findVariable} but throws {@link InvalidArgumentError} naming the layer when absent. */
export function requireVariable(layer: AnyLayer, role: string): LayerVariable {
  const v = findVariable(layer, role);
  if (!v) throw new InvalidArgumentError(`layer "${layer.name}" has no "${role}" variable`, { layer: layer.name, role });
  return v;
}

/** A copy of a variable's values as float32. */
export function readValues(v: LayerVariable): Float32Array {
  return v.read().dataSync() as Float32Array;
}

/**
 * Replaces the value of `v` by `values` with shape `shape`, in place: the old backing tf.Variable is disposed and a
 * new one is registered under the same name. Every reference to the LayerVariable (layer fields, weight lists, the
 * model's trainable weights) stays valid.
 */
export function replaceVariable(v: LayerVariable, shape: number[], values: Float32Array): void {
  const internal = v as unknown as { val: tf.Variable; shape: number[]; trainable_: boolean; name: string; dtype: tf.DataType };
  const old = internal.val;
  const trainable = old.trainable;
  old.dispose();
  const init = tf.tensor(values, shape, 'float32');
  internal.val = tf.variable(init, trainable, internal.name, 'float32');
  init.dispose();
  internal.shape = shape.slice();
}
