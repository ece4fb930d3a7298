/**
 * Runs one grid cell and writes its result file. Shared by worker processes and in-process runs.
 */
import * as tf from '@tensorflow/tfjs-core';
import { configHash } from './config.js';
import { assertTaskRunsOn, backendKey, setupBackend } from './backend.js';
import { collectVersions, hostInfo, resultId, writeResult } from './results.js';
import { getTask } from './tasks/index.js';
import type { BackendRequest, RunResult } from './types.js';
import type { GridCell } from './grid.js';

/** What a worker needs to run one cell. */
export interface CellJob {
  cell: GridCell;
  preset: string;
  overrides: Record<string, unknown>;
  /** Concrete backend to use (already resolved from `auto` by the coordinator). */
  backend: BackendRequest;
  /** What the user asked for (recorded in the result). */
  requestedBackend: BackendRequest;
  out: string;
}

/** Runs a cell, writes `<out>/results/<id>.json` atomically, and returns the result (status `failed` on error). */
export async function executeCell(job: CellJob, progress?: (fraction: number) => void): Promise<{ result: RunResult; file: string }> {
  const { cell } = job;
  const task = getTask(cell.task);
  const config = task.resolveConfig(job.preset, job.overrides);
  const hash = configHash({ preset: job.preset, config });
  const backend = { ...(await setupBackend(job.backend)), requested: job.requestedBackend };
  assertTaskRunsOn(task, backend);
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const base = {
    schema: 'gradmax.bench.result/v1' as const,
    id: resultId(cell.task, cell.arm, cell.seed, backendKey(backend), hash),
    task: cell.task,
    arm: cell.arm,
    seed: cell.seed,
    backend,
    configHash: hash,
    config: { preset: job.preset, ...config },
    versions: collectVersions(),
    host: hostInfo(),
    startedAt,
  };
  let result: RunResult;
  const tensorsBefore = tf.memory().numTensors;
  try {
    const output = await task.run({ tf, config, arm: cell.arm, seed: cell.seed, backend, ...(progress ? { progress } : {}) });
    const leaked = tf.memory().numTensors - tensorsBefore;
    result = {
      ...base,
      status: 'ok',
      ...output,
      summary: { ...output.summary, leakedTensors: leaked },
      timings: { ...output.timings, totalMs: performance.now() - t0 },
      finishedAt: new Date().toISOString(),
    };
  } catch (error) {
    result = { ...base, status: 'failed', error: error instanceof Error ? `${error.name}: ${error.message}` : String(error), finishedAt: new Date().toISOString() };
  }
  const file = await writeResult(job.out, result);
  return { result, file };
}
