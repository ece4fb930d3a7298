/**
 * Running a growth schedule inside a training loop.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { InvalidArgumentError, type GrowthEvent, type GrowthSchedule, type ScheduledSite } from '@gradmax/core';
import { findGrowthSites } from '../sites/find.js';
import { validateBatch, type Batch } from '../statistics/batch.js';
import type { LossSpec } from '../statistics/loss.js';
import { grow, type GrowEventReport } from './grow.js';
import { growthTensors, withSyncReads } from '../backend/sync-reads.js';
import type { StrategySpec } from './strategy.js';

/** Options of {@link GrowthController}. */
export interface GrowthControllerOptions {
  /** When to grow which site by how much (`allAtOnce`, `roundRobin`, `customSchedule` from `@gradmax/core`). */
  schedule: GrowthSchedule;
  /** Strategy name or object used at every event. */
  strategy: StrategySpec;
  /** Options for a strategy given by name. */
  strategyOptions?: Record<string, unknown>;
  /**
   * Grow batch (or a function returning a fresh one per event; the controller disposes those after use). When absent,
   * {@link GrowthController.step} uses its training batch and {@link GrowthController.maybeGrow} needs one passed in.
   */
  growBatch?: Batch | (() => Batch);
  /** Loss for statistics; default: the model's compiled loss. */
  loss?: LossSpec;
  /** Base seed; event e, site s uses `seed + 1000·e + s`. Default 0. */
  seed?: number;
  /** Reset optimizer state at each growth instead of carrying it (default false). */
  resetOptimizer?: boolean;
  /** Steps already trained (to resume a run). Default 0. */
  startStep?: number;
  /** Called after each growth event with its reports. */
  onGrow?: (event: GrowthEvent, reports: GrowEventReport[]) => void;
}

/** Result of one {@link GrowthController.step}. */
export interface ControllerStep {
  /** Training loss returned by `trainOnBatch`. */
  loss: number | number[];
  /** Reports of the growth that happened before this step (empty when none). */
  grown: GrowEventReport[];
}

/** The schedule's view of a model's sites and channel groups: name and current width (use at the start of training). */
export function scheduledSites(model: tfl.LayersModel): ScheduledSite[] {
  const scan = findGrowthSites(model);
  return [...scan.sites, ...scan.groups].map((s) => ({ name: s.name, initialWidth: s.units }));
}

/**
 * Runs a core growth schedule in a custom training loop. The model is widened in place, so the object you hold
 * stays valid (and so does a `model.fit` in progress, see {@link growthCallback}).
 *
 * @example
 * ```ts
 * const schedule = allAtOnce({ sites: scheduledSites(model), start: 100, every: 100, times: 3, amount: { fraction: 0.25 } });
 * const controller = new GrowthController(model, { schedule, strategy: 'gradmax', growBatch: () => nextBatch() });
 * for (const batch of batches) await controller.step(batch);
 * ```
 */
export class GrowthController {
  /** The model being grown (widened in place). */
  readonly model: tfl.LayersModel;
  /** Every growth report so far, in order. */
  readonly history: GrowEventReport[] = [];
  private readonly options: GrowthControllerOptions;
  private steps: number;

  constructor(model: tfl.LayersModel, options: GrowthControllerOptions) {
    if (!options?.schedule || typeof options.schedule.eventAt !== 'function') throw new InvalidArgumentError('GrowthController needs a schedule (see allAtOnce / roundRobin in @gradmax/core)');
    if (!options.strategy) throw new InvalidArgumentError('GrowthController needs a strategy');
    const start = options.startStep ?? 0;
    if (!Number.isInteger(start) || start < 0) throw new InvalidArgumentError(`startStep must be a non-negative integer, got ${start}`);
    this.model = model;
    this.options = options;
    this.steps = start;
  }

  /** Training steps done so far (the step index the next {@link GrowthController.step} will run). */
  get stepCount(): number {
    return this.steps;
  }

  /** Advances the step counter without training (for loops that train by other means, e.g. `model.fit`). */
  advance(steps = 1): void {
    this.steps += steps;
  }

  private growBatch(fallback?: Batch): Batch {
    const source = this.options.growBatch;
    const batch = typeof source === 'function' ? source() : (source ?? fallback);
    if (!batch) throw new InvalidArgumentError('a growth event is due but no grow batch is available (set growBatch or pass one)');
    return batch;
  }

  /**
   * Grows if the schedule has an event at `step` (before that step's gradient update). Sites are grown in the
   * event's order, each seeing the already-grown earlier ones. Returns the reports (empty when nothing is due).
   */
  maybeGrow(step: number, batch?: Batch): GrowEventReport[] {
    const event = this.options.schedule.eventAt(step);
    if (!event) return [];
    const growBatch = this.growBatch(batch);
    const reports: GrowEventReport[] = [];
    event.sites.forEach((entry, s) => {
      const { report } = grow(this.model, {
        site: entry.site,
        units: entry.units,
        strategy: this.options.strategy,
        batch: growBatch,
        seed: (this.options.seed ?? 0) + 1000 * event.index + s,
        ...(this.options.strategyOptions ? { strategyOptions: this.options.strategyOptions } : {}),
        ...(this.options.loss ? { loss: this.options.loss } : {}),
        ...(this.options.resetOptimizer ? { resetOptimizer: true } : {}),
      });
      reports.push(report);
    });
    if (typeof this.options.growBatch === 'function') {
      // A fresh batch per event belongs to the controller.
      (growBatch.xs as tf.Tensor).dispose();
      (growBatch.ys as tf.Tensor).dispose();
    }
    this.history.push(...reports);
    this.options.onGrow?.(event, reports);
    return reports;
  }

  /**
   * {@link GrowthController.maybeGrow} on every backend: on webgpu in Node (no synchronous reads) the growth runs on
   * cpu after the weights, optimizer slots and grow batch are downloaded (see `withSyncReads`).
   */
  async maybeGrowAsync(step: number, batch?: Batch): Promise<GrowEventReport[]> {
    return this.growWithReads(step, batch, false);
  }

  private async growWithReads(step: number, batch: Batch | undefined, validate: boolean): Promise<GrowEventReport[]> {
    if (!this.options.schedule.eventAt(step)) return [];
    const fixed = typeof this.options.growBatch === 'function' ? undefined : this.options.growBatch;
    return withSyncReads(growthTensors(this.model, fixed, batch), () => {
      if (validate && batch) validateBatch(this.model, batch, 'training batch');
      return this.maybeGrow(step, batch);
    });
  }

  /** One training step: grow if due (with the grow batch, else this batch), then `trainOnBatch`. */
  async step(batch: Batch): Promise<ControllerStep> {
    const grown = await this.growWithReads(this.steps, batch, true);
    const loss = await this.model.trainOnBatch(batch.xs, batch.ys);
    this.steps += 1;
    return { loss, grown };
  }
}
