/**
 * The variant-arm section: when a group holds variant arms (`gradmax:sign=largestNegative`, see `parseArm`), every
 * growing arm is compared with the variants' base strategy on the loss right after growth, the loss until the next
 * growth, the final training loss and the task's metric, with the same paired machinery as the comparison section.
 * This is the harness's answer to "does the sign of GradMax's directions matter?" (and any other option sweep).
 */
import type { ReportMetric, RunResult } from '../types.js';
import { BASELINE_ARMS, isVariantArm, parseArm } from '../strategies.js';
import { ALPHA, REPORT_BOOTSTRAP_SEED } from './compare.js';
import { table } from './markdown.js';
import { bootstrapStatisticCi, fmt, fmtP, mean, meanStd, pairedPermutationTest, windowMean, type Interval, type PairedTest } from './stats.js';

/** One measure of the variant section: a per-seed value of a run. */
export interface VariantMeasure {
  /** Column label. */
  label: string;
  /** Whether larger is better (for the words "better"/"worse"). */
  higherIsBetter: boolean;
  /** Show ×100 with `%`. */
  percent?: boolean;
  /** The run's value (NaN when it cannot be computed). */
  of: (r: RunResult) => number;
}

/** One arm-vs-base comparison on one measure. */
export interface VariantComparison {
  /** Arm compared. */
  arm: string;
  /** The base strategy arm. */
  against: string;
  /** Measure label. */
  measure: string;
  /** Paired sign-flip test on the common seeds. */
  test: PairedTest;
  /** Bootstrap interval of the mean paired difference (arm − base). */
  diffCi: Interval;
}

/** What {@link variantSection} computed. */
export interface VariantSectionResult {
  /** Markdown lines (empty when the group has no variant arm whose base ran). */
  markdown: string[];
  /** Every comparison against a base. */
  comparisons: VariantComparison[];
}

/**
 * Interval after growth `i` used by the post-growth measures: from the growth step to the next growth, or, after
 * the last one, as long as the interval before it (to the end of training when there is only one growth).
 */
export function growthIntervals(growthSteps: readonly number[], totalSteps: number): { from: number; to: number }[] {
  return growthSteps.map((g, i) => {
    const next = growthSteps[i + 1];
    if (next !== undefined) return { from: g, to: next };
    const prev = growthSteps[i - 1];
    return { from: g, to: prev !== undefined ? Math.min(totalSteps, g + (g - prev)) : totalSteps };
  });
}

/**
 * The measures of the section: mean training loss over the first half of each post-growth interval ("right after
 * growth") and over the whole interval, each averaged over the growths of a run; the final training loss; and the
 * task's metric when it is not the final training loss.
 */
export function variantMeasures(metric: ReportMetric, growthSteps: readonly number[], totalSteps: number): VariantMeasure[] {
  const intervals = growthIntervals(growthSteps, totalSteps);
  const overGrowths = (r: RunResult, half: boolean) => {
    const curve = r.curves?.trainLoss;
    if (!curve || !intervals.length) return NaN;
    // Windows without a logged point (sparse logging, short intervals) are left out rather than poisoning the mean.
    const windows = intervals.map((w) => windowMean(curve, w.from, half ? w.from + Math.max(1, (w.to - w.from) / 2) : w.to)).filter(Number.isFinite);
    return windows.length ? mean(windows) : NaN;
  };
  const out: VariantMeasure[] = [
    { label: 'loss right after growth', higherIsBetter: false, of: (r) => overGrowths(r, true) },
    { label: 'loss until next growth', higherIsBetter: false, of: (r) => overGrowths(r, false) },
    { label: 'final training loss', higherIsBetter: false, of: (r) => r.summary?.['finalTrainLoss'] ?? NaN },
  ];
  if (metric.key !== 'finalTrainLoss') out.push({ label: metric.label, higherIsBetter: metric.higherIsBetter, ...(metric.percent ? { percent: true } : {}), of: (r) => r.summary?.[metric.key] ?? NaN });
  return out;
}

function perSeed(rs: readonly RunResult[], m: VariantMeasure): Map<number, number> {
  const out = new Map<number, number>();
  for (const r of rs) {
    const v = m.of(r);
    if (Number.isFinite(v)) out.set(r.seed, v);
  }
  return out;
}

function signed(m: VariantMeasure, x: number, digits = 3): string {
  if (!Number.isFinite(x)) return '–';
  const v = m.percent ? x * 100 : x;
  return `${v > 0 ? '+' : v < 0 ? '−' : '±'}${fmt(Math.abs(v), digits)}${m.percent ? ' pp' : ''}`;
}

function cellValue(m: VariantMeasure, xs: number[]): string {
  return m.percent ? meanStd(xs.map((x) => x * 100)) + ' %' : meanStd(xs);
}

/**
 * Builds the variant section of one group. `arms` maps arm → successful results (analysis arms removed), in report
 * order; `growthSteps` are the growth steps of the group and `totalSteps` the training length.
 */
export function variantSection(metric: ReportMetric, arms: ReadonlyMap<string, readonly RunResult[]>, growthSteps: readonly number[], totalSteps: number): VariantSectionResult {
  const bases = [...new Set([...arms.keys()].filter(isVariantArm).map((a) => parseArm(a).strategy))].filter((b) => arms.has(b));
  if (!bases.length || !growthSteps.length) return { markdown: [], comparisons: [] };
  const measures = variantMeasures(metric, growthSteps, totalSteps);
  const growing = [...arms.entries()].filter(([arm, rs]) => !(BASELINE_ARMS as readonly string[]).includes(arm) && rs.every((r) => r.curves?.trainLoss));
  const md: string[] = [];
  const comparisons: VariantComparison[] = [];
  for (const base of bases) {
    const ref = arms.get(base)!;
    const variants = [...arms.keys()].filter((a) => isVariantArm(a) && parseArm(a).strategy === base);
    md.push(`### Variants of \`${base}\`: ${variants.map((v) => `\`${v}\``).join(', ')}`);
    md.push('');
    md.push(
      `Every growing arm against \`${base}\` on the same seeds. *Loss right after growth*: mean training loss over the first half of each interval between growths ` +
        '(after the last growth: an interval as long as the one before), averaged over the growths of a run whose window holds a logged point; *until next growth*: over the whole interval. ' +
        `Cells: mean ± std over seeds, then the mean paired difference against \`${base}\` and the two-sided p of the paired sign-flip permutation test (uncorrected).`,
    );
    md.push('');
    const rows: string[][] = [];
    for (const [arm, rs] of growing) {
      const row = [arm, String(rs.length)];
      for (const m of measures) {
        const mine = perSeed(rs, m);
        const cell = cellValue(m, [...mine.values()]);
        if (arm === base) {
          row.push(cell);
          continue;
        }
        const theirs = perSeed(ref, m);
        const seeds = [...mine.keys()].filter((s) => theirs.has(s)).sort((a, b) => a - b);
        if (!seeds.length) {
          row.push(cell);
          continue;
        }
        const a = seeds.map((s) => mine.get(s)!);
        const b = seeds.map((s) => theirs.get(s)!);
        const test = pairedPermutationTest(a, b);
        const d = a.map((x, i) => x - b[i]!);
        const diffCi = bootstrapStatisticCi(d.length, (idx) => mean(idx.map((i) => d[i]!)), { seed: REPORT_BOOTSTRAP_SEED });
        comparisons.push({ arm, against: base, measure: m.label, test, diffCi });
        row.push(`${cell} (Δ ${signed(m, test.meanDiff)}, p ${fmtP(test.p)})`);
      }
      rows.push(row);
    }
    md.push(table(['arm', 'seeds', ...measures.map((m) => m.label)], rows));
    md.push('');
    for (const v of [...variants, ...growing.map(([a]) => a).filter((a) => a !== base && !variants.includes(a))]) {
      const mine = comparisons.filter((c) => c.arm === v && c.against === base);
      if (!mine.length) continue;
      const sig = mine.filter((c) => c.test.p < ALPHA);
      const n = Math.max(...mine.map((c) => c.test.n));
      const minP = Math.min(...mine.map((c) => c.test.minP));
      const parts = mine.map((c) => {
        const m = measures.find((x) => x.label === c.measure)!;
        return `${c.measure} ${signed(m, c.test.meanDiff)} [${signed(m, c.diffCi.lo)}, ${signed(m, c.diffCi.hi)}] (p ${fmtP(c.test.p)})`;
      });
      const verdict = sig.length
        ? `differs significantly at ${ALPHA} on ${sig.map((c) => c.measure).join(', ')}`
        : minP >= ALPHA
          ? `no difference can be significant with ${n} paired seeds (smallest reachable p ${fmtP(minP)})`
          : `no significant difference at ${ALPHA} on any measure`;
      md.push(`- **${v} vs ${base}** (${n} paired seeds): ${verdict}. Differences (arm − ${base}, 95 % bootstrap CI): ${parts.join('; ')}.`);
    }
    md.push('');
  }
  return { markdown: md, comparisons };
}
