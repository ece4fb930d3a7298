/**
 * `gradmax bench run | report | list`: the harness on the command line.
 * Exit codes: 0 success, 1 runtime failure (a run failed, unreadable results), 2 usage error.
 */
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  BACKEND_REQUESTS,
  assertTaskRunsOn,
  GradmaxError,
  defaultArms,
  isVariantArm,
  parseArm,
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
import { UsageError, parseCommand, parseIntegerFlag, parsePairs, stringList } from '../shared/args.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, canAnimate, type CliIO } from '../shared/io.js';
import { createProgress } from './progress.js';

const RUN_HELP = `Usage: gradmax bench run [options]

Runs the grid task × arm × seed (in parallel worker processes) and writes one JSON result per run
to <out>/results/, then the report (report.md + SVG plots) to <out>/.

Options:
  --task NAME        task(s) to run, repeatable or comma-separated (default: teacher-student)
                     tasks: ${'{tasks}'}
  --arm NAME         arm(s): strategies, small, big, or the task's analysis arms (default: all);
                     a strategy with options, e.g. gradmax:sign=largestNegative, is a variant arm
  --seeds SPEC       a count (5 → 0..4), a range (0-9) or a list (0,3,7) (default: per task)
  --preset NAME      config preset: default, tiny, ... (see gradmax bench list)
  --set KEY=VALUE    override one config key, repeatable (see gradmax bench list)
  --backend NAME     ${BACKEND_REQUESTS.join(' | ')} (default: auto = tfjs-node-gpu, tfjs-node, wasm, cpu;
                     webgpu only by name, for the CNN tasks; needs a Vulkan driver, see docs/gpu.md)
  --workers N        worker processes (default: one per core, ${defaultWorkers()} here, 1 on webgpu; 0 = in-process)
  --shard I/N        run only slice I of N (0 ≤ I < N), e.g. $SLURM_ARRAY_TASK_ID/8
  --out DIR          output directory (default: gradmax-report)
  --force            re-run cells whose result already exists
  --no-report        do not write the report after running
  -h, --help         show this help

Exit codes: 0 all runs succeeded, 1 some run failed, 2 bad usage.
`;

const REPORT_HELP = `Usage: gradmax bench report PATH... [options]

Merges every result file found under the given files or directories and writes report.md plus SVG plots.
Results from different backends, WebGPU adapters or configs go to separate tables.

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

const RUN_OPTIONS = {
  task: { type: 'string', multiple: true },
  arm: { type: 'string', multiple: true },
  seeds: { type: 'string' },
  preset: { type: 'string' },
  set: { type: 'string', multiple: true },
  backend: { type: 'string' },
  workers: { type: 'string' },
  shard: { type: 'string' },
  out: { type: 'string' },
  force: { type: 'boolean' },
  'no-report': { type: 'boolean' },
} as const;

function commaList(v: string | boolean | (string | boolean)[] | undefined): string[] | undefined {
  const items = stringList(v).flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean);
  return items.length ? items : undefined;
}

function str(v: string | boolean | (string | boolean)[] | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function usageFromGradmax(cmd: string, error: unknown): never {
  // Typed argument errors raised while resolving flags (bad seed list, unknown task, bad config value, a task the
  // backend cannot run) are usage errors.
  if (error instanceof GradmaxError && (error.code === 'invalid-argument' || error.code === 'unknown-name' || error.code === 'unsupported')) throw new UsageError(withPrefix(cmd, error.message));
  throw error;
}

/** Creates `out` (a folder) if needed; a file there, or a folder that cannot be created, is a usage error. */
async function ensureOutputDir(cmd: string, out: string, shown: string): Promise<void> {
  const st = await stat(out).catch(() => undefined);
  if (st && !st.isDirectory()) throw new UsageError(`${cmd}: --out ${shown} is a file; give a folder (it is created if missing)`);
  try {
    await mkdir(out, { recursive: true });
  } catch (e) {
    throw new UsageError(`${cmd}: cannot create the output folder ${shown}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** `message` prefixed with `cmd: ` unless it already starts with the command name (no repeated prefixes). */
function withPrefix(cmd: string, message: string): string {
  return message.startsWith('gradmax ') ? message : `${cmd}: ${message}`;
}

async function runCommand(argv: string[], io: CliIO): Promise<number> {
  const cmd = 'gradmax bench run';
  const { values } = parseCommand(cmd, argv, RUN_OPTIONS, { max: 0 });
  if (values['help']) {
    io.stdout.write(RUN_HELP.replace('{tasks}', listTasks().map((t) => t.name).join(', ')));
    return EXIT_OK;
  }
  const tasks = commaList(values['task']) ?? ['teacher-student'];
  const preset = str(values['preset']) ?? 'default';
  const arms = commaList(values['arm']);
  let backend, seeds, shard;
  let overrides: Record<string, string> = {};
  try {
    tasks.forEach(getTask);
    backend = parseBackendRequest(str(values['backend']) ?? 'auto');
    if (backend === 'webgpu') for (const t of tasks) assertTaskRunsOn(getTask(t), { name: 'webgpu' });
    const seedText = str(values['seeds']);
    seeds = seedText !== undefined ? parseSeeds(seedText) : undefined;
    const shardText = str(values['shard']);
    shard = shardText !== undefined ? parseShard(shardText) : undefined;
    overrides = Object.fromEntries(parsePairs(cmd, '--set', stringList(values['set'])));
    for (const t of tasks) getTask(t).resolveConfig(preset, overrides);
    if (arms) {
      for (const t of tasks) {
        const task = getTask(t);
        const known = [...defaultArms(task), ...Object.keys(task.unsupportedArms ?? {})];
        // A variant arm (gradmax:sign=random) is known when its strategy is; parseArm names a malformed pair.
        const bad = arms.find((a) => !known.includes(a) && !(isVariantArm(a) && known.includes(parseArm(a).strategy)));
        if (bad) throw new UsageError(`${cmd}: unknown arm "${bad}" for task ${t}; arms: ${defaultArms(task).join(', ')}`);
      }
    }
  } catch (error) {
    usageFromGradmax(cmd, error);
  }
  const workersText = str(values['workers']);
  const workers = workersText !== undefined ? parseIntegerFlag(cmd, '--workers', workersText, 0) : undefined;
  const out = path.resolve(io.cwd ?? process.cwd(), str(values['out']) ?? 'gradmax-report');
  // before any run: an --out that is a file (or cannot be created) would fail every run
  await ensureOutputDir(cmd, out, str(values['out']) ?? 'gradmax-report');
  const progress = createProgress(io.stderr, { tty: canAnimate(io) });
  const onEvent = (e: RunnerEvent) => {
    if (e.type === 'backend') {
      io.stderr.write(`backend: ${e.backend.name} — ${e.backend.device}${e.backend.note ? ` (${e.backend.note})` : ''}\n`);
    } else if (e.type === 'plan') {
      io.stderr.write(
        `grid: ${e.total} run(s)${shard ? ` in shard ${shard.index}/${shard.count}` : ''}; ${e.skipped} already done${e.skipped ? ' (use --force to re-run)' : ''}; ` +
          `running ${e.toRun} on ${e.workers === 0 ? 'this process' : `${e.workers} worker process(es)`}\n`,
      );
      progress.start(e.toRun);
    } else progress.event(e);
  };
  const summary = await runBenchmark({
    tasks,
    ...(arms ? { arms } : {}),
    ...(seeds ? { seeds } : {}),
    preset,
    overrides,
    backend: backend!,
    ...(workers !== undefined ? { workers } : {}),
    ...(shard ? { shard } : {}),
    out,
    force: Boolean(values['force']),
    onEvent,
  });
  progress.finish();
  io.stderr.write(`done in ${(summary.wallMs / 1000).toFixed(1)} s: ${summary.ok} ok, ${summary.failed} failed, ${summary.skipped} skipped; results in ${path.join(out, 'results')}\n`);
  for (const f of summary.failures) io.stderr.write(`failed: ${f.cell.task}/${f.cell.arm}/seed ${f.cell.seed}: ${f.error}\n`);
  if (!values['no-report']) {
    const report = await reportFromPaths([out], out);
    io.stdout.write(`${report.summary}\n\nreport: ${path.join(out, 'report.md')} (${report.files.length - 1} SVG plot(s))\n`);
  }
  return summary.failed ? EXIT_FAILED : EXIT_OK;
}

async function reportCommand(argv: string[], io: CliIO): Promise<number> {
  const cmd = 'gradmax bench report';
  const { values, positionals } = parseCommand(cmd, argv, { out: { type: 'string' }, title: { type: 'string' } }, { min: 1, names: 'PATH (a results directory or file)' });
  if (values['help']) {
    io.stdout.write(REPORT_HELP);
    return EXIT_OK;
  }
  const cwd = io.cwd ?? process.cwd();
  const inputs = positionals.map((p) => path.resolve(cwd, p));
  for (const [i, p] of inputs.entries()) {
    try {
      await stat(p);
    } catch {
      throw new UsageError(`${cmd}: no such file or directory: ${positionals[i]}`);
    }
  }
  const outFlag = str(values['out']);
  let out = outFlag !== undefined ? path.resolve(cwd, outFlag) : undefined;
  if (!out) {
    if (!(await stat(inputs[0]!)).isDirectory()) throw new UsageError(`${cmd}: ${positionals[0]} is a file; give --out DIR for the report`);
    out = inputs[0]!;
  }
  await ensureOutputDir(cmd, out, outFlag ?? positionals[0]!);
  const title = str(values['title']);
  const report = await reportFromPaths(inputs, out, title);
  io.stdout.write(`${report.summary}\n\nreport: ${path.join(out, 'report.md')} (${report.files.length - 1} SVG plot(s))\n`);
  if (!report.groups.length) {
    io.stderr.write(`${cmd}: no successful results found under ${positionals.join(', ')}\n`);
    return EXIT_FAILED;
  }
  if (report.failed.length) io.stderr.write(`${cmd}: ${report.failed.length} failed run(s) among the results (listed in the report)\n`);
  return report.failed.length ? EXIT_FAILED : EXIT_OK;
}

async function listCommand(argv: string[], io: CliIO): Promise<number> {
  const cmd = 'gradmax bench list';
  const { values } = parseCommand(cmd, argv, { json: { type: 'boolean' } }, { max: 0 });
  if (values['help']) {
    io.stdout.write(LIST_HELP);
    return EXIT_OK;
  }
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
  if (values['json']) {
    io.stdout.write(`${JSON.stringify({ tasks, strategies: strategyNames(), baselines: ['small', 'big'] }, null, 2)}\n`);
    return EXIT_OK;
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
  return EXIT_OK;
}

/**
 * Entry point of `gradmax bench ...` (dispatched from the `gradmax` binary). Returns the exit code:
 * 0 success, 1 a run failed (or a report found no usable results), 2 usage or input error (one line on stderr).
 */
export async function runBench(argv: string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    if (sub === undefined) {
      io.stderr.write('gradmax bench: missing command (run, report, list); see gradmax bench --help\n');
      return EXIT_USAGE;
    }
    if (sub === '--help' || sub === '-h' || sub === 'help') {
      io.stdout.write(BENCH_HELP);
      return EXIT_OK;
    }
    if (sub === 'run') return await runCommand(rest, io);
    if (sub === 'report') return await reportCommand(rest, io);
    if (sub === 'list') return await listCommand(rest, io);
    throw new UsageError(`gradmax bench: unknown command "${sub}" (commands: run, report, list; see gradmax bench --help)`);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`${error.message}\n`);
      return EXIT_USAGE;
    }
    const cmd = `gradmax bench ${sub}`;
    const e = error as NodeJS.ErrnoException;
    io.stderr.write(`${withPrefix(cmd, error instanceof Error ? error.message.split('\n')[0]! : String(error))}\n`);
    if ((io.env ?? process.env)['GRADMAX_DEBUG'] && error instanceof Error && error.stack) io.stderr.write(`${error.stack}\n`);
    // a file-system refusal (read-only target, permission, a file where a folder belongs) is an input error
    return typeof e?.code === 'string' && /^E[A-Z]+$/.test(e.code) ? EXIT_USAGE : EXIT_FAILED;
  }
}
