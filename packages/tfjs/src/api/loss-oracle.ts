/**
 * The loss oracle some strategies use for line searches (TINY): the grow batch's mean loss, in inference mode, of the
 * network with candidate units added at an amplitude on both sides. Evaluated by a temporary widening that is undone.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { Matrix, type LossOracle, type NewUnits } from '@gradmax/core';
import type { TfjsGrowthSite } from '../sites/types.js';
import type { Batch } from '../statistics/batch.js';
import type { MeanLoss } from '../statistics/loss.js';
import { withTemporaryUnits } from '../widen/temporary.js';

function scaled(units: NewUnits, amplitude: number): NewUnits {
  const incoming = new Matrix(units.incoming.rows, units.incoming.cols, units.incoming.data.map((v) => v * amplitude));
  const outgoing = new Matrix(units.outgoing.rows, units.outgoing.cols, units.outgoing.data.map((v) => v * amplitude));
  return { ...units, incoming, outgoing, incomingBias: units.incomingBias.map((v) => v * amplitude) };
}

/** Builds the loss oracle of `site` on `batch` (see the module notes). The model is unchanged after every call. */
export function makeLossOracle(model: tfl.LayersModel, site: TfjsGrowthSite, batch: Batch, loss: MeanLoss): LossOracle {
  return (units: NewUnits, amplitude: number): number =>
    withTemporaryUnits(model, site, scaled(units, amplitude), () => tf.tidy(() => loss(batch.ys, model.predict(batch.xs) as tf.Tensor).dataSync()[0]!));
}
