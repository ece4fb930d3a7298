// The page: pick a strategy, train a spirals MLP in the browser, grow its hidden layers at fixed steps, and plot the
// training loss and the widths as it goes. URL parameters preset the form: ?strategy=gradmax&steps=300&width=4
// &backend=auto, and autorun=1 starts at once (the Playwright test uses them). When a run ends, window.__growth holds
// its numbers and #status has data-state="done" (or "error").
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { Rng, allAtOnce } from '@gradmax/core';
import { registerAllStrategies, strategyCatalog } from '@gradmax/strategies';
import { GrowthController, RELU1, findGrowthSites, scheduledSites } from '@gradmax/tfjs';
import { chooseBackend, describeBackend } from './backend.js';
import { lineChart } from './plot.js';

registerAllStrategies();

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

for (const entry of strategyCatalog) {
  const option = new Option(entry.name, entry.name);
  option.title = entry.optimises;
  $('strategy').add(option);
}
$('strategy').value = params.get('strategy') ?? 'gradmax';
for (const key of ['steps', 'width', 'backend']) if (params.has(key)) $(key).value = params.get(key);

function status(text, state = 'running') {
  $('status').textContent = text;
  $('status').dataset.state = state;
}

function log(line) {
  const div = document.createElement('div');
  div.textContent = line;
  $('log').prepend(div);
}

/** Three interleaved spirals in 2-D, labelled one-hot, from a seeded generator. */
function spirals(seed) {
  const rng = new Rng(seed);
  return (n) => {
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
  };
}

function draw(run) {
  const growthSteps = run.growths.map((g) => g.step);
  $('loss-chart').innerHTML = lineChart({
    title: `training loss (${run.strategy})`,
    xLabel: 'training step',
    yLabel: 'cross-entropy',
    series: [
      { name: 'loss', x: run.loss.step, y: run.loss.value },
      { name: 'mean of last 20', x: run.loss.step, y: run.loss.smooth },
    ],
    markers: growthSteps,
    yMin: 0,
  });
  $('width-chart').innerHTML = lineChart({
    title: 'hidden-layer widths',
    xLabel: 'training step',
    yLabel: 'units',
    series: run.width.names.map((name, i) => ({ name, x: run.width.step, y: run.width.value.map((w) => w[i]), step: true, dash: i > 0 })),
    markers: growthSteps,
    yMin: 0,
  });
}

async function train({ strategy, steps, width, backend: preferred }) {
  status('starting the backend…');
  const chosen = await chooseBackend(preferred);
  for (const s of chosen.skipped) log(`backend ${s.backend} skipped: ${s.reason}`);
  const where = describeBackend(chosen);
  log(`running on ${where}`);
  const sample = spirals(1);
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [2], units: width, activation: RELU1, name: 'hidden1' }),
      tfl.layers.dense({ units: width, activation: RELU1, name: 'hidden2' }),
      tfl.layers.dense({ units: 3, activation: 'softmax', name: 'out' }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(0.02), loss: 'categoricalCrossentropy' });
  // Both hidden layers grow by their initial width three times, at 1/5, 2/5 and 3/5 of training (4× in the end).
  const every = Math.max(1, Math.floor(steps / 5));
  const schedule = allAtOnce({ sites: scheduledSites(model), start: every, every, times: 3, amount: { fraction: 1 } });
  const controller = new GrowthController(model, { schedule, strategy, growBatch: () => sample(256), seed: 0 });
  const widths = () => findGrowthSites(model).sites.map((s) => s.units);
  const run = {
    strategy,
    backend: chosen.backend,
    adapter: chosen.adapter ?? null,
    skipped: chosen.skipped,
    loss: { step: [], value: [], smooth: [] },
    width: { names: findGrowthSites(model).sites.map((s) => s.name), step: [0], value: [widths()] },
    growths: [],
  };
  const t0 = performance.now();
  try {
    for (let step = 0; step < steps; step++) {
      const batch = sample(64);
      const { loss, grown } = await controller.step(batch);
      tf.dispose([batch.xs, batch.ys]);
      const value = Array.isArray(loss) ? loss[0] : loss;
      run.loss.step.push(step);
      run.loss.value.push(value);
      const tail = run.loss.value.slice(-20);
      run.loss.smooth.push(tail.reduce((a, b) => a + b, 0) / tail.length);
      if (grown.length) {
        run.width.step.push(step);
        run.width.value.push(widths());
        for (const r of grown) run.growths.push({ step, site: r.site, from: r.widthBefore, to: r.widthAfter });
        log(`step ${step}: ${grown.map((r) => `${r.site} ${r.widthBefore}→${r.widthAfter}`).join(', ')} (${strategy})`);
      }
      if (step % 10 === 0 || step === steps - 1) {
        draw(run);
        status(`${where} · step ${step + 1}/${steps} · loss ${value.toFixed(4)} · widths ${widths().join(', ')}`);
        await new Promise((resolve) => setTimeout(resolve, 0)); // let the page paint
      }
    }
    run.width.step.push(steps);
    run.width.value.push(widths());
    const test = sample(1000);
    const acc = tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(model.predict(test.xs), 1), tf.argMax(test.ys, 1)), 'float32')));
    run.accuracy = (await acc.data())[0];
    tf.dispose([acc, test.xs, test.ys]);
    run.seconds = (performance.now() - t0) / 1000;
    draw(run);
    status(`${where} · done: ${steps} steps in ${run.seconds.toFixed(1)} s · final loss ${run.loss.smooth.at(-1).toFixed(4)} (mean of last 20) · widths ${widths().join(', ')} · test accuracy ${(run.accuracy * 100).toFixed(1)}%`, 'done');
    return run;
  } finally {
    model.dispose();
    model.optimizer.dispose();
  }
}

let busy = false;
async function start() {
  if (busy) return;
  busy = true;
  $('run').disabled = true;
  $('log').textContent = '';
  try {
    const options = { strategy: $('strategy').value, steps: Number($('steps').value), width: Number($('width').value), backend: $('backend').value };
    window.__growth = await train(options);
  } catch (error) {
    status(`error: ${error?.message ?? error}`, 'error');
    console.error(error);
  } finally {
    busy = false;
    $('run').disabled = false;
  }
}

$('controls').addEventListener('submit', (event) => {
  event.preventDefault();
  start();
});
if (params.get('autorun') === '1') start();
