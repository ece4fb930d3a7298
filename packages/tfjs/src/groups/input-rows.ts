/**
 * Per-position input rows of a producer: for a producer's input `x`, the tensor `[B, P, fanIn]` whose row (n, u) is
 * the vector h with `pre-activation[n, u, j] = h · w_j + b_j`, `w_j` being unit j's incoming weights in the producer's
 * block of the group's stacked incoming matrix (the kernel read as `[outer, units, inner]`, column `o·inner + i`, see
 * `layout.ts`). Dense: the input itself (P = the positions of a rank > 2 input). Convolutions (1-D, 2-D, 3-D, strided,
 * dilated): the input patch, gathered by the layer's own convolution against an identity kernel (so padding, strides
 * and dilations are exactly the framework's), or by plain loops for undilated Conv2D (`convPatches`).
 * SeparableConv2D: the depthwise stage's output (its incoming weights are the pointwise kernel). Conv2DTranspose: the
 * transposed convolution of the input against an identity kernel (taps `(kh, kw)`, then input channel).
 *
 * One function per producer class, referenced from the layer rule table (`rules.ts`), so a class cannot be a producer
 * without a way to give its input rows.
 */
import * as tf from '@tensorflow/tfjs-core';
import { UnsupportedError } from '@gradmax/core';
import type { AnyLayer } from '../model/graph.js';
import { requireVariable } from '../model/weights.js';
import { convPatches } from '../statistics/patches.js';

type Config = Record<string, unknown>;

/** Input rows `[B, P, fanIn]` of a producer from its input `x` (see the module notes). */
export type InputRows = (x: tf.Tensor, layer: AnyLayer) => tf.Tensor3D;

function tuple(v: unknown, n: number): number[] {
  const values = Array.isArray(v) ? v.map(Number) : [Number(v ?? 1)];
  return values.length === n ? values : Array.from({ length: n }, () => values[0]!);
}

function config(layer: AnyLayer): Config {
  return layer.getConfig() as Config;
}

/** `[B, s1, ..., sk, C]` → `[B, s1·…·sk, C]`. */
function positionsRows(t: tf.Tensor): tf.Tensor3D {
  const B = t.shape[0]!;
  const C = t.shape[t.rank - 1]!;
  return tf.reshape(t, [B, t.size / (B * C), C]);
}

/** The identity over `fanIn = Π kernel · inChannels`, shaped `[...kernel, inChannels, fanIn]`. */
function identityKernel(kernel: number[], inChannels: number): tf.Tensor {
  const fanIn = kernel.reduce((a, b) => a * b, 1) * inChannels;
  return tf.reshape(tf.eye(fanIn), [...kernel, inChannels, fanIn]);
}

/** Dense: the input, positions folded (a Dense layer applies to the last axis). */
export const denseRows: InputRows = (x) => tf.tidy(() => positionsRows(x.rank === 2 ? tf.expandDims(x, 1) : x));

/** Conv1D / Conv2D / Conv3D: the input patches (see the module notes). */
export const convRows: InputRows = (x, layer) =>
  tf.tidy(() => {
    const c = config(layer);
    const rank = x.rank - 2;
    const kernel = tuple(c['kernelSize'], rank);
    const strides = tuple(c['strides'] ?? 1, rank);
    const dilations = tuple(c['dilationRate'] ?? 1, rank);
    // tfjs-layers 4.22 runs no 'causal' padding (NotImplementedError), so only 'valid' and 'same' reach here.
    const pad = String(c['padding'] ?? 'valid') as 'valid' | 'same';
    const inChannels = x.shape[x.rank - 1]!;
    const input = x;
    if (rank === 2 && dilations.every((d) => d === 1)) return convPatches(input as tf.Tensor4D, kernel as [number, number], strides as [number, number], pad);
    const eye = identityKernel(kernel, inChannels);
    let out: tf.Tensor;
    if (rank === 1) out = tf.conv1d(input as tf.Tensor3D, eye as tf.Tensor3D, strides[0]!, pad, 'NWC', dilations[0]!);
    else if (rank === 2) out = tf.conv2d(input as tf.Tensor4D, eye as tf.Tensor4D, strides as [number, number], pad, 'NHWC', dilations as [number, number]);
    else if (rank === 3) out = tf.conv3d(input as tf.Tensor5D, eye as tf.Tensor5D, strides as [number, number, number], pad, 'NDHWC', dilations as [number, number, number]);
    else throw new UnsupportedError(`layer "${layer.name}": input rows of a ${rank}-D convolution are not supported`, { layer: layer.name });
    return positionsRows(out);
  });

/** SeparableConv2D: the depthwise stage's output (the pointwise kernel holds the incoming weights). */
export const separableRows: InputRows = (x, layer) =>
  tf.tidy(() => {
    const c = config(layer);
    const depthwise = requireVariable(layer, 'depthwise_kernel').read() as tf.Tensor4D;
    const out = tf.depthwiseConv2d(x as tf.Tensor4D, depthwise, tuple(c['strides'] ?? 1, 2) as [number, number], String(c['padding'] ?? 'valid') as 'valid' | 'same', 'NHWC', tuple(c['dilationRate'] ?? 1, 2) as [number, number]);
    return positionsRows(out);
  });

/** Output length of a transposed convolution along one axis (tfjs-layers `deconvLength`, no output padding). */
function deconvLength(size: number, stride: number, kernel: number, padding: string): number {
  return padding === 'same' ? size * stride : size * stride + Math.max(kernel - stride, 0);
}

/** Conv2DTranspose: the transposed convolution of the input against the identity kernel `[kh, kw, fanIn, in]`. */
export const transposeRows: InputRows = (x, layer) =>
  tf.tidy(() => {
    const c = config(layer);
    const [B, H, W, inChannels] = x.shape as [number, number, number, number];
    const kernel = tuple(c['kernelSize'], 2) as [number, number];
    const strides = tuple(c['strides'] ?? 1, 2) as [number, number];
    if (tuple(c['dilationRate'] ?? 1, 2).some((d) => d !== 1)) {
      throw new UnsupportedError(`layer "${layer.name}": input rows of a dilated Conv2DTranspose are not supported`, { layer: layer.name });
    }
    const padding = String(c['padding'] ?? 'valid') as 'valid' | 'same';
    const fanIn = kernel[0] * kernel[1] * inChannels;
    // E[kr, kc, col, ci] = 1 iff col = (kr·kw + kc)·in + ci (the producer view of a transposed kernel).
    const eye = tf.transpose(identityKernel(kernel, inChannels), [0, 1, 3, 2]) as tf.Tensor4D;
    const out = tf.conv2dTranspose(x as tf.Tensor4D, eye, [B, deconvLength(H, strides[0], kernel[0], padding), deconvLength(W, strides[1], kernel[1], padding), fanIn], strides, padding);
    return positionsRows(out);
  });
