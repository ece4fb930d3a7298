// Benchmark (not a test): cost of one growth event (all sites at once, GradMax) against one training step of the
// same model on the same backend, and the controller's training throughput against plain trainOnBatch.
// Run after a build: `pnpm --filter @gradmax/tfjs bench` (or root `pnpm bench`). Backends: BENCH_BACKENDS=wasm,cpu.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@gradmax/strategies/register';
import { createRng, customSchedule } from '@gradmax/core';
import { GrowthController, RELU1, findGrowthSites, grow, setupBackend } from '../dist/index.js';

const backends = (process.env.BENCH_BACKENDS ?? 'wasm,cpu').split(',').map((s) => s.trim()).filter(Boolean);

function randomBatch(shape, classes, seed) {
  const rng = createRng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = rng.uniform();
  const labels = Int32Array.from({ length: shape[0] }, () => rng.int(classes));
  return { xs: tf.tensor(x, shape), ys: tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), classes), 'float32')) };
}

function mlp() {
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({ units: 256, inputShape: [784], activation: RELU1, name: 'h1' }),
      tfl.layers.dense({ units: 256, activation: RELU1, name: 'h2' }),
      tfl.layers.dense({ units: 10, activation: 'softmax', name: 'out' }),
    ],
  });
  model.compile({ optimizer: tf.train.momentum(0.05, 0.9), loss: 'categoricalCrossentropy' });
  return model;
}

function cnn() {
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 8, kernelSize: 3, padding: 'same', activation: RELU1, name: 'c1' }),
      tfl.layers.maxPooling2d({ poolSize: 2, name: 'p1' }),
      tfl.layers.conv2d({ filters: 16, kernelSize: 3, padding: 'same', activation: RELU1, name: 'c2' }),
      tfl.layers.maxPooling2d({ poolSize: 2, name: 'p2' }),
      tfl.layers.flatten({ name: 'flat' }),
      tfl.layers.dense({ units: 10, activation: 'softmax', name: 'out' }),
    ],
  });
  model.compile({ optimizer: tf.train.momentum(0.05, 0.9), loss: 'categoricalCrossentropy' });
  return model;
}

async function stepTime(model, batch, steps) {
  await model.trainOnBatch(batch.xs, batch.ys); // warm-up (and shape-specific setup)
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await model.trainOnBatch(batch.xs, batch.ys);
  return (performance.now() - t0) / steps;
}

async function growthVsStep(name, build, inputShape, batchSize, unitsPerSite, events, steps) {
  const model = build();
  const train = randomBatch([batchSize, ...inputShape], 10, 1);
  const growBatch = randomBatch([batchSize, ...inputShape], 10, 2);
  const ratios = [];
  for (let e = 0; e < events; e++) {
    const step = await stepTime(model, train, steps);
    const sites = findGrowthSites(model).sites;
    const t0 = performance.now();
    const phases = { statistics: 0, strategy: 0, widen: 0 };
    for (const site of sites) {
      const { report } = grow(model, { site: site.name, units: unitsPerSite, strategy: 'gradmax', batch: growBatch, seed: e });
      for (const k of Object.keys(phases)) phases[k] += report.timings[k];
    }
    const event = performance.now() - t0;
    ratios.push(event / step);
    // The first training step after growth runs every op at the new shapes; it is not part of the growth event (nor
    // of the warmed-up step it is compared with), so it is shown separately rather than hidden.
    const t1 = performance.now();
    await model.trainOnBatch(train.xs, train.ys);
    const firstStep = performance.now() - t1;
    const widths = findGrowthSites(model).sites.map((s) => `${s.name}:${s.units}`).join(' ');
    console.log(
      `  ${name} event ${e + 1}: growth ${event.toFixed(1)} ms (statistics ${phases.statistics.toFixed(1)}, strategy ${phases.strategy.toFixed(1)}, widen ${phases.widen.toFixed(1)}) / step ${step.toFixed(1)} ms = ${(event / step).toFixed(2)} steps  [after: ${widths}]`,
    );
    console.log(
      `    first training step after growth (new shapes, not counted above): ${firstStep.toFixed(1)} ms = ${(firstStep / step).toFixed(2)} warmed-up steps; event + that step's excess = ${((event + Math.max(0, firstStep - step)) / step).toFixed(2)} steps`,
    );
  }
  model.dispose();
  tf.dispose([train.xs, train.ys, growBatch.xs, growBatch.ys]);
  return ratios.reduce((a, b) => a + b, 0) / ratios.length;
}

async function controllerThroughput(build, inputShape, batchSize, blocks, stepsPerBlock) {
  const model = build();
  const train = randomBatch([batchSize, ...inputShape], 10, 3);
  // A schedule with no event in the measured window: the controller's per-step overhead only.
  const controller = new GrowthController(model, { schedule: customSchedule('never', () => undefined), strategy: 'gradmax', growBatch: train });
  await model.trainOnBatch(train.xs, train.ys);
  let plain = 0;
  let wrapped = 0;
  for (let b = 0; b < blocks; b++) {
    let t0 = performance.now();
    for (let i = 0; i < stepsPerBlock; i++) await model.trainOnBatch(train.xs, train.ys);
    plain += performance.now() - t0;
    t0 = performance.now();
    for (let i = 0; i < stepsPerBlock; i++) await controller.step(train);
    wrapped += performance.now() - t0;
  }
  model.dispose();
  tf.dispose([train.xs, train.ys]);
  return plain / wrapped;
}

const summary = [];
for (const backend of backends) {
  const setup = await setupBackend(backend, { log: false, fastCpuConvBackward: true });
  console.log(`backend ${setup.backend}: ${setup.message}`);
  const mlpRatio = await growthVsStep('MLP 784-256-256-10, batch 128', mlp, [784], 128, 32, 3, backend === 'cpu' ? 5 : 10);
  const cnnRatio = await growthVsStep('CNN 28×28 c8-pool-c16-pool-dense10, batch 64', cnn, [28, 28, 1], 64, 4, 3, backend === 'cpu' ? 3 : 10);
  const throughput = await controllerThroughput(mlp, [784], 128, 4, backend === 'cpu' ? 5 : 15);
  summary.push({ backend: setup.backend, mlpRatio, cnnRatio, throughput });
}
console.log('\nsummary (targets: growth event ≤ 3 training steps; controller throughput ≥ 0.97 of plain trainOnBatch)');
for (const s of summary) {
  console.log(
    `  ${s.backend}: MLP growth event = ${s.mlpRatio.toFixed(2)} steps, CNN growth event = ${s.cnnRatio.toFixed(2)} steps, controller/plain throughput = ${s.throughput.toFixed(3)}`,
  );
}
