#!/usr/bin/env node
// Growability benchmark (issue 11): how much of real exported architectures @gradmax/onnx can grow, and whether
// every widened group computes exactly what the original did.
//
// Corpus: torchvision models (and a few 1-D / 3-D / dynamic-size / transformer patterns) exported to ONNX by
// bench/corpus/export.py with Debian's python3-torch, cached in $GRADMAX_CORPUS_DIR (default ~/.cache/gradmax/corpus),
// never committed. Built here when missing; without torch the benchmark says so and exits 0.
//
// Per model: candidate layers (Conv/ConvTranspose/Gemm/MatMul with a stored weight, not the final classifier whose
// output reaches a graph output without another layer in between, not attention MatMuls whose operands are both
// computed), candidate layers that are producers of a growable group, groups found / growable, groups widened with
// `random` (and `gradmax` when group statistics exist) and verified in onnxruntime against the original, max |Δ|,
// time per step, group discovery time. Then totals and the issue's targets with PASS/FAIL.
//
// Until @gradmax/onnx exports `findGroups`, the pair sites of `findSites` stand in for groups (one producer, one
// consumer each); every table says which source was used.
//
// Usage: pnpm --filter @gradmax/onnx bench   or   node packages/onnx/bench/growability.mjs [--json out.json]
// Env:   GROWABILITY_MODELS=resnet18,mobilenet_v2   GROWABILITY_OPSETS=13   GROWABILITY_MAX_GROUPS=N (widen at most N
//        growable groups per model, spread evenly; default all)   GROWABILITY_BATCH (verification batch, default 2)
//        GROWABILITY_SOURCE=sites (pair sites even when findGroups exists; "groups" requires findGroups)
//        GRADMAX_CORPUS_DIR (corpus cache)   GRADMAX_PYTHON (interpreter with torch, default /usr/bin/python3)
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const here = path.dirname(fileURLToPath(import.meta.url));
const exportScript = path.join(here, 'corpus', 'export.py');
const corpusDir = process.env.GRADMAX_CORPUS_DIR ? path.resolve(process.env.GRADMAX_CORPUS_DIR) : path.join(os.homedir(), '.cache', 'gradmax', 'corpus');
const python = process.env.GRADMAX_PYTHON ?? '/usr/bin/python3';
const TOL = 1e-5; // FP32 target of the issue: max |Δ| <= 1e-5
const BATCH = Number(process.env.GROWABILITY_BATCH ?? 2);
const MAX_GROUPS = process.env.GROWABILITY_MAX_GROUPS ? Number(process.env.GROWABILITY_MAX_GROUPS) : Infinity;
// gradmax needs a probe run per group: GROWABILITY_GRADMAX_GROUPS bounds how many of the widened groups also grow with
// gradmax (spread over the model; default all), GROWABILITY_GRADMAX_GROUPS=0 skips gradmax.
const GRADMAX_GROUPS = process.env.GROWABILITY_GRADMAX_GROUPS ? Number(process.env.GROWABILITY_GRADMAX_GROUPS) : Infinity;
const DISCOVERY_BUDGET_S = 1; // per 300 nodes

function log(msg) {
  process.stderr.write(`${msg}\n`);
}

function usage(code) {
  (code ? process.stderr : process.stdout).write('usage: node packages/onnx/bench/growability.mjs [--json out.json]\n');
  process.exit(code);
}

let jsonOut;
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--json') {
      jsonOut = argv[++i];
      if (!jsonOut) usage(2);
    } else if (argv[i] === '--help' || argv[i] === '-h') usage(0);
    else {
      process.stderr.write(`unknown argument ${argv[i]}\n`);
      usage(2);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Corpus

function readManifest() {
  const p = path.join(corpusDir, 'manifest.json');
  if (!fs.existsSync(p)) return { models: [], failures: [] };
  return JSON.parse(fs.readFileSync(p, 'utf8'));
}

function pythonHasTorch() {
  const r = spawnSync(python, ['-c', 'import torch, torchvision, onnx'], { stdio: 'ignore' });
  return r.status === 0;
}

/** Names and opsets asked for, and the corpus entries for them (exporting what is missing when torch is there). */
function ensureCorpus() {
  const opsets = (process.env.GROWABILITY_OPSETS ?? '13,17').split(',').map((s) => Number(s.trim()));
  let names = process.env.GROWABILITY_MODELS?.split(',').map((s) => s.trim()).filter(Boolean);
  let manifest = readManifest();
  const known = (m) => [...m.models, ...m.failures].map((e) => `${e.name}@${e.opset}`);
  if (!names) {
    // Every model the export script knows (--list needs no torch), else whatever the cache holds.
    const r = fs.existsSync(python) ? spawnSync(python, [exportScript, '--list'], { encoding: 'utf8' }) : undefined;
    names = r?.status === 0 ? r.stdout.split('\n').filter(Boolean) : [...new Set(manifest.models.map((e) => e.name))];
  }
  const have = new Set(known(manifest));
  const missing = names.filter((n) => opsets.some((o) => !have.has(`${n}@${o}`)));
  if (names.length === 0) {
    log(`growability: the corpus ${corpusDir} is empty and ${python} cannot run ${exportScript}`);
    log('growability: it needs python3-torch, python3-torchvision and python3-onnx (Debian: apt-get install python3-torch python3-torchvision python3-onnx)');
  } else if (missing.length) {
    if (!fs.existsSync(python) || !pythonHasTorch()) {
      log(`growability: ${python} cannot import torch, torchvision and onnx (Debian: apt-get install python3-torch python3-torchvision python3-onnx),`);
      log(`growability: so the corpus cannot be built; ${missing.length} model(s) missing from ${corpusDir}: ${missing.join(', ')}`);
    } else {
      log(`growability: exporting ${missing.join(', ')} (opsets ${opsets.join(', ')}) into ${corpusDir}`);
      execFileSync(python, [exportScript, '--models', missing.join(','), '--opsets', opsets.join(','), '--out', corpusDir], { stdio: ['ignore', 'ignore', 'inherit'] });
      manifest = readManifest();
    }
  }
  const entries = manifest.models.filter((e) => names.includes(e.name) && opsets.includes(e.opset));
  entries.sort((a, b) => names.indexOf(a.name) - names.indexOf(b.name) || a.opset - b.opset);
  const failures = manifest.failures.filter((e) => names.includes(e.name) && opsets.includes(e.opset));
  return { entries, failures, names, opsets };
}

const corpus = ensureCorpus();
if (corpus.entries.length === 0) {
  log('growability: no corpus models available; skipping the benchmark (not a failure).');
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------------------------
// Library

const onnx = await import(path.join(here, '..', 'dist', 'index.js'));
const probe = await import(path.join(here, '..', 'dist', 'probe', 'index.js'));
await import('@gradmax/strategies/register');
const { Matrix, Rng } = await import('@gradmax/core');

// GROWABILITY_SOURCE=sites forces the pair-site view even when findGroups exists (to compare the two).
const forceSites = process.env.GROWABILITY_SOURCE === 'sites';
if (process.env.GROWABILITY_SOURCE && !['sites', 'groups'].includes(process.env.GROWABILITY_SOURCE)) {
  log(`growability: GROWABILITY_SOURCE must be "groups" or "sites", got "${process.env.GROWABILITY_SOURCE}"`);
  process.exit(2);
}
const hasGroups = typeof onnx.findGroups === 'function' && !forceSites;
if (process.env.GROWABILITY_SOURCE === 'groups' && !hasGroups) {
  log('growability: GROWABILITY_SOURCE=groups, but @gradmax/onnx has no findGroups yet');
  process.exit(2);
}
const hasGroupStats = typeof probe.computeGroupStatistics === 'function';
const source = hasGroups ? 'findGroups' : forceSites ? 'findSites pair sites (GROWABILITY_SOURCE=sites)' : 'FALLBACK: findSites pair sites (no findGroups yet)';
// gradmax statistics: per group from computeGroupStatistics; in the pair-site fallback the existing per-site probe
// (computeStatistics) serves, since there a group is a site; with groups but no group statistics: not run.
const gradmaxVia = hasGroupStats ? 'computeGroupStatistics' : hasGroups ? undefined : 'computeStatistics (pair sites)';
const GRADMAX_NA = 'n/a (no group statistics yet)';

/** Groups of a model: the library's, or pair sites presented as one-producer / one-consumer groups. */
function discoverGroups(model) {
  if (hasGroups) return onnx.findGroups(model);
  return onnx.findSites(model).map((s) => ({
    name: s.name,
    growable: s.growable,
    ...(s.reason ? { reason: s.reason } : {}),
    ...(s.units !== undefined ? { units: s.units } : {}),
    members: { producers: [s.current], passthrough: s.between.map((b) => b.node), consumers: s.next ? [s.next] : [] },
  }));
}

const LAYER_OPS = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul']);

/**
 * Candidate layers: Conv/ConvTranspose/Gemm/MatMul with a stored weight (initializer or Constant), minus final
 * classifiers (a graph output is reachable from the layer's output without passing through another layer).
 */
function candidateLayers(model) {
  const g = model.graph;
  const stored = new Set(g.initializer.map((t) => t.name));
  for (const n of g.node) if (n.opType === 'Constant') for (const o of n.output) stored.add(o);
  const consumers = new Map();
  for (const n of g.node) for (const i of n.input) if (i) (consumers.get(i) ?? consumers.set(i, []).get(i)).push(n);
  const outputs = new Set(g.output.map((o) => o.name));
  const hasStoredWeight = (n) => {
    if (n.opType === 'MatMul') return stored.has(n.input[0]) || stored.has(n.input[1]);
    return stored.has(n.input[1]);
  };
  const layers = g.node.filter((n) => LAYER_OPS.has(n.opType) && hasStoredWeight(n));
  const layerSet = new Set(layers);
  const reachesOutput = (n) => {
    const seen = new Set();
    const stack = [...n.output];
    while (stack.length) {
      const v = stack.pop();
      if (seen.has(v)) continue;
      seen.add(v);
      if (outputs.has(v)) return true;
      for (const c of consumers.get(v) ?? []) if (!layerSet.has(c)) stack.push(...c.output);
    }
    return false;
  };
  const classifiers = layers.filter(reachesOutput);
  const cls = new Set(classifiers);
  return { candidates: layers.filter((n) => !cls.has(n)).map(onnx.nodeLabel), classifiers: classifiers.map(onnx.nodeLabel) };
}

/** Values for the symbolic input dims: the batch from GROWABILITY_BATCH, others as exported. */
function dimsOf(entry) {
  const dims = {};
  for (const [axis, name] of Object.entries(entry.dynamicAxes ?? { 0: 'batch' })) dims[name] = axis === '0' ? BATCH : entry.inputShape[Number(axis)];
  return dims;
}

/** Up to `max` items spread evenly over the list. */
function spread(list, max) {
  if (list.length <= max) return list;
  const out = [];
  for (let i = 0; i < max; i++) out.push(list[Math.floor((i * list.length) / max)]);
  return out;
}

const short = (e) => String(e?.message ?? e).split('\n')[0].slice(0, 300);

/**
 * Negative control: a strategy that gives the new units random incoming AND outgoing weights (not function
 * preserving). The widened model must then differ from the original, which shows the verification is not vacuous
 * (the group's channels do reach the output).
 */
const controlStrategy = {
  name: 'control (random in + out)',
  functionPreserving: false,
  needs: { moment: false, samples: false, lossOracle: false },
  grow(req) {
    const { fanIn, fanOut } = req.site;
    const k = req.count;
    const rng = req.rng;
    const incoming = Matrix.zeros(k, fanIn);
    for (let i = 0; i < incoming.data.length; i++) incoming.data[i] = rng.normal() / Math.sqrt(fanIn);
    const outgoing = Matrix.zeros(fanOut, k);
    for (let i = 0; i < outgoing.data.length; i++) outgoing.data[i] = rng.normal();
    return { incoming, incomingBias: new Float64Array(k), outgoing, report: { strategy: this.name, site: req.site.name ?? '', count: k, notes: [] } };
  },
};

/** Small random dataset for the probe: 2 batches of BATCH examples, labels for cross-entropy or targets for MSE. */
function probeData(entry, model) {
  const rng = new Rng(7);
  const out = model.graph.output[0];
  const shape = onnx.valueInfoShape(out) ?? [];
  const dims = dimsOf(entry);
  const inShape = entry.inputShape.map((d, i) => (entry.dynamicAxes?.[String(i)] !== undefined ? dims[entry.dynamicAxes[String(i)]] : d));
  const n = inShape.reduce((a, b) => a * b, 1);
  const batches = [];
  const classes = shape.length === 2 && typeof shape[1] === 'number' ? shape[1] : undefined;
  for (let b = 0; b < 2; b++) {
    const inputs = { type: 'float32', data: rng.fillNormal(new Float32Array(n)), dims: inShape };
    if (classes) batches.push({ inputs, labels: BigInt64Array.from({ length: BATCH }, () => BigInt(rng.int(classes))) });
    else {
      const outDims = shape.map((d) => (typeof d === 'number' ? d : dims[d] ?? BATCH));
      batches.push({ inputs, labels: { type: 'float32', data: new Float32Array(outDims.reduce((a, c) => a * c, 1)), dims: outDims } });
    }
  }
  return { batches, loss: classes ? { kind: 'ce-logits' } : { kind: 'mse' } };
}

const STATS_CHUNK = 8; // groups per probe run (each adds its statistics outputs to the probe; bounds memory)

/**
 * gradmax statistics for the named groups, one probe run per chunk of groups; a chunk the probe refuses is split
 * until the refused group is alone, so one unsupported group does not cost the others their statistics.
 * Returns name -> { value, ms (the chunk's time divided by its size) } or { error }.
 */
async function statisticsFor(entry, file, model, names) {
  const out = new Map();
  const { batches, loss } = probeData(entry, model);
  const batchName = entry.dynamicAxes?.['0'] ?? 'batch';
  const fixedDims = Object.fromEntries(Object.entries(dimsOf(entry)).filter(([k]) => k !== batchName));
  const run = async (chunk) => {
    const t = performance.now();
    try {
      // computeGroupStatistics: assumed to mirror computeStatistics, (model, { groups, loss, data, fixedDims }) ->
      // { statistics: Map<group name, statistics> }; the table shows its error if it does not.
      const res = hasGroupStats
        ? await probe.computeGroupStatistics(onnx.loadModel(file), { groups: chunk, loss, data: batches, fixedDims })
        : await probe.computeStatistics(onnx.loadModel(file), { sites: chunk, loss, data: batches, fixedDims });
      const ms = (performance.now() - t) / chunk.length;
      for (const n of chunk) out.set(n, res.statistics.has(n) ? { value: res.statistics.get(n), ms } : { refused: true, error: res.refused?.get(n) ?? `no statistics returned for "${n}"` });
    } catch (e) {
      if (chunk.length === 1) out.set(chunk[0], { error: short(e) });
      else {
        const mid = Math.ceil(chunk.length / 2);
        await run(chunk.slice(0, mid));
        await run(chunk.slice(mid));
      }
    }
  };
  for (let i = 0; i < names.length; i += STATS_CHUNK) await run(names.slice(i, i + STATS_CHUNK));
  return out;
}

/** New units with every weight zero (a widening that is exactly function-preserving in exact arithmetic). */
const zeroUnits = {
  name: 'zero-units',
  functionPreserving: true,
  needs: { moment: false, samples: false, lossOracle: false },
  grow({ site, count }) {
    return { incoming: Matrix.zeros(count, site.fanIn), outgoing: Matrix.zeros(site.fanOut, count), incomingBias: new Float64Array(count), report: { strategy: 'zero-units', site: site.name, count, notes: [] } };
  },
};

async function widenAndVerify(entry, file, group, strategy, count, statistics) {
  const t0 = performance.now();
  const model = onnx.loadModel(file);
  const tLoad = performance.now();
  onnx.growModel(model, [{ site: group.name, count, ...(statistics ? { statistics } : {}) }], { strategy, seed: 0 });
  const tGrow = performance.now();
  const report = await onnx.verifyModels(file, model, { dims: dimsOf(entry), seed: 0 });
  const tVerify = performance.now();
  const maxAbs = Math.max(0, ...report.outputs.map((o) => o.maxAbs));
  const maxRel = Math.max(0, ...report.outputs.map((o) => o.maxRel));
  // Verified = verifyModels' verdict: every output within 1e-5 absolute or relative to its magnitude at each input
  // scale (inputs at N(0,1) and N(0,10²); float32 sums over a longer reduction round differently).
  const result = { maxAbs, maxRel, verifyOk: report.ok, ok: report.ok, loadMs: tLoad - t0, growMs: tGrow - tLoad, verifyMs: tVerify - tGrow, inputs: report.inputs };
  Object.defineProperty(result, 'model', { value: model, enumerable: false });
  return result;
}

/** Output change of the original model when every input is scaled by (1 + 1e-6): how much it amplifies rounding. */
async function conditioning(entry, file) {
  const model = onnx.loadModel(file);
  const feeds = onnx.makeInputs(model, { seed: 0, dims: dimsOf(entry) });
  const a = await onnx.runModel(file, feeds);
  const nudged = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, v.type.startsWith('float') ? { ...v, data: Float32Array.from(v.data, (x) => x * (1 + 1e-6)) } : v]));
  const b = await onnx.runModel(file, nudged);
  let worst = 0;
  for (const [name, x] of a) {
    const y = b.get(name).data;
    let d = 0;
    let m = 0;
    for (let i = 0; i < x.data.length; i++) {
      d = Math.max(d, Math.abs(x.data[i] - y[i]));
      m = Math.max(m, Math.abs(x.data[i]));
    }
    worst = Math.max(worst, m ? d / m : d);
  }
  return worst;
}

// ---------------------------------------------------------------------------------------------------------------
// Run

log(`growability: ${corpus.entries.length} export(s) from ${corpusDir}; groups from ${source}; gradmax ${gradmaxVia ? `statistics from ${gradmaxVia}` : GRADMAX_NA}`);
const results = [];
let idx = 0;
for (const entry of corpus.entries) {
  idx++;
  const file = path.join(corpusDir, entry.file);
  const tag = `[${idx}/${corpus.entries.length}] ${entry.name} op${entry.opset}`;
  const row = { name: entry.name, opset: entry.opset, file, nodes: 0, candidates: 0, classifiers: [], inGrowable: 0, anyRole: 0, groups: 0, growable: 0, discoveryMs: 0, widened: [], control: undefined, error: undefined, refusals: {} };
  results.push(row);
  let model;
  let groups;
  try {
    model = onnx.loadModel(file);
    row.nodes = model.graph.node.length;
    const times = [];
    for (let r = 0; r < 3; r++) {
      const m = r === 0 ? model : onnx.loadModel(file);
      const t = performance.now();
      groups = discoverGroups(m);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    row.discoveryMs = times[1];
  } catch (e) {
    row.error = `discovery: ${short(e)}`;
    log(`${tag}: ${row.error}`);
    continue;
  }
  const { candidates, classifiers } = candidateLayers(model);
  row.candidates = candidates.length;
  row.classifiers = classifiers;
  row.groups = groups.length;
  const growable = groups.filter((g) => g.growable);
  row.growable = growable.length;
  // A layer belongs to a growable group when it gains channels with it: as a producer, or as a pass-through
  // (a depthwise conv). Consumers only gain input columns and do not count.
  const grown = new Set(growable.flatMap((g) => [...g.members.producers, ...g.members.passthrough]));
  row.inGrowable = candidates.filter((c) => grown.has(c)).length;
  // Informational, the looser reading: a member of a growable group in any role (consumers gain input columns).
  const anyRole = new Set([...grown, ...growable.flatMap((g) => g.members.consumers)]);
  row.anyRole = candidates.filter((c) => anyRole.has(c)).length;
  row.missedBy = {};
  const candidateSet = new Set(candidates);
  const counted = new Set();
  for (const g of groups) {
    if (g.growable) continue;
    // Reasons with node names and numbers replaced, so that the same refusal counts once per kind.
    const key = String(g.reason ?? 'no reason given').replace(/"[^"]*"/g, '"…"').replace(/([[,=]\s?)\d+/g, '$1N').slice(0, 200);
    row.refusals[key] = (row.refusals[key] ?? 0) + 1;
    // Each missed layer once, under the first refused group that lists it as a producer.
    const missed = g.members.producers.filter((p) => candidateSet.has(p) && !grown.has(p) && !counted.has(p));
    for (const p of missed) counted.add(p);
    if (missed.length) row.missedBy[key] = (row.missedBy[key] ?? 0) + missed.length;
  }
  log(`${tag}: ${row.nodes} nodes, ${candidates.length} candidate layers, ${groups.length} groups (${growable.length} growable), discovery ${row.discoveryMs.toFixed(1)} ms`);

  const chosen = spread(growable, MAX_GROUPS);
  const gradmaxChosen = new Set(spread(chosen, GRADMAX_GROUPS).map((g) => g.name));
  const stats = gradmaxVia && gradmaxChosen.size ? await statisticsFor(entry, file, model, [...gradmaxChosen]) : new Map();
  for (const g of chosen) {
    const count = 2 * (g.multiple ?? 1);
    const w = { group: g.name, count, producers: g.members.producers.length, consumers: g.members.consumers.length, random: undefined, gradmax: undefined };
    row.widened.push(w);
    // Rounding floor: the same widening with all-zero new weights computes the same function in exact arithmetic; its
    // Δ is what float32 gives when the layers' reductions grow longer. If a strategy's widened model computes exactly
    // (bit for bit) what the all-zero widening computes, its new units contribute nothing: the Δ against the original
    // is the original's own sensitivity to reordered float32 sums.
    let zero;
    const againstZero = async (res) => {
      zero ??= await widenAndVerify(entry, file, g, zeroUnits, count);
      res.zeroUnitsMaxAbs = zero.maxAbs;
      res.zeroUnitsMaxRel = zero.maxRel;
      const vsZero = await onnx.verifyModels(zero.model, res.model, { dims: dimsOf(entry), seed: 0 });
      res.vsZeroMaxAbs = Math.max(0, ...vsZero.outputs.map((o) => o.maxAbs));
      res.exactVsZero = res.vsZeroMaxAbs === 0;
      row.conditioning ??= await conditioning(entry, file);
    };
    try {
      w.random = await widenAndVerify(entry, file, g, 'random', count);
      if (!w.random.ok) await againstZero(w.random);
    } catch (e) {
      w.random = { ok: false, error: short(e) };
    }
    if (gradmaxVia && gradmaxChosen.has(g.name)) {
      const st = stats.get(g.name);
      try {
        if (st?.refused) {
          // The group's exact statistics are refused (a MaxPool between the layers, grouped convs, ...): not a failure
          // of widening, reported with its reason.
          w.gradmax = { refused: true, ok: false, error: st.error };
          throw Object.assign(new Error(st.error), { refused: true });
        }
        if (!st || st.error) throw new Error(st?.error ?? `no statistics returned for "${g.name}"`);
        w.gradmax = Object.assign(await widenAndVerify(entry, file, g, 'gradmax', count, st.value.snapshot ? st.value.snapshot() : st.value), { statsMs: st.ms }); // keeps the non-enumerable model
        if (!w.gradmax.ok) await againstZero(w.gradmax);
      } catch (e) {
        w.gradmax = { ok: false, error: short(e), ...(e.refused ? { refused: true } : {}) };
      }
    }
    const r = w.random;
    log(`${tag}  ${g.name}: +${count} random ${r.ok ? 'ok' : 'FAIL'} ${r.error ?? `max|Δ| ${r.maxAbs.toExponential(1)} grow ${r.growMs.toFixed(0)} ms verify ${r.verifyMs.toFixed(0)} ms`}${w.gradmax ? ` gradmax ${w.gradmax.ok ? 'ok' : 'FAIL'} ${w.gradmax.error ?? `max|Δ| ${w.gradmax.maxAbs.toExponential(1)} stats ${w.gradmax.statsMs.toFixed(0)} ms grow ${w.gradmax.growMs.toFixed(0)} ms`}` : ''}`);
  }
  // Negative control on the first growable group: non-preserving units must change the output.
  if (chosen.length) {
    try {
      const c = await widenAndVerify(entry, file, chosen[0], controlStrategy, chosen[0].multiple ?? 1);
      row.control = { group: chosen[0].name, maxAbs: c.maxAbs, sensitive: c.maxAbs > TOL };
    } catch (e) {
      row.control = { group: chosen[0].name, error: short(e) };
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Report

const fmt = (x) => (x === undefined ? '' : x === 0 ? '0' : x.toExponential(1));
const pct = (a, b) => (b === 0 ? 'n/a' : `${((100 * a) / b).toFixed(1)} %`);
function strategyCell(list, key) {
  const tried = list.filter((w) => w[key] && !w[key].refused);
  if (key === 'gradmax' && !gradmaxVia) return GRADMAX_NA;
  const ok = tried.filter((w) => w[key].ok || w[key].exactVsZero).length;
  const viaZero = tried.filter((w) => !w[key].ok && w[key].exactVsZero).length;
  const refused = list.filter((w) => w[key]?.refused).length;
  return `${ok}/${tried.length}${viaZero ? ` (${viaZero} = all-zero widening)` : ''}${refused ? ` (+${refused} refused)` : ''}`;
}

const lines = [];
const out = (s = '') => lines.push(s);
out(`## Growability benchmark (groups from ${source})`);
out();
out(`Corpus: ${corpusDir}; verification batch ${BATCH}, tolerance 1e-5 absolute or relative to the output (verifyModels); gradmax statistics from ${gradmaxVia ?? GRADMAX_NA}; ${MAX_GROUPS === Infinity ? 'every growable group widened' : `at most ${MAX_GROUPS} growable groups widened per model`} (+2 units, x multiple).`);
out();
out('| model | opset | nodes | discovery ms | candidate layers | in growable group | groups found / growable | random ok / widened | gradmax ok / widened | max abs Δ | random grow ms | gradmax stats ms | gradmax grow ms | verify ms | control Δ |');
out('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of results) {
  if (r.error) {
    out(`| ${r.name} | ${r.opset} | ${r.nodes} | | | | error: ${r.error.replace(/\|/g, '/')} | | | | | | | | |`);
    continue;
  }
  const done = r.widened.flatMap((w) => [w.random, w.gradmax]).filter((x) => x && x.maxAbs !== undefined);
  const maxAbs = done.length ? Math.max(...done.map((x) => x.maxAbs)) : undefined;
  // Mean milliseconds per step over the runs of one strategy that completed.
  const mean = (key, f) => {
    const xs = r.widened.map((w) => w[key]).filter((x) => x && x.maxAbs !== undefined);
    return xs.length ? (xs.reduce((a, x) => a + f(x), 0) / xs.length).toFixed(0) : '';
  };
  const verifyRuns = done.map((x) => x.verifyMs);
  const verifyMean = verifyRuns.length ? (verifyRuns.reduce((a, b) => a + b, 0) / verifyRuns.length).toFixed(0) : '';
  const ctl = r.control ? (r.control.error ? 'error' : `${fmt(r.control.maxAbs)}${r.control.sensitive ? '' : ' (blind!)'}`) : '';
  out(`| ${r.name} | ${r.opset} | ${r.nodes} | ${r.discoveryMs.toFixed(1)} | ${r.candidates} | ${r.inGrowable} (${pct(r.inGrowable, r.candidates)}) | ${r.groups} / ${r.growable} | ${strategyCell(r.widened, 'random')} | ${strategyCell(r.widened, 'gradmax')} | ${fmt(maxAbs)} | ${mean('random', (x) => x.growMs)} | ${mean('gradmax', (x) => x.statsMs)} | ${mean('gradmax', (x) => x.growMs)} | ${verifyMean} | ${ctl} |`);
}
for (const f of corpus.failures) out(`| ${f.name} | ${f.opset} | export failed: ${f.error.slice(0, 100).replace(/\|/g, '/')} | | | | | | | | | | | | |`);

// Errors, one line per model, strategy and kind of error (node names as "…"), with one example group.
const errs = new Map();
for (const r of results) {
  for (const w of r.widened) {
    for (const k of ['random', 'gradmax']) {
      if (!w[k]?.error) continue;
      const kind = w[k].error.replace(/"[^"]*"/g, '"…"');
      const key = `${r.name} op${r.opset}\u0000${k}\u0000${kind}`;
      const e = errs.get(key) ?? { model: `${r.name} op${r.opset}`, strategy: k, count: 0, example: w.group, error: w[k].error };
      e.count++;
      errs.set(key, e);
    }
  }
}
if (errs.size) {
  out();
  out('Widening / statistics / verification errors (grouped by kind; one example each):');
  out();
  out('| model | strategy | groups | error (example) |');
  out('| --- | --- | ---: | --- |');
  for (const e of errs.values()) out(`| ${e.model} | ${e.strategy} | ${e.count} | ${e.error.replace(/\|/g, '/')} |`);
}
const failedVerify = results.flatMap((r) => r.widened.filter((w) => w.random && !w.random.error && !w.random.ok).map((w) => `${r.name} op${r.opset} ${w.group}: max|Δ| ${fmt(w.random.maxAbs)}, relative ${fmt(w.random.maxRel)}; the same widening with all-zero new weights: max|Δ| ${fmt(w.random.zeroUnitsMaxAbs)}, relative ${fmt(w.random.zeroUnitsMaxRel)}; random vs all-zero widening: max|Δ| ${fmt(w.random.vsZeroMaxAbs)}${w.random.exactVsZero ? ' (bit-identical: the new units contribute nothing)' : ''}; the original model's output changes by ${fmt(r.conditioning)} (relative) when its inputs are scaled by 1 + 1e-6`));
if (failedVerify.length) {
  out();
  out('random: verified outside the absolute tolerance 1e-5:');
  for (const f of failedVerify) out(`- ${f}`);
}

// Refusal reasons over the corpus, most frequent first.
const reasons = {};
for (const r of results) for (const [k, v] of Object.entries(r.refusals)) reasons[k] = (reasons[k] ?? 0) + v;
const topReasons = Object.entries(reasons).sort((a, b) => b[1] - a[1]).slice(0, 12);
if (topReasons.length) {
  out();
  out('Most frequent refusals (node names as "…", sizes as N):');
  out();
  for (const [k, v] of topReasons) out(`- ${v} × ${k}`);
}

// Totals and targets.
const ok = results.filter((r) => !r.error);
const models = ok.length + corpus.failures.length;
const withGroup = ok.filter((r) => r.growable > 0);
const candTotal = ok.reduce((a, r) => a + r.candidates, 0);
const inTotal = ok.reduce((a, r) => a + r.inGrowable, 0);
const candOfGrowable = withGroup.reduce((a, r) => a + r.candidates, 0);
const inOfGrowable = withGroup.reduce((a, r) => a + r.inGrowable, 0);
const widened = ok.flatMap((r) => r.widened);
const strategiesRun = ['random', ...(gradmaxVia ? ['gradmax'] : [])];
const attempts = widened.flatMap((w) => strategiesRun.map((k) => w[k]).filter(Boolean));
const verified = attempts.filter((x) => x.ok || x.exactVsZero).length;
const allMax = attempts.filter((x) => x.maxAbs !== undefined).map((x) => x.maxAbs);
const growableTotal = ok.reduce((a, r) => a + r.growable, 0);
// Discovery: each model's time scaled to 300 nodes (linear); models under 300 nodes must take <= 1 s outright.
const discoveryWorst = ok.map((r) => ({ r, budget: DISCOVERY_BUDGET_S * 1000 * Math.max(1, r.nodes / 300) })).sort((a, b) => b.r.discoveryMs / b.budget - a.r.discoveryMs / a.budget)[0];
const blind = ok.filter((r) => r.control && !r.control.error && !r.control.sensitive);

out();
out(`Totals: ${models} exports (${corpus.failures.length} failed to export), ${ok.reduce((a, r) => a + r.groups, 0)} groups found, ${growableTotal} growable, ${widened.length} widened (${attempts.length} strategy runs), ${verified} verified; candidate layers ${inTotal} of ${candTotal} in a growable group (${pct(inTotal, candTotal)}).`);
out();
const target = (name, pass, detail) => out(`- ${pass ? 'PASS' : 'FAIL'}  ${name}: ${detail}`);
out(`Targets (issue 11; groups from ${source}):`);
out();
target('>= 95 % of models have a growable group', withGroup.length >= 0.95 * models, `${withGroup.length} of ${models} (${pct(withGroup.length, models)})`);
target('>= 90 % of their candidate layers belong to a growable group', candOfGrowable > 0 && inOfGrowable >= 0.9 * candOfGrowable, `${inOfGrowable} of ${candOfGrowable} (${pct(inOfGrowable, candOfGrowable)})`);
const anyOfGrowable = withGroup.reduce((a, r) => a + r.anyRole, 0);
out(`(Informational: counting consumers too — layers that gain input columns — ${anyOfGrowable} of ${candOfGrowable} (${pct(anyOfGrowable, candOfGrowable)}) candidate layers are members of a growable group. The target above counts producers and pass-through layers only.)`);
const missedBy = {};
for (const r of withGroup) for (const [k, v] of Object.entries(r.missedBy ?? {})) missedBy[k] = (missedBy[k] ?? 0) + v;
const missedRows = Object.entries(missedBy).sort((a, b) => b[1] - a[1]);
if (missedRows.length) {
  out();
  out('Candidate layers outside every growable group, by the refusal of their group:');
  out();
  out('| layers | refusal (node names elided) |');
  out('| ---: | --- |');
  for (const [k, v] of missedRows) out(`| ${v} | ${k.replace(/\|/g, '\\|')} |`);
  out();
}
const randomOk = widened.filter((w) => w.random?.ok || w.random?.exactVsZero).length;
const randomViaZero = widened.filter((w) => !w.random?.ok && w.random?.exactVsZero).length;
const gm = widened.filter((w) => w.gradmax);
const gmRefused = gm.filter((w) => w.gradmax.refused);
const gmTried = gm.filter((w) => !w.gradmax.refused);
const gmOk = gmTried.filter((w) => w.gradmax.ok || w.gradmax.exactVsZero).length;
const gmViaZero = gmTried.filter((w) => !w.gradmax.ok && w.gradmax.exactVsZero).length;
target(
  '100 % of growable groups widened and verified with random, max |Δ| <= 1e-5 absolute or relative (FP32)',
  growableTotal > 0 && widened.length === growableTotal && randomOk === widened.length,
  `random ${randomOk}/${widened.length} verified over ${widened.length} of ${growableTotal} growable groups${randomViaZero ? ` (${randomViaZero} of them bit-identical to the all-zero widening, whose own Δ against the original is float32 reordering amplified by an ill-conditioned model; see the list above)` : ''}; largest absolute |Δ| ${allMax.length ? fmt(Math.max(...allMax)) : 'n/a'}, largest relative ${fmt(Math.max(0, ...attempts.filter((x) => x.maxRel !== undefined).map((x) => x.maxRel)))}${widened.length < growableTotal ? ' (GROWABILITY_MAX_GROUPS limited the run: not a full check)' : ''}`,
);
if (gradmaxVia && gm.length === 0) out('- (gradmax not run: GROWABILITY_GRADMAX_GROUPS=0)');
if (gradmaxVia && gm.length) {
  const reasons = {};
  for (const w of gmRefused) {
    const k = String(w.gradmax.error).replace(/"[^"]*"/g, '"…"').replace(/\[\d+(, \d+)*\]/g, '[…]').slice(0, 120);
    reasons[k] = (reasons[k] ?? 0) + 1;
  }
  target(
    'gradmax: every group with exact statistics widened and verified',
    gmTried.length > 0 && gmOk === gmTried.length,
    `${gmOk}/${gmTried.length} verified${gmViaZero ? ` (${gmViaZero} bit-identical to the all-zero widening, as for random)` : ''}; ${gmRefused.length} of ${gm.length} groups tried have no exact statistics (${Object.entries(reasons).sort((a, b) => b[1] - a[1]).slice(0, 4).map(([k, v]) => `${v} × ${k}`).join('; ') || 'none'})`,
  );
}
target(
  'group discovery <= 1 s for a 300-node graph',
  discoveryWorst ? discoveryWorst.r.discoveryMs <= discoveryWorst.budget : false,
  discoveryWorst ? `worst ${discoveryWorst.r.name} op${discoveryWorst.r.opset}: ${discoveryWorst.r.discoveryMs.toFixed(0)} ms for ${discoveryWorst.r.nodes} nodes (budget ${discoveryWorst.budget.toFixed(0)} ms, 1 s per 300 nodes)` : 'n/a',
);
if (blind.length) out(`- NOTE  the negative control did not change the output for: ${blind.map((r) => `${r.name} op${r.opset}`).join(', ')} (verification there proves nothing)`);
const text = lines.join('\n');
process.stdout.write(`${text}\n`);

if (jsonOut) {
  const data = { source, corpusDir, batch: BATCH, tolerance: TOL, maxGroups: MAX_GROUPS === Infinity ? null : MAX_GROUPS, gradmax: gradmaxVia ?? GRADMAX_NA, models: results, exportFailures: corpus.failures };
  const tmp = `${jsonOut}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, `${JSON.stringify(data, null, 2)}\n`);
  fs.renameSync(tmp, jsonOut);
  log(`growability: wrote ${jsonOut}`);
}
