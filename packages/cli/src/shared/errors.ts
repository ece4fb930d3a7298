/**
 * Turning errors into one clear line on stderr and an exit code.
 * @packageDocumentation
 */
import { GradmaxError } from '@gradmax/core';
import { UsageError } from './args.js';
import { EXIT_USAGE, type CliIO } from './io.js';

/** `message` with `prefix: ` in front, unless it already names a gradmax command (no repeated prefixes). */
function prefixed(prefix: string, message: string): string {
  return /^gradmax( [a-z-]+)*: /.test(message) ? message : `${prefix}: ${message}`;
}

/**
 * Prints `error` as one message on stderr and returns the exit code: usage errors and gradmax's typed input errors
 * give 2. A typed error's message is printed whole (an onnxruntime failure passed through can span several lines;
 * continuation lines are indented). Unexpected errors also give 2, with the stack when `GRADMAX_DEBUG` is set.
 */
export function reportError(io: CliIO, error: unknown, prefix = 'gradmax'): number {
  if (error instanceof UsageError) {
    io.stderr.write(`${error.message}\n`);
    return EXIT_USAGE;
  }
  if (error instanceof GradmaxError) {
    io.stderr.write(`${prefixed(prefix, error.message.trimEnd().replace(/\n/g, '\n  '))}\n`);
    return EXIT_USAGE;
  }
  const e = error as Error;
  io.stderr.write(`${prefix}: unexpected error: ${(e?.message ?? String(error)).split('\n')[0]}\n`);
  if ((io.env ?? process.env).GRADMAX_DEBUG && e?.stack) io.stderr.write(`${e.stack}\n`);
  return EXIT_USAGE;
}
