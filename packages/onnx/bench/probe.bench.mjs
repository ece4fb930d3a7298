#!/usr/bin/env node
// Benchmark: probe run (forward + generated backward + in-graph statistics reduction) against plain inference of
// the same model on the same batch, in the same run, for an MLP (784-256-256-10) and a CNN on MNIST-sized inputs
// (1×28×28); plus statistics throughput (samples/s, merged into the core's statistics objects).
// Usage: pnpm --filter @gradmax/onnx build && node packages/onnx/bench/probe.bench.mjs
// Env: BENCH_BATCH (default 128), BENCH_REPEAT (timed run pairs, default 40), BENCH_SAMPLES (default 4096),
// BENCH_PROFILE=1 (prints the probe's slowest nodes, µs per run, from an onnxruntime profile; BENCH_PROFILE_TOP=N rows),
// BENCH_OPSET (default 17; below 16 an overlapping MaxPool takes the gradient without Indices, per window tap),
// BENCH_CONV_GRAD=1 (instead: conv input gradients alone, ConvTranspose against the Conv of the flipped weight the probe
// emits for stride 1, and against a phase decomposition for stride 2 — the measurements behind the rule's choice).
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { create, toBinary } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema, TensorProto_DataType } from 'onnx-buf';
import * as ort from 'onnxruntime-node';

const here = path.dirname(fileURLToPath(import.meta.url));
const onnx = await import(path.join(here, '..', 'dist', 'index.js'));
const probeApi = await import(path.join(here, '..', 'dist', 'probe', 'index.js'));

const BATCH = Number(process.env.BENCH_BATCH ?? 128);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 40);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 4096);
// Both sessions use the same intra-op thread count (default 1: on a shared 2-core machine more threads oversubscribe
// the cores and make every timing noisy); set BENCH_THREADS=0 for onnxruntime's default.
const THREADS = Number(process.env.BENCH_THREADS ?? 1);
const threadOptions = THREADS > 0 ? { intraOpNumThreads: THREADS } : {};
const F = TensorProto_DataType.FLOAT;
const OPSET = BigInt(process.env.BENCH_OPSET ?? 17);

let seed = 12345;
function rand() {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return ((seed >>> 0) / 4294967296) * 2 - 1;
}

function builder() {
  const nodes = [];
  const inits = [];
  let n = 0;
  return {
    w(dims, scale, offset = 0) {
      const count = dims.reduce((a, b) => a * b, 1);
      const name = `w${n++}`;
      inits.push(onnx.makeTensor(name, F, dims, Float32Array.from({ length: count }, () => rand() * scale + offset)));
      return name;
    },
    op(type, inputs, attrs = {}, name = `${type}_${n++}`) {
      const out = `${name}_out`;
      nodes.push(onnx.makeNode(type, inputs, [out], attrs, name));
      return out;
    },
    model(inputDims, output, outDims) {
      return create(ModelProtoSchema, {
        irVersion: 8n,
        opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: OPSET })],
        graph: create(GraphProtoSchema, {
          name: 'bench',
          node: nodes,
          initializer: inits,
          input: [onnx.makeValueInfo('x', F, inputDims)],
          output: [onnx.makeValueInfo(output, F, outDims)],
        }),
      });
    },
  };
}

function mlp() {
  const b = builder();
  let h = b.op('Relu', [b.op('Gemm', ['x', b.w([784, 256], 0.05), b.w([256], 0.1)], {}, 'fc1')]);
  h = b.op('Relu', [b.op('Gemm', [h, b.w([256, 256], 0.06), b.w([256], 0.1)], {}, 'fc2')]);
  const y = b.op('Gemm', [h, b.w([256, 10], 0.06), b.w([10], 0.1)], {}, 'fc3');
  return { model: b.model(['N', 784], y, ['N', 10]), dims: [784], sites: [{ current: 'fc1', next: 'fc2' }, { current: 'fc2', next: 'fc3' }] };
}

function cnn() {
  const b = builder();
  let h = b.op('Relu', [b.op('Conv', ['x', b.w([16, 1, 3, 3], 0.3), b.w([16], 0.1)], { pads: [1, 1, 1, 1] }, 'conv1')]);
  h = b.op('Relu', [b.op('Conv', [h, b.w([32, 16, 3, 3], 0.08), b.w([32], 0.1)], { pads: [1, 1, 1, 1], strides: [2, 2] }, 'conv2')]);
  h = b.op('MaxPool', [h], { kernel_shape: [2, 2], strides: [2, 2] });
  h = b.op('Flatten', [h]);
  const y = b.op('Gemm', [h, b.w([32 * 7 * 7, 10], 0.03), b.w([10], 0.1)], {}, 'fc');
  return { model: b.model(['N', 1, 28, 28], y, ['N', 10]), dims: [1, 28, 28], sites: [{ current: 'conv1', next: 'conv2' }] };
}

/**
 * A deeper CNN that takes the general paths: BatchNormalization, an overlapping 3x3/2 MaxPool (gradient through its
 * Indices output at opset >= 16, per window tap without Indices below), a second conv site after the pool, a GlobalAveragePool head.
 */
function cnnGeneral() {
  const b = builder();
  let h = b.op('Relu', [b.op('Conv', ['x', b.w([16, 1, 3, 3], 0.3), b.w([16], 0.1)], { pads: [1, 1, 1, 1] }, 'conv1')]);
  h = b.op('Conv', [h, b.w([32, 16, 3, 3], 0.08), b.w([32], 0.1)], { pads: [1, 1, 1, 1] }, 'conv2');
  h = b.op('BatchNormalization', [h, b.w([32], 0.1, 1), b.w([32], 0.1), b.w([32], 0.1), b.w([32], 0.1, 1)]);
  h = b.op('MaxPool', [b.op('Relu', [h])], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
  h = b.op('Relu', [b.op('Conv', [h, b.w([32, 32, 3, 3], 0.06), b.w([32], 0.1)], { pads: [1, 1, 1, 1] }, 'conv3')]);
  h = b.op('Relu', [b.op('Conv', [h, b.w([32, 32, 3, 3], 0.06), b.w([32], 0.1)], { pads: [1, 1, 1, 1], strides: [2, 2] }, 'conv4')]);
  h = b.op('Flatten', [b.op('GlobalAveragePool', [h])]);
  const y = b.op('Gemm', [h, b.w([32, 10], 0.1), b.w([10], 0.1)], {}, 'fc');
  return { model: b.model(['N', 1, 28, 28], y, ['N', 10]), dims: [1, 28, 28], sites: [{ current: 'conv1', next: 'conv2' }, { current: 'conv3', next: 'conv4' }] };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Median times of `a` and `b`, interleaved run by run so both see the same machine load. */
async function timePair(a, b) {
  for (let i = 0; i < 3; i++) {
    await a();
    await b();
  }
  const ta = [];
  const tb = [];
  for (let i = 0; i < REPEAT; i++) {
    let t0 = performance.now();
    await a();
    ta.push(performance.now() - t0);
    t0 = performance.now();
    await b();
    tb.push(performance.now() - t0);
  }
  return { a: median(ta), b: median(tb), minA: Math.min(...ta), minB: Math.min(...tb), pairRatio: median(ta.map((x, i) => tb[i] / x)) };
}

/** Flipped, channel-swapped weight W'[g·Cg + c, m, i, j] = W[g·Mg + m, c, kh−1−i, kw−1−j] (as the probe bakes it). */
function flippedWeight(w, M, Cg, kh, kw, group) {
  const Mg = M / group;
  const out = new Float32Array(w.length);
  for (let g = 0; g < group; g++) for (let m = 0; m < Mg; m++) for (let c = 0; c < Cg; c++) for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) {
    out[((((g * Cg + c) * Mg + m) * kh + i) * kw) + j] = w[((((g * Mg + m) * Cg + c) * kh + (kh - 1 - i)) * kw) + (kw - 1 - j)];
  }
  return out;
}

/**
 * Stride s, dilation 1, square kernel k: the s² output phases of the input gradient as ONE Conv (phase (rh, rw) of
 * channel c is output channel c·s² + rh·s + rw, kernel ceil(k/s) with zero taps where a phase has fewer), interleaved
 * by DepthToSpace and cropped by the pads.
 */
function phaseWeight(w, M, Cg, k, s, group) {
  const Mg = M / group;
  const A = Math.ceil(k / s);
  const C = Cg * group;
  const out = new Float32Array(C * s * s * Mg * A * A);
  for (let g = 0; g < group; g++) for (let c = 0; c < Cg; c++) for (let rh = 0; rh < s; rh++) for (let rw = 0; rw < s; rw++) for (let m = 0; m < Mg; m++) for (let bh = 0; bh < A; bh++) for (let bw = 0; bw < A; bw++) {
    const i = rh + s * (A - 1 - bh);
    const j = rw + s * (A - 1 - bw);
    if (i < k && j < k) out[(((((g * Cg + c) * s * s + rh * s + rw) * Mg + m) * A + bh) * A) + bw] = w[(((g * Mg + m) * Cg + c) * k + i) * k + j];
  }
  return out;
}

function gradModel(nodes, inits, gDims) {
  return toBinary(ModelProtoSchema, create(ModelProtoSchema, {
    irVersion: 8n,
    opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 17n })],
    graph: create(GraphProtoSchema, { name: 'grad', node: nodes, initializer: inits, input: [onnx.makeValueInfo('g', F, gDims)], output: [onnx.makeValueInfo('dx', F)] }),
  }));
}

async function convGradBench() {
  const N = BATCH;
  // [label, C (input channels), M (output channels), H, kernel, stride, pads (symmetric), dilation, group]
  const geometries = [
    ['3x3 32->32 14x14 pads 1 (the CNN\'s conv3)', 32, 32, 14, 3, 1, 1, 1, 1],
    ['3x3 16->32 28x28 pads 1', 16, 32, 28, 3, 1, 1, 1, 1],
    ['3x3 32->32 14x14 pads 0', 32, 32, 14, 3, 1, 0, 1, 1],
    ['3x3 32->32 14x14 dilation 2 pads 2', 32, 32, 14, 3, 1, 2, 2, 1],
    ['5x5 32->32 14x14 pads 2', 32, 32, 14, 5, 1, 2, 1, 1],
    ['3x3 32->32 14x14 groups 2', 32, 32, 14, 3, 1, 1, 1, 2],
    ['3x3 depthwise 32 14x14', 32, 32, 14, 3, 1, 1, 1, 32],
    ['3x3 depthwise x2 32->64 14x14 (kept ConvTranspose)', 32, 64, 14, 3, 1, 1, 1, 32],
    ['1x1 32->64 14x14', 32, 64, 14, 1, 1, 0, 1, 1],
    ['3x3 12->12 14x14', 12, 12, 14, 3, 1, 1, 1, 1],
    ['3x3 1->16 28x28 (the CNNs\' conv1; kept ConvTranspose)', 1, 16, 28, 3, 1, 1, 1, 1],
    ['3x3 4->32 28x28 (kept ConvTranspose)', 4, 32, 28, 3, 1, 1, 1, 1],
    ['3x3 stride 2 32->32 14x14 pads 1 (the CNN\'s conv4)', 32, 32, 14, 3, 2, 1, 1, 1],
    ['3x3 stride 2 16->32 28x28 pads 1', 16, 32, 28, 3, 2, 1, 1, 1],
    ['2x2 stride 2 32->32 14x14', 32, 32, 14, 2, 2, 0, 1, 1],
    ['3x3 stride 2 depthwise 32 14x14 pads 1', 32, 32, 14, 3, 2, 1, 1, 32],
  ];
  console.log(`conv input gradients: batch ${N}, median of ${REPEAT} interleaved run pairs, onnxruntime-node CPU, intra-op threads ${THREADS > 0 ? THREADS : 'default'}`);
  for (const [label, C, M, H, k, s, p, d, group] of geometries) {
    const Cg = C / group;
    const O = Math.floor((H + 2 * p - d * (k - 1) - 1) / s) + 1;
    const gDims = [N, M, O, O];
    const w = Float32Array.from({ length: M * Cg * k * k }, () => rand() * 0.3);
    const rem = H + 2 * p - d * (k - 1) - 1 - s * (O - 1);
    const convT = gradModel(
      [onnx.makeNode('ConvTranspose', ['g', 'w'], ['dx'], { kernel_shape: [k, k], strides: [s, s], dilations: [d, d], pads: [p, p, p, p], output_padding: [rem, rem], group })],
      [onnx.makeTensor('w', F, [M, Cg, k, k], w)],
      gDims,
    );
    let alt;
    let altName;
    if (s === 1) {
      altName = 'Conv (flipped W)';
      const q = d * (k - 1) - p;
      alt = gradModel([onnx.makeNode('Conv', ['g', 'w'], ['dx'], { kernel_shape: [k, k], dilations: [d, d], pads: [q, q, q, q], group })], [onnx.makeTensor('w', F, [C, M / group, k, k], flippedWeight(w, M, Cg, k, k, group))], gDims);
    } else {
      altName = 'phase Conv + DepthToSpace';
      const A = Math.ceil(k / s);
      const U = Math.ceil((p + H) / s);
      alt = gradModel(
        [
          onnx.makeNode('Conv', ['g', 'w'], ['phases'], { kernel_shape: [A, A], pads: [A - 1, A - 1, U - O, U - O], group }),
          onnx.makeNode('DepthToSpace', ['phases'], ['spread'], { blocksize: s, mode: 'CRD' }),
          onnx.makeNode('Slice', ['spread', 'starts', 'ends', 'axes'], ['dx']),
        ],
        [
          onnx.makeTensor('w', F, [C * s * s, M / group, A, A], phaseWeight(w, M, Cg, k, s, group)),
          onnx.makeTensor('starts', TensorProto_DataType.INT64, [2], [p, p]),
          onnx.makeTensor('ends', TensorProto_DataType.INT64, [2], [p + H, p + H]),
          onnx.makeTensor('axes', TensorProto_DataType.INT64, [2], [2, 3]),
        ],
        gDims,
      );
    }
    const a = await ort.InferenceSession.create(convT, threadOptions);
    const b = await ort.InferenceSession.create(alt, threadOptions);
    const g = new ort.Tensor('float32', Float32Array.from({ length: gDims.reduce((x, y) => x * y, 1) }, () => rand()), gDims);
    const ra = (await a.run({ g })).dx.data;
    const rb = (await b.run({ g })).dx.data;
    let err = 0;
    let scale = 0;
    for (let i = 0; i < ra.length; i++) {
      err = Math.max(err, Math.abs(ra[i] - rb[i]));
      scale = Math.max(scale, Math.abs(ra[i]));
    }
    const t = await timePair(() => a.run({ g }), () => b.run({ g }));
    console.log(`  ${label.padEnd(56)} ConvTranspose ${t.a.toFixed(2).padStart(6)} ms, ${altName} ${t.b.toFixed(2).padStart(6)} ms: ${(t.a / t.b).toFixed(2)}x (max rel diff ${(err / scale).toExponential(1)})`);
    await a.release();
    await b.release();
  }
}

if (process.env.BENCH_CONV_GRAD === '1') {
  await convGradBench();
  process.exit(0);
}

const rows = [];
const ONLY_SITE = process.env.BENCH_SITE;
for (const [name, make] of [['MLP 784-256-256-10', mlp], ['CNN conv16-conv32/2-pool-fc', cnn], ['CNN conv16-conv32-BN-maxpool3/2-conv32-conv32/2-GAP-fc', cnnGeneral]]) {
  const made = make();
  const { model, dims } = made;
  const sites = ONLY_SITE ? made.sites.filter((s) => s.current === ONLY_SITE) : made.sites;
  if (!sites.length) continue;
  const per = dims.reduce((a, b) => a * b, 1);
  const x = new ort.Tensor('float32', Float32Array.from({ length: BATCH * per }, () => Math.abs(rand())), [BATCH, ...dims]);
  const labels = BigInt64Array.from({ length: BATCH }, (_, i) => BigInt(i % 10));
  const plain = await ort.InferenceSession.create(toBinary(ModelProtoSchema, model), threadOptions);
  const tb = performance.now();
  const probe = await probeApi.buildProbe(model, { sites, loss: { kind: 'ce-logits' } });
  const buildMs = performance.now() - tb;
  const profile = process.env.BENCH_PROFILE === '1';
  const profilePrefix = `probe-profile-${process.pid}-${rows.length}`;
  const session = await probeApi.createProbeSession(probe.model, { sessionOptions: { ...threadOptions, ...(profile ? { enableProfiling: true, profileFilePrefix: path.join(process.env.TMPDIR ?? '/tmp', profilePrefix) } : {}) } });
  const feeds = { x, [probe.labelsInput]: new ort.Tensor('int64', labels, [BATCH]) };
  const outNames = [probe.lossOutput, ...probe.outputs.map((o) => o.output)];
  const timing = await timePair(() => plain.run({ x }), () => session.run(feeds, outNames));
  const inferMs = timing.a;
  const probeMs = timing.b;
  // Throughput: stream SAMPLES examples in batches of BATCH through the probe and merge into core statistics.
  const data = function* () {
    for (let done = 0; done < SAMPLES; done += BATCH) yield { inputs: x, labels: Array.from(labels, Number) };
  };
  const t0 = performance.now();
  const res = await probeApi.runProbe(probe, session, data(), {});
  const seconds = (performance.now() - t0) / 1000;
  rows.push({ name, buildMs, inferMs, probeMs, ratio: probeMs / inferMs, minRatio: timing.minB / timing.minA, pairRatio: timing.pairRatio, minInfer: timing.minA, minProbe: timing.minB, throughput: res.examples / seconds, sites: probe.outputs.map((o) => `${o.site.name} ${o.layout} [${o.shape.join('x')}]`).join('; ') });
  await plain.release();
  if (profile) {
    // The node binding's endProfiling() writes `<prefix>_<timestamp>.json` and returns nothing: read the newest one.
    const fs = await import('node:fs');
    session.endProfiling();
    const dir = process.env.TMPDIR ?? '/tmp';
    const files = fs.readdirSync(dir).filter((f) => f.startsWith(`${profilePrefix}_`) && f.endsWith('.json'));
    const file = files.length ? path.join(dir, files.sort().at(-1)) : undefined;
    if (file) {
      const events = JSON.parse(fs.readFileSync(file, 'utf8'));
      const byNode = new Map();
      let total = 0;
      for (const ev of events) {
        if (ev.cat !== 'Node' || !ev.name.endsWith('_kernel_time')) continue;
        const key = `${ev.args.op_name} ${ev.name.replace('_kernel_time', '')}`;
        byNode.set(key, (byNode.get(key) ?? 0) + ev.dur);
        total += ev.dur;
      }
      const runs = events.filter((ev) => ev.cat === 'Session' && ev.name === 'model_run').length || 1;
      console.log(`profile of ${name}: ${runs} runs, ${(total / runs / 1000).toFixed(2)} ms kernel time per run; top nodes (µs per run):`);
      for (const [k, v] of [...byNode].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.BENCH_PROFILE_TOP ?? 16))) console.log(`  ${(v / runs).toFixed(0).padStart(7)}  ${k}`);
      fs.rmSync(file, { force: true });
    } else console.log(`profile of ${name}: no profile file found in ${dir}`);
  }
  await session.release();
}

console.log(`probe benchmark: batch ${BATCH}, median of ${REPEAT} interleaved run pairs, throughput over ${SAMPLES} samples, onnxruntime-node CPU, intra-op threads ${THREADS > 0 ? THREADS : 'default'}, opset ${OPSET}`);
for (const r of rows) {
  console.log(`\n${r.name}  (sites: ${r.sites})`);
  console.log(`  probe build (shape discovery + graph generation): ${r.buildMs.toFixed(0)} ms`);
  console.log(`  plain inference:  ${r.inferMs.toFixed(2)} ms/batch (median), ${r.minInfer.toFixed(2)} ms (min)`);
  console.log(`  probe run:        ${r.probeMs.toFixed(2)} ms/batch (median), ${r.minProbe.toFixed(2)} ms (min)`);
  console.log(`  ratio probe/inference: ${r.ratio.toFixed(2)}x of medians, ${r.pairRatio.toFixed(2)}x median per interleaved pair, ${r.minRatio.toFixed(2)}x of minima ${r.name.startsWith('CNN conv16-conv32-BN') ? '(target <= 3x not met on this deeper CNN: onnxruntime\'s MaxPool with Indices dominates, see docs/onnx.md)' : '(target <= 3x)'}`);
  console.log(`  statistics throughput: ${r.throughput.toFixed(0)} samples/s (probe run + merge into core statistics)`);
}
