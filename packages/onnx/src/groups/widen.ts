/**
 * Widening a group: every producer gains output channels (the strategy's stacked incoming rows; gate producers get
 * zero rows), every pass-through tensor gains identity channels (or copies of `sourceUnits`), every consumer gains
 * input channels (the stacked outgoing columns), at the same positions: after the group's channels (inside a
 * Concat, before the channels that follow), or at the end of each conv group for grouped convolutions. Existing
 * weights are copied byte for byte.
 * @packageDocumentation
 */
import { InvalidArgumentError, ShapeMismatchError, UnsupportedError, assertFinite, type NewUnits } from '@gradmax/core';
import { create } from '@bufbuild/protobuf';
import { TensorShapeProto_DimensionSchema, type TensorProto } from 'onnx-buf';
import { attr, nodeLabel } from '../attributes.js';
import { makeTensor, type OnnxModel } from '../model.js';
import { TensorBuffer } from '../tensor.js';
import { ownTensor } from '../widen.js';
import { findGroup, findGroups, groupPlan, isCurrentGroup } from './find.js';
import { incomingFlat, outgoingFlat } from './layers.js';
import { biasHolder } from './site.js';
import type { GroupLayer, GroupPlan, OnnxGroup } from './types.js';

/** What {@link widenGroup} did. */
export interface GroupWidenResult {
  /** Group name. */
  group: string;
  /** Channels before. */
  unitsBefore: number;
  /** Channels after. */
  unitsAfter: number;
  /** Tensors written (grown or created). */
  tensors: string[];
  /** Value infos updated. */
  shapesFixed: string[];
  /** Strategy report notes. */
  notes: string[];
}

/** Where the new channels go: group-local index before which new unit j is inserted. */
export function insertionPoints(units: number, multiple: number, k: number): number[] {
  if (multiple <= 1) return new Array<number>(k).fill(units);
  const per = k / multiple;
  return Array.from({ length: k }, (_, j) => (Math.floor(j / per) + 1) * (units / multiple));
}

/** Widens `group` (a name or a group found on this model) by the strategy's `newUnits`, in place. */
export function widenGroup(model: OnnxModel, group: string | OnnxGroup, newUnits: NewUnits): GroupWidenResult {
  const g = typeof group !== 'string' && isCurrentGroup(model, group) ? group : findGroup(model, typeof group === 'string' ? group : group.name, findGroups(model));
  const plan = groupPlan(g);
  if (!plan || !g.growable) throw new UnsupportedError(`group "${g.name}" is not growable: ${g.reason ?? 'unknown reason'}`, { group: g.name, file: model.label });
  const u = newUnits;
  const k = checkUnits(g, plan, u);
  const L = insertionPoints(plan.units, plan.multiple, k);
  const N = L.map((p, j) => p + j); // new index of new unit j
  const shift = (e: number) => e + L.filter((p) => p <= e).length; // new index of existing unit e
  const src = (j: number) => (u.sourceUnits ? u.sourceUnits[j]! : -1);
  const tensors: string[] = [];
  const changed = new Map<string, number[]>();
  const written = new Map<TensorProto, { tensor: TensorProto; value: string }>();
  const store = (t: TensorProto, buf: TensorBuffer) => {
    model.writeTensor(t, buf);
    tensors.push(t.name);
    changed.set(t.name, buf.dims);
  };
  const localGrouped = (l: GroupLayer, role: 'producer' | 'consumer') => l.groups > 1 && ((role === 'consumer' && l.type === 'Conv') || (role === 'producer' && l.type === 'ConvTranspose'));
  const growLayer = (l: GroupLayer, role: 'producer' | 'consumer', buf: TensorBuffer): TensorBuffer => {
    if (localGrouped(l, role)) return buf.growAxis(l.axis, k / l.groups);
    return buf.insertSlices(l.axis, entryPositions(l.offset, l.blk));
  };
  const entryPositions = (offset: number, blk: number) => {
    const out: number[] = [];
    for (const p of L) for (let q = 0; q < blk; q++) out.push(offset + p * blk);
    return out;
  };

  // 1. producers: new rows (stacked incoming); gates: zero rows or copies of the source unit's row
  for (const l of plan.producers) {
    const t = ownTensor(model, l.weight, [{ node: l.node, input: l.weightInput }], written, false);
    const grown = growLayer(l, 'producer', model.viewTensor(t));
    const at = new Float64Array(k * l.length);
    const values = new Float64Array(k * l.length);
    for (let j = 0; j < k; j++) {
      for (let i = 0; i < l.length; i++) {
        at[j * l.length + i] = incomingFlat(l, grown.dims, N[j]!, i);
        values[j * l.length + i] = u.incoming.data[j * plan.fanIn + l.start + i]!;
      }
    }
    grown.setMany(at, values, l.scale);
    store(t, grown);
  }
  for (const l of plan.gates) {
    const t = ownTensor(model, l.weight, [{ node: l.node, input: l.weightInput }], written, false);
    const grown = growLayer(l, 'producer', model.viewTensor(t));
    for (let j = 0; j < k; j++) {
      const s = src(j);
      if (s < 0) continue;
      for (let i = 0; i < l.length; i++) grown.copyElement(incomingFlat(l, grown.dims, shift(s), i), incomingFlat(l, grown.dims, N[j]!, i));
    }
    store(t, grown);
  }
  // 2. biases
  const holder = biasHolder(plan);
  const anyBias = u.incomingBias.some((b) => b !== 0);
  for (const l of [...plan.producers, ...plan.gates]) {
    const isHolder = l === holder;
    if (l.bias) {
      const b = l.bias;
      const t = ownTensor(model, b.weight, [{ node: b.node, input: b.input }], written);
      const old = model.readTensor(t);
      const units = plan.units;
      let grown: TensorBuffer;
      if (b.broadcast) {
        const expanded = new TensorBuffer(old.dataType, [units]);
        for (let i = 0; i < units; i++) expanded.bytes.set(old.bytes.subarray(0, old.elemSize), i * old.elemSize);
        grown = expanded.insertSlices(0, L);
      } else grown = old.insertSlices(b.axis, L);
      for (let j = 0; j < k; j++) {
        const s = src(j);
        if (isHolder) grown.set(N[j]!, b.scale === 0 ? 0 : u.incomingBias[j]! / b.scale);
        else if (s >= 0) grown.copyElement(shift(s), N[j]!);
      }
      store(t, grown);
    } else if (isHolder && anyBias) {
      const name = model.uniqueName(`${nodeLabel(l.node)}_bias`);
      const buf = new TensorBuffer(plan.dataType, [plan.units + k]);
      for (let j = 0; j < k; j++) buf.set(N[j]!, u.incomingBias[j]!);
      model.addInitializer(makeTensor(name, plan.dataType, buf.dims, buf));
      while (l.node.input.length < l.biasSlot!) l.node.input.push('');
      l.node.input[l.biasSlot!] = name;
      if (l.type === 'Gemm') {
        const beta = attr(l.node, 'beta');
        if (beta) beta.f = 1;
      }
      model.invalidate();
      tensors.push(name);
    }
  }
  // 3. per-channel tensors of pass-through nodes
  const byTensor = new Map<TensorProto, GroupPlan['params']>();
  for (const p of plan.params) byTensor.set(p.weight.tensor, [...(byTensor.get(p.weight.tensor) ?? []), p]);
  for (const [, list] of byTensor) {
    const p = list[0]!;
    if (list.some((q) => q.axis !== p.axis || q.offset !== p.offset || q.blk !== p.blk)) throw new UnsupportedError(`group "${g.name}": tensor "${p.weight.name}" is used with two different channel layouts`, { group: g.name });
    const t = ownTensor(model, p.weight, list.map((q) => ({ node: q.node, input: q.input })), written);
    const grown = model.readTensor(t).insertSlices(p.axis, entryPositions(p.offset, p.blk));
    const dims = grown.dims;
    const strideOf = (a: number) => dims.slice(a + 1).reduce((x, y) => x * y, 1);
    const stride = strideOf(p.axis);
    const outer = dims.slice(0, p.axis).reduce((x, y) => x * y, 1);
    const along = dims[p.axis]!;
    const centre = dims.map((d) => Math.floor((d - 1) / 2));
    for (let j = 0; j < k; j++) {
      const s = src(j);
      for (let q = 0; q < p.blk; q++) {
        const idx = p.offset + N[j]! * p.blk + q;
        const from = s >= 0 ? p.offset + shift(s) * p.blk + q : -1;
        for (let o = 0; o < outer; o++) {
          for (let r = 0; r < stride; r++) {
            const flat = (o * along + idx) * stride + r;
            if (from >= 0) {
              grown.copyElement((o * along + from) * stride + r, flat);
              continue;
            }
            let v = 0;
            if (p.fill === 'one') v = 1;
            else if (p.fill === 'bnvar') v = 1 - (p.eps ?? 1e-5);
            else if (p.fill === 'prelu') v = 0.25;
            else if (p.fill === 'delta') {
              // depthwise weight [C, 1, k…]: 1 at the kernel centre
              let rem = r;
              let isCentre = true;
              for (let a = dims.length - 1; a > p.axis; a--) {
                const c = rem % dims[a]!;
                rem = (rem - c) / dims[a]!;
                if (a >= 2 && c !== centre[a]) isCentre = false;
                if (a === 1 && c !== 0) isCentre = false;
              }
              v = isCentre ? 1 : 0;
            }
            grown.set(flat, v);
          }
        }
      }
    }
    store(t, grown);
  }
  for (const n of plan.depthwise) {
    const a = attr(n, 'group');
    if (a) a.i += BigInt(k);
  }
  for (const tg of plan.targets) {
    const t = ownTensor(model, tg.weight, [{ node: tg.node, input: tg.input }], written);
    const buf = model.readTensor(t);
    buf.set(tg.index, buf.get(tg.index) + k * tg.blk);
    store(t, buf);
  }
  // 4. consumers: new input channels (stacked outgoing), existing columns rescaled when asked
  for (const l of plan.consumers) {
    const t = ownTensor(model, l.weight, [{ node: l.node, input: l.weightInput }], written, false);
    const grown = growLayer(l, 'consumer', model.viewTensor(t));
    if (u.existingOutgoingScale) {
      for (let e = 0; e < plan.units; e++) {
        const s = u.existingOutgoingScale[e]!;
        if (s === 1) continue;
        for (let r = 0; r < l.length; r++) {
          const at = outgoingFlat(l, grown.dims, shift(e), r);
          grown.set(at, grown.get(at) * s);
        }
      }
    }
    const at = new Float64Array(k * l.length);
    const values = new Float64Array(k * l.length);
    for (let j = 0; j < k; j++) {
      for (let r = 0; r < l.length; r++) {
        at[j * l.length + r] = outgoingFlat(l, grown.dims, N[j]!, r);
        values[j * l.length + r] = u.outgoing.data[(l.start + r) * k + j]!;
      }
    }
    grown.setMany(at, values, l.scale);
    store(t, grown);
  }
  const shapesFixed = fixShapes(model, plan, k, changed);
  model.invalidate();
  return { group: g.name, unitsBefore: plan.units, unitsAfter: plan.units + k, tensors, shapesFixed, notes: [...(u.report?.notes ?? [])] };
}

function checkUnits(g: OnnxGroup, plan: GroupPlan, u: NewUnits): number {
  const where = { group: g.name };
  const k = u.incoming.rows;
  if (!Number.isInteger(k) || k <= 0) throw new InvalidArgumentError(`group "${g.name}": new units must add at least one unit`, where);
  if (k % plan.multiple !== 0) throw new InvalidArgumentError(`group "${g.name}": ${k} new units do not split into ${plan.multiple} conv groups; add a multiple of ${plan.multiple}`, { ...where, multiple: plan.multiple });
  if (u.incoming.cols !== plan.fanIn) throw new ShapeMismatchError(`group "${g.name}" new incoming weights`, [k, plan.fanIn], u.incoming.shape, where);
  if (u.outgoing.rows !== plan.fanOut || u.outgoing.cols !== k) throw new ShapeMismatchError(`group "${g.name}" new outgoing weights`, [plan.fanOut, k], u.outgoing.shape, where);
  if (u.incomingBias.length !== k) throw new ShapeMismatchError(`group "${g.name}" new biases`, [k], [u.incomingBias.length], where);
  if (u.existingOutgoingScale && u.existingOutgoingScale.length !== plan.units) throw new ShapeMismatchError(`group "${g.name}" existingOutgoingScale`, [plan.units], [u.existingOutgoingScale.length], where);
  const per = plan.units / plan.multiple;
  const L = insertionPoints(plan.units, plan.multiple, k);
  if (u.sourceUnits) {
    if (u.sourceUnits.length !== k) throw new ShapeMismatchError(`group "${g.name}" sourceUnits`, [k], [u.sourceUnits.length], where);
    u.sourceUnits.forEach((s, j) => {
      if (s < -1 || s >= plan.units) throw new InvalidArgumentError(`group "${g.name}": sourceUnits entry ${s} is not an existing unit (0..${plan.units - 1}) or -1`, where);
      if (s >= 0 && plan.multiple > 1 && Math.floor(s / per) !== L[j]! / per - 1) throw new UnsupportedError(`group "${g.name}": new unit ${j} goes to conv group ${L[j]! / per - 1} but copies unit ${s} of conv group ${Math.floor(s / per)}`, where);
    });
  }
  // New biases need a producer that can hold them: checked before anything is written.
  const holder = biasHolder(plan);
  if (u.incomingBias.some((b) => b !== 0)) {
    if (!holder) throw new UnsupportedError(`group "${g.name}": no producer can take a bias (MatMul without a bias Add), but the new units have non-zero biases`, where);
    if (holder.bias?.scale === 0) throw new UnsupportedError(`group "${g.name}": the bias of "${nodeLabel(holder.bias.node)}" is scaled by beta = 0, so new biases cannot be set`, where);
  }
  assertFinite(`group "${g.name}" new incoming weights`, u.incoming.data, where);
  assertFinite(`group "${g.name}" new outgoing weights`, u.outgoing.data, where);
  assertFinite(`group "${g.name}" new biases`, u.incomingBias, where);
  if (u.existingOutgoingScale) assertFinite(`group "${g.name}" existingOutgoingScale`, u.existingOutgoingScale, where);
  // Incoming-zero units with non-zero outgoing weights carry f(0) to the consumers: harmless only when f(0) = 0 there.
  for (let j = 0; j < k; j++) {
    if (u.sourceUnits && u.sourceUnits[j]! >= 0) continue;
    let inZero = u.incomingBias[j] === 0;
    for (let i = 0; inZero && i < plan.fanIn; i++) inZero = u.incoming.data[j * plan.fanIn + i] === 0;
    if (!inZero) continue;
    for (const c of plan.consumers) {
      if (c.f0 === 0) continue;
      let outZero = true;
      for (let r = 0; outZero && r < c.length; r++) outZero = u.outgoing.data[(c.start + r) * k + j] === 0;
      if (!outZero) {
        throw new UnsupportedError(
          `group "${g.name}": new unit ${j} has zero incoming weights but non-zero outgoing weights into ${c.node.opType} "${nodeLabel(c.node)}", which sees f(0) = ${c.f0} ≠ 0 (${plan.activation.name}), so the model's function would change; use a strategy with zero outgoing weights (randomOutgoingZero, north) or a copying one (net2net)`,
          { group: g.name, consumer: nodeLabel(c.node), f0: c.f0 },
        );
      }
    }
  }
  return k;
}

function fixShapes(model: OnnxModel, plan: GroupPlan, k: number, changed: Map<string, number[]>): string[] {
  const fixed: string[] = [];
  const g = model.graph;
  const dimsOf = (d: number[]) => d.map((x) => create(TensorShapeProto_DimensionSchema, { value: { case: 'dimValue', value: BigInt(x) } }));
  for (const input of g.input) {
    const dims = changed.get(input.name);
    if (!dims || input.type?.value.case !== 'tensorType' || !input.type.value.value.shape) continue;
    input.type.value.value.shape.dim = dimsOf(dims);
    fixed.push(input.name);
  }
  const byName = new Map(plan.values.map((v) => [v.name, v]));
  for (const vi of g.valueInfo) {
    const v = byName.get(vi.name);
    if (!v) continue;
    const shape = vi.type?.value.case === 'tensorType' ? vi.type.value.value.shape : undefined;
    const dim = shape?.dim[v.axis];
    if (!dim || dim.value.case !== 'dimValue') continue;
    dim.value = { case: 'dimValue', value: dim.value.value + BigInt(k * v.blk) };
    fixed.push(vi.name);
  }
  return fixed;
}

