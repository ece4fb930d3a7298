import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { createRng } from '@gradmax/core';

/** Deterministic uniform tensor in [-scale, scale). */
export function randomTensor(shape: number[], seed: number, scale = 1): tf.Tensor {
  const rng = createRng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (rng.uniform() * 2 - 1) * scale;
  return tf.tensor(data, shape);
}

/** One-hot targets for `batch` examples over `classes` classes. */
export function oneHotTargets(batch: number, classes: number, seed: number): tf.Tensor {
  const rng = createRng(seed);
  const labels = Array.from({ length: batch }, () => Math.floor(rng.uniform() * classes));
  return tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), classes), 'float32'));
}

/** Max |a − b| / max(1e-30, max |b|). */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return num / Math.max(den, 1e-30);
}

/** Max absolute difference. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/**
 * Model output as a flat Float32Array (inference or training mode). A training-mode call would update BatchNorm
 * moving statistics in tfjs, so non-trainable weights are restored afterwards.
 */
export function outputOf(model: tfl.LayersModel, xs: tf.Tensor, training = false): Float32Array {
  const saved = training ? model.nonTrainableWeights.map((w) => tf.clone(w.read())) : [];
  const out = tf.tidy(() => {
    const y = training ? (model.apply(xs, { training: true }) as tf.Tensor) : (model.predict(xs) as tf.Tensor);
    return y.dataSync() as Float32Array;
  });
  if (training) model.nonTrainableWeights.forEach((w, i) => w.write(saved[i]!));
  tf.dispose(saved);
  return out;
}

/** Moves BatchNorm far from the identity (scale, offset, moving statistics), so tests of BN handling prove something. */
export function perturbBatchNorm(model: tfl.LayersModel, seed: number): void {
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const weights = layer.getWeights().map((w, i) => tf.tidy(() => (i === 3 ? tf.add(tf.abs(randomTensor(w.shape, seed + i)), 0.5) : randomTensor(w.shape, seed + i))));
    layer.setWeights(weights);
    tf.dispose(weights);
  }
}
