/**
 * Turns any set of result files into a Markdown report with SVG plots and a terminal summary. Results are
 * grouped by (task, backend, config): different backends, WebGPU adapters or configs are never averaged into one
 * table (each gets its own section).
 */
import path from 'node:path';
import type { RunResult, Task } from '../types.js';
import { collectResults, writeFileAtomic } from '../results.js';
import { BASELINE_ARMS, strategyNames } from '../strategies.js';
import { listTasks } from '../tasks/index.js';
import { backendKey, backendLabel } from '../backend.js';
import { ALPHA, PAIRED_REFERENCE, comparisonSection } from './compare.js';
import { table, textTable } from './markdown.js';
import { aggregateCurves, fmt, fmtP, mean, meanStd, pairedPermutationTest, windowMean } from './stats.js';
import { HIGHLIGHT, lineChart } from './svg.js';
import { variantSection } from './variants.js';

/** Results of one (task, backend, config). */
export interface ReportGroup {
  /** Stable key used in file names: `task-backend-confighash`. */
  key: string;
  /** Task name. */
  task: string;
  /** Backend of every result in the group. */
  backend: RunResult['backend'];
  /** Config hash of every result in the group. */
  configHash: string;
  /** The resolved config. */
  config: Record<string, unknown>;
  /** Successful results, sorted by arm then seed. */
  results: RunResult[];
}

/** A built report. */
export interface BuiltReport {
  /** The Markdown text of `report.md`. */
  markdown: string;
  /** SVG files by file name. */
  svgs: Record<string, string>;
  /** Plain-text summary tables for the terminal. */
  summary: string;
  /** The (task, backend, config) groups, in report order. */
  groups: ReportGroup[];
  /** Failed runs (listed in the report, not averaged). */
  failed: RunResult[];
}

/**
 * Sort key for arms: registered strategies in the strategy catalog's order (see `strategyNames`), then unknown arms, then the baselines (`small`,
 * `big`), then every task's analysis arms. No arm is special-cased by name.
 */
export function compareArms(a: string, b: string): number {
  const strategies = strategyNames();
  const analysis = listTasks().flatMap((t) => t.analysisArms);
  const rank = (x: string) => {
    // A variant arm (`gradmax:sign=random`) sorts right after its base strategy.
    const i = strategies.indexOf(x.split(':')[0]!);
    if (i >= 0) return i;
    const base = (BASELINE_ARMS as readonly string[]).indexOf(x);
    if (base >= 0) return 10_000 + base;
    const an = analysis.indexOf(x);
    if (an >= 0) return 20_000 + an;
    return 5_000;
  };
  return rank(a) - rank(b) || a.localeCompare(b);
}

/**
 * The full resolved config of a stored result config: the task's resolution of its `preset` with the stored
 * values as overrides (so configs written before a key existed still describe themselves). Falls back to the
 * stored object when it no longer resolves.
 */
export function resolveStoredConfig(task: Task<any>, stored: Record<string, unknown>): Record<string, unknown> {
  const { preset, ...rest } = stored;
  const name = typeof preset === 'string' && task.presets.includes(preset) ? preset : 'default';
  try {
    const base = task.resolveConfig(name) as Record<string, unknown>;
    const known = Object.fromEntries(Object.entries(rest).filter(([k]) => k in base));
    return task.resolveConfig(name, known) as Record<string, unknown>;
  } catch {
    return stored;
  }
}

/** Groups successful results by (task, backend, config hash). */
export function groupResults(results: readonly RunResult[]): ReportGroup[] {
  const groups = new Map<string, ReportGroup>();
  for (const r of results) {
    if (r.status !== 'ok') continue;
    const key = `${r.task}-${backendKey(r.backend)}-${r.configHash}`;
    let g = groups.get(key);
    if (!g) {
      g = { key, task: r.task, backend: r.backend, configHash: r.configHash, config: r.config, results: [] };
      groups.set(key, g);
    }
    g.results.push(r);
  }
  for (const g of groups.values()) g.results.sort((a, b) => compareArms(a.arm, b.arm) || a.seed - b.seed);
  return [...groups.values()].sort((a, b) => a.task.localeCompare(b.task) || backendKey(a.backend).localeCompare(backendKey(b.backend)) || a.configHash.localeCompare(b.configHash));
}

function byArm(results: readonly RunResult[]): Map<string, RunResult[]> {
  const m = new Map<string, RunResult[]>();
  for (const r of results) {
    const list = m.get(r.arm) ?? [];
    list.push(r);
    m.set(r.arm, list);
  }
  return new Map([...m.entries()].sort((a, b) => compareArms(a[0], b[0])));
}

function seedList(rs: readonly RunResult[]): string {
  return [...new Set(rs.map((r) => r.seed))].sort((a, b) => a - b).join(', ');
}

function values(rs: readonly RunResult[], key: string): number[] {
  return rs.map((r) => r.summary?.[key]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
}

/**
 * What strategies said about their growths (e.g. directions filled at random beyond the growth matrix's rank or
 * beyond the fan-out, which are then not orthogonal), per arm with how many growths said it; at most 12 lines.
 */
function strategyNotes(rs: readonly RunResult[]): string[] {
  const counts = new Map<string, number>();
  let total = 0;
  for (const r of rs) {
    for (const gr of r.growths ?? []) {
      total++;
      for (const n of gr.notes ?? []) counts.set(`${r.arm}\u0000${n}`, (counts.get(`${r.arm}\u0000${n}`) ?? 0) + 1);
    }
  }
  if (!counts.size) return [];
  const rows = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const out = [`**Strategy notes** (from the strategies' growth reports; count of ${total} growth records):`, ''];
  for (const [key, n] of rows.slice(0, 12)) {
    const [arm, note] = key.split('\u0000') as [string, string];
    out.push(`- \`${arm}\` (${n}×): ${note}`);
  }
  if (rows.length > 12) out.push(`- … and ${rows.length - 12} more distinct notes.`);
  out.push('');
  return out;
}

/** Run time of a group: the sum of the runs' wall times, their mean, and the span from first start to last end. */
function runTime(rs: readonly RunResult[]): string {
  const total = rs.reduce((s, r) => s + (r.timings?.totalMs ?? 0), 0) / 1000;
  const starts = rs.map((r) => Date.parse(r.startedAt)).filter(Number.isFinite);
  const ends = rs.map((r) => Date.parse(r.finishedAt)).filter(Number.isFinite);
  const span = starts.length && ends.length ? (Math.max(...ends) - Math.min(...starts)) / 1000 : NaN;
  return `Run time: ${fmt(total, 3)} s summed over runs (mean ${fmt(total / Math.max(1, rs.length), 3)} s per run)${Number.isFinite(span) ? `, ${fmt(span, 3)} s from first start to last end` : ''}.`;
}

function growthShare(r: RunResult): number {
  const t = r.timings!;
  const train = t.trainMs + t.growthMs;
  return train > 0 ? t.growthMs / train : NaN;
}

function pct(xs: number[]): string {
  if (!xs.length) return '–';
  return `${(mean(xs) * 100).toFixed(2)}%`;
}

interface GroupSection {
  markdown: string[];
  summary: string;
  svgs: Record<string, string>;
}

function buildGroup(g: ReportGroup): GroupSection {
  const md: string[] = [];
  const svgs: Record<string, string> = {};
  const arms = byArm(g.results);
  const task = listTasks().find((t) => t.name === g.task);
  md.push(`## ${g.task} · backend \`${backendLabel(g.backend)}\` · config \`${g.configHash}\``);
  md.push('');
  md.push(`Backend: ${g.backend.device} (requested \`${g.backend.requested}\`, package \`${g.backend.package}\`)${g.backend.note ? `; ${g.backend.note}` : ''}.`);
  const first = g.results[0]!;
  md.push(`Host: ${first.host.cpuModel}, ${first.host.cpus} cores, Node ${first.host.node}. Versions: ${Object.entries(first.versions).map(([k, v]) => `${k} ${v}`).join(', ')}.`);
  md.push(`Seeds: ${seedList(g.results)}. Runs: ${g.results.length}. ${runTime(g.results)}`);
  md.push('');
  const config = task ? resolveStoredConfig(task, g.config) : g.config;
  if (task) {
    md.push(`**Task card** (generated from the resolved config${typeof g.config['preset'] === 'string' ? `, preset \`${g.config['preset']}\`` : ''})`);
    md.push('');
    md.push(task.describe(config));
    md.push('');
  }
  md.push('<details><summary>Resolved config</summary>');
  md.push('');
  md.push('```json');
  md.push(JSON.stringify(g.config, null, 2));
  md.push('```');
  md.push('');
  md.push('</details>');
  md.push('');

  // Main table.
  const training = [...arms.entries()].filter(([, rs]) => rs.some((r) => r.curves?.trainLoss || r.curves?.testAccuracy));
  const hasTest = g.results.some((r) => typeof r.summary?.finalTestAccuracy === 'number');
  const header = ['arm', 'seeds', 'final train loss', ...(hasTest ? ['test loss', 'test accuracy'] : []), 'final width', 'growth time share', 'run time (s)'];
  const rows: string[][] = [];
  for (const [arm, rs] of training) {
    rows.push([
      arm,
      String(rs.length),
      meanStd(values(rs, 'finalTrainLoss')),
      ...(hasTest ? [meanStd(values(rs, 'finalTestLoss')), meanStd(values(rs, 'finalTestAccuracy'))] : []),
      meanStd(values(rs, 'finalWidth'), 3),
      pct(rs.map(growthShare).filter((x) => Number.isFinite(x) && rs.some((r) => (r.growths?.length ?? 0) > 0))),
      fmt(mean(rs.map((r) => r.timings!.totalMs / 1000)), 3),
    ]);
  }
  md.push('### Final results (mean ± std over seeds)');
  md.push('');
  md.push(table(header, rows));
  md.push('');
  const analysisArms = task?.analysisArms ?? [];
  const analysisHere = analysisArms.filter((a) => arms.has(a));
  md.push(
    'Growth time share = time spent in growth events (statistics, strategy, weight surgery) / (training + growth time).' +
      (analysisHere.length ? ` Analysis arms (${analysisHere.map((a) => `\`${a}\``).join(', ')}) follow a growing arm's trajectory; their run time includes the analysis.` : ''),
  );
  md.push('');
  let summary = `${g.task} · backend ${backendLabel(g.backend)} · config ${g.configHash} · seeds ${seedList(g.results)}\n${textTable(header, rows)}`;
  if (task) {
    const compared = comparisonSection(task.metric, new Map([...arms.entries()].filter(([arm]) => !analysisArms.includes(arm))));
    md.push(...compared.markdown);
    const d = compared.discrimination;
    if (d) summary += `\nbig vs small on ${task.metric.label}: p = ${fmtP(d.test.p)} (${d.test.n} paired seeds)`;
    const sig = compared.comparisons.filter((c) => c.test.p < ALPHA);
    summary += `\nsignificant at ${ALPHA} (paired sign-flip test): ${sig.length ? sig.map((c) => `${c.arm} vs ${c.against} (p ${fmtP(c.test.p)})`).join(', ') : 'none'}`;
  }

  // Loss curves.
  // Analysis arms (e.g. growth-gain, which follows the Random trajectory) are left out of the curves.
  const analysis = new Set(analysisArms);
  const lossSeries = training
    .filter(([arm, rs]) => !analysis.has(arm) && rs.every((r) => r.curves?.trainLoss))
    .map(([arm, rs]) => {
      const agg = aggregateCurves(rs.map((r) => r.curves!.trainLoss!));
      return { name: arm, x: agg.step, y: agg.mean, band: agg.std };
    });
  const growthSteps = [...new Set(g.results.flatMap((r) => (r.growths ?? []).map((x) => x.step)))].sort((a, b) => a - b);
  const growthLines = growthSteps.map((x, i) => ({ x, label: `growth ${i + 1}` }));
  const seedsOf = (arm: string) => arms.get(arm)?.length ?? 0;
  const highlighted = lossSeries.filter((s) => s.name in HIGHLIGHT);
  if (highlighted.length >= 2) {
    const name = `${g.key}-highlight.svg`;
    // From half-way to the first growth: the initial drop would squeeze the part where the arms differ.
    const from = growthSteps.length ? Math.floor(growthSteps[0]! / 2) : 0;
    const cut = (s: (typeof highlighted)[number]) => {
      const keep = s.x.map((x, i) => (x >= from ? i : -1)).filter((i) => i >= 0);
      return { ...s, x: keep.map((i) => s.x[i]!), y: keep.map((i) => s.y[i]!), band: keep.map((i) => s.band[i]!) };
    };
    svgs[name] = lineChart({
      title: `${g.task}: ${Object.keys(HIGHLIGHT).filter((a) => arms.has(a)).map((a) => HIGHLIGHT[a]!.label).join(' vs ')}${from > 0 ? ` from step ${from}` : ''} (${backendLabel(g.backend)})`,
      xLabel: 'training step',
      yLabel: 'training loss (linear scale)',
      series: Object.keys(HIGHLIGHT)
        .map((arm) => highlighted.find((s) => s.name === arm))
        .filter((s): s is (typeof highlighted)[number] => !!s)
        .map((s) => ({ ...cut(s), name: `${HIGHLIGHT[s.name]!.label}, n=${seedsOf(s.name)}`, color: HIGHLIGHT[s.name]!.color, strokeWidth: HIGHLIGHT[s.name]!.strokeWidth, ...(HIGHLIGHT[s.name]!.dash ? { dash: HIGHLIGHT[s.name]!.dash } : {}) })),
      vlines: growthLines,
      note: 'bands: mean ± std over seeds',
    });
    md.push(`![highlighted training loss](${name})`);
    md.push('');
  }
  if (lossSeries.length) {
    const name = `${g.key}-loss.svg`;
    svgs[name] = lineChart({ title: `${g.task}: training loss, every arm (${backendLabel(g.backend)})`, xLabel: 'training step', yLabel: 'training loss', series: lossSeries, logY: true, vlines: growthLines, note: 'bands: mean ± std over seeds' });
    md.push(`![training loss](${name})`);
    md.push('');
  }
  const accSeries = training
    .filter(([, rs]) => rs.every((r) => r.curves?.testAccuracy && r.curves?.width))
    .map(([arm, rs]) => {
      const acc = aggregateCurves(rs.map((r) => r.curves!.testAccuracy!));
      const widthCurve = rs[0]!.curves!.width!;
      const widthAt = (step: number) => {
        let w = widthCurve.value[0]!;
        for (let i = 0; i < widthCurve.step.length; i++) if (widthCurve.step[i]! <= step) w = widthCurve.value[i]!;
        return w;
      };
      return { name: arm, x: acc.step.map(widthAt), y: acc.mean, band: acc.std };
    });
  if (accSeries.length) {
    const name = `${g.key}-accuracy-vs-width.svg`;
    svgs[name] = lineChart({ title: `${g.task}: test accuracy vs width (${backendLabel(g.backend)})`, xLabel: 'width of the first grown layer (units)', yLabel: 'test accuracy (fraction correct)', series: accSeries, markers: true, note: 'bands: mean ± std over seeds' });
    md.push(`![test accuracy vs width](${name})`);
    md.push('');
  }

  // Post-growth loss windows (growing arms).
  if (growthSteps.length) {
    const ends = [...growthSteps.slice(1), Infinity];
    const prow: string[][] = [];
    const windowsOf = (rs: readonly RunResult[], i: number) => new Map(rs.map((r) => [r.seed, windowMean(r.curves!.trainLoss!, growthSteps[i]!, ends[i]!)] as const));
    const reference = arms.get(PAIRED_REFERENCE);
    for (const [arm, rs] of training) {
      if (analysis.has(arm) || !rs.every((r) => r.curves?.trainLoss)) continue;
      prow.push([
        arm,
        ...growthSteps.map((_, i) => {
          const mine = windowsOf(rs, i);
          const cell = meanStd([...mine.values()]);
          if (!reference || arm === PAIRED_REFERENCE || !reference.every((r) => r.curves?.trainLoss)) return cell;
          const theirs = windowsOf(reference, i);
          const seeds = [...mine.keys()].filter((k) => theirs.has(k) && Number.isFinite(mine.get(k)!) && Number.isFinite(theirs.get(k)!));
          if (!seeds.length) return cell;
          const t = pairedPermutationTest(seeds.map((k) => mine.get(k)!), seeds.map((k) => theirs.get(k)!));
          return `${cell} (p ${fmtP(t.p)})`;
        }),
      ]);
    }
    md.push('### Mean training loss after each growth (until the next growth; mean ± std over seeds)');
    md.push('');
    if (reference) {
      md.push(`p = two-sided paired sign-flip permutation test against \`${PAIRED_REFERENCE}\` on the same seeds (uncorrected).`);
      md.push('');
    }
    md.push(table(['arm', ...growthSteps.map((s, i) => `growth ${i + 1} (step ${s})`)], prow));
    md.push('');
    const overhead = g.results.flatMap((r) => r.growths ?? []).map((x) => x.durationMs);
    if (overhead.length) md.push(`Growth events: ${overhead.length}, mean ${fmt(mean(overhead), 3)} ms each (max ${fmt(Math.max(...overhead), 3)} ms).`);
    md.push('');
    md.push(...strategyNotes(g.results));
    if (task) {
      const configured = Number(config['steps']);
      const lastLogged = Math.max(...g.results.map((r) => r.curves?.trainLoss?.step.at(-1) ?? 0));
      const variants = variantSection(task.metric, new Map([...arms.entries()].filter(([arm]) => !analysis.has(arm))), growthSteps, Number.isFinite(configured) && configured > 0 ? configured : lastLogged);
      md.push(...variants.markdown);
      const sig = variants.comparisons.filter((c) => c.test.p < ALPHA);
      if (variants.comparisons.length) summary += `\nagainst the variants' base (paired sign-flip test), significant at ${ALPHA}: ${sig.length ? sig.map((c) => `${c.arm} vs ${c.against} on ${c.measure} (p ${fmtP(c.test.p)})`).join(', ') : 'none'}`;
    }
  }

  if (task?.report) {
    const section = task.report({ results: g.results, config, key: g.key, backend: backendLabel(g.backend) });
    md.push(...section.markdown);
    Object.assign(svgs, section.svgs);
  }
  return { markdown: md, summary, svgs };
}

/** Builds the report of a set of results (any mix of tasks, backends, configs, seeds). */
export function buildReport(results: readonly RunResult[], options: { title?: string; skipped?: { file: string; reason: string }[] } = {}): BuiltReport {
  const groups = groupResults(results);
  const failed = results.filter((r) => r.status === 'failed');
  const md: string[] = [`# ${options.title ?? 'gradmax benchmark report'}`, ''];
  md.push(`${results.length} result files: ${results.length - failed.length} ok, ${failed.length} failed. Generated by \`gradmax bench report\`.`);
  md.push('');
  const tasks = new Map<string, Set<string>>();
  for (const g of groups) {
    const s = tasks.get(g.task) ?? new Set<string>();
    s.add(`${backendKey(g.backend)}/${g.configHash}`);
    tasks.set(g.task, s);
  }
  for (const [task, keys] of tasks) {
    if (keys.size > 1) {
      md.push(`> Note: \`${task}\` has results from ${keys.size} (backend, config) combinations (${[...keys].join(', ')}). They are reported in separate sections and never averaged together.`);
      md.push('');
    }
  }
  const summaries: string[] = [];
  const svgs: Record<string, string> = {};
  for (const g of groups) {
    const s = buildGroup(g);
    md.push(...s.markdown);
    summaries.push(s.summary);
    Object.assign(svgs, s.svgs);
  }
  if (failed.length) {
    md.push('## Failed runs');
    md.push('');
    md.push(table(['task', 'arm', 'seed', 'backend', 'error'], failed.map((r) => [r.task, r.arm, String(r.seed), backendLabel(r.backend), (r.error ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ')])));
    md.push('');
    summaries.push(`${failed.length} failed run(s): ${failed.map((r) => `${r.task}/${r.arm}/seed ${r.seed}`).join(', ')}`);
  }
  if (options.skipped?.length) {
    md.push('## Skipped files');
    md.push('');
    md.push(...options.skipped.map((s) => `- \`${s.file}\`: ${s.reason}`));
    md.push('');
  }
  if (!groups.length && !failed.length) summaries.push('no results found');
  return { markdown: md.join('\n'), svgs, summary: summaries.join('\n\n'), groups, failed };
}

/** Writes `report.md` and the SVGs into `dir` (atomically, file by file). Returns the written paths. */
export async function writeReport(dir: string, report: BuiltReport): Promise<string[]> {
  const files: string[] = [];
  for (const [name, svg] of Object.entries(report.svgs)) {
    const f = path.join(dir, name);
    await writeFileAtomic(f, svg);
    files.push(f);
  }
  const md = path.join(dir, 'report.md');
  await writeFileAtomic(md, report.markdown);
  files.push(md);
  return files;
}

/** Reads results under `inputs` (files or directories) and writes the report into `outDir`. */
export async function reportFromPaths(inputs: readonly string[], outDir: string, title?: string): Promise<BuiltReport & { files: string[] }> {
  const { results, skipped } = await collectResults(inputs);
  const report = buildReport(results, { ...(title ? { title } : {}), skipped });
  const files = await writeReport(outDir, report);
  return { ...report, files };
}
