/**
 * One growth event on a {@link GrowableMlp}: statistics, strategy, weight surgery and the measurements the
 * reports need (new-weight gradient norm, loss before/after).
 */
import type * as tfc from '@tensorflow/tfjs-core';
import type { GrowthRequest, GrowthStrategy, Rng } from '@gradmax/core';
import type { GrowableMlp } from './mlp.js';
import type { MeasuredGrowthRecord } from './types.js';

/**
 * Grows site `site` of `model` by `count` units with `strategy`, measuring on the batch (x, target).
 * `durationMs` covers only the growth itself (statistics, strategy, surgery), not the measurements around it.
 */
export function growMlpSite(
  model: GrowableMlp,
  site: number,
  strategy: GrowthStrategy,
  count: number,
  x: tfc.Tensor2D,
  target: tfc.Tensor2D,
  rng: Rng,
  step: number,
): MeasuredGrowthRecord {
  const before = model.gradientNorms(site, x, target, Number.MAX_SAFE_INTEGER);
  const t0 = performance.now();
  const growthSite = model.growthSite(site);
  const request: GrowthRequest = { site: growthSite, count, rng };
  if (strategy.needs.moment || strategy.needs.samples) request.statistics = model.statistics(site, x, target, strategy.needs.samples);
  if (strategy.needs.lossOracle) request.lossOracle = model.lossOracle(site, x, target);
  const units = strategy.grow(request);
  model.grow(site, units);
  const durationMs = performance.now() - t0;
  const after = model.gradientNorms(site, x, target, growthSite.units);
  return {
    step,
    site: growthSite.name,
    strategy: strategy.name,
    unitsBefore: growthSite.units,
    unitsAfter: growthSite.units + count,
    newWeightGradNorm: Math.hypot(after.tail, after.outgoingTail),
    newIncomingGradNorm: after.tail,
    newOutgoingGradNorm: after.outgoingTail,
    kernelGradNormBefore: before.kernel,
    kernelGradNormAfter: after.kernel,
    lossBefore: before.loss,
    lossAfter: after.loss,
    durationMs,
    ...(units.report.notes.length ? { notes: units.report.notes } : {}),
  };
}
