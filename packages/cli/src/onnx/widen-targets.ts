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
