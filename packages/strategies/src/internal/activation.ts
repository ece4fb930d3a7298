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

const known: Record<string, (info: ActivationInfo) => ActivationFunction> = {
  // ReLU family: the derivative at exactly 0 is the site's declared f'(0) (1 for relu1, 0 for plain relu).
  relu: (info) => ({ f: (x) => (x > 0 ? x : 0), df: (x) => (x > 0 ? 1 : x < 0 ? 0 : info.df0) }),
  relu1: (info) => ({ f: (x) => (x > 0 ? x : 0), df: (x) => (x > 0 ? 1 : x < 0 ? 0 : info.df0) }),
  relu6: (info) => ({ f: (x) => (x > 0 ? (x < 6 ? x : 6) : 0), df: (x) => (x > 0 && x < 6 ? 1 : x === 0 ? info.df0 : 0) }),
  identity: () => ({ f: (x) => x, df: () => 1 }),
  linear: () => ({ f: (x) => x, df: () => 1 }),
  tanh: () => ({ f: (x) => Math.tanh(x), df: (x) => 1 - Math.tanh(x) ** 2 }),
  sigmoid: () => ({ f: (x) => 1 / (1 + Math.exp(-x)), df: (x) => { const s = 1 / (1 + Math.exp(-x)); return s * (1 - s); } }),
  elu: () => ({ f: (x) => (x > 0 ? x : Math.expm1(x)), df: (x) => (x > 0 ? 1 : Math.exp(x)) }),
  softplus: () => ({ f: (x) => (x > 30 ? x : Math.log1p(Math.exp(x))), df: (x) => 1 / (1 + Math.exp(-x)) }),
};

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
  const unknown = parts.filter((p) => !known[p]);
  if (parts.length === 0 || unknown.length > 0) {
    throw new UnsupportedError(
      `${strategy} on site "${site.name}": cannot evaluate activation "${info.name}" (known: ${knownActivationNames.join(', ')})`,
      { site: site.name, activation: info.name, strategy },
    );
  }
  const fns = parts.map((p) => known[p]!(parts.length === 1 ? info : { ...info, df0: p === 'relu' ? 0 : 1 }));
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
