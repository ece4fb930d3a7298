import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Matrix, Rng } from '@gradmax/core';
import '@gradmax/strategies/register';
import { FileAccessError, findSites, growModel, loadModel, runModel, saveModel, serializeChunks, serializeModel, verifyModels, widen } from '@gradmax/onnx';
import { computeStatistics } from '@gradmax/onnx/probe';
import { F16, F32, F64, GraphBuilder, tmpDir } from './helpers.js';

const sha = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** An MLP whose weight matrices are large enough to be deferred at the default threshold (64 KiB). */
function writeMlp(dir: string, dtype = F32, widths = [96, 200, 120, 10], seed = 1): string {
  const b = new GraphBuilder(new Rng(seed), dtype);
  let h = b.input('x', ['N', widths[0]!]);
  for (let l = 1; l < widths.length; l++) {
    h = b.op('Gemm', [h, b.weight([widths[l - 1]!, widths[l]!], 0.2), b.weight([widths[l]!], 0.1)], {}, 1, `fc${l}`);
    if (l < widths.length - 1) h = b.op('Relu', [h]);
  }
  b.output(h, ['N', widths.at(-1)!]);
  const file = path.join(dir, `mlp-${dtype}-${widths.join('x')}-${seed}.onnx`);
  fs.writeFileSync(file, serializeModel(b.model()));
  return file;
}

describe('deferred loading: large weights stay in the model file until needed', () => {
  it('defers large initializers, reads them back exactly, and saves an unmodified model byte for byte', () => {
    const dir = tmpDir('gradmax-deferred-');
    const file = writeMlp(dir);
    const model = loadModel(file);
    const eager = loadModel(file, { deferThreshold: Infinity });
    // fc1 [96x200] and fc2 [200x120] are ≥ 64 KiB as float32; fc3 [120x10] and the biases are not
    expect([...model.deferredSources.keys()].map((t) => t.name)).toEqual(eager.graph.initializer.filter((t) => t.rawData.length >= 1 << 16).map((t) => t.name));
    expect(model.deferredSources.size).toBe(2);
    expect(eager.deferredSources.size).toBe(0);
    model.graph.initializer.forEach((t, i) => {
      expect(model.storedOutsideProto(t)).toBe(model.deferredSources.has(t));
      expect(Buffer.from(model.tensorBytes(t)).equals(Buffer.from(eager.tensorBytes(eager.graph.initializer[i]!)))).toBe(true);
    });
    const out = path.join(dir, 'copy.onnx');
    saveModel(model, out);
    expect(sha(out)).toBe(sha(file));
    expect(Buffer.from(serializeModel(model)).equals(fs.readFileSync(file))).toBe(true);
    expect(Buffer.concat(serializeChunks(model)).equals(fs.readFileSync(file))).toBe(true);
  });

  it('widening a deferred model writes the same bytes as widening the fully read model, and keeps the function', async () => {
    const dir = tmpDir('gradmax-deferred-');
    const file = writeMlp(dir, F16, [96, 400, 120, 10]);
    const before = sha(file);
    const outs: string[] = [];
    for (const deferThreshold of [undefined, Infinity]) {
      const model = loadModel(file, deferThreshold === undefined ? {} : { deferThreshold });
      expect(model.deferredSources.size > 0).toBe(deferThreshold === undefined);
      growModel(model, [{ site: 'fc1->fc2', count: 5 }, { site: 'fc2->fc3', count: 3 }], { strategy: 'random', seed: 7 });
      const out = path.join(dir, `out-${deferThreshold ?? 'default'}.onnx`);
      saveModel(model, out);
      outs.push(out);
    }
    expect(sha(outs[0]!)).toBe(sha(outs[1]!));
    expect(sha(file)).toBe(before);
    const report = await verifyModels(file, outs[0]!, { dims: { N: 4 }, seed: 3 });
    expect(report.outputs.length).toBe(1);
    expect(report.ok).toBe(true);
    expect(report.outputs[0]!.maxRel).toBeLessThanOrEqual(1e-2);
  });

  it('property: any threshold and element type gives the same saved bytes as a full read (load, widen, save)', () => {
    const dir = tmpDir('gradmax-deferred-prop-');
    fc.assert(
      fc.property(
        fc.constantFrom(F32, F16, F64),
        fc.array(fc.integer({ min: 1, max: 24 }), { minLength: 3, maxLength: 4 }),
        fc.integer({ min: 1, max: 4096 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 0, max: 1e6 }),
        (dtype, widths, threshold, count, seed) => {
          const file = writeMlp(dir, dtype, widths, seed);
          const bytes: Buffer[] = [];
          for (const deferThreshold of [threshold, Infinity]) {
            const model = loadModel(file, { deferThreshold });
            const site = findSites(model).find((s) => s.growable)!;
            const rng = new Rng(seed);
            const outgoing = Matrix.from(site.fanOut, count, rng.fillNormal(new Float64Array(site.fanOut * count)));
            widen(model, [{ site, newUnits: { incoming: Matrix.zeros(count, site.fanIn), incomingBias: new Float64Array(count), outgoing, report: { strategy: 'p', site: site.name, count, notes: [] } } }]);
            const out = path.join(dir, `p-${deferThreshold}.onnx`);
            fs.rmSync(out, { force: true });
            saveModel(model, out);
            bytes.push(fs.readFileSync(out));
            expect(Buffer.from(serializeModel(model)).equals(bytes.at(-1)!)).toBe(true);
          }
          expect(bytes[0]!.equals(bytes[1]!)).toBe(true);
          fs.rmSync(file);
        },
      ),
      { numRuns: 40, seed: 20261126 },
    );
  });

  it('defers large Constant-node weights too: exact reads, byte-identical saves, same widening and statistics', async () => {
    const dir = tmpDir('gradmax-deferred-const-');
    const b = new GraphBuilder(new Rng(4));
    const x = b.input('x', ['N', 120]);
    const h = b.op('MatMul', [x, b.constantWeight([120, 160], 0.1)], {}, 1, 'fc1');
    b.output(b.op('MatMul', [b.op('Relu', [h]), b.constantWeight([160, 110], 0.1)], {}, 1, 'fc2'), ['N', 110]);
    const file = path.join(dir, 'const.onnx');
    fs.writeFileSync(file, serializeModel(b.model()));
    const model = loadModel(file);
    const eager = loadModel(file, { deferThreshold: Infinity });
    const constants = (m: typeof model) => m.graph.node.filter((n) => n.opType === 'Constant').map((n) => n.attribute[0]!.t!);
    expect(constants(model).every((t) => model.deferredSources.has(t) && t.rawData.length === 0)).toBe(true);
    expect(model.graph.initializer.length).toBe(0);
    constants(model).forEach((t, i) => expect(Buffer.from(model.tensorBytes(t)).equals(Buffer.from(eager.tensorBytes(constants(eager)[i]!)))).toBe(true));
    const copy = path.join(dir, 'copy.onnx');
    saveModel(model, copy);
    expect(sha(copy)).toBe(sha(file));
    const outs: string[] = [];
    for (const m of [model, eager]) {
      growModel(m, [{ site: 'fc1->fc2', count: 4 }], { strategy: 'random', seed: 2 });
      outs.push(path.join(dir, `out${outs.length}.onnx`));
      saveModel(m, outs.at(-1)!);
    }
    expect(sha(outs[0]!)).toBe(sha(outs[1]!));
    const report = await verifyModels(file, outs[0]!, { dims: { N: 3 }, seed: 1 });
    expect(report.ok).toBe(true);
    // the probe inlines deferred Constant values
    const rng = new Rng(6);
    const data = [{ inputs: { type: 'float32', data: Float32Array.from({ length: 8 * 120 }, () => rng.normal()), dims: [8, 120] }, labels: Array.from({ length: 8 }, (_, i) => i % 10) }];
    const m1 = (await computeStatistics(loadModel(file), { sites: ['fc1->fc2'], loss: { kind: 'ce-logits' }, data })).statistics.get('fc1->fc2')!.moment().data;
    const m2 = (await computeStatistics(loadModel(file, { deferThreshold: Infinity }), { sites: ['fc1->fc2'], loss: { kind: 'ce-logits' }, data })).statistics.get('fc1->fc2')!.moment().data;
    expect(m1.some((v) => v !== 0)).toBe(true);
    expect(Array.from(m1)).toEqual(Array.from(m2));
  });

  it('reports a typed error when the source file changes after loading, and never writes to it', () => {
    const dir = tmpDir('gradmax-deferred-');
    const file = writeMlp(dir);
    const model = loadModel(file);
    const deferred = [...model.deferredSources.keys()][0]!;
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
    fs.writeFileSync(file, Buffer.concat([bytes, Buffer.from([0])]));
    const changed = sha(file);
    expect(() => model.tensorBytes(deferred)).toThrow(FileAccessError);
    expect(() => model.tensorBytes(deferred)).toThrow(/changed since it was loaded/);
    const out = path.join(dir, 'out.onnx');
    expect(() => saveModel(model, out)).toThrow(FileAccessError);
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    expect(() => serializeModel(model)).toThrow(FileAccessError);
    expect(sha(file)).toBe(changed);
    expect(() => saveModel(model, file)).toThrow(/refusing to overwrite the input model/);
  });

  it('rejects a bad threshold with a typed error', () => {
    const dir = tmpDir('gradmax-deferred-');
    const file = writeMlp(dir);
    expect(() => loadModel(file, { deferThreshold: -1 })).toThrow(/deferThreshold/);
    expect(() => loadModel(file, { deferThreshold: Number.NaN })).toThrow(/deferThreshold/);
  });

  it('the backward-graph probe sees the deferred weights (same statistics as a full read)', async () => {
    const dir = tmpDir('gradmax-deferred-');
    const file = writeMlp(dir);
    const rng = new Rng(5);
    const N = 16;
    const x = { type: 'float32', data: Float32Array.from({ length: N * 96 }, () => rng.normal()), dims: [N, 96] };
    const labels = Array.from({ length: N }, (_, i) => i % 10);
    const moments: Float64Array[] = [];
    for (const deferThreshold of [undefined, Infinity]) {
      const model = loadModel(file, deferThreshold === undefined ? {} : { deferThreshold });
      expect(model.deferredSources.size > 0).toBe(deferThreshold === undefined);
      const res = await computeStatistics(model, { sites: ['fc1->fc2'], loss: { kind: 'ce-logits' }, data: [{ inputs: x, labels }] });
      const stat = res.statistics.get('fc1->fc2')!;
      moments.push(stat.moment().data);
    }
    expect(moments[0]!.some((v) => v !== 0)).toBe(true);
    expect(Array.from(moments[0]!)).toEqual(Array.from(moments[1]!));
  });

  it('runModel on a loaded model runs its current (edited) state, not the file it came from', async () => {
    const dir = tmpDir('gradmax-deferred-');
    const file = writeMlp(dir);
    const model = loadModel(file);
    const site = findSites(model).find((s) => s.growable)!;
    const k = 2;
    const rng = new Rng(9);
    // non-zero incoming and outgoing weights: the function changes
    const incoming = Matrix.from(k, site.fanIn, rng.fillNormal(new Float64Array(k * site.fanIn)));
    const outgoing = Matrix.from(site.fanOut, k, rng.fillNormal(new Float64Array(site.fanOut * k)));
    widen(model, [{ site, newUnits: { incoming, incomingBias: new Float64Array(k).fill(1), outgoing, report: { strategy: 't', site: site.name, count: k, notes: [] } } }]);
    const feeds = { x: { type: 'float32', data: Float32Array.from({ length: 2 * 96 }, () => rng.normal()), dims: [2, 96] } };
    const [a] = [...(await runModel(file, feeds)).values()];
    const [b] = [...(await runModel(model, feeds)).values()];
    let diff = 0;
    for (let i = 0; i < a!.data.length; i++) diff = Math.max(diff, Math.abs(a!.data[i]! - b!.data[i]!));
    expect(diff).toBeGreaterThan(1e-3);
  });
});
