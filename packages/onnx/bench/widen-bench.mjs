#!/usr/bin/env node
// Benchmark: load + widen one layer + save of a generated ~100 MB FP32 model and a ~50 MB FP16 model, against a
// plain copy of the same file in the same run. Peak RSS is measured in a child process per run.
// Usage: pnpm --filter @gradmax/onnx bench   (builds first; needs @gradmax/core built)
// Env: BENCH_MB (FP32 model size in MB, default 100), BENCH_REPEAT (default 3).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, '..', 'dist', 'index.js');

/**
 * Peak RSS of this process. Linux's VmHWM belongs to the current address space; `resourceUsage().maxRSS` also
 * counts the forked parent's image before exec, which inflates a child spawned by a big parent.
 */
function peakRss() {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}

async function child(file, out, viaStrategy) {
  const startRss = process.memoryUsage().rss;
  const { Matrix } = await import('@gradmax/core');
  await import('@gradmax/strategies/register');
  const onnx = await import(dist);
  const importedRss = process.memoryUsage().rss;
  const t0 = performance.now();
  const model = onnx.loadModel(file);
  const site = onnx.findSites(model).find((s) => s.growable);
  let strategy;
  if (viaStrategy) {
    // The library path a user takes: growModel with a registered strategy (its request validation reads both weight
    // matrices as float64).
    onnx.growModel(model, [{ site: site.name, count: 16 }], { strategy: 'random', seed: 1 });
    strategy = 'random';
  } else {
    // Lower bound: new units built by hand from the lazily read site, which never touches the weights.
    const gs = onnx.lazyGrowthSite(model, site);
    const k = 16;
    const outgoing = Matrix.zeros(gs.fanOut, k);
    for (let i = 0; i < outgoing.data.length; i++) outgoing.data[i] = Math.sin(i) * 0.01;
    const newUnits = { incoming: Matrix.zeros(k, gs.fanIn), incomingBias: new Float64Array(k), outgoing, report: { strategy: 'bench', site: site.name, count: k, notes: [] } };
    onnx.widen(model, [{ site, newUnits }]); // the site object, as growModel passes it (no second findSites)
    strategy = 'none';
  }
  onnx.saveModel(model, out);
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write(JSON.stringify({ seconds, peakRss: peakRss(), startRss, importedRss, site: site.name, strategy }));
}

async function copyChild(file, out) {
  const t0 = performance.now();
  fs.copyFileSync(file, out);
  const fd = fs.openSync(out, 'r+');
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write(JSON.stringify({ seconds, peakRss: peakRss() }));
}

async function generate(file, dataType, targetBytes) {
  const onnx = await import(dist);
  const { create } = await import('@bufbuild/protobuf');
  const { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema } = await import('onnx-buf');
  const width = 1024;
  const elem = dataType === 1 ? 4 : 2;
  const layers = Math.max(2, Math.round(targetBytes / (width * width * elem)));
  const nodes = [];
  const inits = [];
  let x = 'x';
  let seed = 12345;
  for (let l = 0; l < layers; l++) {
    const buf = new onnx.TensorBuffer(dataType, [width, width]);
    for (let i = 0; i < buf.length; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      buf.set(i, ((seed >>> 8) / 16777216 - 0.5) * 0.06);
    }
    inits.push(onnx.makeTensor(`w${l}`, dataType, [width, width], buf));
    const h = `h${l}`;
    nodes.push(onnx.makeNode('MatMul', [x, `w${l}`], [h], {}, `fc${l}`));
    if (l < layers - 1) {
      nodes.push(onnx.makeNode('Relu', [h], [`r${l}`], {}, `relu${l}`));
      x = `r${l}`;
    } else x = h;
  }
  const proto = create(ModelProtoSchema, {
    irVersion: 8n,
    opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 13n })],
    graph: create(GraphProtoSchema, { name: 'bench', node: nodes, initializer: inits, input: [onnx.makeValueInfo('x', dataType, ['N', width])], output: [onnx.makeValueInfo(x, dataType, ['N', width])] }),
  });
  fs.writeFileSync(file, onnx.serializeModel(proto));
  return layers;
}

function runChild(mode, file, out) {
  const res = execFileSync(process.execPath, [fileURLToPath(import.meta.url), mode, file, out], { encoding: 'utf8', maxBuffer: 1 << 20 });
  fs.rmSync(out, { force: true });
  return JSON.parse(res);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function parent() {
  const mb = Number(process.env.BENCH_MB ?? 100);
  const repeat = Number(process.env.BENCH_REPEAT ?? 3);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gradmax-onnx-bench-'));
  try {
    const rows = [];
    for (const [label, dataType, bytes] of [['FP32', 1, mb * 1e6], ['FP16', 10, (mb / 2) * 1e6]]) {
      const file = path.join(dir, `${label}.onnx`);
      // Generated in a child process, so that this process stays small (see peakRss).
      const layers = Number(execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--generate', file, String(dataType), String(bytes)], { encoding: 'utf8' }));
      const size = fs.statSync(file).size;
      const copies = [];
      const widens = [];
      const reads = [];
      for (let r = 0; r < repeat; r++) {
        copies.push(runChild('--copy', file, path.join(dir, 'copy.onnx')));
        widens.push(runChild('--widen-strategy', file, path.join(dir, 'out.onnx')));
        reads.push(runChild('--widen-no-read', file, path.join(dir, 'out.onnx')));
      }
      const copy = median(copies.map((c) => c.seconds));
      const widen = median(widens.map((w) => w.seconds));
      const copyMin = Math.min(...copies.map((c) => c.seconds));
      const widenMin = Math.min(...widens.map((w) => w.seconds));
      const peak = Math.max(...widens.map((w) => w.peakRss));
      if (process.env.BENCH_VERBOSE) console.log(label, JSON.stringify({ copies, widens, reads }));
      const imported = median(widens.map((w) => w.importedRss));
      const read = median(reads.map((w) => w.seconds));
      const readPeak = Math.max(...reads.map((w) => w.peakRss));
      rows.push({ label, layers, size, copy, widen, copyMin, widenMin, peak, imported, read, readPeak, site: widens[0].site });
    }
    console.log(`node ${process.version}, ${os.cpus().length} cores; ${repeat} runs each (median time, max RSS), load average ${os.loadavg()[0].toFixed(1)}; loadModel + growModel (registered strategy "random", 16 units at the first site) + saveModel, in a fresh process per run; save includes fsync, so does the copy`);
    for (const r of rows) {
      console.log(
        `${r.label}: ${(r.size / 1e6).toFixed(1)} MB (${r.layers} MatMul layers 1024x1024), site ${r.site}\n` +
          `  copy ${(r.copy * 1000).toFixed(0)} ms, load+widen+save ${(r.widen * 1000).toFixed(0)} ms -> time ratio ${(r.widen / r.copy).toFixed(2)}x (target <= 5x); ` +
          `best runs: ${(r.copyMin * 1000).toFixed(0)} / ${(r.widenMin * 1000).toFixed(0)} ms -> ${(r.widenMin / r.copyMin).toFixed(2)}x\n` +
          `  peak RSS ${(r.peak / 1e6).toFixed(1)} MB -> RSS ratio ${(r.peak / r.size).toFixed(2)}x model size (target <= 2.5x); ` +
          `(RSS after imports, before loading: ${(r.imported / 1e6).toFixed(1)} MB; above it: ${((r.peak - r.imported) / r.size).toFixed(2)}x)\n` +
          `  lower bound, new units built by hand without reading the weights: ${(r.read * 1000).toFixed(0)} ms -> ${(r.read / r.copy).toFixed(2)}x, ` +
          `peak RSS ${(r.readPeak / 1e6).toFixed(1)} MB -> ${(r.readPeak / r.size).toFixed(2)}x`,
      );
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const [mode, file, out] = process.argv.slice(2);
if (mode === '--widen-strategy') await child(file, out, true);
else if (mode === '--widen-no-read') await child(file, out, false);
else if (mode === '--copy') await copyChild(file, out);
else if (mode === '--generate') {
  // --generate FILE fp16|fp32 [BYTES]: writes the model, prints its layer count
  const fp16 = out === 'fp16' || out === '10';
  const bytes = process.argv[5] !== undefined ? Number(process.argv[5]) : Number(process.env.BENCH_MB ?? 100) * (fp16 ? 0.5e6 : 1e6);
  process.stdout.write(String(await generate(file, fp16 ? 10 : 1, bytes)));
}
else await parent();
