/**
 * The adapter suites that matter, on every backend (cpu, wasm, webgpu): function preservation, the GradMax gradient
 * = f'(0)·ΩᵀM checked against the backend's own autodiff, dense statistics against the core's naive moment of g and h
 * computed on the backend, and optimizer slots across growth. Reads are asynchronous (`await t.data()`): in Node the
 * webgpu backend cannot read synchronously, and growth goes through `growAsync`/`withSyncReads`, which on webgpu runs
 * the growth step on cpu after downloading what it reads. Shapes are tiny: SwiftShader compiles every shader slowly.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import '@gradmax/strategies/register';
import { strategyCatalog } from '@gradmax/strategies';
import { Matrix } from '@gradmax/core';
import { naiveDenseMoment } from '@gradmax/core/reference';
import { RELU1, collectStatistics, findGrowthSites, growAsync, growthTensors, toCoreSite, withSyncReads } from '@gradmax/tfjs';
import { describeEachBackend } from './backends.js';
import { oneHotTargets, randomTensor, relativeError, perturbBatchNorm } from './helpers.js';
import { cnnWithBnPool, mlpWithBn } from './models.js';

type Loss = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor;
const crossEntropy: Loss = (yTrue, yPred) => tf.mean(tfl.metrics.categoricalCrossentropy(yTrue, yPred));
const logits: Loss = (yTrue, yPred) => tf.losses.softmaxCrossEntropy(yTrue, yPred);

const preserving = strategyCatalog.filter((e) => e.functionPreserving).map((e) => e.name);

async function read(t: tf.Tensor): Promise<Float32Array> {
  const values = (await t.data()) as Float32Array;
  t.dispose();
  return values;
}

/** Model output (inference, or training mode with the BatchNorm moving statistics restored), read asynchronously. */
async function output(model: tfl.LayersModel, xs: tf.Tensor, training = false): Promise<Float32Array> {
  const saved = training ? model.nonTrainableWeights.map((w) => tf.clone(w.read())) : [];
  const y = tf.tidy(() => (training ? (model.apply(xs, { training: true }) as tf.Tensor) : (model.predict(xs) as tf.Tensor)));
  const values = await read(y);
  if (training) model.nonTrainableWeights.forEach((w, i) => w.write(saved[i]!));
  tf.dispose(saved);
  return values;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}


/** 5 → h1(6, relu1) → h2(4, tanh) → out(3, logits): g and h of the site h1->h2 are easy to form by hand. */
function plainMlp(seed: number): tfl.LayersModel {
  return tfl.sequential({
    layers: [
      tfl.layers.dense({ units: 6, inputShape: [5], activation: RELU1, name: 'h1', kernelInitializer: tfl.initializers.glorotUniform({ seed }) }),
      tfl.layers.dense({ units: 4, activation: 'tanh', name: 'h2', kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }) }),
      tfl.layers.dense({ units: 3, name: 'out', kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 2 }) }),
    ],
  });
}

/** Kernel gradient of `layer` by the active backend's autodiff (inference mode), read asynchronously. */
async function kernelGradient(model: tfl.LayersModel, layer: string, xs: tf.Tensor, ys: tf.Tensor, loss: Loss): Promise<Float32Array> {
  const kernel = model.getLayer(layer).weights.find((w) => w.originalName.endsWith('kernel'))!;
  const g = tf.tidy(() => Object.values(tf.variableGrads(() => loss(ys, model.predict(xs) as tf.Tensor) as tf.Scalar, [kernel.read() as tf.Variable]).grads)[0]!);
  return read(g);
}

/**
 * Grows `siteName` by k GradMax units; for each new unit j, the backend's autodiff gradient of its incoming weights
 * must equal f'(0)·Σ_f Ω[f, j]·M[f, :] (M collected before growth) to 1e-4 relative.
 */
async function checkGradMaxGradient(model: tfl.LayersModel, siteName: string, xs: tf.Tensor, ys: tf.Tensor, loss: Loss, k = 2): Promise<void> {
  const site = findGrowthSites(model).sites.find((s) => s.name === siteName)!;
  expect(site).toBeDefined();
  const m = await withSyncReads(growthTensors(model, { xs, ys }), () => collectStatistics(model, [site], { xs, ys }, { loss }).get(siteName)!.snapshot().moment);
  const n1 = site.units;
  await growAsync(model, { site: siteName, units: k, strategy: 'gradmax', batch: { xs, ys }, loss, seed: 4 });
  const grown = await withSyncReads(growthTensors(model), () => toCoreSite(model, findGrowthSites(model).sites.find((s) => s.name === siteName)!));
  const grad = await kernelGradient(model, site.current, xs, ys, loss);
  const width = n1 + k;
  const fanIn = grad.length / width;
  for (let j = 0; j < k; j++) {
    let num = 0;
    let den = 0;
    for (let i = 0; i < fanIn; i++) {
      let pred = 0;
      for (let f = 0; f < m.rows; f++) pred += grown.outgoing.get(f, n1 + j) * m.get(f, i);
      pred *= site.activation.df0;
      num += (grad[i * width + n1 + j]! - pred) ** 2;
      den += pred ** 2;
    }
    expect(den).toBeGreaterThan(0);
    expect(Math.sqrt(num / den)).toBeLessThan(1e-4);
  }
}

describeEachBackend('function preservation (1e-5)', (backend) => {
  it(`MLP with BatchNorm: every function-preserving strategy, inference and training mode`, async () => {
    for (const strategy of preserving) {
      const model = mlpWithBn();
      perturbBatchNorm(model, 11);
      const xs = randomTensor([6, 5], 5);
      const ys = oneHotTargets(6, 3, 6);
      const infer = await output(model, xs);
      const train = await output(model, xs, true);
      for (const [i, site] of ['h1->h2', 'h2->out'].entries()) {
        const { report } = await growAsync(model, { site, units: 2, strategy, batch: { xs, ys }, loss: 'categoricalCrossentropy', seed: 10 + i, ...(strategy === 'gradmaxOpt' ? { strategyOptions: { steps: 20 } } : {}) });
        expect(report.unitsAdded).toBe(2);
      }
      expect(tf.getBackend()).toBe(backend);
      expect(findGrowthSites(model).sites.map((s) => s.units)).toEqual([8, 7]);
      expect(maxAbsDiff(await output(model, xs), infer), strategy).toBeLessThan(1e-5);
      expect(maxAbsDiff(await output(model, xs, true), train), strategy).toBeLessThan(1e-5);
      model.dispose();
      tf.dispose([xs, ys]);
    }
  });

  it('CNN with BatchNorm, max pooling and a conv→flatten→dense head, trained first: gradmax on both sites', async () => {
    const model = cnnWithBnPool();
    model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
    const xs = randomTensor([4, 8, 8, 2], 7);
    const ys = oneHotTargets(4, 3, 8);
    await model.trainOnBatch(xs, ys);
    perturbBatchNorm(model, 12);
    const infer = await output(model, xs);
    await growAsync(model, { site: 'c1->c2', units: 2, strategy: 'gradmax', batch: { xs, ys }, seed: 1 });
    await growAsync(model, { site: 'c2->out', units: 2, strategy: 'gradmax', batch: { xs, ys }, seed: 2 });
    expect(findGrowthSites(model).sites.map((s) => s.units)).toEqual([6, 5]);
    expect(maxAbsDiff(await output(model, xs), infer)).toBeLessThan(1e-5);
    // Training goes on, on this backend, with the carried Adam slots.
    expect(Number.isFinite((await model.trainOnBatch(xs, ys)) as number)).toBe(true);
    expect(tf.getBackend()).toBe(backend);
    model.dispose();
    tf.dispose([xs, ys]);
  });
});

describeEachBackend("GradMax gradient = f'(0)·ΩᵀM against the backend's autodiff", () => {
  it('dense sites through BatchNorm', async () => {
    const model = mlpWithBn();
    const xs = randomTensor([8, 5], 21);
    const ys = oneHotTargets(8, 3, 22);
    await checkGradMaxGradient(model, 'h1->h2', xs, ys, crossEntropy);
    await checkGradMaxGradient(model, 'h2->out', xs, ys, crossEntropy);
    model.dispose();
    tf.dispose([xs, ys]);
  });

  it('conv sites through BatchNorm + max pooling, and the conv→flatten→dense head', async () => {
    const model = cnnWithBnPool();
    const xs = randomTensor([4, 8, 8, 2], 41);
    const ys = oneHotTargets(4, 3, 42);
    await checkGradMaxGradient(model, 'c1->c2', xs, ys, crossEntropy);
    await checkGradMaxGradient(model, 'c2->out', xs, ys, crossEntropy);
    model.dispose();
    tf.dispose([xs, ys]);
  });
});

describeEachBackend('dense statistics against the core naive moment', () => {
  it('M of h1->h2 = (1/N) Σ g hᵀ with h the inputs of h1 and g (autodiff at h2\'s pre-activation) formed on the backend', async () => {
    const model = plainMlp(31);
    const n = 9;
    const xs = randomTensor([n, 5], 32);
    const ys = oneHotTargets(n, 3, 33);
    const [w1, b1, w2, b2, w3, b3] = model.weights.map((w) => w.read());
    // g: gradient of the summed per-example loss at h2's pre-activation z2 = relu(x W1 + b1) W2 + b2.
    const z2 = tf.tidy(() => tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(xs, w1!), b1!)), w2!), b2!));
    const g = tf.tidy(() => tf.grad((z: tf.Tensor) => tf.mul(logits(ys, tf.add(tf.matMul(tf.tanh(z), w3!), b3!)), n))(z2));
    z2.dispose();
    const expected = naiveDenseMoment(Matrix.from(n, 4, await read(g)), Matrix.from(n, 5, await xs.data()));
    const site = findGrowthSites(model).sites.find((s) => s.name === 'h1->h2')!;
    const stats = await withSyncReads(growthTensors(model, { xs, ys }), () => collectStatistics(model, [site], { xs, ys }, { loss: logits }).get('h1->h2')!.snapshot());
    expect(stats.count).toBe(n);
    expect([stats.moment.rows, stats.moment.cols]).toEqual([4, 5]);
    expect(relativeError(stats.moment.data, expected.data)).toBeLessThan(1e-5);
    model.dispose();
    tf.dispose([xs, ys]);
  });
});

describeEachBackend('optimizer slots across growth', (backend) => {
  const optimizers: [string, () => tf.Optimizer][] = [
    ['momentum', () => tf.train.momentum(0.1, 0.9)],
    ['adam', () => tf.train.adam(0.01)],
    ['adagrad', () => tf.train.adagrad(0.1, 0.2)],
  ];
  for (const [name, make] of optimizers) {
    it(`${name}: new slot entries start at their initial value and old weights step as without growth`, async () => {
      const grown = plainMlp(1);
      const plain = plainMlp(1);
      grown.compile({ optimizer: make(), loss: 'categoricalCrossentropy' });
      plain.compile({ optimizer: make(), loss: 'categoricalCrossentropy' });
      const xs = randomTensor([8, 5], 2);
      const ys = oneHotTargets(8, 3, 3);
      for (let i = 0; i < 2; i++) {
        await grown.trainOnBatch(xs, ys);
        await plain.trainOnBatch(xs, ys);
      }
      await growAsync(grown, { site: 'h1->h2', units: 2, strategy: 'gradmax', batch: { xs, ys }, seed: 1 });
      const slots = (grown.optimizer as unknown as Record<string, { variable: tf.Variable }[] | undefined>);
      for (const field of ['accumulations', 'accumulatedFirstMoment', 'accumulatedGrads']) {
        const kernelSlot = slots[field]?.[0];
        if (!kernelSlot) continue;
        expect(kernelSlot.variable.shape).toEqual([5, 8]);
        const fill = field === 'accumulatedGrads' ? 0.2 : 0;
        for (const v of await read(tf.slice(kernelSlot.variable, [0, 6], [5, 2]))) expect(v).toBeCloseTo(fill, 7);
      }
      await grown.trainOnBatch(xs, ys);
      await plain.trainOnBatch(xs, ys);
      // Old entries of h1's kernel (its first 6 columns) moved exactly as in the model that did not grow.
      const a = await read(tf.slice(grown.getLayer('h1').weights[0]!.read(), [0, 0], [5, 6]));
      const b = await read(tf.slice(plain.getLayer('h1').weights[0]!.read(), [0, 0], [5, 6]));
      const tolerance = backend === 'webgpu' ? 1e-6 : 1e-7;
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(tolerance * Math.max(1, Math.abs(b[i]!)));
      expect(tf.getBackend()).toBe(backend);
      grown.dispose();
      plain.dispose();
      tf.dispose([xs, ys]);
    });
  }
});
