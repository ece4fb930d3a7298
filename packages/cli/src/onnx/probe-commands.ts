/**
 * `gradmax onnx stats` and `gradmax onnx widen --data`: GradMax statistics from labelled data through the
 * probe (a generated backward graph run in onnxruntime), written as `.npy` or used to widen the model.
 * @packageDocumentation
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidArgumentError, ShapeMismatchError, UnsupportedError, createStrategy, listStrategies, type GrowthStrategy, type SiteStatistics } from '@gradmax/core';
import {
  FileAccessError,
  findGroup,
  findGroups,
  findSite,
  findSites,
  growModel,
  loadModel,
  npyToFloat64,
  readNpy,
  verifyModels,
  writeNpy,
  type GrowRequest,
  type NpyArray,
  type OnnxGroup,
  type OnnxModel,
  type VerifyReport,
  describePlacement,
  type NodePlacement,
} from '@gradmax/onnx';
import { adviseGrowth, computeGroupStatistics, computeStatistics, type ProbeBatch, type ProbeLossKind, type ProbeStatistics, type ProbeStatisticsMode } from '@gradmax/onnx/probe';
import { UsageError, parseCommand, parseIntegerFlag, parsePairs, stringList } from '../shared/args.js';
import { EXIT_OK, type CliIO } from '../shared/io.js';
import { createProgressBar } from '../shared/progress.js';
import { formatNumber, formatTable } from '../shared/table.js';
import { ensureStrategies } from './index.js';
import { DEFAULT_MAX_MEMORY, checkGrowthBudget, parseSize, parseWidenTargets } from './widen-targets.js';
import { describeVerification, noteVerifying, saveStaged, sweepStaleTemps, verificationFailure } from './model-io.js';

const DATA_OPTIONS = `  --data X.npy                inputs, [N, ...] (the model's single data input)
  --labels Y.npy              integer class labels [N] (ce losses) or targets shaped like the output (mse)
  --loss KIND                 ce (cross-entropy on logits), ce-softmax (on a Softmax output),
                              ce-logsoftmax (on a LogSoftmax output) or mse
  --loss-output NAME          model output the loss reads (default: the first output)
  --batch-size N              examples per onnxruntime run (default 128)
  --execution-provider EP     onnxruntime execution provider: cpu (default), webgpu (needs a Vulkan driver)
  --statistics MODE           exact (the whole growth matrix M), sketch (a randomized rank-R sketch of M: its top
                              singular vectors approximately, at a fraction of the cost for large layers) or auto
                              (default: sketch where M is large, at least 2^20 entries for dense and 2^12 for
                              conv pairs, and the sketch costs no more than the exact statistic)
  --sketch-rank R             sketch width (default 16, advise: max(16, K + 8)); seed of the sketch: --sketch-seed N`;

/** Help of `gradmax onnx stats`. */
export const STATS_HELP = `Usage: gradmax onnx stats MODEL --data X.npy --labels Y.npy --loss KIND --site NAME [--site NAME ...] -o DIR

Computes the GradMax growth statistics of each site from labelled data: the model is extended with a
backward graph (ordinary ONNX ops) that onnxruntime runs over the data in minibatches; per-batch sums are
merged into the exact mean over all examples. Writes DIR/<site>.M.npy (the growth matrix M, float64,
[fanOut, fanIn] in the layout "gradmax onnx widen --stats" reads) and DIR/stats.json, a manifest
{"sites": {NAME: {"moment": FILE, "count": N}}} that "gradmax onnx widen --stats DIR/stats.json" accepts.

Options:
  --site NAME                 group from "gradmax onnx inspect" (its name, a producer's name, or PRODUCER->CONSUMER);
                              repeatable
  -o, --out-dir DIR           output folder (created if missing)
  --output NAME               same as --loss-output
${DATA_OPTIONS}
  --json                      print a JSON summary
  -h, --help                  show this help
`;

/** Help of `gradmax onnx widen --data`. */
export const WIDEN_FROM_DATA_HELP = `Usage: gradmax onnx widen MODEL --data X.npy --labels Y.npy --loss KIND --site NAME --add K [--site NAME --add K ...] -o OUT [options]

Computes the statistics the strategy needs from labelled data (probe run in onnxruntime, streamed in
minibatches), grows each site with the strategy, writes OUT atomically and verifies it against MODEL.

Options:
  --site NAME                 site to grow; repeatable
  --add K                     units to add at the matching --site; repeatable
  -o, --output OUT            output model path (required; may not be MODEL)
  --strategy NAME             growth strategy (default: gradmax); registered: {strategies}
  --seed N                    seed of the strategy and of the random verification inputs (default 0)
  --max-memory SIZE           refuse growth whose new weights need more working memory than SIZE (default 4G)
  --no-verify                 skip the onnxruntime check of the widened model
  --dim NAME=VALUE            value of a symbolic input dimension for the verification inputs (default: chosen
                              by verification and printed, as for "gradmax onnx widen")
${DATA_OPTIONS}
  --json                      print a JSON summary
  -h, --help                  show this help
`;

/** Help of `gradmax onnx advise`. */
export const ADVISE_HELP = `Usage: gradmax onnx advise MODEL --data X.npy --labels Y.npy --loss KIND [--k K] [--top N] [--site NAME ...] [--json]

Which layers are most starved for width: computes every growable channel group's growth matrix M (E[g h^T] per
layer pair, stacked over the group) from the labelled data in one probe run, and ranks the groups by GradMax's
first-order gain of adding K
units, the sum of the K largest squared singular values of M (= ||Omega^T M||^2 for the optimal unit-norm
outgoing weights Omega; one SGD step of size eta then lowers the loss by about eta * c^2 * gain, c being the
new units' outgoing norm). Groups without exact statistics are listed with the reason.

Options:
  --k K                       units to add per site for the gain (default 8)
  --top N                     singular values to show per site (default 3)
  --site NAME                 only these groups (a group or producer name); repeatable (default: every growable group)
${DATA_OPTIONS}
  --json                      print {"examples", "meanLoss", "advice": [...], "skipped": [...]}
  -h, --help                  show this help
`;

const DATA_FLAGS = {
  data: { type: 'string' },
  labels: { type: 'string' },
  loss: { type: 'string' },
  'loss-output': { type: 'string' },
  'batch-size': { type: 'string' },
  'execution-provider': { type: 'string' },
  statistics: { type: 'string' },
  'sketch-rank': { type: 'string' },
  'sketch-seed': { type: 'string' },
  json: { type: 'boolean' },
} as const;

const STATISTICS_MODES: readonly ProbeStatisticsMode[] = ['exact', 'sketch', 'auto'];

const LOSSES: Record<string, ProbeLossKind> = { ce: 'ce-logits', 'ce-logits': 'ce-logits', 'ce-softmax': 'ce-softmax', 'ce-logsoftmax': 'ce-logsoftmax', mse: 'mse' };

function resolvePath(io: CliIO, p: string): string {
  return path.resolve(io.cwd ?? process.cwd(), p);
}

interface DataSpec {
  x: NpyArray;
  y: NpyArray;
  loss: ProbeLossKind;
  lossOutput?: string;
  batchSize: number;
  executionProvider?: string;
  /** Probe statistics mode and sketch settings (`--statistics`, `--sketch-rank`, `--sketch-seed`). */
  sketch: { statistics: ProbeStatisticsMode; sketchRank?: number; sketchSeed?: number };
}

function parseData(cmd: string, io: CliIO, values: Record<string, unknown>): DataSpec {
  if (typeof values.data !== 'string') throw new UsageError(`${cmd}: --data X.npy is required`);
  if (typeof values.labels !== 'string') throw new UsageError(`${cmd}: --labels Y.npy is required`);
  if (typeof values.loss !== 'string') throw new UsageError(`${cmd}: --loss is required (ce, ce-softmax, ce-logsoftmax or mse)`);
  const loss = LOSSES[values.loss];
  if (!loss) throw new UsageError(`${cmd}: unknown --loss "${values.loss}" (ce, ce-softmax, ce-logsoftmax or mse)`);
  const batchSize = typeof values['batch-size'] === 'string' ? parseIntegerFlag(cmd, '--batch-size', values['batch-size'], 1) : 128;
  const mode = (values.statistics ?? 'auto') as ProbeStatisticsMode;
  if (!STATISTICS_MODES.includes(mode)) throw new UsageError(`${cmd}: unknown --statistics "${String(values.statistics)}" (exact, sketch or auto)`);
  const sketch = {
    statistics: mode,
    ...(typeof values['sketch-rank'] === 'string' ? { sketchRank: parseIntegerFlag(cmd, '--sketch-rank', values['sketch-rank'], 1) } : {}),
    ...(typeof values['sketch-seed'] === 'string' ? { sketchSeed: parseIntegerFlag(cmd, '--sketch-seed', values['sketch-seed'], 0) } : {}),
  };
  const x = readNpy(resolvePath(io, values.data));
  const y = readNpy(resolvePath(io, values.labels));
  if (x.shape.length < 1 || y.shape.length < 1) throw new InvalidArgumentError(`${cmd}: --data and --labels need a leading example axis`);
  if (x.shape[0] !== y.shape[0]) throw new ShapeMismatchError(`${cmd}: --labels (examples)`, [x.shape[0]!], [y.shape[0]!], { data: values.data, labels: values.labels });
  if (loss !== 'mse') {
    if (y.shape.length !== 1) throw new ShapeMismatchError(`${cmd}: --labels for ${values.loss}`, `[${x.shape[0]}] integer class labels`, y.shape);
    if (y.dtype !== '<i4' && y.dtype !== '<i8') {
      const v = npyToFloat64(y);
      if (v.some((l) => !Number.isInteger(l))) throw new InvalidArgumentError(`${cmd}: --labels must hold integer class labels for ${values.loss}`, { labels: values.labels });
    }
  }
  return {
    x,
    y,
    loss,
    ...(typeof values['loss-output'] === 'string' ? { lossOutput: values['loss-output'] } : {}),
    batchSize,
    ...(typeof values['execution-provider'] === 'string' ? { executionProvider: values['execution-provider'] } : {}),
    sketch,
  };
}

function* batches(model: OnnxModel, spec: DataSpec): Generator<ProbeBatch> {
  const inits = new Set(model.graph.initializer.map((t) => t.name));
  const inputs = model.graph.input.filter((i) => !inits.has(i.name));
  if (inputs.length !== 1) throw new InvalidArgumentError(`the model has ${inputs.length} data inputs (${inputs.map((i) => i.name).join(', ')}); --data feeds exactly one`);
  const elem = inputs[0]!.type?.value.case === 'tensorType' ? inputs[0]!.type.value.value.elemType : 1;
  const double = elem === 11;
  const x = npyToFloat64(spec.x);
  const n = spec.x.shape[0]!;
  const per = spec.x.shape.slice(1).reduce((a, b) => a * b, 1);
  const yPer = spec.y.shape.slice(1).reduce((a, b) => a * b, 1);
  const y = spec.loss === 'mse' ? npyToFloat64(spec.y) : spec.y.dtype === '<i8' ? (spec.y.data as BigInt64Array) : npyToFloat64(spec.y);
  for (let start = 0; start < n; start += spec.batchSize) {
    const end = Math.min(n, start + spec.batchSize);
    const slice = x.subarray(start * per, end * per);
    const dims = [end - start, ...spec.x.shape.slice(1)];
    const tensor = double ? { type: 'float64', data: Float64Array.from(slice), dims } : { type: 'float32', data: Float32Array.from(slice), dims };
    const labels = y.subarray(start * yPer, end * yPer);
    yield {
      inputs: tensor,
      labels:
        spec.loss === 'mse'
          ? { type: double ? 'float64' : 'float32', data: double ? Float64Array.from(labels as Float64Array) : Float32Array.from(labels as Float64Array), dims: [end - start, ...spec.y.shape.slice(1)] }
          : labels,
    };
  }
}

/** Says on stderr where onnxruntime ran the probe's nodes (for a provider other than cpu): which fell back to CPU. */
function notePlacement(io: CliIO, placement: NodePlacement | undefined): void {
  if (placement) io.stderr.write(`onnxruntime ${describePlacement(placement)}\n`);
}

async function statistics(io: CliIO, model: OnnxModel, siteNames: string[], spec: DataSpec): Promise<{ stats: Map<string, ProbeStatistics>; examples: number; meanLoss: number }> {
  const total = spec.x.shape[0]!;
  const bar = createProgressBar(io, 'statistics', total, { unit: 'examples' });
  const res = await computeStatistics(model, {
    sites: siteNames,
    loss: { kind: spec.loss, ...(spec.lossOutput ? { output: spec.lossOutput } : {}) },
    data: batches(model, spec),
    batchSize: spec.batchSize,
    ...(spec.executionProvider ? { executionProvider: spec.executionProvider } : {}),
    ...spec.sketch,
    onProgress: (p: { examples: number }) => bar.update(p.examples),
  });
  bar.finish();
  notePlacement(io, res.placement);
  return { stats: res.statistics, examples: res.examples, meanLoss: res.meanLoss };
}

/**
 * Statistics of channel groups (names as `--site` takes them): the stacked growth matrix of each group from one probe
 * run over its (producer, consumer) pairs. A group whose matrix would not be exact falls back to the pair site of the
 * same layers when the probe can take it (same layouts); otherwise the reason is an error.
 */
async function groupStatistics(io: CliIO, model: OnnxModel, names: string[], spec: DataSpec): Promise<{ stats: Map<string, SiteStatistics>; groups: OnnxGroup[]; examples: number; meanLoss: number }> {
  const all = findGroups(model);
  const groups = names.map((n) => findGroup(model, n, all));
  const unique = [...new Set(groups.filter((g) => g.growable).map((g) => g.name))];
  const total = spec.x.shape[0]!;
  const bar = createProgressBar(io, 'statistics', total, { unit: 'examples' });
  const data = { [Symbol.iterator]: () => batches(model, spec) };
  const res = unique.length
    ? await computeGroupStatistics(model, {
        groups: unique,
        loss: { kind: spec.loss, ...(spec.lossOutput ? { output: spec.lossOutput } : {}) },
        data,
        batchSize: spec.batchSize,
        ...(spec.executionProvider ? { executionProvider: spec.executionProvider } : {}),
        ...spec.sketch,
        onProgress: (p: { examples: number }) => bar.update(p.examples),
      })
    : { statistics: new Map<string, SiteStatistics>(), refused: new Map<string, string>(), sketches: new Map(), examples: 0, meanLoss: NaN };
  bar.finish();
  notePlacement(io, 'placement' in res ? res.placement : undefined);
  const stats = new Map(res.statistics);
  let { examples, meanLoss } = res;
  const sites = findSites(model);
  const fallback: { group: OnnxGroup; site: string }[] = [];
  for (const g of groups) {
    if (stats.has(g.name)) continue;
    const why = g.growable ? res.refused.get(g.name) : g.reason;
    const pair = g.growable && g.members.producers.length === 1 && g.members.consumers.length === 1 ? sites.find((x) => x.growable && x.current === g.members.producers[0] && x.next === g.members.consumers[0] && x.fanIn === g.fanIn && x.fanOut === g.fanOut) : undefined;
    if (!pair) throw new UnsupportedError(`group "${g.name}": no exact statistics: ${why ?? 'unknown reason'}`, { group: g.name });
    fallback.push({ group: g, site: pair.name });
  }
  if (fallback.length) {
    const legacy = await statistics(io, model, [...new Set(fallback.map((f) => f.site))], spec);
    for (const f of fallback) stats.set(f.group.name, legacy.stats.get(f.site)!.snapshot());
    examples = legacy.examples;
    meanLoss = legacy.meanLoss;
  }
  return { stats, groups, examples, meanLoss };
}

/**
 * File name stems for the sites' statistics: the site name with every run of characters other than letters, digits,
 * `_`, `.` and `-` replaced by `_`; names that would then meet (also when compared without case, for case-insensitive
 * file systems) get a short hash of the site name appended, so no two sites share a file.
 */
export function statisticsFileStems(sites: readonly string[]): Map<string, string> {
  const base = new Map(sites.map((s) => [s, s.replace(/[^A-Za-z0-9_.-]+/g, '_')]));
  const count = new Map<string, number>();
  for (const b of base.values()) count.set(b.toLowerCase(), (count.get(b.toLowerCase()) ?? 0) + 1);
  const out = new Map<string, string>();
  for (const [site, b] of base) out.set(site, count.get(b.toLowerCase())! > 1 ? `${b}-${createHash('sha256').update(site).digest('hex').slice(0, 8)}` : b);
  return out;
}

/** `gradmax onnx stats ...`: returns the exit code (errors are thrown; the dispatcher reports them). */
export async function runStatsCommand(argv: string[], io: CliIO): Promise<number> {
  const cmd = 'gradmax onnx stats';
  const parsed = parseCommand(cmd, argv, { ...DATA_FLAGS, output: { type: 'string' }, site: { type: 'string', multiple: true }, 'out-dir': { type: 'string', short: 'o' } }, { min: 1, max: 1, names: 'MODEL' });
  const { positionals } = parsed;
  const values = { ...parsed.values };
  if (typeof values.output === 'string') {
    if (typeof values['loss-output'] === 'string' && values['loss-output'] !== values.output) throw new UsageError(`${cmd}: --output and --loss-output name different outputs`);
    values['loss-output'] = values.output;
  }
  if (values.help) {
    io.stdout.write(STATS_HELP);
    return EXIT_OK;
  }
  const sitesArg = stringList(values.site);
  if (!sitesArg.length) throw new UsageError(`${cmd}: --site is required (see gradmax onnx inspect MODEL)`);
  if (typeof values['out-dir'] !== 'string') throw new UsageError(`${cmd}: -o DIR is required`);
  const spec = parseData(cmd, io, values);
  const model = loadModel(resolvePath(io, positionals[0]!));
  const { stats, groups, examples, meanLoss } = await groupStatistics(io, model, sitesArg, spec);
  const siteNames = [...new Set(groups.map((g) => g.name))];
  const dir = resolvePath(io, values['out-dir']);
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new FileAccessError(`cannot create "${values['out-dir']}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: dir });
  }
  const manifest: { sites: Record<string, { moment: string; count: number; shares?: string[] }> } = { sites: {} };
  const rows: (string | number)[][] = [];
  // One file per group; the manifest is keyed by the names given to --site (which "widen --stats" looks up).
  const stems = statisticsFileStems(siteNames);
  for (const name of siteNames) {
    const snap = stats.get(name)!;
    const file = `${stems.get(name)!}.M.npy`;
    writeNpy(path.join(dir, file), snap.moment.data, [snap.moment.rows, snap.moment.cols]);
    // Grouped convs: one growth matrix per share of new units (conv group), which "widen --stats" needs for GradMax.
    (snap as { shares?: SiteStatistics[] }).shares?.forEach((sh, s) => writeNpy(path.join(dir, `${stems.get(name)!}.M.share${s + 1}.npy`), sh.moment.data, [sh.moment.rows, sh.moment.cols]));
    rows.push([name, `[${snap.moment.rows}, ${snap.moment.cols}]`, snap.count, file]);
  }
  groups.forEach((g, i) => {
    const snap = stats.get(g.name)!;
    const shares = (snap as { shares?: SiteStatistics[] }).shares;
    manifest.sites[sitesArg[i]!] = { moment: `${stems.get(g.name)!}.M.npy`, count: snap.count, ...(shares ? { shares: shares.map((_, s) => `${stems.get(g.name)!}.M.share${s + 1}.npy`) } : {}) };
  });
  const manifestPath = path.join(dir, 'stats.json');
  sweepStaleTemps(manifestPath); // manifests half-written by processes that were killed
  const tmp = `${manifestPath}.tmp-${process.pid}-${Date.now()}`;
  try {
    fs.writeFileSync(tmp, `${JSON.stringify(manifest, null, 2)}\n`, { flag: 'wx' });
    fs.renameSync(tmp, manifestPath);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new FileAccessError(`cannot write "${manifestPath}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: manifestPath });
  }
  if (values.json) {
    io.stdout.write(`${JSON.stringify({ model: positionals[0], examples, meanLoss, manifest: path.relative(io.cwd ?? process.cwd(), manifestPath), sites: manifest.sites }, null, 2)}\n`);
  } else {
    io.stdout.write(formatTable(['group', 'M shape', 'examples', 'file'], rows));
    io.stdout.write(`mean loss ${formatNumber(meanLoss)} over ${examples} examples; wrote ${path.relative(io.cwd ?? process.cwd(), manifestPath) || manifestPath}\n`);
  }
  return EXIT_OK;
}

/** `gradmax onnx widen MODEL --data ...`: returns the exit code (errors are thrown; the dispatcher reports them). */
export async function runWidenFromDataCommand(argv: string[], io: CliIO): Promise<number> {
  const cmd = 'gradmax onnx widen';
  const { values, positionals } = parseCommand(
    cmd,
    argv,
    {
      ...DATA_FLAGS,
      site: { type: 'string', multiple: true },
      add: { type: 'string', multiple: true },
      // -o/--output is the output model (as in "gradmax onnx widen"); --loss-output names the loss's model output.
      output: { type: 'string', short: 'o' },
      strategy: { type: 'string' },
      seed: { type: 'string' },
      'no-verify': { type: 'boolean' },
      dim: { type: 'string', multiple: true },
      'max-memory': { type: 'string' },
    },
    { min: 1, max: 1, names: 'MODEL' },
  );
  await ensureStrategies();
  if (values.help) {
    io.stdout.write(WIDEN_FROM_DATA_HELP.replace('{strategies}', listStrategies().join(', ')));
    return EXIT_OK;
  }
  const { sites: sitesArg, counts, input, output } = parseWidenTargets(cmd, io, values, positionals[0]!);
  const seed = typeof values.seed === 'string' ? parseIntegerFlag(cmd, '--seed', values.seed) : 0;
  const strategy: GrowthStrategy = createStrategy(typeof values.strategy === 'string' ? values.strategy : 'gradmax');
  const spec = parseData(cmd, io, values);
  const dims = parsePairs(cmd, '--dim', stringList(values.dim));

  const model = loadModel(input);
  const all = findGroups(model);
  const targets = sitesArg.map((s) => findGroup(model, s, all));
  checkGrowthBudget(cmd, targets, counts, typeof values['max-memory'] === 'string' ? parseSize(cmd, '--max-memory', values['max-memory']) : DEFAULT_MAX_MEMORY);
  const requests: GrowRequest[] = targets.map((g, i) => ({ site: g.growable ? g.name : sitesArg[i]!, count: counts[i]! }));
  let meanLoss: number | undefined;
  if (strategy.needs.moment) {
    if (new Set(targets.map((g) => g.name)).size !== targets.length) throw new UsageError(`${cmd}: a group may appear once when its statistics come from --data (statistics are computed before widening)`);
    const res = await groupStatistics(io, model, sitesArg, spec);
    meanLoss = res.meanLoss;
    requests.forEach((r, i) => (r.statistics = res.stats.get(res.groups[i]!.name)!));
  } else if (strategy.needs.samples) {
    throw new InvalidArgumentError(`strategy "${strategy.name}" needs retained (h, g) samples, which the probe does not produce; use --stats with sample files`, { strategy: strategy.name });
  }
  const results = growModel(model, requests, { strategy, seed });
  // Symbolic dims without --dim are chosen by verification; OUT is written only after verification passed.
  const vdims: Record<string, number> = {};
  for (const [k, v] of dims) vdims[k] = parseIntegerFlag(cmd, `--dim ${k}`, v, 1);
  const staged = saveStaged(io, model, input, output, values.output as string);
  let report: VerifyReport | undefined;
  let failure: number | undefined;
  try {
    if (!values['no-verify']) {
      noteVerifying(io, input, output);
      report = await verifyModels(input, staged.file, { dims: vdims, seed, ...(spec.executionProvider ? { executionProvider: spec.executionProvider } : {}) });
    }
    failure = verificationFailure(io, cmd, report, strategy, values.output as string);
    if (failure === undefined) staged.commit();
  } finally {
    staged.discard();
  }
  if (values.json) {
    io.stdout.write(
      `${JSON.stringify(
        {
          model: positionals[0],
          output: values.output,
          strategy: strategy.name,
          examples: spec.x.shape[0],
          meanLoss: meanLoss ?? null,
          sites: results.map((r) => ({ site: r.site, unitsBefore: r.unitsBefore, unitsAfter: r.unitsAfter, singularValues: r.newUnits.report.singularValues ?? null, notes: [...r.notes, ...r.newUnits.report.notes] })),
          verification: report ?? null,
        },
        (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v),
        2,
      )}\n`,
    );
  } else {
    io.stdout.write(formatTable(['group', 'strategy', 'units', 'added'], results.map((r) => [r.site, strategy.name, `${r.unitsBefore} -> ${r.unitsAfter}`, r.unitsAfter - r.unitsBefore])));
    for (const r of results) for (const n of r.newUnits.report.notes) io.stdout.write(`note (${r.site}): ${n}\n`);
    if (meanLoss !== undefined) io.stdout.write(`statistics from ${spec.x.shape[0]} examples (mean loss ${formatNumber(meanLoss)})\n`);
    if (report) {
      io.stdout.write(`verification (${describeVerification(report)}):\n`);
      io.stdout.write(
        formatTable(
          ['output', 'max |diff|', 'max rel', 'ok'],
          report.outputs.map((o) => [o.name, formatNumber(o.maxAbs), formatNumber(o.maxRel), o.ok ? 'yes' : 'NO']),
        ),
      );
    }
    if (failure === undefined) io.stdout.write(`wrote ${values.output}\n`);
  }
  return failure ?? EXIT_OK;
}

/** `gradmax onnx advise ...`: returns the exit code (errors are thrown; the dispatcher reports them). */
export async function runAdviseCommand(argv: string[], io: CliIO): Promise<number> {
  const cmd = 'gradmax onnx advise';
  const { values, positionals } = parseCommand(
    cmd,
    argv,
    { ...DATA_FLAGS, k: { type: 'string' }, top: { type: 'string' }, site: { type: 'string', multiple: true } },
    { min: 1, max: 1, names: 'MODEL' },
  );
  if (values.help) {
    io.stdout.write(ADVISE_HELP);
    return EXIT_OK;
  }
  const k = typeof values.k === 'string' ? parseIntegerFlag(cmd, '--k', values.k, 1) : 8;
  const top = typeof values.top === 'string' ? parseIntegerFlag(cmd, '--top', values.top, 1) : 3;
  const spec = parseData(cmd, io, values);
  const model = loadModel(resolvePath(io, positionals[0]!));
  const all = findSites(model);
  const sitesArg = stringList(values.site);
  const sites = sitesArg.length ? sitesArg.map((s) => findSite(model, s, all).name) : undefined;
  const bar = createProgressBar(io, 'statistics', spec.x.shape[0]!, { unit: 'examples' });
  const res = await adviseGrowth(model, {
    data: batches(model, spec),
    loss: { kind: spec.loss, ...(spec.lossOutput ? { output: spec.lossOutput } : {}) },
    k,
    top,
    ...(sites ? { sites } : {}),
    batchSize: spec.batchSize,
    ...(spec.executionProvider ? { executionProvider: spec.executionProvider } : {}),
    ...spec.sketch,
    onProgress: (p) => bar.update(p.examples),
  });
  bar.finish();
  notePlacement(io, res.placement);
  if (values.json) {
    io.stdout.write(`${JSON.stringify({ model: positionals[0], examples: res.examples, meanLoss: res.meanLoss, k, advice: res.advice, skipped: res.skipped }, null, 2)}\n`);
    return EXIT_OK;
  }
  const sigmaHeads = Array.from({ length: top }, (_, i) => `s${i + 1}`);
  io.stdout.write(
    formatTable(
      ['rank', 'group', 'kind', 'units', 'M shape', 'M', ...sigmaHeads, `gain(${k})`, 'per unit', 'share'],
      res.advice.map((a, i) => [
        i + 1,
        a.site,
        a.kind,
        a.units ?? '-',
        `[${a.shape[0]}, ${a.shape[1]}]`,
        a.statistic,
        ...sigmaHeads.map((_, j) => (a.singularValues[j] !== undefined ? formatNumber(a.singularValues[j]!) : '-')),
        formatNumber(a.gain),
        formatNumber(a.gainPerUnit),
        `${(100 * a.share).toFixed(1)}%`,
      ]),
    ),
  );
  io.stdout.write(`gain(K) = sum of the K largest squared singular values of M (GradMax's first-order gain of K new units); share = gain / ||M||_F^2; from ${res.examples} examples (mean loss ${formatNumber(res.meanLoss)})${res.advice.some((a) => a.statistic === 'sketch') ? '; M "sketch": singular values of a randomized sketch of M (approximate) and ||M||_F^2 estimated' : ''}\n`);
  const refused = res.skipped.filter((s) => s.growable);
  if (refused.length) {
    io.stdout.write('\ngrowable, but the probe cannot compute M exactly:\n');
    for (const s of refused) io.stdout.write(`  ${s.site}: ${s.reason}\n`);
  }
  const other = res.skipped.length - refused.length;
  if (other) io.stdout.write(`${other} other group(s) are not growable; "gradmax onnx inspect" says why\n`);
  return EXIT_OK;
}
