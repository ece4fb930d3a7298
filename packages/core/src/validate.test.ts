import { describe, expect, it } from 'vitest';
import { validateRequest } from './validate.js';
import { Matrix } from './matrix.js';
import { createRng } from './rng.js';
import { MissingStatisticError, NonFiniteError, ShapeMismatchError } from './errors.js';
import type { GrowthSite, GrowthStrategy, SiteStatistics, StatisticsNeeds } from './site.js';

const site: GrowthSite = {
  name: 's',
  kind: 'dense',
  units: 2,
  fanIn: 3,
  fanOut: 4,
  incoming: new Matrix(2, 3),
  outgoing: new Matrix(4, 2),
  activation: { name: 'relu1', f0: 0, df0: 1 },
};

function strategy(needs: StatisticsNeeds): GrowthStrategy {
  return { name: 'probe', functionPreserving: true, needs, grow: () => { throw new Error('not called'); } };
}

function inputsOnly(rows: number, cols = 3): SiteStatistics {
  return { moment: new Matrix(0, cols), count: 5, samples: { h: new Matrix(rows, cols, Float64Array.from({ length: rows * cols }, (_, i) => i)), g: new Matrix(rows, 0), weight: 1 }, inputsOnly: true };
}

describe('validateRequest with input-only statistics', () => {
  const request = (statistics: SiteStatistics) => ({ site, count: 1, rng: createRng(0), statistics });

  it('serves strategies that read only h (needs.inputsOnly) and returns the statistics', () => {
    const stats = inputsOnly(6);
    expect(validateRequest(strategy({ moment: false, samples: true, inputsOnly: true, lossOracle: false }), request(stats))).toBe(stats);
    // Strategies that read no statistics ignore them.
    expect(validateRequest(strategy({ moment: false, samples: false, lossOracle: false }), request(stats))).toBe(stats);
  });

  it('refuses strategies that read M or g, naming what is missing', () => {
    for (const needs of [
      { moment: true, samples: false, lossOracle: false },
      { moment: false, samples: true, lossOracle: false },
      { moment: true, samples: true, inputsOnly: true, lossOracle: false },
    ]) {
      expect(() => validateRequest(strategy(needs), request(inputsOnly(6)))).toThrow(MissingStatisticError);
      expect(() => validateRequest(strategy(needs), request(inputsOnly(6)))).toThrow(/growth matrix M and the gradient rows g .*input samples h only/);
    }
  });

  it('checks the shape and finiteness of h', () => {
    const reader = strategy({ moment: false, samples: true, inputsOnly: true, lossOracle: false });
    expect(() => validateRequest(reader, request(inputsOnly(6, 4)))).toThrow(ShapeMismatchError);
    const bad = inputsOnly(2);
    bad.samples!.h.data[4] = Number.NaN;
    expect(() => validateRequest(reader, request(bad))).toThrow(NonFiniteError);
    const none: SiteStatistics = { moment: new Matrix(0, 3), count: 0, inputsOnly: true };
    expect(() => validateRequest(reader, request(none))).toThrow(MissingStatisticError);
  });
});
