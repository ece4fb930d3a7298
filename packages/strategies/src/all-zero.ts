/**
 * All-zero growth with a constant bias (the reference notebook's `random_zeros` variant, `AddRandom.is_all_zero`).
 */
import { InvalidArgumentError, Matrix, UnsupportedError, validateRequest } from '@gradmax/core';
import type { GrowthRequest, GrowthStrategy, NewUnits } from '@gradmax/core';
import { baseReport } from './internal/util.js';

/** Options of {@link allZero}. */
export interface AllZeroOptions {
  /** Bias of every new unit (default 1, as the notebook). Must be finite. */
  bias?: number;
}

/**
 * Creates the All-zero baseline of the GradMax notebook (Evci et al., ICLR 2022; `AddRandom.is_all_zero`):
 * every new incoming and outgoing weight is zero and every new bias is `bias` (default 1). Optimises nothing.
 * Function-preserving for any activation, because the outgoing weights are zero. It only makes sense when the
 * grown layer has a bias: the bias makes the new units' activations f(bias) non-zero, so their outgoing weights
 * get the gradient f(bias)·E[g] at the next step (identical for every new unit, so they stay symmetric).
 * Without a bias every new weight and its gradient would be zero forever, so sites without a bias are refused
 * with `UnsupportedError`. Needs no statistics.
 *
 * @param options - {@link AllZeroOptions}; default bias 1.
 */
export function allZero(options: AllZeroOptions = {}): GrowthStrategy {
  const bias = options.bias ?? 1;
  if (typeof bias !== 'number' || !Number.isFinite(bias)) {
    throw new InvalidArgumentError(`allZero: option "bias" must be a finite number, got ${String(bias)}`, { strategy: 'allZero', option: 'bias', value: bias });
  }
  const strategy: GrowthStrategy = {
    name: 'allZero',
    functionPreserving: true,
    needs: { moment: false, samples: false, lossOracle: false },
    grow(request: GrowthRequest): NewUnits {
      validateRequest(strategy, request);
      const { site, count } = request;
      if (!site.incomingBias) {
        throw new UnsupportedError(
          `allZero on site "${site.name}": the grown layer has no bias, so all-zero new units would have zero weights and zero gradients forever; use a layer with a bias or another strategy`,
          { site: site.name, strategy: 'allZero' },
        );
      }
      return {
        incoming: new Matrix(count, site.fanIn),
        incomingBias: new Float64Array(count).fill(bias),
        outgoing: new Matrix(site.fanOut, count),
        report: { ...baseReport('allZero', site, count), bias },
      };
    },
  };
  return strategy;
}
