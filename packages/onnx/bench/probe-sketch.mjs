#!/usr/bin/env node
// Exact against sketched probe statistics on a corpus of exported models (the manifest of probe-corpus.mjs): per
// model, the time of one probe run over every growable pair site against one plain inference of the same batch
// (median over BENCH_REPEAT rounds of: inference, probe, inference for each mode in turn; one intra-op thread each)
// with statistics "exact", "auto" and "sketch", and
// the captured GradMax objective of the sketch: per sketched site, ‖U_kᵀM‖_F / ‖(exact U_k)ᵀM‖_F with U_k the
// sketch's top-k left singular vectors and M the exact probe's growth matrix of the same batch (for sites with at most
// BENCH_OBJECTIVE_MAX entries; min and median over those sites).
// Usage: pnpm --filter @gradmax/onnx build && node packages/onnx/bench/probe-sketch.mjs [CORPUS_DIR]
// Env: BENCH_BATCH (32), BENCH_REPEAT (3), BENCH_OPSET, BENCH_ONLY (comma-separated names, run in that order), BENCH_MAX_MB (400),
// BENCH_RANK (sketch rank r, default 16), BENCH_K (k of the objective, default 8), BENCH_OBJECTIVE_MAX (2^23 entries),
// BENCH_ROWS (co-range rows l, default 2r + 1), BENCH_MODES (comma-separated subset of exact,auto,sketch), BENCH_JSON=1.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';

const here = path.dirname(fileURLToPath(import.meta.url));
const onnx = await import(path.join(here, '..', 'dist', 'index.js'));
const probeApi = await import(path.join(here, '..', 'dist', 'probe', 'index.js'));
const core = await import('@gradmax/core');

const dir = process.argv[2] ?? path.join(os.homedir(), '.cache', 'gradmax', 'corpus');
const BATCH = Number(process.env.BENCH_BATCH ?? 32);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const MAX_MB = Number(process.env.BENCH_MAX_MB ?? 400);
const RANK = Number(process.env.BENCH_RANK ?? 16);
const K = Number(process.env.BENCH_K ?? 8);
const OBJECTIVE_MAX = Number(process.env.BENCH_OBJECTIVE_MAX ?? 2 ** 23);
const MODES = (process.env.BENCH_MODES ?? 'exact,auto,sketch').split(',');
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
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** ‖Uᵀ M‖_F over the first k columns of u. */
function captured(u, m, k) {
  const cols = Math.min(k, u.cols);
  const row = new Float64Array(m.cols);
  let total = 0;
  for (let j = 0; j < cols; j++) {
    row.fill(0);
    for (let i = 0; i < m.rows; i++) {
      const w = u.data[i * u.cols + j];
      if (w === 0) continue;
      const base = i * m.cols;
      for (let q = 0; q < m.cols; q++) row[q] += w * m.data[base + q];
    }
    for (let q = 0; q < m.cols; q++) total += row[q] * row[q];
  }
  return Math.sqrt(total);
}

const rows = [];
// With BENCH_ONLY, the models run in the order given there.
const ordered = only ? [...only].flatMap((name) => manifest.models.filter((m) => m.name === name)) : manifest.models;
for (const entry of ordered) {
  if (process.env.BENCH_OPSET && String(entry.opset) !== process.env.BENCH_OPSET) continue;
  if (only && !only.has(entry.name)) continue;
  const file = path.join(dir, entry.file);
  const row = { model: entry.name, opset: entry.opset, sites: '', sketched: '', inferMs: '', exact: '', auto: '', sketch: '', objective: '', note: '' };
  rows.push(row);
  if (fs.statSync(file).size / 2 ** 20 > MAX_MB) {
    row.note = 'skipped: file larger than BENCH_MAX_MB';
    continue;
  }
  let plain;
  try {
    const model = onnx.loadModel(file);
    const dims = [BATCH, ...entry.inputShape.slice(1)];
    const x = new ort.Tensor('float32', Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, rand), dims);
    plain = await ort.InferenceSession.create(file, threads);
    const inputName = plain.inputNames[0];
    const y = (await plain.run({ [inputName]: x }))[plain.outputNames[0]];
    const loss = { kind: y.dims.length === 2 ? 'ce-logits' : 'mse' };
    const labels =
      loss.kind === 'ce-logits'
        ? new ort.Tensor('int64', BigInt64Array.from({ length: BATCH }, () => BigInt(Math.floor(((rand() + 1) / 2) * y.dims[1]) % y.dims[1])), [BATCH])
        : new ort.Tensor('float32', Float32Array.from(y.data, () => rand()), [...y.dims]);
    const usable = onnx
      .findSites(model)
      .filter((s) => s.growable)
      .map((s) => s.name)
      .filter((name) => {
        try {
          probeApi.probeSiteOf(model, name);
          return true;
        } catch {
          return false;
        }
      });
    row.sites = String(usable.length);
    if (!usable.length) {
      row.note = 'no probe-able site';
      continue;
    }
    const timeInference = async () => {
      const t = performance.now();
      await plain.run({ [inputName]: x });
      return performance.now() - t;
    };
    // All sessions first, then interleaved runs (inference, probe of each mode, inference), so that a change in the
    // machine's load hits every mode alike; each ratio is a probe run over the mean of the inferences around it.
    const sessions = [];
    for (const mode of MODES) {
      const probe = await probeApi.buildProbe(model, { sites: usable, loss, statistics: mode, sketchRank: RANK, ...(process.env.BENCH_ROWS ? { sketchRows: Number(process.env.BENCH_ROWS) } : {}) });
      if (mode === 'auto') row.sketched = `${probe.outputs.filter((o) => o.layout === 'sketch').length}/${usable.length}`;
      const session = await probeApi.createProbeSession(probe.model, { sessionOptions: threads });
      sessions.push({ mode, probe, session, feeds: { [probe.inputs[0]]: x, [probe.labelsInput]: labels }, ratios: [] });
    }
    for (const s of sessions) await s.session.run(s.feeds);
    await timeInference();
    const infer = [];
    for (let k = 0; k < REPEAT; k++) {
      for (const s of sessions) {
        const before = await timeInference();
        const t = performance.now();
        await s.session.run(s.feeds);
        const probeMs = performance.now() - t;
        const after = await timeInference();
        infer.push(before, after);
        s.ratios.push(probeMs / ((before + after) / 2));
      }
    }
    const results = {};
    for (const s of sessions) {
      results[s.mode] = { ratio: median(s.ratios) };
      if (s.mode === 'exact' || s.mode === 'sketch') results[s.mode].statistics = (await probeApi.runProbe(s.probe, s.session, [{ inputs: x, labels }])).statistics;
      await s.session.release();
    }
    row.inferMs = median(infer).toFixed(1);
    for (const mode of MODES) row[mode] = results[mode].ratio.toFixed(2);
    if (results.exact && results.sketch) {
      const ratios = [];
      for (const [name, sk] of results.sketch.statistics) {
        if (sk.fanOut * sk.fanIn > OBJECTIVE_MAX) continue;
        const m = results.exact.statistics.get(name).snapshot().moment;
        const kk = Math.min(K, m.rows, m.cols);
        const exactU = core.topKSvd(m, kk, { seed: 1 }).u;
        const best = captured(exactU, m, kk);
        if (!(best > 0)) continue;
        ratios.push(captured(sk.reconstruct().u, m, kk) / best);
      }
      if (ratios.length) row.objective = `${Math.min(...ratios).toFixed(3)} / ${median(ratios).toFixed(3)} (${ratios.length})`;
    }
  } catch (e) {
    row.note = `${e.constructor?.name ?? 'error'}: ${String(e.message).split('\n')[0].slice(0, 140)}`;
  } finally {
    await plain?.release();
  }
  if (!process.env.BENCH_JSON) console.error(`${row.model} op${row.opset}: exact ${row.exact} auto ${row.auto} sketch ${row.sketch} objective ${row.objective} ${row.note}`);
}

if (process.env.BENCH_JSON) console.log(JSON.stringify(rows, null, 2));
else {
  console.log(`| model | opset | probe-able sites | sketched by auto | inference ms | exact/inference | auto/inference | sketch/inference | captured objective, k = ${K}, r = ${RANK} (min / median (sites)) | notes |`);
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.model} | ${r.opset} | ${r.sites} | ${r.sketched} | ${r.inferMs} | ${r.exact} | ${r.auto} | ${r.sketch} | ${r.objective} | ${r.note} |`);
}
