import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import '@gradmax/strategies/register';
import { Matrix, type GrowthStrategy, type NewUnits } from '@gradmax/core';
import { findGrowthSites, grow, makeLossOracle, resolveLoss, setupBackend, toCoreSite } from '@gradmax/tfjs';
import { oneHotTargets, outputOf, randomTensor } from './helpers.js';
import { cnnWithBnPool } from './models.js';

function candidate(rows: number, fanIn: number, fanOut: number, seed: number): NewUnits {
  const values = (n: number, s: number) => Float64Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + s) * 0.5);
  return {
    incoming: new Matrix(rows, fanIn, values(rows * fanIn, seed)),
    incomingBias: values(rows, seed + 1),
    outgoing: new Matrix(fanOut, rows, values(fanOut * rows, seed + 2)),
    report: { strategy: 'fixed', site: '', count: rows, notes: [] },
  };
}

describe('loss oracle (temporary widening)', () => {
  beforeAll(async () => {
    await setupBackend('cpu', { log: false });
  });

  it('equals the loss of the really grown model, leaves the model exactly as it was, and drives TINY', () => {
    const model = cnnWithBnPool();
    const xs = randomTensor([6, 8, 8, 2], 1);
    const ys = oneHotTargets(6, 3, 2);
    const loss = resolveLoss('categoricalCrossentropy');
    for (const siteName of ['c1->c2', 'c2->out']) {
      const site = findGrowthSites(model).sites.find((s) => s.name === siteName)!;
      const oracle = makeLossOracle(model, site, { xs, ys }, loss);
      const before = outputOf(model, xs);
      const weights = model.weights.map((w) => Array.from(w.read().dataSync()));
      const tensors = tf.memory().numTensors;
      const { fanIn, fanOut } = toCoreSite(model, site);
      const units = candidate(2, fanIn, fanOut, siteName.length);
      const base = tf.tidy(() => loss(ys, model.predict(xs) as tf.Tensor).dataSync()[0]!);
      expect(oracle(units, 0)).toBeCloseTo(base, 6);
      const at = oracle(units, 0.7);
      // Nothing changed: outputs, every weight, the site's width, and no tensor leaked.
      expect(Array.from(outputOf(model, xs))).toEqual(Array.from(before));
      expect(model.weights.map((w) => Array.from(w.read().dataSync()))).toEqual(weights);
      expect(findGrowthSites(model).sites.find((s) => s.name === siteName)!.units).toBe(site.units);
      expect(tf.memory().numTensors).toBe(tensors);
      // The same units grown for real (scaled by 0.7) give the same loss.
      const fixed: GrowthStrategy = {
        name: 'fixed',
        functionPreserving: false,
        needs: { moment: false, samples: false, lossOracle: false },
        grow: () => ({
          ...units,
          incoming: new Matrix(units.incoming.rows, units.incoming.cols, units.incoming.data.map((v) => v * 0.7)),
          incomingBias: units.incomingBias.map((v) => v * 0.7),
          outgoing: new Matrix(units.outgoing.rows, units.outgoing.cols, units.outgoing.data.map((v) => v * 0.7)),
        }),
      };
      grow(model, { site: siteName, units: 2, strategy: fixed });
      const grown = tf.tidy(() => loss(ys, model.predict(xs) as tf.Tensor).dataSync()[0]!);
      expect(Math.abs(grown - at)).toBeLessThan(1e-5);
      expect(Math.abs(at - base)).toBeGreaterThan(1e-4);
    }
    const { report } = grow(model, { site: 'c2->out', units: 2, strategy: 'tiny', batch: { xs, ys }, loss: 'categoricalCrossentropy' });
    expect(report.strategyReport['amplitudeSource']).toBe('lineSearch');
    model.dispose();
    tf.dispose([xs, ys]);
  });
});
