/**
 * A minimal 4-D float64 tensor for the naive reference implementations.
 */
import { InvalidArgumentError, ShapeMismatchError } from '../errors.js';
import type { Rng } from '../rng.js';

/**
 * A row-major 4-D float64 tensor. Activations are NHWC `[B, H, W, C]`; conv kernels are HWIO `[kh, kw, Cin, Cout]`.
 * Entry `[i, j, k, l]` is `data[((i·d1 + j)·d2 + k)·d3 + l]`.
 */
export interface Tensor4 {
  /** The four dimensions. */
  shape: [number, number, number, number];
  /** Row-major entries (length = product of the dimensions). */
  data: Float64Array;
}

/** Anything shaped like a {@link Tensor4} (e.g. float32 data copied from a framework). */
export interface Tensor4Like {
  /** The four dimensions. */
  shape: readonly [number, number, number, number] | readonly number[];
  /** Row-major entries. */
  data: ArrayLike<number>;
}

/** A zero tensor of the given shape. */
export function zeros4(shape: readonly [number, number, number, number] | readonly number[]): Tensor4 {
  const s = checkShape4(shape, 'tensor');
  return { shape: s, data: new Float64Array(s[0] * s[1] * s[2] * s[3]) };
}

/** Wraps (copies) data into a {@link Tensor4}, checking the length. */
export function tensor4(shape: readonly [number, number, number, number] | readonly number[], data: ArrayLike<number>, what = 'tensor'): Tensor4 {
  const s = checkShape4(shape, what);
  const n = s[0] * s[1] * s[2] * s[3];
  if (data.length !== n) throw new ShapeMismatchError(`${what} data length`, [n], [data.length], { shape: s });
  return { shape: s, data: Float64Array.from(data) };
}

/** A tensor with standard normal entries drawn from `rng`, multiplied by `scale`. */
export function randomTensor4(shape: readonly [number, number, number, number], rng: Rng, scale = 1): Tensor4 {
  const t = zeros4(shape);
  for (let i = 0; i < t.data.length; i++) t.data[i] = scale * rng.normal();
  return t;
}

/** Validates a 4-D shape. */
export function checkShape4(shape: readonly number[], what: string): [number, number, number, number] {
  if (!Array.isArray(shape) || shape.length !== 4 || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new InvalidArgumentError(`${what}: shape must be four non-negative integers, got ${JSON.stringify(shape)}`, { what, shape });
  }
  return [shape[0]!, shape[1]!, shape[2]!, shape[3]!];
}

/** Validates a {@link Tensor4Like} and returns its shape. */
export function checkTensor4(t: Tensor4Like, what: string): [number, number, number, number] {
  if (!t || typeof t !== 'object' || !t.data) throw new InvalidArgumentError(`${what} must be a {shape, data} tensor`, { what });
  const s = checkShape4(t.shape as number[], what);
  const n = s[0] * s[1] * s[2] * s[3];
  if (t.data.length !== n) throw new ShapeMismatchError(`${what} data length`, [n], [t.data.length], { shape: s });
  return s;
}
