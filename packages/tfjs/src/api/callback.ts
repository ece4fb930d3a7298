/**
 * A `model.fit` callback running a growth schedule.
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { InvalidArgumentError } from '@gradmax/core';
import type { Batch } from '../statistics/batch.js';
import { GrowthController, type GrowthControllerOptions } from './controller.js';

/** Options of {@link growthCallback}: a controller's options, with a grow batch required. */
export type GrowthCallbackOptions = GrowthControllerOptions & { growBatch: Batch | (() => Batch) };

/**
 * A `model.fit` callback that grows `model` on a schedule counted in training batches (steps).
 *
 * How it works with `fit`: tfjs's training function reads the model's variable list on every batch, and growth
 * widens the model **in place** (same model and layer objects, variables replaced, optimizer state padded), so
 * growing between two batches is safe and the running `fit` continues on the widened model. Growth due at step t
 * happens before batch t (in `onBatchEnd` of batch t−1, or `onTrainBegin` for the first step of this `fit`).
 *
 * Limitations: the grow batch must be given (`fit` does not expose its batches to callbacks); the step counter
 * counts batches across `fit` calls made with the same callback; per-epoch metrics mix pre- and post-growth steps;
 * `fit` must not run with a stale model reference elsewhere holding old tensors.
 *
 * @param model - the model passed to `fit`
 * @param options - schedule, strategy and grow batch (see {@link GrowthControllerOptions})
 * @returns the callback; its `controller` field exposes the step count and growth history
 */
export function growthCallback(model: tfl.LayersModel, options: GrowthCallbackOptions | GrowthController): tfl.CustomCallback & { controller: GrowthController } {
  const controller = options instanceof GrowthController ? options : new GrowthController(model, options);
  if (controller.model !== model) throw new InvalidArgumentError('growthCallback: the controller belongs to a different model');
  const callback = new tfl.CustomCallback({
    onTrainBegin: async () => {
      await controller.maybeGrowAsync(controller.stepCount);
    },
    onBatchEnd: async () => {
      controller.advance();
      await controller.maybeGrowAsync(controller.stepCount);
    },
  }) as tfl.CustomCallback & { controller: GrowthController };
  callback.controller = controller;
  return callback;
}
