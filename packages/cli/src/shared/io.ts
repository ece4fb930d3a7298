/**
 * Where commands write, and the exit codes every `gradmax` command uses.
 * @packageDocumentation
 */

/** Exit code: success. */
export const EXIT_OK = 0;
/** Exit code: a verification (or run) failed. */
export const EXIT_FAILED = 1;
/** Exit code: bad usage or bad input (unknown flag, missing file, invalid model...). */
export const EXIT_USAGE = 2;

/** A writable text stream. */
export interface TextSink {
  /** Writes text. */
  write(text: string): unknown;
  /** Whether the sink is a terminal. */
  isTTY?: boolean;
}

/** Where a command writes; tests pass an in-memory {@link memoryIO}. Structurally compatible with the bench IO. */
export interface CliIO {
  /** Results (tables, JSON). */
  stdout: TextSink;
  /** Errors and progress. */
  stderr: TextSink;
  /** True when progress may redraw a line in place (stderr is a TTY and `CI` is not set). */
  isTTY?: boolean;
  /** Environment (for `CI`); defaults to `process.env`. */
  env?: Record<string, string | undefined>;
  /** Working directory for relative paths; defaults to `process.cwd()`. */
  cwd?: string;
}

/** The process's own streams. */
export function processIO(): CliIO {
  const ci = process.env.CI;
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    isTTY: Boolean(process.stderr.isTTY) && !(ci && ci !== 'false' && ci !== '0'),
    env: process.env,
    cwd: process.cwd(),
  };
}

/** An in-memory IO for tests: everything written is collected in `out` and `err`. */
export interface MemoryIO extends CliIO {
  /** Everything written to stdout. */
  readonly out: string;
  /** Everything written to stderr. */
  readonly err: string;
}

/** Creates a {@link MemoryIO} (not a TTY). */
export function memoryIO(env: Record<string, string | undefined> = {}): MemoryIO {
  let out = '';
  let err = '';
  return {
    stdout: { write: (t: string) => (out += t), isTTY: false },
    stderr: { write: (t: string) => (err += t), isTTY: false },
    isTTY: false,
    env,
    get out() {
      return out;
    },
    get err() {
      return err;
    },
  };
}

/** True when progress may animate: `io.isTTY` and no truthy `CI` variable. */
export function canAnimate(io: CliIO): boolean {
  const ci = (io.env ?? process.env).CI;
  return Boolean(io.isTTY) && !(ci && ci !== 'false' && ci !== '0');
}
