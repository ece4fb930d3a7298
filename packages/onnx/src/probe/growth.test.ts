/**
 * End to end on the library API: statistics from the probe → GradMax → widen; one finite-difference check that the
 * new incoming weights' gradient is the predicted f'(0)·Ωᵀ M. Plus: an op without a rule on the path from a site to
 * the loss is a named error, and the same op off that path is fine.
 */
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { Rng, UnsupportedError, gradmax } from '@gradmax/core';
import { GraphBuilder } from './__tests__/graph.js';
import { DOUBLE, FLOAT } from './__tests__/fd.js';
import { ExecutionProviderError, OnnxModel, findSites, growModel, runModel } from '../index.js';
import { MissingGradientRuleError, buildProbe, computeStatistics } from './index.js';

function mlp(dtype: number, seed: number, tail?: (b: GraphBuilder, z: string) => string) {
  const rng = new Rng(seed);
  const [n0, n1, n2] = [5, 4, 3];
  const b = new GraphBuilder(dtype);
  b.input('x', ['N', n0]);
  const w1 = b.init([n0, n1], rng.fillNormal(new Float64Array(n0 * n1)), 'fc1_w');
  const b1 = b.init([n1], rng.fillNormal(new Float64Array(n1)), 'fc1_b');
  const a1 = b.op1('Relu', [b.op1('Gemm', ['x', w1, b1], {}, 'fc1')]);
  const w2 = b.init([n1, n2], rng.fillNormal(new Float64Array(n1 * n2)), 'fc2_w');
  let z = b.op1('Gemm', [a1, w2], {}, 'fc2');
  if (tail) z = tail(b, z);
  b.output(z, ['N', n2]);
  return { model: b.build(), dims: [n0, n1, n2] as const };
}

function meanCe(logits: ArrayLike<number>, labels: number[], c: number): number {
  let loss = 0;
  for (let i = 0; i < labels.length; i++) {
    let max = -Infinity;
    for (let j = 0; j < c; j++) max = Math.max(max, logits[i * c + j]!);
    let s = 0;
    for (let j = 0; j < c; j++) s += Math.exp(logits[i * c + j]! - max);
    loss += Math.log(s) + max - logits[i * c + labels[i]!]!;
  }
  return loss / labels.length;
}

describe('GradMax growth from probe statistics', () => {
  it('the new incoming weights get the predicted gradient f′(0)·Ωᵀ M (finite differences, float64)', async () => {
    const { model, dims } = mlp(DOUBLE, 3);
    const [n0, n1, n2] = dims;
    const ir = new OnnxModel(model);
    const site = findSites(ir).find((s) => s.growable && s.current === 'fc1')!;
    expect(site).toBeDefined();
    const rng = new Rng(4);
    const N = 40;
    // Non-negative inputs (like pixels): a forward difference then sees the ReLU's right derivative 1 = f′(0) of relu1.
    const x = Float64Array.from({ length: N * n0 }, () => rng.uniform());
    const labels = Array.from({ length: N }, () => rng.int(n2));
    const res = await computeStatistics(ir, {
      sites: [site.name],
      loss: { kind: 'ce-logits' },
      data: [{ inputs: new ort.Tensor('float64', x, [N, n0]), labels }],
      batchSize: 16,
    });
    const stats = res.statistics.get(site.name)!.snapshot();
    const k = 2;
    const [grown] = growModel(ir, [{ site: site.name, count: k, statistics: stats }], { strategy: gradmax(), seed: 1 });
    const units = grown!.newUnits;
    expect(Array.from(units.incoming.data).every((v) => v === 0)).toBe(true);
    const df0 = (site.activation?.df0 ?? NaN);
    expect(df0).toBe(1);
    // Predicted: f'(0) · Ωᵀ M  ([k × n0]).
    const predicted = new Float64Array(k * n0);
    for (let j = 0; j < k; j++) for (let i = 0; i < n0; i++) {
      let s = 0;
      for (let r = 0; r < n2; r++) s += units.outgoing.get(r, j) * stats.moment.get(r, i);
      predicted[j * n0 + i] = df0 * s;
    }
    // Finite differences on the widened model's fc1 weight ([n0, n1 + k], new units are the last k columns).
    const w = ir.weight('fc1_w')!;
    const base = ir.readTensor(w.tensor);
    expect(base.dims).toEqual([n0, n1 + k]);
    const lossAt = async (): Promise<number> => {
      const out = await runModel(new OnnxModel(ir.proto), { x: { type: 'float64', data: x, dims: [N, n0] } });
      return meanCe([...out.values()][0]!.data, labels, n2);
    };
    const l0 = await lossAt();
    const eps = 1e-6;
    const numeric = new Float64Array(k * n0);
    for (let j = 0; j < k; j++) for (let i = 0; i < n0; i++) {
      const buf = ir.readTensor(w.tensor);
      buf.set(i * (n1 + k) + n1 + j, eps);
      ir.writeTensor(w.tensor, buf);
      numeric[j * n0 + i] = ((await lossAt()) - l0) / eps;
      ir.writeTensor(w.tensor, base);
    }
    let num = 0;
    let den = 0;
    for (let q = 0; q < predicted.length; q++) {
      num += (numeric[q]! - predicted[q]!) ** 2;
      den += predicted[q]! ** 2;
    }
    expect(Math.sqrt(den)).toBeGreaterThan(1e-3);
    expect(Math.sqrt(num / den)).toBeLessThan(1e-4);
  });
});

describe('ops without a gradient rule', () => {
  // Sin: an op without a rule (Erf, used here before, has one now).
  const sinTail = (b: GraphBuilder, z: string) => b.op1('Sin', [z], {}, 'the_sin');

  it('on the path from the site to the loss: MissingGradientRuleError naming the node and op type', async () => {
    const { model } = mlp(FLOAT, 5, sinTail);
    const err = await buildProbe(model, { sites: [{ current: 'fc1', next: 'fc2' }], loss: { kind: 'ce-logits' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingGradientRuleError);
    expect(err).toBeInstanceOf(UnsupportedError);
    expect((err as MissingGradientRuleError).details).toMatchObject({ node: 'the_sin', opType: 'Sin', sites: ['fc1->fc2'] });
    expect((err as Error).message).toMatch(/the_sin.*Sin/);
  });

  it('a custom-domain op on the path is named with its domain', async () => {
    const { model } = mlp(FLOAT, 5, (b, z) => {
      const out = b.op1('Erf', [z], {}, 'custom');
      b.nodes.at(-1)!.domain = 'com.example';
      b.nodes.at(-1)!.opType = 'Mystery';
      return out;
    });
    const err = await buildProbe(model, { sites: [{ current: 'fc1', next: 'fc2' }], loss: { kind: 'ce-logits' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingGradientRuleError);
    expect((err as Error).message).toContain('com.example::Mystery');
  });

  it('off the path (before the site and on a side output) it works', async () => {
    const rng = new Rng(9);
    const b = new GraphBuilder(FLOAT);
    b.input('x', ['N', 5]);
    const e = b.op1('Erf', ['x'], {}, 'erf_before');
    const w1 = b.init([5, 4], rng.fillNormal(new Float64Array(20)));
    const a1 = b.op1('Relu', [b.op1('Gemm', [e, w1], {}, 'fc1')]);
    const w2 = b.init([4, 3], rng.fillNormal(new Float64Array(12)));
    const z = b.op1('Gemm', [a1, w2], {}, 'fc2');
    b.output(z, ['N', 3]);
    b.output(b.op1('Erf', [z], {}, 'erf_side'));
    const model = b.build();
    const res = await computeStatistics(model, {
      sites: [{ current: 'fc1', next: 'fc2' }],
      loss: { kind: 'ce-logits', output: z },
      data: [{ inputs: new ort.Tensor('float32', Float32Array.from({ length: 10 }, () => rng.normal()), [2, 5]), labels: [0, 2] }],
    });
    const m = res.statistics.get('fc1->fc2')!.snapshot().moment;
    expect([m.rows, m.cols]).toEqual([3, 5]);
    expect(Array.from(m.data).some((v) => v !== 0)).toBe(true);
  });
});

describe('execution providers', () => {
  it('an unknown or unavailable provider is a clear ExecutionProviderError', async () => {
    const { model } = mlp(FLOAT, 2);
    const data = [{ inputs: new ort.Tensor('float32', new Float32Array(10), [2, 5]), labels: [0, 1] }];
    for (const ep of ['no-such-provider', 'cuda']) {
      const err = await computeStatistics(model, { sites: [{ current: 'fc1', next: 'fc2' }], loss: { kind: 'ce-logits' }, data, executionProvider: ep }).catch((e: unknown) => e);
      expect(err, ep).toBeInstanceOf(ExecutionProviderError);
      expect((err as Error).message).toContain(`"${ep}"`);
    }
  });
});
