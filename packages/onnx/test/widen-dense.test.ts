import { afterAll, describe, expect, it } from 'vitest';
import { Rng } from '@gradmax/core';
import { findSites } from '@gradmax/onnx';
import { F16, F64, GraphBuilder, flushOnnxChecks } from './helpers.js';
import { growAndCheck, saveTemp, type UnitsKind } from './grow-helpers.js';

const KINDS: UnitsKind[] = ['incoming-zero', 'outgoing-zero', 'split'];

afterAll(() => {
  expect(flushOnnxChecks()).toBe('');
});

function gemmPair(transA1: number, transB1: number, transA2: number, transB2: number) {
  const b = new GraphBuilder(new Rng(transA1 * 8 + transB1 * 4 + transA2 * 2 + transB2 + 1));
  const x = b.input('x', transA1 ? [6, 'N'] : ['N', 6]);
  const w1 = b.weight(transB1 ? [5, 6] : [6, 5]);
  const h = b.op('Gemm', [x, w1, b.weight([5])], { transA: transA1, transB: transB1, alpha: 0.7, beta: 1.25 }, 1, 'fc1');
  let r = b.op('Relu', [h]);
  if (transA2) r = b.op('Transpose', [r], { perm: [1, 0] });
  const w2 = b.weight(transB2 ? [4, 5] : [5, 4]);
  const y = b.op('Gemm', [r, w2, b.weight([4])], { transA: transA2, transB: transB2, alpha: 1.5, beta: 0.5 }, 1, 'fc2');
  b.output(y, ['N', 4]);
  return b.model();
}

describe('Gemm -> Gemm, every transA/transB/alpha/beta combination', () => {
  for (let mask = 0; mask < 16; mask++) {
    const [a1, b1, a2, b2] = [(mask >> 3) & 1, (mask >> 2) & 1, (mask >> 1) & 1, mask & 1];
    it(`transA1=${a1} transB1=${b1} transA2=${a2} transB2=${b2}`, async () => {
      const model = gemmPair(a1, b1, a2, b2);
      const site = findSites(model).find((s) => s.current === 'fc1')!;
      expect(site.name).toBe('fc1->fc2');
      expect(site.growable, site.reason).toBe(true);
      expect(site.activation).toEqual({ name: a2 ? 'Relu' : 'Relu', f0: 0, df0: 1 });
      const file = saveTemp(model);
      for (const kind of KINDS) await growAndCheck(file, 'fc1->fc2', 3, kind);
    });
  }
});

describe('MatMul(+Add) -> MatMul', () => {
  it('3-D input, weights in Constant nodes and typed fields, LeakyRelu/Dropout/Identity between', async () => {
    const b = new GraphBuilder(new Rng(9), undefined, true);
    const x = b.input('x', ['N', 2, 6]);
    const m = b.op('MatMul', [x, b.constantWeight([6, 7])], {}, 1, 'mm1');
    const a = b.op('Add', [m, b.weight([7])], {}, 1, 'bias1');
    const l = b.op('LeakyRelu', [a], { alpha: 0.1 });
    const d = b.op('Dropout', [l]);
    const i = b.op('Identity', [d]);
    const y = b.op('MatMul', [i, b.constantWeight([7, 3])], {}, 1, 'mm2');
    b.output(y, ['N', 2, 3]);
    const model = b.model();
    const site = findSites(model).find((s) => s.current === 'mm1')!;
    expect(site.growable, site.reason).toBe(true);
    expect(site.between.map((o) => o.opType)).toEqual(['Add', 'LeakyRelu', 'Dropout', 'Identity']);
    const file = saveTemp(model);
    for (const kind of KINDS) await growAndCheck(file, 'mm1->mm2', 2, kind);
  });

  it('MatMul without bias -> Gemm; per-channel Mul/Div/Sub constants; DOUBLE weights', async () => {
    const b = new GraphBuilder(new Rng(10), F64);
    const x = b.input('x', ['N', 4]);
    const m = b.op('MatMul', [x, b.weight([4, 5])], {}, 1, 'mm1');
    const s1 = b.op('Mul', [m, b.weight([5])]);
    const s2 = b.op('Div', [s1, b.tensor([1, 5], [1, 2, 3, 4, 5])]);
    const s3 = b.op('Sub', [s2, b.tensor([1], [0.25])]);
    const r = b.op('Relu', [b.op('Add', [s3, b.tensor([1], [0.25])])]);
    const y = b.op('Gemm', [r, b.weight([5, 2])], {}, 1, 'fc2');
    b.output(y, ['N', 2]);
    const model = b.model();
    const site = findSites(model).find((s) => s.current === 'mm1')!;
    expect(site.growable, site.reason).toBe(true);
    expect(site.activation?.f0).toBe(0);
    const file = saveTemp(model);
    for (const kind of KINDS) await growAndCheck(file, 'mm1', 2, kind);
  });

  it('FP16 weights (relative diff <= 1e-2)', async () => {
    const b = new GraphBuilder(new Rng(12), F16);
    const x = b.input('x', ['N', 8]);
    const h = b.op('Gemm', [x, b.weight([8, 6]), b.weight([6])], { transB: 0 }, 1, 'fc1');
    const y = b.op('Gemm', [b.op('Relu', [h]), b.weight([3, 6]), b.weight([3])], { transB: 1 }, 1, 'fc2');
    b.output(y, ['N', 3]);
    const file = saveTemp(b.model());
    for (const kind of KINDS) await growAndCheck(file, 'fc1->fc2', 4, kind, { fp16: true });
  });

  it('scalar Gemm bias is expanded to one value per unit; missing bias is added when needed', async () => {
    const b = new GraphBuilder(new Rng(13));
    const x = b.input('x', ['N', 3]);
    const h = b.op('Gemm', [x, b.weight([3, 4]), b.tensor([1], [0.3])], {}, 1, 'fc1');
    const h2 = b.op('Gemm', [b.op('Relu', [h]), b.weight([4, 4])], {}, 1, 'fc2');
    const y = b.op('Gemm', [b.op('Relu', [h2]), b.weight([4, 2])], {}, 1, 'fc3');
    b.output(y, ['N', 2]);
    const file = saveTemp(b.model());
    for (const kind of KINDS) await growAndCheck(file, 'fc1', 2, kind);
    for (const kind of KINDS) await growAndCheck(file, 'fc2', 2, kind);
  });
});
