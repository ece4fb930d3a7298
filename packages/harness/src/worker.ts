/**
 * Worker-process entry: receives {@link CellJob}s over IPC, runs them one at a time, reports progress.
 * Started by the runner with `child_process.fork`; not meant to be run by hand.
 */
import { executeCell, type CellJob } from './execute.js';

/** Messages a worker sends to the coordinator. */
export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'progress'; id: number; fraction: number }
  | { type: 'done'; id: number; file: string; status: 'ok' | 'failed'; error?: string; backend: string; totalMs?: number }
  | { type: 'crash'; id: number; error: string };

/** Messages the coordinator sends to a worker. */
export type CoordinatorMessage = { type: 'run'; id: number; job: CellJob } | { type: 'exit' };

function send(message: WorkerMessage): void {
  process.send?.(message);
}

if (process.send) {
  // The coordinator is gone (finished, killed or crashed): stop too.
  process.on('disconnect', () => process.exit(0));
  process.on('message', (message: CoordinatorMessage) => {
    if (message.type === 'exit') {
      process.disconnect();
      return;
    }
    const { id, job } = message;
    let last = 0;
    executeCell(job, (fraction) => {
      // 'disconnect' only fires between steps of the event loop; a long run checks at every progress report too
      if (!process.connected) process.exit(0);
      const now = Date.now();
      if (now - last > 250) {
        last = now;
        send({ type: 'progress', id, fraction });
      }
    }).then(
      ({ result, file }) =>
        send({ type: 'done', id, file, status: result.status, backend: result.backend.name, ...(result.error ? { error: result.error } : {}), ...(result.timings ? { totalMs: result.timings.totalMs } : {}) }),
      (error: unknown) => send({ type: 'crash', id, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) }),
    );
  });
  send({ type: 'ready' });
}
