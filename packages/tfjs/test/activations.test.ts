import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import '@gradmax/strategies/register';
import { RELU1, findGrowthSites, grow, knownActivations, relu1Layer, scalarActivation, setupBackend } from '@gradmax/tfjs';
import { maxAbsDiff, oneHotTargets, outputOf, randomTensor } from './helpers.js';

type LayerFactory = () => tfl.layers.Layer;
const act = (activation: string): LayerFactory => () => tfl.layers.activation({ activation: activation as 'relu' });

/** For every table entry: the layer tfjs-layers runs for it, and the parameter it is checked with. */
const CASES: Record<string, { layer: LayerFactory; p?: number; noGradient?: boolean }[]> = {
  linear: [{ layer: act('linear') }],
  relu: [{ layer: act('relu') }, { layer: () => tfl.layers.reLU() }],
  relu1: [{ layer: act('relu1') }, { layer: () => relu1Layer() }],
  relu6: [{ layer: act('relu6') }],
  reluMax: [{ layer: () => tfl.layers.reLU({ maxValue: 6 }), p: 6 }, { layer: () => tfl.layers.reLU({ maxValue: 1.5 }), p: 1.5 }],
  relu1Max: [{ layer: () => relu1Layer({ maxValue: 6 }), p: 6 }],
  thresholdedReLU: [{ layer: () => tfl.layers.thresholdedReLU({ theta: 1 }), p: 1, noGradient: true }, { layer: () => tfl.layers.thresholdedReLU({ theta: -0.5 }), p: -0.5, noGradient: true }],
  leakyReLU: [{ layer: () => tfl.layers.leakyReLU({ alpha: 0.2 }), p: 0.2 }],
  prelu: [{ layer: () => tfl.layers.prelu({ alphaInitializer: tfl.initializers.constant({ value: 0.25 }) }), p: 0.25 }],
  elu: [{ layer: act('elu'), p: 1 }, { layer: () => tfl.layers.elu(), p: 1 }],
  selu: [{ layer: act('selu') }],
  tanh: [{ layer: act('tanh') }],
  sigmoid: [{ layer: act('sigmoid') }],
  hardSigmoid: [{ layer: act('hardSigmoid') }],
  softsign: [{ layer: act('softsign') }],
  softplus: [{ layer: act('softplus') }],
  swish: [{ layer: act('swish') }],
  mish: [{ layer: act('mish') }],
  gelu: [{ layer: act('gelu') }],
  gelu_new: [{ layer: act('gelu_new') }],
};

const POINTS = [-3, -0.7, -1e-3, 0, 1e-3, 0.4, 2.2, 5, 7.5];

describe('activation table: f, f\'(v), f(0) and f\'(0) agree with tfjs autodiff of the layer tfjs runs', () => {
  beforeAll(async () => {
    await setupBackend('cpu', { log: false });
  });

  it('every table entry has a case (and every case an entry)', () => {
    expect(Object.keys(CASES).sort()).toEqual(knownActivations().sort());
  });

  for (const [name, cases] of Object.entries(CASES)) {
    it(name, () => {
      for (const c of cases) {
        const entry = scalarActivation(name, c.p)!;
        expect(entry).toBeDefined();
        const layer = c.layer();
        const x = tf.tensor2d(POINTS, [POINTS.length, 1]);
        const y = tf.tidy(() => (layer.apply(x) as tf.Tensor).dataSync());
        POINTS.forEach((v, i) => expect(entry.f(v)).toBeCloseTo(y[i]!, 5));
        const at0 = POINTS.indexOf(0);
        expect(entry.f0).toBeCloseTo(y[at0]!, 6);
        if (c.noGradient) {
          // tfjs 4.22 has no gradient for this layer (its Greater op has none): checked against finite differences
          // away from the kink, and training such a model fails in tfjs itself.
          expect(() => tf.tidy(() => tf.grad((t: tf.Tensor) => tf.sum(layer.apply(t) as tf.Tensor))(x))).toThrow(/gradient function not found/);
          for (const v of POINTS.filter((p) => Math.abs(p - (c.p ?? 0)) > 1e-2)) expect(entry.df(v)).toBeCloseTo((entry.f(v + 1e-4) - entry.f(v - 1e-4)) / 2e-4, 4);
          expect(entry.df0).toBe(entry.df(0));
        } else {
          const dy = tf.tidy(() => tf.grad((t: tf.Tensor) => tf.sum(layer.apply(t) as tf.Tensor))(x).dataSync());
          // At the kinks (0, maxValue) too, as tfjs computes it.
          POINTS.forEach((v, i) => expect(entry.df(v)).toBeCloseTo(dy[i]!, 4));
          expect(entry.df0).toBeCloseTo(dy[at0]!, 5);
        }
        layer.dispose();
        x.dispose();
      }
    });
  }
});

describe('activations at a site', () => {
  beforeAll(async () => {
    await setupBackend('cpu', { log: false });
  });

  const seeded = (seed: number) => ({ kernelInitializer: tfl.initializers.glorotUniform({ seed }) });
  function mlp(activation: string | tfl.layers.Layer): tfl.LayersModel {
    const layers: tfl.layers.Layer[] = [tfl.layers.dense({ ...seeded(1), units: 4, inputShape: [3], activation: (typeof activation === 'string' ? activation : 'linear') as 'relu', name: 'a' })];
    if (typeof activation !== 'string') layers.push(activation);
    layers.push(tfl.layers.dense({ ...seeded(2), units: 3, activation: 'softmax', name: 'b' }));
    return tfl.sequential({ layers });
  }

  for (const activation of ['sigmoid', 'softplus', 'hardSigmoid']) {
    it(`GradMax (and random) on a ${activation} layer (f(0) ≠ 0) refuse with the layer, the activation and strategies that work; those keep the function`, () => {
      const model = mlp(activation);
      const xs = randomTensor([6, 3], 1);
      const ys = oneHotTargets(6, 3, 2);
      const before = outputOf(model, xs);
      const site = findGrowthSites(model).sites[0]!;
      expect(site.activation.f0).not.toBe(0);
      for (const strategy of ['gradmax', 'random']) {
        expect(() => grow(model, { site: 'a->b', units: 2, strategy, batch: { xs, ys }, loss: 'categoricalCrossentropy' })).toThrow(new RegExp(`layer "a".*"${activation}" with f\\(0\\) = .*randomOutgoingZero.*net2net`));
      }
      expect(findGrowthSites(model).sites[0]!.units).toBe(4);
      expect(maxAbsDiff(outputOf(model, xs), before)).toBe(0);
      for (const strategy of ['randomOutgoingZero', 'net2net', 'allZero']) grow(model, { site: 'a->b', units: 1, strategy, batch: { xs, ys }, loss: 'categoricalCrossentropy', seed: 3 });
      expect(maxAbsDiff(outputOf(model, xs), before)).toBeLessThan(1e-6);
      model.dispose();
      tf.dispose([xs, ys]);
    });
  }

  it("ReLU6 (ReLU with maxValue) is a site with f'(0) = 0: GradMax stops with the relu1 fix; relu1Layer({ maxValue: 6 }) grows, saves and loads", async () => {
    const relu6 = mlp(tfl.layers.reLU({ maxValue: 6, name: 'r6' }));
    const site = findGrowthSites(relu6).sites[0]!;
    expect(site.activation).toEqual({ name: 'reluMax(6)', f0: 0, df0: 0 });
    const xs = randomTensor([6, 3], 1);
    const ys = oneHotTargets(6, 3, 2);
    expect(() => grow(relu6, { site: 'a->b', units: 1, strategy: 'gradmax', batch: { xs, ys }, loss: 'categoricalCrossentropy' })).toThrow(/f'\(0\) = 0.*relu1/);
    const fixed = mlp(relu1Layer({ maxValue: 6, name: 'r6' }));
    expect(findGrowthSites(fixed).sites[0]!.activation).toEqual({ name: 'relu1Max(6)', f0: 0, df0: 1 });
    const before = outputOf(fixed, xs);
    grow(fixed, { site: 'a->b', units: 2, strategy: 'gradmax', batch: { xs, ys }, loss: 'categoricalCrossentropy' });
    expect(maxAbsDiff(outputOf(fixed, xs), before)).toBeLessThan(1e-6);
    let artifacts: tf.io.ModelArtifacts | undefined;
    await fixed.save(tf.io.withSaveHandler(async (a) => ((artifacts = a), { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } })));
    const loaded = await tfl.loadLayersModel(tf.io.fromMemory(artifacts!));
    expect(JSON.stringify(artifacts!.modelTopology)).toMatch(/"max_?[vV]alue":6/);
    expect(maxAbsDiff(outputOf(loaded, xs), before)).toBeLessThan(1e-6);
    [relu6, fixed, loaded].forEach((m) => m.dispose());
    tf.dispose([xs, ys]);
  });

  it('LeakyReLU, ELU, SELU, swish, GELU and mish sites carry their declared f\'(0) and grow with GradMax', () => {
    const cases: [string | tfl.layers.Layer, number][] = [
      [tfl.layers.leakyReLU({ alpha: 0.1 }), 0.1],
      [tfl.layers.elu(), 1],
      ['selu', 1.0507009873554805 * 1.6732632423543772],
      ['swish', 0.5],
      ['gelu', 0.5],
      ['mish', Math.tanh(Math.LN2)],
      [RELU1, 1],
    ];
    for (const [activation, df0] of cases) {
      const model = mlp(activation);
      const site = findGrowthSites(model).sites[0]!;
      expect(site.activation.df0).toBeCloseTo(df0, 12);
      expect(site.activation.f0).toBe(0);
      const xs = randomTensor([6, 3], 1);
      const ys = oneHotTargets(6, 3, 2);
      const before = outputOf(model, xs);
      grow(model, { site: 'a->b', units: 2, strategy: 'gradmax', batch: { xs, ys }, loss: 'categoricalCrossentropy' });
      expect(maxAbsDiff(outputOf(model, xs), before)).toBeLessThan(1e-6);
      model.dispose();
      tf.dispose([xs, ys]);
    }
  });
});
