/**
 * `mnist-cnn`: a small CNN (two convs with BatchNorm and pooling, dense head) grown from 0.25× to 1× with the
 * `@gradmax/tfjs` adapter (`GrowthController` on a tfjs-layers model). Every read is asynchronous and growth goes
 * through `GrowthController.maybeGrowAsync`, so the task runs on every backend, webgpu in Node included.
 */
import type * as tfc from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { InvalidArgumentError, Rng, allAtOnce, type GrowthSchedule } from '@gradmax/core';
import { GrowthController, RELU1, findGrowthSites, scheduledSites, type Batch } from '@gradmax/tfjs';
import { resolveFlatConfig } from '../config.js';
import { disposeMomentumOptimizer, scheduledGrowthSteps, validateImageTrainingConfig, BatchStream, DATA_NAME, DATA_SOURCE, gatherBatch, learningRateAt, loadImages, optimizerSentence, takeMnist, type ImageDataset, type MnistSplit, type MnistTrainingConfig } from '../mnist.js';
import { asyncTestEvaluator, pushPoint } from '../curves.js';
import { armKind, parseArm } from '../strategies.js';
import type { Curve, GrowthRecord, Task, TaskContext, TaskOutput } from '../types.js';
import { scheduleSentence } from '../report/markdown.js';

/** Config of `mnist-cnn` (flat; `--set key=value`). */
export interface MnistCnnConfig extends MnistTrainingConfig {
  /** Full filters of conv1. */
  conv1: number;
  /** Full filters of conv2. */
  conv2: number;
  /** Full units of the dense hidden layer. */
  dense: number;
}

const DEFAULTS: MnistCnnConfig = {
  conv1: 16,
  conv2: 32,
  dense: 64,
  startFraction: 0.25,
  growTimes: 3,
  growStart: 120,
  growEvery: 120,
  steps: 900,
  batch: 64,
  growBatch: 64,
  learningRate: 0.05,
  momentum: 0.9,
  trainSize: 60000,
  testSize: 10000,
  evalEvery: 300,
  logEvery: 10,
  scale: 0.5,
  nesterov: true,
  lrSchedule: 'cosine',
};

const PRESETS: Record<string, Partial<MnistCnnConfig>> = {
  default: {},
  tiny: { conv1: 4, conv2: 8, dense: 8, growTimes: 3, growStart: 2, growEvery: 2, steps: 8, batch: 8, growBatch: 8, trainSize: 128, testSize: 64, evalEvery: 4, logEvery: 1 },
};

const SCALED = ['gradmax', 'gradmaxOpt', 'random'];

function buildCnn(c: MnistCnnConfig, fraction: number, rng: Rng): tfl.Sequential {
  const w = (n: number) => Math.max(1, Math.round(n * fraction));
  const init = (label: string) => tfl.initializers.glorotUniform({ seed: rng.fork(label).nextUint32() % 2147483647 });
  return tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: w(c.conv1), kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: init('conv1'), name: 'conv1' }),
      tfl.layers.batchNormalization({ name: 'bn1' }),
      tfl.layers.activation({ activation: RELU1, name: 'act1' }),
      tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool1' }),
      tfl.layers.conv2d({ filters: w(c.conv2), kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: init('conv2'), name: 'conv2' }),
      tfl.layers.batchNormalization({ name: 'bn2' }),
      tfl.layers.activation({ activation: RELU1, name: 'act2' }),
      tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool2' }),
      tfl.layers.flatten({ name: 'flatten' }),
      tfl.layers.dense({ units: w(c.dense), activation: RELU1, kernelInitializer: init('fc1'), name: 'fc1' }),
      tfl.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: init('out'), name: 'out' }),
    ],
  });
}

/** A `[n, 28, 28, 1]` image batch with one-hot labels from examples `idx` of a split (caller disposes). */
export function imageBatch(tf: typeof tfc, split: MnistSplit, idx: ArrayLike<number>): Batch {
  const { x, y } = gatherBatch(split, idx);
  return { xs: tf.tensor4d(x, [idx.length, 28, 28, 1]), ys: tf.tensor2d(y, [idx.length, 10]) };
}

/** Mean cross-entropy and accuracy of a softmax image model on a split, in chunks (asynchronous reads: webgpu). */
export async function evaluateCnn(tf: typeof tfc, model: tfl.LayersModel, split: MnistSplit, chunk = 1000): Promise<{ loss: number; accuracy: number }> {
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < split.count; start += chunk) {
    const n = Math.min(chunk, split.count - start);
    const b = imageBatch(tf, split, Int32Array.from({ length: n }, (_, i) => start + i));
    const r = tf.tidy(() => {
      const p = model.predict(b.xs as tfc.Tensor) as tfc.Tensor2D;
      const y = b.ys as tfc.Tensor2D;
      const loss = tf.sum(tf.neg(tf.sum(tf.mul(y, tf.log(tf.add(p, 1e-7))), 1)));
      return tf.stack([loss, tf.sum(tf.cast(tf.equal(tf.argMax(p, 1), tf.argMax(y, 1)), 'float32'))]);
    });
    const [l, c] = await r.data();
    r.dispose();
    tf.dispose([b.xs as tfc.Tensor, b.ys as tfc.Tensor]);
    lossSum += l!;
    correct += c!;
  }
  return { loss: lossSum / split.count, accuracy: correct / split.count };
}

/** A site measured by {@link measureSites}: its name and the first new unit (its width before growth). */
interface MeasuredSite {
  site: string;
  firstNew: number;
}

/** Gradient norms of one site from {@link measureSites}. */
interface SiteGradientNorms {
  /** Frobenius norm of the gradient on the current layer's whole kernel. */
  kernel: number;
  /** Same, on the kernel's output channels from `firstNew` on (the new units' incoming weights). */
  incoming: number;
  /** Same, on the next kernel's entries reading those channels (the new units' outgoing weights). */
  outgoing: number;
}

/**
 * Loss (the compiled categorical cross-entropy, inference mode as in the adapter's statistics) on a batch and, per
 * site, the gradient norms on the current kernel and on the parts of both kernels that belong to units
 * `firstNew…`. The next kernel is a conv (input-channel axis), a dense after the current dense, or a dense after
 * flatten of the current conv's channels-last map (rows `r` with `r mod channels ≥ firstNew`).
 */
async function measureSites(tf: typeof tfc, model: tfl.LayersModel, batch: Batch, sites: readonly MeasuredSite[]): Promise<{ loss: number; norms: SiteGradientNorms[] }> {
  const kernelOf = (name: string) => {
    const w = model.getLayer(name).trainableWeights.find((v) => v.originalName.endsWith('/kernel'));
    if (!w) throw new InvalidArgumentError(`layer "${name}" has no kernel`, { layer: name });
    return w.read() as tfc.Variable;
  };
  const pairs = sites.map((m) => {
    const [current, next] = m.site.split('->') as [string, string];
    return { ...m, current: kernelOf(current), next: kernelOf(next) };
  });
  const vars = [...new Set(pairs.flatMap((p) => [p.current, p.next]))];
  const out = tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => {
      const p = model.apply(batch.xs as tfc.Tensor, { training: false }) as tfc.Tensor;
      return tf.mean(tfl.metrics.categoricalCrossentropy(batch.ys as tfc.Tensor, p)) as tfc.Scalar;
    }, vars);
    const parts: tfc.Tensor[] = [value];
    for (const p of pairs) {
      const g = grads[p.current.name]!;
      const gn = grads[p.next.name]!;
      const axis = g.rank - 1;
      const units = g.shape[axis]!;
      const fresh = units - p.firstNew;
      let incoming: tfc.Tensor = tf.scalar(0);
      let outgoing: tfc.Tensor = tf.scalar(0);
      if (fresh > 0) {
        incoming = tf.norm(tf.slice(g, g.shape.map((_, i) => (i === axis ? p.firstNew : 0)), g.shape.map((d, i) => (i === axis ? fresh : d))));
        if (gn.rank === 4) {
          outgoing = tf.norm(tf.slice(gn, [0, 0, p.firstNew, 0], [-1, -1, fresh, -1]));
        } else {
          const rows = gn.shape[0]!;
          const mask = tf.tensor2d(Float32Array.from({ length: rows }, (_, r) => (r % units >= p.firstNew ? 1 : 0)), [rows, 1]);
          outgoing = tf.norm(tf.mul(gn, mask));
        }
      }
      parts.push(tf.norm(g), incoming, outgoing);
    }
    return tf.stack(parts);
  });
  const v = await out.data();
  out.dispose();
  return { loss: v[0]!, norms: pairs.map((_, i) => ({ kernel: v[1 + 3 * i]!, incoming: v[2 + 3 * i]!, outgoing: v[3 + 3 * i]! })) };
}

async function runImageCnn(dataset: ImageDataset, self: () => Task<MnistCnnConfig>, ctx: TaskContext<MnistCnnConfig>): Promise<TaskOutput> {
  const { tf, config: c, arm, seed } = ctx;
  const kind = armKind(self(), arm);
  const t0 = performance.now();
  const train = takeMnist(loadImages(dataset, 'train'), c.trainSize);
  const test = takeMnist(loadImages(dataset, 'test'), c.testSize);
  const root = new Rng(seed);
  const model = buildCnn(c, kind === 'big' ? 1 : c.startFraction, root.fork(kind === 'big' ? 'init-big' : 'init'));
  const optimizer = tf.train.momentum(learningRateAt(c, 0), c.momentum, c.nesterov);
  model.compile({ optimizer, loss: 'categoricalCrossentropy' });
  const growRng = root.fork('grow-batches');
  const growths: GrowthRecord[] = [];
  const widthCurve: Curve = { step: [0], value: [findGrowthSites(model).sites[0]!.units] };
  let controller: GrowthController | undefined;
  let schedule: GrowthSchedule | undefined;
  // The grow batch of the pending event (drawn before the event so that it can be measured before and after).
  let growIdx: Int32Array | undefined;
  if (kind === 'strategy') {
    const fraction = (1 / c.startFraction - 1) / Math.max(1, c.growTimes);
    schedule = allAtOnce({ sites: scheduledSites(model), start: c.growStart, every: c.growEvery, times: c.growTimes, amount: { fraction } });
    const { strategy, options: variant } = parseArm(arm);
    const strategyOptions = { ...(SCALED.includes(strategy) ? { scale: c.scale } : {}), ...variant };
    controller = new GrowthController(model, {
      schedule,
      strategy,
      ...(Object.keys(strategyOptions).length ? { strategyOptions } : {}),
      growBatch: () => imageBatch(tf, train, growIdx!),
      seed: root.fork('growth').nextUint32(),
    });
  }
  /** One growth event: measure, grow (the async path: on webgpu in Node the growth step itself runs on cpu), measure. */
  const growAt = async (step: number, sites: readonly { site: string }[]): Promise<number> => {
    growIdx = Int32Array.from({ length: c.growBatch }, () => growRng.int(train.count));
    const b = imageBatch(tf, train, growIdx);
    try {
      const before = await measureSites(tf, model, b, sites.map((e) => ({ site: e.site, firstNew: Number.MAX_SAFE_INTEGER })));
      const tg = performance.now();
      const reports = await controller!.maybeGrowAsync(step);
      const ms = performance.now() - tg;
      const after = await measureSites(tf, model, b, reports.map((r) => ({ site: r.site, firstNew: r.widthBefore })));
      reports.forEach((r, i) => {
        const n = after.norms[i]!;
        growths.push({
          step,
          site: r.site,
          strategy: r.strategy,
          unitsBefore: r.widthBefore,
          unitsAfter: r.widthAfter,
          newWeightGradNorm: Math.hypot(n.incoming, n.outgoing),
          newIncomingGradNorm: n.incoming,
          newOutgoingGradNorm: n.outgoing,
          kernelGradNormBefore: before.norms[i]!.kernel,
          kernelGradNormAfter: n.kernel,
          lossBefore: before.loss,
          lossAfter: after.loss,
          durationMs: r.timings.statistics + r.timings.strategy + r.timings.widen,
          ...(r.strategyReport.notes.length ? { notes: r.strategyReport.notes } : {}),
        });
      });
      pushPoint(widthCurve, step, findGrowthSites(model).sites[0]!.units);
      return ms;
    } finally {
      tf.dispose([b.xs as tfc.Tensor, b.ys as tfc.Tensor]);
    }
  };
  const stream = new BatchStream(train.count, c.batch, root.fork('shuffle'));
  return trainImageModel(ctx, {
    model,
    optimizer,
    train,
    test,
    stream,
    ...(controller ? { controller } : {}),
    growAt: async (step) => {
      const event = schedule?.eventAt(step);
      return controller && event ? growAt(step, event.sites) : 0;
    },
    growths,
    widthCurve,
    width: () => findGrowthSites(model).sites[0]!.units,
    setupMs: performance.now() - t0,
  });
}

/** What {@link trainImageModel} needs from an image task's run. */
export interface ImageTraining {
  model: tfl.LayersModel;
  /** The compiled momentum optimizer (its learning rate follows `learningRateAt`; disposed at the end). */
  optimizer: tfc.MomentumOptimizer;
  train: MnistSplit;
  test: MnistSplit;
  /** Minibatch order. */
  stream: BatchStream;
  /** The growth controller, advanced after every step (absent for the baselines). */
  controller?: GrowthController;
  /** Called before each step's training: grows when an event is due and returns the growth time (ms). */
  growAt?: (step: number) => Promise<number>;
  growths: GrowthRecord[];
  widthCurve: Curve;
  /** Width reported as `finalWidth`. */
  width: () => number;
  setupMs: number;
}

/**
 * The training loop of the image CNN tasks: per step, growth when due, the test evaluation every `evalEvery`
 * steps, one `trainOnBatch` at the scheduled learning rate; then the final evaluation and the task output. The
 * model and the optimizer are disposed at the end, also on error.
 */
export async function trainImageModel(ctx: TaskContext<MnistTrainingConfig>, t: ImageTraining): Promise<TaskOutput> {
  const { tf, config: c } = ctx;
  const { model, optimizer, train, stream, controller } = t;
  const trainLoss: Curve = { step: [], value: [] };
  let trainMs = 0;
  let growthMs = 0;
  const tests = asyncTestEvaluator(() => evaluateCnn(tf, model, t.test));
  try {
    for (let step = 0; step < c.steps; step++) {
      if (t.growAt) growthMs += await t.growAt(step);
      if (step > 0 && step % c.evalEvery === 0) await tests.evaluate(step);
      const ts = performance.now();
      const b = imageBatch(tf, train, stream.next());
      optimizer.setLearningRate(learningRateAt(c, step));
      const loss = await model.trainOnBatch(b.xs as tfc.Tensor, b.ys as tfc.Tensor);
      tf.dispose([b.xs as tfc.Tensor, b.ys as tfc.Tensor]);
      controller?.advance();
      if (step % c.logEvery === 0) pushPoint(trainLoss, step, Array.isArray(loss) ? loss[0]! : loss);
      trainMs += performance.now() - ts;
      if (ctx.progress && step % 5 === 0) ctx.progress(step / c.steps);
    }
    const final = await tests.evaluate(c.steps);
    return {
      curves: { trainLoss, testLoss: tests.testLoss, testAccuracy: tests.testAccuracy, width: t.widthCurve },
      growths: t.growths,
      summary: {
        finalTrainLoss: trainLoss.value[trainLoss.value.length - 1] ?? NaN,
        finalTestLoss: final.loss,
        finalTestAccuracy: final.accuracy,
        finalWidth: t.width(),
        parameters: model.countParams(),
      },
      timings: { setupMs: t.setupMs, trainMs, growthMs, evalMs: tests.ms, analysisMs: 0, steps: c.steps },
    };
  } finally {
    model.dispose();
    disposeMomentumOptimizer(optimizer);
  }
}

/** The `mnist-cnn` card (Markdown list) for a resolved config: every number comes from `c`. */
export function describeMnistCnn(c: MnistCnnConfig, data: ImageDataset = 'mnist'): string {
  const w = (n: number) => Math.max(1, Math.round(n * c.startFraction));
  const within = scheduledGrowthSteps(c);
  return [
    '- Claim tested (paper §4.2–4.3, convolutional networks): GradMax growth of conv and dense layers beats Random growth and approaches the big network.',
    `- Data: ${DATA_SOURCE[data]} (first ${c.trainSize} train / ${c.testSize} test examples, pixels in [0, 1], no augmentation).`,
    `- Model (tfjs-layers, grown with the \`@gradmax/tfjs\` GrowthController): conv1 3×3 same (${c.conv1}) – BN – relu1 – maxpool 2 – conv2 3×3 same (${c.conv2}) – BN – relu1 – maxpool 2 – flatten – dense ${c.dense} relu1 – dense 10 softmax; categorical cross-entropy; seeded Glorot-uniform init.`,
    `- Budget: ${c.steps} \`trainOnBatch\` steps; ${optimizerSentence(c)}.`,
    `- Schedule (all three sites at once: conv1→conv2, conv2→fc1, fc1→out): start ${w(c.conv1)}/${w(c.conv2)}/${w(c.dense)} (${c.startFraction}×), ${scheduleSentence(within, c.steps)}, to ${c.conv1}/${c.conv2}/${c.dense}; a fresh random grow batch of ${c.growBatch} per event. BN identity-extended, optimizer slots padded with zeros; max-pooling statistics routed back through pool1.`,
    `- Scale: strategies taking \`scale\` get ${c.scale} × mean outgoing norm.`,
    `- Baselines: \`small\` (${c.startFraction}×) and \`big\` (1×) without growth. Test loss and accuracy every ${c.evalEvery} steps and at the end.`,
  ].join('\n');
}

/**
 * `mnist-cnn`: conv(3×3)–BN–relu1–maxpool ×2, flatten, dense relu1, dense softmax, grown with `@gradmax/tfjs`
 * (`GrowthController`, all sites at once: conv1→conv2, conv2→fc1 and fc1→out) from 0.25× to 1×.
 */
function imageCnnTask(name: string, dataset: ImageDataset): Task<MnistCnnConfig> {
  const task: Task<MnistCnnConfig> = {
    name,
    description: `Small CNN (2 convs with BatchNorm and max pooling, dense head) on ${DATA_NAME[dataset]} grown 0.25× → 1× with @gradmax/tfjs.`,
    get protocol() {
      return describeMnistCnn(resolveFlatConfig(name, DEFAULTS, PRESETS, 'default'), dataset);
    },
    describe: (c) => describeMnistCnn(c, dataset),
    metric: { key: 'finalTestAccuracy', label: 'test accuracy', higherIsBetter: true, percent: true },
    defaultSeeds: 3,
    presets: Object.keys(PRESETS),
    analysisArms: [],
    asyncReads: true,
    unsupportedArms: {
      allZero: 'the convs have no bias, so all-zero units would never receive a gradient',
    },
    resolveConfig(preset, overrides) {
      const c = resolveFlatConfig(name, DEFAULTS, PRESETS, preset, overrides);
      validateImageTrainingConfig(name, c, ['conv1', 'conv2', 'dense']);
      return c;
    },
    run: (ctx) => runImageCnn(dataset, () => task, ctx),
  };
  return task;
}

/** `mnist-cnn` on MNIST. */
export const mnistCnn: Task<MnistCnnConfig> = imageCnnTask('mnist-cnn', 'mnist');

/** `fashion-mnist-cnn`: the same model, budget and schedule on Fashion-MNIST (Debian's \`dataset-fashion-mnist\`). */
export const fashionMnistCnn: Task<MnistCnnConfig> = imageCnnTask('fashion-mnist-cnn', 'fashion-mnist');
