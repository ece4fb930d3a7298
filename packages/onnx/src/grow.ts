/**
 * One call from a model and a strategy name to a widened model: look up channel groups (or legacy pair sites), read
 * their weights, run the strategy with (optional) statistics, and widen — one request after the other, so later
 * requests see the already widened layers.
 * @packageDocumentation
 */
import { InvalidArgumentError, MissingStatisticError, Rng, UnsupportedError, createStrategy, type GrowthSite, type GrowthStrategy, type NewUnits, type SiteStatistics } from '@gradmax/core';
import type { OnnxModel } from './model.js';
import { findSites, lazyGrowthSite, type OnnxSite } from './sites.js';
import { widen, type WidenResult } from './widen.js';
import { findGroup, findGroups } from './groups/find.js';
import { groupGrowthSite } from './groups/site.js';
import { widenGroup } from './groups/widen.js';
import { growByShares } from './groups/shares.js';
import type { OnnxGroup } from './groups/types.js';

/** One growth request. */
export interface GrowRequest {
  /** Group name, any producer's node name, or a pair `"<producer>-><consumer>"` (as listed by `inspect`). */
  site: string;
  /** Units to add. */
  count: number;
  /**
   * Statistics for strategies that need them. For a group with grouped convolutions (`multiple` > 1) they must carry
   * one matrix per share in `shares` (as `computeGroupStatistics` returns them); the strategy then runs once per share.
   */
  statistics?: SiteStatistics & { shares?: readonly SiteStatistics[] };
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
    const target = resolveTarget(model, req.site);
    const gs: GrowthSite = target.group ? groupGrowthSite(model, target.group) : lazyGrowthSite(model, target.site!);
    if ((strategy.needs.moment || strategy.needs.samples) && !req.statistics) {
      throw new MissingStatisticError(strategy.name, strategy.needs.samples ? 'retained (h, g) samples (--stats)' : 'the growth matrix M (--stats)', gs.name);
    }
    const multiple = target.group?.multiple ?? 1;
    let newUnits: NewUnits;
    if (multiple > 1 && (strategy.needs.moment || strategy.needs.samples)) {
      // Each share of a grouped group has its own growth matrix: one strategy call per share (see groups/shares.ts).
      newUnits = growByShares(strategy, gs, multiple, req.count, req.statistics!.shares, rng.fork(gs.name));
    } else {
      const request = { site: gs, count: req.count, rng: rng.fork(gs.name), ...(req.statistics ? { statistics: req.statistics } : {}) };
      newUnits = strategy.grow(request);
    }
    let res: WidenResult;
    if (target.group) {
      const r = widenGroup(model, target.group, newUnits);
      res = { site: r.group, unitsBefore: r.unitsBefore, unitsAfter: r.unitsAfter, tensors: r.tensors, shapesFixed: r.shapesFixed, notes: r.notes };
    } else res = widen(model, [{ site: target.site!, newUnits }])[0]!;
    out.push({ ...res, strategy: strategy.name, functionPreserving: strategy.functionPreserving, newUnits });
  }
  return out;
}


/**
 * What a name refers to on the current model: a growable channel group, or (for names only the pair-site finder
 * accepts) a growable pair site. Throws {@link UnsupportedError} with the group's reason otherwise.
 */
export function resolveTarget(model: OnnxModel, name: string): { group?: OnnxGroup; site?: OnnxSite } {
  const groups = findGroups(model);
  let group: OnnxGroup | undefined;
  let notFound: InvalidArgumentError | undefined;
  try {
    group = findGroup(model, name, groups);
  } catch (e) {
    if (!(e instanceof InvalidArgumentError)) throw e;
    notFound = e;
  }
  if (group?.growable) return { group };
  const sites = findSites(model);
  const site = sites.find((s) => s.name === name) ?? sites.find((s) => s.current === name);
  if (site?.growable) return { site };
  if (group) throw new UnsupportedError(`group "${group.name}" is not growable: ${group.reason ?? 'unknown reason'}`, { group: group.name, file: model.label });
  if (site) throw new UnsupportedError(`site "${site.name}" is not growable: ${site.reason ?? 'unknown reason'}`, { site: site.name, file: model.label });
  throw notFound ?? new InvalidArgumentError(`no group named "${name}" in ${model.label}`, { group: name });
}
