/**
 * The site/count/path flags shared by `gradmax onnx widen` and `gradmax onnx widen --data` (internal).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UsageError, parseIntegerFlag, stringList } from '../shared/args.js';
import type { CliIO } from '../shared/io.js';
import { checkOutputPath } from './model-io.js';

/** What a widen call grows and where it reads and writes the model. */
export interface WidenTargets {
  /** The `--site` arguments, as given. */
  sites: string[];
  /** Units to add at each site (`--add`, one per `--site`, each ≥ 1). */
  counts: number[];
  /** Absolute path of the input model. */
  input: string;
  /** Absolute path of the output model (`-o`); never the input model. */
  output: string;
}

function realOrSelf(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return p;
  }
}

/**
 * Checks `--site`/`--add`/`-o` of a widen command and resolves the model paths against `io.cwd`; throws
 * {@link UsageError} (prefixed with `cmd`) when a flag is missing, the counts do not pair with the sites, or the
 * output would overwrite the input model, and `FileAccessError` when `-o` is not a regular file or a missing one in an
 * existing folder (a device, a FIFO, `/dev/stdout`, a folder).
 */
export function parseWidenTargets(
  cmd: string,
  io: CliIO,
  values: { site?: string | boolean | (string | boolean)[]; add?: string | boolean | (string | boolean)[]; output?: string | boolean | (string | boolean)[] },
  model: string,
): WidenTargets {
  const sites = stringList(values.site);
  const adds = stringList(values.add);
  if (!sites.length) throw new UsageError(`${cmd}: --site is required (see gradmax onnx inspect MODEL)`);
  if (sites.length !== adds.length) throw new UsageError(`${cmd}: give one --add K per --site (got ${sites.length} --site and ${adds.length} --add)`);
  const counts = adds.map((a) => parseIntegerFlag(cmd, '--add', a, 1));
  if (typeof values.output !== 'string') throw new UsageError(`${cmd}: -o OUT is required`);
  const cwd = io.cwd ?? process.cwd();
  const input = path.resolve(cwd, model);
  const output = path.resolve(cwd, values.output);
  if (realOrSelf(input) === realOrSelf(output)) throw new UsageError(`${cmd}: refusing to overwrite the input model ${model}; choose another -o`);
  checkOutputPath(output, values.output);
  return { sites, counts, input, output };
}

/** Default of `--max-memory`: working memory a widen may use for the new units' weights. */
export const DEFAULT_MAX_MEMORY = 4 * 1024 ** 3;

/** Bytes of working memory per new weight: float64 matrices of the strategy, the model's tensor copy, the written file. */
const BYTES_PER_NEW_WEIGHT = 8 * 3;

/** Parses a size such as `4G`, `512M`, `1.5GiB` or `1000000` (bytes); throws {@link UsageError}. */
export function parseSize(cmd: string, flag: string, text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) throw new UsageError(`${cmd}: ${flag} expects a size such as 4G, 512M or a number of bytes, got "${text}"`);
  const v = Number(m[1]) * 1024 ** ' kmgt'.indexOf((m[2] || ' ').toLowerCase());
  if (!(v >= 1) || !Number.isFinite(v)) throw new UsageError(`${cmd}: ${flag} must be at least 1 byte, got "${text}"`);
  return v;
}

function gib(bytes: number): string {
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GiB` : `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

/**
 * Refuses, before anything is allocated, a growth whose new weights would need more working memory than `maxMemory`
 * bytes: `count × (fanIn + fanOut + 1)` new weights per site, {@link BYTES_PER_NEW_WEIGHT} bytes each. Keeps
 * `--add 100000000` from running for minutes and dying of heap exhaustion. Throws {@link UsageError}.
 */
export function checkGrowthBudget(cmd: string, sites: readonly { name: string; fanIn?: number; fanOut?: number }[], counts: readonly number[], maxMemory: number): void {
  let total = 0;
  for (const [i, g] of sites.entries()) {
    const weights = counts[i]! * ((g.fanIn ?? 0) + (g.fanOut ?? 0) + 1);
    total += weights * BYTES_PER_NEW_WEIGHT;
    if (total > maxMemory) {
      throw new UsageError(
        `${cmd}: --add ${counts[i]} at ${g.name} adds ${weights.toExponential(2)} weights, about ${gib(total)} of working memory in all, above --max-memory ${gib(maxMemory)}; add fewer units or raise --max-memory`,
      );
    }
  }
}
