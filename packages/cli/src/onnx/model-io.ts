/**
 * Loading, saving and verification messages shared by the `gradmax onnx` commands.
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { GrowthStrategy } from '@gradmax/core';
import { loadModel, saveModel, type OnnxModel, type VerifyReport } from '@gradmax/onnx';
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

/** Says on stderr that verification starts (only for large inputs, where it takes a while). */
export function noteVerifying(io: CliIO, input: string, output: string): void {
  if (fileSize(input) > LARGE_FILE) io.stderr.write(`verifying ${path.basename(output)} against ${path.basename(input)} in onnxruntime...\n`);
}

/**
 * Exit code after verification: writes the failure to stderr and returns {@link EXIT_FAILED} when a
 * function-preserving strategy changed an output beyond tolerance; otherwise returns undefined.
 */
export function verificationFailure(io: CliIO, cmd: string, report: VerifyReport | undefined, strategy: GrowthStrategy): number | undefined {
  if (!report || report.ok || !strategy.functionPreserving) return undefined;
  const worst = report.outputs.filter((o) => !o.ok)[0]!;
  io.stderr.write(`${cmd}: verification failed: output "${worst.name}" differs by ${formatNumber(worst.maxAbs)} (relative ${formatNumber(worst.maxRel)}) although "${strategy.name}" is function-preserving\n`);
  return EXIT_FAILED;
}
