/**
 * `DepthwiseConv2dNativeBackpropInput` and `DepthwiseConv2dNativeBackpropFilter` kernels built from ordinary ops
 * (pad, strided slice, depthwise conv2d, multiply, sum), for backends that lack them: tfjs-backend-wasm 4.22 has
 * neither, so training or taking GradMax statistics of any model with a DepthwiseConv2D (MobileNet) fails there with
 * "Kernel 'DepthwiseConv2dNativeBackpropInput' not registered for backend 'wasm'". {@link setupBackend} registers both
 * for wasm.
 *
 * Conventions (NHWC): x `[B, H, W, C]`, filter `[kh, kw, C, m]` (m the channel multiplier), dy `[B, Ho, Wo, C·m]`
 * with output channel c·m + q.
 */
import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError, UnsupportedError } from '@gradmax/core';


/** Attributes of the two depthwise backprop kernels (as the engine passes them, or given directly). */
export interface DepthwiseBackpropAttrs {
  /** Conv strides. */
  strides: number | [number, number];
  /** Conv padding as `tf.depthwiseConv2d` takes it. */
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  /** Conv dilations (default 1). */
  dilations?: number | [number, number];
  /** Rounding mode for numeric padding. */
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  /** BackpropInput only. */
  inputShape?: [number, number, number, number];
  /** BackpropFilter only. */
  filterShape?: [number, number, number, number];
}

function info(xShape: [number, number, number, number], filterShape: [number, number, number, number], a: DepthwiseBackpropAttrs) {
  return tf.backend_util.computeConv2DInfo(xShape, filterShape, a.strides, a.dilations ?? 1, a.pad, a.dimRoundingMode, true, 'channelsLast');
}

/**
 * Gradient of a depthwise conv with respect to its input:
 * `dx[b, i, j, c] = Σ_{a, a', q} dy[b, y, x, c·m + q] · w[a, a', c, q]` over `i = s_h·y + d_h·a − p_top`,
 * `j = s_w·x + d_w·a' − p_left`. dy is zero-interleaved by the stride, padded, and correlated (a depthwise conv with
 * the dilation) with the spatially flipped filter viewed as `[kh, kw, C·m, 1]`; the m products of a channel are summed.
 */
export function depthwiseBackpropInputViaOps(xShape: [number, number, number, number], dy: tf.Tensor4D, filter: tf.Tensor4D, attrs: DepthwiseBackpropAttrs): tf.Tensor4D {
  const [kh, kw, C, m] = filter.shape;
  if (xShape[3] !== C || dy.shape[3] !== C * m) throw new InvalidArgumentError(`depthwiseConv2dNativeBackpropInput: input [${xShape}], dy [${dy.shape}] and filter [${filter.shape}] disagree`);
  const conv = info(xShape, filter.shape, attrs);
  if (conv.outHeight !== dy.shape[1] || conv.outWidth !== dy.shape[2]) throw new InvalidArgumentError(`depthwiseConv2dNativeBackpropInput: dy [${dy.shape}] does not match the conv output ${conv.outHeight}×${conv.outWidth}`);
  const [B, H, W] = xShape;
  const [sh, sw] = [conv.strideHeight, conv.strideWidth];
  const [dh, dw] = [conv.dilationHeight, conv.dilationWidth];
  const [ho, wo] = [dy.shape[1], dy.shape[2]];
  return tf.tidy(() => {
    let d: tf.Tensor4D = dy;
    if (sh > 1 || sw > 1) {
      const d6 = tf.reshape(dy, [B, ho, 1, wo, 1, C * m]);
      d = tf.reshape(tf.pad(d6, [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]), [B, ho * sh, wo * sw, C * m]);
    }
    // dx[i] = Σ_a D[i + p_top − d·a] w[a] = Σ_a' Dp[i + d·a'] w[kh − 1 − a'], Dp = D shifted by d·(kh − 1) − p_top.
    const ekh = dh * (kh - 1);
    const ekw = dw * (kw - 1);
    const front = [ekh - conv.padInfo.top, ekw - conv.padInfo.left];
    const need = [H + ekh, W + ekw];
    const cropFront = [Math.max(0, -front[0]!), Math.max(0, -front[1]!)];
    if (cropFront[0] || cropFront[1]) d = tf.slice(d, [0, cropFront[0]!, cropFront[1]!, 0], [B, d.shape[1] - cropFront[0]!, d.shape[2] - cropFront[1]!, C * m]);
    const top = Math.max(0, front[0]!);
    const left = Math.max(0, front[1]!);
    const bottom = need[0]! - top - d.shape[1];
    const right = need[1]! - left - d.shape[2];
    d = tf.pad(d, [[0, 0], [top, Math.max(0, bottom)], [left, Math.max(0, right)], [0, 0]]);
    if (bottom < 0 || right < 0) d = tf.slice(d, [0, 0, 0, 0], [B, need[0]!, need[1]!, C * m]);
    const flipped = tf.reshape(tf.reverse(filter, [0, 1]), [kh, kw, C * m, 1]) as tf.Tensor4D;
    const products = tf.depthwiseConv2d(d, flipped, 1, 'valid', 'NHWC', [dh, dw]);
    return m === 1 ? products : (tf.sum(tf.reshape(products, [B, H, W, C, m]), 4) as tf.Tensor4D);
  });
}

/**
 * Gradient of a depthwise conv with respect to its filter:
 * `dw[a, a', c, q] = Σ_{b, y, x} x_pad[b, s_h·y + d_h·a, s_w·x + d_w·a', c] · dy[b, y, x, c·m + q]`, one strided slice
 * of the padded input per filter tap.
 */
export function depthwiseBackpropFilterViaOps(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: [number, number, number, number], attrs: DepthwiseBackpropAttrs): tf.Tensor4D {
  const [kh, kw, C, m] = filterShape;
  if (x.shape[3] !== C || dy.shape[3] !== C * m || x.shape[0] !== dy.shape[0]) throw new InvalidArgumentError(`depthwiseConv2dNativeBackpropFilter: x [${x.shape}], dy [${dy.shape}] and filter [${filterShape}] disagree`);
  const conv = info(x.shape, filterShape, attrs);
  if (conv.outHeight !== dy.shape[1] || conv.outWidth !== dy.shape[2]) throw new InvalidArgumentError(`depthwiseConv2dNativeBackpropFilter: dy [${dy.shape}] does not match the conv output ${conv.outHeight}×${conv.outWidth}`);
  const [B, H, W] = x.shape;
  const [sh, sw] = [conv.strideHeight, conv.strideWidth];
  const [dh, dw] = [conv.dilationHeight, conv.dilationWidth];
  const [ho, wo] = [dy.shape[1], dy.shape[2]];
  return tf.tidy(() => {
    const { top, left } = conv.padInfo;
    const needH = sh * (ho - 1) + dh * (kh - 1) + 1;
    const needW = sw * (wo - 1) + dw * (kw - 1) + 1;
    let xp: tf.Tensor4D = tf.pad(x, [[0, 0], [top, Math.max(0, needH - H - top)], [left, Math.max(0, needW - W - left)], [0, 0]]);
    if (xp.shape[1] > needH || xp.shape[2] > needW) xp = tf.slice(xp, [0, 0, 0, 0], [B, needH, needW, C]);
    const g = tf.reshape(dy, [B * ho * wo, C, m]);
    const taps: tf.Tensor[] = [];
    for (let a = 0; a < kh; a++) {
      for (let b = 0; b < kw; b++) {
        const tap = tf.stridedSlice(xp, [0, dh * a, dw * b, 0], [B, dh * a + sh * (ho - 1) + 1, dw * b + sw * (wo - 1) + 1, C], [1, sh, sw, 1]);
        taps.push(tf.sum(tf.mul(tf.reshape(tap, [B * ho * wo, C, 1]), g), 0));
      }
    }
    return tf.reshape(tf.stack(taps), [kh, kw, C, m]) as tf.Tensor4D;
  });
}

const inputKernel: tf.KernelFunc = ({ inputs, attrs }) => {
  const { dy, filter } = inputs as unknown as { dy: tf.Tensor4D; filter: tf.Tensor4D };
  const a = attrs as unknown as DepthwiseBackpropAttrs & { dataFormat?: string };
  if (a.dataFormat === 'NCHW') throw new UnsupportedError('DepthwiseConv2dNativeBackpropInput replacement supports NHWC only');
  return depthwiseBackpropInputViaOps(a.inputShape!, dy, filter, a);
};

const filterKernel: tf.KernelFunc = ({ inputs, attrs }) => {
  const { x, dy } = inputs as unknown as { x: tf.Tensor4D; dy: tf.Tensor4D };
  const a = attrs as unknown as DepthwiseBackpropAttrs & { dataFormat?: string };
  if (a.dataFormat === 'NCHW') throw new UnsupportedError('DepthwiseConv2dNativeBackpropFilter replacement supports NHWC only');
  return depthwiseBackpropFilterViaOps(x, dy, a.filterShape!, a);
};

const KERNELS: [string, tf.KernelFunc][] = [
  [tf.DepthwiseConv2dNativeBackpropInput, inputKernel],
  [tf.DepthwiseConv2dNativeBackpropFilter, filterKernel],
];

/**
 * Registers both depthwise backprop kernels for `backendName` where it has none (wasm). A backend's own kernels are
 * left in place. Idempotent.
 * @returns the names of the kernels registered by this call
 */
export function registerDepthwiseBackprop(backendName: string): string[] {
  const added: string[] = [];
  for (const [kernelName, kernelFunc] of KERNELS) {
    if (tf.getKernel(kernelName, backendName)) continue;
    tf.registerKernel({ kernelName, backendName, kernelFunc });
    added.push(kernelName);
  }
  return added;
}

/** True when both of gradmax's depthwise backprop kernels are the ones registered for `backendName`. */
export function hasDepthwiseBackprop(backendName: string): boolean {
  return KERNELS.every(([name, fn]) => tf.getKernel(name, backendName)?.kernelFunc === fn);
}
