/**
 * The runner: expands task × arm × seed, slices a shard, skips finished results, and runs the rest in
 * parallel worker processes (one per core by default) or in-process.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError } from '@gradmax/core';
import { assertTaskRunsOn, backendKey, setupBackend } from './backend.js';
import { configHash } from './config.js';
import { executeCell, type CellJob } from './execute.js';
import { expandGrid, shardGrid, type GridCell, type Shard } from './grid.js';
import { readResult, resultId, resultPath } from './results.js';
import { armKind, defaultArms } from './strategies.js';
import { getTask } from './tasks/index.js';
import type { BackendInfo, BackendRequest } from './types.js';
import type { CoordinatorMessage, WorkerMessage } from './worker.js';

/** Options of {@link runBenchmark}. */
export interface RunOptions {
  /** Task names. */
  tasks: string[];
  /** Arms; default: every registered strategy plus `small`, `big` and the task's analysis arms. */
  arms?: string[];
  /** Seeds; default: 0..task.defaultSeeds−1. */
  seeds?: number[];
  /** Config preset (default `default`). */
  preset?: string;
  /** Config overrides (`key → value`). */
  overrides?: Record<string, unknown>;
  /** Backend request (default `auto`). */
  backend?: BackendRequest;
  /** Worker processes (default: number of cores, but 1 on webgpu: runs share the one GPU; 0 runs in this process). */
  workers?: number;
  /** Run only this shard of the grid. */
  shard?: Shard;
  /** Output directory (results go to `<out>/results/`). */
  out: string;
  /** Re-run cells whose result already exists. */
  force?: boolean;
  /** Progress and log events. */
  onEvent?: (event: RunnerEvent) => void;
}

/** Events emitted while running. */
export type RunnerEvent =
  | { type: 'backend'; backend: BackendInfo }
  | { type: 'plan'; total: number; toRun: number; skipped: number; workers: number }
  | { type: 'start'; cell: GridCell; worker: number }
  | { type: 'progress'; cell: GridCell; fraction: number }
  | { type: 'done'; cell: GridCell; file: string; status: 'ok' | 'failed'; error?: string; totalMs?: number };

/** What {@link runBenchmark} did. */
export interface RunSummary {
  /** Backend used by every run. */
  backend: BackendInfo;
  /** Cells in the grid (or shard). */
  total: number;
  /** Cells skipped because an `ok` result existed. */
  skipped: number;
  /** Runs that succeeded. */
  ok: number;
  /** Runs that failed. */
  failed: number;
  /** Result files of this grid (written or skipped). */
  files: string[];
  /** Failed cells with their errors. */
  failures: { cell: GridCell; error: string }[];
  /** Wall time of the whole call, ms. */
  wallMs: number;
}

/** The default worker count: one per core. */
export function defaultWorkers(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/** Path of the compiled worker script, or undefined when the harness runs from sources without a build. */
export function workerScript(): string | undefined {
  const here = fileURLToPath(import.meta.url);
  const candidates = here.endsWith('.js') ? [new URL('./worker.js', import.meta.url)] : [new URL('../dist/worker.js', import.meta.url)];
  for (const c of candidates) {
    const p = fileURLToPath(c);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** Runs the grid (or one shard of it). Failed cells are recorded as `failed` results, not thrown. */
export async function runBenchmark(options: RunOptions): Promise<RunSummary> {
  const t0 = performance.now();
  const emit = options.onEvent ?? (() => undefined);
  const preset = options.preset ?? 'default';
  const overrides = options.overrides ?? {};
  const requested = options.backend ?? 'auto';
  if (!options.tasks.length) throw new InvalidArgumentError('no task given');
  const tasks = options.tasks.map(getTask);
  const hashes = new Map<string, string>();
  for (const task of tasks) hashes.set(task.name, configHash({ preset, config: task.resolveConfig(preset, overrides) }));
  // Before anything runs (and before a GPU is initialised for nothing).
  if (requested === 'webgpu') for (const task of tasks) assertTaskRunsOn(task, { name: 'webgpu' });
  const backend = await setupBackend(requested);
  emit({ type: 'backend', backend });
  const cells: GridCell[] = [];
  for (const task of tasks) {
    const arms = options.arms ?? defaultArms(task);
    for (const arm of arms) armKind(task, arm); // unknown arms fail here, before anything runs
    const seeds = options.seeds ?? Array.from({ length: task.defaultSeeds }, (_, i) => i);
    for (const cell of expandGrid([task.name], arms, seeds)) cells.push(cell); // no spread: a large grid would overflow the stack
  }
  const mine = options.shard ? shardGrid(cells, options.shard) : cells;
  const todo: GridCell[] = [];
  const files: string[] = [];
  let skipped = 0;
  for (const cell of mine) {
    const file = resultPath(options.out, resultId(cell.task, cell.arm, cell.seed, backendKey(backend), hashes.get(cell.task)!));
    if (!options.force) {
      const existing = await readResult(file).catch(() => undefined);
      if (existing?.status === 'ok') {
        skipped++;
        files.push(file);
        continue;
      }
    }
    todo.push(cell);
  }
  // Longest runs first (stable otherwise), so that the last worker does not finish long after the others.
  const cost = (cell: GridCell) => getTask(cell.task).relativeCost?.(cell.arm) ?? 1;
  todo.sort((a, b) => cost(b) - cost(a));
  const script = workerScript();
  // One GPU serves every run: parallel processes on webgpu would only contend for it (and each compiles its shaders).
  let workers = Math.min(options.workers ?? (backend.name === 'webgpu' ? 1 : defaultWorkers()), todo.length);
  if (workers > 0 && !script) workers = 0;
  emit({ type: 'plan', total: mine.length, toRun: todo.length, skipped, workers });
  const jobOf = (cell: GridCell): CellJob => ({ cell, preset, overrides, backend: backend.name as BackendRequest, requestedBackend: requested, out: options.out });
  const failures: { cell: GridCell; error: string }[] = [];
  let ok = 0;
  const record = (cell: GridCell, file: string, status: 'ok' | 'failed', error?: string, totalMs?: number) => {
    files.push(file);
    if (status === 'ok') ok++;
    else failures.push({ cell, error: error ?? 'unknown error' });
    emit({ type: 'done', cell, file, status, ...(error ? { error } : {}), ...(totalMs !== undefined ? { totalMs } : {}) });
  };
  if (workers === 0) {
    for (const cell of todo) {
      emit({ type: 'start', cell, worker: 0 });
      const { result, file } = await executeCell(jobOf(cell), (fraction) => emit({ type: 'progress', cell, fraction }));
      record(cell, file, result.status, result.error, result.timings?.totalMs);
    }
  } else {
    await runPool(script!, workers, todo, jobOf, emit, record);
  }
  return { backend, total: mine.length, skipped, ok, failed: failures.length, files, failures, wallMs: performance.now() - t0 };
}

async function runPool(
  script: string,
  workers: number,
  todo: GridCell[],
  jobOf: (cell: GridCell) => CellJob,
  emit: (event: RunnerEvent) => void,
  record: (cell: GridCell, file: string, status: 'ok' | 'failed', error?: string, totalMs?: number) => void,
): Promise<void> {
  let next = 0;
  let finished = 0;
  let jobId = 0;
  await new Promise<void>((resolve) => {
    const startWorker = (slot: number): void => {
      const child: ChildProcess = fork(script, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'advanced' });
      let current: { id: number; cell: GridCell } | undefined;
      let stderr = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr = (stderr + chunk.toString()).slice(-4000);
      });
      const dispatch = (): void => {
        if (next >= todo.length) {
          current = undefined;
          child.send({ type: 'exit' } satisfies CoordinatorMessage);
          return;
        }
        const cell = todo[next++]!;
        current = { id: ++jobId, cell };
        emit({ type: 'start', cell, worker: slot });
        child.send({ type: 'run', id: current.id, job: jobOf(cell) } satisfies CoordinatorMessage);
      };
      child.on('message', (m: WorkerMessage) => {
        if (m.type === 'ready') dispatch();
        else if (m.type === 'progress' && current && m.id === current.id) emit({ type: 'progress', cell: current.cell, fraction: m.fraction });
        else if ((m.type === 'done' || m.type === 'crash') && current && m.id === current.id) {
          const cell = current.cell;
          if (m.type === 'done') record(cell, m.file, m.status, m.error, m.totalMs);
          else record(cell, '', 'failed', m.error);
          finished++;
          if (finished === todo.length) resolve();
          dispatch();
        }
      });
      child.on('exit', (code, signal) => {
        if (current) {
          const cell = current.cell;
          current = undefined;
          record(cell, '', 'failed', `worker exited (${signal ?? `code ${code}`}) while running ${cell.task}/${cell.arm}/seed ${cell.seed}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
          finished++;
          if (finished === todo.length) resolve();
          else if (next < todo.length) startWorker(slot);
        }
      });
    };
    if (!todo.length) resolve();
    for (let w = 0; w < workers; w++) startWorker(w + 1);
  });
}
