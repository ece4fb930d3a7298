/**
 * GradMax statistics of groups with dilated convolutions (producer, consumer and depthwise pass-through), now that
 * the dilated gradients exist (space-to-batch identity): checked against the same network written without dilation
 * (every dilated kernel spread out, zeros between the taps: the same function), whose statistics tfjs computes with
 * its own gradients. A dilated layer's block of M is the spread network's block read at the taps. Then GradMax's
 * gradient from autodiff equals f'(0)·ΩᵀM, and dilated 3-D convolutions are still refused with a typed error.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import '@gradmax/strategies/register';
import { RELU1, collectGroupStatistics, findGrowthSites, grow, type ChannelGroup } from '@gradmax/tfjs';
import { describeEachBackend } from './backends.js';
import { checkGroup } from './group-check.js';
import { logits } from './group-archs.js';
import { oneHotTargets, randomTensor, relativeError } from './helpers.js';

type T = tfl.SymbolicTensor;

/**
 * a (3×3) → b (3×3, dilation 2) → depthwise (3×3, dilation 2 in its config) → c (separable 3×3, dilation 2) → GAP →
 * dense; `spread` writes every dilated kernel as a 5×5 undilated one. `bActivation` is b's activation (relu1 by default).
 */
function chain(spread: boolean, bActivation: string = RELU1): tfl.LayersModel {
  let seed = 300;
  const init = () => ({ kernelInitializer: tfl.initializers.glorotUniform({ seed: seed++ }), biasInitializer: tfl.initializers.randomUniform({ minval: -0.2, maxval: 0.2, seed: seed++ }) });
  const dilation = { kernelSize: spread ? 5 : 3, dilationRate: spread ? 1 : 2, padding: 'same' as const };
  const x0 = tfl.input({ shape: [7, 6, 2], name: 'x' });
  let x = tfl.layers.conv2d({ ...init(), filters: 3, kernelSize: 3, padding: 'same', activation: RELU1, name: 'a' }).apply(x0) as T;
  x = tfl.layers.conv2d({ ...init(), ...dilation, filters: 4, activation: bActivation as 'elu', name: 'b' }).apply(x) as T;
  // tfjs-layers 4.22's DepthwiseConv2D ignores its dilationRate (it calls the op with none), so its spread twin is itself.
  x = tfl.layers.depthwiseConv2d({ depthwiseInitializer: tfl.initializers.glorotUniform({ seed: seed++ }), kernelSize: 3, dilationRate: spread ? 1 : 2, padding: 'same', name: 'dw' }).apply(x) as T;
  x = tfl.layers.separableConv2d({ depthwiseInitializer: tfl.initializers.glorotUniform({ seed: seed++ }), pointwiseInitializer: tfl.initializers.glorotUniform({ seed: seed++ }), ...dilation, filters: 3, activation: RELU1, name: 'c' }).apply(x) as T;
  const gap = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as T;
  return tfl.model({ inputs: x0, outputs: tfl.layers.dense({ ...init(), units: 3, name: 'out' }).apply(gap) as T });
}

/** Copies every weight of `from` into `to`, spreading 3×3 kernels into 5×5 ones (dilation 2). */
function copySpread(from: tfl.LayersModel, to: tfl.LayersModel): void {
  for (const layer of from.layers) {
    const target = to.getLayer(layer.name);
    const weights = layer.getWeights().map((w, i) => {
      const targetShape = target.weights[i]!.shape as number[];
      if (w.shape.join() === targetShape.join()) return tf.clone(w);
      const [kh, kw, a, b] = w.shape as [number, number, number, number];
      const data = w.dataSync();
      const out = new Float32Array(targetShape.reduce((p, d) => p * d, 1));
      for (let r = 0; r < kh; r++) for (let c = 0; c < kw; c++) for (let i2 = 0; i2 < a * b; i2++) out[((2 * r) * targetShape[1]! + 2 * c) * a * b + i2] = data[(r * kw + c) * a * b + i2]!;
      return tf.tensor(out, targetShape);
    });
    target.setWeights(weights);
    tf.dispose(weights);
  }
}

function group(model: tfl.LayersModel, name: string): ChannelGroup {
  const g = findGrowthSites(model).groups.find((x) => x.name === name);
  expect(g, name).toBeDefined();
  return g!;
}

describeEachBackend('GradMax statistics through dilated convolutions', () => {
  it('the spread network computes the same function (the reference is valid)', () => {
    const dilated = chain(false);
    const spread = chain(true);
    copySpread(dilated, spread);
    const xs = randomTensor([3, 7, 6, 2], 1);
    const a = tf.tidy(() => (dilated.predict(xs) as tf.Tensor).dataSync());
    const b = tf.tidy(() => (spread.predict(xs) as tf.Tensor).dataSync());
    expect(relativeError(a, b)).toBeLessThan(1e-5);
    tf.dispose(xs);
    dilated.dispose();
    spread.dispose();
  });

  it('dilated consumer (a->b), dilated producer with dilated depthwise and separable layers (b->c): M equals the spread network\'s M at the taps', () => {
    const dilated = chain(false);
    const spread = chain(true);
    copySpread(dilated, spread);
    const xs = randomTensor([4, 7, 6, 2], 2);
    const ys = oneHotTargets(4, 3, 3);
    const before = tf.memory().numTensors;
    const consumer = collectGroupStatistics(dilated, group(dilated, 'a->b'), { xs, ys }, { loss: logits }).snapshot().moment;
    const producer = collectGroupStatistics(dilated, group(dilated, 'b->c'), { xs, ys }, { loss: logits }).snapshot().moment;
    expect(tf.memory().numTensors).toBe(before);
    // The spread network has the same layers (names, classes, channels), so the same group descriptions apply to it
    // (there a->b is an ordinary layer pair; its virtual-unit statistics are still defined and exact).
    const refConsumer = collectGroupStatistics(spread, group(dilated, 'a->b'), { xs, ys }, { loss: logits, method: 'virtual' }).snapshot().moment;
    const refProducer = collectGroupStatistics(spread, group(dilated, 'b->c'), { xs, ys }, { loss: logits, method: 'virtual' }).snapshot().moment;
    // a->b: rows are b's taps (kr, kc) then output channel o; the spread kernel holds tap (kr, kc) at (2kr, 2kc).
    const rows = Array.from({ length: consumer.rows }, (_, r) => {
      const o = r % 4;
      const t = Math.floor(r / 4);
      return ((2 * Math.floor(t / 3)) * 5 + 2 * (t % 3)) * 4 + o;
    });
    const expectedConsumer = rows.flatMap((r) => Array.from(refConsumer.row(r)));
    expect([consumer.rows, consumer.cols, refConsumer.rows]).toEqual([36, 18, 100]);
    expect(relativeError(consumer.data, expectedConsumer)).toBeLessThan(1e-5);
    // b->c: columns are b's taps then input channel ci (3 of them).
    const cols = Array.from({ length: producer.cols }, (_, i) => {
      const ci = i % 3;
      const t = Math.floor(i / 3);
      return ((2 * Math.floor(t / 3)) * 5 + 2 * (t % 3)) * 3 + ci;
    });
    const expectedProducer = Array.from({ length: producer.rows }, (_, r) => cols.map((c) => refProducer.get(r, c))).flat();
    expect([producer.cols, refProducer.cols]).toEqual([27, 75]);
    expect(relativeError(producer.data, expectedProducer)).toBeLessThan(1e-5);
    tf.dispose([xs, ys]);
    dilated.dispose();
    spread.dispose();
  });

  it("GradMax's gradient from autodiff equals f'(0)·ΩᵀM for the dilated groups", () => {
    // tfjs-layers runs Conv2D through tf.fused.conv2d, whose own gradient refuses dilations when the activation is
    // linear (as with relu1, applied separately); with ELU fused, tfjs records unfused ops and the dilated gradient
    // applies, so the autodiff side of this check can run.
    const model = chain(false, 'elu');
    const xs = randomTensor([4, 7, 6, 2], 4);
    const ys = oneHotTargets(4, 3, 5);
    for (const name of ['a->b', 'b->c']) checkGroup(model, name, xs, ys, logits);
    model.dispose();
    tf.dispose([xs, ys]);
  });

  it('Conv1D: a dilated consumer and producer have the spread network\'s M at the taps, and GradMax\'s gradient from autodiff equals f\'(0)·ΩᵀM', () => {
    const build = (spread: boolean) => {
      let seed = 400;
      const init = () => ({ kernelInitializer: tfl.initializers.glorotUniform({ seed: seed++ }), biasInitializer: tfl.initializers.randomUniform({ minval: -0.2, maxval: 0.2, seed: seed++ }) });
      const x0 = tfl.input({ shape: [11, 2], name: 'x' });
      let x = tfl.layers.conv1d({ ...init(), filters: 3, kernelSize: 3, padding: 'same', activation: RELU1, name: 'a' }).apply(x0) as T;
      x = tfl.layers.conv1d({ ...init(), filters: 4, kernelSize: spread ? 5 : 3, dilationRate: spread ? 1 : 2, padding: 'same', activation: RELU1, name: 'b' }).apply(x) as T;
      x = tfl.layers.conv1d({ ...init(), filters: 3, kernelSize: 3, padding: 'valid', activation: RELU1, name: 'c' }).apply(x) as T;
      const gap = tfl.layers.globalAveragePooling1d({ name: 'gap' }).apply(x) as T;
      return tfl.model({ inputs: x0, outputs: tfl.layers.dense({ ...init(), units: 3, name: 'out' }).apply(gap) as T });
    };
    const dilated = build(false);
    const spread = build(true);
    for (const layer of dilated.layers) {
      const weights = layer.getWeights().map((w, i) => {
        const shape = spread.getLayer(layer.name).weights[i]!.shape as number[];
        if (w.shape.join() === shape.join()) return tf.clone(w);
        const [k, inner] = [w.shape[0]!, w.size / w.shape[0]!];
        const data = w.dataSync();
        const out = new Float32Array(shape.reduce((p, d) => p * d, 1));
        for (let t = 0; t < k; t++) for (let i = 0; i < inner; i++) out[2 * t * inner + i] = data[t * inner + i]!;
        return tf.tensor(out, shape);
      });
      spread.getLayer(layer.name).setWeights(weights);
      tf.dispose(weights);
    }
    const xs = randomTensor([3, 11, 2], 9);
    const ys = oneHotTargets(3, 3, 10);
    const m = (model: tfl.LayersModel, name: string) => collectGroupStatistics(model, group(dilated, name), { xs, ys }, { loss: logits, method: 'virtual' }).snapshot().moment;
    const consumer = m(dilated, 'a->b');
    const refConsumer = m(spread, 'a->b');
    // a->b rows: b's tap t then output channel o (4); b->c columns: b's tap t then input channel (3).
    expect(relativeError(consumer.data, Array.from({ length: consumer.rows }, (_, r) => Array.from(refConsumer.row(2 * Math.floor(r / 4) * 4 + (r % 4)))).flat())).toBeLessThan(1e-5);
    const producer = m(dilated, 'b->c');
    const refProducer = m(spread, 'b->c');
    const cols = Array.from({ length: producer.cols }, (_, i) => 2 * Math.floor(i / 3) * 3 + (i % 3));
    expect(relativeError(producer.data, Array.from({ length: producer.rows }, (_, r) => cols.map((c) => refProducer.get(r, c))).flat())).toBeLessThan(1e-5);
    // tfjs-layers runs Conv1D unfused, so autodiff through model.predict takes the dilated gradient directly.
    for (const name of ['a->b', 'b->c']) checkGroup(dilated, name, xs, ys, logits);
    tf.dispose([xs, ys]);
    dilated.dispose();
    spread.dispose();
  });

  it('dilated 3-D convolutions are still refused for GradMax with a typed error (statistics-free strategies grow them)', () => {
    const x0 = tfl.input({ shape: [4, 4, 4, 1] });
    let x = tfl.layers.conv3d({ filters: 2, kernelSize: 2, dilationRate: 2, padding: 'same', activation: RELU1, name: 'd3' }).apply(x0) as T;
    x = tfl.layers.conv3d({ filters: 2, kernelSize: 2, activation: RELU1, name: 'n3' }).apply(x) as T;
    const model = tfl.model({ inputs: x0, outputs: tfl.layers.dense({ units: 2, name: 'o' }).apply(tfl.layers.flatten().apply(x) as T) as T });
    const xs = randomTensor([2, 4, 4, 4, 1], 7);
    const ys = oneHotTargets(2, 2, 8);
    expect(() => grow(model, { site: 'd3->n3', units: 1, strategy: 'gradmax', batch: { xs, ys }, loss: logits })).toThrow(/layer "d3": tfjs 4.22 has no gradient for dilated 3-D or transposed convolutions.*random/);
    grow(model, { site: 'd3->n3', units: 1, strategy: 'randomOutgoingZero', seed: 1 });
    // NORTH reads input samples only (no gradient), so it grows the dilated 3-D conv group too.
    grow(model, { site: 'd3->n3', units: 1, strategy: 'north', batch: { xs, ys }, seed: 2 });
    expect(findGrowthSites(model).groups.find((g) => g.producers[0]!.name === 'd3')!.units).toBe(4);
    model.dispose();
    tf.dispose([xs, ys]);
  });
}, ['cpu', 'wasm']);
