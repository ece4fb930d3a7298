import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Rng } from '@gradmax/core';
import { findSites, growthSite, loadModel, serializeModel, verifyModels, widen } from '@gradmax/onnx';
import { makeUnits } from './grow-helpers.js';
import { GraphBuilder, moveInitializersToExternalFile, tmpDir } from './helpers.js';

/** A 4 -> 5 -> 3 MLP with batch dimension `batch` and weights drawn from `seed`. */
function mlp(seed: number, batch: number | string = 'N') {
  const b = new GraphBuilder(new Rng(seed));
  const x = b.input('x', [batch, 4]);
  const h = b.op('Gemm', [x, b.weight([4, 5]), b.weight([5])], {}, 1, 'fc1');
  b.output(b.op('Gemm', [b.op('Relu', [h]), b.weight([5, 3])], {}, 1, 'fc2'), [batch, 3]);
  return b.model();
}

describe('verification with external data (issue 15 item 1)', () => {
  it("resolves A's external data against A's folder, not the working directory", async () => {
    const root = tmpDir('gradmax-verify-ext-');
    const files: string[] = [];
    for (const [name, seed] of [['A', 1], ['B', 2]] as const) {
      const dir = path.join(root, name);
      fs.mkdirSync(dir);
      const model = mlp(seed, 2);
      moveInitializersToExternalFile(model, dir, 'model.onnx.data');
      const file = path.join(dir, 'model.onnx');
      fs.writeFileSync(file, serializeModel(model));
      files.push(file);
    }
    const cwd = process.cwd();
    process.chdir(path.join(root, 'B'));
    try {
      // loaded model (as the CLI passes it) and path: both must see A's own weights
      const loaded = await verifyModels(loadModel(files[0]!), files[1]!);
      expect(loaded.ok).toBe(false);
      expect(loaded.outputs[0]!.maxAbs).toBeGreaterThan(1e-3);
      const byPath = await verifyModels(files[0]!, files[1]!);
      expect(byPath.ok).toBe(false);
      // and a model against itself through both routes passes
      expect((await verifyModels(loadModel(files[0]!), files[0]!)).ok).toBe(true);
    } finally {
      process.chdir(cwd);
    }
    // from a third folder, the loaded model's data is still found
    const elsewhere = tmpDir('gradmax-verify-cwd-');
    process.chdir(elsewhere);
    try {
      expect((await verifyModels(loadModel(files[0]!), loadModel(files[1]!))).ok).toBe(false);
    } finally {
      process.chdir(cwd);
    }
  });
});

function save(model: ReturnType<typeof mlp>, dir: string, name: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, serializeModel(model));
  return file;
}

describe('verification samples (issue 15 item 9)', () => {
  it('detects 0.05 added to a new unit\'s incoming weights in a batch-1 model', async () => {
    const dir = tmpDir('gradmax-verify-perturb-');
    const b = new GraphBuilder(new Rng(7));
    const x = b.input('x', [1, 6]);
    const h = b.op('Gemm', [x, b.weight([6, 5]), b.weight([5])], {}, 1, 'fc1');
    b.output(b.op('Gemm', [b.op('Relu', [h]), b.weight([5, 3])], {}, 1, 'fc2'), [1, 3]);
    const file = save(b.model(), dir, 'orig.onnx');
    const grow = (delta: number, name: string) => {
      const model = loadModel(file);
      const site = findSites(model)[0]!;
      const units = makeUnits(growthSite(model, site), 1, 'incoming-zero');
      units.incoming.data[0] = delta; // the new unit's first incoming weight
      widen(model, [{ site: site.name, newUnits: units }]);
      return save(model, dir, name);
    };
    const exact = await verifyModels(file, grow(0, 'exact.onnx'));
    expect(exact.ok).toBe(true);
    expect(exact.samples).toBeGreaterThanOrEqual(8);
    expect(exact.runs).toBe(8); // batch fixed to 1: one run per sample
    expect(exact.scales).toEqual([1, 10]);
    for (const delta of [0.05, -0.05]) {
      const r = await verifyModels(file, grow(delta, `perturbed${delta}.onnx`));
      expect(r.ok, `delta ${delta}`).toBe(false);
      expect(r.outputs[0]!.maxAbs).toBeGreaterThan(1e-3);
    }
  });
});

describe('symbolic dimensions chosen by verification (issue 11 item 3)', () => {
  it('a symbolic batch dim holds all 8 samples in one run, at two scales', async () => {
    const dir = tmpDir('gradmax-verify-dims-');
    const file = save(mlp(1, 'N'), dir, 'a.onnx');
    const r = await verifyModels(file, file);
    expect(r.ok).toBe(true);
    expect(r.dims).toEqual({ N: 8 });
    expect(r.dimSources).toEqual({ N: 'batch' });
    expect([r.samples, r.runs]).toEqual([8, 1]);
    expect(r.inputs).toEqual({ x: [8, 4] });
    // a leading dim without a name is batch-like too; --dim values win
    const unnamed = save(mlp(1, ''), dir, 'b.onnx');
    const u = await verifyModels(unnamed, unnamed);
    expect(u.dims).toEqual({ 'x:0': 8 });
    const given = await verifyModels(file, file, { dims: { N: 3 } });
    expect(given.dims).toEqual({ N: 3 });
    expect(given.dimSources).toEqual({ N: '--dim' });
    expect([given.samples, given.runs]).toEqual([9, 3]);
  });

  it('first rows are drawn at scale 1, the last at scale 10', async () => {
    const { makeInputs } = await import('@gradmax/onnx');
    const feeds = makeInputs(mlp(1, 'N'), { seed: 4 });
    const x = feeds.x!.data as Float32Array;
    const rms = (rows: number[]) => Math.sqrt(rows.flatMap((r) => Array.from(x.subarray(r * 4, r * 4 + 4), (v) => v * v)).reduce((a, b) => a + b, 0) / (rows.length * 4));
    expect(feeds.x!.dims).toEqual([8, 4]);
    expect(rms([0, 1, 2, 3])).toBeLessThan(2);
    expect(rms([4, 5, 6, 7])).toBeGreaterThan(5);
  });

  function cnn(head: 'gap' | 'flatten' | 'view') {
    const b = new GraphBuilder(new Rng(3));
    const x = b.input('x', ['batch', 3, 'H', 'W']);
    const c = b.op('Relu', [b.op('Conv', [x, b.weight([4, 3, 3, 3]), b.weight([4])], { kernel_shape: [3, 3] }, 1, 'conv1')]);
    const c2 = b.op('Conv', [c, b.weight([5, 4, 1, 1]), b.weight([5])], { kernel_shape: [1, 1] }, 1, 'conv2');
    let flat: string;
    if (head === 'gap') flat = b.op('Flatten', [b.op('GlobalAveragePool', [c2])]);
    else if (head === 'flatten') flat = b.op('Flatten', [c2]);
    else {
      // x.view(x.size(0), -1) as PyTorch exports it
      const n = b.op('Gather', [b.op('Shape', [c2]), b.int64([0])], { axis: 0 });
      const target = b.op('Concat', [n, b.int64([-1])], { axis: 0 });
      flat = b.op('Reshape', [c2, target]);
    }
    const k = head === 'gap' ? 5 : 5 * 10 * 10; // flatten/view: the spatial size must be 10x10 after a 3x3 conv, so H = W = 12
    b.output(b.op('Gemm', [flat, b.weight([k, 2], 0.1)], {}, 1, 'fc'), ['batch', 2]);
    return b.model();
  }

  it('spatial dims: a default size where nothing fixes them, the size a Flatten->Gemm or view->Gemm implies otherwise', async () => {
    const dir = tmpDir('gradmax-verify-spatial-');
    const gap = save(cnn('gap'), dir, 'gap.onnx');
    const r = await verifyModels(gap, gap);
    expect(r.ok).toBe(true);
    expect(r.dims).toEqual({ batch: 8, H: 32, W: 32 });
    expect(r.dimSources).toEqual({ batch: 'batch', H: 'default', W: 'default' });
    const flat = save(cnn('flatten'), dir, 'flat.onnx');
    const f = await verifyModels(flat, flat);
    expect(f.ok).toBe(true);
    expect(f.dims).toEqual({ batch: 8, H: 12, W: 12 });
    expect(f.dimSources.H).toBe('searched');
    const view = save(cnn('view'), dir, 'view.onnx');
    const v = await verifyModels(view, view);
    expect(v.ok).toBe(true);
    expect(v.dims).toEqual({ batch: 8, H: 12, W: 12 });
  });

  it('a feature dim takes the size of the weight it meets', async () => {
    const b = new GraphBuilder(new Rng(4));
    const x = b.input('x', ['N', 'D']);
    b.output(b.op('MatMul', [x, b.weight([6, 3])], {}, 1, 'mm'), ['N', 3]);
    const file = save(b.model(), tmpDir(), 'mm.onnx');
    const r = await verifyModels(file, file);
    expect(r.dims).toEqual({ N: 8, D: 6 });
    expect(r.dimSources.D).toMatch(/^hint: MatMul mm/);
  });

  it('falls back to batch 1 (one run per sample) when the graph fixes the batch inside', async () => {
    const b = new GraphBuilder(new Rng(5));
    const x = b.input('x', ['N', 4]);
    const h = b.op('Gemm', [b.op('Reshape', [x, b.int64([1, 4])]), b.weight([4, 3])], {}, 1, 'fc');
    b.output(h, [1, 3]);
    const file = save(b.model(), tmpDir(), 'fixed.onnx');
    const r = await verifyModels(file, file);
    expect(r.ok).toBe(true);
    expect(r.dims).toEqual({ N: 1 });
    expect([r.samples, r.runs]).toEqual([8, 8]);
  });

  it('names the dimension to give with --dim when no tried value runs', async () => {
    const b = new GraphBuilder(new Rng(6));
    const x = b.input('x', ['N', 'D']);
    // Expand hides the shape from the static checks; onnxruntime needs D = 7 at the MatMul
    const e = b.op('Expand', [x, b.int64([1, 1])]);
    b.output(b.op('MatMul', [e, b.weight([7, 2])], {}, 1, 'mm'), ['N', 2]);
    const file = save(b.model(), tmpDir(), 'hidden.onnx');
    await expect(verifyModels(file, file)).rejects.toThrow(/symbolic input dimension "D".*--dim D=VALUE/);
    const r = await verifyModels(file, file, { dims: { D: 7 } });
    expect(r.ok).toBe(true);
    expect(r.dims).toEqual({ N: 8, D: 7 });
  });

  it('rejects supplied inputs whose shape does not fit the declared one, naming the input', async () => {
    const file = save(mlp(1, 'N'), tmpDir(), 'a.onnx');
    await expect(verifyModels(file, file, { inputs: { x: { shape: [2, 5], data: new Float32Array(10), dtype: '<f4' } } })).rejects.toThrow(/input "x" has shape \[2, 5\], but the model declares size 4 at axis 1/);
    const r = await verifyModels(file, file, { inputs: { x: { shape: [3, 4], data: new Float32Array(12), dtype: '<f4' } } });
    expect(r.dims).toEqual({ N: 3 });
    expect(r.dimSources).toEqual({ N: 'inputs' });
    expect(r.scales).toEqual([]);
  });
});

describe('duplicate initializer names (issue 15 item 3)', () => {
  it('loadModel rejects them with a typed error naming them', async () => {
    const { OnnxFormatError, makeTensor } = await import('@gradmax/onnx');
    const model = mlp(1, 'N');
    const w = model.graph.initializer[0]!;
    model.graph.initializer.push(makeTensor(w.name, w.dataType, w.dims.map(Number), new Float32Array(w.dims.map(Number).reduce((a, b) => a * b, 1))));
    const file = save(model, tmpDir(), 'dup.onnx');
    expect(() => loadModel(file)).toThrow(OnnxFormatError);
    expect(() => loadModel(file)).toThrow(new RegExp(`initializers with the same name: "${w.name}" \\(2 copies\\)`));
    expect(() => loadModel(file, { deferThreshold: 0 })).toThrow(OnnxFormatError);
  });
});

describe('symbolic dimensions of token models', () => {
  it('a sequence length fixed by a positional table, token ids below the vocabulary size', async () => {
    const { I64 } = await import('./helpers.js');
    const b = new GraphBuilder(new Rng(11));
    const tokens = b.input('tokens', ['batch', 'seq'], I64);
    const emb = b.op('Gather', [b.weight([50, 8]), tokens]);
    const pos = b.op('Add', [emb, b.weight([12, 8])]);
    b.output(b.op('MatMul', [pos, b.weight([8, 3])], {}, 1, 'head'), ['batch', 'seq', 3]);
    const file = save(b.model(), tmpDir(), 'tok.onnx');
    const r = await verifyModels(file, file);
    expect(r.ok).toBe(true);
    expect(r.dims).toEqual({ batch: 8, seq: 12 });
    expect(r.dimSources.seq).toMatch(/^hint: Add/);
    const { makeInputs } = await import('@gradmax/onnx');
    const ids = Array.from(makeInputs(loadModel(file)).tokens!.data as BigInt64Array, Number);
    expect(Math.max(...ids)).toBeLessThan(50);
    expect(Math.max(...ids)).toBeGreaterThanOrEqual(10); // the whole table is used, not only ids below 10
  });
});

describe('verifying a model edited in memory', () => {
  it('external tensors rewritten in memory are used, not the stale data file', async () => {
    const { growModel } = await import('@gradmax/onnx');
    const dir = tmpDir('gradmax-verify-mem-');
    const m = mlp(1, 'N');
    moveInitializersToExternalFile(m, dir, 'w.data');
    const file = save(m, dir, 'm.onnx');
    const model = loadModel(file);
    const site = findSites(model)[0]!;
    const units = makeUnits(growthSite(model, site), 2, 'outgoing-zero');
    growModel(model, [{ site: site.name, count: 2 }], { strategy: { name: 'fixed', functionPreserving: true, needs: { moment: false, samples: false, lossOracle: false }, grow: () => units } as never });
    expect(model.externalOverrides.size).toBeGreaterThan(0);
    const r = await verifyModels(file, model);
    expect(r.ok).toBe(true);
    // the model is left as it was (still external, overrides kept)
    expect(model.graph.initializer.every((t) => t.dataLocation === 1)).toBe(true);
    units.outgoing.data.fill(1);
    const other = loadModel(file);
    growModel(other, [{ site: site.name, count: 2 }], { strategy: { name: 'fixed2', functionPreserving: false, needs: { moment: false, samples: false, lossOracle: false }, grow: () => units } as never });
    expect((await verifyModels(file, other)).ok).toBe(false);
  });
});

describe('relative differences are taken per input scale', () => {
  it('a small offset hidden by the large outputs of scaled samples is still found', async () => {
    const dir = tmpDir('gradmax-verify-rel-');
    const build = (offset: number) => {
      const b = new GraphBuilder(new Rng(12));
      const x = b.input('x', ['N', 4]);
      const w = b.weight([4, 3]);
      b.output(b.op('Gemm', [x, w, b.tensor([3], [offset, offset, offset])], {}, 1, 'fc'), ['N', 3]);
      return b.model();
    };
    const a = save(build(0), dir, 'a.onnx');
    const b = save(build(5e-5), dir, 'b.onnx');
    // at scale 10 alone, 5e-5 is below 1e-5 of the outputs' magnitude
    expect((await verifyModels(a, b, { scales: [10] })).ok).toBe(true);
    const r = await verifyModels(a, b);
    expect(r.ok).toBe(false);
    expect(r.outputs[0]!.maxAbs).toBeCloseTo(5e-5, 6);
    expect(r.outputs[0]!.maxRel).toBeGreaterThan(1e-5);
  });
});

describe('failures that are not about a dimension', () => {
  it('a model that fails at every batch size reports the onnxruntime error, not a --dim request', async () => {
    const { RuntimeError } = await import('@gradmax/onnx');
    const { I64 } = await import('./helpers.js');
    const b = new GraphBuilder(new Rng(6));
    const x = b.input('x', ['N', 4]);
    const e = b.op('Expand', [x, b.int64([1, 1])]);
    b.output(b.op('MatMul', [e, b.weight([7, 2])], {}, 1, 'mm'), ['N', 2]);
    const file = save(b.model(), tmpDir(), 'broken.onnx');
    const err = await verifyModels(file, file).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(RuntimeError);
    expect(String((err as Error).message)).toMatch(/onnxruntime cannot load/);
    // fails only when run: a Reshape to a target read from another input (random ids, never 4 * N elements here)
    const b2 = new GraphBuilder(new Rng(6));
    const x2 = b2.input('x', ['N', 4]);
    const target = b2.input('target', [2], I64);
    b2.output(b2.op('Reshape', [x2, target]), undefined);
    const file2 = save(b2.model(), tmpDir(), 'runtime.onnx');
    const err2 = await verifyModels(file2, file2).catch((x: unknown) => x);
    expect(err2).toBeInstanceOf(RuntimeError);
    expect(String((err2 as Error).message)).toMatch(/onnxruntime failed to run .*\(batch sizes tried: 8, 1\)$/);
    expect(String((err2 as Error).message)).not.toMatch(/--dim/);
  });
});

describe('declared input sizes that cannot be drawn (issue 15 item 12, verification part)', () => {
  it('a huge declared input is refused with a typed error before anything is allocated', async () => {
    for (const n of [100_000_000, 2 ** 40]) {
      const b = new GraphBuilder(new Rng(1));
      const x = b.input('x', [n, 4]);
      b.output(b.op('Relu', [x]), [n, 4]);
      const file = save(b.model(), tmpDir(), 'huge.onnx');
      await expect(verifyModels(file, file)).rejects.toThrow(/graph input "x" of shape \[\d+, 4\] has \d+ elements, more than verification draws at random/);
    }
  });

  it('a negative declared size is treated as unknown and chosen', async () => {
    const b = new GraphBuilder(new Rng(1));
    const x = b.input('x', [-5, 4]);
    b.output(b.op('Relu', [x]), [-5, 4]);
    const file = save(b.model(), tmpDir(), 'neg.onnx');
    const r = await verifyModels(file, file);
    expect(r.dims).toEqual({ 'x:0': 8 });
  });
});

describe('symbolicDims: what each dim is taken to be', () => {
  it('batch, spatial (NCHW, NHWC), sequence (a length name, token ids, sequence-first), other', async () => {
    const { symbolicDims } = await import('@gradmax/onnx');
    const b = new GraphBuilder(new Rng(1));
    for (const [name, shape] of [
      ['img', ['unk__1', 3, 'H', 'W']],
      ['nhwc', ['n', 'h2', 'w2', 3]],
      ['wave', ['batch', 1, 'L']],
      ['ids', ['batch', 'seq']],
      ['tnf', ['T', 'B', 16]],
      ['m', ['batch', 'K', 5, 7, 9, 11]],
      ['anon', ['', 'foo']],
    ] as const) {
      b.output(b.op('Identity', [b.input(name, [...shape])]));
    }
    const kinds = Object.fromEntries(symbolicDims(b.model()).map((d) => [d.key, d.kind]));
    expect(kinds).toEqual({ unk__1: 'batch', H: 'spatial', W: 'spatial', n: 'batch', h2: 'spatial', w2: 'spatial', batch: 'batch', L: 'sequence', seq: 'sequence', T: 'sequence', B: 'batch', K: 'other', 'anon:0': 'batch', foo: 'sequence' });
  });
});
