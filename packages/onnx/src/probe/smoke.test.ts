import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { Rng } from '@gradmax/core';
import { GraphBuilder } from './__tests__/graph.js';
import { buildProbe, computeStatistics } from './index.js';

describe('smoke', () => {
  it('mlp', async () => {
    const rng = new Rng(1);
    const b = new GraphBuilder();
    const x = b.input('x', ['N', 4]);
    const w1 = b.init([4, 8], Array.from({ length: 32 }, () => rng.normal()));
    const h = b.op1('Gemm', [x, w1], {}, 'fc1');
    const r = b.op1('Relu', [h]);
    const w2 = b.init([8, 3], Array.from({ length: 24 }, () => rng.normal()));
    const z = b.op1('Gemm', [r, w2], {}, 'fc2');
    b.output(z, ['N', 3]);
    const model = b.build();
    const probe = await buildProbe(model, { sites: [{ current: 'fc1', next: 'fc2' }], loss: { kind: 'ce-logits' } });
    console.log(probe.outputs, probe.model.graph!.node.map((n) => n.opType).join(' '));
    const res = await computeStatistics(model, {
      sites: [{ current: 'fc1', next: 'fc2' }],
      loss: { kind: 'ce-logits' },
      data: [{ inputs: new ort.Tensor('float32', Float32Array.from({ length: 20 }, () => rng.normal()), [5, 4]), labels: [0, 1, 2, 0, 1] }],
    });
    console.log(res.meanLoss, res.statistics.get('fc1->fc2')!.snapshot().moment.toArray());
    expect(res.examples).toBe(5);
  });
});
