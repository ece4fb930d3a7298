// Benchmark (not a test): growability of architecture-style models (share of conv/dense layers that are in a growable
// site or channel group) and the cost of one statistics pass over every site and group, in training steps of the
// same model, same batch, same backend (cpu with the conv2d-based weight gradient for both). Run after a build:
// `pnpm --filter @gradmax/tfjs bench:groups` (BENCH_BACKENDS=wasm,cpu).
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { createRng } from '@gradmax/core';
import { RELU1, collectGrowthStatistics, findGrowthSites, relu1Layer, setupBackend } from '../dist/index.js';

const backends = (process.env.BENCH_BACKENDS ?? 'wasm,cpu').split(',').map((s) => s.trim()).filter(Boolean);
const PRODUCERS = new Set(['Dense', 'Conv1D', 'Conv2D', 'Conv3D', 'SeparableConv2D', 'Conv2DTranspose']);

function randomBatch(shape, classes, seed) {
  const rng = createRng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = rng.uniform();
  const labels = Int32Array.from({ length: shape[0] }, () => rng.int(classes));
  return { xs: tf.tensor(x, shape), ys: tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), classes), 'float32')) };
}

const conv = (x, filters, name, extra = {}) => tfl.layers.conv2d({ filters, kernelSize: 3, padding: 'same', name, ...extra }).apply(x);
const bn = (x, name) => tfl.layers.batchNormalization({ name }).apply(x);
const act = (x, name) => relu1Layer({ name }).apply(x);
const head = (x, classes) => tfl.layers.dense({ units: classes, activation: 'softmax', name: 'logits' }).apply(tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(x));

function mlp() {
  return tfl.sequential({ layers: [
    tfl.layers.dense({ units: 256, inputShape: [784], activation: RELU1, name: 'h1' }),
    tfl.layers.dense({ units: 256, activation: RELU1, name: 'h2' }),
    tfl.layers.dense({ units: 10, activation: 'softmax', name: 'out' }),
  ] });
}

function cnn() {
  return tfl.sequential({ layers: [
    tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 8, kernelSize: 3, padding: 'same', activation: RELU1, name: 'c1' }),
    tfl.layers.maxPooling2d({ poolSize: 2, name: 'p1' }),
    tfl.layers.conv2d({ filters: 16, kernelSize: 3, padding: 'same', activation: RELU1, name: 'c2' }),
    tfl.layers.maxPooling2d({ poolSize: 2, name: 'p2' }),
    tfl.layers.flatten({ name: 'flat' }),
    tfl.layers.dense({ units: 10, activation: 'softmax', name: 'out' }),
  ] });
}

/** ResNet-18-style, reduced: stem, 2 stages of 2 basic blocks (16 and 32 channels), 32×32 input. */
function resnet() {
  const x0 = tfl.input({ shape: [32, 32, 3] });
  let x = act(bn(conv(x0, 16, 'stem'), 'stem_bn'), 'stem_relu');
  let width = 16;
  for (const [s, w] of [[1, 16], [2, 32]]) {
    for (const b of [1, 2]) {
      const stride = s > 1 && b === 1 ? 2 : 1;
      let y = act(bn(conv(x, w, `s${s}b${b}_c1`, { strides: stride }), `s${s}b${b}_bn1`), `s${s}b${b}_r1`);
      y = bn(conv(y, w, `s${s}b${b}_c2`), `s${s}b${b}_bn2`);
      const short = stride > 1 || w !== width ? bn(conv(x, w, `s${s}b${b}_proj`, { kernelSize: 1, strides: stride }), `s${s}b${b}_pbn`) : x;
      x = act(tfl.layers.add({ name: `s${s}b${b}_add` }).apply([short, y]), `s${s}b${b}_out`);
      width = w;
    }
  }
  return tfl.model({ inputs: x0, outputs: head(x, 10) });
}

/** MobileNetV2-style: stem, 4 inverted residual blocks (expansion 6), ReLU6-style relu1, 32×32 input. */
function mobilenetV2() {
  const x0 = tfl.input({ shape: [32, 32, 3] });
  const relu6 = (x, name) => relu1Layer({ maxValue: 6, name }).apply(x);
  let x = relu6(bn(conv(x0, 16, 'stem', { strides: 2 }), 'stem_bn'), 'stem_r');
  let width = 16;
  for (const [i, out, stride] of [[1, 16, 1], [2, 16, 1], [3, 24, 2], [4, 24, 1]]) {
    let y = relu6(bn(conv(x, width * 6, `b${i}_exp`, { kernelSize: 1 }), `b${i}_ebn`), `b${i}_er`);
    y = relu6(bn(tfl.layers.depthwiseConv2d({ kernelSize: 3, strides: stride, padding: 'same', name: `b${i}_dw` }).apply(y), `b${i}_dbn`), `b${i}_dr`);
    y = bn(conv(y, out, `b${i}_proj`, { kernelSize: 1 }), `b${i}_pbn`);
    x = stride === 1 && out === width ? tfl.layers.add({ name: `b${i}_add` }).apply([x, y]) : y;
    width = out;
  }
  x = relu6(bn(conv(x, 64, 'last', { kernelSize: 1 }), 'last_bn'), 'last_r');
  return tfl.model({ inputs: x0, outputs: head(x, 10) });
}

/** DenseNet-style: stem, a dense block of 4 layers (growth 8), transition, 32×32 input. */
function densenet() {
  const x0 = tfl.input({ shape: [32, 32, 3] });
  let x = conv(x0, 16, 'stem');
  for (const l of [1, 2, 3, 4]) x = tfl.layers.concatenate({ name: `d${l}_cat` }).apply([x, conv(act(bn(x, `d${l}_bn`), `d${l}_r`), 8, `d${l}_c`)]);
  x = tfl.layers.averagePooling2d({ poolSize: 2, name: 'pool' }).apply(conv(act(bn(x, 't_bn'), 't_r'), 24, 't_c', { kernelSize: 1 }));
  return tfl.model({ inputs: x0, outputs: head(act(x, 'final_r'), 10) });
}

/** InceptionV3-style: stem, 2 modules of four concatenated branches, 32×32 input. */
function inception() {
  const x0 = tfl.input({ shape: [32, 32, 3] });
  let x = act(conv(x0, 16, 'stem', { strides: 2 }), 'stem_r');
  for (const m of [1, 2]) {
    const b1 = act(conv(x, 8, `m${m}_b1`, { kernelSize: 1 }), `m${m}_b1r`);
    const b2 = act(conv(act(conv(x, 8, `m${m}_b2a`, { kernelSize: 1 }), `m${m}_b2ar`), 12, `m${m}_b2b`), `m${m}_b2br`);
    const b3 = act(conv(act(conv(act(conv(x, 8, `m${m}_b3a`, { kernelSize: 1 }), `m${m}_b3ar`), 8, `m${m}_b3b`), `m${m}_b3br`), 8, `m${m}_b3c`), `m${m}_b3cr`);
    const b4 = act(conv(tfl.layers.averagePooling2d({ poolSize: 3, strides: 1, padding: 'same', name: `m${m}_pool` }).apply(x), 8, `m${m}_b4`, { kernelSize: 1 }), `m${m}_b4r`);
    x = tfl.layers.concatenate({ name: `m${m}_cat` }).apply([b1, b2, b3, b4]);
  }
  return tfl.model({ inputs: x0, outputs: head(x, 10) });
}

const MODELS = [
  ['MLP 784-256-256-10', mlp, [784], 128],
  ['small CNN (28×28)', cnn, [28, 28, 1], 64],
  ['ResNet-18-style (32×32)', resnet, [32, 32, 3], 32],
  ['MobileNetV2-style (32×32)', mobilenetV2, [32, 32, 3], 32],
  ['DenseNet-style (32×32)', densenet, [32, 32, 3], 32],
  ['InceptionV3-style (32×32)', inception, [32, 32, 3], 32],
];

async function time(fn, repeats) {
  await fn();
  const t0 = performance.now();
  for (let i = 0; i < repeats; i++) await fn();
  return (performance.now() - t0) / repeats;
}

for (const backend of backends) {
  await setupBackend(backend, { log: false, fastCpuConvBackward: true });
  console.log(`\n## backend ${tf.getBackend()}\n`);
  console.log('| model | conv/dense layers | growable (all / excluding the output layer) | sites | groups | training step (ms) | statistics of all sites and groups (ms) | ratio |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const [name, build, shape, batchSize] of MODELS) {
    const model = build();
    model.compile({ optimizer: tf.train.momentum(0.01, 0.9), loss: 'categoricalCrossentropy' });
    const batch = randomBatch([batchSize, ...shape], 10, 1);
    const scan = findGrowthSites(model);
    const layers = model.layers.filter((l) => PRODUCERS.has(l.getClassName()));
    const outputs = new Set(model.outputLayers.map((l) => l.name));
    const growable = new Set([...scan.sites.map((s) => s.current), ...scan.groups.flatMap((g) => g.producers.map((p) => p.name))]);
    const inner = layers.filter((l) => !outputs.has(l.name));
    const step = await time(() => model.trainOnBatch(batch.xs, batch.ys), 3);
    const stats = await time(() => collectGrowthStatistics(model, [...scan.sites, ...scan.groups], batch), 1);
    const pct = (a, b) => `${((100 * a) / b).toFixed(0)} %`;
    console.log(`| ${name} | ${layers.length} | ${pct(growable.size, layers.length)} / ${pct(growable.size, inner.length)} | ${scan.sites.length} | ${scan.groups.length} | ${step.toFixed(0)} | ${stats.toFixed(0)} | ${(stats / step).toFixed(1)} |`);
    tf.dispose([batch.xs, batch.ys]);
    model.dispose();
  }
}
