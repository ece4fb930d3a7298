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
  /** Copies a `[rows × cols]` row-major block into `m` (row stride `stride`) at column `col`, scaled. */
  const place = (m: Matrix, src: ArrayLike<number>, rows: number, cols: number, row0: number, col: number, stride: number, scale: number) => {
    for (let r = 0; r < rows; r++) {
      const base = (row0 + r) * stride + col;
      for (let c = 0; c < cols; c++) m.data[base + c] = scale * src[r * cols + c]!;
    }
  };
  const readIncoming = (): Matrix => {
    const m = Matrix.zeros(units, fanIn);
    for (const { l, w } of producers) {
      if (l.type === 'MatMul' || (l.type === 'Gemm' && l.axis === 1)) {
        // weight [fanIn_p, units]: a tiled transpose, straight into the matrix when it is the only block
        if (l.length === fanIn && l.scale === 1) w.toFloat64Transposed(w.dims[0]!, w.dims[1]!, m.data);
        else place(m, w.toFloat64Transposed(w.dims[0]!, w.dims[1]!), units, l.length, 0, l.start, fanIn, l.scale);
      } else if (l.type === 'Gemm') {
        place(m, w.toFloat64(), units, l.length, 0, l.start, fanIn, l.scale);
      } else {
        const at = w.reader();
        for (let u = 0; u < units; u++) for (let i = 0; i < l.length; i++) m.data[u * fanIn + l.start + i] = l.scale * at(incomingFlat(l, w.dims, u, i));
      }
    }
    return m;
  };
  const readOutgoing = (): Matrix => {
    const m = Matrix.zeros(fanOut, units);
    for (const { l, w } of consumers) {
      const whole = l.offset === 0 && l.blk === 1 && w.dims[l.axis] === units;
      if (whole && (l.type === 'MatMul' || (l.type === 'Gemm' && l.axis === 0))) {
        // weight [units, n]: a tiled transpose gives the [n × units] block
        if (l.length === fanOut && l.scale === 1) w.toFloat64Transposed(w.dims[0]!, w.dims[1]!, m.data);
        else place(m, w.toFloat64Transposed(w.dims[0]!, w.dims[1]!), l.length, units, l.start, 0, units, l.scale);
      } else if (whole && l.type === 'Gemm') {
        place(m, w.toFloat64(), l.length, units, l.start, 0, units, l.scale);
      } else {
        const at = w.reader();
        for (let u = 0; u < units; u++) for (let r = 0; r < l.length; r++) m.data[(l.start + r) * units + u] = l.scale * at(outgoingFlat(l, w.dims, u, r));
      }
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
