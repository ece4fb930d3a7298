/**
 * Input patches of a convolution, `[B, H1·W1, k1h·k1w·m0]` in (a_r, a_c, c_in) order, with the padding tfjs applies.
 * {@link convPatches} picks the fastest formulation for the active backend: one conv2d against a one-hot kernel on
 * native and wasm backends (fast conv kernels), plain loops on the cpu backend (whose slice/pad are slow).
 */
import * as tf from '@tensorflow/tfjs-core';
import { patchesJs } from './js-kernels.js';

/** Patches with strided slices (one per kernel tap). */
export function convPatchesBySlices(x: tf.Tensor4D, kernel: [number, number], strides: [number, number], padding: 'valid' | 'same'): tf.Tensor3D {
  return tf.tidy(() => {
    const [B, , , m0] = x.shape;
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

/** Patches with one conv2d against the identity kernel `[k1h, k1w, m0, k1h·k1w·m0]`. */
export function convPatchesByConv(x: tf.Tensor4D, kernel: [number, number], strides: [number, number], padding: 'valid' | 'same'): tf.Tensor3D {
  return tf.tidy(() => {
    const [B, , , m0] = x.shape;
    const fanIn = kernel[0] * kernel[1] * m0;
    const eye = tf.reshape(tf.eye(fanIn), [kernel[0], kernel[1], m0, fanIn]) as tf.Tensor4D;
    const out = tf.conv2d(x, eye, strides, padding);
    return tf.reshape(out, [B, out.shape[1] * out.shape[2], fanIn]);
  });
}

/** Input patches of a conv (see the module notes for which formulation runs). */
export function convPatches(x: tf.Tensor4D, kernel: [number, number], strides: [number, number], padding: 'valid' | 'same'): tf.Tensor3D {
  return tf.getBackend() === 'cpu' ? patchesJs(x, kernel, strides, padding) : convPatchesByConv(x, kernel, strides, padding);
}
