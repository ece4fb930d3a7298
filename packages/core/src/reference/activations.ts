/**
 * Element-wise activations of the reference networks, with their exact derivatives.
 */
import { UnknownNameError } from '../errors.js';
import type { ActivationInfo } from '../site.js';

/** Names of the activations the reference networks support. */
export type ReferenceActivationName = 'relu1' | 'relu' | 'tanh' | 'identity';

/** An activation with its derivative and the {@link ActivationInfo} a growth site reports. */
export interface ReferenceActivation {
  /** Its name. */
  readonly name: ReferenceActivationName;
  /** f(z). */
  f(z: number): number;
  /** f'(z); at ReLU's kink this is 1 for `relu1` and 0 for `relu`. */
  df(z: number): number;
  /** `{name, f0, df0}`. */
  readonly info: ActivationInfo;
}

const table: Record<ReferenceActivationName, { f(z: number): number; df(z: number): number }> = {
  // ReLU whose derivative at exactly 0 is 1 (what GradMax needs on grown layers).
  relu1: { f: (z) => (z > 0 ? z : 0), df: (z) => (z >= 0 ? 1 : 0) },
  // Plain ReLU: derivative 0 at 0.
  relu: { f: (z) => (z > 0 ? z : 0), df: (z) => (z > 0 ? 1 : 0) },
  tanh: { f: (z) => Math.tanh(z), df: (z) => { const t = Math.tanh(z); return 1 - t * t; } },
  identity: { f: (z) => z, df: () => 1 },
};

/** Names accepted by {@link referenceActivation}. */
export const referenceActivationNames: readonly ReferenceActivationName[] = ['relu1', 'relu', 'tanh', 'identity'];

/**
 * Looks up a reference activation: `relu1` (ReLU with f'(0) = 1), `relu` (f'(0) = 0), `tanh`, `identity`.
 * Throws {@link UnknownNameError} for other names.
 */
export function referenceActivation(name: ReferenceActivationName): ReferenceActivation {
  const entry = table[name];
  if (!entry || !Object.prototype.hasOwnProperty.call(table, name)) throw new UnknownNameError('reference activation', String(name), referenceActivationNames);
  return { name, f: entry.f, df: entry.df, info: { name, f0: entry.f(0), df0: entry.df(0) } };
}
