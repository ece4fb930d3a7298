import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TensorProto_DataLocation } from 'onnx-buf';
import { Matrix, Rng, listStrategies, createStrategy, type SiteStatistics } from '@gradmax/core';
import { findSites, growModel, growthSite, loadModel, makeValueInfo, saveModel, serializeModel, valueInfoShape, verifyModels, widen } from '@gradmax/onnx';
import { F32, GraphBuilder, flushOnnxChecks, moveInitializersToExternalFile, tmpDir } from './helpers.js';
import { growAndCheck, makeUnits, saveTemp } from './grow-helpers.js';

afterAll(() => {
  expect(flushOnnxChecks()).toBe('');
});

function cnn(seed = 41) {
  const b = new GraphBuilder(new Rng(seed));
  const x = b.input('x', ['N', 2, 6, 6]);
  const c1 = b.op('Conv', [x, b.weight([3, 2, 3, 3]), b.weight([3])], { pads: [1, 1, 1, 1] }, 1, 'conv1');
  const r1 = b.op('Relu', [c1]);
  const c2 = b.op('Conv', [r1, b.weight([4, 3, 3, 3]), b.weight([4], 0.1)], { pads: [1, 1, 1, 1], strides: [2, 2] }, 1, 'conv2');
  const f = b.op('Flatten', [b.op('Relu', [c2])]);
  const y = b.op('Gemm', [f, b.weight([36, 3]), b.weight([3])], {}, 1, 'fc');
  b.output(y, ['N', 3]);
  return b;
}

describe('shapes', () => {
  it('updates value_info of changed values and graph inputs of changed initializers', async () => {
    const b = cnn();
    for (const t of b.inits) b.inputs.push(makeValueInfo(t.name, F32, t.dims.map(Number)));
    const model = b.model(13, 3);
    const [c1, r1, c2] = model.graph.node.slice(0, 3).map((n) => n.output[0]!);
    model.graph.valueInfo.push(makeValueInfo(c1!, F32, ['N', 3, 6, 6]), makeValueInfo(r1!, F32, ['N', 3, 6, 6]), makeValueInfo(c2!, F32, ['N', 4, 3, 3]));
    // IR 3: every initializer is also listed as a graph input, whose shape must follow the widened weight
    const file = saveTemp(model);
    await growAndCheck(file, 'conv1', 2, 'incoming-zero');
    const { widened } = await growAndCheck(file, 'conv2', 2, 'incoming-zero');
    const w = widened.graph.input.find((i) => i.name === widened.graph.node[2]!.input[1])!;
    expect(valueInfoShape(w)).toEqual([6, 3, 3, 3]);
    const shapes = new Map(widened.graph.valueInfo.map((v) => [v.name, valueInfoShape(v)]));
    expect(shapes.get(c1!)).toEqual(['N', 3, 6, 6]);
    expect(shapes.get(c2!)).toEqual(['N', 6, 3, 3]);
  });

  it('grows overlapping sites one after the other', async () => {
    const file = saveTemp(cnn().model());
    const model = loadModel(file);
    widen(model, [{ site: 'conv1', newUnits: makeUnits(growthSite(model, findSites(model)[0]!), 2, 'incoming-zero') }]);
    const s2 = findSites(model).find((s) => s.current === 'conv2')!;
    expect(s2.fanIn).toBe(5 * 9);
    widen(model, [{ site: s2.name, newUnits: makeUnits(growthSite(model, s2), 3, 'split') }]);
    const out = path.join(path.dirname(file), 'both.onnx');
    saveModel(model, out);
    const report = await verifyModels(file, out, { dims: { N: 2 } });
    expect(Math.min(report.outputs[0]!.maxAbs, report.outputs[0]!.maxRel)).toBeLessThanOrEqual(1e-5);
  });
});

describe('external data', () => {
  it('widens a model whose weights live in an external file; output data written beside the output', async () => {
    const dir = tmpDir();
    const model = cnn(42).model();
    moveInitializersToExternalFile(model, dir, 'weights.bin');
    const file = path.join(dir, 'ext.onnx');
    fs.writeFileSync(file, serializeModel(model));
    const dataBefore = fs.readFileSync(path.join(dir, 'weights.bin'));
    const { outFile } = await growAndCheck(file, 'conv1', 2, 'outgoing-zero');
    expect(fs.existsSync(`${outFile}.data`)).toBe(true);
    expect(fs.readFileSync(path.join(dir, 'weights.bin'))).toEqual(dataBefore);
    const again = loadModel(outFile);
    expect(again.graph.initializer.every((t) => t.dataLocation === TensorProto_DataLocation.EXTERNAL)).toBe(true);
  });
});

describe('verification detects a changed function', () => {
  it('units with non-zero incoming and outgoing weights change the outputs', async () => {
    const file = saveTemp(cnn(43).model());
    const model = loadModel(file);
    const site = findSites(model)[0]!;
    const gs = growthSite(model, site);
    const units = makeUnits(gs, 2, 'outgoing-zero');
    units.outgoing = Matrix.from(gs.fanOut, 2, Array.from({ length: gs.fanOut * 2 }, () => 1));
    widen(model, [{ site: site.name, newUnits: units }]);
    const out = path.join(path.dirname(file), 'changed.onnx');
    saveModel(model, out);
    const report = await verifyModels(file, out, { dims: { N: 2 } });
    expect(report.ok).toBe(false);
    expect(report.outputs[0]!.maxAbs).toBeGreaterThan(1e-3);
  });
});

describe('registered strategies', () => {
  it('every function-preserving strategy keeps the function (MLP with BN-free ReLU and CNN)', async () => {
    try {
      await import('@gradmax/strategies/register');
    } catch (e) {
      console.warn(`@gradmax/strategies/register not available (${(e as Error).message}); only core strategies are checked`);
    }
    const { registerStrategy, gradmax, hasStrategy } = await import('@gradmax/core');
    if (!hasStrategy('gradmax')) registerStrategy('gradmax', gradmax);
    const names = listStrategies().filter((n) => createStrategy(n).functionPreserving);
    expect(names).toContain('gradmax');
    console.info(`function-preserving strategies checked: ${names.join(', ')}`);
    const mlp = new GraphBuilder(new Rng(45));
    {
      const x = mlp.input('x', ['N', 6]);
      const h1 = mlp.op('Gemm', [x, mlp.weight([5, 6]), mlp.weight([5], 0.1)], { transB: 1 }, 1, 'conv1');
      const h2 = mlp.op('Gemm', [mlp.op('Relu', [h1]), mlp.weight([5, 4]), mlp.weight([4], 0.1)], { alpha: 0.5 }, 1, 'conv2');
      mlp.output(mlp.op('MatMul', [mlp.op('Relu', [h2]), mlp.weight([4, 3])], {}, 1, 'fc'), ['N', 3]);
    }
    for (const [file, expected] of [[saveTemp(cnn(44).model()), [5, 6]], [saveTemp(mlp.model()), [7, 6]]] as const) {
    const rng = new Rng(3);
    for (const name of names) {
      const model = loadModel(file);
      const strategy = createStrategy(name);
      const results = [];
      for (const site of ['conv1', 'conv2']) {
        // statistics of the current (possibly already widened) site
        const s = findSites(model).find((x) => x.current === site)!;
        const statistics: SiteStatistics = { moment: Matrix.from(s.fanOut!, s.fanIn!, rng.fillNormal(new Float64Array(s.fanOut! * s.fanIn!))), count: 8 };
        const n = 16;
        statistics.samples = { h: Matrix.from(n, s.fanIn!, rng.fillNormal(new Float64Array(n * s.fanIn!))), g: Matrix.from(n, s.fanOut!, rng.fillNormal(new Float64Array(n * s.fanOut!))), weight: 1 / n };
        try {
          results.push(...growModel(model, [{ site, count: 2, statistics }], { strategy, seed: 1 }));
        } catch (e) {
          throw new Error(`strategy ${name}, site ${site}: ${(e as Error).message}`);
        }
      }
      expect(results.map((r) => r.unitsAfter)).toEqual(expected);
      const out = path.join(path.dirname(file), `${name}.onnx`);
      saveModel(model, out);
      const report = await verifyModels(file, out, { dims: { N: 2 } });
      expect(Math.min(report.outputs[0]!.maxAbs, report.outputs[0]!.maxRel), name).toBeLessThanOrEqual(1e-5);
    }
    }
  });
});

describe('new biases on layers without a bias', () => {
  it('adds a bias input to Gemm and Conv (IR 3: also as a graph input)', async () => {
    for (const ir of [8, 3]) {
      const b = new GraphBuilder(new Rng(46 + ir));
      const x = b.input('x', ['N', 2, 5, 5]);
      const c1 = b.op('Conv', [x, b.weight([3, 2, 3, 3])], {}, 1, 'conv1');
      const f = b.op('Flatten', [b.op('Relu', [c1])]);
      const h = b.op('Gemm', [f, b.weight([27, 4])], {}, 1, 'fc1');
      b.output(b.op('Gemm', [b.op('Relu', [h]), b.weight([4, 2])], {}, 1, 'fc2'), ['N', 2]);
      if (ir === 3) for (const t of b.inits) b.inputs.push(makeValueInfo(t.name, F32, t.dims.map(Number)));
      const file = saveTemp(b.model(13, ir));
      const withBias = (gs: Parameters<typeof makeUnits>[0]) => {
        const u = makeUnits(gs, 2, 'outgoing-zero');
        u.incomingBias = Float64Array.from([0.5, -0.25]);
        return u;
      };
      for (const site of ['conv1', 'fc1']) {
        const { widened } = await growAndCheck(file, site, 2, withBias);
        const node = widened.graph.node.find((n) => n.name === site)!;
        expect(node.input[2], `${site} has a bias now`).toBeTruthy();
        const bias = widened.readNumbers(widened.weight(node.input[2]!)!.tensor);
        expect(Array.from(bias.slice(-2))).toEqual([0.5, -0.25]);
        expect(Array.from(bias.slice(0, -2)).every((v) => v === 0)).toBe(true);
        if (ir === 3) expect(widened.graph.input.some((i) => i.name === node.input[2])).toBe(true);
      }
    }
  });
});

describe('tied weights', () => {
  it('a weight shared by the two layers of a site is split into private copies', async () => {
    const b = new GraphBuilder(new Rng(48));
    const x = b.input('x', ['N', 4]);
    const w = b.weight([4, 4]);
    const h = b.op('MatMul', [x, w], {}, 1, 'fc1');
    const y = b.op('MatMul', [b.op('Relu', [h]), w], {}, 1, 'fc2');
    b.output(y, ['N', 4]);
    const file = saveTemp(b.model());
    for (const kind of ['incoming-zero', 'outgoing-zero', 'split'] as const) {
      const { widened } = await growAndCheck(file, 'fc1', 2, kind);
      const w1 = widened.weight(widened.graph.node.find((n) => n.name === 'fc1')!.input[1]!)!;
      const w2 = widened.weight(widened.graph.node.find((n) => n.name === 'fc2')!.input[1]!)!;
      expect(w1.tensor.dims.map(Number)).toEqual([4, 6]);
      expect(w2.tensor.dims.map(Number)).toEqual([6, 4]);
    }
  });
});
