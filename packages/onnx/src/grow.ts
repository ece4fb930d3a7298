/**
 * One call from a model and a strategy name to a widened model: look up sites, read their weights, run the strategy
 * with (optional) statistics, and widen — site after site, so overlapping sites see the already widened layers.
 * @packageDocumentation
 */
import { InvalidArgumentError, Matrix, MissingStatisticError, Rng, UnsupportedError, createStrategy, type GrowthSite, type GrowthStrategy, type NewUnits, type SiteStatistics } from '@gradmax/core';
import type { OnnxModel } from './model.js';
import { findSite, findSites, incomingIndex, outgoingIndex, sitePlan, type OnnxSite } from './sites.js';
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

/**
 * The same {@link GrowthSite} as `growthSite(model, site)`, except that `incoming`, `outgoing` and `incomingBias` are
 * getters that build their Float64 copies on first access (then cache them). A strategy that never reads a weight
 * matrix never pays for its copy (8 bytes per element, 4× an FP16 layer). The weights are captured when this is
 * called (views of the current tensor bytes, no copy), so the getters return them even after the model is widened.
 */
export function lazyGrowthSite(model: OnnxModel, site: OnnxSite): GrowthSite {
  const plan = sitePlan(site);
  if (!plan || !site.growable) throw new UnsupportedError(`site "${site.name}" is not growable: ${site.reason ?? 'unknown reason'}`, { site: site.name, file: model.label });
  const { units, fanIn, fanOut } = plan;
  const w1 = model.viewTensor(plan.l1.weight.tensor);
  const w2 = model.viewTensor(plan.l2.weight.tensor);
  const b = plan.bias ? model.viewTensor(plan.bias.weight.tensor) : undefined;
  const readIncoming = (): Matrix => {
    const v1 = w1.reader();
    const incoming = Matrix.zeros(units, fanIn);
    const inc = incoming.data;
    if (plan.l1.type !== 'Conv' && plan.l1.axis === 0) for (let i = 0; i < inc.length; i++) inc[i] = v1(i);
    else if (plan.l1.type !== 'Conv') {
      // weight [fanIn, units]: transpose
      for (let i = 0; i < fanIn; i++) for (let u = 0, row = i * units; u < units; u++) inc[u * fanIn + i] = v1(row + u);
    } else for (let u = 0; u < units; u++) for (let i = 0; i < fanIn; i++) inc[u * fanIn + i] = v1(incomingIndex(plan, w1.dims, u, i));
    if (plan.l1.scale !== 1) for (let i = 0; i < inc.length; i++) inc[i] = plan.l1.scale * inc[i]!;
    return incoming;
  };
  const readOutgoing = (): Matrix => {
    const v2 = w2.reader();
    const outgoing = Matrix.zeros(fanOut, units);
    const out = outgoing.data;
    if (plan.l2.type !== 'Conv' && plan.blk === 1 && plan.l2.axis === 1) for (let i = 0; i < out.length; i++) out[i] = v2(i);
    else if (plan.l2.type !== 'Conv' && plan.blk === 1) {
      // weight [units, fanOut]: transpose
      for (let u = 0; u < units; u++) for (let r = 0, row = u * fanOut; r < fanOut; r++) out[r * units + u] = v2(row + r);
    } else for (let r = 0; r < fanOut; r++) for (let u = 0; u < units; u++) out[r * units + u] = v2(outgoingIndex(plan, w2.dims, r, u));
    if (plan.l2.scale !== 1) for (let i = 0; i < out.length; i++) out[i] = plan.l2.scale * out[i]!;
    return outgoing;
  };
  let incoming: Matrix | undefined;
  let outgoing: Matrix | undefined;
  let incomingBias: Float64Array | undefined;
  // Same property order as growthSite's object literal.
  const gs = { name: site.name, kind: site.kind, units, fanIn, fanOut } as GrowthSite;
  Object.defineProperty(gs, 'incoming', { enumerable: true, get: () => (incoming ??= readIncoming()) });
  Object.defineProperty(gs, 'outgoing', { enumerable: true, get: () => (outgoing ??= readOutgoing()) });
  gs.activation = { ...plan.activation };
  if (b && plan.bias) {
    const bias = plan.bias;
    Object.defineProperty(gs, 'incomingBias', {
      enumerable: true,
      get: () => {
        if (!incomingBias) {
          incomingBias = new Float64Array(units);
          for (let u = 0; u < units; u++) incomingBias[u] = bias.scale * b.get(bias.broadcast ? 0 : u);
        }
        return incomingBias;
      },
    });
  }
  if (plan.geometry) gs.conv = plan.geometry;
  return gs;
}
