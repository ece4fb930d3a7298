/**
 * `mnist-resnet` / `fashion-mnist-resnet`: a small ResNet-style CNN whose residual stage (the stem and every
 * block's second conv, joined by the Adds) grows as one channel group through `@gradmax/tfjs`, together with the
 * blocks' inner convs.
 */
import type * as tfc from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { Rng, allAtOnce, type GrowthSchedule } from '@gradmax/core';
import { GrowthController, RELU1, findGrowthSites, scheduledSites, type Batch } from '@gradmax/tfjs';
import { resolveFlatConfig } from '../config.js';
import { scheduledGrowthSteps, validateImageTrainingConfig, BatchStream, DATA_NAME, DATA_SOURCE, learningRateAt, loadImages, optimizerSentence, takeMnist, type ImageDataset, type MnistTrainingConfig } from '../mnist.js';
import { pushPoint } from '../curves.js';
import { armKind, parseArm } from '../strategies.js';
import type { Curve, GrowthRecord, Task, TaskContext, TaskOutput } from '../types.js';
import { scheduleSentence } from '../report/markdown.js';
import { imageBatch, trainImageModel } from './mnist-cnn.js';

/** Config of the residual tasks (flat; `--set key=value`). */
export interface ResidualCnnConfig extends MnistTrainingConfig {
  /** Full channels of the residual stage (stem and every block's output). */
  channels: number;
  /** Full channels of each block's inner conv. */
  inner: number;
  /** Residual blocks in the stage. */
  blocks: number;
}

const DEFAULTS: ResidualCnnConfig = {
  channels: 16,
  inner: 16,
  blocks: 2,
  startFraction: 0.25,
  growTimes: 3,
  growStart: 26,
  growEvery: 26,
  steps: 200,
  batch: 32,
  growBatch: 64,
  learningRate: 0.05,
  momentum: 0.9,
  trainSize: 60000,
  testSize: 5000,
  evalEvery: 100,
  logEvery: 5,
  scale: 0.5,
  nesterov: true,
  lrSchedule: 'cosine',
};

const PRESETS: Record<string, Partial<ResidualCnnConfig>> = {
  default: {},
  tiny: { channels: 4, inner: 4, blocks: 1, growTimes: 3, growStart: 2, growEvery: 2, steps: 8, batch: 8, growBatch: 8, trainSize: 128, testSize: 64, evalEvery: 4, logEvery: 1 },
};

const SCALED = ['gradmax', 'gradmaxOpt', 'random'];

/** Widths at `fraction` of the full ones (at least 1). */
function widths(c: ResidualCnnConfig, fraction: number): { channels: number; inner: number } {
  return { channels: Math.max(1, Math.round(c.channels * fraction)), inner: Math.max(1, Math.round(c.inner * fraction)) };
}

/**
 * stem conv 3×3 – BN – relu1 – maxpool 2 – maxpool 2 (28 → 7), then `blocks` × [conv 3×3 – BN – relu1 – conv 3×3 – BN –
 * Add(identity) – relu1] on 7×7 maps, global average pooling, dense 10 softmax. Convs have no bias (BN follows each,
 * moving-average momentum 0.9).
 */
export function buildResidualCnn(c: ResidualCnnConfig, fraction: number, rng: Rng): tfl.LayersModel {
  const w = widths(c, fraction);
  type T = tfl.SymbolicTensor;
  const init = (label: string) => tfl.initializers.glorotUniform({ seed: rng.fork(label).nextUint32() % 2147483647 });
  const conv = (x: T, filters: number, name: string) => tfl.layers.conv2d({ filters, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: init(name), name }).apply(x) as T;
  // BN moving averages with momentum 0.9 (Keras: 0.99), so that the short budgets' test-time statistics are not
  // dominated by the initial mean 0 / variance 1.
  const bn = (x: T, name: string) => tfl.layers.batchNormalization({ momentum: 0.9, name }).apply(x) as T;
  const act = (x: T, name: string) => tfl.layers.activation({ activation: RELU1, name }).apply(x) as T;
  const input = tfl.input({ shape: [28, 28, 1], name: 'image' });
  let x = act(bn(conv(input, w.channels, 'stem'), 'stem_bn'), 'stem_act');
  x = tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool1' }).apply(x) as T;
  x = tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool2' }).apply(x) as T;
  for (let b = 1; b <= c.blocks; b++) {
    let y = act(bn(conv(x, w.inner, `b${b}_conv1`), `b${b}_bn1`), `b${b}_act1`);
    y = bn(conv(y, w.channels, `b${b}_conv2`), `b${b}_bn2`);
    x = act(tfl.layers.add({ name: `b${b}_add` }).apply([x, y]) as T, `b${b}_out`);
  }
  const gap = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as T;
  const out = tfl.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: init('logits'), name: 'logits' }).apply(gap) as T;
  return tfl.model({ inputs: input, outputs: out, name: 'residual_cnn' });
}

/** Mean categorical cross-entropy of the model on a batch in inference mode (BN with its moving statistics). */
function batchLoss(tf: typeof tfc, model: tfl.LayersModel, batch: Batch): number {
  const t = tf.tidy(() => tf.mean(tfl.metrics.categoricalCrossentropy(batch.ys as tfc.Tensor, model.apply(batch.xs as tfc.Tensor, { training: false }) as tfc.Tensor)) as tfc.Scalar);
  const v = t.dataSync()[0]!;
  t.dispose();
  return v;
}

/** Width of the residual stage (the channel group) of a model. */
function stageWidth(model: tfl.LayersModel): number {
  const scan = findGrowthSites(model);
  return (scan.groups[0] ?? scan.sites[0])!.units;
}

async function runResidual(dataset: ImageDataset, self: () => Task<ResidualCnnConfig>, ctx: TaskContext<ResidualCnnConfig>): Promise<TaskOutput> {
  const { tf, config: c, arm, seed } = ctx;
  const kind = armKind(self(), arm);
  const t0 = performance.now();
  const train = takeMnist(loadImages(dataset, 'train'), c.trainSize);
  const test = takeMnist(loadImages(dataset, 'test'), c.testSize);
  const root = new Rng(seed);
  const model = buildResidualCnn(c, kind === 'big' ? 1 : c.startFraction, root.fork(kind === 'big' ? 'init-big' : 'init'));
  const optimizer = tf.train.momentum(learningRateAt(c, 0), c.momentum, c.nesterov);
  model.compile({ optimizer, loss: 'categoricalCrossentropy' });
  const growRng = root.fork('grow-batches');
  const growths: GrowthRecord[] = [];
  const widthCurve: Curve = { step: [0], value: [stageWidth(model)] };
  let controller: GrowthController | undefined;
  let schedule: GrowthSchedule | undefined;
  let growIdx: Int32Array | undefined;
  let lossBefore = NaN;
  let measureMs = 0;
  if (kind === 'strategy') {
    const fraction = (1 / c.startFraction - 1) / Math.max(1, c.growTimes);
    // Every scheduled site grows at each event: the blocks' inner convs (layer pairs) and the residual stage (one group).
    schedule = allAtOnce({ sites: scheduledSites(model), start: c.growStart, every: c.growEvery, times: c.growTimes, amount: { fraction } });
    const { strategy, options: variant } = parseArm(arm);
    const strategyOptions = { ...(SCALED.includes(strategy) ? { scale: c.scale } : {}), ...variant };
    controller = new GrowthController(model, {
      schedule,
      strategy,
      ...(Object.keys(strategyOptions).length ? { strategyOptions } : {}),
      growBatch: () => imageBatch(tf, train, growIdx!),
      seed: root.fork('growth').nextUint32(),
      onGrow: (event, reports) => {
        const tm = performance.now();
        const b = imageBatch(tf, train, growIdx!);
        const lossAfter = batchLoss(tf, model, b);
        tf.dispose([b.xs as tfc.Tensor, b.ys as tfc.Tensor]);
        measureMs += performance.now() - tm;
        for (const r of reports) {
          growths.push({
            step: event.step,
            site: r.site,
            strategy: r.strategy,
            unitsBefore: r.widthBefore,
            unitsAfter: r.widthAfter,
            lossBefore,
            lossAfter,
            durationMs: r.timings.statistics + r.timings.strategy + r.timings.widen,
            ...(r.strategyReport.notes.length ? { notes: r.strategyReport.notes } : {}),
          });
        }
        pushPoint(widthCurve, event.step, stageWidth(model));
      },
    });
  }
  const stream = new BatchStream(train.count, c.batch, root.fork('shuffle'));
  const growAt = async (step: number): Promise<number> => {
    if (!controller || !schedule?.eventAt(step)) return 0;
    const tg = performance.now();
    growIdx = Int32Array.from({ length: c.growBatch }, () => growRng.int(train.count));
    const b = imageBatch(tf, train, growIdx);
    lossBefore = batchLoss(tf, model, b);
    tf.dispose([b.xs as tfc.Tensor, b.ys as tfc.Tensor]);
    measureMs = performance.now() - tg;
    controller.maybeGrow(step);
    return performance.now() - tg - measureMs;
  };
  return trainImageModel(ctx, {
    model,
    optimizer,
    train,
    test,
    stream,
    ...(controller ? { controller } : {}),
    growAt,
    growths,
    widthCurve,
    width: () => stageWidth(model),
    setupMs: performance.now() - t0,
  });
}

/** The residual task's card (Markdown list) for a resolved config: every number comes from `c`. */
export function describeResidualCnn(c: ResidualCnnConfig, data: ImageDataset = 'mnist'): string {
  const start = widths(c, c.startFraction);
  const blocks = Array.from({ length: c.blocks }, (_, i) => `b${i + 1}`);
  return [
    '- Claim tested (paper §4.3, ResNet/MobileNet growth): GradMax can grow a whole residual stage — every layer writing the stage\'s channels, joined by the Adds — as one unit with its block-inner convs, and a network grown so beats Random growth and approaches the big network.',
    `- Data: ${DATA_SOURCE[data]} (first ${c.trainSize} train / ${c.testSize} test examples, pixels in [0, 1], no augmentation).`,
    `- Model (tfjs-layers functional model, grown with the \`@gradmax/tfjs\` GrowthController): stem conv 3×3 (${c.channels}) – BN – relu1 – maxpool 2 – maxpool 2 (28 → 7), then ${c.blocks} residual block(s) on 7×7 maps [conv 3×3 (${c.inner}) – BN – relu1 – conv 3×3 (${c.channels}) – BN – Add(identity) – relu1], global average pooling, dense 10 softmax; convs without bias, BN moving-average momentum 0.9; categorical cross-entropy; seeded Glorot-uniform init.`,
    `- Growth sites: the residual stage as one channel group (producers stem${blocks.map((b) => `, ${b}_conv2`).join('')}; consumers ${blocks.map((b) => `${b}_conv1`).join(', ')} and the head; BN, pooling and the Adds carried along) and each block's inner pair (${blocks.map((b) => `${b}_conv1→${b}_conv2`).join(', ')}).`,
    `- Budget: ${c.steps} \`trainOnBatch\` steps; ${optimizerSentence(c)}.`,
    `- Schedule (all sites at once): start stage ${start.channels} / inner ${start.inner} channels (${c.startFraction}×), ${scheduleSentence(scheduledGrowthSteps(c), c.steps)}, to ${c.channels} / ${c.inner}; a fresh random grow batch of ${c.growBatch} per event. Loss on the grow batch is recorded before and after each event (no per-site gradient norms on this task).`,
    `- Scale: strategies taking \`scale\` get ${c.scale} × mean outgoing norm. Strategies that read retained (h, g) samples (Firefly, NORTH, TINY) cannot grow channel groups and are left out.`,
    `- Baselines: \`small\` (${c.startFraction}×) and \`big\` (1×) without growth. Test loss and accuracy every ${c.evalEvery} steps and at the end.`,
  ].join('\n');
}

function residualTask(name: string, dataset: ImageDataset): Task<ResidualCnnConfig> {
  const task: Task<ResidualCnnConfig> = {
    name,
    description: `ResNet-style CNN on ${DATA_NAME[dataset]}: the residual stage grows as one channel group (0.25× → 1×) with @gradmax/tfjs.`,
    get protocol() {
      return describeResidualCnn(resolveFlatConfig(name, DEFAULTS, PRESETS, 'default'), dataset);
    },
    describe: (c) => describeResidualCnn(c, dataset),
    metric: { key: 'finalTestAccuracy', label: 'test accuracy', higherIsBetter: true, percent: true },
    defaultSeeds: 3,
    presets: Object.keys(PRESETS),
    analysisArms: [],
    unsupportedArms: {
      allZero: 'the convs have no bias, so all-zero units would never receive a gradient',
      firefly: 'reads retained (h, g) samples, which channel groups do not provide',
      north: 'reads retained (h, g) samples, which channel groups do not provide',
      tiny: 'reads retained (h, g) samples, which channel groups do not provide',
    },
    resolveConfig(preset, overrides) {
      const c = resolveFlatConfig(name, DEFAULTS, PRESETS, preset, overrides);
      validateImageTrainingConfig(name, c, ['channels', 'inner', 'blocks']);
      return c;
    },
    run: (ctx) => runResidual(dataset, () => task, ctx),
  };
  return task;
}

/** `mnist-resnet`: the residual CNN on MNIST. */
export const mnistResnet: Task<ResidualCnnConfig> = residualTask('mnist-resnet', 'mnist');

/** `fashion-mnist-resnet`: the residual CNN on Fashion-MNIST (Debian's \`dataset-fashion-mnist\`). */
export const fashionMnistResnet: Task<ResidualCnnConfig> = residualTask('fashion-mnist-resnet', 'fashion-mnist');
