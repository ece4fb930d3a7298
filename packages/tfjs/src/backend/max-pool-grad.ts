/**
 * A `MaxPoolGrad` kernel built from slices, comparisons and pads, with TF's tie rule (the gradient of a window goes to
 * the first maximal element in row-major window order). The stock wasm kernel (tfjs 4.22) drops the gradient of
 * windows whose maximum is tied at 0 — exactly the windows of a new, all-zero channel after growth — so
 * {@link setupBackend} registers this one for wasm.
 */
import * as tf from '@tensorflow/tfjs-core';
import { UnsupportedError } from '@gradmax/core';

/** Attributes the engine passes to a `MaxPoolGrad` kernel. */
interface MaxPoolGradAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/**
 * Gradient of a 2-D max pool (NHWC) with respect to its input.
 *
 * @param dy - output gradient `[B, Ho, Wo, C]`
 * @param x - pool input `[B, H, W, C]`
 * @param y - pool output `[B, Ho, Wo, C]`
 */
export function maxPoolGradViaSlices(
  dy: tf.Tensor4D,
  x: tf.Tensor4D,
  y: tf.Tensor4D,
  filterSize: number | [number, number],
  strides: number | [number, number],
  pad: MaxPoolGradAttrs['pad'],
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
): tf.Tensor4D {
  const info = tf.backend_util.computePool2DInfo(x.shape, filterSize, strides, 1, pad, dimRoundingMode);
  const { top, bottom, left, right } = info.padInfo;
  const kh = info.filterHeight;
  const kw = info.filterWidth;
  const sh = info.strideHeight;
  const sw = info.strideWidth;
  const [B, H, W, C] = x.shape;
  const ho = info.outHeight;
  const wo = info.outWidth;
  if (kh === sh && kw === sw && top === 0 && left === 0 && bottom === 0 && right === 0 && ho * sh <= H && wo * sw <= W) {
    return nonOverlapping(dy, x, y, kh, kw);
  }
  return tf.tidy(() => {
    const xp = top || bottom || left || right ? tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]], -Infinity) : x;
    const canvasH = Math.max(kh - 1 + ho * sh, top + H);
    const canvasW = Math.max(kw - 1 + wo * sw, left + W);
    let claimed: tf.Tensor4D = tf.zerosLike(y);
    let canvas: tf.Tensor4D | undefined;
    for (let a = 0; a < kh; a++) {
      for (let b = 0; b < kw; b++) {
        const end = [B, Math.min(xp.shape[1], a + sh * (ho - 1) + 1), Math.min(xp.shape[2], b + sw * (wo - 1) + 1), C];
        let window = tf.stridedSlice(xp, [0, a, b, 0], end, [1, sh, sw, 1]) as tf.Tensor4D;
        if (window.shape[1] < ho || window.shape[2] < wo) {
          window = tf.pad(window, [[0, 0], [0, ho - window.shape[1]], [0, wo - window.shape[2]], [0, 0]], -Infinity);
        }
        const hit = tf.mul(tf.cast(tf.equal(window, y), 'float32'), tf.sub(1, claimed)) as tf.Tensor4D;
        claimed = tf.add(claimed, hit) as tf.Tensor4D;
        const part = tf.mul(dy, hit);
        // Place part[y] at padded-input position s·y + (a, b).
        const spread = tf.reshape(tf.pad(tf.reshape(part, [B, ho, 1, wo, 1, C]), [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]), [B, ho * sh, wo * sw, C]);
        const placed = tf.pad(spread, [[0, 0], [a, canvasH - a - ho * sh], [b, canvasW - b - wo * sw], [0, 0]]) as tf.Tensor4D;
        canvas = canvas ? (tf.add(canvas, placed) as tf.Tensor4D) : placed;
      }
    }
    return tf.slice(canvas!, [0, top, left, 0], [B, H, W, C]);
  });
}

/** Windows that tile the input (stride = window, no padding): reshapes, one cumulative sum for the first maximum. */
function nonOverlapping(dy: tf.Tensor4D, x: tf.Tensor4D, y: tf.Tensor4D, kh: number, kw: number): tf.Tensor4D {
  return tf.tidy(() => {
    const [B, H, W, C] = x.shape;
    const [, ho, wo] = y.shape;
    const xc = ho * kh === H && wo * kw === W ? x : tf.slice(x, [0, 0, 0, 0], [B, ho * kh, wo * kw, C]);
    // [B, Ho, Wo, kh·kw, C]: window elements in row-major order.
    const windows = tf.reshape(tf.transpose(tf.reshape(xc, [B, ho, kh, wo, kw, C]), [0, 1, 3, 2, 4, 5]), [B, ho, wo, kh * kw, C]);
    // Broadcasting comparisons are slow on wasm; arithmetic is not. y − x ≥ 0 with equality at the maxima.
    const hits = tf.sub(1, tf.sign(tf.sub(tf.reshape(y, [B, ho, wo, 1, C]), windows)));
    // First maximum: the running count of maxima is 1 there (relu(2 − count) is 1 for count 1, 0 from 2 on).
    // (cumsum over a rank-4 view: the webgpu backend's cumsum stops at rank 4.)
    const count = tf.reshape(tf.cumsum(tf.reshape(hits, [B * ho, wo, kh * kw, C]), 2), [B, ho, wo, kh * kw, C]);
    const first = tf.mul(hits, tf.relu(tf.sub(2, count)));
    const routed = tf.mul(first, tf.reshape(dy, [B, ho, wo, 1, C]));
    const back = tf.reshape(tf.transpose(tf.reshape(routed, [B, ho, wo, kh, kw, C]), [0, 1, 3, 2, 4, 5]), [B, ho * kh, wo * kw, C]);
    return ho * kh === H && wo * kw === W ? back : tf.pad(back, [[0, 0], [0, H - ho * kh], [0, W - wo * kw], [0, 0]]);
  }) as tf.Tensor4D;
}

const kernelFunc: tf.KernelFunc = ({ inputs, attrs }) => {
  const { dy, input, output } = inputs as unknown as { dy: tf.Tensor4D; input: tf.Tensor4D; output: tf.Tensor4D };
  const a = attrs as unknown as MaxPoolGradAttrs;
  if (input.rank !== 4) throw new UnsupportedError('MaxPoolGrad replacement supports rank-4 NHWC inputs only');
  return maxPoolGradViaSlices(dy, input, output, a.filterSize, a.strides, a.pad, a.dimRoundingMode);
};

const stock = new Map<string, tf.KernelConfig>();

/**
 * Registers the slice-based `MaxPoolGrad` kernel for `backendName` (remembering the stock one). Idempotent.
 * @returns true when (re)registered, false when it was already installed
 */
export function registerMaxPoolGrad(backendName: string): boolean {
  const existing = tf.getKernel(tf.MaxPoolGrad, backendName);
  if (existing?.kernelFunc === kernelFunc) return false;
  if (existing) {
    stock.set(backendName, existing);
    tf.unregisterKernel(tf.MaxPoolGrad, backendName);
  }
  tf.registerKernel({ kernelName: tf.MaxPoolGrad, backendName, kernelFunc });
  return true;
}

/** True when the slice-based `MaxPoolGrad` kernel is the one registered for `backendName`. */
export function hasMaxPoolGradReplacement(backendName: string): boolean {
  return tf.getKernel(tf.MaxPoolGrad, backendName)?.kernelFunc === kernelFunc;
}

/** Puts back the backend's own `MaxPoolGrad` kernel after {@link registerMaxPoolGrad}. */
export function restoreStockMaxPoolGrad(backendName: string): void {
  if (!hasMaxPoolGradReplacement(backendName)) return;
  tf.unregisterKernel(tf.MaxPoolGrad, backendName);
  const original = stock.get(backendName);
  if (original) tf.registerKernel(original);
  stock.delete(backendName);
}
