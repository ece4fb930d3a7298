// Growing a model inside model.fit with @gradmax/tfjs's growthCallback.
//
// The same 2-8-8-3 relu1 MLP as the custom-loop example, trained with model.fit. The callback counts batches,
// grows both hidden layers before the scheduled batches (8 → 32 units, GradMax), and fit keeps training the
// widened model: growth happens in place and the optimizer state is padded with zeros.
//
// Run: pnpm --filter @gradmax/example-fit-callback start
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { Rng, allAtOnce } from '@gradmax/core';
import { registerAllStrategies } from '@gradmax/strategies';
import { RELU1, findGrowthSites, growthCallback, scheduledSites, setupBackend } from '@gradmax/tfjs';

function spirals(rng, n) {
  const xs = new Float32Array(n * 2);
  const ys = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) {
    const label = rng.int(3);
    const t = rng.uniform();
    const angle = (label * 2 * Math.PI) / 3 + 4 * t + 0.15 * rng.normal();
    xs[2 * i] = t * Math.cos(angle);
    xs[2 * i + 1] = t * Math.sin(angle);
    ys[3 * i + label] = 1;
  }
  return { xs: tf.tensor2d(xs, [n, 2]), ys: tf.tensor2d(ys, [n, 3]) };
}

/**
 * Fits and grows the model; returns the final widths, the validation accuracy and the number of growth reports.
 * @param {{ epochs?: number, strategy?: string, seed?: number, log?: (line: string) => void }} options
 */
export async function main({ epochs = 24, strategy = 'gradmax', seed = 0, log = console.log } = {}) {
  await setupBackend('auto', { log });
  registerAllStrategies();
  const rng = new Rng(seed);
  const train = spirals(rng.fork('train'), 2048);
  const valid = spirals(rng.fork('valid'), 1000);
  const growRng = rng.fork('grow');
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [2], units: 8, activation: RELU1, name: 'hidden1' }),
      tfl.layers.dense({ units: 8, activation: RELU1, name: 'hidden2' }),
      tfl.layers.dense({ units: 3, activation: 'softmax', name: 'out' }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(0.02), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });

  const batchSize = 64;
  const stepsPerEpoch = Math.ceil(2048 / batchSize);
  // Grow at the start of epochs 2, 4 and 6 (counted in batches), each time by the initial width.
  const every = 2 * stepsPerEpoch;
  const schedule = allAtOnce({ sites: scheduledSites(model), start: every, every, times: 3, amount: { fraction: 1 } });
  const callback = growthCallback(model, {
    schedule,
    strategy,
    growBatch: () => spirals(growRng, 256), // fit does not hand its batches to callbacks: give a grow batch source
    seed,
    onGrow: (event, reports) => log(`batch ${event.step}: grew ${reports.map((r) => `${r.site} ${r.widthBefore}→${r.widthAfter}`).join(', ')}`),
  });

  const history = await model.fit(train.xs, train.ys, {
    epochs,
    batchSize,
    shuffle: true,
    validationData: [valid.xs, valid.ys],
    callbacks: [callback, new tfl.CustomCallback({ onEpochEnd: async (epoch, logs) => log(`epoch ${epoch + 1}: loss ${logs.loss.toFixed(4)}, val_acc ${logs.val_acc.toFixed(3)}`) })],
    verbose: 0,
  });
  const valAcc = history.history.val_acc.at(-1);
  const widths = findGrowthSites(model).sites.map((s) => s.units);
  log(`final widths ${widths.join(', ')}; validation accuracy ${(valAcc * 100).toFixed(1)}%`);
  tf.dispose([train.xs, train.ys, valid.xs, valid.ys]);
  model.dispose();
  return { widths, accuracy: valAcc, growths: callback.controller.history.length };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
