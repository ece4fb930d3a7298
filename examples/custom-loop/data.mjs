// Shared toy data for the tfjs examples: three interleaved spirals in 2-D, drawn with a seeded generator.
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@gradmax/core';

/** Returns a function drawing `n` labelled points ({ xs: [n, 2], ys: one-hot [n, 3] }) from the spirals. */
export function spirals(seed) {
  const rng = new Rng(seed);
  return (n) => {
    const xs = new Float32Array(n * 2);
    const ys = new Float32Array(n * 3);
    for (let i = 0; i < n; i++) {
      const label = rng.int(3);
      const t = rng.uniform();
      const angle = (label * 2 * Math.PI) / 3 + 4 * t + 0.15 * rng.normal();
      xs[2 * i] = t * Math.cos(angle);
      xs[2 * i + 1] = t * Math.sin(angle);
      ys[3 * i + label] = 1;
    }
    return { xs: tf.tensor2d(xs, [n, 2]), ys: tf.tensor2d(ys, [n, 3]) };
  };
}

/** Accuracy of `model` on a batch (argmax agreement). */
export function accuracy(model, batch) {
  const acc = tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(model.predict(batch.xs), 1), tf.argMax(batch.ys, 1)), 'float32')));
  const value = acc.dataSync()[0];
  acc.dispose();
  return value;
}
