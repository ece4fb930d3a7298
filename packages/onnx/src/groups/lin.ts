/**
 * What a new channel carries, linearised at the point where every producer's new unit outputs 0: its value `v` there
 * and its derivative `d[p]` with respect to main producer p's new output. Ops between the layers map these forward
 * (right derivatives at kinks, so ReLU has f'(0) = 1, the `relu1` convention GradMax relies on).
 * @packageDocumentation
 */
import * as S from '../scalar.js';

/** Value and per-producer derivatives of a new channel. */
export interface Lin {
  v: number;
  d: number[];
}

/** A producer's own output: value 0, derivative 1 along its own direction (`index` of `n`, or none for gates). */
export function seed(n: number, index: number): Lin {
  const d = new Array<number>(n).fill(0);
  if (index >= 0) d[index] = 1;
  return { v: 0, d };
}

/** A constant channel (no dependence on the new units). */
export function constantLin(v: number, n: number): Lin {
  return { v, d: new Array<number>(n).fill(0) };
}

/** `f(lin)` for an ONNX unary op known to {@link S.unaryOp}; undefined when the op is unknown. */
export function unaryLin(op: string, a: Lin, attr: (name: string, fallback: number) => number): Lin | undefined {
  const r = S.unaryOp(op, { v: a.v, d: 1 }, attr);
  return r ? { v: r.v, d: a.d.map((x) => x * r.d) } : undefined;
}

/** Applies a scalar function with derivative `df` at `a.v`. */
export function mapLin(a: Lin, f: (x: number) => number, df: (x: number) => number): Lin {
  const s = df(a.v);
  return { v: f(a.v), d: a.d.map((x) => x * s) };
}

/** a + b. */
export const addLin = (a: Lin, b: Lin): Lin => ({ v: a.v + b.v, d: a.d.map((x, i) => x + b.d[i]!) });
/** a − b. */
export const subLin = (a: Lin, b: Lin): Lin => ({ v: a.v - b.v, d: a.d.map((x, i) => x - b.d[i]!) });
/** a · b. */
export const mulLin = (a: Lin, b: Lin): Lin => ({ v: a.v * b.v, d: a.d.map((x, i) => x * b.v + a.v * b.d[i]!) });
/** a / b. */
export const divLin = (a: Lin, b: Lin): Lin => ({ v: a.v / b.v, d: a.d.map((x, i) => (x * b.v - a.v * b.d[i]!) / (b.v * b.v)) });
/** max(a, b) (ties: a). */
export const maxLin = (a: Lin, b: Lin): Lin => (a.v >= b.v ? a : b);
/** min(a, b) (ties: a). */
export const minLin = (a: Lin, b: Lin): Lin => (a.v <= b.v ? a : b);
/** A channel whose value is not one number (e.g. padded borders with a non-zero constant). */
export const unknownLin = (n: number): Lin => ({ v: NaN, d: new Array<number>(n).fill(NaN) });
/** Same value, derivatives unknown (statistics through this op are not a scalar multiple). */
export const inexactLin = (a: Lin): Lin => ({ v: a.v, d: a.d.map(() => NaN) });
