/**
 * adviseGrowth against an independent computation: the singular values of the same sites' M (computeStatistics,
 * then the core's full SVD), gains, shares and the ranking; refused sites are listed with their reason.
 */
import { describe, expect, it } from 'vitest';
import { Matrix, Rng, svd } from '@gradmax/core';
import { GraphBuilder } from './__tests__/graph.js';
import { FLOAT } from './__tests__/fd.js';
import { adviseGrowth, computeGroupStatistics, computeStatistics } from './index.js';
import { loadModel } from '../model.js';
import { toBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema } from 'onnx-buf';
import type { ProbeBatch } from './index.js';

function model(rng: Rng) {
  const b = new GraphBuilder(FLOAT);
  b.input('x', ['N', 6]);
  const w = (r: number, c: number, s = 1) => b.init([r, c], rng.fillNormal(new Float64Array(r * c)).map((v) => v * s));
  const z1 = b.op1('Gemm', ['x', w(6, 7)], {}, 'fc1');
  const z2 = b.op1('Gemm', [b.op1('Tanh', [z1]), w(7, 5)], {}, 'fc2');
  const z3 = b.op1('Gemm', [b.op1('Relu', [z2]), w(5, 4, 0.3)], {}, 'fc3');
  b.output(z3, ['N', 4]);
  return b.build(13);
}

describe('adviseGrowth', () => {
  it('ranks every growable site by the sum of its k largest squared singular values of M', async () => {
    const rng = new Rng(17);
    const m = model(rng);
    const N = 40;
    const x = Float32Array.from({ length: N * 6 }, () => rng.normal());
    const labels = Array.from({ length: N }, () => rng.int(4));
    const data = (): ProbeBatch[] => [{ inputs: { type: 'float32', data: x, dims: [N, 6] }, labels }];
    const k = 2;
    const res = await adviseGrowth(m, { data: data(), loss: { kind: 'ce-logits' }, k, top: 4 });
    expect(res.examples).toBe(N);
    expect(res.advice.map((a) => a.site).sort()).toEqual(['fc1', 'fc2']);
    expect(res.skipped).toMatchObject([{ site: 'fc3', growable: false }]);
    const ref = await computeStatistics(m, { sites: ['fc1->fc2', 'fc2->fc3'], loss: { kind: 'ce-logits' }, data: data() });
    for (const a of res.advice) {
      const mm = ref.statistics.get(`${a.site}->${a.site === 'fc1' ? 'fc2' : 'fc3'}`)!.snapshot().moment;
      const s = svd(Matrix.from(mm.rows, mm.cols, mm.data)).s;
      expect(a.shape).toEqual([mm.rows, mm.cols]);
      a.singularValues.forEach((v, i) => expect(v).toBeCloseTo(s[i]!, 8));
      const total = Array.from(s).reduce((p, v) => p + v * v, 0);
      const gain = s[0]! ** 2 + s[1]! ** 2;
      expect(a.gain).toBeCloseTo(gain, 10);
      expect(a.total).toBeCloseTo(total, 10);
      expect(a.share).toBeCloseTo(gain / total, 8);
      expect(a.gainPerUnit).toBeCloseTo(gain / k, 10);
    }
    expect(res.advice[0]!.gain).toBeGreaterThanOrEqual(res.advice[1]!.gain);
  });

  it('ranks a grouped-conv group by the per-share gains (k/G units per share, each with its own matrix)', async () => {
    const rng = new Rng(23);
    const b = new GraphBuilder(FLOAT);
    b.input('x', ['N', 4, 5, 5]);
    const w = (dims: number[]) => b.init(dims, rng.fillNormal(new Float64Array(dims.reduce((p, v) => p * v, 1))));
    const h1 = b.op1('Tanh', [b.op1('Conv', ['x', w([4, 4, 1, 1])], {}, 'c1')]);
    const h2 = b.op1('Tanh', [b.op1('Conv', [h1, w([4, 2, 3, 3])], { group: 2, pads: [1, 1, 1, 1] }, 'c2')]);
    b.output(b.op1('Gemm', [b.op1('Flatten', [b.op1('GlobalAveragePool', [h2])]), w([4, 3])], {}, 'head'), ['N', 3]);
    const m = loadModel(toBinary(ModelProtoSchema, b.build(13)));
    const N = 8;
    const data = (): ProbeBatch[] => [{ inputs: { type: 'float32', data: Float32Array.from({ length: N * 100 }, () => rng.normal()), dims: [N, 4, 5, 5] }, labels: Array.from({ length: N }, () => rng.int(3)) }];
    const batches = data();
    const res = await adviseGrowth(m, { data: batches, loss: { kind: 'ce-logits' }, k: 4, sites: ['c1'] });
    const ref = await computeGroupStatistics(m, { groups: ['c1'], loss: { kind: 'ce-logits' }, data: batches });
    const shares = ref.statistics.get('c1')!.shares!;
    expect(shares).toHaveLength(2);
    const spectra = shares.map((x) => Array.from(svd(Matrix.from(x.moment.rows, x.moment.cols, x.moment.data)).s));
    const gain = spectra.reduce((p, s) => p + s[0]! ** 2 + s[1]! ** 2, 0);
    const a = res.advice.find((x) => x.site === 'c1')!;
    expect(a.k).toBe(4);
    expect(a.gain).toBeCloseTo(gain, 8);
    expect(a.total).toBeCloseTo(spectra.flat().reduce((p, v) => p + v * v, 0), 8);
  });

  it('refuses a bad k and an unknown site with typed errors', async () => {
    const m = model(new Rng(1));
    const data: ProbeBatch[] = [{ inputs: { type: 'float32', data: new Float32Array(12), dims: [2, 6] }, labels: [0, 1] }];
    await expect(adviseGrowth(m, { data, loss: { kind: 'ce-logits' }, k: 0 })).rejects.toThrow(/k must be a positive integer/);
    await expect(adviseGrowth(m, { data, loss: { kind: 'ce-logits' }, sites: ['nope'] })).rejects.toThrow(/no group named "nope"/);
  });
});
