/**
 * One call from a model and a strategy name to a widened model: look up sites, read their weights, run the strategy
 * with (optional) statistics, and widen — site after site, so overlapping sites see the already widened layers.
 * @packageDocumentation
 */
import { InvalidArgumentError, MissingStatisticError, Rng, createStrategy, type GrowthStrategy, type NewUnits, type SiteStatistics } from '@gradmax/core';
import type { OnnxModel } from './model.js';
import { findSite, findSites, lazyGrowthSite, type OnnxSite } from './sites.js';
import { widen, type WidenResult } from './widen.js';

/** One growth request. */
export interface GrowRequest {
  /** Site name (or the current layer's node name). */
  site: string;
  /** Units to add. */
  count: number;
  /** Statistics for strategies that need them. */
  statistics?: SiteStatistics;
}

/** Options of {@link growModel}. */
export interface GrowOptions {
  /** A strategy instance, or a registered name (default `"gradmax"`). */
  strategy?: GrowthStrategy | string;
  /** Options passed to the strategy factory when `strategy` is a name. */
  strategyOptions?: Record<string, unknown>;
  /** Seed (default 0); each site uses `new Rng(seed).fork(siteName)`. */
  seed?: number;
}

/** Result per site: the widening and the strategy's new units. */
export interface GrowResult extends WidenResult {
  /** Strategy name. */
  strategy: string;
  /** Whether the strategy claims function preservation. */
  functionPreserving: boolean;
  /** What the strategy returned. */
  newUnits: NewUnits;
}

/** Grows the model in place. Throws the strategy's and the widener's typed errors. */
export function growModel(model: OnnxModel, requests: readonly GrowRequest[], options: GrowOptions = {}): GrowResult[] {
  const strategy = typeof options.strategy === 'object' ? options.strategy : createStrategy(options.strategy ?? 'gradmax', options.strategyOptions);
  const rng = new Rng(options.seed ?? 0);
  const out: GrowResult[] = [];
  for (const req of requests) {
    if (!Number.isInteger(req.count) || req.count <= 0) throw new InvalidArgumentError(`site "${req.site}": number of units to add must be a positive integer, got ${req.count}`, { site: req.site });
    const site = findSite(model, req.site, findSites(model));
    const gs = lazyGrowthSite(model, site);
    if ((strategy.needs.moment || strategy.needs.samples) && !req.statistics) {
      throw new MissingStatisticError(strategy.name, strategy.needs.samples ? 'retained (h, g) samples (--stats)' : 'the growth matrix M (--stats)', site.name);
    }
    const request = { site: gs, count: req.count, rng: rng.fork(site.name), ...(req.statistics ? { statistics: req.statistics } : {}) };
    const newUnits = strategy.grow(request);
    const [res] = widen(model, [{ site, newUnits }]);
    out.push({ ...res!, strategy: strategy.name, functionPreserving: strategy.functionPreserving, newUnits });
  }
  return out;
}

