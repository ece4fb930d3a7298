#!/usr/bin/env node
// Probe coverage and cost on a corpus of exported models (manifest.json: {"models": [{"name", "opset", "file",
// "inputShape", "dynamicAxes"}]}): per model, the op types on the path from the input to the loss that have no
// gradient rule (missingGradientRules); whether the whole backward graph (the loss gradient with respect to the
// input, through every op) builds and runs, and its time against one plain inference; the growable sites the probe
// accepts, whether the probe builds and runs, and the time of one probe run against one plain inference of the same
// batch (medians of BENCH_REPEAT run pairs, one intra-op thread each).
// Usage: pnpm --filter @gradmax/onnx build && node packages/onnx/bench/probe-corpus.mjs [CORPUS_DIR]
// Env: BENCH_BATCH (default 32), BENCH_REPEAT (default 5, after 2 untimed runs of each), BENCH_OPSET (only manifest entries of this opset; default
// all), BENCH_ONLY (comma-separated model names), BENCH_MAX_MB (skip larger files; default 400), BENCH_JSON=1.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { fromBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema } from 'onnx-buf';

const here = path.dirname(fileURLToPath(import.meta.url));
const onnx = await import(path.join(here, '..', 'dist', 'index.js'));
const probeApi = await import(path.join(here, '..', 'dist', 'probe', 'index.js'));

const dir = process.argv[2] ?? path.join(os.homedir(), '.cache', 'gradmax', 'corpus');
const BATCH = Number(process.env.BENCH_BATCH ?? 32);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 5);
const MAX_MB = Number(process.env.BENCH_MAX_MB ?? 400);
const only = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : undefined;
const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
const threads = { intraOpNumThreads: 1, interOpNumThreads: 1 };

let seed = 99;
function rand() {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return ((seed >>> 0) / 4294967296) * 2 - 1;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const rows = [];
for (const entry of manifest.models) {
  if (process.env.BENCH_OPSET && String(entry.opset) !== process.env.BENCH_OPSET) continue;
  if (only && !only.has(entry.name)) continue;
  const file = path.join(dir, entry.file);
  const row = { model: entry.name, opset: entry.opset, missing: '', backward: '', backwardRatio: '', sites: '', probe: '', ratio: '', inferMs: '', probeMs: '', note: '' };
  rows.push(row);
  const mb = fs.statSync(file).size / 2 ** 20;
  if (mb > MAX_MB) {
    row.probe = 'skipped';
    row.note = `${mb.toFixed(0)} MB > BENCH_MAX_MB`;
    continue;
  }
  try {
    const model = onnx.loadModel(file);
    const missing = probeApi.missingGradientRules(model);
    row.missing = missing.map((m) => `${m.domain ? `${m.domain}::` : ''}${m.opType}×${m.nodes.length}`).join(' ') || '-';
    const dims = [BATCH, ...entry.inputShape.slice(1)];
    const n = dims.reduce((a, b) => a * b, 1);
    const x = new ort.Tensor('float32', Float32Array.from({ length: n }, rand), dims);
    const plain = await ort.InferenceSession.create(file, threads);
    const inputName = plain.inputNames[0];
    const first = await plain.run({ [inputName]: x });
    const y = first[plain.outputNames[0]];
    const classes = y.dims[1];
    const loss = { kind: y.dims.length === 2 ? 'ce-logits' : 'mse' };
    const labels =
      loss.kind === 'ce-logits'
        ? new ort.Tensor('int64', BigInt64Array.from({ length: BATCH }, () => BigInt(Math.floor(((rand() + 1) / 2) * classes) % classes)), [BATCH])
        : new ort.Tensor('float32', Float32Array.from(y.data, () => rand()), [...y.dims]);
    const timeInference = async () => {
      const t = performance.now();
      await plain.run({ [inputName]: x });
      return performance.now() - t;
    };
    // The whole backward pass: the loss gradient with respect to the model input, through every op.
    if (!missing.length) {
      try {
        const vjp = await probeApi.buildVjpModel(fromBinary(ModelProtoSchema, fs.readFileSync(file)), { wrt: [inputName], loss });
        const vs = await probeApi.createProbeSession(vjp.model, { sessionOptions: threads });
        const vfeeds = { [inputName]: x, [vjp.loss.labelsInput]: labels };
        for (let k = 0; k < 2; k++) await vs.run(vfeeds), await timeInference();
        const ti = [];
        const tb = [];
        for (let k = 0; k < REPEAT; k++) {
          ti.push(await timeInference());
          const t = performance.now();
          await vs.run(vfeeds);
          tb.push(performance.now() - t);
        }
        await vs.release();
        row.backward = 'runs';
        row.backwardRatio = (median(tb) / median(ti)).toFixed(2);
      } catch (e) {
        row.backward = `${e.constructor?.name ?? 'error'}: ${String(e.message).split('\n')[0].slice(0, 120)}`;
      }
    }
    const sites = onnx.findSites(model).filter((s) => s.growable);
    const usable = [];
    const refused = new Map();
    for (const s of sites) {
      try {
        probeApi.probeSiteOf(model, s.name);
        usable.push(s.name);
      } catch (e) {
        const why = String(e.message).replace(/^site "[^"]*": /, '').replace(/"[^"]*"/g, '…').slice(0, 60);
        refused.set(why, (refused.get(why) ?? 0) + 1);
      }
    }
    row.sites = `${usable.length}/${sites.length}`;
    if (refused.size) row.note = [...refused].map(([k, v]) => `${v}× ${k}`).join('; ');
    if (!usable.length) {
      row.probe = 'no site';
      await plain.release();
      continue;
    }
    const t0 = performance.now();
    const probe = await probeApi.buildProbe(model, { sites: usable, loss });
    const buildMs = performance.now() - t0;
    const session = await probeApi.createProbeSession(probe.model, { sessionOptions: threads });
    const feeds = { [probe.inputs[0]]: x, [probe.labelsInput]: labels };
    for (let k = 0; k < 2; k++) await session.run(feeds), await timeInference();
    const ti = [];
    const tp = [];
    for (let k = 0; k < REPEAT; k++) {
      ti.push(await timeInference());
      const t = performance.now();
      await session.run(feeds);
      tp.push(performance.now() - t);
    }
    await plain.release();
    await session.release();
    row.inferMs = median(ti).toFixed(1);
    row.probeMs = median(tp).toFixed(1);
    row.ratio = (median(tp) / median(ti)).toFixed(2);
    row.probe = `ok (${loss.kind}, build ${(buildMs / 1000).toFixed(1)} s${probe.prepared?.relaxedBatch ? ', batch relaxed' : ''})`;
  } catch (e) {
    row.probe = `${e.constructor?.name ?? 'error'}`;
    row.note = String(e.message).split('\n')[0].slice(0, 160);
  }
  if (!process.env.BENCH_JSON) console.error(`${row.model} op${row.opset}: backward ${row.backward} ${row.backwardRatio}; probe ${row.probe} ${row.ratio ? `ratio ${row.ratio}` : ''} ${row.note}`);
}

if (process.env.BENCH_JSON) console.log(JSON.stringify(rows, null, 2));
else {
  console.log('| model | opset | ops without a rule on the path (×nodes) | full backward (input gradient) | backward/inference | probe-able sites | probe | inference ms | probe ms | probe/inference | notes |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.model} | ${r.opset} | ${r.missing} | ${r.backward} | ${r.backwardRatio} | ${r.sites} | ${r.probe} | ${r.inferMs} | ${r.probeMs} | ${r.ratio} | ${r.note} |`);
}
