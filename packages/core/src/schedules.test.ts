import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { allAtOnce, customSchedule, finalWidths, roundRobin, unitsFor } from './schedules.js';
import { InvalidArgumentError } from './errors.js';

const sites = [
  { name: 'a', initialWidth: 16 },
  { name: 'b', initialWidth: 32 },
  { name: 'c', initialWidth: 3 },
];

describe('schedules', () => {
  it('allAtOnce matches the reference WRN protocol: 12 events every 2500 from 10000, 0.25 of initial width', () => {
    const s = allAtOnce({ sites, start: 10000, every: 2500, times: 12, amount: { fraction: 0.25 } });
    const events = s.events()!;
    expect(events.map((e) => e.step)).toEqual(Array.from({ length: 12 }, (_, i) => 10000 + 2500 * i));
    expect(events[0]!.sites).toEqual([
      { site: 'a', units: 4 },
      { site: 'b', units: 8 },
      { site: 'c', units: 1 }, // max(1, floor(3 * 0.25))
    ]);
    expect(finalWidths(s, sites)).toEqual({ a: 16 + 48, b: 32 + 96, c: 3 + 12 });
    expect(s.eventAt(9999)).toBeUndefined();
    expect(s.eventAt(10001)).toBeUndefined();
    expect(s.eventAt(37500)?.index).toBe(11);
    expect(s.eventAt(40000)).toBeUndefined();
  });

  it('a start that is not a multiple of every fires at the next multiple', () => {
    const s = allAtOnce({ sites, start: 150, every: 200, times: 2, amount: { units: 1 } });
    expect(s.events()!.map((e) => e.step)).toEqual([200, 400]);
  });

  it('roundRobin cycles through the sites one per event', () => {
    const s = roundRobin({ sites, start: 0, every: 150, times: 7, amount: { units: 2 } });
    expect(s.events()!.map((e) => e.sites.map((x) => x.site).join())).toEqual(['a', 'b', 'c', 'a', 'b', 'c', 'a']);
    expect(s.eventAt(0)!.sites).toEqual([{ site: 'a', units: 2 }]);
  });

  it('per-site amounts and custom schedules', () => {
    const s = allAtOnce({ sites, start: 0, every: 10, times: 1, amount: { a: { units: 2 }, b: { fraction: 0.5 }, c: { units: 1 } } });
    expect(s.eventAt(0)!.sites.map((x) => x.units)).toEqual([2, 16, 1]);
    const custom = customSchedule('doubling', (step) => (step === 5 ? [{ site: 'a', units: 3 }] : undefined));
    expect(custom.eventAt(4)).toBeUndefined();
    expect(custom.eventAt(5)).toEqual({ step: 5, index: 0, sites: [{ site: 'a', units: 3 }] });
    expect(custom.events()).toBeUndefined();
  });

  it('rejects bad options with typed errors', () => {
    expect(() => allAtOnce({ sites, start: 0, every: 0, times: 1, amount: { units: 1 } })).toThrow(InvalidArgumentError);
    expect(() => allAtOnce({ sites: [], start: 0, every: 1, times: 1, amount: { units: 1 } })).toThrow(/at least one site/);
    expect(() => unitsFor(sites[0]!, { units: 0 })).toThrow(/positive integer/);
    expect(() => allAtOnce({ sites, start: 0, every: 1, times: 1, amount: { a: { units: 1 } } })).toThrow(/site "b"/);
  });

  it('eventAt agrees with events() at every step (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 6 }), (start, every, times) => {
        const s = roundRobin({ sites, start, every, times, amount: { units: 1 } });
        const byStep = new Map(s.events()!.map((e) => [e.step, e]));
        for (let t = 0; t < start + every * (times + 2); t++) expect(s.eventAt(t)).toEqual(byStep.get(t));
      }),
    );
  });
});
