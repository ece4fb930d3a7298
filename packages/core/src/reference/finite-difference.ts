/**
 * Central finite differences, to check analytic gradients.
 */
import { InvalidArgumentError } from '../errors.js';

/** Options of {@link finiteDifferenceGradient}. */
export interface FiniteDifferenceOptions {
  /** Step h of the central difference (default 1e-6). */
  step?: number;
  /** Only these flat indices (default: all). Other entries of the result are NaN. */
  indices?: readonly number[];
}

/**
 * Central-difference gradient of `loss()` with respect to the entries of `values`, which `loss` must read
 * (e.g. a network's live parameter array from `parameters()`). Each entry is perturbed in place by ±step and
 * restored exactly afterwards.
 */
export function finiteDifferenceGradient(loss: () => number, values: Float64Array, options: FiniteDifferenceOptions = {}): Float64Array {
  const step = options.step ?? 1e-6;
  if (!(step > 0) || !Number.isFinite(step)) throw new InvalidArgumentError(`finite differences: step must be positive, got ${step}`, { step });
  const out = new Float64Array(values.length);
  const indices = options.indices ?? Array.from({ length: values.length }, (_, i) => i);
  if (options.indices) out.fill(Number.NaN);
  for (const i of indices) {
    if (!Number.isInteger(i) || i < 0 || i >= values.length) throw new InvalidArgumentError(`finite differences: index ${i} out of range [0, ${values.length})`, { index: i });
    const v = values[i]!;
    values[i] = v + step;
    const up = loss();
    values[i] = v - step;
    const down = loss();
    values[i] = v;
    out[i] = (up - down) / (2 * step);
  }
  return out;
}

/** ‖a − b‖₂ / max(‖a‖₂, ‖b‖₂, tiny): a scale-free distance between two arrays of equal length. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new InvalidArgumentError(`relativeError: lengths differ (${a.length} vs ${b.length})`);
  let d = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += (a[i]! - b[i]!) ** 2;
    na += a[i]! ** 2;
    nb += b[i]! ** 2;
  }
  return Math.sqrt(d) / Math.max(Math.sqrt(na), Math.sqrt(nb), 1e-300);
}

/** Largest absolute entry-wise difference between two arrays of equal length. */
export function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new InvalidArgumentError(`maxAbsDifference: lengths differ (${a.length} vs ${b.length})`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
