/**
 * Random growth with zero outgoing weights (reference `AddRandom` with `is_outgoing_zero`).
 */
import { Matrix, validateRequest } from '@gradmax/core';
import type { GrowthRequest, GrowthStrategy, NewUnits } from '@gradmax/core';
import { baseReport, checkChoice, checkPositive, incomingMagnitude, randomRows, type Distribution, type IncomingScaleOptions } from './internal/util.js';

/** Options of {@link randomOutgoingZero}. */
export interface RandomOutgoingZeroOptions extends IncomingScaleOptions {
  /** Distribution of each new incoming vector before normalisation: `'normal'` (default) or `'uniformPositive'` (U[0,1)). */
  distribution?: Distribution;
}

/**
 * Creates the outgoing-zero Random baseline of Evci et al., "GradMax" (ICLR 2022), reference `AddRandom` with
 * `is_outgoing_zero = True`. Optimises nothing: new units get random incoming vectors of norm
 * `scale` × mean norm of the existing incoming vectors (`scaleMethod: 'meanNorm'`, default) or `scale`
 * (`'fixed'`), with `scale` default 0.5, zero biases and zero outgoing weights. Always function-preserving
 * (the outgoing weights are zero, whatever the activation). Needs no statistics.
 *
 * @param options - {@link RandomOutgoingZeroOptions}; defaults: scale 0.5, scaleMethod `meanNorm`, distribution `normal`.
 */
export function randomOutgoingZero(options: RandomOutgoingZeroOptions = {}): GrowthStrategy {
  const distribution = checkChoice('randomOutgoingZero', 'distribution', options.distribution ?? 'normal', ['normal', 'uniformPositive']);
  checkPositive('randomOutgoingZero', 'scale', options.scale ?? 0.5);
  checkChoice('randomOutgoingZero', 'scaleMethod', options.scaleMethod ?? 'meanNorm', ['meanNorm', 'fixed']);
  const strategy: GrowthStrategy = {
    name: 'randomOutgoingZero',
    functionPreserving: true,
    needs: { moment: false, samples: false, lossOracle: false },
    grow(request: GrowthRequest): NewUnits {
      validateRequest(strategy, request);
      const { site, count, rng } = request;
      const magnitude = incomingMagnitude('randomOutgoingZero', site, options);
      return {
        incoming: randomRows(count, site.fanIn, magnitude, rng, distribution),
        incomingBias: new Float64Array(count),
        outgoing: new Matrix(site.fanOut, count),
        report: { ...baseReport('randomOutgoingZero', site, count), incomingNorm: magnitude, distribution },
      };
    },
  };
  return strategy;
}
