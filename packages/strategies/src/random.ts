/**
 * Random growth (the GradMax paper's main baseline, reference `AddRandom`).
 */
import { Matrix, outgoingMagnitude, validateRequest } from '@gradmax/core';
import type { GrowthRequest, GrowthStrategy, NewUnits, OutgoingScaleOptions } from '@gradmax/core';
import { baseReport, checkChoice, checkPositive, randomColumns, zeroIncomingNotes, type Distribution } from './internal/util.js';

/** Options of {@link random}. */
export interface RandomOptions extends OutgoingScaleOptions {
  /**
   * Distribution of each new outgoing vector before it is normalised to norm c: `'normal'` (default,
   * isotropic) or `'uniformPositive'` (entries U[0,1), as the reference code's `np.random.uniform`, so every
   * direction lies in the positive orthant).
   */
  distribution?: Distribution;
}

/**
 * Creates the Random baseline of Evci et al., "GradMax: Growing Neural Networks using Gradient Information"
 * (ICLR 2022), reference `AddRandom`. Optimises nothing: new units get zero incoming weights and biases and a
 * random outgoing vector per unit, normalised and then scaled to the same magnitude c as GradMax
 * (`scaleMethod: 'meanNorm'` (default): c = `scale` × mean norm of the existing outgoing vectors; `'fixed'`:
 * c = `scale`; `scale` defaults to 0.5). `distribution` is `'normal'` (default) or `'uniformPositive'`.
 * Function-preserving whenever f(0) = 0 (the report notes sites where it is not). Needs no statistics.
 *
 * @param options - {@link RandomOptions}; defaults: scale 0.5, scaleMethod `meanNorm`, distribution `normal`.
 */
export function random(options: RandomOptions = {}): GrowthStrategy {
  const distribution = checkChoice('random', 'distribution', options.distribution ?? 'normal', ['normal', 'uniformPositive']);
  checkPositive('random', 'scale', options.scale ?? 0.5);
  checkChoice('random', 'scaleMethod', options.scaleMethod ?? 'meanNorm', ['meanNorm', 'fixed']);
  const strategy: GrowthStrategy = {
    name: 'random',
    functionPreserving: true,
    needs: { moment: false, samples: false, lossOracle: false },
    grow(request: GrowthRequest): NewUnits {
      validateRequest(strategy, request);
      const { site, count, rng } = request;
      const c = outgoingMagnitude(site, options);
      const outgoing = randomColumns(site.fanOut, count, c, rng, distribution);
      const notes = zeroIncomingNotes('random', site);
      if (site.activation.df0 === 0) notes.push(`activation "${site.activation.name}" has f'(0) = 0: the new units get no gradient at the next step`);
      return {
        incoming: new Matrix(count, site.fanIn),
        incomingBias: new Float64Array(count),
        outgoing,
        report: { ...baseReport('random', site, count, notes), outgoingNorm: c, distribution },
      };
    },
  };
  return strategy;
}
