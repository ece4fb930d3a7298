/**
 * A progress indicator: an in-place bar on a TTY, plain lines otherwise (pipes, `CI=true`).
 * @packageDocumentation
 */
import { canAnimate, type CliIO } from './io.js';

/** A progress indicator for one task. */
export interface ProgressBar {
  /** Reports `done` out of `total`. */
  update(done: number): void;
  /** Ends the bar (prints the final state once). */
  finish(): void;
}

function formatAmount(n: number, unit: string): string {
  if (unit === 'B') return n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : `${(n / 1e6).toFixed(1)} MB`;
  return `${n}${unit ? ` ${unit}` : ''}`;
}

/**
 * Creates a progress bar for `label` with `total` units on `io.stderr`. On a TTY the line is redrawn in place; otherwise
 * one plain line is printed per `step` fraction (default every 25%) plus the final one.
 */
export function createProgressBar(io: CliIO, label: string, total: number, options: { unit?: string; step?: number; width?: number } = {}): ProgressBar {
  const unit = options.unit ?? '';
  const animate = canAnimate(io);
  const step = options.step ?? 0.25;
  const width = options.width ?? 24;
  let lastBucket = -1;
  let finished = false;
  let last = 0;
  const line = (done: number) => {
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    const pct = Math.round(frac * 100);
    return { frac, text: `${label} ${pct}% (${formatAmount(done, unit)} of ${formatAmount(total, unit)})`, bar: `${'#'.repeat(Math.round(frac * width))}${'.'.repeat(width - Math.round(frac * width))}` };
  };
  return {
    update(done: number) {
      if (finished) return;
      last = done;
      const { frac, text, bar } = line(done);
      if (animate) {
        io.stderr.write(`\r[${bar}] ${text}`);
        return;
      }
      const bucket = Math.floor(frac / step);
      if (bucket > lastBucket && frac < 1) {
        lastBucket = bucket;
        io.stderr.write(`${text}\n`);
      }
    },
    finish() {
      if (finished) return;
      finished = true;
      const { text, bar } = line(Math.max(last, total));
      io.stderr.write(animate ? `\r[${bar}] ${text}\n` : `${text}\n`);
    },
  };
}
