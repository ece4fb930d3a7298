/**
 * Loading, saving and verification messages shared by the `gradmax onnx` commands.
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { GrowthStrategy } from '@gradmax/core';
import { FileAccessError, describePlacement, loadModel, saveModel, type OnnxModel, type VerifyReport } from '@gradmax/onnx';
import { onInterrupt } from '../shared/cleanup.js';
import { EXIT_FAILED, type CliIO } from '../shared/io.js';
import { createProgressBar, type ProgressBar } from '../shared/progress.js';
import { formatNumber } from '../shared/table.js';

/** Files above this size get progress messages. */
const LARGE_FILE = 50 * 1024 * 1024;

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0; // loadModel reports the missing file
  }
}

/** Loads a model, saying so on stderr for large files. */
export function loadWithProgress(io: CliIO, file: string): OnnxModel {
  const size = fileSize(file);
  if (size > LARGE_FILE) io.stderr.write(`loading ${path.basename(file)} (${(size / 1e6).toFixed(1)} MB)...\n`);
  return loadModel(file);
}

/** Saves a widened model (atomically), with a progress bar when the input was large. */
export function saveWithProgress(io: CliIO, model: OnnxModel, input: string, output: string): void {
  if (fileSize(input) <= LARGE_FILE) {
    saveModel(model, output);
    return;
  }
  let bar: ProgressBar | undefined;
  saveModel(model, output, {
    onProgress: (done, total) => {
      bar ??= createProgressBar(io, `writing ${path.basename(output)}`, total, { unit: 'B' });
      bar.update(done);
    },
  });
  bar?.finish();
}

/** A model written to a temporary folder beside its destination, moved there only by {@link StagedOutput.commit}. */
export interface StagedOutput {
  /** Path of the staged model (in the temporary folder; its external data, if any, beside it). */
  readonly file: string;
  /** Moves the staged model (and its `.data` file) to the destination (rename: atomic per file). */
  commit(): void;
  /** Removes the temporary folder and everything in it (no-op after {@link commit}). */
  discard(): void;
}

function realOrResolved(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

/**
 * Checks that `output` may be written: absent or a regular file, in an existing folder, not a folder name. Throws
 * {@link FileAccessError} naming the path otherwise (a character device such as `/dev/null`, a FIFO, `/dev/stdout`, a
 * folder), so that nothing special is ever replaced by a regular file.
 */
export function checkOutputPath(output: string, shown = output): void {
  if (/[\\/]$/.test(shown)) throw new FileAccessError(`output "${shown}" names a folder; give a file name`, { file: output });
  const dir = path.dirname(output);
  let dirStat: fs.Stats;
  try {
    dirStat = fs.statSync(dir);
  } catch (e) {
    throw new FileAccessError(`cannot write "${shown}": its folder "${dir}" does not exist (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { file: output });
  }
  if (!dirStat.isDirectory()) throw new FileAccessError(`cannot write "${shown}": "${dir}" is not a folder`, { file: output });
  let st: fs.Stats;
  try {
    st = fs.statSync(output);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new FileAccessError(`cannot write "${shown}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: output });
  }
  if (st.isFile()) return;
  const what = st.isDirectory() ? 'a folder' : st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() ? 'a character device' : st.isBlockDevice() ? 'a block device' : st.isSocket() ? 'a socket' : 'not a regular file';
  throw new FileAccessError(`refusing to write "${shown}": it is ${what}; the output must be a regular file or not exist`, { file: output });
}

/**
 * Writes `model` to a fresh temporary folder beside `output` (same file system, so {@link StagedOutput.commit} is a
 * rename), with a progress bar for large inputs. Nothing at `output` or `output.data` changes until `commit`: a
 * verification that fails, or any error on the way, leaves them as they were. Refuses destinations that are not
 * regular files and an `output.data` that is one of the model's own external data files.
 */
export function saveStaged(io: CliIO, model: OnnxModel, input: string, output: string, shown = output): StagedOutput {
  const dataPath = `${output}.data`;
  checkOutputPath(output, shown);
  checkOutputPath(dataPath, `${shown}.data`);
  const own = new Set<string>([...model.externalSources.values()].map((s) => realOrResolved(s.file)));
  if (model.sourcePath) own.add(realOrResolved(model.sourcePath));
  for (const f of [output, dataPath]) if (own.has(realOrResolved(f))) throw new FileAccessError(`refusing to overwrite "${f}", which the input model reads; choose another output name`, { file: f });
  sweepStaleTemps(output);
  let tmp: string;
  try {
    tmp = fs.mkdtempSync(path.join(path.dirname(output), `.${path.basename(output)}.tmp-${process.pid}-`));
  } catch (e) {
    throw new FileAccessError(`cannot write beside "${shown}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: output });
  }
  const file = path.join(tmp, path.basename(output));
  let done = false;
  // SIGINT/SIGTERM (and process exit) remove the temporary folder; after SIGKILL the next run sweeps it
  const unregister = onInterrupt(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const discard = () => {
    if (done) return;
    done = true;
    unregister();
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  try {
    saveWithProgress(io, model, input, file);
  } catch (e) {
    discard();
    throw e;
  }
  return {
    file,
    commit() {
      if (done) throw new FileAccessError(`"${shown}" was already committed or discarded`, { file: output });
      try {
        // the data first: a model is never visible without its data
        if (fs.existsSync(`${file}.data`)) fs.renameSync(`${file}.data`, dataPath);
        fs.renameSync(file, output);
      } catch (e) {
        discard();
        throw new FileAccessError(`cannot write "${shown}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: output });
      }
      discard();
    },
    discard,
  };
}

/** True when a process with this id runs on this machine (EPERM: it runs under another user). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temporary files and folders that an earlier, killed run left beside `output` (SIGKILL, power loss): the
 * staging folder `.OUT.tmp-PID-XXXXXX` and the files `OUT.tmp-PID-TIME` / `OUT.data.tmp-PID-TIME`, but only those
 * whose process `PID` no longer runs on this machine. Only names derived from this `output` are touched; a file system
 * shared with other machines may hold temps of live processes there whose ids are free here: such runs should not
 * write the same OUT. Returns the removed paths; errors are ignored (best effort).
 */
export function sweepStaleTemps(output: string): string[] {
  const dir = path.dirname(output);
  const base = path.basename(output);
  const esc = base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(`^(?:\\.${esc}\\.tmp-(\\d+)-[A-Za-z0-9]{6}|${esc}(?:\\.data)?\\.tmp-(\\d+)-\\d+)$`);
  const removed: string[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of entries) {
    const m = pattern.exec(name);
    if (!m) continue;
    const pid = Number(m[1] ?? m[2]);
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || processAlive(pid)) continue;
    try {
      fs.rmSync(path.join(dir, name), { recursive: true, force: true });
      removed.push(path.join(dir, name));
    } catch {
      // best effort
    }
  }
  return removed;
}

/** Says on stderr that verification starts (only for large inputs, where it takes a while). */
export function noteVerifying(io: CliIO, input: string, output: string): void {
  if (fileSize(input) > LARGE_FILE) io.stderr.write(`verifying ${path.basename(output)} against ${path.basename(input)} in onnxruntime...\n`);
}

/** One line describing how verification ran: provider, samples, runs, scales, the symbolic dims' values, input shapes. */
export function describeVerification(report: VerifyReport): string {
  const parts = [report.executionProvider, `${report.samples} sample${report.samples === 1 ? '' : 's'} in ${report.runs} run${report.runs === 1 ? '' : 's'}`];
  if (report.scales.length > 1) parts.push(`input scales ${report.scales.join(' and ')}`);
  const dims = Object.entries(report.dims);
  if (dims.length) parts.push(`dims ${dims.map(([k, v]) => `${k}=${v} (${report.dimSources[k] ?? '?'})`).join(' ')}`);
  parts.push(`inputs ${Object.entries(report.inputs).map(([k, v]) => `${k}[${v.join(',')}]`).join(' ')}`);
  if (report.placement) parts.push(`widened model's nodes: ${describePlacement(report.placement)}`);
  return parts.join(', ');
}

/**
 * Exit code after verification: writes the failure to stderr and returns {@link EXIT_FAILED} when a
 * function-preserving strategy changed an output beyond tolerance; otherwise returns undefined.
 */
export function verificationFailure(io: CliIO, cmd: string, report: VerifyReport | undefined, strategy: GrowthStrategy, notWritten?: string): number | undefined {
  if (!report || report.ok || !strategy.functionPreserving) return undefined;
  const worst = report.outputs.filter((o) => !o.ok)[0]!;
  io.stderr.write(`${cmd}: verification failed: output "${worst.name}" differs by ${formatNumber(worst.maxAbs)} (relative ${formatNumber(worst.maxRel)}) although "${strategy.name}" is function-preserving${notWritten ? `; ${notWritten} was not written` : ''}\n`);
  return EXIT_FAILED;
}
