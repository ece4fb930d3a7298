import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GradmaxError, Matrix, Rng } from '@gradmax/core';
import { ExternalDataError, findSites, growthSite, loadModel, saveModel, serializeModel, widen, type OnnxModel } from '@gradmax/onnx';
import { F16, GraphBuilder, moveInitializersToExternalFile, tmpDir } from './helpers.js';

function bases(dir: string): string[] {
  const files: string[] = [];
  const save = (name: string, model: OnnxModel) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, serializeModel(model));
    files.push(f);
  };
  {
    const b = new GraphBuilder(new Rng(1));
    const x = b.input('x', ['N', 4]);
    const h = b.op('Gemm', [x, b.weight([4, 5]), b.weight([5])], { transB: 0 }, 1, 'fc1');
    b.output(b.op('MatMul', [b.op('Relu', [h]), b.constantWeight([5, 3])], {}, 1, 'fc2'), ['N', 3]);
    save('mlp.onnx', b.model());
  }
  {
    const b = new GraphBuilder(new Rng(2), F16, true);
    const x = b.input('x', ['N', 2, 5, 5]);
    const c = b.op('Conv', [x, b.weight([3, 2, 3, 3]), b.weight([3])], { pads: [1, 1, 1, 1] }, 1, 'c1');
    const bn = b.op('BatchNormalization', [c, b.tensor([3], [1, 1, 1]), b.tensor([3], [0, 0, 0]), b.tensor([3], [0, 0, 0]), b.tensor([3], [1, 1, 1])]);
    const f = b.op('Flatten', [b.op('Relu', [bn])]);
    b.output(b.op('Gemm', [f, b.weight([75, 2])], {}, 1, 'fc'), ['N', 2]);
    save('cnn16.onnx', b.model());
  }
  {
    // FP16 in raw_data (deferred when loaded with a small threshold)
    const b = new GraphBuilder(new Rng(4), F16);
    const x = b.input('x', ['N', 2, 5, 5]);
    const c = b.op('Conv', [x, b.weight([4, 2, 3, 3]), b.weight([4])], { pads: [1, 1, 1, 1] }, 1, 'c1');
    const r = b.op('Relu', [c]);
    b.output(b.op('Conv', [r, b.weight([3, 4, 3, 3])], { pads: [0, 1, 1, 0] }, 1, 'c2'), ['N', 3, 4, 4]);
    save('cnn16raw.onnx', b.model());
  }
  {
    // external data
    const b = new GraphBuilder(new Rng(3));
    const x = b.input('x', ['N', 3]);
    const h = b.op('Gemm', [x, b.weight([3, 4])], {}, 1, 'fc1');
    b.output(b.op('Gemm', [b.op('Relu', [h]), b.weight([4, 2])], {}, 1, 'fc2'), ['N', 2]);
    const m = b.model();
    moveInitializersToExternalFile(m, dir, 'ext.bin');
    save('ext.onnx', m);
  }
  return files;
}

function mutate(bytes: Uint8Array, rng: Rng): Uint8Array {
  const kind = rng.int(6);
  const out = Uint8Array.from(bytes);
  switch (kind) {
    case 0:
      return out.subarray(0, rng.int(out.length));
    case 1: {
      const n = 1 + rng.int(8);
      for (let i = 0; i < n; i++) out[rng.int(out.length)] = rng.int(256);
      return out;
    }
    case 2: {
      const at = rng.int(out.length);
      const ins = Uint8Array.from({ length: 1 + rng.int(16) }, () => rng.int(256));
      return Uint8Array.from([...out.subarray(0, at), ...ins, ...out.subarray(at)]);
    }
    case 3: {
      // flip one bit
      const i = rng.int(out.length);
      out[i] = out[i]! ^ (1 << rng.int(8));
      return out;
    }
    case 4: {
      // overwrite with a large varint-looking run
      const at = rng.int(out.length);
      for (let i = at; i < Math.min(out.length, at + 5); i++) out[i] = 0xff;
      return out;
    }
    default: {
      // replace a printable run (names, external locations) with a traversal string
      const text = new TextEncoder().encode(['../../etc/passwd', '/etc/passwd', 'ext.bin\0', 'sub/../../x'][rng.int(4)]!);
      const at = rng.int(Math.max(1, out.length - text.length));
      out.set(text.subarray(0, Math.min(text.length, out.length - at)), at);
      return out;
    }
  }
}

/**
 * Drives a mutated file through load -> sites -> widen -> serialize (and sometimes save). Returns 'valid' with the
 * serialised bytes, or the error class name.
 */
function drive(file: string, outDir: string, rng: Rng, deferThreshold: number): { outcome: string; bytes?: Uint8Array; deferred?: number } {
  let deferred: number | undefined;
  try {
    const model = loadModel(file, { deferThreshold });
    deferred = model.deferredSources.size;
    const sites = findSites(model);
    for (const t of model.graph.initializer.slice(0, 4)) model.tensorBytes(t);
    const site = sites.find((s) => s.growable);
    if (site) {
      const gs = growthSite(model, site);
      const k = 1 + rng.int(2);
      const outgoing = Matrix.from(gs.fanOut, k, rng.fillNormal(new Float64Array(gs.fanOut * k)));
      widen(model, [{ site: site.name, newUnits: { incoming: Matrix.zeros(k, gs.fanIn), incomingBias: new Float64Array(k), outgoing, report: { strategy: 'fuzz', site: site.name, count: k, notes: [] } } }]);
    }
    const bytes = serializeModel(model);
    if (rng.uniform() < 0.1) saveModel(model, path.join(outDir, `o${rng.int(1e9)}.onnx`));
    return { outcome: 'valid', bytes, deferred };
  } catch (e) {
    if (!(e instanceof GradmaxError)) throw new Error(`untyped ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    return { outcome: e.constructor.name, deferred };
  }
}

describe('fuzz: mutated and truncated model files', () => {
  it('1,200 seeded mutations end in a typed error or a valid model, the same with deferred weights; inputs untouched', () => {
    const dir = tmpDir('gradmax-fuzz-');
    const outDir = tmpDir('gradmax-fuzz-out-');
    const files = bases(dir);
    const rng = new Rng(20261126);
    const outcomes = new Map<string, number>();
    let deferredCases = 0;
    const extHash = crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, 'ext.bin'))).digest('hex');
    for (let i = 0; i < 1200; i++) {
      const base = files[i % files.length]!;
      const bytes = mutate(fs.readFileSync(base), rng);
      const file = path.join(dir, `case${i}.onnx`);
      fs.writeFileSync(file, bytes);
      const hash = crypto.createHash('sha256').update(bytes).digest('hex');
      // Differential: everything read at load time, against large payloads left in the file (a small threshold
      // defers every raw_data the scanner accepts). Both must end the same way, with the same bytes.
      const label = `case ${i} (${path.basename(base)})`;
      const eager = drive(file, outDir, rng.fork(i), Infinity);
      const deferred = drive(file, outDir, rng.fork(i), 1 + rng.int(48));
      expect(deferred.outcome, label).toBe(eager.outcome);
      if (eager.bytes) expect(Buffer.from(deferred.bytes!).equals(Buffer.from(eager.bytes)), `${label}: deferred and eager bytes differ`).toBe(true);
      if (deferred.deferred) deferredCases++;
      const outcome = eager.outcome;
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      expect(crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex'), `case ${i} input modified`).toBe(hash);
      fs.rmSync(file);
    }
    expect(crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, 'ext.bin'))).digest('hex')).toBe(extHash);
    // both outcomes occur, so the mutations are neither all fatal nor all harmless
    expect(outcomes.get('valid') ?? 0).toBeGreaterThan(50);
    expect(outcomes.get('OnnxFormatError') ?? 0).toBeGreaterThan(50);
    // the deferred path is really taken (mutations that break the framing fall back to the eager parse)
    expect(deferredCases).toBeGreaterThan(150);
    console.info(`fuzz outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}; loads with deferred payloads: ${deferredCases}`);
  });

  it('mutated external-data locations that escape the model folder are rejected', () => {
    const dir = tmpDir('gradmax-fuzz-ext-');
    const ext = bases(dir).find((f) => f.endsWith('ext.onnx'));
    const text = fs.readFileSync(ext!);
    const needle = Buffer.from('ext.bin');
    let rejected = 0;
    for (const evil of ['../x.bin', '/tmp/x.bin', '..\\x.bin', 'a/../../']) {
      // same-length replacements keep the protobuf framing valid
      const repl = Buffer.from(evil.padEnd(needle.length, '/').slice(0, needle.length));
      const bytes = Buffer.from(text);
      for (let at = bytes.indexOf(needle); at >= 0; at = bytes.indexOf(needle, at + 1)) repl.copy(bytes, at);
      const file = path.join(dir, `evil-${rejected}.onnx`);
      fs.writeFileSync(file, bytes);
      expect(() => loadModel(file), evil).toThrow(ExternalDataError);
      rejected++;
    }
    expect(rejected).toBe(4);
  });

  it('deeply nested subgraphs end in a typed error or a valid model', () => {
    const dir = tmpDir('gradmax-fuzz-deep-');
    const varint = (n: number) => {
      const out: number[] = [];
      while (n > 0x7f) {
        out.push((n & 0x7f) | 0x80);
        n >>>= 7;
      }
      out.push(n);
      return out;
    };
    const str = (t: string) => Array.from(new TextEncoder().encode(t));
    const vlen = (n: number) => varint(n).length;
    const ifName = [(4 << 3) | 2, 2, ...str('If')];
    const attrName = [(1 << 3) | 2, 11, ...str('then_branch')];
    for (const depth of [100, 3000, 20000]) {
      // GraphProto { node: [ NodeProto { op_type: "If", attribute: [ { name: "then_branch", type: GRAPH, g: <inner> } ] } ] },
      // written outside-in with precomputed lengths
      const G = new Array<number>(depth + 1).fill(0);
      const A = new Array<number>(depth + 1).fill(0);
      const N = new Array<number>(depth + 1).fill(0);
      for (let d = 1; d <= depth; d++) {
        A[d] = attrName.length + 2 + 1 + vlen(G[d - 1]!) + G[d - 1]!;
        N[d] = ifName.length + 1 + vlen(A[d]!) + A[d]!;
        G[d] = 1 + vlen(N[d]!) + N[d]!;
      }
      const graph: number[] = [];
      for (let d = depth; d >= 1; d--) {
        graph.push((1 << 3) | 2, ...varint(N[d]!), ...ifName, (5 << 3) | 2, ...varint(A[d]!), ...attrName, 20 << 3, 5, (6 << 3) | 2, ...varint(G[d - 1]!));
      }
      expect(graph.length).toBe(G[depth]);
      const model = Uint8Array.from([(1 << 3) | 0, 8, (7 << 3) | 2, ...varint(graph.length), ...graph]);
      const file = path.join(dir, `deep${depth}.onnx`);
      fs.writeFileSync(file, model);
      try {
        const m = loadModel(file);
        findSites(m);
        serializeModel(m);
      } catch (e) {
        expect(e, `depth ${depth}`).toBeInstanceOf(GradmaxError);
      }
    }
  });
});
