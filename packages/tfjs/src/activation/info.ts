/**
 * Scalar behaviour of element-wise activations at the point a new unit sits at (pre-activation 0): the value
 * f(v), the derivative f'(v) as tfjs's own gradients compute it (which matters at the kink of ReLU), and f(0), f'(0)
 * declared explicitly. This is the one table gradmax reads for activations; a test checks every entry against tfjs
 * autodiff of the op tfjs-layers runs (and fails when an entry has no such case).
 *
 * What f(0) and f'(0) decide:
 * - f(0) ≠ 0 (sigmoid, softplus, hardSigmoid): a new unit with zero incoming weights outputs f(0), so
 *   incoming-zero strategies (gradmax, random) would change the function; growth refuses them there.
 * - f'(0) = 0 (relu, relu6, ReLU with maxValue, ThresholdedReLU with θ ≥ 0): new units get no gradient and GradMax
 *   stops with an error naming the relu1-style fix (`relu1`, `relu1Layer({ maxValue })`).
 */

/** An element-wise activation as gradmax sees it. */
export interface ScalarActivation {
  /** Activation identifier, e.g. `"relu1"` or `"leakyReLU(0.3)"`. */
  name: string;
  /** f(v). */
  f: (v: number) => number;
  /** f'(v) as tfjs's gradient computes it. */
  df: (v: number) => number;
  /** f(0), declared. */
  f0: number;
  /** f'(0) as tfjs's gradient computes it, declared. */
  df0: number;
}

/** One table entry: functions of v and of the activation's parameters (alpha, maxValue, theta). */
interface Rule {
  f: (v: number, p: number) => number;
  df: (v: number, p: number) => number;
  f0: (p: number) => number;
  df0: (p: number) => number;
  /** Default parameter (unused by parameter-free entries). */
  p?: number;
}

const SELU_SCALE = 1.0507009873554805;
const SELU_ALPHA = 1.6732632423543772;
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
const softplus = (v: number) => (v > 30 ? v : Math.log1p(Math.exp(v)));
const geluTanh = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
const erf = (x: number) => {
  // Abramowitz–Stegun 7.1.26 (|error| < 1.5e-7), exact 0 at 0.
  if (x === 0) return 0;
  const s = Math.sign(x);
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-a * a);
  return s * y;
};
const gelu = (v: number) => 0.5 * v * (1 + erf(v / Math.SQRT2));
const numeric = (f: (v: number) => number) => (v: number) => (f(v + 1e-5) - f(v - 1e-5)) / 2e-5;

/**
 * The activation table. Parameterised entries (`leakyReLU`, `reluMax`, `thresholdedReLU`, `elu`, `prelu`) take the
 * layer's parameter p (alpha, maxValue or theta).
 */
const RULES: Record<string, Rule> = {
  linear: { f: (v) => v, df: () => 1, f0: () => 0, df0: () => 1 },
  relu: { f: (v) => Math.max(v, 0), df: (v) => (v > 0 ? 1 : 0), f0: () => 0, df0: () => 0 },
  relu1: { f: (v) => Math.max(v, 0), df: (v) => (v >= 0 ? 1 : 0), f0: () => 0, df0: () => 1 },
  relu6: { f: (v) => Math.min(Math.max(v, 0), 6), df: (v) => (v > 0 && v <= 6 ? 1 : 0), f0: () => 0, df0: () => 0 },
  /** ReLU layer with maxValue p: relu, then clip to [0, p]. */
  reluMax: { f: (v, p) => Math.min(Math.max(v, 0), p), df: (v, p) => (v > 0 && v <= p ? 1 : 0), f0: () => 0, df0: () => 0, p: 6 },
  /** relu1 layer with maxValue p: derivative 1 on [0, p]. */
  relu1Max: { f: (v, p) => Math.min(Math.max(v, 0), p), df: (v, p) => (v >= 0 && v <= p ? 1 : 0), f0: () => 0, df0: () => 1, p: 6 },
  /** ThresholdedReLU: v·[v > θ]. */
  thresholdedReLU: { f: (v, p) => (v > p ? v : 0), df: (v, p) => (v > p ? 1 : 0), f0: () => 0, df0: (p) => (0 > p ? 1 : 0), p: 1 },
  /** LeakyReLU with slope p below 0 (tfjs's gradient takes the slope at 0). */
  leakyReLU: { f: (v, p) => (v > 0 ? v : p * v), df: (v, p) => (v > 0 ? 1 : p), f0: () => 0, df0: (p) => p, p: 0.3 },
  /** PReLU at a channel whose slope is p. */
  prelu: { f: (v, p) => (v > 0 ? v : p * v), df: (v, p) => (v > 0 ? 1 : p), f0: () => 0, df0: (p) => p, p: 0 },
  elu: { f: (v, p) => (v > 0 ? v : p * Math.expm1(v)), df: (v, p) => (v > 0 ? 1 : p * Math.exp(v)), f0: () => 0, df0: (p) => p, p: 1 },
  selu: {
    f: (v) => (v > 0 ? SELU_SCALE * v : SELU_SCALE * SELU_ALPHA * Math.expm1(v)),
    df: (v) => (v > 0 ? SELU_SCALE : SELU_SCALE * SELU_ALPHA * Math.exp(v)),
    f0: () => 0,
    df0: () => SELU_SCALE * SELU_ALPHA,
  },
  tanh: { f: Math.tanh, df: (v) => 1 - Math.tanh(v) ** 2, f0: () => 0, df0: () => 1 },
  sigmoid: { f: sigmoid, df: (v) => sigmoid(v) * (1 - sigmoid(v)), f0: () => 0.5, df0: () => 0.25 },
  hardSigmoid: { f: (v) => Math.min(1, Math.max(0, 0.2 * v + 0.5)), df: (v) => (v >= -2.5 && v <= 2.5 ? 0.2 : 0), f0: () => 0.5, df0: () => 0.2 },
  softsign: { f: (v) => v / (1 + Math.abs(v)), df: (v) => 1 / (1 + Math.abs(v)) ** 2, f0: () => 0, df0: () => 1 },
  softplus: { f: softplus, df: sigmoid, f0: () => Math.LN2, df0: () => 0.5 },
  swish: { f: (v) => v * sigmoid(v), df: (v) => sigmoid(v) + v * sigmoid(v) * (1 - sigmoid(v)), f0: () => 0, df0: () => 0.5 },
  mish: { f: (v) => v * Math.tanh(softplus(v)), df: numeric((v) => v * Math.tanh(softplus(v))), f0: () => 0, df0: () => Math.tanh(Math.LN2) },
  gelu: { f: gelu, df: numeric(gelu), f0: () => 0, df0: () => 0.5 },
  gelu_new: { f: geluTanh, df: numeric(geluTanh), f0: () => 0, df0: () => 0.5 },
};

function fromRule(name: string, rule: Rule, p: number): ScalarActivation {
  return { name, f: (v) => rule.f(v, p), df: (v) => rule.df(v, p), f0: rule.f0(p), df0: rule.df0(p) };
}

/**
 * Looks up an element-wise activation by its tfjs identifier (`"relu"`, `"relu1"`, `"tanh"`, `"swish"`, ...), or a
 * parameterised one (`"leakyReLU"`, `"reluMax"`, `"relu1Max"`, `"thresholdedReLU"`, `"elu"`, `"prelu"`) with its
 * parameter. Returns undefined for activations that are not element-wise (softmax) or not known here.
 */
export function scalarActivation(name: string, parameter?: number): ScalarActivation | undefined {
  if (!Object.prototype.hasOwnProperty.call(RULES, name)) return undefined;
  const rule = RULES[name]!;
  const p = parameter ?? rule.p ?? 0;
  const label = parameter === undefined || rule.p === undefined ? name : `${name}(${p})`;
  return fromRule(label, rule, p);
}

/** Names accepted by {@link scalarActivation}. */
export function knownActivations(): string[] {
  return Object.keys(RULES);
}
