/**
 * Scalar behaviour of element-wise activations at the point a new unit sits at (pre-activation 0): the value
 * f(v) and the derivative f'(v) as computed by tfjs's own gradients (which matters at the kink of ReLU).
 */
export interface ScalarActivation {
  /** Activation identifier, e.g. `"relu1"`. */
  name: string;
  /** f(v). */
  f: (v: number) => number;
  /** f'(v) as tfjs's gradient computes it. */
  df: (v: number) => number;
}

const SELU_SCALE = 1.0507009873554805;
const SELU_ALPHA = 1.6732632423543772;
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
const geluTanh = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));

const table: Record<string, Omit<ScalarActivation, 'name'>> = {
  linear: { f: (v) => v, df: () => 1 },
  relu: { f: (v) => Math.max(v, 0), df: (v) => (v > 0 ? 1 : 0) },
  relu1: { f: (v) => Math.max(v, 0), df: (v) => (v >= 0 ? 1 : 0) },
  relu6: { f: (v) => Math.min(Math.max(v, 0), 6), df: (v) => (v > 0 && v < 6 ? 1 : 0) },
  tanh: { f: Math.tanh, df: (v) => 1 - Math.tanh(v) ** 2 },
  sigmoid: { f: sigmoid, df: (v) => sigmoid(v) * (1 - sigmoid(v)) },
  hardSigmoid: { f: (v) => Math.min(1, Math.max(0, 0.2 * v + 0.5)), df: (v) => (Math.abs(v) < 2.5 ? 0.2 : 0) },
  softsign: { f: (v) => v / (1 + Math.abs(v)), df: (v) => 1 / (1 + Math.abs(v)) ** 2 },
  softplus: { f: (v) => Math.log1p(Math.exp(v)), df: sigmoid },
  elu: { f: (v) => (v > 0 ? v : Math.expm1(v)), df: (v) => (v > 0 ? 1 : Math.exp(v)) },
  selu: {
    f: (v) => (v > 0 ? SELU_SCALE * v : SELU_SCALE * SELU_ALPHA * Math.expm1(v)),
    df: (v) => (v > 0 ? SELU_SCALE : SELU_SCALE * SELU_ALPHA * Math.exp(v)),
  },
  swish: { f: (v) => v * sigmoid(v), df: (v) => sigmoid(v) + v * sigmoid(v) * (1 - sigmoid(v)) },
  gelu_new: { f: geluTanh, df: (v) => (geluTanh(v + 1e-6) - geluTanh(v - 1e-6)) / 2e-6 },
};

/**
 * Looks up an element-wise activation by its tfjs identifier (`"relu"`, `"relu1"`, `"tanh"`, ...).
 * Returns undefined for activations that are not element-wise (softmax) or not known here.
 */
export function scalarActivation(name: string): ScalarActivation | undefined {
  const entry = table[name];
  return entry ? { name, ...entry } : undefined;
}

/** Names accepted by {@link scalarActivation}. */
export function knownActivations(): string[] {
  return Object.keys(table);
}
