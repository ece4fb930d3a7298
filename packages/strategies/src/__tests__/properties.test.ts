/**
 * Property-based invariants (fast-check) over random dense reference networks: every strategy that declares
 * function preservation keeps the output, whatever the sizes, seeds, k and activation (with f(0) = 0); NORTH's
 * orthogonality and Net2Net's outgoing split hold for any draw.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Matrix, Rng } from '@gradmax/core';
import { DenseReferenceNet } from '@gradmax/core/reference';
import type { ReferenceActivationName } from '@gradmax/core/reference';
import { net2net, north, strategyCatalog } from '@gradmax/strategies';
import { maxAbsDiff } from './fixtures.js';

const netArb = fc.record({
  inputs: fc.integer({ min: 2, max: 7 }),
  hidden: fc.integer({ min: 1, max: 5 }),
  outputs: fc.integer({ min: 1, max: 5 }),
  examples: fc.integer({ min: 3, max: 16 }),
  activation: fc.constantFrom<ReferenceActivationName>('relu1', 'tanh', 'identity'),
  seed: fc.integer({ min: 0, max: 1_000_000 }),
  k: fc.integer({ min: 1, max: 4 }),
});

function build(p: { inputs: number; hidden: number; outputs: number; examples: number; activation: ReferenceActivationName; seed: number }) {
  const net = DenseReferenceNet.random({ ...p, seed: p.seed });
  const rng = new Rng(p.seed + 1);
  const x = new Matrix(p.examples, p.inputs, new Float64Array(p.examples * p.inputs).map(() => rng.normal()));
  const t = new Matrix(p.examples, p.outputs, new Float64Array(p.examples * p.outputs).map(() => rng.normal()));
  return { net, x, t, site: net.site(), statistics: net.statistics(x, t, { retainSamples: 1000 }) };
}

describe('properties', () => {
  it('every function-preserving strategy keeps the output on random dense networks', () => {
    const preserving = strategyCatalog.filter((e) => e.functionPreserving);
    fc.assert(
      fc.property(netArb, (p) => {
        const { net, x, site, statistics } = build(p);
        const before = net.forward(x).data;
        for (const entry of preserving) {
          const units = entry.factory().grow({ site, count: p.k, statistics, rng: new Rng(p.seed) });
          const delta = maxAbsDiff(before, net.grow(units).forward(x).data);
          if (!(delta <= 1e-6)) throw new Error(`${entry.name}: max |Δ output| = ${delta}`);
        }
      }),
      { numRuns: 25, seed: 42 },
    );
  });

  it('net2net: each split unit and its copies carry exactly its original outgoing weights in total', () => {
    fc.assert(
      fc.property(netArb, fc.constantFrom<'random' | 'norm'>('random', 'norm'), (p, select) => {
        const { site } = build(p);
        const units = net2net({ select }).grow({ site, count: p.k, rng: new Rng(p.seed) });
        for (let j = 0; j < site.units; j++) {
          for (let o = 0; o < site.fanOut; o++) {
            let total = site.outgoing.get(o, j) * units.existingOutgoingScale![j]!;
            units.sourceUnits!.forEach((s, i) => {
              if (s === j) total += units.outgoing.get(o, i);
            });
            expect(total).toBeCloseTo(site.outgoing.get(o, j), 12);
          }
        }
      }),
      { numRuns: 40, seed: 7 },
    );
  });

  it('north: every unit reported orthogonal has pre-activations orthogonal to all earlier ones', () => {
    fc.assert(
      fc.property(netArb, (p) => {
        const { site, statistics } = build(p);
        const units = north().grow({ site, count: p.k, statistics, rng: new Rng(p.seed) });
        const h = statistics.samples!.h;
        const pre = (w: Matrix, j: number, b: number) => Array.from({ length: h.rows }, (_, s) => b + w.row(j).reduce((acc, v, i) => acc + v * h.get(s, i), 0));
        const earlier = Array.from({ length: site.units }, (_, j) => pre(site.incoming, j, site.incomingBias![j]!));
        const orthogonalUnits = p.k - (units.report.notOrthogonal as number);
        for (let i = 0; i < orthogonalUnits; i++) {
          const q = pre(units.incoming, i, 0);
          const qn = Math.hypot(...q);
          for (const e of earlier) {
            const en = Math.hypot(...e);
            if (qn > 1e-12 && en > 1e-12) expect(Math.abs(q.reduce((acc, v, s) => acc + v * e[s]!, 0)) / (qn * en)).toBeLessThan(1e-8);
          }
          earlier.push(q);
        }
      }),
      { numRuns: 40, seed: 9 },
    );
  });

  it('north reads only h: input-only statistics (no M, no g) give exactly the same units', () => {
    fc.assert(
      fc.property(netArb, (p) => {
        const { site, statistics } = build(p);
        const h = statistics.samples!.h;
        const inputsOnly = { moment: new Matrix(0, site.fanIn), count: statistics.count, samples: { h, g: new Matrix(h.rows, 0), weight: 1 }, inputsOnly: true };
        const full = north().grow({ site, count: p.k, statistics, rng: new Rng(p.seed) });
        const only = north().grow({ site, count: p.k, statistics: inputsOnly, rng: new Rng(p.seed) });
        expect(Array.from(only.incoming.data)).toEqual(Array.from(full.incoming.data));
        expect(only.report.notOrthogonal).toBe(full.report.notOrthogonal);
      }),
      { numRuns: 20, seed: 10 },
    );
  });
});
