/**
 * Process-level safety for the `gradmax` executable: temporary files removed on SIGINT/SIGTERM and at exit, and a
 * reader that closes the pipe early (`gradmax onnx inspect MODEL | head -1`) ends the process quietly.
 * @packageDocumentation
 */

const cleanups = new Set<() => void>();

/**
 * Registers `fn` (synchronous, must not throw) to run when the process exits or is interrupted by SIGINT/SIGTERM
 * before the returned function unregisters it. Used for temporary files and folders.
 */
export function onInterrupt(fn: () => void): () => void {
  cleanups.add(fn);
  return () => {
    cleanups.delete(fn);
  };
}

/** Runs and forgets every registered cleanup (errors ignored); returns how many ran. */
export function runCleanups(): number {
  const n = cleanups.size;
  for (const fn of [...cleanups]) {
    cleanups.delete(fn);
    try {
      fn();
    } catch {
      // best effort: the next run sweeps what is left (see sweepStaleTemps)
    }
  }
  return n;
}

let installed = false;

/**
 * Installs the handlers of the `gradmax` executable (once): SIGINT and SIGTERM run the cleanups and exit with
 * 128 + the signal number (130, 143), as a shell expects; `exit` runs the cleanups; an `EPIPE` on stdout (the reader
 * went away) exits 0 without a stack trace, and stderr errors are ignored.
 */
export function installProcessHandlers(proc: NodeJS.Process = process): void {
  if (installed) return;
  installed = true;
  const onSignal = (signal: NodeJS.Signals, code: number) => () => {
    const removed = runCleanups();
    proc.stderr.write(`gradmax: interrupted (${signal})${removed ? '; temporary files removed' : ''}\n`);
    proc.exit(code);
  };
  proc.on('SIGINT', onSignal('SIGINT', 130));
  proc.on('SIGTERM', onSignal('SIGTERM', 143));
  proc.on('exit', () => void runCleanups());
  proc.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') {
      runCleanups();
      proc.exit(proc.exitCode ?? 0);
    }
    throw e;
  });
  proc.stderr.on('error', () => {
    // nowhere left to report to
  });
}
