/**
 * Small statistics helpers for reports.
 */

/** Arithmetic mean (NaN for an empty list). */
export function mean(xs: readonly number[]): number {
  if (!xs.length) return NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Sample standard deviation (n − 1 denominator); 0 for a single value, NaN for none. */
export function std(xs: readonly number[]): number {
  if (!xs.length) return NaN;
  if (xs.length === 1) return 0;
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) * (x - m);
  return Math.sqrt(s / (xs.length - 1));
}

/** Formats a number with `digits` significant digits (fixed notation for moderate magnitudes). */
export function fmt(x: number, digits = 4): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? '–' : String(x);
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e-3 && a < 1e5) return Number(x.toPrecision(digits)).toString();
  return x.toExponential(digits - 1);
}

/** `mean ± std` of the values (just the value when there is one). */
export function meanStd(xs: readonly number[], digits = 4): string {
  if (!xs.length) return '–';
  if (xs.length === 1) return fmt(xs[0]!, digits);
  return `${fmt(mean(xs), digits)} ± ${fmt(std(xs), digits === 4 ? 2 : digits)}`;
}

/**
 * Point-wise mean and standard deviation of several curves sampled at the same steps. Curves of different
 * lengths are truncated to the shortest common prefix of steps.
 */
export function aggregateCurves(curves: readonly { step: number[]; value: number[] }[]): { step: number[]; mean: number[]; std: number[] } {
  if (!curves.length) return { step: [], mean: [], std: [] };
  const first = curves[0]!;
  let n = first.step.length;
  for (const c of curves) {
    let k = 0;
    while (k < Math.min(n, c.step.length) && c.step[k] === first.step[k]) k++;
    n = k;
  }
  const step = first.step.slice(0, n);
  const m: number[] = [];
  const s: number[] = [];
  for (let i = 0; i < n; i++) {
    const col = curves.map((c) => c.value[i]!);
    m.push(mean(col));
    s.push(std(col));
  }
  return { step, mean: m, std: s };
}

/** Mean of a curve's values over steps in [from, to). NaN when no point falls inside. */
export function windowMean(curve: { step: number[]; value: number[] }, from: number, to: number): number {
  let s = 0;
  let n = 0;
  for (let i = 0; i < curve.step.length; i++) {
    const t = curve.step[i]!;
    if (t >= from && t < to) {
      s += curve.value[i]!;
      n++;
    }
  }
  return n ? s / n : NaN;
}
