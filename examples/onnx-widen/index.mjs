// Widening an ONNX model from the @gradmax/onnx API.
//
// 1. Builds a small MLP as an ONNX model (x[N,8] → MatMul → Add → Relu → MatMul → Add → y[N,4]) and saves it.
// 2. Finds its growable sites, computes GradMax statistics on a data batch with the probe (a generated backward
//    graph run by onnxruntime-node), and widens the hidden layer from 6 to 10 units with GradMax.
// 3. Saves the widened model and verifies with onnxruntime that it computes the same outputs as the original.
//
// Run: pnpm --filter @gradmax/example-onnx-widen start
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { create } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema, TensorProto_DataType } from 'onnx-buf';
import { Rng } from '@gradmax/core';
import { registerAllStrategies } from '@gradmax/strategies';
import { OnnxModel, findSites, growModel, loadModel, makeNode, makeTensor, makeValueInfo, saveModel, verifyModels } from '@gradmax/onnx';
import { computeStatistics } from '@gradmax/onnx/probe';

const F32 = TensorProto_DataType.FLOAT;

/** A 8-6-4 MLP with random weights, as an ONNX model. */
function buildMlp(rng) {
  const weights = (name, dims) => makeTensor(name, F32, dims, Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => 0.5 * rng.normal()));
  const graph = create(GraphProtoSchema, {
    name: 'mlp',
    input: [makeValueInfo('x', F32, ['N', 8])],
    output: [makeValueInfo('y', F32, ['N', 4])],
    initializer: [weights('W1', [8, 6]), weights('b1', [6]), weights('W2', [6, 4]), weights('b2', [4])],
    node: [
      makeNode('MatMul', ['x', 'W1'], ['h_pre'], {}, 'fc1'),
      makeNode('Add', ['h_pre', 'b1'], ['h_bias'], {}, 'fc1_bias'),
      makeNode('Relu', ['h_bias'], ['h'], {}, 'relu1'),
      makeNode('MatMul', ['h', 'W2'], ['y_pre'], {}, 'fc2'),
      makeNode('Add', ['y_pre', 'b2'], ['y'], {}, 'fc2_bias'),
    ],
  });
  return new OnnxModel(create(ModelProtoSchema, { irVersion: 8n, producerName: 'gradmax-example', opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 13n })], graph }));
}

/**
 * @param {{ dir?: string, units?: number, seed?: number, log?: (line: string) => void }} options
 */
export async function main({ dir = mkdtempSync(path.join(os.tmpdir(), 'gradmax-onnx-example-')), units = 4, seed = 0, log = console.log } = {}) {
  registerAllStrategies();
  const rng = new Rng(seed);
  const original = path.join(dir, 'mlp.onnx');
  saveModel(buildMlp(rng.fork('weights')), original);
  log(`wrote ${original}`);

  const model = loadModel(original);
  const sites = findSites(model);
  for (const s of sites) log(s.growable ? `growable site ${s.name}: ${s.pattern}, ${s.units} units` : `not growable: ${s.name} (${s.reason})`);
  const site = sites.find((s) => s.growable).name;

  // A regression batch: random inputs and targets. The probe turns the model into one that also outputs Σ g hᵀ.
  const n = 256;
  const x = Float32Array.from({ length: n * 8 }, () => rng.normal());
  const targets = Float32Array.from({ length: n * 4 }, () => rng.normal());
  const { statistics, meanLoss } = await computeStatistics(model, {
    sites: [site],
    loss: { kind: 'mse' },
    data: [{ inputs: { type: 'float32', data: x, dims: [n, 8] }, labels: { type: 'float32', data: targets, dims: [n, 4] } }],
  });
  log(`statistics on ${n} examples, mean loss ${meanLoss.toFixed(4)}`);

  const [result] = growModel(model, [{ site, count: units, statistics: statistics.get(site).snapshot() }], { strategy: 'gradmax', seed });
  log(`${result.site}: ${result.unitsBefore} → ${result.unitsAfter} units (${result.strategy}); singular values ${result.newUnits.report.singularValues?.map((s) => s.toFixed(4)).join(', ')}`);
  const widened = path.join(dir, 'mlp-wider.onnx');
  saveModel(model, widened);

  const check = await verifyModels(original, widened, { dims: { N: 16 }, seed });
  for (const o of check.outputs) log(`output ${o.name}: max |Δ| = ${o.maxAbs.toExponential(2)} (${o.ok ? 'same function' : 'DIFFERENT'})`);
  log(`wrote ${widened}`);
  return { original, widened, unitsBefore: result.unitsBefore, unitsAfter: result.unitsAfter, ok: check.ok, maxAbs: Math.max(...check.outputs.map((o) => o.maxAbs)) };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
