import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { collectResults, defaultArms, getTask, listTasks, runBenchmark, scheduledGrowthSteps, type MnistTrainingConfig, type RunResult } from '@gradmax/harness';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function runTiny(task: string, arms: string[], overrides: Record<string, unknown> = {}): Promise<Map<string, RunResult>> {
  const out = await mkdtemp(path.join(os.tmpdir(), `gradmax-${task}-`));
  dirs.push(out);
  const s = await runBenchmark({ tasks: [task], arms, seeds: [0], preset: 'tiny', backend: 'wasm', workers: 0, out, overrides });
  expect(s.failures).toEqual([]);
  return new Map((await collectResults([out])).results.map((r) => [r.arm, r]));
}

function decreasing(values: number[]): boolean {
  const k = Math.max(1, Math.floor(values.length / 4));
  const head = values.slice(0, k).reduce((a, b) => a + b, 0) / k;
  const tail = values.slice(-k).reduce((a, b) => a + b, 0) / k;
  return tail < head;
}

describe('tasks end to end (tiny settings)', () => {
  it('lists the tasks with presets and arms', () => {
    expect(listTasks().map((t) => t.name)).toEqual(['teacher-student', 'mnist-mlp', 'mnist-cnn', 'fashion-mnist-mlp', 'fashion-mnist-cnn', 'mnist-resnet', 'fashion-mnist-resnet']);
    for (const t of listTasks()) {
      expect(t.presets).toContain('tiny');
      expect(defaultArms(t)).toEqual(expect.arrayContaining(['gradmax', 'random', 'small', 'big']));
    }
    expect(defaultArms(getTask('teacher-student'))).toContain('growth-gain');
    expect(defaultArms(getTask('teacher-student'))).not.toContain('allZero');
    expect(() => getTask('teacher-student').resolveConfig('tiny', { steps: 'many' })).toThrow(/"steps"/);
    expect(() => getTask('teacher-student').resolveConfig('tiny', { nope: 1 })).toThrow(/no config key "nope"/);
    expect(() => getTask('mnist-mlp').resolveConfig('huge')).toThrow(/no preset "huge"/);
  });

  it('teacher-student: growth schedule, baselines and the growth-gain analysis', async () => {
    const r = await runTiny('teacher-student', ['gradmax', 'random', 'small', 'big', 'growth-gain']);
    const g = r.get('gradmax')!;
    expect(g.growths!.map((x) => [x.step, x.unitsBefore, x.unitsAfter])).toEqual([[10, 3, 4], [20, 4, 5]]);
    // GradMax is function-preserving: loss right after growth equals loss before (same float32 computation).
    for (const x of g.growths!) expect(x.lossAfter).toBe(x.lossBefore);
    expect(decreasing(g.curves!['trainLoss']!.value)).toBe(true);
    expect(r.get('small')!.summary!['finalWidth']).toBe(3);
    expect(r.get('big')!.summary!['finalWidth']).toBe(5);
    expect(r.get('small')!.growths).toEqual([]);
    const gain = r.get('growth-gain')!.gain!;
    const strategies = new Set(gain.map((x) => x.strategy));
    expect(strategies.has('gradmax') && strategies.has('random')).toBe(true);
    expect(gain.filter((x) => x.strategy === 'random').every((x) => x.newWeightGradNorm.length === 2 && x.stepsAfter === 10)).toBe(true);
    // Between branches the analysis follows the Random trajectory exactly: the branches leave no trace.
    expect(r.get('growth-gain')!.growths!.every((x) => x.strategy === 'random')).toBe(true);
    expect(r.get('growth-gain')!.curves!['trainLoss']).toEqual(r.get('random')!.curves!['trainLoss']);
  });

  it('mnist-mlp: both hidden layers grow 0.25× → 1×, test accuracy above chance', async () => {
    const r = await runTiny('mnist-mlp', ['gradmax', 'small', 'big']);
    const g = r.get('gradmax')!;
    expect(g.growths!.map((x) => `${x.site}:${x.unitsBefore}->${x.unitsAfter}`)).toEqual([
      'hidden0:8->16', 'hidden1:8->16', 'hidden0:16->24', 'hidden1:16->24', 'hidden0:24->32', 'hidden1:24->32',
    ]);
    expect(g.summary!['finalWidth']).toBe(32);
    expect(r.get('small')!.summary!['finalWidth']).toBe(8);
    for (const arm of ['gradmax', 'big']) expect(r.get(arm)!.summary!['finalTestAccuracy']).toBeGreaterThan(0.3);
    expect(g.curves!['testAccuracy']!.step).toEqual([25, 50]);
    expect(g.summary!['leakedTensors']).toBe(0);
  });

  it('mnist-cnn: grows all three sites with @gradmax/tfjs (max pooling), including the sample-based strategies', async () => {
    const grown = ['gradmax', 'random', 'firefly', 'north', 'tiny'];
    expect(defaultArms(getTask('mnist-cnn'))).toEqual(expect.arrayContaining(grown));
    expect(defaultArms(getTask('mnist-cnn'))).not.toContain('allZero');
    // The preset's grow batch of 8 is small enough for TINY's line search to saturate the softmax (every per-example
    // gradient exactly zero, no samples offered); TINY must then add inert units, not fail (see docs/harness.md).
    const r = await runTiny('mnist-cnn', [...grown, 'small']);
    const first = r.get('gradmax')!.growths!.slice(0, 3);
    for (const arm of grown) {
      const g = r.get(arm)!;
      expect(g.growths!.map((x) => `${x.strategy} ${x.site}:${x.unitsBefore}->${x.unitsAfter}`)).toEqual([
        'conv1->conv2:1->2', 'conv2->fc1:2->4', 'fc1->out:2->4',
        'conv1->conv2:2->3', 'conv2->fc1:4->6', 'fc1->out:4->6',
        'conv1->conv2:3->4', 'conv2->fc1:6->8', 'fc1->out:6->8',
      ].map((x) => `${arm} ${x}`));
      expect(g.summary!['finalWidth']).toBe(4);
      expect(g.summary!['leakedTensors']).toBe(0);
      expect(Number.isFinite(g.summary!['finalTestLoss'])).toBe(true);
      for (const x of g.growths!) {
        for (const k of ['newWeightGradNorm', 'newIncomingGradNorm', 'newOutgoingGradNorm', 'kernelGradNormBefore', 'kernelGradNormAfter', 'lossBefore', 'lossAfter'] as const) {
          expect(Number.isFinite(x[k])).toBe(true);
        }
        expect(x.newWeightGradNorm).toBeCloseTo(Math.hypot(x.newIncomingGradNorm!, x.newOutgoingGradNorm!), 12);
      }
      // Same model, same grow batch before the first growth in every arm.
      g.growths!.slice(0, 3).forEach((x, i) => {
        expect(x.lossBefore).toBe(first[i]!.lossBefore);
        expect(x.kernelGradNormBefore).toBe(first[i]!.kernelGradNormBefore);
      });
    }
    for (const arm of ['gradmax', 'random']) {
      // Incoming-zero and function-preserving: the loss is unchanged (up to float32 summation order over the extra
      // zero channels), new units' activations are zero so their outgoing weights get no gradient, the incoming do.
      for (const x of r.get(arm)!.growths!) {
        expect(Math.abs(x.lossAfter! - x.lossBefore!)).toBeLessThan(1e-5 * x.lossBefore!);
        expect(x.newOutgoingGradNorm).toBe(0);
        expect(x.newIncomingGradNorm).toBeGreaterThan(0);
      }
    }
    expect(r.get('small')!.summary!['finalWidth']).toBe(1);
    expect(Number.isFinite(r.get('small')!.summary!['finalTestLoss'])).toBe(true);
  });
  it('mnist-resnet: the residual stage grows as one channel group with the inner convs, function-preserving', async () => {
    expect(defaultArms(getTask('mnist-resnet'))).toEqual(expect.arrayContaining(['gradmax', 'gradmaxOpt', 'random']));
    for (const arm of ['firefly', 'north', 'tiny', 'allZero']) expect(defaultArms(getTask('mnist-resnet'))).not.toContain(arm);
    const r = await runTiny('mnist-resnet', ['gradmax', 'random', 'small', 'big']);
    for (const arm of ['gradmax', 'random']) {
      const g = r.get(arm)!;
      expect(g.growths!.map((x) => `${x.site}:${x.unitsBefore}->${x.unitsAfter}`)).toEqual([
        'b1_conv1->b1_conv2:1->2', 'stem+b1_conv2->b1_conv1+logits:1->2',
        'b1_conv1->b1_conv2:2->3', 'stem+b1_conv2->b1_conv1+logits:2->3',
        'b1_conv1->b1_conv2:3->4', 'stem+b1_conv2->b1_conv1+logits:3->4',
      ]);
      expect(g.summary!['finalWidth']).toBe(4);
      expect(g.summary!['leakedTensors']).toBe(0);
      // Incoming-zero strategies on the stage group and the inner pair: the grow batch's loss is unchanged (the new
      // channels are zero through BN, the Adds and the pooling), measured independently of the adapter.
      for (const x of g.growths!) expect(Math.abs(x.lossAfter! - x.lossBefore!)).toBeLessThan(1e-5 * x.lossBefore!);
      expect(Number.isFinite(g.summary!['finalTestAccuracy'])).toBe(true);
    }
    // The card's growth steps are the steps the run grew at (the core schedule's, not growStart + i·growEvery).
    const config = r.get('gradmax')!.config as unknown as MnistTrainingConfig;
    expect([...new Set(r.get('gradmax')!.growths!.map((x) => x.step))]).toEqual(scheduledGrowthSteps(config));
    expect(getTask('mnist-resnet').describe(config)).toContain(`steps ${scheduledGrowthSteps(config).join(', ')}`);
    // Grown arms end with the big model's parameter count (same architecture at full width).
    expect(r.get('gradmax')!.summary!['parameters']).toBe(r.get('big')!.summary!['parameters']);
    expect(r.get('small')!.summary!['finalWidth']).toBe(1);
  });
});
