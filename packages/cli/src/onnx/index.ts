/**
 * `gradmax onnx inspect | widen | verify`.
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createStrategy, gradmax, gradmaxOpt, hasStrategy, listStrategies, registerStrategy, type GrowthStrategy } from '@gradmax/core';
import {
  FileAccessError,
  findGroup,
  findGroups,
  findSites,
  growModel,
  readStatisticsManifest,
  statisticsFromNpy,
  symbolicDims,
  verifyModels,
  type OnnxModel,
  type GrowRequest,
  type OnnxGroup,
  type OnnxSite,
  type VerifyOptions,
  type VerifyReport,
} from '@gradmax/onnx';
import { UsageError, parseCommand, parseIntegerFlag, parseNumberFlag, parsePairs, stringList } from '../shared/args.js';
import { reportError } from '../shared/errors.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, type CliIO } from '../shared/io.js';
import { formatNumber, formatTable } from '../shared/table.js';
import { registerAllStrategies } from '@gradmax/strategies';
import { DEFAULT_MAX_MEMORY, checkGrowthBudget, parseSize, parseWidenTargets } from './widen-targets.js';
import { describeVerification, loadWithProgress, noteVerifying, saveStaged, verificationFailure } from './model-io.js';


const ONNX_HELP = `Usage: gradmax onnx <command> [options]

Widen layers of exported ONNX models without changing what they compute.

Commands:
  inspect MODEL          list channel groups (layers that grow together), their members, and why a layer cannot grow
  widen MODEL -o OUT     add units to sites with a growth strategy, verify, write OUT atomically
  verify A B             run two models in onnxruntime on the same inputs and compare the outputs
  stats MODEL -o DIR     compute growth statistics from labelled data (generated backward graph) as .npy
  advise MODEL           rank the sites by GradMax's first-order gain of adding units, from labelled data

Run "gradmax onnx <command> --help" for the options of a command.
Exit codes: 0 ok, 1 verification failed, 2 usage or input error.
`;

const INSPECT_HELP = `Usage: gradmax onnx inspect MODEL [--json]

Lists one entry per channel group: the layers whose output channels must grow together (producers, e.g. every
conv feeding a residual stage), the ops the channels pass through, and the layers that read them (consumers),
growable or not, with the reason naming the node that blocks growth. A group is named after its first producer;
"widen --site" accepts that name, any producer's name, or "PRODUCER->CONSUMER".

Options:
  --json       print {"model", "groups": [{"name", "growable", "reason", "units", "multiple", "members":
               {"producers", "passthrough", "consumers"}, ...}], "sites": [...]} ("sites" are the layer pairs
               of earlier versions)
  -h, --help   show this help
`;

const WIDEN_HELP = `Usage: gradmax onnx widen MODEL --site NAME --add K [--site NAME --add K ...] -o OUT [options]
       or, with statistics computed from labelled data: gradmax onnx widen MODEL --data X.npy ... (see
       "gradmax onnx widen --data X.npy --help")

Adds K units to each site (sites are grown in the order given), verifies the result in onnxruntime on 8
random samples at two input scales, and only then writes OUT (temporary file + rename; external data goes to
OUT.data): after any failure OUT is left as it was. OUT must be a regular file or not exist. MODEL is never modified and OUT may not be MODEL. Statistics must
match each site's shapes when it grows: for overlapping sites with statistics, run widen once per site.

Options:
  --site NAME                 group from "gradmax onnx inspect" (its name, a producer's name, or PRODUCER->CONSUMER);
                              repeatable; grouped convs need K in multiples of the group's "step"
  --add K                     units to add at the matching --site; repeatable
  -o, --output OUT            output model path (required)
  --strategy NAME             growth strategy (default: gradmax, which needs statistics: --stats, or --data to compute
                              them; without data use a strategy that needs none, e.g. randomOutgoingZero);
                              registered: {strategies}
  --stats FILE                statistics: a JSON manifest {"sites": {NAME: {"moment": "M.npy", ...}}}
                              or, with a single --site, the growth matrix M as a .npy file [fanOut x fanIn]
  --seed N                    seed of the strategy and of random verification inputs (default 0)
  --no-verify                 skip the onnxruntime check of the widened model
  --inputs [NAME=]FILE.npy    verification inputs (default: seeded random inputs of the declared shapes)
  --dim NAME=VALUE            value of a symbolic input dimension (default: chosen by verification and printed:
                              batch-like dims hold all 8 samples, others come from the model's weights or a
                              default such as 32 for image sizes); a dim without a name is INPUT:AXIS
  --execution-provider EP     onnxruntime execution provider: cpu (default), webgpu (needs a Vulkan driver)
  --max-memory SIZE           refuse growth whose new weights need more working memory than SIZE (default 4G)
  --json                      print the summary as JSON
  -h, --help                  show this help
`;

const VERIFY_HELP = `Usage: gradmax onnx verify A B [options]

Runs A and B in onnxruntime-node on the same inputs and reports, per output, the max absolute difference and
the max difference relative to A's largest magnitude. Exit code 1 when an output exceeds the tolerance.

Options:
  --inputs [NAME=]FILE.npy    inputs (default: 8 seeded random samples of the declared shapes, half of them x10)
  --dim NAME=VALUE            value of a symbolic input dimension (default: chosen and printed, as for widen)
  --seed N                    seed of the random inputs (default 0)
  --atol X                    allowed max |diff| (default 1e-5; float16 outputs: relative only)
  --rtol X                    allowed max |diff| / max |A| (default 1e-5; float16 outputs: 1e-2)
  --execution-provider EP     onnxruntime execution provider: cpu (default), webgpu (needs a Vulkan driver)
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
    if (sub === 'widen' && rest.some((a) => a === '--data' || a.startsWith('--data='))) {
      await ensureStrategies(); // the default strategy (gradmax) must be registered in a fresh process too
      return await (await import('./probe-commands.js')).runWidenFromDataCommand(rest, io);
    }
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

function groupJson(g: OnnxGroup): Record<string, unknown> {
  const a = g.activation;
  return {
    name: g.name,
    growable: g.growable,
    reason: g.reason ?? null,
    units: g.units ?? null,
    multiple: g.multiple ?? null,
    fanIn: g.fanIn ?? null,
    fanOut: g.fanOut ?? null,
    dataType: g.dataType ?? null,
    members: g.members,
    activation: a ? { name: a.name, f0: Number.isFinite(a.f0) ? a.f0 : null, df0: Number.isFinite(a.df0) ? a.df0 : null } : null,
    incomingBlocks: g.incomingBlocks ?? null,
    outgoingBlocks: g.outgoingBlocks ?? null,
    notes: g.notes,
  };
}

function names(list: string[], max = 48): string {
  const all = list.join(', ');
  if (all.length <= max) return all || '-';
  let out = '';
  let n = 0;
  for (const x of list) {
    if (out && out.length + x.length + 2 > max) break;
    out = out ? `${out}, ${x}` : x;
    n++;
  }
  return `${out || list[0]} (+${list.length - Math.max(n, 1)})`;
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
  const groups = findGroups(model);
  if (values.json) {
    io.stdout.write(`${JSON.stringify({ model: positionals[0], groups: groups.map(groupJson), sites: findSites(model).map(siteJson) }, null, 2)}\n`);
    return EXIT_OK;
  }
  const ok = groups.filter((g) => g.growable);
  const layers = groups.reduce((n, g) => n + g.members.producers.length, 0);
  const growableLayers = ok.reduce((n, g) => n + g.members.producers.length, 0);
  io.stdout.write(`${positionals[0]}: ${groups.length} group${groups.length === 1 ? '' : 's'}, ${ok.length} growable (${growableLayers} of ${layers} layers can grow)\n\n`);
  if (groups.length) {
    io.stdout.write(
      formatTable(
        ['group', 'growable', 'units', 'step', 'producers', 'consumers', 'through', 'f(0)', "f'(0)"],
        groups.map((g) => [
          g.name,
          g.growable ? 'yes' : 'no',
          g.units ?? '-',
          g.multiple ?? '-',
          g.growable ? names(g.members.producers) : '-',
          g.growable ? names(g.members.consumers) : '-',
          g.growable ? g.members.passthrough.length : '-',
          g.activation ? formatNumber(g.activation.f0) : '-',
          g.activation ? formatNumber(g.activation.df0) : '-',
        ]),
      ),
    );
  }
  const refused = groups.filter((g) => !g.growable);
  if (refused.length) {
    io.stdout.write('\nnot growable:\n');
    for (const g of refused) io.stdout.write(`  ${g.name}: ${g.reason}\n`);
  }
  const notes = groups.filter((g) => g.notes.length);
  if (notes.length) {
    io.stdout.write('\nnotes:\n');
    for (const g of notes) for (const n of g.notes) io.stdout.write(`  ${g.name}: ${n}\n`);
  }
  return EXIT_OK;
}

function verifyOptions(cmd: string, io: CliIO, values: Record<string, unknown>, modelInputs: string[], model?: OnnxModel): VerifyOptions {
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
    const known = model ? symbolicDims(model).map((d) => d.key) : undefined;
    for (const [k, v] of dims) {
      if (known && !known.includes(k)) {
        throw new UsageError(`${cmd}: --dim ${k} names no symbolic input dimension of the model (${known.length ? `symbolic: ${known.join(', ')}` : 'all input dimensions are fixed'})`);
      }
      opts.dims[k] = parseIntegerFlag(cmd, `--dim ${k}`, v, 1);
    }
  }
  if (typeof values.seed === 'string') opts.seed = parseIntegerFlag(cmd, '--seed', values.seed);
  if (typeof values['execution-provider'] === 'string') opts.executionProvider = values['execution-provider'];
  if (typeof values.atol === 'string') opts.atol = parseNumberFlag(cmd, '--atol', values.atol, 0);
  if (typeof values.rtol === 'string') opts.rtol = parseNumberFlag(cmd, '--rtol', values.rtol, 0);
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
      'max-memory': { type: 'string' },
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
  const allGroups = findGroups(model);
  const targets = sitesArg.map((s) => findGroup(model, s, allGroups));
  const maxMemory = typeof values['max-memory'] === 'string' ? parseSize(cmd, '--max-memory', values['max-memory']) : DEFAULT_MAX_MEMORY;
  checkGrowthBudget(cmd, targets, counts, maxMemory);
  const requests: GrowRequest[] = targets.map((g, i) => ({ site: g.growable ? g.name : sitesArg[i]!, count: counts[i]! }));
  if (typeof values.stats === 'string') {
    const statsFile = resolvePath(io, values.stats);
    // Statistics are keyed by the group name, the name given on the command line, or the pair "producer->consumer".
    const keys = (g: OnnxGroup, i: number) => [g.name, sitesArg[i]!, `${g.members.producers[0]}->${g.members.consumers[0]}`];
    if (statsFile.endsWith('.npy')) {
      if (requests.length !== 1) throw new UsageError(`${cmd}: a .npy --stats file serves a single --site; use a JSON manifest for several sites`);
      const g = targets[0]!;
      requests[0]!.statistics = statisticsFromNpy({ name: g.name, fanIn: g.fanIn ?? 0, fanOut: g.fanOut ?? 0 }, { moment: statsFile });
    } else {
      const manifest = readStatisticsManifest(statsFile);
      requests.forEach((r, i) => {
        const g = targets[i]!;
        const spec = keys(g, i).map((k) => manifest.get(k)).find((x) => x);
        if (spec) r.statistics = statisticsFromNpy({ name: g.name, fanIn: g.fanIn ?? 0, fanOut: g.fanOut ?? 0 }, spec);
      });
    }
  }
  const missing = requests.filter((r, i) => !r.statistics && targets[i]!.growable); // a group that cannot grow gets its own error from growModel
  if (strategy.needs.moment && missing.length) throw new UsageError(statisticsHint(cmd, strategyName, missing.map((r) => r.site), argv));
  const inputNames = modelInputNames(model);
  const vopts = verify ? verifyOptions(cmd, io, { ...values, seed: String(seed) }, inputNames, model) : undefined;
  const results = growModel(model, requests, { strategy, seed });
  // Written to a temporary folder beside OUT and moved to OUT only when everything that can fail has passed:
  // a bad execution provider, unfit --inputs, a graph onnxruntime cannot run, or a failed verification leave OUT as it was.
  const staged = saveStaged(io, model, input, output, values.output as string);
  let report: VerifyReport | undefined;
  let failure: number | undefined;
  try {
    if (vopts) {
      noteVerifying(io, input, output);
      report = await verifyModels(input, staged.file, vopts);
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
          functionPreserving: strategy.functionPreserving,
          sites: results.map((r) => ({ site: r.site, unitsBefore: r.unitsBefore, unitsAfter: r.unitsAfter, tensors: r.tensors, notes: [...r.notes, ...r.newUnits.report.notes] })),
          verification: report ?? null,
        },
        null,
        2,
      )}\n`,
    );
  } else {
    io.stdout.write(formatTable(['group', 'strategy', 'units', 'added', 'tensors written'], results.map((r) => [r.site, strategy.name, `${r.unitsBefore} -> ${r.unitsAfter}`, r.unitsAfter - r.unitsBefore, r.tensors.join(', ')])));
    for (const r of results) for (const n of r.newUnits.report.notes) io.stdout.write(`note (${r.site}): ${n}\n`);
    if (report) {
      io.stdout.write(`\nverification (${describeVerification(report)}):\n`);
      io.stdout.write(verifyTable(report));
      if (!report.ok && !strategy.functionPreserving) io.stdout.write(`strategy "${strategy.name}" is not function-preserving: differences are expected\n`);
    }
    if (failure === undefined) io.stdout.write(`wrote ${values.output}${fs.existsSync(`${output}.data`) && model.externalSources.size ? ` (+ ${path.basename(output)}.data)` : ''}\n`);
  }
  return failure ?? EXIT_OK;
}

/** `arg` quoted for a POSIX shell when it holds anything but plain path characters. */
function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * The error for a strategy that needs the growth matrix M when neither --stats nor --data gave it: the exact command
 * lines that work, i.e. the same widen with labelled data (--data/--labels/--loss), or with a strategy that needs no
 * statistics.
 */
function statisticsHint(cmd: string, strategy: string, sites: string[], argv: string[]): string {
  const base = ['gradmax', 'onnx', 'widen', ...argv].map(shellQuote).join(' ');
  const withoutStrategy: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--strategy') i++;
    else if (!argv[i]!.startsWith('--strategy=')) withoutStrategy.push(argv[i]!);
  }
  return [
    `${cmd}: strategy "${strategy}" needs the growth matrix M of ${sites.map((s) => `"${s}"`).join(', ')} (--stats FILE, or computed from labelled data with --data); for example:`,
    `  with data:    ${base} --data X.npy --labels Y.npy --loss ce   (Y: integer class labels; --loss mse for regression targets)`,
    `  without data: ${['gradmax', 'onnx', 'widen', ...withoutStrategy].map(shellQuote).join(' ')} --strategy randomOutgoingZero   (function-preserving, no statistics)`,
  ].join('\n');
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
  const opts = verifyOptions(cmd, io, values, modelInputNames(model), model);
  const report = await verifyModels(model, b, opts);
  if (values.json) io.stdout.write(`${JSON.stringify(report, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2)}\n`);
  else io.stdout.write(`verification (${describeVerification(report)}):\n${verifyTable(report)}`);
  if (!report.ok) {
    const worst = report.outputs.filter((o) => !o.ok)[0]!;
    io.stderr.write(`${cmd}: output "${worst.name}" differs by ${formatNumber(worst.maxAbs)} (relative ${formatNumber(worst.maxRel)}), above the tolerance\n`);
    return EXIT_FAILED;
  }
  return EXIT_OK;
}
