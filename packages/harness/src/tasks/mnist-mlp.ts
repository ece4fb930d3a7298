/**
 * `mnist-mlp`: an MLP 784-h-h-10 on full MNIST grown from 0.25× to 1× width on an all-at-once schedule.
 */
import type * as tfc from '@tensorflow/tfjs-core';
import { Rng, type GrowthStrategy } from '@gradmax/core';
import { resolveFlatConfig } from '../config.js';
import { growMlpSite } from '../growth.js';
import { GrowableMlp, glorotMlp } from '../mlp.js';
import { validateImageTrainingConfig, BatchStream, DATA_NAME, DATA_SOURCE, gatherBatch, learningRateAt, loadImages, optimizerSentence, takeMnist, type ImageDataset, type MnistSplit, type MnistTrainingConfig } from '../mnist.js';
import { pushPoint, testEvaluator } from '../curves.js';
import { armKind, makeStrategy, parseArm } from '../strategies.js';
import type { Curve, GrowthRecord, Task, TaskContext, TaskOutput } from '../types.js';
import { scheduleSentence } from '../report/markdown.js';

/** Config of `mnist-mlp` (flat; `--set key=value`). */
export interface MnistMlpConfig extends MnistTrainingConfig {
  /** Full hidden width h (the `big` baseline and the end of growth). */
  hidden: number;
}

const DEFAULTS: MnistMlpConfig = {
  hidden: 256,
  startFraction: 0.25,
  growTimes: 12,
  growStart: 520,
  growEvery: 130,
  steps: 4000,
  batch: 128,
  growBatch: 128,
  learningRate: 0.05,
  momentum: 0.9,
  trainSize: 60000,
  testSize: 10000,
  evalEvery: 500,
  logEvery: 10,
  scale: 0.5,
  nesterov: true,
  lrSchedule: 'cosine',
};

const PRESETS: Record<string, Partial<MnistMlpConfig>> = {
  default: {},
  tiny: { hidden: 32, growTimes: 3, growStart: 10, growEvery: 10, steps: 50, batch: 32, growBatch: 32, trainSize: 2000, testSize: 500, evalEvery: 25, logEvery: 5 },
};

const SCALED = ['gradmax', 'gradmaxOpt', 'random'];

/** Evaluates loss and accuracy on a split in chunks. */
export function evaluateMlp(tf: typeof tfc, model: GrowableMlp, split: MnistSplit, chunk = 2000): { loss: number; accuracy: number } {
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < split.count; start += chunk) {
    const n = Math.min(chunk, split.count - start);
    const idx = Int32Array.from({ length: n }, (_, i) => start + i);
    const { x, y } = gatherBatch(split, idx);
    const r = tf.tidy(() => {
      const xt = tf.tensor2d(x, [n, 784]);
      const yt = tf.tensor2d(y, [n, 10]);
      const out = model.forward(xt);
      return tf.stack([tf.mul(model.lossOf(out, yt), n), tf.sum(tf.cast(tf.equal(tf.argMax(out, 1), tf.argMax(yt, 1)), 'float32'))]);
    });
    const [l, c] = r.dataSync();
    r.dispose();
    lossSum += l!;
    correct += c!;
  }
  return { loss: lossSum / split.count, accuracy: correct / split.count };
}

async function runImageMlp(dataset: ImageDataset, self: () => Task<MnistMlpConfig>, ctx: TaskContext<MnistMlpConfig>): Promise<TaskOutput> {
  const { tf, config: c, arm, seed } = ctx;
  const kind = armKind(self(), arm);
  const t0 = performance.now();
  const train = takeMnist(loadImages(dataset, 'train'), c.trainSize);
  const test = takeMnist(loadImages(dataset, 'test'), c.testSize);
  const root = new Rng(seed);
  const { start, perGrowth } = mlpPlan(c);
  const width = kind === 'big' ? c.hidden : start;
  const model = new GrowableMlp(tf, glorotMlp([784, width, width, 10], root.fork(kind === 'big' ? 'init-big' : 'init'), true), { loss: 'softmaxCrossEntropy', momentum: c.momentum, nesterov: c.nesterov });
  const strategy: GrowthStrategy | undefined = kind === 'strategy' ? makeStrategy(arm, SCALED.includes(parseArm(arm).strategy) ? { scale: c.scale } : {}) : undefined;
  const schedule = new Map<number, number>();
  if (strategy) for (let i = 0; i < c.growTimes; i++) schedule.set(c.growStart + i * c.growEvery, i);
  const stream = new BatchStream(train.count, c.batch, root.fork('shuffle'));
  const growRng = root.fork('grow-batches');
  const setupMs = performance.now() - t0;
  const trainLoss: Curve = { step: [], value: [] };
  const widthCurve: Curve = { step: [0], value: [width] };
  const growths: GrowthRecord[] = [];
  let trainMs = 0;
  let growthMs = 0;
  const tests = testEvaluator(() => evaluateMlp(tf, model, test));
  const evaluate = (step: number) => tests.evaluate(step);
  try {
    for (let step = 0; step < c.steps; step++) {
      const event = schedule.get(step);
      if (event !== undefined && strategy) {
        const idx = Int32Array.from({ length: c.growBatch }, () => growRng.int(train.count));
        const { x, y } = gatherBatch(train, idx);
        const xt = tf.tensor2d(x, [c.growBatch, 784]);
        const yt = tf.tensor2d(y, [c.growBatch, 10]);
        for (let site = 0; site < model.siteCount; site++) {
          const rec = growMlpSite(model, site, strategy, perGrowth, xt, yt, root.fork('growth').fork(event).fork(site), step);
          growths.push(rec);
          growthMs += rec.durationMs;
        }
        xt.dispose();
        yt.dispose();
        pushPoint(widthCurve, step, model.hiddenWidths[0]!);
      }
      if (step > 0 && step % c.evalEvery === 0) evaluate(step);
      const ts = performance.now();
      const { x, y } = gatherBatch(train, stream.next());
      const xt = tf.tensor2d(x, [c.batch, 784]);
      const yt = tf.tensor2d(y, [c.batch, 10]);
      const loss = model.step(xt, yt, learningRateAt(c, step));
      if (step % c.logEvery === 0) pushPoint(trainLoss, step, loss.dataSync()[0]!);
      loss.dispose();
      xt.dispose();
      yt.dispose();
      trainMs += performance.now() - ts;
      if (ctx.progress && step % 20 === 0) ctx.progress(step / c.steps);
    }
    const final = evaluate(c.steps);
    return {
      curves: { trainLoss, testLoss: tests.testLoss, testAccuracy: tests.testAccuracy, width: widthCurve },
      growths,
      summary: {
        finalTrainLoss: trainLoss.value.length ? trainLoss.value[trainLoss.value.length - 1]! : NaN,
        finalTestLoss: final.loss,
        finalTestAccuracy: final.accuracy,
        finalWidth: model.hiddenWidths[0]!,
        parameters: model.parameterCount,
      },
      timings: { setupMs, trainMs, growthMs, evalMs: tests.ms, analysisMs: 0, steps: c.steps },
    };
  } finally {
    model.dispose();
  }
}

/** Widths of the MLP task: start width per hidden layer, units added per layer per event, growth steps. */
function mlpPlan(c: MnistMlpConfig): { start: number; perGrowth: number; steps: number[] } {
  const start = Math.max(1, Math.round(c.hidden * c.startFraction));
  const perGrowth = Math.max(1, Math.floor(start * ((1 - c.startFraction) / c.startFraction / Math.max(1, c.growTimes))));
  const steps: number[] = [];
  for (let i = 0; i < c.growTimes; i++) steps.push(c.growStart + i * c.growEvery);
  return { start, perGrowth, steps: steps.filter((s) => s < c.steps) };
}

/** The `mnist-mlp` card (Markdown list) for a resolved config: every number comes from `c`. */
export function describeMnistMlp(c: MnistMlpConfig, data: ImageDataset = 'mnist'): string {
  const plan = mlpPlan(c);
  const end = plan.start + plan.steps.length * plan.perGrowth;
  return [
    '- Claim tested (paper §4.2, MLP on MNIST-like data): a network grown with GradMax from a small start reaches better test accuracy than one grown with Random, approaching the big network trained at full width.',
    `- Data: ${DATA_SOURCE[data]} (first ${c.trainSize} train / ${c.testSize} test examples, pixels in [0, 1], no augmentation).`,
    `- Model (harness MLP, float32 tfjs): 784-h-h-10, relu1 hidden layers with biases, softmax cross-entropy, Glorot-uniform init; full h = ${c.hidden}.`,
    `- Budget: ${c.steps} steps; ${optimizerSentence(c)}, reshuffled every epoch.`,
    `- Schedule (all at once, both hidden layers): start ${plan.start} units (${c.startFraction}·h), +${plan.perGrowth} per layer per event, ${scheduleSentence(plan.steps, c.steps)}, to ${end} units; grown in network order on one shared random grow batch of ${c.growBatch} (not used for training).`,
    `- Scale: strategies taking \`scale\` get ${c.scale} × mean outgoing norm.`,
    `- Baselines: \`small\` (${plan.start} units) and \`big\` (${c.hidden} units) trained ${c.steps} steps without growth. Test loss and accuracy every ${c.evalEvery} steps and at the end.`,
  ].join('\n');
}

/**
 * `mnist-mlp`: MLP 784-h-h-10 (relu1 hidden layers, biases, softmax cross-entropy) on MNIST. Growing arms start
 * at 0.25·h per hidden layer and grow both layers all at once (network order, one shared grow batch) by 0.25 of
 * the initial width per event, 12 events, to h. SGD with momentum, padded with zeros for new weights.
 */
function imageMlpTask(name: string, dataset: ImageDataset): Task<MnistMlpConfig> {
  const task: Task<MnistMlpConfig> = {
    name,
    description: `MLP 784-h-h-10 on full ${DATA_NAME[dataset]} grown from 0.25× to 1× width, all layers at once; test accuracy and loss.`,
    get protocol() {
      return describeMnistMlp(resolveFlatConfig(name, DEFAULTS, PRESETS, 'default'), dataset);
    },
    describe: (c) => describeMnistMlp(c, dataset),
    metric: { key: 'finalTestAccuracy', label: 'test accuracy', higherIsBetter: true, percent: true },
    defaultSeeds: 3,
    presets: Object.keys(PRESETS),
    analysisArms: [],
    resolveConfig(preset, overrides) {
      const c = resolveFlatConfig(name, DEFAULTS, PRESETS, preset, overrides);
      validateImageTrainingConfig(name, c, ['hidden']);
      return c;
    },
    run: (ctx) => runImageMlp(dataset, () => task, ctx),
  };
  return task;
}

/** `mnist-mlp` on MNIST. */
export const mnistMlp: Task<MnistMlpConfig> = imageMlpTask('mnist-mlp', 'mnist');

/** `fashion-mnist-mlp`: the same model, budget and schedule on Fashion-MNIST (Debian's \`dataset-fashion-mnist\`). */
export const fashionMnistMlp: Task<MnistMlpConfig> = imageMlpTask('fashion-mnist-mlp', 'fashion-mnist');
