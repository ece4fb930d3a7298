// Comparing two growth strategies with the @gradmax/harness API.
//
// Runs the teacher-student task (paper §4.1) for GradMax and Random plus the small/big baselines over a few
// seeds, in parallel worker processes, then writes a Markdown report with SVG plots and prints the summary.
//
// Run: pnpm --filter @gradmax/example-compare-strategies start
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { reportFromPaths, runBenchmark } from '@gradmax/harness';

/**
 * @param {{ out?: string, preset?: string, seeds?: number[], workers?: number, log?: (line: string) => void }} options
 */
export async function main({ out = path.join(path.dirname(fileURLToPath(import.meta.url)), 'compare-report'), preset = 'default', seeds = [0, 1, 2], workers, log = console.log } = {}) {
  const summary = await runBenchmark({
    tasks: ['teacher-student'],
    arms: ['gradmax', 'random', 'small', 'big'],
    seeds,
    preset,
    out,
    ...(workers !== undefined ? { workers } : {}),
    onEvent: (e) => {
      if (e.type === 'backend') log(`backend: ${e.backend.device}`);
      if (e.type === 'done') log(`${e.status} ${e.cell.arm} seed ${e.cell.seed}`);
    },
  });
  const report = await reportFromPaths([out], out, 'GradMax vs Random on the teacher-student task');
  log(report.summary);
  log(`report: ${path.join(out, 'report.md')}`);
  const rows = report.groups[0]?.results ?? [];
  const finalLoss = (arm) => rows.filter((r) => r.arm === arm).map((r) => r.summary.finalTrainLoss);
  return { ok: summary.ok + summary.skipped, failed: summary.failed, gradmax: finalLoss('gradmax'), random: finalLoss('random'), report: path.join(out, 'report.md') };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
