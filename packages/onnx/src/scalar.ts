/**
 * Forward-mode dual numbers used to evaluate what the in-between ops of a site do to a new unit: f(0) and f'(0) of
 * the composite activation seen by a new channel. At kinks the right derivative is used (so ReLU has f'(0) = 1, the
 * `relu1` convention GradMax relies on).
 * @packageDocumentation
 */

/** A value and its derivative with respect to the new unit's pre-activation. */
export interface Dual {
  v: number;
  d: number;
}

/** A constant. */
export const constant = (v: number): Dual => ({ v, d: 0 });

/** Sum of duals. */
export const add = (a: Dual, b: Dual): Dual => ({ v: a.v + b.v, d: a.d + b.d });
/** Difference of duals. */
export const sub = (a: Dual, b: Dual): Dual => ({ v: a.v - b.v, d: a.d - b.d });
/** Product of duals. */
export const mul = (a: Dual, b: Dual): Dual => ({ v: a.v * b.v, d: a.d * b.v + a.v * b.d });
/** Quotient of duals. */
export const div = (a: Dual, b: Dual): Dual => ({ v: a.v / b.v, d: (a.d * b.v - a.v * b.d) / (b.v * b.v) });

/** Applies a smooth scalar function with known derivative. */
export const apply = (a: Dual, f: (x: number) => number, df: (x: number) => number): Dual => ({ v: f(a.v), d: df(a.v) * a.d });

/** max(lo, min(hi, x)), derivative 1 on the closed interval. */
export function clip(a: Dual, lo: number, hi: number): Dual {
  if (a.v < lo) return { v: lo, d: 0 };
  if (a.v > hi) return { v: hi, d: 0 };
  return a;
}

/** Piecewise-linear leaky ReLU (slope 1 for x ≥ 0). */
export function leaky(a: Dual, slope: number): Dual {
  return a.v >= 0 ? a : { v: slope * a.v, d: slope * a.d };
}

/** erf with erf(0) = 0 exactly (Abramowitz–Stegun 7.1.26 elsewhere, |error| < 1.5e-7). */
export function erf(x: number): number {
  if (x === 0) return 0;
  const s = Math.sign(x);
  const ax = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * ax);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-ax * ax);
  return s * y;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const softplus = (x: number) => (x > 30 ? x : Math.log1p(Math.exp(x)));

/** Elementwise unary ops this package can evaluate, keyed by ONNX op type; `attr` reads float attributes. */
export function unaryOp(op: string, a: Dual, attr: (name: string, fallback: number) => number): Dual | undefined {
  switch (op) {
    case 'Relu':
      return leaky(a, 0);
    case 'LeakyRelu':
      return leaky(a, attr('alpha', 0.01));
    case 'Identity':
    case 'Dropout':
    case 'Cast':
      return a;
    case 'Neg':
      return { v: -a.v, d: -a.d };
    case 'Abs':
      return a.v >= 0 ? a : { v: -a.v, d: -a.d };
    case 'Sigmoid':
      return apply(a, sigmoid, (x) => sigmoid(x) * (1 - sigmoid(x)));
    case 'Tanh':
      return apply(a, Math.tanh, (x) => 1 - Math.tanh(x) ** 2);
    case 'Exp':
      return apply(a, Math.exp, Math.exp);
    case 'Log':
      return apply(a, Math.log, (x) => 1 / x);
    case 'Sqrt':
      return apply(a, Math.sqrt, (x) => 0.5 / Math.sqrt(x));
    case 'Reciprocal':
      return apply(a, (x) => 1 / x, (x) => -1 / (x * x));
    case 'Erf':
      return apply(a, erf, (x) => (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x));
    case 'Softplus':
      return apply(a, softplus, sigmoid);
    case 'Softsign':
      return apply(a, (x) => x / (1 + Math.abs(x)), (x) => 1 / (1 + Math.abs(x)) ** 2);
    case 'Elu': {
      const al = attr('alpha', 1);
      return a.v >= 0 ? a : apply(a, (x) => al * (Math.exp(x) - 1), (x) => al * Math.exp(x));
    }
    case 'Celu': {
      const al = attr('alpha', 1);
      return a.v >= 0 ? a : apply(a, (x) => al * (Math.exp(x / al) - 1), (x) => Math.exp(x / al));
    }
    case 'Selu': {
      const al = attr('alpha', 1.67326319217681884765625);
      const g = attr('gamma', 1.05070102214813232421875);
      return a.v >= 0 ? { v: g * a.v, d: g * a.d } : apply(a, (x) => g * al * (Math.exp(x) - 1), (x) => g * al * Math.exp(x));
    }
    case 'ThresholdedRelu': {
      const al = attr('alpha', 1);
      return a.v > al ? a : { v: 0, d: 0 };
    }
    case 'HardSigmoid': {
      const al = attr('alpha', 0.2);
      const be = attr('beta', 0.5);
      return clip({ v: al * a.v + be, d: al * a.d }, 0, 1);
    }
    case 'HardSwish':
      return mul(a, clip({ v: a.v / 6 + 0.5, d: a.d / 6 }, 0, 1));
    case 'Mish':
      return mul(a, apply(apply(a, softplus, sigmoid), Math.tanh, (x) => 1 - Math.tanh(x) ** 2));
    case 'Gelu':
      return mul(a, apply(a, (x) => 0.5 * (1 + erf(x / Math.SQRT2)), (x) => Math.exp((-x * x) / 2) / Math.sqrt(2 * Math.PI)));
    default:
      return undefined;
  }
}
