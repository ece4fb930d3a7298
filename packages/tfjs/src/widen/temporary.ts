/**
 * Temporarily widening a site (to evaluate the network with candidate units) and undoing it exactly.
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import type { NewUnits } from '@gradmax/core';
import { readValues, replaceVariable, type LayerVariable } from '../model/weights.js';
import { siteLayers } from '../sites/core-site.js';
import type { TfjsGrowthSite } from '../sites/types.js';
import { setSiteWidth, widenSite } from './apply.js';

/**
 * Runs `fn` on `model` widened by `units` at `site`, then restores every variable, layer attribute and recorded
 * shape of the site (optimizer state is never touched). Returns `fn`'s result.
 */
export function withTemporaryUnits<T>(model: tfl.LayersModel, site: TfjsGrowthSite, units: NewUnits, fn: () => T): T {
  const { current, next, between } = siteLayers(model, site);
  const saved: { variable: LayerVariable; shape: number[]; values: Float32Array }[] = [];
  for (const layer of [current, ...between, next]) {
    for (const variable of layer.weights) saved.push({ variable, shape: variable.shape.map(Number), values: readValues(variable) });
  }
  const nextKernel = saved.find((s) => s.variable.originalName.endsWith('/kernel') && next.weights.includes(s.variable))!;
  const positions = site.kind === 'conv-dense' ? nextKernel.shape[0]! / site.units : 1;
  const added = widenSite(model, site, units, { skipOptimizer: true });
  try {
    return fn();
  } finally {
    for (const s of saved) if (s.variable.shape.some((d, i) => d !== s.shape[i])) replaceVariable(s.variable, s.shape, s.values);
    setSiteWidth(model, site, site.units + added, site.units, positions);
  }
}
