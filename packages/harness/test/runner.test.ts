import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { collectResults, readResult, runBenchmark, workerScript, type RunResult } from '@gradmax/harness';

const dirs: string[] = [];
async function tmp(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'gradmax-runner-'));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const base = { tasks: ['teacher-student'], preset: 'tiny', backend: 'wasm' as const, workers: 0 };

function byKey(results: RunResult[]): Map<string, RunResult> {
  return new Map(results.map((r) => [`${r.arm}/${r.seed}`, r]));
}

describe('runner', () => {
  it('is deterministic: the same seed gives the same curves; another seed gives other curves', async () => {
    const [a, b] = [await tmp(), await tmp()];
    const arms = ['gradmax', 'random', 'small', 'growth-gain'];
    await runBenchmark({ ...base, arms, seeds: [0, 1], out: a });
    await runBenchmark({ ...base, arms, seeds: [0], out: b });
    const ra = byKey((await collectResults([a])).results);
    const rb = byKey((await collectResults([b])).results);
    expect(ra.size).toBe(8);
    for (const arm of arms) {
      const x = ra.get(`${arm}/0`)!;
      const y = rb.get(`${arm}/0`)!;
      expect(x.status).toBe('ok');
      expect(y.curves).toEqual(x.curves);
      expect(y.growths?.map((g) => g.newWeightGradNorm)).toEqual(x.growths?.map((g) => g.newWeightGradNorm));
      expect(y.gain).toEqual(x.gain);
      expect(ra.get(`${arm}/1`)!.curves!['trainLoss']!.value).not.toEqual(x.curves!['trainLoss']!.value);
    }
  });

  it('writes self-describing results, skips finished ones and re-runs them with force', async () => {
    const out = await tmp();
    const events: string[] = [];
    const first = await runBenchmark({ ...base, arms: ['gradmax', 'big'], seeds: [2], out, onEvent: (e) => events.push(e.type) });
    expect(first).toMatchObject({ total: 2, skipped: 0, ok: 2, failed: 0 });
    expect(events).toContain('backend');
    const files = await readdir(path.join(out, 'results'));
    expect(files.filter((f) => f.endsWith('.json'))).toHaveLength(2);
    expect(files.some((f) => f.endsWith('.tmp'))).toBe(false);
    const r = (await readResult(first.files.find((f) => f.includes('__gradmax__'))!))!;
    expect(r).toMatchObject({ schema: 'gradmax.bench.result/v1', task: 'teacher-student', arm: 'gradmax', seed: 2, status: 'ok' });
    expect(r.backend.name).toBe('wasm');
    expect(r.versions['@tensorflow/tfjs-core']).toBe('4.22.0');
    expect(r.config['preset']).toBe('tiny');
    expect(r.growths).toHaveLength(2);
    expect(r.growths!.map((g) => [g.unitsBefore, g.unitsAfter])).toEqual([[3, 4], [4, 5]]);
    expect(r.summary!['finalWidth']).toBe(5);
    expect(r.summary!['leakedTensors']).toBe(0);
    expect(r.timings!.steps).toBe(40);
    const before = await readFile(first.files[0]!, 'utf8');
    const second = await runBenchmark({ ...base, arms: ['gradmax', 'big'], seeds: [2], out });
    expect(second).toMatchObject({ total: 2, skipped: 2, ok: 0 });
    expect(await readFile(first.files[0]!, 'utf8')).toBe(before);
    const third = await runBenchmark({ ...base, arms: ['gradmax', 'big'], seeds: [2], out, force: true });
    expect(third).toMatchObject({ skipped: 0, ok: 2 });
    // A different config is a different result (no silent reuse).
    const fourth = await runBenchmark({ ...base, arms: ['big'], seeds: [2], out, overrides: { learningRate: '0.05' } });
    expect(fourth).toMatchObject({ skipped: 0, ok: 1 });
  });

  it('runs shards whose union is the whole grid', async () => {
    const out = await tmp();
    const arms = ['random', 'small', 'big'];
    const s0 = await runBenchmark({ ...base, arms, seeds: [0, 1], out, shard: { index: 0, count: 2 } });
    const s1 = await runBenchmark({ ...base, arms, seeds: [0, 1], out, shard: { index: 1, count: 2 } });
    expect(s0.total + s1.total).toBe(6);
    const ids = (await collectResults([out])).results.map((r) => `${r.arm}/${r.seed}`).sort();
    expect(ids).toEqual(['big/0', 'big/1', 'random/0', 'random/1', 'small/0', 'small/1']);
  });

  it('refuses unknown tasks and arms before running anything', async () => {
    const out = await tmp();
    await expect(runBenchmark({ ...base, arms: ['gradmax', 'bogus'], seeds: [0], out })).rejects.toThrow(/unknown arm of task "teacher-student" "bogus"/);
    await expect(runBenchmark({ ...base, tasks: ['nope'], seeds: [0], out })).rejects.toThrow(/unknown task "nope"/);
    expect((await collectResults([out]).catch(() => ({ results: [] }))).results).toEqual([]);
  });

  it('records a failing run as a failed result instead of throwing', async () => {
    const out = await tmp();
    // meanNorm scale on a strategy with a bad option value fails inside the run.
    const s = await runBenchmark({ ...base, arms: ['gradmax'], seeds: [0], out, overrides: { strategyOptions: '{"gradmax":{"scaleMethod":"bogus"}}' } });
    expect(s.failed).toBe(1);
    const r = (await collectResults([out])).results[0]!;
    expect(r.status).toBe('failed');
    expect(r.error).toMatch(/scaleMethod/);
  });

  it.skipIf(!workerScript())('worker processes give the same results as an in-process run', async () => {
    const [a, b] = [await tmp(), await tmp()];
    const arms = ['gradmax', 'random', 'big'];
    await runBenchmark({ ...base, arms, seeds: [0, 1], out: a, workers: 2 });
    await runBenchmark({ ...base, arms, seeds: [0, 1], out: b, workers: 0 });
    const ra = byKey((await collectResults([a])).results);
    const rb = byKey((await collectResults([b])).results);
    expect(ra.size).toBe(6);
    for (const [k, r] of ra) expect(r.curves, k).toEqual(rb.get(k)!.curves);
  });
});
