/**
 * The opt-in `register` entry point and the catalogue.
 */
import { describe, expect, it } from 'vitest';
import { createStrategy, listStrategies } from '@gradmax/core';
import '@gradmax/strategies/register';
import { registerAllStrategies, strategyCatalog } from '@gradmax/strategies';

const names = ['gradmax', 'gradmaxOpt', 'random', 'randomOutgoingZero', 'allZero', 'firefly', 'net2net', 'north', 'tiny'];

describe('register', () => {
  it('registers all nine strategies by name, idempotently', () => {
    for (const n of names) expect(listStrategies()).toContain(n);
    expect(() => registerAllStrategies()).not.toThrow();
    expect(createStrategy('net2net', { noise: 0.5 }).functionPreserving).toBe(false);
  });
});

describe('strategyCatalog', () => {
  it('lists every strategy once, and agrees with what each factory declares', () => {
    expect(strategyCatalog.map((e) => e.name)).toEqual(names);
    for (const entry of strategyCatalog) {
      const s = entry.factory();
      expect(s.name).toBe(entry.name);
      expect(s.functionPreserving).toBe(entry.functionPreserving);
      expect(s.needs).toEqual(entry.needs);
      expect(entry.paper.length).toBeGreaterThan(10);
      expect(entry.optimises.length).toBeGreaterThan(5);
    }
  });
});
