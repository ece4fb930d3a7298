/**
 * Input patches of a convolution: with strided slices (the cpu backend, where a conv is plain loops) or with one
 * conv2d against a one-hot kernel (native and wasm backends, whose conv kernels are fast).
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * Input patches of a conv, `[B, H1·W1, k1h·k1w·m0]` in (a_r, a_c, c_in) order, using the padding tfjs applies.
 */
export function convPatches(x: tf.Tensor4D, kernel: [number, number], strides: [number, number], padding: 'valid' | 'same'): tf.Tensor3D {
  return tf.tidy(() => {
    const [B, , , m0] = x.shape;
    const fanIn = kernel[0] * kernel[1] * m0;
    if (tf.getBackend() !== 'cpu') {
      const eye = tf.reshape(tf.eye(fanIn), [kernel[0], kernel[1], m0, fanIn]) as tf.Tensor4D;
      const out = tf.conv2d(x, eye, strides, padding);
      return tf.reshape(out, [B, out.shape[1] * out.shape[2], fanIn]);
    }
    const info = tf.backend_util.computeConv2DInfo(x.shape, [kernel[0], kernel[1], m0, 1], strides, 1, padding, undefined, false, 'channelsLast');
    const { top, bottom, left, right } = info.padInfo;
    const xp = top || bottom || left || right ? tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]]) : x;
    const [sh, sw] = strides;
    const h1 = info.outHeight;
    const w1 = info.outWidth;
    const taps: tf.Tensor4D[] = [];
    for (let ar = 0; ar < kernel[0]; ar++) {
      for (let ac = 0; ac < kernel[1]; ac++) {
        taps.push(tf.stridedSlice(xp, [0, ar, ac, 0], [B, ar + sh * (h1 - 1) + 1, ac + sw * (w1 - 1) + 1, m0], [1, sh, sw, 1]) as tf.Tensor4D);
      }
    }
    return tf.reshape(taps.length === 1 ? taps[0]! : tf.concat(taps, 3), [B, h1 * w1, kernel[0] * kernel[1] * m0]);
  });
}

