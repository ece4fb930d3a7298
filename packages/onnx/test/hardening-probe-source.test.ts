/** Issue 15 items 4, 6 and 7: out-of-range labels, a deferred source rewritten behind the model's back, swapped external data. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, Rng } from '@gradmax/core';
import { ExternalDataError, FileAccessError, loadModel, saveModel, serializeModel } from '@gradmax/onnx';
import { computeStatistics } from '@gradmax/onnx/probe';
import { GraphBuilder, moveInitializersToExternalFile, tmpDir } from './helpers.js';

function classifier() {
  const b = new GraphBuilder(new Rng(81));
  const x = b.input('x', ['N', 3]);
  const h = b.op('Relu', [b.op('Gemm', [x, b.weight([3, 4]), b.weight([4])], {}, 1, 'fc1')]);
  b.output(b.op('Gemm', [h, b.weight([4, 2])], {}, 1, 'fc2'), ['N', 2]);
  return b.model();
}

describe('cross-entropy labels outside [0, classes) are refused (issue 15 item 4)', () => {
  for (const bad of [5, -1, 2 ** 40]) {
    it(`label ${bad} for 2 classes`, async () => {
      const data = [{ inputs: { type: 'float32', data: new Float32Array(6).fill(0.5), dims: [2, 3] }, labels: [0, bad] }];
      const run = computeStatistics(classifier(), { sites: ['fc1->fc2'], loss: { kind: 'ce-logits' }, data });
      await expect(run).rejects.toThrow(InvalidArgumentError);
      await expect(computeStatistics(classifier(), { sites: ['fc1->fc2'], loss: { kind: 'ce-logits' }, data })).rejects.toThrow(new RegExp(`label 1 is ${bad}, outside \\[0, 2\\)`));
    });
  }
  it('labels in range still work, as a BigInt64 tensor too', async () => {
    const data = [{ inputs: { type: 'float32', data: new Float32Array(6).fill(0.5), dims: [2, 3] }, labels: { type: 'int64', data: BigInt64Array.from([0n, 1n]), dims: [2] } }];
    const { examples } = await computeStatistics(classifier(), { sites: ['fc1->fc2'], loss: { kind: 'ce-logits' }, data });
    expect(examples).toBe(2);
  });
});

describe('a deferred source rewritten with the same size and a restored mtime, or renamed over, is detected (issue 15 item 6)', () => {
  function bigModelFile(dir: string): string {
    const b = new GraphBuilder(new Rng(82));
    const x = b.input('x', ['N', 128]);
    const h = b.op('Relu', [b.op('Gemm', [x, b.weight([128, 256])], {}, 1, 'fc1')]); // 128 KiB: deferred
    b.output(b.op('Gemm', [h, b.weight([256, 4])], {}, 1, 'fc2'), ['N', 4]);
    const file = path.join(dir, 'big.onnx');
    fs.writeFileSync(file, serializeModel(b.model()));
    fs.utimesSync(file, 1_700_000_000, 1_700_000_000); // whole seconds, so the same time can be set again exactly
    return file;
  }

  it('same size, same mtime, different bytes: the save refuses', () => {
    const dir = tmpDir('gradmax-stamp-');
    const file = bigModelFile(dir);
    const model = loadModel(file);
    expect(model.deferredSources.size).toBeGreaterThan(0);
    const st = fs.statSync(file);
    const bytes = fs.readFileSync(file);
    const at = [...model.deferredSources.values()][0]!.offset + 16;
    bytes[at] = bytes[at]! ^ 0xff; // same size, one weight byte changed
    fs.writeFileSync(file, bytes);
    fs.utimesSync(file, 1_700_000_000, 1_700_000_000); // mtime restored exactly
    expect(fs.statSync(file).mtimeMs).toBe(st.mtimeMs);
    expect(() => saveModel(model, path.join(dir, 'out.onnx'))).toThrow(FileAccessError);
    expect(() => saveModel(model, path.join(dir, 'out.onnx'))).toThrow(/changed since it was loaded/);
    expect(fs.existsSync(path.join(dir, 'out.onnx'))).toBe(false);
  });

  it('a copy renamed over the source (same size and mtime): the save refuses', () => {
    const dir = tmpDir('gradmax-stamp-');
    const file = bigModelFile(dir);
    const model = loadModel(file);
    const st = fs.statSync(file);
    const copy = path.join(dir, 'copy.onnx');
    fs.copyFileSync(file, copy);
    fs.utimesSync(copy, 1_700_000_000, 1_700_000_000);
    expect(fs.statSync(copy).size).toBe(st.size);
    fs.renameSync(copy, file);
    expect(() => saveModel(model, path.join(dir, 'out.onnx'))).toThrow(/changed since it was loaded/);
  });
});

describe('external data swapped for a symbolic link after loading is not read (issue 15 item 7)', () => {
  it('saving refuses to follow a link swapped in for the data file, and a file swapped in for it', () => {
    for (const swap of ['symlink', 'file'] as const) {
      const dir = tmpDir('gradmax-extswap-');
      const outside = tmpDir('gradmax-outside-');
      const b = new GraphBuilder(new Rng(83));
      const x = b.input('x', ['N', 3]);
      b.output(b.op('Gemm', [x, b.weight([3, 2])], {}, 1, 'fc'), ['N', 2]);
      const model = b.model();
      moveInitializersToExternalFile(model, dir, 'w.bin');
      const file = path.join(dir, 'm.onnx');
      fs.writeFileSync(file, serializeModel(model));
      const loaded = loadModel(file);
      const data = path.join(dir, 'w.bin');
      const secret = path.join(outside, 'secret.bin');
      fs.copyFileSync(data, secret); // same size, so only the swap itself can give it away
      fs.rmSync(data);
      if (swap === 'symlink') fs.symlinkSync(secret, data);
      else fs.copyFileSync(secret, data);
      expect(() => saveModel(loaded, path.join(dir, 'out.onnx')), swap).toThrow(ExternalDataError);
      expect(() => saveModel(loaded, path.join(dir, 'out.onnx')), swap).toThrow(swap === 'symlink' ? /replaced by a symbolic link/ : /was replaced after the model was loaded/);
    }
  });
});
