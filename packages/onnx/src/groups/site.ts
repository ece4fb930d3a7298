/**
 * A group as one core {@link GrowthSite}: the incoming matrix stacks the producers' incoming weights (columns in
 * producer order, see `incomingBlocks`), the outgoing matrix stacks the consumers' outgoing weights (rows in consumer
 * order, see `outgoingBlocks`), so no strategy needs to know about groups.
 * @packageDocumentation
 */
import { Matrix, UnsupportedError, type GrowthSite } from '@gradmax/core';
import type { OnnxModel } from '../model.js';
import { groupPlan } from './find.js';
import { incomingFlat, outgoingFlat } from './layers.js';
import type { GroupLayer, GroupPlan, OnnxGroup } from './types.js';

/** The producer whose bias carries the new units' biases: the first with a bias, else the first that can take one. */
export function biasHolder(plan: GroupPlan): GroupLayer | undefined {
  return plan.producers.find((p) => p.bias) ?? plan.producers.find((p) => p.biasSlot !== undefined);
}

/**
 * The core {@link GrowthSite} of a growable group. `incoming`, `outgoing` and `incomingBias` are built on first
 * access from views of the current tensors (captured now), so a strategy that never reads a matrix never pays for it.
 * Throws {@link UnsupportedError} with the group's reason when it is not growable.
 */
export function groupGrowthSite(model: OnnxModel, group: OnnxGroup): GrowthSite {
  const plan = groupPlan(group);
  if (!plan || !group.growable) throw new UnsupportedError(`group "${group.name}" is not growable: ${group.reason ?? 'unknown reason'}`, { group: group.name, file: model.label });
  const { units, fanIn, fanOut } = plan;
  const producers = plan.producers.map((l) => ({ l, w: model.viewTensor(l.weight.tensor) }));
  const consumers = plan.consumers.map((l) => ({ l, w: model.viewTensor(l.weight.tensor) }));
  const holder = biasHolder(plan);
  const b = holder?.bias ? { bias: holder.bias, v: model.viewTensor(holder.bias.weight.tensor) } : undefined;
  let incoming: Matrix | undefined;
  let outgoing: Matrix | undefined;
  let incomingBias: Float64Array | undefined;
  const readIncoming = (): Matrix => {
    const m = Matrix.zeros(units, fanIn);
    for (const { l, w } of producers) {
      const at = w.reader();
      for (let u = 0; u < units; u++) for (let i = 0; i < l.length; i++) m.data[u * fanIn + l.start + i] = l.scale * at(incomingFlat(l, w.dims, u, i));
    }
    return m;
  };
  const readOutgoing = (): Matrix => {
    const m = Matrix.zeros(fanOut, units);
    for (const { l, w } of consumers) {
      const at = w.reader();
      for (let r = 0; r < l.length; r++) for (let u = 0; u < units; u++) m.data[(l.start + r) * units + u] = l.scale * at(outgoingFlat(l, w.dims, u, r));
    }
    return m;
  };
  const site = { name: group.name, kind: 'dense', units, fanIn, fanOut, activation: { ...plan.activation } } as GrowthSite;
  Object.defineProperty(site, 'incoming', { enumerable: true, get: () => (incoming ??= readIncoming()) });
  Object.defineProperty(site, 'outgoing', { enumerable: true, get: () => (outgoing ??= readOutgoing()) });
  if (b) {
    Object.defineProperty(site, 'incomingBias', {
      enumerable: true,
      get: () => {
        if (!incomingBias) {
          incomingBias = new Float64Array(units);
          for (let u = 0; u < units; u++) incomingBias[u] = b.bias.scale * b.v.get(b.bias.broadcast ? 0 : u);
        }
        return incomingBias;
      },
    });
  }
  return site;
}
