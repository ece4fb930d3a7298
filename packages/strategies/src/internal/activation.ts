/**
 * Activation functions by name, for strategies that evaluate the new units' activations on retained samples
 * (Firefly's objective, NORTH's and TINY's existing-unit activations).
 */
import { UnsupportedError } from '@gradmax/core';
import type { ActivationInfo, GrowthSite } from '@gradmax/core';

/** An element-wise activation with its derivative. */
export interface ActivationFunction {
  f(x: number): number;
  df(x: number): number;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const SELU_SCALE = 1.0507009873554805;
const SELU_ALPHA = 1.6732632423543772;
const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

const known: Record<string, (info: ActivationInfo, parameter?: number) => ActivationFunction> = {
  // ReLU family: the derivative at exactly 0 is the site's declared f'(0) (1 for relu1, 0 for plain relu).
  relu: (info) => ({ f: (x) => (x > 0 ? x : 0), df: (x) => (x > 0 ? 1 : x < 0 ? 0 : info.df0) }),
  relu1: (info) => ({ f: (x) => (x > 0 ? x : 0), df: (x) => (x > 0 ? 1 : x < 0 ? 0 : info.df0) }),
  relu6: (info) => ({ f: (x) => (x > 0 ? (x < 6 ? x : 6) : 0), df: (x) => (x > 0 && x < 6 ? 1 : x === 0 ? info.df0 : 0) }),
  leakyrelu: (_info, alpha = Number.NaN) => ({ f: (x) => (x > 0 ? x : alpha * x), df: (x) => (x > 0 ? 1 : alpha) }),
  identity: () => ({ f: (x) => x, df: () => 1 }),
  linear: () => ({ f: (x) => x, df: () => 1 }),
  tanh: () => ({ f: (x) => Math.tanh(x), df: (x) => 1 - Math.tanh(x) ** 2 }),
  sigmoid: () => ({ f: sigmoid, df: (x) => sigmoid(x) * (1 - sigmoid(x)) }),
  hardsigmoid: () => ({ f: (x) => Math.min(1, Math.max(0, 0.2 * x + 0.5)), df: (x) => (Math.abs(x) < 2.5 ? 0.2 : 0) }),
  softsign: () => ({ f: (x) => x / (1 + Math.abs(x)), df: (x) => 1 / (1 + Math.abs(x)) ** 2 }),
  softplus: () => ({ f: (x) => (x > 30 ? x : Math.log1p(Math.exp(x))), df: sigmoid }),
  elu: (_info, alpha = 1) => ({ f: (x) => (x > 0 ? x : alpha * Math.expm1(x)), df: (x) => (x > 0 ? 1 : alpha * Math.exp(x)) }),
  selu: () => ({ f: (x) => (x > 0 ? SELU_SCALE * x : SELU_SCALE * SELU_ALPHA * Math.expm1(x)), df: (x) => (x > 0 ? SELU_SCALE : SELU_SCALE * SELU_ALPHA * Math.exp(x)) }),
  swish: () => ({ f: (x) => x * sigmoid(x), df: (x) => sigmoid(x) + x * sigmoid(x) * (1 - sigmoid(x)) }),
  silu: () => ({ f: (x) => x * sigmoid(x), df: (x) => sigmoid(x) + x * sigmoid(x) * (1 - sigmoid(x)) }),
  gelu_new: () => ({ f: geluTanh, df: (x) => (geluTanh(x + 1e-6) - geluTanh(x - 1e-6)) / 2e-6 }),
};

/** Activations that need their parameter in the name, e.g. `leakyReLU(0.3)`. */
const needsParameter = new Set(['leakyrelu']);

/** Names of the activations strategies can evaluate. */
export const knownActivationNames: readonly string[] = Object.keys(known);

/**
 * The activation of `site` as a function. Composite names from adapters (`"relu∘relu6"`, `"Relu+Tanh"`, applied
 * left to right) are composed; names are case-insensitive. For a single ReLU-family name the derivative at exactly
 * 0 is the site's declared f'(0); inside a composite, `relu` has f'(0) = 0 and `relu1` has 1. Throws
 * {@link UnsupportedError} for unknown names, or when the declared f(0) does not match the named function (a
 * mislabelled site).
 */
export function siteActivation(strategy: string, site: GrowthSite): ActivationFunction {
  const info = site.activation;
  const parts = info.name
    .split(/[∘+]/)
    .map((p) => p.trim().toLowerCase())
    .filter((p) => p.length > 0);
  const parsed = parts.map((p) => {
    const m = /^([a-z_0-9]+)\(([-+0-9.e]+)\)$/.exec(p);
    return m ? { key: m[1]!, parameter: Number(m[2]) } : { key: p, parameter: undefined };
  });
  const unknown = parsed.filter((p) => !known[p.key] || (needsParameter.has(p.key) && !Number.isFinite(p.parameter)) || (p.parameter !== undefined && !Number.isFinite(p.parameter)));
  if (parts.length === 0 || unknown.length > 0) {
    throw new UnsupportedError(
      `${strategy} on site "${site.name}": cannot evaluate activation "${info.name}" (known: ${knownActivationNames.join(', ')}; leakyReLU needs its slope, e.g. "leakyReLU(0.3)")`,
      { site: site.name, activation: info.name, strategy },
    );
  }
  const fns = parsed.map((p) => known[p.key]!(parts.length === 1 ? info : { ...info, df0: p.key === 'relu' ? 0 : 1 }, p.parameter));
  const fn: ActivationFunction =
    fns.length === 1
      ? fns[0]!
      : {
          f: (x) => fns.reduce((v, g) => g.f(v), x),
          df: (x) => {
            let v = x;
            let d = 1;
            for (const g of fns) {
              d *= g.df(v);
              v = g.f(v);
            }
            return d;
          },
        };
  if (!(Math.abs(fn.f(0) - info.f0) <= 1e-12)) {
    throw new UnsupportedError(`${strategy} on site "${site.name}": activation "${info.name}" declares f(0) = ${info.f0} but the named function gives ${fn.f(0)}`, {
      site: site.name,
      activation: info.name,
      strategy,
    });
  }
  return fn;
}
