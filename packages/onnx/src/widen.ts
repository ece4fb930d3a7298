/**
 * Applying a strategy's {@link NewUnits} to an ONNX model: grow the current layer's output channels/columns and bias,
 * extend the per-channel parameters of in-between ops (identity channels, or copies of `sourceUnits`), grow the next
 * layer's input rows/channels, scale existing outgoing columns (`existingOutgoingScale`), and fix every changed
 * shape (value_info, graph inputs of initializers, Reshape targets, depthwise `group`). Existing weights are copied
 * byte for byte, so they stay bit-identical (except columns a strategy explicitly rescales).
 * @packageDocumentation
 */
import { InvalidArgumentError, ShapeMismatchError, UnsupportedError, assertFinite, type NewUnits } from '@gradmax/core';
import { create } from '@bufbuild/protobuf';
import { TensorShapeProto_DimensionSchema, type NodeProto, type TensorProto } from 'onnx-buf';
import { attr, nodeLabel } from './attributes.js';
import { makeTensor, type OnnxModel, type WeightRef } from './model.js';
import { findSite, findSites, incomingIndex, isCurrentSite, outgoingIndex, sitePlan, type OnnxSite, type SitePlan } from './sites.js';
import { TensorBuffer, tensorDims } from './tensor.js';

/** One widening: a site (by name or as found by {@link findSites}) and the units to add. */
export interface WidenRequest {
  /** Site name (or current layer's node name), or a site from {@link findSites}. */
  site: string | OnnxSite;
  /** The strategy's output for this site. */
  newUnits: NewUnits;
}

/** What {@link widen} did at one site. */
export interface WidenResult {
  /** Site name. */
  site: string;
  /** Units before. */
  unitsBefore: number;
  /** Units after. */
  unitsAfter: number;
  /** Names of tensors written (grown or created). */
  tensors: string[];
  /** Value infos updated or dropped. */
  shapesFixed: string[];
  /** Strategy report notes. */
  notes: string[];
}

/**
 * Widens the model in place, one request after the other. Each site is looked up again on the current model (so a
 * request may refer to a site by name after an earlier request changed the model); `newUnits` must match the site's
 * current shapes. Throws {@link UnsupportedError} for sites that are not growable or when the new units would not
 * be function-preserving through an activation with f(0) ≠ 0, {@link ShapeMismatchError} for wrong shapes.
 */
export function widen(model: OnnxModel, requests: readonly WidenRequest[]): WidenResult[] {
  const results: WidenResult[] = [];
  for (const req of requests) {
    const name = typeof req.site === 'string' ? req.site : req.site.name;
    const site = typeof req.site !== 'string' && isCurrentSite(model, req.site) ? req.site : findSite(model, name, findSites(model));
    results.push(widenSite(model, site, req.newUnits));
  }
  return results;
}

function checkUnits(site: OnnxSite, plan: SitePlan, u: NewUnits): number {
  const where = { site: site.name };
  const k = u.incoming.rows;
  if (!Number.isInteger(k) || k <= 0) throw new InvalidArgumentError(`site "${site.name}": new units must add at least one unit`, where);
  if (u.incoming.cols !== plan.fanIn) throw new ShapeMismatchError(`site "${site.name}" new incoming weights`, [k, plan.fanIn], u.incoming.shape, where);
  if (u.outgoing.rows !== plan.fanOut || u.outgoing.cols !== k) throw new ShapeMismatchError(`site "${site.name}" new outgoing weights`, [plan.fanOut, k], u.outgoing.shape, where);
  if (u.incomingBias.length !== k) throw new ShapeMismatchError(`site "${site.name}" new biases`, [k], [u.incomingBias.length], where);
  if (u.existingOutgoingScale && u.existingOutgoingScale.length !== plan.units) throw new ShapeMismatchError(`site "${site.name}" existingOutgoingScale`, [plan.units], [u.existingOutgoingScale.length], where);
  if (u.sourceUnits) {
    if (u.sourceUnits.length !== k) throw new ShapeMismatchError(`site "${site.name}" sourceUnits`, [k], [u.sourceUnits.length], where);
    for (const s of u.sourceUnits) if (s < -1 || s >= plan.units) throw new InvalidArgumentError(`site "${site.name}": sourceUnits entry ${s} is not an existing unit (0..${plan.units - 1}) or -1`, where);
  }
  assertFinite(`site "${site.name}" new incoming weights`, u.incoming.data, where);
  assertFinite(`site "${site.name}" new outgoing weights`, u.outgoing.data, where);
  assertFinite(`site "${site.name}" new biases`, u.incomingBias, where);
  if (u.existingOutgoingScale) assertFinite(`site "${site.name}" existingOutgoingScale`, u.existingOutgoingScale, where);
  // An incoming-zero unit with non-zero outgoing weights outputs f(0) through the in-between ops: only harmless when f(0) = 0.
  const f0 = plan.activation.f0;
  if (f0 !== 0) {
    for (let j = 0; j < k; j++) {
      if (u.sourceUnits && u.sourceUnits[j]! >= 0) continue;
      let inZero = u.incomingBias[j] === 0;
      for (let i = 0; inZero && i < plan.fanIn; i++) inZero = u.incoming.data[j * plan.fanIn + i] === 0;
      let outZero = true;
      for (let r = 0; outZero && r < plan.fanOut; r++) outZero = u.outgoing.data[r * k + j] === 0;
      if (inZero && !outZero) {
        throw new UnsupportedError(
          `site "${site.name}": new unit ${j} has zero incoming weights but non-zero outgoing weights, and the ops between the layers (${plan.activation.name}) have f(0) = ${f0} ≠ 0, so the model's function would change; use a strategy with zero outgoing weights`,
          { site: site.name, activation: plan.activation.name, f0 },
        );
      }
    }
  }
  return k;
}

/** @internal Returns the tensor to write for `ref`, cloning it under a fresh name (and rewiring `node.input[input]`) when other nodes share it. */
export function ownTensor(model: OnnxModel, ref: WeightRef, users: { node: NodeProto; input: number }[], written: Map<TensorProto, { tensor: TensorProto; value: string }>, reuse = true): TensorProto {
  const done = reuse ? written.get(ref.tensor) : undefined;
  if (done) {
    for (const u of users) u.node.input[u.input] = done.value;
    return done.tensor;
  }
  const consumers = model.consumersOf(ref.name);
  const shared = consumers.some((n) => !users.some((u) => u.node === n)) || model.indexes.outputs.has(ref.name);
  if (!shared) {
    written.set(ref.tensor, { tensor: ref.tensor, value: ref.name });
    return ref.tensor;
  }
  // Shared (weight tying, or a constant used elsewhere): write a private copy.
  const name = model.uniqueName(`${ref.name}_widened`);
  const buf = model.readTensor(ref.tensor);
  const t = makeTensor(name, ref.tensor.dataType, buf.dims, buf);
  model.addInitializer(t);
  for (const u of users) u.node.input[u.input] = name;
  written.set(ref.tensor, { tensor: t, value: name });
  model.invalidate();
  return t;
}

function widenSite(model: OnnxModel, site: OnnxSite, u: NewUnits): WidenResult {
  const plan = sitePlan(site);
  if (!plan || !site.growable) throw new UnsupportedError(`site "${site.name}" is not growable: ${site.reason ?? 'unknown reason'}`, { site: site.name, file: model.label });
  const k = checkUnits(site, plan, u);
  const tensors: string[] = [];
  const written = new Map<TensorProto, { tensor: TensorProto; value: string }>();
  const changedInits = new Map<string, number[]>();
  const store = (t: TensorProto, buf: TensorBuffer) => {
    model.writeTensor(t, buf);
    tensors.push(t.name);
    changedInits.set(t.name, buf.dims);
  };
  const src = (j: number) => (u.sourceUnits ? u.sourceUnits[j]! : -1);

  // 1. current layer weight
  {
    const t = ownTensor(model, plan.l1.weight, [{ node: plan.l1.node, input: plan.l1.weightInput }], written, false);
    const grown = model.viewTensor(t).growAxis(plan.l1.axis, k);
    const at = new Float64Array(k * plan.fanIn); // target of incoming.data[j·fanIn + i]
    for (let j = 0; j < k; j++) for (let i = 0; i < plan.fanIn; i++) at[j * plan.fanIn + i] = incomingIndex(plan, grown.dims, plan.units + j, i);
    grown.setMany(at, u.incoming.data, plan.l1.scale);
    store(t, grown);
  }
  // 2. bias
  const anyBias = u.incomingBias.some((b) => b !== 0);
  if (plan.bias) {
    const b = plan.bias;
    const t = ownTensor(model, b.weight, [{ node: b.node, input: b.input }], written);
    const old = model.readTensor(t);
    let grown: TensorBuffer;
    if (b.broadcast) {
      grown = new TensorBuffer(old.dataType, [plan.units + k]);
      for (let i = 0; i < plan.units; i++) grown.bytes.set(old.bytes.subarray(0, old.elemSize), i * old.elemSize);
    } else grown = old.growAxis(b.axis, k);
    if (anyBias && b.scale === 0) throw new UnsupportedError(`site "${site.name}": the bias of "${nodeLabel(b.node)}" is scaled by beta = 0, so new biases cannot be set`, { site: site.name });
    for (let j = 0; j < k; j++) grown.set(plan.units + j, b.scale === 0 ? 0 : u.incomingBias[j]! / b.scale);
    store(t, grown);
  } else if (anyBias) {
    if (plan.biasSlot === undefined) throw new UnsupportedError(`site "${site.name}": ${plan.l1.type} "${nodeLabel(plan.l1.node)}" has no bias, but the new units have non-zero biases`, { site: site.name });
    const name = model.uniqueName(`${nodeLabel(plan.l1.node)}_bias`);
    const buf = new TensorBuffer(plan.dataType, [plan.units + k]);
    for (let j = 0; j < k; j++) buf.set(plan.units + j, u.incomingBias[j]!);
    const t = makeTensor(name, plan.dataType, buf.dims, buf);
    model.addInitializer(t);
    while (plan.l1.node.input.length < plan.biasSlot) plan.l1.node.input.push('');
    plan.l1.node.input[plan.biasSlot] = name;
    if (plan.l1.type === 'Gemm') {
      const beta = attr(plan.l1.node, 'beta');
      if (beta) beta.f = 1;
    }
    model.invalidate();
    tensors.push(name);
  }
  // 3. in-between per-channel parameters
  const byTensor = new Map<TensorProto, SitePlan['params']>();
  for (const p of plan.params) {
    const list = byTensor.get(p.weight.tensor) ?? [];
    list.push(p);
    byTensor.set(p.weight.tensor, list);
  }
  for (const [, list] of byTensor) {
    const p = list[0]!;
    const t = ownTensor(model, p.weight, list.map((q) => ({ node: q.node, input: q.input })), written);
    const old = model.readTensor(t);
    const oldLen = old.dims[p.axis]!;
    const grown = old.growAxis(p.axis, k * p.blk);
    const dims = grown.dims;
    const strides = dims.map((_, a) => dims.slice(a + 1).reduce((x, y) => x * y, 1));
    const idx = new Array<number>(dims.length).fill(0);
    for (let flat = 0; flat < grown.length; flat++) {
      let rem = flat;
      for (let a = 0; a < dims.length; a++) {
        idx[a] = Math.floor(rem / strides[a]!);
        rem -= idx[a]! * strides[a]!;
      }
      const along = idx[p.axis]!;
      if (along < oldLen) continue;
      const j = Math.floor((along - oldLen) / p.blk);
      const pos = (along - oldLen) % p.blk;
      const s = src(j);
      if (s >= 0) {
        grown.copyElement(flat - (along - (s * p.blk + pos)) * strides[p.axis]!, flat);
        continue;
      }
      let v = 0;
      switch (p.fill) {
        case 'one':
          v = 1;
          break;
        case 'bnvar':
          v = 1 - (p.eps ?? 1e-5);
          break;
        case 'prelu':
          v = 0.25;
          break;
        case 'delta':
          v = idx[2] === Math.floor((dims[2]! - 1) / 2) && idx[3] === Math.floor((dims[3]! - 1) / 2) ? 1 : 0;
          break;
        default:
          v = 0;
      }
      grown.set(flat, v);
    }
    store(t, grown);
  }
  for (const n of plan.depthwise) {
    const g = attr(n, 'group');
    if (g) g.i = BigInt(plan.units + k);
  }
  for (const r of plan.reshapes) {
    const t = ownTensor(model, r.weight, [{ node: r.node, input: 1 }], written);
    const buf = model.readTensor(t);
    buf.set(1, buf.get(1) + k * plan.blk);
    store(t, buf);
  }
  // 4. next layer weight
  {
    const t = ownTensor(model, plan.l2.weight, [{ node: plan.l2.node, input: plan.l2.weightInput }], written, false);
    const grown = model.viewTensor(t).growAxis(plan.l2.axis, k * plan.blk);
    if (u.existingOutgoingScale) {
      for (let e = 0; e < plan.units; e++) {
        const s = u.existingOutgoingScale[e]!;
        if (s === 1) continue;
        for (let r = 0; r < plan.fanOut; r++) {
          const at = outgoingIndex(plan, grown.dims, r, e);
          grown.set(at, grown.get(at) * s);
        }
      }
    }
    const at = new Float64Array(plan.fanOut * k); // target of outgoing.data[r·k + j]
    for (let r = 0; r < plan.fanOut; r++) for (let j = 0; j < k; j++) at[r * k + j] = outgoingIndex(plan, grown.dims, r, plan.units + j);
    grown.setMany(at, u.outgoing.data, plan.l2.scale);
    store(t, grown);
  }
  // 5. shapes
  const shapesFixed = fixShapes(model, plan, k, changedInits);
  model.invalidate();
  return { site: site.name, unitsBefore: plan.units, unitsAfter: plan.units + k, tensors, shapesFixed, notes: [...(u.report?.notes ?? [])] };
}

function fixShapes(model: OnnxModel, plan: SitePlan, k: number, changedInits: Map<string, number[]>): string[] {
  const fixed: string[] = [];
  const g = model.graph;
  // Initializers that are also graph inputs (IR < 4 style) carry their shape in the input list.
  for (const input of g.input) {
    const dims = changedInits.get(input.name);
    if (!dims || input.type?.value.case !== 'tensorType') continue;
    const shape = input.type.value.value.shape;
    if (!shape) continue;
    shape.dim = dims.map((d) => create(TensorShapeProto_DimensionSchema, { value: { case: 'dimValue', value: BigInt(d) } }));
    fixed.push(input.name);
  }
  const byName = new Map(plan.values.map((v) => [v.name, v]));
  const keep = [];
  for (const vi of g.valueInfo) {
    const v = byName.get(vi.name);
    if (!v) {
      keep.push(vi);
      continue;
    }
    fixed.push(vi.name);
    const shape = vi.type?.value.case === 'tensorType' ? vi.type.value.value.shape : undefined;
    const dim = shape?.dim[v.axis];
    if (!shape || !dim) {
      keep.push(vi);
      continue;
    }
    if (dim.value.case === 'dimValue') {
      const expected = BigInt(plan.units * v.blk);
      if (dim.value.value !== expected) continue; // inconsistent entry: drop it
      dim.value = { case: 'dimValue', value: expected + BigInt(k * v.blk) };
    }
    keep.push(vi);
  }
  g.valueInfo = keep;
  return fixed;
}

/** Shape of a tensor after widening (helper for reports). */
export function describeTensor(t: TensorProto): string {
  return `${t.name} [${tensorDims(t).join(', ')}]`;
}
