import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { RELU1, findGrowthSites, setupBackend } from '@gradmax/tfjs';
import { cnnWithBnPool, cnnWithDepthwise, cnnWithGlobalPool, residual } from './models.js';

class Custom extends tfl.layers.Layer {
  static readonly className = 'GradmaxTestCustom';
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.mul(Array.isArray(inputs) ? inputs[0]! : inputs, 2);
  }
}

describe('findGrowthSites', () => {
  beforeAll(async () => {
    await setupBackend('cpu', { log: false });
  });

  it('CNN: conv→(BN, pool)→conv and conv→(activation)→flatten→dense, with the in-between layers and activation', () => {
    const scan = findGrowthSites(cnnWithBnPool());
    expect(scan.sites.map((s) => [s.name, s.kind, s.units, s.between.map((b) => b.role)])).toEqual([
      ['c1->c2', 'conv', 4, ['batchnorm', 'pool']],
      ['c2->out', 'conv-dense', 3, ['activation', 'flatten']],
    ]);
    expect(scan.sites[1]!.activation).toEqual({ name: 'relu1', f0: 0, df0: 1 });
    expect(scan.notGrowable).toEqual([expect.objectContaining({ layer: 'out', reason: expect.stringMatching(/model output/) })]);
  });

  it('depthwise conv and average pooling are channel-wise; the composite activation multiplies derivatives', () => {
    const site = findGrowthSites(cnnWithDepthwise()).sites[0]!;
    expect(site.between.map((b) => b.role)).toEqual(['depthwise', 'pool']);
    expect(site.activation.name).toBe('relu1∘relu1');
    expect(site.activation.df0).toBe(1);
  });

  it('residual block: the inner width is a site; the layers feeding the Add form one channel group', () => {
    const scan = findGrowthSites(residual());
    expect(scan.sites.map((s) => s.name)).toEqual(['a->b']);
    expect(scan.groups.map((g) => [g.name, g.producers.map((m) => m.name), g.joins.map((m) => m.name), g.consumers.map((m) => m.name)])).toEqual([
      ['stem+b->a+out', ['stem', 'b'], ['add'], ['a', 'out']],
    ]);
    expect(scan.notGrowable.map((n) => n.layer)).toEqual(['out']);
  });

  it('LayerNormalization, custom and unknown layers block growth with a reason; a Concatenate makes a group', () => {
    const input = tfl.input({ shape: [4] });
    const d1 = tfl.layers.dense({ kernelInitializer: tfl.initializers.glorotUniform({ seed: 101 }), units: 3, activation: RELU1, name: 'd1' }).apply(input) as tfl.SymbolicTensor;
    const ln = tfl.layers.layerNormalization({ name: 'ln' }).apply(d1) as tfl.SymbolicTensor;
    const d2 = tfl.layers.dense({ kernelInitializer: tfl.initializers.glorotUniform({ seed: 102 }), units: 3, name: 'd2' }).apply(ln) as tfl.SymbolicTensor;
    const custom = new Custom({ name: 'custom' }).apply(d2) as tfl.SymbolicTensor;
    const d3 = tfl.layers.dense({ kernelInitializer: tfl.initializers.glorotUniform({ seed: 103 }), units: 3, name: 'd3' }).apply(custom) as tfl.SymbolicTensor;
    const d4 = tfl.layers.dense({ kernelInitializer: tfl.initializers.glorotUniform({ seed: 104 }), units: 3, name: 'd4' }).apply(d3) as tfl.SymbolicTensor;
    const cat = tfl.layers.concatenate({ name: 'cat' }).apply([d4, input]) as tfl.SymbolicTensor;
    const d5 = tfl.layers.dense({ kernelInitializer: tfl.initializers.glorotUniform({ seed: 105 }), units: 3, activation: 'softmax', name: 'd5' }).apply(cat) as tfl.SymbolicTensor;
    const d6 = tfl.layers.dense({ kernelInitializer: tfl.initializers.glorotUniform({ seed: 106 }), units: 2, name: 'd6' }).apply(tfl.layers.softmax({ name: 'sm' }).apply(d5) as tfl.SymbolicTensor) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: d6 });
    const scan = findGrowthSites(model);
    expect(scan.sites.map((s) => s.name)).toEqual(['d3->d4']);
    // d4's channels pass the Concatenate at offset 0 to d5: a channel group.
    expect(scan.groups.map((g) => [g.name, g.consumers.map((m) => [m.name, m.offset, m.channels])])).toEqual([['d4->d5', [['d5', 0, 7]]]]);
    const reasons = Object.fromEntries(scan.notGrowable.map((n) => [n.layer, n.reason]));
    expect(reasons['d1']).toMatch(/LayerNormalization "ln"/);
    expect(reasons['d2']).toMatch(/custom or unsupported layer/);
    expect(reasons['d5']).toMatch(/activation "softmax"/);
    expect(reasons['d6']).toMatch(/model output/);
  });

  it('conv→global pooling→(dropout)→dense is a conv-dense site', () => {
    const scan = findGrowthSites(cnnWithGlobalPool());
    expect(scan.sites.map((s) => [s.name, s.kind, s.between.map((b) => b.role)])).toEqual([
      ['c1->c2', 'conv', []],
      ['c2->out', 'conv-dense', ['global-pool', 'identity']],
    ]);
  });
});
