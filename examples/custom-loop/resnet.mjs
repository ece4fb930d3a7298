// Growing a real architecture: a small ResNet-style CNN with a residual stage and a Concatenate block.
//
// The layers feeding the residual Adds must keep equal widths, so they grow together as one channel group
// ("stem+block1_conv2+block2_conv2->..."); the branches of the Concatenate block grow one by one (each at its offset
// in every later layer). findGrowthSites lists those groups next to the plain layer pairs; grow() takes either name.
// The model learns to tell three kinds of 8×8 textures apart, grows every site and group with GradMax (the function
// is unchanged: the printed difference is ~1e-7), and keeps training.
//
// Run: pnpm --filter @gradmax/example-custom-loop resnet
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { Rng } from '@gradmax/core';
import { registerAllStrategies } from '@gradmax/strategies';
import { findGrowthSites, grow, relu1Layer, setupBackend } from '@gradmax/tfjs';

/** Stripes, checkers or blobs, 8×8×1, with noise. */
function textures(seed) {
  const rng = new Rng(seed);
  return (n) => {
    const xs = new Float32Array(n * 64);
    const ys = new Float32Array(n * 3);
    for (let i = 0; i < n; i++) {
      const label = rng.int(3);
      const phase = rng.int(4);
      for (let r = 0; r < 8; r++) {
        for (let c = 0; c < 8; c++) {
          const v = label === 0 ? (r + phase) % 2 : label === 1 ? (r + c + phase) % 2 : Number(Math.hypot(r - 3.5, c - 3.5) < 2 + phase / 2);
          xs[i * 64 + r * 8 + c] = v + 1.2 * rng.normal();
        }
      }
      ys[i * 3 + label] = 1;
    }
    return { xs: tf.tensor4d(xs, [n, 8, 8, 1]), ys: tf.tensor2d(ys, [n, 3]) };
  };
}

function buildModel() {
  const conv = (x, filters, name, kernelSize = 3) => tfl.layers.conv2d({ filters, kernelSize, padding: 'same', name }).apply(x);
  const bn = (x, name) => tfl.layers.batchNormalization({ name }).apply(x);
  const relu1 = (x, name) => relu1Layer({ name }).apply(x); // ReLU with derivative 1 at 0 (what GradMax needs)
  const input = tfl.input({ shape: [8, 8, 1], name: 'image' });
  // Residual stage: stem + two basic blocks joined by Add.
  let x = relu1(bn(conv(input, 8, 'stem'), 'stem_bn'), 'stem_relu');
  for (const b of [1, 2]) {
    const y = bn(conv(relu1(bn(conv(x, 8, `block${b}_conv1`), `block${b}_bn1`), `block${b}_relu1`), 8, `block${b}_conv2`), `block${b}_bn2`);
    x = relu1(tfl.layers.add({ name: `block${b}_add` }).apply([x, y]), `block${b}_out`);
  }
  // Concatenate block (DenseNet/Inception style): two branches side by side.
  const left = relu1(conv(x, 4, 'left', 1), 'left_relu');
  const right = relu1(conv(x, 4, 'right'), 'right_relu');
  x = tfl.layers.concatenate({ name: 'cat' }).apply([left, right]);
  x = relu1(conv(x, 8, 'mix', 1), 'mix_relu');
  x = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(x);
  const output = tfl.layers.dense({ units: 3, activation: 'softmax', name: 'out' }).apply(x);
  return tfl.model({ inputs: input, outputs: output });
}

/** Trains, grows every site and group once with GradMax, trains on; returns widths, accuracy and the output change. */
export async function main({ steps = 200, seed = 0, log = console.log } = {}) {
  await setupBackend('auto', { log });
  registerAllStrategies();
  const sample = textures(seed);
  const model = buildModel();
  model.compile({ optimizer: tf.train.adam(0.003), loss: 'categoricalCrossentropy' });

  const scan = findGrowthSites(model);
  log(`sites:  ${scan.sites.map((s) => s.name).join(', ')}`);
  for (const g of scan.groups) log(`group:  ${g.name} (${g.units} channels; joins ${g.joins.map((j) => j.name).join(', ') || 'none'})`);
  for (const n of scan.notGrowable) log(`not growable: ${n.layer}: ${n.reason}`);

  const train = async (count) => {
    let loss = 0;
    for (let i = 0; i < count; i++) {
      const batch = sample(32);
      loss = Number(await model.trainOnBatch(batch.xs, batch.ys));
      tf.dispose([batch.xs, batch.ys]);
    }
    return loss;
  };
  log(`loss after ${steps / 2} steps: ${(await train(steps / 2)).toFixed(4)}`);

  const growBatch = sample(64);
  const before = model.predict(growBatch.xs);
  for (const target of [...scan.sites, ...scan.groups]) {
    const { report } = grow(model, { site: target.name, units: Math.max(2, target.units / 2), strategy: 'gradmax', batch: growBatch, seed });
    log(`grew ${report.site}: ${report.widthBefore} → ${report.widthAfter}`);
  }
  const after = model.predict(growBatch.xs);
  const change = tf.tidy(() => tf.max(tf.abs(tf.sub(after, before))).dataSync()[0]);
  log(`largest change of a prediction through growth: ${change.toExponential(2)}`);
  tf.dispose([before, after]);

  log(`loss after ${steps} steps: ${(await train(steps / 2)).toFixed(4)}`);
  const test = sample(256);
  const accuracy = tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(model.predict(test.xs), 1), tf.argMax(test.ys, 1)), 'float32')).dataSync()[0]);
  log(`test accuracy: ${accuracy.toFixed(3)}`);
  const grown = findGrowthSites(model);
  const widths = Object.fromEntries([...grown.sites, ...grown.groups].map((t) => [t.name, t.units]));
  tf.dispose([growBatch.xs, growBatch.ys, test.xs, test.ys]);
  model.dispose();
  return { widths, change, accuracy, groups: scan.groups.map((g) => g.name) };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
