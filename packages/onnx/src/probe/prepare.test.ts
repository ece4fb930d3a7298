/**
 * Models as they come (issue 12, item 4): an unsorted FLOAT16 model, an opset-9 model, a batch fixed at 1 — each
 * probed against an equivalent model in the probe's native form (sorted, FLOAT, opset 11+, symbolic batch) on the
 * same data — and onnxruntime's error messages passed through whole.
 */
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { clone, toBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema, TensorProto_DataType } from 'onnx-buf';
import type { ModelProto } from 'onnx-buf';
import { Rng } from '@gradmax/core';
import { GraphBuilder } from './__tests__/graph.js';
import { relErr } from './__tests__/rel-err.js';
import { buildProbe, computeStatistics, createProbeSession, sortTopologically, upgradeToOpset11 } from './index.js';
import type { ProbeBatch } from './index.js';
import { makeNode, valueInfoShape } from '../model.js';

const F32 = TensorProto_DataType.FLOAT;
const F16 = TensorProto_DataType.FLOAT16;
const I64 = TensorProto_DataType.INT64;

/** Values exactly representable in FLOAT16 (multiples of 1/64 in [−2, 2]). */
function halfExact(rng: Rng, n: number): Float64Array {
  return Float64Array.from({ length: n }, () => Math.round(rng.normal() * 32) / 64);
}

function batchesOf(x: Float64Array, perExample: number[], labels: number[], size: number): ProbeBatch[] {
  const per = perExample.reduce((a, b) => a * b, 1);
  const out: ProbeBatch[] = [];
  for (let s = 0; s < labels.length; s += size) {
    const e = Math.min(labels.length, s + size);
    out.push({ inputs: { type: 'float32', data: Float32Array.from(x.subarray(s * per, e * per)), dims: [e - s, ...perExample] }, labels: labels.slice(s, e) });
  }
  return out;
}

async function momentOf(model: ModelProto, site: { current: string; next: string }, batches: ProbeBatch[]): Promise<{ moment: Float64Array; loss: number; relaxed: boolean | undefined }> {
  const res = await computeStatistics(model, { sites: [{ name: 's', ...site }], loss: { kind: 'ce-logits' }, data: batches });
  return { moment: res.statistics.get('s')!.snapshot().moment.data, loss: res.meanLoss, relaxed: res.probe.prepared?.relaxedBatch };
}

function mlp(dtype: number, rng: Rng, batch: number | string): ModelProto {
  const b = new GraphBuilder(dtype);
  b.input('x', [batch, 6]);
  const z1 = b.op1('Gemm', ['x', b.init([6, 5], halfExact(rng, 30)), b.init([5], halfExact(rng, 5))], {}, 'fc1');
  const a1 = b.op1('Tanh', [z1]);
  const z2 = b.op1('Gemm', [a1, b.init([5, 4], halfExact(rng, 20)), b.init([4], halfExact(rng, 4))], {}, 'fc2');
  const a2 = b.op1('Relu', [z2]);
  const y = b.op1('Gemm', [a2, b.init([4, 3], halfExact(rng, 12)), b.init([3], halfExact(rng, 3))], {}, 'fc3');
  b.output(y, [batch, 3]);
  return b.build(13);
}

describe('topological order', () => {
  it('sorts a reversed node list stably and reports whether it changed', () => {
    const nodes = [makeNode('Relu', ['b'], ['c'], {}, 'n2'), makeNode('Relu', ['a'], ['b'], {}, 'n1'), makeNode('Relu', ['x'], ['d'], {}, 'n0')];
    expect(sortTopologically(nodes)).toBe(true);
    expect(nodes.map((n) => n.name)).toEqual(['n1', 'n2', 'n0']);
    expect(sortTopologically(nodes)).toBe(false);
  });
});

describe('FLOAT16 models are probed in FLOAT', () => {
  it('an unsorted FLOAT16 MLP gives the statistics of the same MLP in FLOAT', async () => {
    const rng = new Rng(5);
    const half = mlp(F16, new Rng(9), 'N');
    const single = mlp(F32, new Rng(9), 'N');
    // Cast in and out as a half-precision export does, and scramble the node order.
    const g = half.graph!;
    g.node.reverse();
    const N = 20;
    const x = halfExact(rng, N * 6);
    const labels = Array.from({ length: N }, () => rng.int(3));
    const site = { current: 'fc1', next: 'fc2' };
    const ref = await momentOf(single, site, batchesOf(x, [6], labels, 8));
    const got = await momentOf(half, site, batchesOf(x, [6], labels, 8));
    expect(relErr(got.moment, ref.moment, 1e-30)).toBeLessThan(1e-6);
    expect(got.loss).toBeCloseTo(ref.loss, 6);
    const probe = await buildProbe(half, { sites: [{ name: 's', ...site }], loss: { kind: 'ce-logits' } });
    expect(probe.prepared).toMatchObject({ sorted: true, promotedHalf: true });
    expect(probe.floatType).toBe(F32);
    // The caller's model is not changed.
    expect(half.graph!.initializer[0]!.dataType).toBe(F16);
  });

  it('casts to FLOAT16 inside a FLOAT model become casts to FLOAT', async () => {
    const rng = new Rng(6);
    const build = (inner: number) => {
      const wr = new Rng(60);
      const b = new GraphBuilder(F32);
      b.input('x', ['N', 4]);
      const z1 = b.op1('Gemm', ['x', b.init([4, 5], halfExact(wr, 20))], {}, 'fc1');
      const h = b.op1('Cast', [b.op1('Relu', [b.op1('Cast', [z1], { to: inner })])], { to: F32 });
      b.output(b.op1('Gemm', [h, b.init([5, 3], halfExact(wr, 15))], {}, 'fc2'), ['N', 3]);
      return b.build(13);
    };
    const mixed = build(F16);
    const plain = build(F32);
    const N = 12;
    const x = halfExact(rng, N * 4);
    const labels = Array.from({ length: N }, (_, i) => i % 3);
    const site = { current: 'fc1', next: 'fc2' };
    const a = await momentOf(mixed, site, batchesOf(x, [4], labels, N));
    const b = await momentOf(plain, site, batchesOf(x, [4], labels, N));
    expect(relErr(a.moment, b.moment, 1e-30)).toBeLessThan(1e-6);
  });
});

describe('opset 7–10 models are upgraded in memory', () => {
  /** x → Conv → Clip → Upsample ×2 → Slice → Pad → Flatten → fc1 → Relu → fc2, in opset 9 forms or opset 11. */
  function model(opset: 9 | 11, upsampleAttr = false): ModelProto {
    const rng = new Rng(21);
    const b = new GraphBuilder(F32);
    b.input('x', ['N', 2, 4, 4]);
    const c = b.op1('Conv', ['x', b.init([3, 2, 3, 3], rng.fillNormal(new Float64Array(54))), b.init([3], rng.fillNormal(new Float64Array(3)))], { pads: [1, 1, 1, 1] });
    let clip: string;
    let up: string;
    let sl: string;
    let pad: string;
    if (opset === 9) {
      clip = b.op1('Clip', [c], { min: { float: -0.5 }, max: { float: 1.5 } });
      up = upsampleAttr
        ? b.op1('Upsample', [clip], { mode: 'nearest', scales: { floats: [1, 1, 2, 2] } })
        : b.op1('Upsample', [clip, b.init([4], [1, 1, 2, 2], 'scales')], { mode: 'nearest' });
      sl = b.op1('Slice', [up], { starts: [1, 0], ends: [7, -1], axes: [2, 3] });
      pad = b.op1('Pad', [sl], { pads: [0, 0, 1, 0, 0, 0, 0, 2], value: { float: 0.25 } });
    } else {
      clip = b.op1('Clip', [c, b.init([], [-0.5]), b.init([], [1.5])]);
      up = b.op1('Resize', [clip, b.init([0], []), b.init([4], [1, 1, 2, 2], 'scales')], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' });
      sl = b.op1('Slice', [up, b.init([2], [1, 0], 's', I64), b.init([2], [7, -1], 'e', I64), b.init([2], [2, 3], 'a', I64)]);
      pad = b.op1('Pad', [sl, b.init([8], [0, 0, 1, 0, 0, 0, 0, 2], 'p', I64), b.init([], [0.25])]);
    }
    const flat = b.op1('Flatten', [pad]);
    const z1 = b.op1('Gemm', [flat, b.init([3 * 7 * 9, 6], rng.fillNormal(new Float64Array(189 * 6)).map((v) => v * 0.1)), b.init([6], new Float64Array(6))], {}, 'fc1');
    const z2 = b.op1('Gemm', [b.op1('Relu', [z1]), b.init([6, 4], rng.fillNormal(new Float64Array(24))), b.init([4], new Float64Array(4))], {}, 'fc2');
    b.output(z2, ['N', 4]);
    return b.build(opset);
  }

  for (const upsampleAttr of [false, true]) {
    it(`an opset-9 model (Clip, Upsample${upsampleAttr ? ' with a scales attribute' : ''}, Slice, Pad attribute forms) gives the statistics of its opset-11 twin`, async () => {
      const old = model(9, upsampleAttr);
      if (upsampleAttr) old.opsetImport[0]!.version = 7n;
      const twin = model(11);
      const rng = new Rng(3);
      const N = 10;
      const x = rng.fillNormal(new Float64Array(N * 32));
      const labels = Array.from({ length: N }, () => rng.int(4));
      const site = { current: 'fc1', next: 'fc2' };
      const a = await momentOf(old, site, batchesOf(x, [2, 4, 4], labels, 4));
      const b = await momentOf(twin, site, batchesOf(x, [2, 4, 4], labels, 4));
      expect(relErr(a.moment, b.moment, 1e-30)).toBeLessThan(1e-6);
      expect(a.loss).toBeCloseTo(b.loss, 6);
      expect(Number(old.opsetImport[0]!.version)).toBe(upsampleAttr ? 7 : 9);
    });
  }

  it('the upgraded graph computes what onnxruntime computes for the original', async () => {
    const old = model(9);
    const upgraded = clone(ModelProtoSchema, old);
    expect(upgradeToOpset11(upgraded)).toBe(9);
    const x = new ort.Tensor('float32', Float32Array.from({ length: 3 * 32 }, (_, i) => Math.sin(i)), [3, 2, 4, 4]);
    const run = async (m: ModelProto) => {
      const s = await ort.InferenceSession.create(toBinary(ModelProtoSchema, m));
      const out = await s.run({ x });
      await s.release();
      return Object.values(out)[0]!.data as Float32Array;
    };
    expect(Array.from(await run(upgraded))).toEqual(Array.from(await run(old)));
  });

  it('refuses nearest downsampling from opset 10 with the reason', () => {
    const b = new GraphBuilder(F32);
    b.input('x', [1, 1, 4, 4]);
    b.output(b.op1('Resize', ['x', b.init([4], [1, 1, 0.5, 0.5])], { mode: 'nearest' }));
    expect(() => upgradeToOpset11(b.build(10))).toThrow(/nearest downsampling/);
  });
});

describe('a batch dimension fixed at 1', () => {
  function convNet(batch: number | string, reshapeTo: number[]): ModelProto {
    const rng = new Rng(31);
    const b = new GraphBuilder(F32);
    b.input('x', [batch, 2, 4, 4]);
    const c = b.op1('Relu', [b.op1('Conv', ['x', b.init([3, 2, 3, 3], rng.fillNormal(new Float64Array(54)))], { pads: [1, 1, 1, 1] })]);
    const flat = b.op1('Reshape', [c, b.init([2], reshapeTo, 'shape', I64)]);
    const z1 = b.op1('Gemm', [flat, b.init([48, 5], rng.fillNormal(new Float64Array(240)).map((v) => v * 0.2))], {}, 'fc1');
    const z2 = b.op1('Gemm', [b.op1('Tanh', [z1]), b.init([5, 3], rng.fillNormal(new Float64Array(15)))], {}, 'fc2');
    b.output(z2, [batch, 3]);
    return b.build(13);
  }

  it('is relaxed in the probe (Reshape to [1, −1] included): whole minibatches, the statistics of the batched model', async () => {
    const fixed = convNet(1, [1, -1]);
    const batched = convNet('N', [-1, 48]);
    const rng = new Rng(8);
    const N = 16;
    const x = rng.fillNormal(new Float64Array(N * 32));
    const labels = Array.from({ length: N }, () => rng.int(3));
    const site = { current: 'fc1', next: 'fc2' };
    const got = await momentOf(fixed, site, batchesOf(x, [2, 4, 4], labels, 8));
    const ref = await momentOf(batched, site, batchesOf(x, [2, 4, 4], labels, 8));
    expect(got.relaxed).toBe(true);
    expect(relErr(got.moment, ref.moment, 1e-30)).toBeLessThan(1e-5);
    const probe = await buildProbe(fixed, { sites: [{ name: 's', ...site }], loss: { kind: 'ce-logits' } });
    expect(typeof valueInfoShape(probe.model.graph!.input.find((i) => i.name === 'x'))![0]).toBe('string');
    // The caller's model keeps its fixed batch.
    expect(valueInfoShape(fixed.graph!.input[0])![0]).toBe(1);
  });

  it('stays fixed when batching would change the results (a Reshape that mixes the batch)', async () => {
    // Reshape [1, 2, 16] → [2, 16]: batching this moves examples into rows; batched ≠ per-example, so no relaxing.
    const rng = new Rng(4);
    const b = new GraphBuilder(F32);
    b.input('x', [1, 2, 16]);
    const r = b.op1('Reshape', ['x', b.init([2], [2, 16], 'shape', I64)]);
    const z1 = b.op1('Gemm', [r, b.init([16, 4], rng.fillNormal(new Float64Array(64)))], {}, 'fc1');
    const z2 = b.op1('Gemm', [b.op1('Relu', [z1]), b.init([4, 3], rng.fillNormal(new Float64Array(12)))], {}, 'fc2');
    b.output(b.op1('ReduceSum', [z2, b.init([1], [0], 'axes', I64)], { keepdims: 1 }), [1, 3]);
    const probe = await buildProbe(b.build(13), { sites: [{ name: 's', current: 'fc1', next: 'fc2' }], loss: { kind: 'ce-logits' } });
    expect(probe.prepared?.relaxedBatch).toBe(false);
  });
});

describe('onnxruntime errors', () => {
  it('are passed through whole', async () => {
    const b = new GraphBuilder(F32);
    b.input('x', ['N', 3]);
    b.output(b.op1('Gemm', ['x', b.init([4, 2], new Float64Array(8))]), ['N', 2]);
    const broken = b.build(13);
    let direct = '';
    try {
      await ort.InferenceSession.create(toBinary(ModelProtoSchema, broken));
    } catch (e) {
      direct = (e as Error).message.trimEnd();
    }
    expect(direct.length).toBeGreaterThan(0);
    await expect(createProbeSession(broken)).rejects.toThrow(direct);
  });
});

describe('models parsed from a Node Buffer', () => {
  it('weights stored at unaligned offsets of a Buffer are read by copy (Buffer.slice shares memory)', async () => {
    const { buildVjpModel } = await import('./index.js');
    const { fromBinary } = await import('@bufbuild/protobuf');
    const rng = new Rng(2);
    const b = new GraphBuilder(F32);
    b.input('x', ['N', 8, 5, 5]);
    b.output(b.op1('Conv', ['x', b.init([8, 8, 3, 3], rng.fillNormal(new Float64Array(576)))], { pads: [1, 1, 1, 1] }), ['N', 8, 5, 5]);
    const bytes = toBinary(ModelProtoSchema, b.build(13));
    const gradOf = async (m: ModelProto) => {
      const vjp = await buildVjpModel(m, { wrt: ['x'] });
      const s = await ort.InferenceSession.create(toBinary(ModelProtoSchema, vjp.model));
      const x = new ort.Tensor('float32', Float32Array.from({ length: 200 }, (_, i) => Math.cos(i)), [1, 8, 5, 5]);
      const cot = new ort.Tensor('float32', Float32Array.from({ length: 200 }, (_, i) => Math.sin(i)), [1, 8, 5, 5]);
      const out = await s.run({ x, [Object.values(vjp.cotangents)[0]!]: cot });
      await s.release();
      return Array.from(out[vjp.gradients.x!]!.data as Float32Array);
    };
    const aligned = await gradOf(fromBinary(ModelProtoSchema, bytes));
    for (const shift of [1, 2, 3]) {
      const buf = Buffer.concat([Buffer.alloc(shift), Buffer.from(bytes)]).subarray(shift);
      expect(await gradOf(fromBinary(ModelProtoSchema, buf))).toEqual(aligned);
    }
  });
});
