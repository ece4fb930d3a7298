import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { Matrix, Rng, createStrategy, gradmax } from '@gradmax/core';
import { GrowableMlp, glorotMlp, growMlpSite, setupBackend, strategyNames } from '@gradmax/harness';

function data(rng: Rng, n: number, d: number, o: number) {
  const x = new Float32Array(n * d).map(() => rng.normal());
  const y = new Float32Array(n * o).map(() => rng.normal());
  return { x: tf.tensor2d(x, [n, d]), y: tf.tensor2d(y, [n, o]), xs: x, ys: y };
}

/** Float64 forward/backward of a 2-layer relu1 MLP without bias, written out by hand (independent of tfjs). */
function naiveMoment(w1: Float32Array, w2: Float32Array, xs: Float32Array, ys: Float32Array, n: number, d: number, h: number, o: number): Matrix {
  const m = new Matrix(o, d);
  for (let b = 0; b < n; b++) {
    const a = new Float64Array(h);
    for (let j = 0; j < h; j++) {
      let s = 0;
      for (let i = 0; i < d; i++) s += xs[b * d + i]! * w1[i * h + j]!;
      a[j] = Math.max(s, 0);
    }
    for (let k = 0; k < o; k++) {
      let z = 0;
      for (let j = 0; j < h; j++) z += a[j]! * w2[j * o + k]!;
      const g = (2 / o) * (z - ys[b * o + k]!); // gradient of example b's own mean-over-outputs squared error
      for (let i = 0; i < d; i++) m.data[k * d + i] += (g * xs[b * d + i]!) / n;
    }
  }
  return m;
}

describe('GrowableMlp', () => {
  beforeAll(async () => {
    await setupBackend('wasm');
  });
  afterAll(() => undefined);

  it('Nesterov momentum with a changing learning rate matches tfjs\'s own MomentumOptimizer(useNesterov)', () => {
    const rng = new Rng(3);
    const layers = glorotMlp([5, 4, 3], rng, true);
    const { x, y } = data(rng, 8, 5, 3);
    const ours = new GrowableMlp(tf, layers, { loss: 'mse', momentum: 0.9, nesterov: true });
    const theirs = new GrowableMlp(tf, layers, { loss: 'mse' });
    const vars = (m: GrowableMlp) => (m as unknown as { trainable(): tf.Variable[] }).trainable();
    const rates = [0.1, 0.07, 0.03, 0.01];
    const opt = tf.train.momentum(rates[0]!, 0.9, true);
    for (const lr of rates) {
      ours.step(x, y, lr).dispose();
      opt.setLearningRate(lr);
      const loss = opt.minimize(() => theirs.lossOf(theirs.forward(x), y), true, vars(theirs));
      loss?.dispose();
    }
    const a = vars(ours).map((v) => v.dataSync());
    const b = vars(theirs).map((v) => v.dataSync());
    a.forEach((arr, i) => arr.forEach((v, j) => expect(v).toBeCloseTo(b[i]![j]!, 5)));
    opt.dispose();
    ours.dispose();
    theirs.dispose();
    tf.dispose([x, y]);
  });

  it('computes the growth matrix M = E[g hᵀ] like an independent float64 computation', () => {
    const rng = new Rng(3);
    const [n, d, h, o] = [64, 6, 4, 3];
    const layers = glorotMlp([d, h, o], rng.fork('w'), false);
    const model = new GrowableMlp(tf, layers, { loss: 'mse' });
    const { x, y, xs, ys } = data(rng.fork('d'), n, d, o);
    const stats = model.statistics(0, x, y, true);
    const ref = naiveMoment(layers[0]!.kernel, layers[1]!.kernel, xs, ys, n, d, h, o);
    expect(stats.moment.shape).toEqual([o, d]);
    for (let i = 0; i < ref.data.length; i++) expect(stats.moment.data[i]).toBeCloseTo(ref.data[i]!, 5);
    // Retained samples reproduce the moment: weight · gᵀ h.
    const { h: hs, g: gs, weight } = stats.samples!;
    for (let k = 0; k < o; k++)
      for (let i = 0; i < d; i++) {
        let s = 0;
        for (let b = 0; b < n; b++) s += gs.get(b, k) * hs.get(b, i);
        expect(weight * s).toBeCloseTo(ref.get(k, i), 5);
      }
    model.dispose();
    x.dispose();
    y.dispose();
  });

  it('GradMax growth preserves the function and the new-weight gradient equals Ωᵀ M (autodiff vs linear algebra)', () => {
    const rng = new Rng(11);
    const [n, d, h, o] = [50, 5, 3, 4];
    const model = new GrowableMlp(tf, glorotMlp([d, h, h, o], rng.fork('w'), true), { loss: 'mse', momentum: 0.9 });
    const { x, y } = data(rng.fork('d'), n, d, o);
    for (let i = 0; i < 3; i++) model.step(x, y, 0.05).dispose();
    const before = tf.tidy(() => model.forward(x)).dataSync().slice();
    const stats = model.statistics(1, x, y, false);
    const strategy = gradmax({ scale: 1 });
    const tensors = tf.memory().numTensors;
    const rec = growMlpSite(model, 1, strategy, 2, x, y, rng.fork('g'), 3);
    expect(tf.memory().numTensors).toBe(tensors);
    const after = tf.tidy(() => model.forward(x)).dataSync();
    expect(Array.from(after)).toEqual(Array.from(before));
    expect(rec.lossAfter).toBe(rec.lossBefore);
    expect(model.hiddenWidths).toEqual([3, 5]);
    // Ω = the new rows of the next kernel (transposed to [fanOut × 2]); predicted gradient = Ωᵀ M (f'(0) = 1).
    const site = model.growthSite(1);
    const omega = new Matrix(o, 2);
    for (let k = 0; k < o; k++) for (let j = 0; j < 2; j++) omega.set(k, j, site.outgoing.get(k, 3 + j));
    let sq = 0;
    for (let j = 0; j < 2; j++)
      for (let i = 0; i < h; i++) {
        let s = 0;
        for (let k = 0; k < o; k++) s += omega.get(k, j) * stats.moment.get(k, i);
        sq += s * s;
      }
    expect(rec.newIncomingGradNorm).toBeGreaterThan(0);
    expect(rec.newIncomingGradNorm).toBeCloseTo(Math.sqrt(sq), 5);
    // Zero incoming weights and biases: the new units output 0, so their outgoing weights get no gradient.
    expect(rec.newOutgoingGradNorm).toBe(0);
    expect(rec.newWeightGradNorm).toBe(rec.newIncomingGradNorm);
    // Training continues with padded momentum buffers.
    const l = model.step(x, y, 0.05);
    expect(Number.isFinite(l.dataSync()[0]!)).toBe(true);
    l.dispose();
    model.dispose();
    x.dispose();
    y.dispose();
  });

  it('applies every registered strategy without leaking tensors, and restores snapshots exactly', () => {
    const rng = new Rng(5);
    const [n, d, h, o] = [40, 4, 3, 3];
    const { x, y } = data(rng.fork('d'), n, d, o);
    const start = tf.memory().numTensors;
    for (const name of strategyNames()) {
      const model = new GrowableMlp(tf, glorotMlp([d, h, o], rng.fork(name), true), { loss: 'softmaxCrossEntropy', momentum: 0.5 });
      model.step(x, y, 0.1).dispose(); // warm-up: creates the kept learning-rate and momentum scalars
      const snap = model.snapshot();
      const t0 = tf.memory().numTensors;
      const rec = growMlpSite(model, 0, createStrategy(name), 2, x, y, rng.fork(`g${name}`), 0);
      expect(rec.unitsAfter, name).toBe(h + 2);
      model.step(x, y, 0.1).dispose();
      expect(tf.memory().numTensors, name).toBe(t0);
      model.restore(snap);
      expect(model.hiddenWidths).toEqual([h]);
      expect(Array.from(model.snapshot().layers[0]!.kernel)).toEqual(Array.from(snap.layers[0]!.kernel));
      model.dispose();
      expect(tf.memory().numTensors, `${name}: tensors left after dispose`).toBe(start);
    }
    x.dispose();
    y.dispose();
  });
});
