import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { armKind, buildReport, collectResults, growthIntervals, parseArm, runBenchmark, teacherStudent, variantSection, type RunResult } from '@gradmax/harness';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** A teacher-student-like result whose loss curve is `level` everywhere except `bump` right after each growth. */
function run(arm: string, seed: number, level: number, bump: number, final: number): RunResult {
  const step: number[] = [];
  const value: number[] = [];
  for (let t = 0; t < 100; t++) {
    step.push(t);
    // Growths at 20, 40, 60: the first half of each interval (10 steps) carries the bump.
    const inFirstHalf = [20, 40, 60].some((g) => t >= g && t < g + 10);
    value.push(level + (inFirstHalf ? bump : 0));
  }
  return {
    schema: 'gradmax.bench.result/v1',
    status: 'ok',
    id: `teacher-student__${arm}__seed${seed}`,
    task: 'teacher-student',
    arm,
    seed,
    backend: { name: 'wasm', device: 'wasm device', requested: 'auto', package: 'pkg' },
    configHash: 'feed0002',
    config: { preset: 'default', ...teacherStudent.resolveConfig('default', { steps: 100, growStart: 20, growEvery: 20, growTimes: 3 }) },
    versions: { node: '20' },
    host: { platform: 'linux', arch: 'x64', cpus: 2, cpuModel: 'cpu', node: '20' },
    curves: { trainLoss: { step, value } },
    growths: [20, 40, 60].map((s) => ({ step: s, site: 'hidden0', strategy: arm, unitsBefore: 5, unitsAfter: 6, durationMs: 1 })),
    summary: { finalTrainLoss: final },
    timings: { totalMs: 10, setupMs: 1, trainMs: 9, growthMs: 0, evalMs: 0, analysisMs: 0, steps: 100 },
    startedAt: '2026-11-26T00:00:00Z',
    finishedAt: '2026-11-26T00:00:01Z',
  };
}

describe('variant arms', () => {
  it('parseArm splits a strategy from its options (JSON values keep their type) and refuses a malformed pair', () => {
    expect(parseArm('gradmax')).toEqual({ strategy: 'gradmax', options: {} });
    expect(parseArm('gradmax:sign=largestNegative:scale=1:keepSingularValues=true')).toEqual({ strategy: 'gradmax', options: { sign: 'largestNegative', scale: 1, keepSingularValues: true } });
    expect(() => parseArm('gradmax:sign')).toThrow(/arm "gradmax:sign": "sign" is not key=value/);
    expect(armKind(teacherStudent, 'gradmax:sign=random')).toBe('strategy');
    expect(() => armKind(teacherStudent, 'bogus:sign=random')).toThrow(/bogus/);
  });

  it('a variant arm runs its strategy with the options (teacher-student and mnist-mlp, tiny): same gain, another trajectory', async () => {
    for (const task of ['teacher-student', 'mnist-mlp']) {
      const out = await mkdtemp(path.join(os.tmpdir(), `gradmax-variant-${task}-`));
      dirs.push(out);
      const s = await runBenchmark({ tasks: [task], arms: ['gradmax', 'gradmax:sign=largestNegative'], seeds: [0], preset: 'tiny', backend: 'wasm', workers: 0, out });
      expect(s.failures).toEqual([]);
      const byArm = new Map((await collectResults([out])).results.map((r) => [r.arm, r]));
      const pos = byArm.get('gradmax')!;
      const neg = byArm.get('gradmax:sign=largestNegative')!;
      // First growth from the same checkpoint: the gain ‖∂L/∂W_new‖ does not depend on the sign (theory: Ω → −Ω
      // leaves ‖ΩᵀM‖ unchanged), but the network after it does, so the losses part.
      expect(neg.growths![0]!.newIncomingGradNorm!).toBeGreaterThan(0);
      expect(Math.abs(neg.growths![0]!.newIncomingGradNorm! - pos.growths![0]!.newIncomingGradNorm!)).toBeLessThan(1e-4 * pos.growths![0]!.newIncomingGradNorm!);
      expect(neg.curves!.trainLoss!.value).not.toEqual(pos.curves!.trainLoss!.value);
      expect(neg.id).toContain('gradmax_sign_largestNegative');
    }
    // An unknown option value reaches the strategy and fails the run with its message.
    const out = await mkdtemp(path.join(os.tmpdir(), 'gradmax-variant-bad-'));
    dirs.push(out);
    const bad = await runBenchmark({ tasks: ['teacher-student'], arms: ['gradmax:sign=sideways'], seeds: [0], preset: 'tiny', backend: 'wasm', workers: 0, out });
    expect(bad.failures[0]!.error).toMatch(/unknown sign convention "sideways"/);
  });

  it('growthIntervals: to the next growth, then as long as the previous interval', () => {
    expect(growthIntervals([20, 40, 60], 100)).toEqual([{ from: 20, to: 40 }, { from: 40, to: 60 }, { from: 60, to: 80 }]);
    expect(growthIntervals([30], 100)).toEqual([{ from: 30, to: 100 }]);
  });

  it('the section compares every growing arm with the base on the same seeds, with exact permutation p-values', () => {
    const results: RunResult[] = [];
    for (let seed = 0; seed < 6; seed++) {
      results.push(run('gradmax', seed, 1, 0.5, 1));
      // The negative sign: a larger loss right after growth on every seed (by 0.1·(seed + 1)), the same final loss.
      results.push(run('gradmax:sign=largestNegative', seed, 1, 0.5 + 0.1 * (seed + 1), 1));
      results.push(run('random', seed, 1, 0.5, seed % 2 ? 1.1 : 0.9));
    }
    const arms = new Map<string, RunResult[]>();
    for (const r of results) arms.set(r.arm, [...(arms.get(r.arm) ?? []), r]);
    const section = variantSection(teacherStudent.metric, arms, [20, 40, 60], 100);
    const neg = section.comparisons.filter((c) => c.arm === 'gradmax:sign=largestNegative');
    const after = neg.find((c) => c.measure === 'loss right after growth')!;
    // Independent: the right-after window mean is level + bump, so the paired difference is 0.1·(seed + 1), mean 0.35;
    // all six differences are positive, so only the identity and the all-flipped pattern reach |mean|: p = 2/64.
    expect(after.test.meanDiff).toBeCloseTo(0.35, 12);
    expect(after.test.p).toBeCloseTo(2 / 64, 12);
    // Whole interval: half the window carries the bump, so half the difference.
    expect(neg.find((c) => c.measure === 'loss until next growth')!.test.meanDiff).toBeCloseTo(0.175, 12);
    const final = neg.find((c) => c.measure === 'final training loss')!;
    expect(final.test.meanDiff).toBe(0);
    expect(final.test.p).toBe(1);
    const md = section.markdown.join('\n');
    expect(md).toContain('### Variants of `gradmax`: `gradmax:sign=largestNegative`');
    expect(md).toContain('**gradmax:sign=largestNegative vs gradmax** (6 paired seeds): differs significantly at 0.05 on loss right after growth, loss until next growth');
    expect(md).toMatch(/\*\*random vs gradmax\*\* \(6 paired seeds\): no significant difference/);
    // The report includes the section and sorts the variant after its base.
    const report = buildReport(results).markdown;
    expect(report).toContain('### Variants of `gradmax`');
    expect(report.indexOf('| gradmax |')).toBeLessThan(report.indexOf('| gradmax:sign=largestNegative |'));
  });

  it('no variant arm, no section', () => {
    const arms = new Map([['gradmax', [run('gradmax', 0, 1, 0, 1)]]]);
    expect(variantSection(teacherStudent.metric, arms, [20], 100).markdown).toEqual([]);
  });
});
