/**
 * `gradmax bench run | report | list`: the harness on the command line.
 * Exit codes: 0 success, 1 runtime failure (a run failed, unreadable results), 2 usage error.
 */
import path from 'node:path';
import {
  BACKEND_REQUESTS,
  GradmaxError,
  defaultArms,
  defaultWorkers,
  getTask,
  listTasks,
  parseBackendRequest,
  parseSeeds,
  parseShard,
  reportFromPaths,
  runBenchmark,
  strategyNames,
  type RunnerEvent,
} from './harness.js';
import { UsageError, integer, list, parseArgs, single, type FlagSpec } from './args.js';
import { createProgress } from './progress.js';

/** Where the bench commands write. Structurally compatible with the CLI's shared IO. */
export interface BenchIO {
  stdout: { write(text: string): unknown; isTTY?: boolean };
  stderr: { write(text: string): unknown };
  /** Environment (for `CI`); defaults to `process.env`. */
  env?: Record<string, string | undefined>;
}

const RUN_HELP = `Usage: gradmax bench run [options]

Runs the grid task × arm × seed (in parallel worker processes) and writes one JSON result per run
to <out>/results/, then the report (report.md + SVG plots) to <out>/.

Options:
  --task NAME        task(s) to run, repeatable or comma-separated (default: teacher-student)
                     tasks: ${'{tasks}'}
  --arm NAME         arm(s): strategies, small, big, or the task's analysis arms (default: all)
  --seeds SPEC       a count (5 → 0..4), a range (0-9) or a list (0,3,7) (default: per task)
  --preset NAME      config preset: default, tiny, ... (see gradmax bench list)
  --set KEY=VALUE    override one config key, repeatable (see gradmax bench list)
  --backend NAME     ${BACKEND_REQUESTS.join(' | ')} (default: auto = tfjs-node-gpu, tfjs-node, wasm, cpu)
  --workers N        worker processes (default: one per core, ${defaultWorkers()} here; 0 = in-process)
  --shard I/N        run only slice I of N (0 ≤ I < N), e.g. $SLURM_ARRAY_TASK_ID/8
  --out DIR          output directory (default: gradmax-report)
  --force            re-run cells whose result already exists
  --no-report        do not write the report after running
  -h, --help         show this help

Exit codes: 0 all runs succeeded, 1 some run failed, 2 bad usage.
`;

const REPORT_HELP = `Usage: gradmax bench report PATH... [options]

Merges every result file found under the given files or directories and writes report.md plus SVG plots.
Results from different backends or configs go to separate tables.

Options:
  --out DIR          where to write the report (default: the first PATH if it is a directory)
  --title TEXT       report title
  -h, --help         show this help

Exit codes: 0 report written, 1 no usable results or failed runs among them, 2 bad usage.
`;

const LIST_HELP = `Usage: gradmax bench list [--json]

Lists the tasks (protocol, presets, config keys) and the arms (strategies and baselines).
`;

const BENCH_HELP = `Usage: gradmax bench <command> [options]

Commands:
  run       run a benchmark grid (task × arm × seed), write results and the report
  report    merge result files into a Markdown report with SVG plots
  list      list tasks, presets, config keys and arms

Run "gradmax bench <command> --help" for the options of a command.
`;

const RUN_FLAGS: Record<string, FlagSpec> = {
  task: { type: 'string', repeatable: true },
  arm: { type: 'string', repeatable: true },
  seeds: { type: 'string' },
  preset: { type: 'string' },
  set: { type: 'string', repeatable: true },
  backend: { type: 'string' },
  workers: { type: 'string' },
  shard: { type: 'string' },
  out: { type: 'string' },
  force: { type: 'boolean' },
  'no-report': { type: 'boolean' },
};

function isCi(io: BenchIO): boolean {
  const env = io.env ?? process.env;
  return Boolean(env['CI']) && env['CI'] !== 'false' && env['CI'] !== '0';
}

function parseSets(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new UsageError(`gradmax bench run: --set needs KEY=VALUE, got "${v}"`);
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

function usageFromGradmax(error: unknown): never {
  // Typed argument errors raised while resolving flags are usage errors.
  if (error instanceof GradmaxError && (error.code === 'invalid-argument' || error.code === 'unknown-name')) throw new UsageError(error.message);
  throw error;
}

async function runCommand(argv: string[], io: BenchIO): Promise<number> {
  const cmd = 'gradmax bench run';
  const args = parseArgs(cmd, argv, RUN_FLAGS);
  if (args.booleans.has('help')) {
    io.stdout.write(RUN_HELP.replace('{tasks}', listTasks().map((t) => t.name).join(', ')));
    return 0;
  }
  if (args.positionals.length) throw new UsageError(`${cmd}: unexpected argument "${args.positionals[0]}" (see ${cmd} --help)`);
  const tasks = list(args, 'task') ?? ['teacher-student'];
  let backend, seeds, shard, overrides: Record<string, string>;
  try {
    tasks.forEach(getTask);
    backend = parseBackendRequest(single(args, 'backend') ?? 'auto');
    const seedText = single(args, 'seeds');
    seeds = seedText !== undefined ? parseSeeds(seedText) : undefined;
    const shardText = single(args, 'shard');
    shard = shardText !== undefined ? parseShard(shardText) : undefined;
    overrides = parseSets(args.flags.get('set') ?? []);
    const preset = single(args, 'preset') ?? 'default';
    for (const t of tasks) getTask(t).resolveConfig(preset, overrides);
    const arms = list(args, 'arm');
    if (arms) {
      for (const t of tasks) {
        const known = defaultArms(getTask(t)).concat(Object.keys(getTask(t).unsupportedArms ?? {}));
        const bad = arms.find((a) => !known.includes(a));
        if (bad) throw new UsageError(`${cmd}: unknown arm "${bad}" for task ${t}; arms: ${defaultArms(getTask(t)).join(', ')}`);
      }
    }
  } catch (error) {
    usageFromGradmax(error);
  }
  const workersText = single(args, 'workers');
  const workers = workersText !== undefined ? integer(cmd, 'workers', workersText) : undefined;
  const out = single(args, 'out') ?? 'gradmax-report';
  const preset = single(args, 'preset') ?? 'default';
  const arms = list(args, 'arm');
  const progress = createProgress(io, { tty: Boolean(io.stdout.isTTY) && !isCi(io) });
  const onEvent = (e: RunnerEvent) => {
    if (e.type === 'backend') {
      io.stdout.write(`backend: ${e.backend.name} — ${e.backend.device}${e.backend.note ? ` (${e.backend.note})` : ''}\n`);
    } else if (e.type === 'plan') {
      io.stdout.write(`grid: ${e.total} run(s)${shard ? ` in shard ${shard.index}/${shard.count}` : ''}; ${e.skipped} already done${e.skipped ? ' (use --force to re-run)' : ''}; running ${e.toRun} on ${e.workers === 0 ? 'this process' : `${e.workers} worker process(es)`}\n`);
      progress.start(e.toRun);
    } else progress.event(e);
  };
  const summary = await runBenchmark({
    tasks,
    ...(arms ? { arms } : {}),
    ...(seeds ? { seeds } : {}),
    preset,
    overrides: overrides!,
    backend: backend!,
    ...(workers !== undefined ? { workers } : {}),
    ...(shard ? { shard } : {}),
    out,
    force: args.booleans.has('force'),
    onEvent,
  });
  progress.finish();
  io.stdout.write(`done in ${(summary.wallMs / 1000).toFixed(1)} s: ${summary.ok} ok, ${summary.failed} failed, ${summary.skipped} skipped; results in ${path.join(out, 'results')}\n`);
  for (const f of summary.failures) io.stderr.write(`failed: ${f.cell.task}/${f.cell.arm}/seed ${f.cell.seed}: ${f.error}\n`);
  if (!args.booleans.has('no-report')) {
    const report = await reportFromPaths([out], out);
    io.stdout.write(`\n${report.summary}\n\nreport: ${path.join(out, 'report.md')} (${report.files.length - 1} SVG plot(s))\n`);
  }
  return summary.failed ? 1 : 0;
}

async function reportCommand(argv: string[], io: BenchIO): Promise<number> {
  const cmd = 'gradmax bench report';
  const args = parseArgs(cmd, argv, { out: { type: 'string' }, title: { type: 'string' } });
  if (args.booleans.has('help')) {
    io.stdout.write(REPORT_HELP);
    return 0;
  }
  if (!args.positionals.length) throw new UsageError(`${cmd}: give at least one result directory or file (see ${cmd} --help)`);
  const outFlag = single(args, 'out');
  const { stat } = await import('node:fs/promises');
  for (const p of args.positionals) {
    try {
      await stat(p);
    } catch {
      throw new UsageError(`${cmd}: no such file or directory: ${p}`);
    }
  }
  let out = outFlag;
  if (!out) {
    const first = args.positionals[0]!;
    if (!(await stat(first)).isDirectory()) throw new UsageError(`${cmd}: ${first} is a file; give --out DIR for the report`);
    out = first;
  }
  const title = single(args, 'title');
  const report = await reportFromPaths(args.positionals, out, title);
  io.stdout.write(`${report.summary}\n\nreport: ${path.join(out, 'report.md')} (${report.files.length - 1} SVG plot(s))\n`);
  if (!report.groups.length) {
    io.stderr.write(`${cmd}: no successful results found under ${args.positionals.join(', ')}\n`);
    return 1;
  }
  return report.failed.length ? 1 : 0;
}

async function listCommand(argv: string[], io: BenchIO): Promise<number> {
  const cmd = 'gradmax bench list';
  const args = parseArgs(cmd, argv, { json: { type: 'boolean' } });
  if (args.booleans.has('help')) {
    io.stdout.write(LIST_HELP);
    return 0;
  }
  if (args.positionals.length) throw new UsageError(`${cmd}: unexpected argument "${args.positionals[0]}"`);
  const tasks = listTasks().map((t) => ({
    name: t.name,
    description: t.description,
    presets: t.presets,
    defaultSeeds: t.defaultSeeds,
    arms: defaultArms(t),
    unsupportedArms: t.unsupportedArms ?? {},
    config: t.resolveConfig('default', {}),
    protocol: t.protocol,
  }));
  if (args.booleans.has('json')) {
    io.stdout.write(`${JSON.stringify({ tasks, strategies: strategyNames(), baselines: ['small', 'big'] }, null, 2)}\n`);
    return 0;
  }
  const lines: string[] = [];
  for (const t of tasks) {
    lines.push(`${t.name} — ${t.description}`);
    lines.push(`  presets: ${t.presets.join(', ')}; default seeds: ${t.defaultSeeds}`);
    lines.push(`  arms: ${t.arms.join(', ')}`);
    for (const [a, why] of Object.entries(t.unsupportedArms)) lines.push(`  not supported: ${a} (${why})`);
    lines.push(`  config (--set KEY=VALUE): ${Object.entries(t.config).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`).join(' ')}`);
    lines.push('');
  }
  lines.push(`strategies: ${strategyNames().join(', ')}`);
  lines.push('baselines: small (start width, no growth), big (final width, no growth)');
  io.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

/**
 * Entry point of `gradmax bench ...` (dispatched from the `gradmax` binary). Returns the exit code:
 * 0 success, 1 runtime failure, 2 usage error (one clear message on stderr).
 */
export async function runBench(argv: string[], io: BenchIO): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
      io.stdout.write(BENCH_HELP);
      return sub === undefined ? 2 : 0;
    }
    if (sub === 'run') return await runCommand(rest, io);
    if (sub === 'report') return await reportCommand(rest, io);
    if (sub === 'list') return await listCommand(rest, io);
    throw new UsageError(`gradmax bench: unknown command "${sub}" (commands: run, report, list)`);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`${error.message}\n`);
      return 2;
    }
    io.stderr.write(`gradmax bench ${sub}: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}
