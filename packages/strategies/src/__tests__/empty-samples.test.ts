import { describe, expect, it } from 'vitest';
import { DenseStatistics, Matrix, Rng } from '@gradmax/core';
import { DenseReferenceNet } from '@gradmax/core/reference';
import { firefly, north, tiny } from '@gradmax/strategies';

// A grow batch whose per-example gradients are all zero (e.g. a saturated softmax) gives retention with no rows.
describe('sample-based strategies with zero retained rows', () => {
  const net = DenseReferenceNet.random({ inputs: 5, hidden: 4, outputs: 3, seed: 3 });
  const site = net.site();
  const accumulator = new DenseStatistics(site.fanOut, site.fanIn, { retainSamples: 16 });
  accumulator.addSum(new Matrix(site.fanOut, site.fanIn), 8);
  const empty = accumulator.snapshot();

  it('the snapshot carries empty samples rather than none', () => {
    expect(empty.samples?.h.rows).toBe(0);
    expect(empty.samples?.g.shape).toEqual([0, site.fanOut]);
    expect(empty.samples?.weight).toBe(0);
  });

  for (const strategy of [tiny(), firefly(), north()]) {
    it(`${strategy.name} returns finite units and does not throw`, () => {
      const units = strategy.grow({ site, count: 2, statistics: empty, rng: new Rng(1) });
      expect(units.incoming.shape).toEqual([2, site.fanIn]);
      expect(units.outgoing.shape).toEqual([site.fanOut, 2]);
      for (const v of [...units.incoming.data, ...units.outgoing.data, ...units.incomingBias]) expect(Number.isFinite(v)).toBe(true);
    });
  }
});
