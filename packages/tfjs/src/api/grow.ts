/**
 * One-call growth: statistics (when the strategy needs them), the strategy, and the in-place widening.
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import {
  InvalidArgumentError,
  MissingStatisticError,
  UnknownNameError,
  UnsupportedError,
  createRng,
  requireNonZeroSlopeAtZero,
  type GrowthReport,
  type GrowthRequest,
  type SiteStatistics,
} from '@gradmax/core';
import { withInputShape } from '../model/shapes.js';
import { groupToCoreSite } from '../groups/core-group.js';
import { collectGroupInputSamples, DEFAULT_GROUP_SAMPLES, groupRowsProblem } from '../groups/samples.js';
import { collectGroupStatistics } from '../groups/statistics.js';
import type { ChannelGroup } from '../groups/types.js';
import { widenGroup } from '../groups/widen.js';
import { findGrowthSites } from '../sites/find.js';
import { toCoreSite } from '../sites/core-site.js';
import type { TfjsGrowthSite } from '../sites/types.js';
import type { Batch } from '../statistics/batch.js';
import { collectStatistics } from '../statistics/collect.js';
import { resolveLoss } from '../statistics/loss.js';
import { makeLossOracle } from './loss-oracle.js';
import type { LossSpec } from '../statistics/loss.js';
import { widenSite } from '../widen/apply.js';
import { assertSyncReads, growthTensors, withSyncReads } from '../backend/sync-reads.js';
import { resolveStrategy, type StrategySpec } from './strategy.js';

/** Options of {@link grow}. */
export interface GrowOptions {
  /** Site or channel-group name (`"dense_1->dense_2"`, `"stem+b->a+out"`, see {@link findGrowthSites}). */
  site: string;
  /** Number of new units (positive integer). */
  units: number;
  /** Strategy name or object. */
  strategy: StrategySpec;
  /** Options for a strategy given by name (e.g. `{scale: 0.5}` for gradmax). */
  strategyOptions?: Record<string, unknown>;
  /** Grow batch; required when the strategy reads statistics (GradMax, TINY, ...); also feeds TINY's loss oracle. */
  batch?: Batch;
  /** Loss for the statistics (a tfjs loss name or `(yTrue, yPred) => scalar`); default: the compiled loss. */
  loss?: LossSpec;
  /** Seed of every random choice of this growth (default 0). */
  seed?: number;
  /** Precomputed statistics for the site (skips the extra pass). */
  statistics?: SiteStatistics;
  /** Reset optimizer state instead of carrying it (default false). */
  resetOptimizer?: boolean;
  /**
   * Raw samples to retain when the strategy needs them (default 1024): (h, g) rows for layer pairs, input rows h for
   * channel groups (see {@link collectGroupInputSamples}).
   */
  retainSamples?: number;
}

/** What one growth did. */
export interface GrowEventReport {
  /** Site name. */
  site: string;
  /** Strategy name. */
  strategy: string;
  /** Units added. */
  unitsAdded: number;
  /** Width of the current layer before. */
  widthBefore: number;
  /** Width after. */
  widthAfter: number;
  /** Whether the strategy claims exact function preservation. */
  functionPreserving: boolean;
  /** Examples the statistics were computed on (0 when none were needed). */
  statisticsExamples: number;
  /** The strategy's own report (singular values, notes, ...). */
  strategyReport: GrowthReport;
  /** Wall-clock time of each phase, milliseconds. */
  timings: { statistics: number; strategy: number; widen: number };
}

/** Result of {@link grow}. */
export interface GrowResult {
  /** The widened model: the same object as the input, widened in place (layers, names and variables kept). */
  model: tfl.LayersModel;
  /** What happened. */
  report: GrowEventReport;
}

/** A growth target: a layer pair or a channel group. */
export type GrowthTarget = { site: TfjsGrowthSite; group?: undefined } | { group: ChannelGroup; site?: undefined };

/**
 * Finds a site or channel group by name, or throws a typed error naming the known ones (and why a non-growable layer
 * is not one).
 */
export function requireTarget(model: tfl.LayersModel, name: string): GrowthTarget {
  if (typeof name !== 'string') throw new InvalidArgumentError(`site must be a site or group name string, got ${typeof name}`);
  const scan = findGrowthSites(model);
  const site = scan.sites.find((s) => s.name === name);
  if (site) return { site };
  const group = scan.groups.find((g) => g.name === name);
  if (group) return { group };
  const layers = name.split('->')[0]!.split('+');
  const owner = scan.groups.find((g) => g.producers.some((p) => layers.includes(p.name)));
  if (owner) {
    throw new InvalidArgumentError(`site "${name}" does not exist: its layers grow together as channel group "${owner.name}"; grow that name`, { site: name, group: owner.name });
  }
  const blocked = scan.notGrowable.find((n) => layers.includes(n.layer));
  if (blocked) throw new UnsupportedError(`site "${name}" cannot be grown: layer "${blocked.layer}" ${blocked.reason}`, { site: name, layer: blocked.layer, reason: blocked.reason });
  throw new UnknownNameError('site', name, [...scan.sites.map((s) => s.name), ...scan.groups.map((g) => g.name)]);
}

/** Finds a layer-pair site by name (see {@link requireTarget} for groups too), or throws a typed error. */
export function requireSite(model: tfl.LayersModel, name: string): TfjsGrowthSite {
  const target = requireTarget(model, name);
  if (!target.site) throw new InvalidArgumentError(`"${name}" is a channel group, not a layer pair`, { site: name });
  return target.site;
}

/**
 * Grows one site of `model` by `units` units with `strategy`, in place, and returns the model with a report.
 *
 * The model object is widened in place: every layer keeps its identity and name, new units are appended at the
 * end of the channel axis, in-between BatchNorm/depthwise layers are identity-extended, replaced tensors are
 * disposed, and the optimizer state is carried (zeros for new entries) unless `resetOptimizer`.
 *
 * @example
 * ```ts
 * const { report } = grow(model, { site: 'hidden1->hidden2', units: 8, strategy: 'gradmax', batch: { xs, ys } });
 * ```
 * @throws UnknownNameError (site, strategy, loss), InvalidArgumentError (units ≤ 0, bad batch), NonFiniteError,
 *   ShapeMismatchError, MissingStatisticError, UnsupportedError (e.g. GradMax with f'(0) = 0 at this site).
 */
export function grow(model: tfl.LayersModel, options: GrowOptions): GrowResult {
  assertSyncReads('grow', 'growAsync, or grow inside withSyncReads');
  // Models with dynamic input sizes: shapes are those of the grow batch (nominal without one).
  return withInputShape(model, options.batch?.xs?.shape, () => growInScope(model, options));
}

function growInScope(model: tfl.LayersModel, options: GrowOptions): GrowResult {
  const target = requireTarget(model, options.site);
  if (target.group) return growGroup(model, target.group, options);
  const site = target.site;
  if (!Number.isInteger(options.units) || options.units <= 0) {
    throw new InvalidArgumentError(`site "${site.name}": units must be a positive integer, got ${options.units}`, { site: site.name, units: options.units });
  }
  const strategy = resolveStrategy(options.strategy, options.strategyOptions);
  const t0 = performance.now();
  let statistics = options.statistics;
  const wantsStats = strategy.needs.moment || strategy.needs.samples;
  if (!statistics && wantsStats) {
    if (!options.batch) throw new MissingStatisticError(strategy.name, 'a grow batch (options.batch) to compute the growth matrix', site.name);
    const retain = strategy.needs.samples ? (options.retainSamples ?? 1024) : 0;
    const acc = collectStatistics(model, [site], options.batch, { loss: options.loss, retainSamples: retain, seed: options.seed ?? 0 }).get(site.name)!;
    statistics = acc.snapshot();
  }
  const t1 = performance.now();
  const request: GrowthRequest = { site: toCoreSite(model, site), count: options.units, rng: createRng(options.seed ?? 0) };
  if (statistics) request.statistics = statistics;
  if (strategy.needs.lossOracle && options.batch) request.lossOracle = makeLossOracle(model, site, options.batch, resolveLoss(options.loss, model));
  const units = strategy.grow(request);
  const t2 = performance.now();
  const added = widenSite(model, site, units, { resetOptimizer: options.resetOptimizer ?? false });
  const t3 = performance.now();
  return {
    model,
    report: {
      site: site.name,
      strategy: strategy.name,
      unitsAdded: added,
      widthBefore: site.units,
      widthAfter: site.units + added,
      functionPreserving: strategy.functionPreserving,
      statisticsExamples: statistics?.count ?? 0,
      strategyReport: units.report,
      timings: { statistics: t1 - t0, strategy: t2 - t1, widen: t3 - t2 },
    },
  };
}

/** Strategies that channel groups serve (they read M, input samples h, or nothing). */
const GROUP_STRATEGY_HINT = 'gradmax, gradmaxOpt, north, random, randomOutgoingZero, allZero or net2net';

function growGroup(model: tfl.LayersModel, group: ChannelGroup, options: GrowOptions): GrowResult {
  if (!Number.isInteger(options.units) || options.units <= 0) {
    throw new InvalidArgumentError(`group "${group.name}": units must be a positive integer, got ${options.units}`, { site: group.name, units: options.units });
  }
  const strategy = resolveStrategy(options.strategy, options.strategyOptions);
  if (strategy.needs.samples && !strategy.needs.inputsOnly) {
    throw new UnsupportedError(
      `${strategy.name} on group "${group.name}": the strategy reads per-example gradient rows g of the group's consumers${strategy.needs.lossOracle ? ' and a loss oracle' : ''}, which channel groups do not provide (they provide the growth matrix M and input samples h); use ${GROUP_STRATEGY_HINT}`,
      { site: group.name, strategy: strategy.name },
    );
  }
  const t0 = performance.now();
  let statistics = options.statistics;
  const core = groupToCoreSite(model, group);
  if (!statistics && strategy.needs.samples) {
    if (!options.batch) throw new MissingStatisticError(strategy.name, 'a grow batch (options.batch) to sample the inputs of the group\'s producers', group.name);
    const problem = groupRowsProblem(model, group);
    if (problem) throw new UnsupportedError(`${strategy.name} on group "${group.name}": ${problem}; use a strategy that reads no input samples`, { site: group.name, strategy: strategy.name });
    statistics = collectGroupInputSamples(model, group, options.batch, { retainSamples: options.retainSamples ?? DEFAULT_GROUP_SAMPLES, seed: options.seed ?? 0 });
  }
  if (!statistics && strategy.needs.moment) {
    if (!options.batch) throw new MissingStatisticError(strategy.name, 'a grow batch (options.batch) to compute the growth matrix', group.name);
    // GradMax refuses f'(0) = 0 before the (costlier) statistics pass.
    if (core.activation.df0 === 0) requireNonZeroSlopeAtZero(strategy.name, core);
    statistics = collectGroupStatistics(model, group, options.batch, options.loss === undefined ? {} : { loss: options.loss }).snapshot();
  }
  const t1 = performance.now();
  const request: GrowthRequest = { site: core, count: options.units, rng: createRng(options.seed ?? 0) };
  if (statistics) request.statistics = statistics;
  const units = strategy.grow(request);
  const t2 = performance.now();
  const { added } = widenGroup(model, group, units, { resetOptimizer: options.resetOptimizer ?? false });
  const t3 = performance.now();
  return {
    model,
    report: {
      site: group.name,
      strategy: strategy.name,
      unitsAdded: added,
      widthBefore: group.units,
      widthAfter: group.units + added,
      functionPreserving: strategy.functionPreserving,
      statisticsExamples: statistics?.count ?? 0,
      strategyReport: units.report,
      timings: { statistics: t1 - t0, strategy: t2 - t1, widen: t3 - t2 },
    },
  };
}

/**
 * {@link grow} on every backend, webgpu included: on a backend that cannot read synchronously (webgpu in Node) the
 * model's weights, optimizer slots and grow batch are downloaded first and the growth step runs on cpu (see
 * {@link withSyncReads}); elsewhere it is `grow` itself.
 */
export async function growAsync(model: tfl.LayersModel, options: GrowOptions): Promise<GrowResult> {
  return withSyncReads(growthTensors(model, options.batch), () => grow(model, options));
}
