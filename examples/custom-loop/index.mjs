// Growing an MLP in a custom training loop with @gradmax/tfjs's GrowthController.
//
// A 2-8-8-3 MLP (relu1 hidden layers: ReLU with derivative 1 at 0, which GradMax needs) learns three spirals.
// Both hidden layers grow with GradMax from 8 to 32 units, all at once, at three points during training.
// Growth widens the model in place and pads the Adam state with zeros, so the loop just keeps calling step().
//
// Run: pnpm --filter @gradmax/example-custom-loop start
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { allAtOnce } from '@gradmax/core';
import { registerAllStrategies } from '@gradmax/strategies';
import { GrowthController, RELU1, findGrowthSites, scheduledSites, setupBackend } from '@gradmax/tfjs';
import { accuracy, spirals } from './data.mjs';

/**
 * Trains and grows the MLP; returns the hidden widths, test accuracy and growth history.
 * @param {{ steps?: number, strategy?: string, seed?: number, log?: (line: string) => void }} options
 */
export async function main({ steps = 1200, strategy = 'gradmax', seed = 0, log = console.log } = {}) {
  await setupBackend('auto', { log });
  registerAllStrategies(); // makes every strategy available by name ('random', 'tiny', ...)
  const sample = spirals(seed);
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [2], units: 8, activation: RELU1, name: 'hidden1' }),
      tfl.layers.dense({ units: 8, activation: RELU1, name: 'hidden2' }),
      tfl.layers.dense({ units: 3, activation: 'softmax', name: 'out' }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(0.02), loss: 'categoricalCrossentropy' });

  // 8 → 16 → 24 → 32 units per hidden layer: +1× the initial width at 1/6, 2/6 and 3/6 of training.
  const every = Math.max(1, Math.floor(steps / 6));
  const schedule = allAtOnce({ sites: scheduledSites(model), start: every, every, times: 3, amount: { fraction: 1 } });
  const controller = new GrowthController(model, {
    schedule,
    strategy,
    growBatch: () => sample(256), // a fresh grow batch per event (the controller disposes it)
    seed,
    onGrow: (event, reports) => {
      log(`step ${event.step}: grew ${reports.map((r) => `${r.site} ${r.widthBefore}→${r.widthAfter}`).join(', ')}`);
    },
  });

  for (let step = 0; step < steps; step++) {
    const batch = sample(64);
    const { loss } = await controller.step(batch);
    tf.dispose([batch.xs, batch.ys]);
    if (step % Math.max(1, Math.floor(steps / 6)) === 0) log(`step ${step}: loss ${Number(loss).toFixed(4)}`);
  }

  const test = sample(2000);
  const acc = accuracy(model, test);
  tf.dispose([test.xs, test.ys]);
  const widths = findGrowthSites(model).sites.map((s) => `${s.name}: ${s.units}`);
  log(`final widths: ${widths.join(', ')}; test accuracy ${(acc * 100).toFixed(1)}%`);
  const result = { widths: findGrowthSites(model).sites.map((s) => s.units), accuracy: acc, growths: controller.history.length };
  model.dispose();
  return result;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
