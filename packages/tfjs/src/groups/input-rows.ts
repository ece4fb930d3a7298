/**
 * Per-position input rows of a producer: for a producer's input `x`, row (n, u) is the vector h with
 * `pre-activation[n, u, j] = h · w_j + b_j`, `w_j` being unit j's incoming weights in the producer's block of the
 * group's stacked incoming matrix (the kernel read as `[outer, units, inner]`, column `o·inner + i`, see `layout.ts`).
 * Dense: the input itself (positions = those of a rank > 2 input). Convolutions (1-D, 2-D, 3-D, strided, dilated,
 * `valid` or TF-style `same` padding): the input patch, taps in kernel order then input channel, zero outside the
 * input. SeparableConv2D: the depthwise stage's output (its incoming weights are the pointwise kernel).
 * Conv2DTranspose: the transposed patch, h[p, (kr, kc, ci)] = x[(p + pad − k) / s, ci] where that is an integer
 * inside the input (tfjs computes the layer as the input gradient of a conv over the output).
 *
 * A row source reads the input once and writes only the rows asked for, so sampling a few rows never materialises
 * every patch. One function per producer class, referenced from the layer rule table (`rules.ts`), so a class cannot
 * be a producer without a way to give its input rows.
 */
import * as tf from '@tensorflow/tfjs-core';
import { UnsupportedError } from '@gradmax/core';
import type { AnyLayer } from '../model/graph.js';
import { requireVariable } from '../model/weights.js';

type Config = Record<string, unknown>;

/** The rows of one producer on one chunk of examples. */
export interface RowSource {
  /** Output positions per example. */
  positions: number;
  /** Row width: the producer's fan-in. */
  fanIn: number;
  /** Writes row (example n, position u) into `out[offset, offset + fanIn)`. */
  fill(n: number, u: number, out: Float64Array, offset: number): void;
}

/** The row source of a producer from its input `x` (see the module notes). */
export type InputRows = (x: tf.Tensor, layer: AnyLayer) => RowSource;

function tuple(v: unknown, n: number): number[] {
  const values = Array.isArray(v) ? v.map(Number) : [Number(v ?? 1)];
  return values.length === n ? values : Array.from({ length: n }, () => values[0]!);
}

function config(layer: AnyLayer): Config {
  return layer.getConfig() as Config;
}

function product(values: readonly number[]): number {
  return values.reduce((a, b) => a * b, 1);
}

/** Rows that are the per-position vectors of a `[B, ..., C]` tensor's data. */
function positionRows(data: Float32Array | Int32Array | Uint8Array, shape: readonly number[]): RowSource {
  const C = shape[shape.length - 1]!;
  const positions = product(shape.slice(1, -1));
  return {
    positions,
    fanIn: C,
    fill(n, u, out, offset) {
      const base = (n * positions + u) * C;
      for (let c = 0; c < C; c++) out[offset + c] = data[base + c]!;
    },
  };
}

/** Dense: the input, positions folded (a Dense layer applies to the last axis). */
export const denseRows: InputRows = (x) => positionRows(x.dataSync() as Float32Array, x.shape);

/** Output size and padding before, per spatial axis, of a convolution as tfjs computes them. */
export function convAxes(input: readonly number[], kernel: readonly number[], strides: readonly number[], dilations: readonly number[], padding: string): { out: number[]; before: number[] } {
  const out: number[] = [];
  const before: number[] = [];
  input.forEach((size, a) => {
    const extent = (kernel[a]! - 1) * dilations[a]! + 1;
    if (padding === 'same') {
      const o = Math.ceil(size / strides[a]!);
      out.push(o);
      before.push(Math.floor(Math.max((o - 1) * strides[a]! + extent - size, 0) / 2));
    } else if (padding === 'valid') {
      out.push(Math.ceil((size - extent + 1) / strides[a]!));
      before.push(0);
    } else {
      throw new UnsupportedError(`padding "${padding}" is not supported for input rows`, { padding });
    }
  });
  return { out, before };
}

/** Conv1D / Conv2D / Conv3D: the input patches (see the module notes). */
export const convRows: InputRows = (x, layer) => {
  const c = config(layer);
  const rank = x.rank - 2;
  const spatial = x.shape.slice(1, -1);
  const C = x.shape[x.rank - 1]!;
  const kernel = tuple(c['kernelSize'], rank);
  const strides = tuple(c['strides'] ?? 1, rank);
  const dilations = tuple(c['dilationRate'] ?? 1, rank);
  const { out, before } = convAxes(spatial, kernel, strides, dilations, String(c['padding'] ?? 'valid'));
  const data = x.dataSync() as Float32Array;
  const positions = product(out);
  const taps = product(kernel);
  const perExample = product(spatial) * C;
  const at = new Array<number>(rank);
  return {
    positions,
    fanIn: taps * C,
    fill(n, u, row, offset) {
      // Output coordinates of position u (row-major over `out`).
      let rest = u;
      const o = new Array<number>(rank);
      for (let a = rank - 1; a >= 0; a--) {
        o[a] = rest % out[a]!;
        rest = Math.floor(rest / out[a]!);
      }
      for (let t = 0; t < taps; t++) {
        let tap = t;
        let inside = true;
        for (let a = rank - 1; a >= 0; a--) {
          const k = tap % kernel[a]!;
          tap = Math.floor(tap / kernel[a]!);
          const i = o[a]! * strides[a]! + k * dilations[a]! - before[a]!;
          if (i < 0 || i >= spatial[a]!) inside = false;
          at[a] = i;
        }
        const dst = offset + t * C;
        if (!inside) {
          row.fill(0, dst, dst + C);
          continue;
        }
        let flat = 0;
        for (let a = 0; a < rank; a++) flat = flat * spatial[a]! + at[a]!;
        const src = n * perExample + flat * C;
        for (let ci = 0; ci < C; ci++) row[dst + ci] = data[src + ci]!;
      }
    },
  };
};

/** SeparableConv2D: the depthwise stage's output (the pointwise kernel holds the incoming weights). */
export const separableRows: InputRows = (x, layer) => {
  const c = config(layer);
  const depthwise = requireVariable(layer, 'depthwise_kernel').read() as tf.Tensor4D;
  const out = tf.depthwiseConv2d(x as tf.Tensor4D, depthwise, tuple(c['strides'] ?? 1, 2) as [number, number], String(c['padding'] ?? 'valid') as 'valid' | 'same', 'NHWC', tuple(c['dilationRate'] ?? 1, 2) as [number, number]);
  try {
    return positionRows(out.dataSync() as Float32Array, out.shape);
  } finally {
    out.dispose();
  }
};

/** Output length of a transposed convolution along one axis (tfjs-layers `deconvLength`, no output padding). */
function deconvLength(size: number, stride: number, kernel: number, padding: string): number {
  return padding === 'same' ? size * stride : size * stride + Math.max(kernel - stride, 0);
}

/** Conv2DTranspose: the transposed patches (see the module notes). */
export const transposeRows: InputRows = (x, layer) => {
  const c = config(layer);
  const [, H, W, C] = x.shape as [number, number, number, number];
  const kernel = tuple(c['kernelSize'], 2);
  const strides = tuple(c['strides'] ?? 1, 2);
  const padding = String(c['padding'] ?? 'valid');
  const out = [deconvLength(H, strides[0]!, kernel[0]!, padding), deconvLength(W, strides[1]!, kernel[1]!, padding)];
  // tfjs: the output is the input gradient of a conv (kernel, strides, padding) over an `out`-sized map.
  const { before } = convAxes(out, kernel, strides, [1, 1], padding);
  const data = x.dataSync() as Float32Array;
  const [kh, kw] = kernel as [number, number];
  return {
    positions: out[0]! * out[1]!,
    fanIn: kh * kw * C,
    fill(n, u, row, offset) {
      const pr = Math.floor(u / out[1]!);
      const pc = u % out[1]!;
      row.fill(0, offset, offset + kh * kw * C);
      for (let kr = 0; kr < kh; kr++) {
        const r = pr + before[0]! - kr;
        if (r < 0 || r % strides[0]! !== 0 || r / strides[0]! >= H) continue;
        for (let kc = 0; kc < kw; kc++) {
          const q = pc + before[1]! - kc;
          if (q < 0 || q % strides[1]! !== 0 || q / strides[1]! >= W) continue;
          const src = ((n * H + r / strides[0]!) * W + q / strides[1]!) * C;
          const dst = offset + (kr * kw + kc) * C;
          for (let ci = 0; ci < C; ci++) row[dst + ci] = data[src + ci]!;
        }
      }
    },
  };
};
