/**
 * Result files: one self-describing JSON per (task, arm, seed, backend, config), written atomically.
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GradmaxError, InvalidArgumentError } from '@gradmax/core';
import { RESULT_SCHEMA, type RunResult } from './types.js';

/** A result file that cannot be read or does not follow the schema. */
export class ResultFileError extends GradmaxError {
  constructor(file: string, reason: string) {
    super('bad-result-file', `result file ${file}: ${reason}`, { file });
  }
}

/** File-name-safe form of a name. */
function safe(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_');
}

/** The result id: `task__arm__seedN__backend__confighash` (`backend` is the backend key, with the adapter on webgpu). */
export function resultId(task: string, arm: string, seed: number, backend: string, configHash: string): string {
  return `${safe(task)}__${safe(arm)}__seed${seed}__${safe(backend)}__${configHash}`;
}

/** Path of a result file inside an output directory. */
export function resultPath(outDir: string, id: string): string {
  return path.join(outDir, 'results', `${id}.json`);
}

/** Writes `data` to `file` atomically (temp file in the same directory + rename). */
export async function writeFileAtomic(file: string, data: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, data);
    await rename(tmp, file);
  } catch (error) {
    await unlink(tmp).catch(() => undefined);
    throw error;
  }
}

/** Writes a result atomically to `resultPath(outDir, result.id)` and returns the path. */
export async function writeResult(outDir: string, result: RunResult): Promise<string> {
  const file = resultPath(outDir, result.id);
  await writeFileAtomic(file, `${JSON.stringify(result)}\n`);
  return file;
}

/** Parses and checks one result file's text. Throws {@link ResultFileError}. */
export function parseResult(file: string, text: string): RunResult {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new ResultFileError(file, `not valid JSON (${(error as Error).message})`);
  }
  const r = data as Partial<RunResult>;
  if (!r || typeof r !== 'object' || r.schema !== RESULT_SCHEMA) throw new ResultFileError(file, `schema is not "${RESULT_SCHEMA}"`);
  for (const key of ['id', 'task', 'arm', 'configHash', 'status'] as const) {
    if (typeof r[key] !== 'string') throw new ResultFileError(file, `field "${key}" is missing or not a string`);
  }
  if (typeof r.seed !== 'number') throw new ResultFileError(file, 'field "seed" is missing or not a number');
  if (!r.backend || typeof r.backend.name !== 'string') throw new ResultFileError(file, 'field "backend.name" is missing');
  if (r.status === 'ok' && (!r.curves || !r.summary || !r.timings)) throw new ResultFileError(file, 'an "ok" result needs curves, summary and timings');
  if (r.summary !== undefined) {
    if (!r.summary || typeof r.summary !== 'object') throw new ResultFileError(file, 'field "summary" is not an object');
    // null stands for a metric that was NaN (JSON has no NaN); anything else would be half-counted by the report
    for (const [k, v] of Object.entries(r.summary)) if (v !== null && typeof v !== 'number') throw new ResultFileError(file, `summary field "${k}" is ${JSON.stringify(v)}, not a number`);
  }
  return r as RunResult;
}

/** Reads one result file, or undefined when it does not exist. */
export async function readResult(file: string): Promise<RunResult | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return parseResult(file, text);
}

/**
 * Reads every `*.json` result under the given paths (directories are searched recursively; files are read
 * as is). Files that are not results (other schema) are skipped and listed in `skipped`.
 */
export async function collectResults(paths: readonly string[]): Promise<{ results: RunResult[]; skipped: { file: string; reason: string }[] }> {
  if (!paths.length) throw new InvalidArgumentError('no result paths given');
  const files: string[] = [];
  const walk = async (p: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(p, { withFileTypes: true });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOTDIR') {
        files.push(p);
        return;
      }
      if (code === 'ENOENT') throw new InvalidArgumentError(`no such file or directory: ${p}`, { file: p });
      throw error;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(p, e.name);
      if (e.isDirectory()) await walk(full);
      else if (e.isFile() && e.name.endsWith('.json') && !e.name.startsWith('.')) files.push(full);
    }
  };
  for (const p of paths) await walk(p);
  const results: RunResult[] = [];
  const skipped: { file: string; reason: string }[] = [];
  const seen = new Map<string, string>();
  for (const file of files) {
    try {
      const r = parseResult(file, await readFile(file, 'utf8'));
      const prev = seen.get(r.id);
      if (prev) {
        skipped.push({ file, reason: `duplicate of ${prev} (same id ${r.id})` });
        continue;
      }
      seen.set(r.id, file);
      results.push(r);
    } catch (error) {
      skipped.push({ file, reason: (error as Error).message });
    }
  }
  return { results, skipped };
}

/** Versions of node, tfjs and the gradmax packages visible from the harness. */
export function collectVersions(): Record<string, string> {
  const require = createRequire(import.meta.url);
  const out: Record<string, string> = { node: process.versions.node };
  for (const name of ['@gradmax/harness', '@gradmax/core', '@gradmax/strategies', '@gradmax/tfjs', '@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-wasm']) {
    try {
      const file = name === '@gradmax/harness' ? new URL('../package.json', import.meta.url) : require.resolve(`${name}/package.json`);
      out[name] = (require(typeof file === 'string' ? file : file.pathname) as { version: string }).version;
    } catch {
      // not resolvable from here: leave it out
    }
  }
  return out;
}

/** Host facts recorded in every result. */
export function hostInfo(): RunResult['host'] {
  const cpus = os.cpus();
  return { platform: process.platform, arch: process.arch, cpus: cpus.length, cpuModel: cpus[0]?.model ?? 'unknown', node: process.versions.node };
}
