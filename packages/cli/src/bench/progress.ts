/**
 * Progress output for `gradmax bench run`: a redrawn one-line bar on a TTY, plain lines otherwise (CI, pipes).
 */
import type { RunnerEvent } from './harness.js';


/** Progress printer. */
export interface Progress {
  start(total: number): void;
  event(e: RunnerEvent): void;
  finish(): void;
}

function label(cell: { task: string; arm: string; seed: number }): string {
  return `${cell.task}/${cell.arm}/seed ${cell.seed}`;
}

/** Creates a progress printer writing to `sink` (stderr); `tty` selects the redrawn bar (see `canAnimate`). */
export function createProgress(sink: { write(text: string): unknown }, options: { tty: boolean; width?: number }): Progress {
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
    sink.write(`\r\x1b[2K${line.slice(0, 160)}`);
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
          if (e.status !== 'ok') sink.write(`\r\x1b[2K${text}\n`);
        } else sink.write(`${text}\n`);
      }
      draw();
    },
    finish() {
      if (options.tty && drawn) sink.write('\n');
    },
  };
}
