/**
 * Progress output for `gradmax bench run`: a redrawn one-line bar on a TTY, plain lines otherwise (CI, pipes).
 */
import type { RunnerEvent } from './harness.js';

interface ProgressIO {
  stdout: { write(text: string): unknown };
}

/** Progress printer. */
export interface Progress {
  start(total: number): void;
  event(e: RunnerEvent): void;
  finish(): void;
}

function label(cell: { task: string; arm: string; seed: number }): string {
  return `${cell.task}/${cell.arm}/seed ${cell.seed}`;
}

/** Creates a progress printer; `tty` selects the redrawn bar. */
export function createProgress(io: ProgressIO, options: { tty: boolean; width?: number }): Progress {
  let total = 0;
  let done = 0;
  const running = new Map<string, number>();
  let drawn = false;
  const width = options.width ?? 24;
  const draw = () => {
    if (!options.tty) return;
    const frac = total ? done / total : 1;
    const filled = Math.round(frac * width);
    const active = [...running.entries()].map(([k, f]) => `${k} ${Math.round(f * 100)}%`).join(', ');
    const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}${active ? ` · ${active}` : ''}`;
    io.stdout.write(`\r\x1b[2K${line.slice(0, 160)}`);
    drawn = true;
  };
  return {
    start(n) {
      total = n;
      done = 0;
      draw();
    },
    event(e) {
      if (e.type === 'start') running.set(label(e.cell), 0);
      else if (e.type === 'progress') running.set(label(e.cell), e.fraction);
      else if (e.type === 'done') {
        running.delete(label(e.cell));
        done++;
        const secs = e.totalMs !== undefined ? ` (${(e.totalMs / 1000).toFixed(1)} s)` : '';
        const text = `[${done}/${total}] ${e.status === 'ok' ? 'ok' : 'FAILED'} ${label(e.cell)}${secs}${e.error ? `: ${e.error}` : ''}`;
        if (options.tty) {
          if (e.status !== 'ok') io.stdout.write(`\r\x1b[2K${text}\n`);
        } else io.stdout.write(`${text}\n`);
      }
      draw();
    },
    finish() {
      if (options.tty && drawn) io.stdout.write('\n');
    },
  };
}
