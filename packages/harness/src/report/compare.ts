/**
 * The comparison section every task gets: per arm, the task's metric with mean, standard deviation and a seeded
 * 95 % bootstrap interval over seeds; paired sign-flip permutation tests against Random and against the `small`
 * baseline on the seeds both arms ran; the discrimination check (`big` vs `small`); and the share of the
 * small→big gap each arm recovers, with a paired bootstrap interval. Every sentence is generated from the numbers.
 */
import type { ReportMetric, RunResult } from '../types.js';
import { table } from './markdown.js';
import { bootstrapCi, bootstrapStatisticCi, fmt, fmtInterval, fmtP, mean, pairedPermutationTest, std, type Interval, type PairedTest } from './stats.js';

/** Significance level of the paired tests. */
export const ALPHA = 0.05;

/** The growing arm every strategy is tested against (the paper's baseline for growth). */
export const PAIRED_REFERENCE = 'random';

/** Seed of every bootstrap in reports (same results → same intervals). */
export const REPORT_BOOTSTRAP_SEED = 0;

/** Per-seed values of `metric` for one arm. */
function perSeed(rs: readonly RunResult[], key: string): Map<number, number> {
  const m = new Map<number, number>();
  for (const r of rs) {
    const v = r.summary?.[key];
    if (typeof v === 'number' && Number.isFinite(v)) m.set(r.seed, v);
  }
  return m;
}

/** Values of `a` and `b` on the seeds both have, in seed order. */
function paired(a: Map<number, number>, b: Map<number, number>): { seeds: number[]; a: number[]; b: number[] } {
  const seeds = [...a.keys()].filter((s) => b.has(s)).sort((x, y) => x - y);
  return { seeds, a: seeds.map((s) => a.get(s)!), b: seeds.map((s) => b.get(s)!) };
}

/** One arm-vs-reference comparison. */
export interface Comparison {
  /** Arm compared. */
  arm: string;
  /** Reference arm (`random`, `small`, ...). */
  against: string;
  /** The paired test on the common seeds. */
  test: PairedTest;
  /** Bootstrap interval of the mean paired difference (arm − reference). */
  diffCi: Interval;
}

/** The share of the small→big gap an arm recovers. */
export interface GapRecovered {
  /** Arm. */
  arm: string;
  /** Seeds common to the arm, `small` and `big`. */
  n: number;
  /** (mean arm − mean small) / (mean big − mean small); 1 = as good as big, 0 = no better than small. */
  share: number;
  /** Paired bootstrap interval over seeds. */
  ci: Interval;
}

/** Everything the comparison section computed (also returned for tests and for notes). */
export interface ComparisonResult {
  /** Markdown lines. */
  markdown: string[];
  /** Comparisons against Random and `small`. */
  comparisons: Comparison[];
  /** Discrimination check, when both baselines ran. */
  discrimination?: Comparison;
  /** Gap recovered per growing arm (when both baselines ran). */
  gap: GapRecovered[];
}

/** Formats a metric value (×100 for percent metrics). */
function value(metric: ReportMetric, x: number): string {
  return metric.percent ? `${fmt(x * 100, 4)} %` : fmt(x, 4);
}

/** Formats a difference of the metric (percentage points for percent metrics), with its sign. */
function diff(metric: ReportMetric, x: number): string {
  if (!Number.isFinite(x)) return '–';
  const v = metric.percent ? x * 100 : x;
  return `${v > 0 ? '+' : v < 0 ? '−' : '±'}${fmt(Math.abs(v), 3)}${metric.percent ? ' pp' : ''}`;
}

function interval(metric: ReportMetric, ci: Interval, signed = false): string {
  if (!Number.isFinite(ci.lo)) return '–';
  if (signed) return `[${diff(metric, ci.lo)}, ${diff(metric, ci.hi)}]`;
  const k = metric.percent ? 100 : 1;
  return fmtInterval({ lo: ci.lo * k, hi: ci.hi * k, level: ci.level });
}

function compare(arm: string, against: string, a: Map<number, number>, b: Map<number, number>): Comparison | undefined {
  const p = paired(a, b);
  if (!p.seeds.length) return undefined;
  const test = pairedPermutationTest(p.a, p.b);
  const d = p.a.map((x, i) => x - p.b[i]!);
  const diffCi = bootstrapStatisticCi(d.length, (idx) => mean(idx.map((i) => d[i]!)), { seed: REPORT_BOOTSTRAP_SEED });
  return { arm, against, test, diffCi };
}

/** "better"/"worse" for a difference under the metric's direction. */
function direction(metric: ReportMetric, d: number): string {
  if (d === 0) return 'equal to';
  return (d > 0) === metric.higherIsBetter ? 'better than' : 'worse than';
}

function sentence(metric: ReportMetric, c: Comparison): string {
  const t = c.test;
  const sig = t.p < ALPHA;
  const reach = t.minP >= ALPHA ? ` (with ${t.n} paired seeds the smallest reachable p is ${fmtP(t.minP)}, so no difference can be significant at ${ALPHA}; run more seeds)` : '';
  return (
    `**${c.arm} vs ${c.against}** (${t.n} paired seeds): ${c.arm} is ${direction(metric, t.meanDiff)} ${c.against} by ${diff(metric, Math.abs(t.meanDiff)).replace(/^[+−±]/, '')} on average ` +
    `(paired difference ${diff(metric, t.meanDiff)}, 95 % CI ${interval(metric, c.diffCi, true)}), p = ${fmtP(t.p)}: ` +
    `${sig ? `**significant** at ${ALPHA}` : `not significant at ${ALPHA}`}${reach}.`
  );
}

/**
 * Builds the comparison section of one (task, backend, config) group. `arms` maps arm name → its successful
 * results (analysis arms already removed), in report order.
 */
export function comparisonSection(metric: ReportMetric, arms: ReadonlyMap<string, readonly RunResult[]>): ComparisonResult {
  const md: string[] = [];
  const values = new Map([...arms.entries()].map(([arm, rs]) => [arm, perSeed(rs, metric.key)] as const));
  const present = [...values.entries()].filter(([, v]) => v.size > 0);
  if (!present.length) return { markdown: [], comparisons: [], gap: [] };
  const random = values.get(PAIRED_REFERENCE);
  const small = values.get('small');
  const big = values.get('big');
  const comparisons: Comparison[] = [];
  const discrimination = small && big && small.size && big.size ? compare('big', 'small', big, small) : undefined;
  const gap: GapRecovered[] = [];
  const rows: string[][] = [];
  for (const [arm, v] of present) {
    const xs = [...v.entries()].sort((a, b) => a[0] - b[0]).map(([, x]) => x);
    const ci = bootstrapCi(xs, { seed: REPORT_BOOTSTRAP_SEED });
    const vsRandom = random && arm !== PAIRED_REFERENCE ? compare(arm, PAIRED_REFERENCE, v, random) : undefined;
    const vsSmall = small && arm !== 'small' ? compare(arm, 'small', v, small) : undefined;
    // Sentences for growing arms only (the baselines' rows are the same pairs seen from the other side; big vs
    // small is the discrimination check).
    const growing = arm !== 'small' && arm !== 'big';
    if (vsRandom && growing) comparisons.push(vsRandom);
    if (vsSmall && growing) comparisons.push(vsSmall);
    let gapCell = '–';
    if (small && big && arm !== 'small' && arm !== 'big') {
      const seeds = [...v.keys()].filter((s) => small.has(s) && big.has(s)).sort((a, b) => a - b);
      if (seeds.length) {
        const a = seeds.map((s) => v.get(s)!);
        const lo = seeds.map((s) => small.get(s)!);
        const hi = seeds.map((s) => big.get(s)!);
        const share = (idx: readonly number[]) => {
          const m = (xs: number[]) => mean(idx.map((i) => xs[i]!));
          const den = m(hi) - m(lo);
          return den === 0 ? NaN : (m(a) - m(lo)) / den;
        };
        const all = seeds.map((_, i) => i);
        const g: GapRecovered = { arm, n: seeds.length, share: share(all), ci: bootstrapStatisticCi(seeds.length, share, { seed: REPORT_BOOTSTRAP_SEED }) };
        gap.push(g);
        gapCell = Number.isFinite(g.share) ? `${fmt(g.share * 100, 3)} % ${Number.isFinite(g.ci.lo) ? `[${fmt(g.ci.lo * 100, 3)}, ${fmt(g.ci.hi * 100, 3)}]` : ''}`.trim() : '–';
      }
    }
    rows.push([
      arm,
      String(xs.length),
      value(metric, mean(xs)),
      metric.percent ? `${fmt(std(xs) * 100, 2)} pp` : fmt(std(xs), 2),
      interval(metric, ci),
      vsRandom ? `${diff(metric, vsRandom.test.meanDiff)} (p ${fmtP(vsRandom.test.p)})` : '–',
      vsSmall ? `${diff(metric, vsSmall.test.meanDiff)} (p ${fmtP(vsSmall.test.p)})` : '–',
      gapCell,
    ]);
  }
  md.push(`### Comparison on ${metric.label} (${metric.higherIsBetter ? 'higher' : 'lower'} is better)`);
  md.push('');
  md.push(
    `Per arm over seeds: mean, sample standard deviation and a 95 % percentile bootstrap interval of the mean (10 000 resamples, seed ${REPORT_BOOTSTRAP_SEED}: ` +
      'the same results always give the same interval). Δ columns are the mean paired difference (same seeds) with the two-sided p-value of a paired ' +
      `sign-flip permutation test (exact over all 2ⁿ sign patterns up to 16 pairs). Gap recovered = (arm − small) / (big − small) of the seed means, with a paired bootstrap interval over seeds. p-values are not corrected for multiple comparisons. ` +
      'Significance is decided by the permutation test alone: with under ~10 seeds percentile bootstrap intervals are too narrow (they can exclude 0 while p > 0.05).',
  );
  md.push('');
  md.push(table(['arm', 'seeds', `mean ${metric.label}`, 'std', '95 % CI', 'Δ vs random (p)', 'Δ vs small (p)', 'small→big gap recovered [95 % CI]'], rows));
  md.push('');
  // Discrimination check.
  let canRank = true;
  if (discrimination) {
    const ok = discrimination.test.p < ALPHA && (discrimination.test.meanDiff > 0) === metric.higherIsBetter;
    canRank = ok;
    md.push(
      ok
        ? `Discrimination check ✅: \`big\` beats \`small\` significantly (${diff(metric, discrimination.test.meanDiff)}, p = ${fmtP(discrimination.test.p)}, ${discrimination.test.n} paired seeds), so this task can show differences between growth strategies.`
        : `Discrimination check ❌: \`big\` does not beat \`small\` significantly (${diff(metric, discrimination.test.meanDiff)}, p = ${fmtP(discrimination.test.p)}, ${discrimination.test.n} paired seeds). ` +
            'With these seeds and this config the task cannot rank growth strategies: the differences below are reported, not ranked.',
    );
    md.push('');
  } else {
    md.push('Discrimination check: not available (needs both `small` and `big` runs).');
    md.push('');
  }
  if (comparisons.length) {
    md.push(canRank ? '**Paired comparisons:**' : '**Paired comparisons** (not a ranking: the discrimination check failed):');
    md.push('');
    md.push(...comparisons.map((c) => `- ${sentence(metric, c)}`));
    const sig = comparisons.filter((c) => c.test.p < ALPHA);
    md.push('');
    md.push(
      sig.length
        ? `Significant at ${ALPHA}: ${sig.map((c) => `${c.arm} ${direction(metric, c.test.meanDiff)} ${c.against}`).join('; ')}. All other differences are not significant.`
        : `No difference is significant at ${ALPHA}.`,
    );
    md.push('');
  }
  return { markdown: md, comparisons, ...(discrimination ? { discrimination } : {}), gap };
}
