/**
 * Markdown and plain-text table helpers shared by the generic report and the task-owned sections.
 */

/** A Markdown table. */
export function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** A fixed-width plain-text table for the terminal. */
export function textTable(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd();
  return [line(header), line(w.map((n) => '-'.repeat(n))), ...rows.map(line)].join('\n');
}

/** ✅ or ❌. */
export function check(ok: boolean): string {
  return ok ? '✅' : '❌';
}

/** A list of steps written out in full (`200, 400, 600`), or its first three and last when longer than `max`. */
export function stepList(steps: readonly number[], max = 6): string {
  if (steps.length <= max) return steps.join(', ');
  return `${steps.slice(0, 3).join(', ')}, …, ${steps[steps.length - 1]}`;
}

/**
 * One sentence describing a growth schedule against the training budget, from the numbers themselves: the
 * growth steps, the window as a share of training and how long the network trains at full width.
 */
export function scheduleSentence(growthSteps: readonly number[], totalSteps: number): string {
  if (!growthSteps.length) return `no growth within the ${totalSteps} training steps`;
  const first = growthSteps[0]!;
  const last = growthSteps[growthSteps.length - 1]!;
  const pct = (s: number) => `${Math.round((s / totalSteps) * 100)} %`;
  return (
    `${growthSteps.length} growth event${growthSteps.length === 1 ? '' : 's'} at step${growthSteps.length === 1 ? '' : 's'} ${stepList(growthSteps)} ` +
    `(window ${pct(first)}–${pct(last)} of the ${totalSteps} steps; full width for the last ${pct(totalSteps - last)})`
  );
}
