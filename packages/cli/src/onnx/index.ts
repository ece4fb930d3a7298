/**
 * `gradmax onnx inspect | widen | verify`.
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createStrategy, gradmax, gradmaxOpt, hasStrategy, listStrategies, registerStrategy, type GrowthStrategy } from '@gradmax/core';
import {
  FileAccessError,
  findSite,
  findSites,
  growModel,
  loadModel,
  makeInputs,
  readStatisticsManifest,
  statisticsFromNpy,
  verifyModels,
  type GrowRequest,
  type OnnxSite,
  type VerifyOptions,
  type VerifyReport,
} from '@gradmax/onnx';
import { UsageError, parseCommand, parseIntegerFlag, parseNumberFlag, parsePairs, stringList } from '../shared/args.js';
import { reportError } from '../shared/errors.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, type CliIO } from '../shared/io.js';
import { formatNumber, formatTable } from '../shared/table.js';
import { registerAllStrategies } from '@gradmax/strategies';
import { parseWidenTargets } from './widen-targets.js';
import { loadWithProgress, noteVerifying, saveWithProgress, verificationFailure } from './model-io.js';


const ONNX_HELP = `Usage: gradmax onnx <command> [options]

Widen layers of exported ONNX models without changing what they compute.

Commands:
  inspect MODEL          list growth sites, shapes, in-between ops, and why a layer is not growable
  widen MODEL -o OUT     add units to sites with a growth strategy, verify, write OUT atomically
  verify A B             run two models in onnxruntime on the same inputs and compare the outputs
  stats MODEL -o DIR     compute growth statistics from labelled data (generated backward graph) as .npy
  advise MODEL           rank the sites by GradMax's first-order gain of adding units, from labelled data

Run "gradmax onnx <command> --help" for the options of a command.
Exit codes: 0 ok, 1 verification failed, 2 usage or input error.
`;

const INSPECT_HELP = `Usage: gradmax onnx inspect MODEL [--json]

Lists one entry per candidate site (current layer -> next layer), growable or not, with the ops between the
layers, the widths, and for every layer that cannot grow, the reason.

Options:
  --json       print {"model", "sites": [{"name", "kind", "growable", "reason", ...}]}
  -h, --help   show this help
`;

const WIDEN_HELP = `Usage: gradmax onnx widen MODEL --site NAME --add K [--site NAME --add K ...] -o OUT [options]
       or, with statistics computed from labelled data: gradmax onnx widen MODEL --data X.npy ... (see
       "gradmax onnx widen --data X.npy --help")

Adds K units to each site (sites are grown in the order given) and writes OUT atomically (temporary file +
rename; external data goes to OUT.data). MODEL is never modified and OUT may not be MODEL. Statistics must
match each site's shapes when it grows: for overlapping sites with statistics, run widen once per site.

Options:
  --site NAME                 site name from "gradmax onnx inspect" (or its current layer's node name); repeatable
  --add K                     units to add at the matching --site; repeatable
  -o, --output OUT            output model path (required)
  --strategy NAME             growth strategy (default: gradmax); registered: {strategies}
  --stats FILE                statistics: a JSON manifest {"sites": {NAME: {"moment": "M.npy", ...}}}
                              or, with a single --site, the growth matrix M as a .npy file [fanOut x fanIn]
  --seed N                    seed of the strategy and of random verification inputs (default 0)
  --no-verify                 skip the onnxruntime check of the widened model
  --inputs [NAME=]FILE.npy    verification inputs (default: seeded random inputs of the declared shapes)
  --dim NAME=VALUE            value of a symbolic input dimension for random inputs, e.g. --dim batch=2
  --execution-provider EP     onnxruntime execution provider (default: cpu)
  --json                      print the summary as JSON
  -h, --help                  show this help
`;

const VERIFY_HELP = `Usage: gradmax onnx verify A B [options]

Runs A and B in onnxruntime-node on the same inputs and reports, per output, the max absolute difference and
the max difference relative to A's largest magnitude. Exit code 1 when an output exceeds the tolerance.

Options:
  --inputs [NAME=]FILE.npy    inputs (default: seeded random inputs of the declared shapes)
  --dim NAME=VALUE            value of a symbolic input dimension, e.g. --dim batch=2
  --seed N                    seed of the random inputs (default 0)
  --atol X                    allowed max |diff| (default 1e-5; float16 outputs: relative only)
  --rtol X                    allowed max |diff| / max |A| (default 1e-5; float16 outputs: 1e-2)
  --execution-provider EP     onnxruntime execution provider (default: cpu)
  --json                      print the report as JSON
  -h, --help                  show this help
`;

/**
 * Registers every strategy of `@gradmax/strategies` (a dependency of the CLI) by name, idempotently. The `gradmax`
 * entry point already does this when it starts; call it when using a command function on its own.
 */
export async function ensureStrategies(): Promise<void> {
  registerAllStrategies();
  // The core's GradMax pair, should the catalogue ever drop them.
  if (!hasStrategy('gradmax')) registerStrategy('gradmax', gradmax);
  if (!hasStrategy('gradmaxOpt')) registerStrategy('gradmaxOpt', gradmaxOpt);
}

/** Entry point of `gradmax onnx ...`; returns the exit code. */
export async function runOnnx(argv: string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    if (sub === undefined) {
      io.stderr.write('gradmax onnx: missing command (inspect, widen, verify, stats, advise); see gradmax onnx --help\n');
      return EXIT_USAGE;
    }
    if (sub === '--help' || sub === '-h' || sub === 'help') {
      io.stdout.write(ONNX_HELP);
      return EXIT_OK;
    }
    if (sub === 'inspect') return await inspectCommand(rest, io);
    if (sub === 'stats') return await (await import('./probe-commands.js')).runStatsCommand(rest, io);
    if (sub === 'advise') return await (await import('./probe-commands.js')).runAdviseCommand(rest, io);
    if (sub === 'widen' && rest.some((a) => a === '--data' || a.startsWith('--data='))) return await (await import('./probe-commands.js')).runWidenFromDataCommand(rest, io);
    if (sub === 'widen') return await widenCommand(rest, io);
    if (sub === 'verify') return await verifyCommand(rest, io);
    throw new UsageError(`gradmax onnx: unknown command "${sub}" (commands: inspect, widen, verify, stats, advise)`);
  } catch (e) {
    return reportError(io, e, `gradmax onnx${sub && ['inspect', 'widen', 'verify', 'stats', 'advise'].includes(sub) ? ` ${sub}` : ''}`);
  }
}

function resolvePath(io: CliIO, p: string): string {
  return path.resolve(io.cwd ?? process.cwd(), p);
}

function siteJson(s: OnnxSite): Record<string, unknown> {
  const { name, kind, growable, reason, pattern, current, next, units, fanIn, fanOut, dataType, currentWeightShape, nextWeightShape, between, activation, exactGeometry, notes } = s;
  return {
    name,
    kind,
    growable,
    reason: reason ?? null,
    pattern,
    current,
    next: next ?? null,
    units: units ?? null,
    fanIn: fanIn ?? null,
    fanOut: fanOut ?? null,
    dataType: dataType ?? null,
    currentWeightShape: currentWeightShape ?? null,
    nextWeightShape: nextWeightShape ?? null,
    between,
    activation: activation ? { name: activation.name, f0: Number.isFinite(activation.f0) ? activation.f0 : null, df0: Number.isFinite(activation.df0) ? activation.df0 : null } : null,
    exactGeometry: exactGeometry ?? null,
    notes,
  };
}

async function inspectCommand(argv: string[], io: CliIO): Promise<number> {
  const cmd = 'gradmax onnx inspect';
  const { values, positionals } = parseCommand(cmd, argv, { json: { type: 'boolean' } }, { min: 1, max: 1, names: 'MODEL' });
  if (values.help) {
    io.stdout.write(INSPECT_HELP);
    return EXIT_OK;
  }
  const file = resolvePath(io, positionals[0]!);
  const model = loadWithProgress(io, file);
  const sites = findSites(model);
  if (values.json) {
    io.stdout.write(`${JSON.stringify({ model: positionals[0], sites: sites.map(siteJson) }, null, 2)}\n`);
    return EXIT_OK;
  }
  io.stdout.write(`${positionals[0]}: ${sites.length} candidate site${sites.length === 1 ? '' : 's'}, ${sites.filter((s) => s.growable).length} growable\n\n`);
  if (sites.length) {
    io.stdout.write(
      formatTable(
        ['site', 'kind', 'growable', 'units', 'fanIn', 'fanOut', 'type', 'weights', 'between'],
        sites.map((s) => [
          s.name,
          s.kind,
          s.growable ? 'yes' : 'no',
          s.units ?? '-',
          s.fanIn ?? '-',
          s.fanOut ?? '-',
          s.dataType ?? '-',
          s.currentWeightShape ? `[${s.currentWeightShape.join('x')}] -> [${s.nextWeightShape?.join('x') ?? '?'}]` : '-',
          s.between.map((b) => b.opType).join(',') || '-',
        ]),
      ),
    );
  }
  const refused = sites.filter((s) => !s.growable);
  if (refused.length) {
    io.stdout.write('\nnot growable:\n');
    for (const s of refused) io.stdout.write(`  ${s.name}: ${s.reason}\n`);
  }
  const notes = sites.filter((s) => s.notes.length);
  if (notes.length) {
    io.stdout.write('\nnotes:\n');
    for (const s of notes) for (const n of s.notes) io.stdout.write(`  ${s.name}: ${n}\n`);
  }
  return EXIT_OK;
}

function verifyOptions(cmd: string, io: CliIO, values: Record<string, unknown>, modelInputs: string[]): VerifyOptions {
  const opts: VerifyOptions = {};
  const inputs = stringList(values.inputs as string[]);
  if (inputs.length) {
    opts.inputs = {};
    for (const item of inputs) {
      const at = item.indexOf('=');
      if (at > 0) opts.inputs[item.slice(0, at)] = resolvePath(io, item.slice(at + 1));
      else if (modelInputs.length === 1) opts.inputs[modelInputs[0]!] = resolvePath(io, item);
      else throw new UsageError(`${cmd}: the model has ${modelInputs.length} inputs (${modelInputs.join(', ')}); use --inputs NAME=FILE.npy`);
    }
  }
  const dims = parsePairs(cmd, '--dim', stringList(values.dim as string[]));
  if (dims.size) {
    opts.dims = {};
    for (const [k, v] of dims) opts.dims[k] = parseIntegerFlag(cmd, `--dim ${k}`, v, 1);
  }
  if (typeof values.seed === 'string') opts.seed = parseIntegerFlag(cmd, '--seed', values.seed);
  if (typeof values['execution-provider'] === 'string') opts.executionProvider = values['execution-provider'];
  if (typeof values.atol === 'string') opts.atol = parseNumberFlag(cmd, '--atol', values.atol);
  if (typeof values.rtol === 'string') opts.rtol = parseNumberFlag(cmd, '--rtol', values.rtol);
  return opts;
}

function modelInputNames(model: { graph: { input: { name: string }[]; initializer: { name: string }[] } }): string[] {
  const inits = new Set(model.graph.initializer.map((t) => t.name));
  return model.graph.input.map((i) => i.name).filter((n) => !inits.has(n));
}

function verifyTable(report: VerifyReport): string {
  return formatTable(
    ['output', 'shape', 'max |diff|', 'max rel', 'ok'],
    report.outputs.map((o) => [o.name, `[${o.shape.join(', ')}]`, formatNumber(o.maxAbs), formatNumber(o.maxRel), o.ok ? 'yes' : 'NO']),
  );
}

async function widenCommand(argv: string[], io: CliIO): Promise<number> {
  const cmd = 'gradmax onnx widen';
  const { values, positionals } = parseCommand(
    cmd,
    argv,
    {
      site: { type: 'string', multiple: true },
      add: { type: 'string', multiple: true },
      output: { type: 'string', short: 'o' },
      strategy: { type: 'string' },
      stats: { type: 'string' },
      seed: { type: 'string' },
      'no-verify': { type: 'boolean' },
      inputs: { type: 'string', multiple: true },
      dim: { type: 'string', multiple: true },
      'execution-provider': { type: 'string' },
      json: { type: 'boolean' },
    },
    { min: 1, max: 1, names: 'MODEL' },
  );
  await ensureStrategies();
  if (values.help) {
    io.stdout.write(WIDEN_HELP.replace('{strategies}', listStrategies().join(', ')));
    return EXIT_OK;
  }
  const { sites: sitesArg, counts, input, output } = parseWidenTargets(cmd, io, values, positionals[0]!);
  const seed = typeof values.seed === 'string' ? parseIntegerFlag(cmd, '--seed', values.seed) : 0;
  const strategyName = typeof values.strategy === 'string' ? values.strategy : 'gradmax';
  const strategy: GrowthStrategy = createStrategy(strategyName);
  const verify = !values['no-verify'];

  const model = loadWithProgress(io, input);
  const allSites = findSites(model);
  const siteNames = sitesArg.map((s) => findSite(model, s, allSites).name);
  const requests: GrowRequest[] = siteNames.map((site, i) => ({ site, count: counts[i]! }));
  if (typeof values.stats === 'string') {
    const statsFile = resolvePath(io, values.stats);
    if (statsFile.endsWith('.npy')) {
      if (requests.length !== 1) throw new UsageError(`${cmd}: a .npy --stats file serves a single --site; use a JSON manifest for several sites`);
      const s = allSites.find((x) => x.name === siteNames[0])!;
      requests[0]!.statistics = statisticsFromNpy({ name: s.name, fanIn: s.fanIn ?? 0, fanOut: s.fanOut ?? 0 }, { moment: statsFile });
    } else {
      const manifest = readStatisticsManifest(statsFile);
      for (const r of requests) {
        const spec = manifest.get(r.site) ?? manifest.get(allSites.find((x) => x.name === r.site)!.current);
        if (!spec) continue;
        const s = findSites(model).find((x) => x.name === r.site)!;
        r.statistics = statisticsFromNpy({ name: s.name, fanIn: s.fanIn ?? 0, fanOut: s.fanOut ?? 0 }, spec);
      }
    }
  }
  const inputNames = modelInputNames(model);
  const results = growModel(model, requests, { strategy, seed });
  // Check verification inputs (symbolic dims, bad --inputs) before writing anything.
  let vopts: VerifyOptions | undefined;
  if (verify) {
    vopts = verifyOptions(cmd, io, { ...values, seed: String(seed) }, inputNames);
    makeInputs(loadModel(input), vopts);
  }
  saveWithProgress(io, model, input, output);

  let report: VerifyReport | undefined;
  if (verify) {
    noteVerifying(io, input, output);
    report = await verifyModels(input, output, vopts);
  }
  if (values.json) {
    io.stdout.write(
      `${JSON.stringify(
        {
          model: positionals[0],
          output: values.output,
          strategy: strategy.name,
          functionPreserving: strategy.functionPreserving,
          sites: results.map((r) => ({ site: r.site, unitsBefore: r.unitsBefore, unitsAfter: r.unitsAfter, tensors: r.tensors, notes: [...r.notes, ...r.newUnits.report.notes] })),
          verification: report ?? null,
        },
        null,
        2,
      )}\n`,
    );
  } else {
    io.stdout.write(formatTable(['site', 'strategy', 'units', 'added', 'tensors written'], results.map((r) => [r.site, strategy.name, `${r.unitsBefore} -> ${r.unitsAfter}`, r.unitsAfter - r.unitsBefore, r.tensors.join(', ')])));
    for (const r of results) for (const n of r.newUnits.report.notes) io.stdout.write(`note (${r.site}): ${n}\n`);
    io.stdout.write(`wrote ${values.output}${fs.existsSync(`${output}.data`) ? ` (+ ${path.basename(output)}.data)` : ''}\n`);
    if (report) {
      io.stdout.write(`\nverification (${report.executionProvider}, inputs ${Object.entries(report.inputs).map(([k, v]) => `${k}[${v.join(',')}]`).join(' ')}):\n`);
      io.stdout.write(verifyTable(report));
      if (!report.ok && !strategy.functionPreserving) io.stdout.write(`strategy "${strategy.name}" is not function-preserving: differences are expected\n`);
    }
  }
  return verificationFailure(io, cmd, report, strategy) ?? EXIT_OK;
}

async function verifyCommand(argv: string[], io: CliIO): Promise<number> {
  const cmd = 'gradmax onnx verify';
  const { values, positionals } = parseCommand(
    cmd,
    argv,
    {
      inputs: { type: 'string', multiple: true },
      dim: { type: 'string', multiple: true },
      seed: { type: 'string' },
      atol: { type: 'string' },
      rtol: { type: 'string' },
      'execution-provider': { type: 'string' },
      json: { type: 'boolean' },
    },
    { min: 2, max: 2, names: 'models A and B' },
  );
  if (values.help) {
    io.stdout.write(VERIFY_HELP);
    return EXIT_OK;
  }
  const a = resolvePath(io, positionals[0]!);
  const b = resolvePath(io, positionals[1]!);
  for (const f of [a, b]) if (!fs.existsSync(f)) throw new FileAccessError(`cannot read model file "${path.relative(io.cwd ?? process.cwd(), f) || f}": ENOENT`, { file: f });
  const model = loadWithProgress(io, a);
  const opts = verifyOptions(cmd, io, values, modelInputNames(model));
  const report = await verifyModels(model, b, opts);
  if (values.json) io.stdout.write(`${JSON.stringify(report, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2)}\n`);
  else io.stdout.write(verifyTable(report));
  if (!report.ok) {
    const worst = report.outputs.filter((o) => !o.ok)[0]!;
    io.stderr.write(`${cmd}: output "${worst.name}" differs by ${formatNumber(worst.maxAbs)} (relative ${formatNumber(worst.maxRel)}), above the tolerance\n`);
    return EXIT_FAILED;
  }
  return EXIT_OK;
}
