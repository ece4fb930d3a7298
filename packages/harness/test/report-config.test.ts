import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildReport, comparisonSection, getTask, learningRateAt, mnistMlp, scheduledGrowthSteps, teacherStudent, type MnistTrainingConfig, type RunResult } from '@gradmax/harness';

const here = path.dirname(fileURLToPath(import.meta.url));

function result(task: string, arm: string, seed: number, config: Record<string, unknown>, summary: Record<string, number>): RunResult {
  return {
    schema: 'gradmax.bench.result/v1',
    status: 'ok',
    id: `${task}__${arm}__seed${seed}`,
    task,
    arm,
    seed,
    backend: { name: 'wasm', device: 'wasm device', requested: 'auto', package: 'pkg' },
    configHash: 'feed0001',
    config,
    versions: { node: '20', '@gradmax/core': '9.9.9' },
    host: { platform: 'linux', arch: 'x64', cpus: 2, cpuModel: 'cpu', node: '20' },
    curves: { trainLoss: { step: [0, 10], value: [2, summary['finalTrainLoss'] ?? 1] } },
    growths: [],
    summary,
    timings: { totalMs: 1500, setupMs: 1, trainMs: 99, growthMs: 0, evalMs: 0, analysisMs: 0, steps: 10 },
    startedAt: '2026-11-26T00:00:00Z',
    finishedAt: '2026-11-26T00:00:02Z',
  };
}

describe('reports follow the resolved config', () => {
  it('teacher-student: the card states the scale and growth steps of the config that ran, not the defaults', () => {
    const changed = { preset: 'default', ...teacherStudent.resolveConfig('default', { scale: 0.5, growStart: 201 }) };
    const md = buildReport([result('teacher-student', 'gradmax', 0, changed, { finalTrainLoss: 0.1 })]).markdown;
    expect(md).toContain('scale 0.5 × mean outgoing norm');
    expect(md).toContain('5 growth events at steps 201, 401, 601, 801, 1001');
    expect(md).not.toContain('200, 400');
    expect(md).not.toMatch(/scale 1(\.0)? /);
    // Versions, seeds and run time come from the results.
    expect(md).toContain('@gradmax/core 9.9.9');
    expect(md).toContain('Seeds: 0. Runs: 1. Run time: 1.5 s summed over runs');
    const defaults = { preset: 'default', ...teacherStudent.resolveConfig('default') };
    const md2 = buildReport([result('teacher-student', 'gradmax', 0, defaults, { finalTrainLoss: 0.1 })]).markdown;
    expect(md2).toContain('5 growth events at steps 200, 400, 600, 800, 1000 (window 13 %–67 % of the 1500 steps; full width for the last 33 %)');
    expect(md2).toContain('scale 1 × mean outgoing norm');
  });

  it('mnist-mlp: budget, widths and schedule follow overrides', () => {
    const c = { preset: 'default', ...mnistMlp.resolveConfig('default', { steps: 2000, growStart: 260, growEvery: 40, growTimes: 4, hidden: 128, scale: 0.25 }) };
    const md = buildReport([result('mnist-mlp', 'big', 0, c, { finalTestAccuracy: 0.9 })]).markdown;
    expect(md).toContain('Budget: 2000 steps; SGD, lr 0.05 with one global cosine decay to 0 over the 2000 steps (unchanged by growth), Nesterov momentum 0.9');
    expect(md).toContain('4 growth events at steps 260, 300, 340, 380 (window 13 %–19 % of the 2000 steps; full width for the last 81 %)');
    expect(md).toContain('start 32 units (0.25·h), +24 per layer per event');
    expect(md).toContain('full h = 128');
    expect(md).toContain('get 0.25 × mean outgoing norm');
  });

  it('image tasks follow the reference timing by default: growth from ~13 % to ≤ 50 % of training, cosine decay, Nesterov', () => {
    for (const name of ['mnist-mlp', 'mnist-cnn', 'fashion-mnist-mlp', 'fashion-mnist-cnn', 'mnist-resnet', 'fashion-mnist-resnet']) {
      const task = getTask(name);
      const c = task.resolveConfig('default') as Record<string, number | string | boolean>;
      const steps = c['steps'] as number;
      // The tfjs tasks run the core allAtOnce schedule, whose events sit on multiples of growEvery: read the steps
      // from it (the MLP tasks grow at growStart + i·growEvery themselves).
      const planned = name.includes('mlp')
        ? Array.from({ length: c['growTimes'] as number }, (_, i) => (c['growStart'] as number) + i * (c['growEvery'] as number))
        : scheduledGrowthSteps(c as unknown as MnistTrainingConfig);
      const first = planned[0]!;
      const last = planned.at(-1)!;
      expect(task.protocol).toContain(`steps ${planned.slice(0, 3).join(', ')}`);
      expect(first / steps).toBeGreaterThanOrEqual(0.12);
      expect(first / steps).toBeLessThanOrEqual(0.14);
      expect(last / steps).toBeLessThanOrEqual(0.5);
      expect(c['lrSchedule']).toBe('cosine');
      expect(c['nesterov']).toBe(true);
      expect(task.protocol).toContain('one global cosine decay to 0');
    }
    expect(getTask('mnist-mlp').protocol).toContain('12 growth events at steps 520, 650, 780, …, 1950 (window 13 %–49 % of the 4000 steps; full width for the last 51 %)');
    const c = { learningRate: 0.1, lrSchedule: 'cosine', steps: 100 };
    expect(learningRateAt(c, 0)).toBeCloseTo(0.1, 15);
    expect(learningRateAt(c, 50)).toBeCloseTo(0.05, 15);
    expect(learningRateAt(c, 100)).toBeCloseTo(0, 15);
    expect(learningRateAt({ ...c, lrSchedule: 'constant' }, 70)).toBe(0.1);
    expect(() => getTask('mnist-mlp').resolveConfig('default', { lrSchedule: 'step' })).toThrow(/lrSchedule/);
  });

  it('the generic report builder names no task and hard-codes no arm order', () => {
    const src = readFileSync(path.join(here, '../src/report/build.ts'), 'utf8');
    expect(src).not.toMatch(/'teacher-student'|'growth-gain'|'gradmaxOpt'|ARM_ORDER/);
  });
});

describe('comparison tables', () => {
  const metric = { key: 'finalTestAccuracy', label: 'test accuracy', higherIsBetter: true, percent: true };
  const seeds = [0, 1, 2, 3, 4, 5];
  const arms = (values: Record<string, number[]>) => new Map(Object.entries(values).map(([arm, xs]) => [arm, xs.map((x, i) => result('t', arm, seeds[i]!, {}, { finalTestAccuracy: x }))]));

  it('a consistent paired advantage over 6 seeds is significant (exact p = 2/64); the gap recovered is (arm − small)/(big − small)', () => {
    const small = [0.9, 0.91, 0.92, 0.9, 0.91, 0.92];
    const big = small.map((x) => x + 0.08);
    const random = small.map((x, i) => x + 0.02 + 0.001 * i);
    const gradmax = small.map((x) => x + 0.06);
    const r = comparisonSection(metric, arms({ gradmax, random, small, big }));
    const vsRandom = r.comparisons.find((c) => c.arm === 'gradmax' && c.against === 'random')!;
    expect(vsRandom.test.p).toBeCloseTo(2 / 64, 12);
    expect(vsRandom.test.meanDiff).toBeCloseTo(0.06 - 0.0225, 12);
    expect(r.discrimination!.test.p).toBeCloseTo(2 / 64, 12);
    const gap = r.gap.find((g) => g.arm === 'gradmax')!;
    expect(gap.share).toBeCloseTo(0.75, 12);
    expect(gap.ci.lo).toBeCloseTo(0.75, 10);
    const md = r.markdown.join('\n');
    expect(md).toContain('Discrimination check ✅');
    expect(md).toContain('**gradmax vs random** (6 paired seeds): gradmax is better than random by 3.75 pp');
    expect(md).toContain('p = 0.031: **significant** at 0.05');
    expect(md).toContain('| gradmax | 6 | 97 % | 0.89 pp |');
    expect(md).toContain('75 % [75, 75]');
    // Same results → same report.
    expect(comparisonSection(metric, arms({ gradmax, random, small, big })).markdown).toEqual(r.markdown);
  });

  it('post-growth loss windows carry a paired p-value against random', () => {
    const runs = ['gradmax', 'random'].flatMap((arm) =>
      seeds.map((seed) => {
        const r = result('teacher-student', arm, seed, { preset: 'tiny' }, { finalTrainLoss: 0.1 });
        const level = (arm === 'gradmax' ? 1 : 1.5) + 0.01 * seed;
        r.curves = { trainLoss: { step: [0, 10, 20, 30], value: [2, level, level, level] } };
        r.growths = [{ step: 10, site: 'hidden0', strategy: arm, unitsBefore: 3, unitsAfter: 4, durationMs: 1 }];
        return r;
      }),
    );
    const md = buildReport(runs).markdown;
    expect(md).toContain('| gradmax | 1.025 ± 0.019 (p 0.031) |');
    expect(md).toContain('| random | 1.525 ± 0.019 |');
    expect(md).toContain('paired sign-flip permutation test against `random`');
  });

  it('strategy notes (e.g. directions beyond the fan-out are not orthogonal) reach the report with counts', () => {
    const note = '5 units requested but fan-out is 3: 2 direction(s) are random unit vectors, not orthogonal to the others';
    const runs = [0, 1].map((seed) => {
      const r = result('teacher-student', 'gradmax', seed, { preset: 'tiny' }, { finalTrainLoss: 0.1 });
      r.growths = [{ step: 10, site: 'hidden0', strategy: 'gradmax', unitsBefore: 3, unitsAfter: 8, durationMs: 1, notes: [note] }];
      return r;
    });
    const md = buildReport(runs).markdown;
    expect(md).toContain(`- \`gradmax\` (2×): ${note}`);
  });

  it('says when the task cannot rank strategies, and when too few seeds make significance impossible', () => {
    const small = [0.9, 0.95, 0.9];
    const big = [0.91, 0.94, 0.9];
    const md = comparisonSection(metric, arms({ gradmax: [0.93, 0.96, 0.92], random: [0.92, 0.95, 0.91], small, big })).markdown.join('\n');
    expect(md).toContain('Discrimination check ❌: `big` does not beat `small` significantly');
    expect(md).toContain('the task cannot rank growth strategies');
    expect(md).toContain('with 3 paired seeds the smallest reachable p is 0.25, so no difference can be significant');
    expect(md).toContain('No difference is significant at 0.05.');
  });
});
