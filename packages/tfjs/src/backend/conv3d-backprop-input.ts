/**
 * A `Conv3DBackpropInputV2` kernel built from ordinary ops (pad, slice, reverse, transpose and an undilated `conv3d`),
 * for backends whose own one is wrong: tfjs-backend-wasm 4.22's kernel disagreed with naive loops in every case tried
 * (`same` and `valid` padding, kernels 2 and 3, strides 1 and 2: max |difference| 0.6–1.4 times the largest value),
 * so the input gradient of every Conv3D — training, and GradMax statistics through it — was wrong there.
 * `setupBackend` registers this one for wasm.
 *
 * `dx[i] = Σ_a dy[o] · w[a]` over `i = s·o + a − p` (per spatial axis, NDHWC, filter `[kd, kh, kw, in, out]`): dy is
 * zero-interleaved by the stride, shifted so that index i + a' reads position i + p − (k − 1 − a'), and correlated
 * with the spatially reversed filter whose in/out axes are swapped.
 */
import * as tf from '@tensorflow/tfjs-core';
import { InvalidArgumentError, UnsupportedError } from '@gradmax/core';

/** Attributes of `Conv3DBackpropInputV2` as the engine passes them. */
interface Attrs {
  inputShape: [number, number, number, number, number];
  strides: number | [number, number, number];
  pad: 'valid' | 'same';
  dataFormat?: string;
  dilations?: number | [number, number, number];
}

/**
 * Input gradient of a 3-D convolution (see the module notes), for `inputShape` `[B, D, H, W, in]`, `dy`
 * `[B, oD, oH, oW, out]` and `filter` `[kd, kh, kw, in, out]`.
 */
export function conv3dBackpropInputViaOps(inputShape: [number, number, number, number, number], dy: tf.Tensor5D, filter: tf.Tensor5D, strides: number | [number, number, number], pad: 'valid' | 'same'): tf.Tensor5D {
  const info = tf.backend_util.computeConv3DInfo(inputShape, filter.shape, strides, 1, pad);
  const [B, D, H, W, C] = inputShape;
  const out = [info.outDepth, info.outHeight, info.outWidth];
  if (dy.shape[1] !== out[0] || dy.shape[2] !== out[1] || dy.shape[3] !== out[2] || dy.shape[4] !== filter.shape[4] || filter.shape[3] !== C) {
    throw new InvalidArgumentError(`conv3dBackpropInput: input [${inputShape}], dy [${dy.shape}] and filter [${filter.shape}] disagree`);
  }
  const s = [info.strideDepth, info.strideHeight, info.strideWidth];
  const k = [info.filterDepth, info.filterHeight, info.filterWidth];
  const before = [info.padInfo.front, info.padInfo.top, info.padInfo.left];
  const size = [D, H, W];
  const Co = dy.shape[4];
  return tf.tidy(() => {
    // Zero-interleave one axis at a time (rank ≤ 6: wasm's pad, XNNPACK, takes no more).
    let d: tf.Tensor = dy;
    for (let a = 0; a < 3; a++) {
      if (s[a]! === 1) continue;
      const shape = d.shape;
      const split = [...shape.slice(0, a + 2), 1, ...shape.slice(a + 2)];
      const pads = split.map((_, i): [number, number] => (i === a + 2 ? [0, s[a]! - 1] : [0, 0]));
      const grown = [...shape];
      grown[a + 1] = shape[a + 1]! * s[a]!;
      d = tf.reshape(tf.pad(tf.reshape(d, split), pads), grown);
    }
    // Along each axis: index j of the correlated map holds D[j − (k − 1) + p], for j in [0, size + k − 1).
    const pads: [number, number][] = [[0, 0]];
    const starts = [0];
    const lengths = [B];
    for (let a = 0; a < 3; a++) {
      const front = k[a]! - 1 - before[a]!;
      const need = size[a]! + k[a]! - 1;
      const padBefore = Math.max(front, 0);
      const start = Math.max(-front, 0);
      const have = d.shape[a + 1]! + padBefore;
      pads.push([padBefore, Math.max(0, start + need - have)]);
      starts.push(start);
      lengths.push(need);
    }
    pads.push([0, 0]);
    starts.push(0);
    lengths.push(Co);
    const shifted = tf.slice(tf.pad(d, pads), starts, lengths) as tf.Tensor5D;
    const flipped = tf.transpose(tf.reverse(filter, [0, 1, 2]), [0, 1, 2, 4, 3]) as tf.Tensor5D;
    return tf.conv3d(shifted, flipped, 1, 'valid');
  });
}

const kernelFunc: tf.KernelFunc = ({ inputs, attrs }) => {
  const { dy, filter } = inputs as unknown as { dy: tf.Tensor5D; filter: tf.Tensor5D };
  const a = attrs as unknown as Attrs;
  if (a.dataFormat === 'NCDHW') throw new UnsupportedError('Conv3DBackpropInputV2 replacement supports NDHWC only');
  const dil = Array.isArray(a.dilations) ? a.dilations : [a.dilations ?? 1];
  if (dil.some((v) => v !== 1)) throw new UnsupportedError('Conv3DBackpropInputV2 replacement: dilations must be 1');
  return conv3dBackpropInputViaOps(a.inputShape, dy, filter, a.strides, a.pad);
};

const stock = new Map<string, tf.KernelConfig>();

/**
 * Registers the op-based `Conv3DBackpropInputV2` kernel for `backendName` (remembering the backend's own). Idempotent.
 * @returns true when (re)registered, false when it was already installed
 */
export function registerConv3dBackpropInput(backendName: string): boolean {
  const existing = tf.getKernel(tf.Conv3DBackpropInputV2, backendName);
  if (existing?.kernelFunc === kernelFunc) return false;
  if (existing) {
    stock.set(backendName, existing);
    tf.unregisterKernel(tf.Conv3DBackpropInputV2, backendName);
  }
  tf.registerKernel({ kernelName: tf.Conv3DBackpropInputV2, backendName, kernelFunc });
  return true;
}

/** True when the op-based `Conv3DBackpropInputV2` kernel is the one registered for `backendName`. */
export function hasConv3dBackpropInputReplacement(backendName: string): boolean {
  return tf.getKernel(tf.Conv3DBackpropInputV2, backendName)?.kernelFunc === kernelFunc;
}

/** Puts back the backend's own `Conv3DBackpropInputV2` kernel after {@link registerConv3dBackpropInput}. */
export function restoreStockConv3dBackpropInput(backendName: string): void {
  if (!hasConv3dBackpropInputReplacement(backendName)) return;
  tf.unregisterKernel(tf.Conv3DBackpropInputV2, backendName);
  const original = stock.get(backendName);
  if (original) tf.registerKernel(original);
  stock.delete(backendName);
}
