/**
 * Resolving the loss used for growth statistics: a tfjs-layers loss name, a tfjs-core loss (e.g.
 * `tf.losses.softmaxCrossEntropy`), a user function `(yTrue, yPred) => scalar`, or the model's compiled loss.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { InvalidArgumentError, UnknownNameError } from '@gradmax/core';
import { functionalOf } from '../model/graph.js';

/** A loss: a tfjs-layers loss name (`"categoricalCrossentropy"`, `"meanSquaredError"`, ...) or a function. */
export type LossSpec = string | ((yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor);

/** A resolved loss returning the mean over the batch (a scalar). */
export type MeanLoss = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Scalar;

const LAYERS_LOSSES = [
  'meanSquaredError', 'meanAbsoluteError', 'meanAbsolutePercentageError', 'meanSquaredLogarithmicError', 'squaredHinge',
  'hinge', 'categoricalHinge', 'logcosh', 'categoricalCrossentropy', 'sparseCategoricalCrossentropy',
  'binaryCrossentropy', 'kullbackLeiblerDivergence', 'poisson', 'cosineProximity',
];
const ALIASES: Record<string, string> = { mse: 'meanSquaredError', mae: 'meanAbsoluteError', mape: 'meanAbsolutePercentageError', msle: 'meanSquaredLogarithmicError' };
const cache = new Map<string, (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor>();

/** Looks up a tfjs-layers loss function by name through the layers API (a weightless model compiled with it). */
function layersLoss(name: string): (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor {
  const hit = cache.get(name);
  if (hit) return hit;
  const input = tfl.input({ shape: [1] });
  const probe = tfl.model({ inputs: input, outputs: input });
  probe.compile({ optimizer: 'sgd', loss: name });
  const fn = (probe as unknown as { lossFunctions: ((a: tf.Tensor, b: tf.Tensor) => tf.Tensor)[] }).lossFunctions[0]!;
  probe.optimizer.dispose();
  cache.set(name, fn);
  return fn;
}

function meanOf(fn: (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor): MeanLoss {
  return (yTrue, yPred) => tf.tidy(() => {
    const value = fn(yTrue, yPred);
    return (value.rank === 0 ? value : tf.mean(value)) as tf.Scalar;
  });
}

/**
 * Resolves a loss. Without `spec`, the model's compiled loss is used (the first output's). Functions must return
 * the mean over the batch (a scalar) or per-example values (averaged here).
 *
 * @throws `UnknownNameError` (from `@gradmax/core`) for an unknown name; {@link InvalidArgumentError} when no loss is available.
 */
export function resolveLoss(spec: LossSpec | undefined, model?: tfl.LayersModel): MeanLoss {
  if (typeof spec === 'function') return meanOf(spec);
  if (typeof spec === 'string') {
    const name = ALIASES[spec] ?? spec;
    if (!LAYERS_LOSSES.includes(name)) throw new UnknownNameError('loss', spec, [...LAYERS_LOSSES, ...Object.keys(ALIASES)]);
    return meanOf(layersLoss(name));
  }
  const compiled = (model && (functionalOf(model) as unknown as { lossFunctions?: ((a: tf.Tensor, b: tf.Tensor) => tf.Tensor)[] } ))?.lossFunctions;
  if (compiled && compiled.length > 0) return meanOf(compiled[0]!);
  throw new InvalidArgumentError('no loss given and the model is not compiled: pass `loss` (a tfjs loss name or a function (yTrue, yPred) => scalar)');
}
