/**
 * Carrying optimizer state (momentum, Adam moments, RMSProp accumulators, ...) across a widening: old entries keep
 * their values, new entries start at zero (Adagrad: at its initial accumulator value). Step counters are kept.
 */
import * as tf from '@tensorflow/tfjs-core';
import { UnsupportedError } from '@gradmax/core';
import { padLike } from '../widen/extend-axis.js';

interface Slot {
  originalName: string;
  variable: tf.Variable;
}

const SLOT_FIELDS = [
  'accumulations',
  'accumulatedFirstMoment',
  'accumulatedSecondMoment',
  'accumulatedMeanSquares',
  'accumulatedMoments',
  'accumulatedMeanGrads',
  'accumulatedGrads',
  'accumulatedUpdates',
  'accumulatedWeightedInfNorm',
] as const;

const KNOWN = new Set(['SGD', 'SGDOptimizer', 'Momentum', 'MomentumOptimizer', 'Adam', 'AdamOptimizer', 'RMSProp', 'RMSPropOptimizer', 'Adagrad', 'AdagradOptimizer', 'Adadelta', 'AdadeltaOptimizer', 'Adamax', 'AdamaxOptimizer']);

function slotArrays(optimizer: tf.Optimizer): { field: string; slots: (Slot | undefined)[] }[] {
  const o = optimizer as unknown as Record<string, unknown>;
  return SLOT_FIELDS.filter((f) => Array.isArray(o[f])).map((field) => ({ field, slots: o[field] as (Slot | undefined)[] }));
}

/** Every slot variable of `optimizer` (momentum, moments, accumulators), in no particular order. */
export function optimizerSlotVariables(optimizer: tf.Optimizer): tf.Variable[] {
  return slotArrays(optimizer).flatMap(({ slots }) => slots.filter((s): s is Slot => s != null).map((s) => s.variable));
}

/** Class name of an optimizer (`"Adam"`, `"SGD"`, ...). */
export function optimizerName(optimizer: tf.Optimizer): string {
  return optimizer.getClassName();
}

/**
 * Throws {@link UnsupportedError} when the optimizer's state layout is unknown (a custom optimizer): its slots could
 * not be carried safely.
 */
export function assertKnownOptimizer(optimizer: tf.Optimizer): void {
  const name = optimizerName(optimizer);
  if (!KNOWN.has(name)) {
    throw new UnsupportedError(`optimizer "${name}" is not known to gradmax: its state cannot be carried across growth (pass resetOptimizer: true)`, { optimizer: name });
  }
}

/**
 * Pads every slot of the variable at `index` (its position in the model's trainable weights) to the widened
 * shape. `source` maps each new flat index to the old one (−1 for new entries).
 */
export function padOptimizerSlots(optimizer: tf.Optimizer, index: number, shape: number[], source: Int32Array): void {
  const initialAccumulator = (optimizer as unknown as { initialAccumulatorValue?: number }).initialAccumulatorValue;
  for (const { field, slots } of slotArrays(optimizer)) {
    const slot = slots[index];
    if (!slot) continue;
    const fill = field === 'accumulatedGrads' && initialAccumulator !== undefined ? initialAccumulator : 0;
    const old = slot.variable.dataSync();
    const padded = tf.tensor(padLike(old, source, fill), shape, slot.variable.dtype);
    const trainable = slot.variable.trainable;
    slot.variable.dispose();
    slots[index] = { originalName: slot.originalName, variable: tf.variable(padded, trainable) };
    padded.dispose();
  }
}

/**
 * Drops all slot state (it is recreated lazily as zeros, Adagrad at its initial value). Step counters (Adam's β
 * powers, iteration counts) are kept, so learning-rate schedules stay global.
 */
export function resetOptimizerSlots(optimizer: tf.Optimizer): void {
  for (const { slots } of slotArrays(optimizer)) {
    for (const slot of slots) slot?.variable.dispose();
    slots.length = 0;
  }
}
