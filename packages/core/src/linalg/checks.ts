/**
 * Argument checks shared by the linear-algebra routines (internal).
 */
import { InvalidArgumentError, assertFinite } from '../errors.js';
import { Matrix } from '../matrix.js';

/** Throws unless `value` is a {@link Matrix} with finite entries. `what` names the argument in errors. */
export function checkMatrix(what: string, value: unknown): asserts value is Matrix {
  if (!(value instanceof Matrix)) {
    throw new InvalidArgumentError(`${what} must be a Matrix, got ${value === null ? 'null' : typeof value}`, { what });
  }
  assertFinite(what, value.data, { what, shape: value.shape });
}

/** Largest absolute entry of `values` (0 when empty). */
export function maxAbs(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) {
    const v = Math.abs(values[i]!);
    if (v > m) m = v;
  }
  return m;
}

/**
 * A power of two close to 1/`magnitude`, so that multiplying by it is exact and brings the largest entry
 * near 1 (guards squared norms against overflow and underflow at extreme scales). Returns 1 for 0.
 */
export function scaleToUnit(magnitude: number): number {
  if (!(magnitude > 0) || !Number.isFinite(magnitude)) return 1;
  // Clamped so that the factor itself stays a normal double (denormal inputs are scaled as far as possible).
  const e = Math.max(-1000, Math.min(1000, Math.floor(Math.log2(magnitude))));
  // 2^-e computed in two halves so that it never overflows to Infinity or underflows to 0.
  const h = Math.trunc(-e / 2);
  return Math.pow(2, h) * Math.pow(2, -e - h);
}

/** Euclidean norm of `x[offset .. offset + length)` with stride, safe against overflow and underflow. */
export function safeNorm(x: Float64Array, offset: number, length: number, stride = 1): number {
  let scale = 0;
  for (let i = 0, p = offset; i < length; i++, p += stride) {
    const v = Math.abs(x[p]!);
    if (v > scale) scale = v;
  }
  if (scale === 0) return 0;
  if (scale > 1e-140 && scale < 1e140) {
    let s = 0;
    for (let i = 0, p = offset; i < length; i++, p += stride) s += x[p]! * x[p]!;
    return Math.sqrt(s);
  }
  let s = 0;
  for (let i = 0, p = offset; i < length; i++, p += stride) {
    const v = x[p]! / scale; // division: 1/scale would overflow for subnormal scales
    s += v * v;
  }
  return scale * Math.sqrt(s);
}

/** √(a² + b²) without overflow or underflow (Math.hypot is slow in V8). */
export function hypot2(a: number, b: number): number {
  const x = Math.abs(a);
  const y = Math.abs(b);
  if (x > y) {
    const t = y / x;
    return x * Math.sqrt(1 + t * t);
  }
  if (y === 0) return 0;
  const t = x / y;
  return y * Math.sqrt(1 + t * t);
}
