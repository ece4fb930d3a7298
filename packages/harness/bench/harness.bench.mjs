// Benchmarks of @gradmax/harness (run after `pnpm build`):
//  1. training throughput under the harness vs a plain tfjs loop on the same model, data and backend
//     (target ratio ≥ 0.97), for the teacher-student student and the full-width mnist-mlp;
//  2. growth overhead as a share of training time (target ≤ 2%) on default-protocol runs;
//  3. wall time of the demo grid (`gradmax bench run --task teacher-student`, what `pnpm demo` runs).
// Flags: --skip-throughput, --skip-overhead, --skip-demo, --backend=NAME.
// Every ratio is against a baseline measured in the same process, interleaved, so machine load affects both sides.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@gradmax/core';
import { relu1 } from '@gradmax/tfjs';
import { BatchStream, GrowableMlp, gatherBatch, getTask, glorotMlp, loadMnist, setupBackend, takeMnist } from '../dist/index.js';

const args = new Set(process.argv.slice(2));
const backendArg = [...args].find((a) => a.startsWith('--backend='))?.slice(10) ?? 'auto';
const backend = await setupBackend(backendArg);
console.log(`backend: ${backend.name} (${backend.device}); ${os.cpus().length} cores, load average ${os.loadavg()[0].toFixed(1)}`);

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

// ---- 1a. teacher-student student: harness GrowableMlp.step vs tf.train.sgd().minimize ----
async function teacherStudentThroughput(blocks, steps) {
  const rng = new Rng(1);
  const d = 20;
  const x = tf.tensor2d(Float32Array.from({ length: 1000 * d }, () => rng.normal()), [1000, d]);
  const teacher = new GrowableMlp(tf, glorotMlp([d, 10, 10], rng.fork('t'), false), { loss: 'mse' });
  const y = tf.tidy(() => teacher.forward(x));
  teacher.dispose();
  const layers = glorotMlp([d, 10, 10], rng.fork('s'), false);
  const model = new GrowableMlp(tf, layers, { loss: 'mse' });
  const w1 = tf.variable(tf.tensor2d(layers[0].kernel, [d, 10]));
  const w2 = tf.variable(tf.tensor2d(layers[1].kernel, [10, 10]));
  const opt = tf.train.sgd(0.1);
  const time = { harness: 0, plain: 0 };
  // Short alternating blocks, so that load changes on a shared machine hit both sides alike.
  for (let b = 0; b < blocks; b++) {
    let t0 = performance.now();
    for (let i = 0; i < steps; i++) {
      const l = model.step(x, y, 0.1);
      l.dataSync(); // the harness reads the loss every step (logEvery 1)
      l.dispose();
    }
    time.harness += performance.now() - t0;
    t0 = performance.now();
    for (let i = 0; i < steps; i++) {
      // The same model: relu1 (derivative 1 at 0) on the hidden layer, as the harness uses.
      const l = opt.minimize(() => tf.losses.meanSquaredError(y, tf.matMul(relu1(tf.matMul(x, w1)), w2)), true, [w1, w2]);
      l.dataSync();
      l.dispose();
    }
    time.plain += performance.now() - t0;
  }
  model.dispose();
  opt.dispose();
  tf.dispose([x, y, w1, w2]);
  const n = blocks * steps;
  return { harness: n / (time.harness / 1000), plain: n / (time.plain / 1000) };
}

// ---- 1b. mnist-mlp at full width: the harness task loop (arm big, no growth, no eval) vs a plain tfjs loop ----
// Alternating short blocks (a fresh task run of `steps` steps, then `steps` plain steps) so load changes hit both.
async function mnistThroughput(blocks, steps) {
  const task = getTask('mnist-mlp');
  const config = task.resolveConfig('default', { steps, evalEvery: 1000000, testSize: 100 });
  const train = takeMnist(loadMnist('train'), 60000);
  const rng = new Rng(7);
  const layers = glorotMlp([784, 256, 256, 10], rng.fork('init-big'), true);
  const vars = layers.flatMap((l) => [tf.variable(tf.tensor2d(l.kernel, [l.inputs, l.outputs])), tf.variable(tf.tensor1d(l.bias))]);
  const opt = tf.train.momentum(0.05, 0.9);
  const stream = new BatchStream(train.count, 128, rng.fork('shuffle'));
  const forward = (xt) => {
    let h = xt;
    for (let i = 0; i < 3; i++) {
      h = tf.add(tf.matMul(h, vars[2 * i]), vars[2 * i + 1]);
      if (i < 2) h = relu1(h);
    }
    return h;
  };
  const time = { harness: 0, plain: 0 };
  for (let b = 0; b < blocks; b++) {
    const out = await task.run({ tf, config, arm: 'big', seed: b, backend });
    time.harness += out.timings.trainMs;
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) {
      const { x, y } = gatherBatch(train, stream.next());
      const xt = tf.tensor2d(x, [128, 784]);
      const yt = tf.tensor2d(y, [128, 10]);
      const l = opt.minimize(() => tf.losses.softmaxCrossEntropy(yt, forward(xt)), true, vars);
      if (i % 10 === 0) l.dataSync();
      l.dispose();
      tf.dispose([xt, yt]);
    }
    time.plain += performance.now() - t0;
  }
  opt.dispose();
  tf.dispose(vars);
  const n = blocks * steps;
  return { harness: n / (time.harness / 1000), plain: n / (time.plain / 1000) };
}

// ---- 2. growth overhead share ----
async function growthShare(taskName, arm, overrides) {
  const task = getTask(taskName);
  const config = task.resolveConfig('default', overrides);
  const out = await task.run({ tf, config, arm, seed: 0, backend });
  const t = out.timings;
  return { share: t.growthMs / (t.trainMs + t.growthMs), events: out.growths.length, growthMs: t.growthMs, trainMs: t.trainMs };
}

const rows = [];
function row(measurement, detail, result) {
  rows.push([measurement, detail, result]);
  console.log(rows.at(-1).join(' | '));
}

/** For information: what relu1 (needed by GradMax) costs against tfjs's relu in the same plain loop. */
function relu1Cost() {
  const rng = new Rng(2);
  const x = tf.tensor2d(Float32Array.from({ length: 20000 }, () => rng.normal()), [1000, 20]);
  const y = tf.tensor2d(Float32Array.from({ length: 10000 }, () => rng.normal()), [1000, 10]);
  const w1 = tf.variable(tf.randomNormal([20, 10], 0, 0.3, 'float32', 1));
  const w2 = tf.variable(tf.randomNormal([10, 10], 0, 0.3, 'float32', 2));
  const opt = tf.train.sgd(0.01);
  const time = { relu: 0, relu1: 0 };
  for (let b = 0; b < 20; b++) {
    for (const [name, act] of [['relu', tf.relu], ['relu1', relu1]]) {
      const t0 = performance.now();
      for (let i = 0; i < 25; i++) opt.minimize(() => tf.losses.meanSquaredError(y, tf.matMul(act(tf.matMul(x, w1)), w2)), true, [w1, w2]).dispose();
      time[name] += performance.now() - t0;
    }
  }
  tf.dispose([x, y, w1, w2]);
  opt.dispose();
  return { relu: 500 / (time.relu / 1000), relu1: 500 / (time.relu1 / 1000) };
}

if (!args.has('--skip-throughput')) {
  const ts = await teacherStudentThroughput(40, 25);
  row('throughput, teacher-student student (d=20, 1000 full batch, relu1 both sides)', `harness ${ts.harness.toFixed(0)} steps/s vs plain tfjs ${ts.plain.toFixed(0)} steps/s`, `ratio ${(ts.harness / ts.plain).toFixed(3)} (target ≥ 0.97)`);
  const rc = relu1Cost();
  row('for information: plain loop with relu1 vs tf.relu (teacher-student size)', `${rc.relu1.toFixed(0)} vs ${rc.relu.toFixed(0)} steps/s`, `ratio ${(rc.relu1 / rc.relu).toFixed(3)}`);
  const mm = await mnistThroughput(12, 20);
  row('throughput, mnist-mlp 784-256-256-10, batch 128 (relu1 both sides)', `harness ${mm.harness.toFixed(1)} steps/s vs plain tfjs ${mm.plain.toFixed(1)} steps/s`, `ratio ${(mm.harness / mm.plain).toFixed(3)} (target ≥ 0.97)`);
}

if (!args.has('--skip-overhead')) {
  const cases = [
    ['teacher-student', {}, 'teacher-student default protocol (1500 steps, 5 growths)'],
    ['mnist-mlp', { steps: 1500, growStart: 250, growEvery: 100, evalEvery: 1000000, testSize: 100 }, 'mnist-mlp, 12 events × 2 sites in 1500 steps'],
  ];
  for (const [task, overrides, label] of cases) {
    for (const arm of ['gradmax', 'random']) {
      const g = await growthShare(task, arm, overrides);
      row(`growth overhead, ${label}, ${arm}`, `${g.events} growths, ${g.growthMs.toFixed(0)} ms of ${(g.trainMs + g.growthMs).toFixed(0)} ms`, `share ${(g.share * 100).toFixed(2)}% (target ≤ 2%)`);
    }
  }
}

if (!args.has('--skip-demo')) {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const bin = path.resolve(here, '../../cli/dist/bin.js');
  const out = mkdtempSync(path.join(os.tmpdir(), 'gradmax-demo-bench-'));
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [bin, 'bench', 'run', '--task', 'teacher-student', '--out', out, '--force'], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, CI: 'true' } });
  const secs = (performance.now() - t0) / 1000;
  rmSync(out, { recursive: true, force: true });
  row('demo grid (teacher-student, 5 seeds × 11 arms, default workers)', `exit ${r.status}`, `wall time ${secs.toFixed(0)} s`);
}

console.log('\n| measurement | detail | result |\n| --- | --- | --- |');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
