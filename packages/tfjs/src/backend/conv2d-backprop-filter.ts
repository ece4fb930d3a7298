/**
 * A `Conv2DBackpropFilter` kernel built only from `pad`, `slice`, `transpose` and a dilated `conv2d`, for
 * backends that lack one (wasm) or whose stock kernel is slow (cpu).
 */
import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError, UnsupportedError } from '@gradmax/core';

/** Attributes the engine passes to a `Conv2DBackpropFilter` kernel. */
interface BackpropFilterAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

/**
 * Weight gradient of a 2-D convolution (NHWC, no dilation), computed with ordinary kernels:
 * `dW[a_r, a_c, ci, co] = Σ_{b,y,x} x[b, s_h·y + a_r − p_top, s_w·x + a_c − p_left, ci] · dy[b, y, x, co]`.
 * The input is transposed to `[ci, H, W, batch]`, the output gradient to `[Hy, Wy, batch, co]`, and one
 * valid conv2d with dilation = stride (the batch acting as channels) gives `[ci, kh, kw, co]`.
 *
 * @param x - input `[B, H, W, Ci]`
 * @param dy - output gradient `[B, Hy, Wy, Co]`
 * @param filterShape - `[kh, kw, Ci, Co]`
 * @param strides - conv strides
 * @param pad - conv padding as accepted by `tf.conv2d`
 * @param dimRoundingMode - rounding mode for numeric padding
 * @returns the kernel gradient `[kh, kw, Ci, Co]`
 */
export function conv2dBackpropFilterViaConv(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: [number, number, number, number],
  strides: number | [number, number],
  pad: BackpropFilterAttrs['pad'],
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
): tf.Tensor4D {
  const [kh, kw, ci, co] = filterShape;
  if (x.rank !== 4 || dy.rank !== 4) {
    throw new InvalidArgumentError(`conv2dBackpropFilter: x and dy must be rank 4, got [${x.shape}] and [${dy.shape}]`);
  }
  if (x.shape[3] !== ci || dy.shape[3] !== co || x.shape[0] !== dy.shape[0]) {
    throw new InvalidArgumentError(`conv2dBackpropFilter: x [${x.shape}], dy [${dy.shape}] and filter [${filterShape}] disagree`);
  }
  const info = tf.backend_util.computeConv2DInfo(x.shape, filterShape, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
  if (info.outHeight !== dy.shape[1] || info.outWidth !== dy.shape[2]) {
    throw new InvalidArgumentError(`conv2dBackpropFilter: dy [${dy.shape}] does not match the conv output ${info.outHeight}×${info.outWidth}`);
  }
  const sh = info.strideHeight;
  const sw = info.strideWidth;
  const { top, left } = info.padInfo;
  const [, h, w] = x.shape;
  const hy = dy.shape[1];
  const wy = dy.shape[2];
  // Padded-input rows/cols actually touched: s·y + a for y < Hy, a < k.
  const needH = (hy - 1) * sh + kh;
  const needW = (wy - 1) * sw + kw;
  return tf.tidy(() => {
    const bottom = Math.max(0, needH - h - top);
    const right = Math.max(0, needW - w - left);
    let xp: tf.Tensor4D = top || bottom || left || right ? tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]]) : x;
    if (xp.shape[1] !== needH || xp.shape[2] !== needW) xp = tf.slice(xp, [0, 0, 0, 0], [-1, needH, needW, -1]);
    const xt = tf.transpose(xp, [3, 1, 2, 0]); // [ci, needH, needW, B]
    const dyt = tf.transpose(dy, [1, 2, 0, 3]); // [Hy, Wy, B, co]
    const out = tf.conv2d(xt, dyt as tf.Tensor4D, 1, 'valid', 'NHWC', [sh, sw]); // [ci, kh, kw, co]
    return tf.transpose(out, [1, 2, 0, 3]);
  });
}

/** The kernel function registered with the engine. */
const kernelFunc: tf.KernelFunc = ({ inputs, attrs }) => {
  const { x, dy } = inputs as unknown as { x: tf.Tensor4D; dy: tf.Tensor4D };
  const a = attrs as unknown as BackpropFilterAttrs;
  if (a.dataFormat === 'NCHW') throw new UnsupportedError('Conv2DBackpropFilter replacement supports NHWC only');
  return conv2dBackpropFilterViaConv(x, dy, a.filterShape, a.strides, a.pad, a.dimRoundingMode);
};

const stockKernels = new Map<string, tf.KernelConfig>();

/**
 * Registers the conv2d-based `Conv2DBackpropFilter` kernel for `backendName`. For a backend that already has a
 * kernel (cpu), the stock one is remembered and can be put back with {@link restoreStockConvBackpropFilter}.
 * Idempotent.
 *
 * @param backendName - e.g. `"wasm"` (required for conv training there) or `"cpu"` (opt-in speed-up)
 * @returns true when the kernel was (re)registered, false when it was already installed
 */
export function registerConvBackpropFilter(backendName: string): boolean {
  const existing = tf.getKernel(tf.Conv2DBackpropFilter, backendName);
  if (existing?.kernelFunc === kernelFunc) return false;
  if (existing) {
    stockKernels.set(backendName, existing);
    tf.unregisterKernel(tf.Conv2DBackpropFilter, backendName);
  }
  tf.registerKernel({ kernelName: tf.Conv2DBackpropFilter, backendName, kernelFunc });
  return true;
}

/** True when the conv2d-based `Conv2DBackpropFilter` kernel is the one registered for `backendName`. */
export function hasConvBackpropFilterReplacement(backendName: string): boolean {
  return tf.getKernel(tf.Conv2DBackpropFilter, backendName)?.kernelFunc === kernelFunc;
}

/**
 * Puts back the backend's own `Conv2DBackpropFilter` kernel (if it had one) after
 * {@link registerConvBackpropFilter}; for wasm, which has none, the replacement is simply removed.
 */
export function restoreStockConvBackpropFilter(backendName: string): void {
  if (!hasConvBackpropFilterReplacement(backendName)) return;
  tf.unregisterKernel(tf.Conv2DBackpropFilter, backendName);
  const stock = stockKernels.get(backendName);
  if (stock) tf.registerKernel(stock);
  stockKernels.delete(backendName);
}
