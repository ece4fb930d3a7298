/**
 * One conformance suite for every strategy (a table of strategies × sites, in the spirit of tfjs-core's
 * `describeWithFlags`): shapes, determinism under a seed, finiteness, and an honest `functionPreserving` flag:
 * strategies that declare it keep max |Δ output| ≤ 1e-6 (float64) on the reference networks, and those that do
 * not really change the output.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '@gradmax/core';
import type { GrowthRequest, GrowthStrategy, NewUnits } from '@gradmax/core';
import { allZero, firefly, gradmax, gradmaxOpt, net2net, north, random, randomOutgoingZero, tiny } from '@gradmax/strategies';
import { allFixtures, maxAbsDiff, oracleOf, type Fixture } from './fixtures.js';

interface Case {
  label: string;
  make: () => GrowthStrategy;
  /** Supply a loss oracle from the reference network. */
  oracle?: boolean;
}

const cases: Case[] = [
  { label: 'gradmax', make: () => gradmax() },
  { label: 'gradmaxOpt', make: () => gradmaxOpt({ steps: 20 }) },
  { label: 'random', make: () => random() },
  { label: 'random uniformPositive fixed', make: () => random({ distribution: 'uniformPositive', scaleMethod: 'fixed', scale: 0.3 }) },
  { label: 'randomOutgoingZero', make: () => randomOutgoingZero() },
  { label: 'allZero', make: () => allZero() },
  { label: 'firefly', make: () => firefly() },
  { label: 'net2net random', make: () => net2net() },
  { label: 'net2net norm', make: () => net2net({ select: 'norm' }) },
  { label: 'net2net noise', make: () => net2net({ noise: 0.1 }) },
  { label: 'north', make: () => north() },
  { label: 'tiny', make: () => tiny() },
  { label: 'tiny + loss oracle', make: () => tiny(), oracle: true },
  { label: 'tiny without projection', make: () => tiny({ projection: false }) },
];

const fixtures = allFixtures();
const counts = [1, 3];

function request(f: Fixture, count: number, seed: number, withOracle: boolean): GrowthRequest {
  return { site: f.site, count, statistics: f.statistics, rng: new Rng(seed), ...(withOracle ? { lossOracle: oracleOf(f) } : {}) };
}

function allFinite(units: NewUnits): boolean {
  const arrays = [units.incoming.data, units.outgoing.data, units.incomingBias, units.existingOutgoingScale ?? new Float64Array()];
  return arrays.every((a) => a.every((v) => Number.isFinite(v)));
}

describe.each(cases)('$label', ({ make, oracle }) => {
  describe.each(fixtures)('on $name', (f) => {
    it.each(counts)('k = %i: shapes, no NaN, deterministic, honest functionPreserving flag', (k) => {
      const strategy = make();
      const units = strategy.grow(request(f, k, 7, !!oracle));
      const { site } = f;
      expect(units.incoming.shape).toEqual([k, site.fanIn]);
      expect(units.outgoing.shape).toEqual([site.fanOut, k]);
      expect(units.incomingBias.length).toBe(k);
      if (units.existingOutgoingScale) expect(units.existingOutgoingScale.length).toBe(site.units);
      if (units.sourceUnits) {
        expect(units.sourceUnits.length).toBe(k);
        for (const s of units.sourceUnits) expect(s >= -1 && s < site.units).toBe(true);
      }
      expect(allFinite(units)).toBe(true);
      expect(units.report.strategy).toBe(strategy.name);
      expect(units.report.site).toBe(site.name);
      expect(units.report.count).toBe(k);

      // Determinism: a fresh strategy and a fresh Rng with the same seed give bit-identical units.
      const again = make().grow(request(f, k, 7, !!oracle));
      expect(Array.from(again.incoming.data)).toEqual(Array.from(units.incoming.data));
      expect(Array.from(again.outgoing.data)).toEqual(Array.from(units.outgoing.data));
      expect(Array.from(again.incomingBias)).toEqual(Array.from(units.incomingBias));

      // The flag cannot lie.
      const before = f.net.forward(f.x).data;
      const after = f.net.grow(units).forward(f.x).data;
      const delta = maxAbsDiff(before, after);
      if (strategy.functionPreserving) expect(delta).toBeLessThanOrEqual(1e-6);
      else expect(delta).toBeGreaterThan(1e-6);
    });
  });
});

describe('randomness is seeded', () => {
  const f = fixtures[0]!;
  it.each([['random', () => random()], ['randomOutgoingZero', () => randomOutgoingZero()], ['firefly', () => firefly()], ['north', () => north()], ['net2net noise', () => net2net({ noise: 0.1 })]] as const)(
    '%s: different seeds give different units',
    (_label, make) => {
      const a = make().grow(request(f, 2, 1, false));
      const b = make().grow(request(f, 2, 2, false));
      const differs = maxAbsDiff(a.incoming.data, b.incoming.data) + maxAbsDiff(a.outgoing.data, b.outgoing.data);
      expect(differs).toBeGreaterThan(0);
    },
  );
});
