/**
 * Checking a batch against a model: shapes and finiteness, with typed errors.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { InvalidArgumentError, NonFiniteError, ShapeMismatchError } from '@gradmax/core';

/** A batch of examples: inputs and targets (single-input, single-output models). */
export interface Batch {
  /** Inputs, batch first. */
  xs: tf.Tensor;
  /** Targets, batch first. */
  ys: tf.Tensor;
}

function check(what: string, t: tf.Tensor, expected: (number | null)[]): void {
  if (t.rank !== expected.length || expected.some((d, i) => d != null && d !== t.shape[i])) {
    throw new ShapeMismatchError(what, expected.map((d) => (d == null ? -1 : d)), t.shape, { note: '-1 = any size' });
  }
  const values = t.dataSync();
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!)) throw new NonFiniteError(what, i, values[i]!);
  }
}

/**
 * Validates `batch` for `model`: tensors present, input and target shapes matching the model's (batch dimension
 * free but equal), all values finite. Returns the batch size.
 */
export function validateBatch(model: tfl.LayersModel, batch: Batch | undefined, what = 'grow batch'): number {
  if (!batch || !(batch.xs instanceof tf.Tensor) || !(batch.ys instanceof tf.Tensor)) {
    throw new InvalidArgumentError(`${what} must be {xs, ys} tensors`);
  }
  for (const [name, t] of [['inputs xs', batch.xs], ['targets ys', batch.ys]] as const) {
    if (t.isDisposed) throw new InvalidArgumentError(`${what} ${name} has been disposed (tensor id ${t.id}); keep the batch alive until grow returns`, { tensor: name });
  }
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new InvalidArgumentError(`${what}: only single-input, single-output models are supported (model has ${model.inputs.length} inputs, ${model.outputs.length} outputs)`);
  }
  const size = batch.xs.shape[0]!;
  if (!(size > 0)) throw new InvalidArgumentError(`${what} is empty`);
  check(`${what} inputs xs`, batch.xs, model.inputs[0]!.shape);
  check(`${what} targets ys`, batch.ys, model.outputs[0]!.shape);
  if (batch.ys.shape[0] !== size) throw new ShapeMismatchError(`${what} targets ys (batch size)`, [size], [batch.ys.shape[0]!]);
  return size;
}
