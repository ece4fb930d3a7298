/**
 * Models as they come: in-memory rewrites the probe applies to its own copy of a model before building the backward
 * graph (the caller's model and files are never changed): node lists sorted topologically, opset 7–10 upgraded to
 * 11, FLOAT16/BFLOAT16 computed in FLOAT, and a batch dimension fixed at 1 relaxed so that minibatches run at once.
 * @packageDocumentation
 */
import { clone, create, toBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema, TensorProto_DataLocation, TensorProto_DataType, TensorShapeProto_DimensionSchema } from 'onnx-buf';
import type { AttributeProto, ModelProto, NodeProto, TensorProto, ValueInfoProto } from 'onnx-buf';
import * as ort from 'onnxruntime-node';
import { UnsupportedError } from '@gradmax/core';
import { attrFloat, attrInt, attrInts, attrString, nodeLabel } from '../attributes.js';
import { makeNode, makeTensor } from '../model.js';
import { TensorBuffer, elementCount, elementSize, tensorDims, typedFieldBytes } from '../tensor.js';
import { defaultOpset, valueInfoType } from './onnx-util.js';
import { randomTensor } from './shapes.js';

/**
 * Sorts nodes topologically (stable: a node keeps its place among the nodes that are ready). Inputs that no node
 * produces (graph inputs, initializers, outer-scope names) count as available. Nodes on a cycle keep their order
 * at the end. Returns whether the order changed.
 */
export function sortTopologically(nodes: NodeProto[]): boolean {
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => n.output.forEach((o) => o && producer.set(o, i)));
  const waiting = nodes.map((n) => new Set(n.input.filter((x) => x && producer.has(x) && producer.get(x) !== undefined).map((x) => producer.get(x)!)));
  const users = new Map<number, number[]>();
  waiting.forEach((deps, i) => deps.forEach((d) => (users.get(d) ?? users.set(d, []).get(d)!).push(i)));
  // A min-heap of ready node indices keeps the original order wherever the dependencies allow it.
  const heap: number[] = [];
  const push = (v: number) => {
    heap.push(v);
    for (let k = heap.length - 1; k > 0; ) {
      const p = (k - 1) >> 1;
      if (heap[p]! <= heap[k]!) break;
      [heap[p], heap[k]] = [heap[k]!, heap[p]!];
      k = p;
    }
  };
  const pop = (): number => {
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length) {
      heap[0] = last;
      for (let k = 0; ; ) {
        const l = 2 * k + 1;
        const r = l + 1;
        let m = k;
        if (l < heap.length && heap[l]! < heap[m]!) m = l;
        if (r < heap.length && heap[r]! < heap[m]!) m = r;
        if (m === k) break;
        [heap[m], heap[k]] = [heap[k]!, heap[m]!];
        k = m;
      }
    }
    return top;
  };
  waiting.forEach((deps, i) => deps.size === 0 && push(i));
  const order: number[] = [];
  const done = new Set<number>();
  while (heap.length) {
    const i = pop();
    order.push(i);
    done.add(i);
    for (const u of users.get(i) ?? []) {
      const deps = waiting[u]!;
      deps.delete(i);
      if (deps.size === 0 && !done.has(u)) push(u);
    }
  }
  for (let i = 0; i < nodes.length; i++) if (!done.has(i)) order.push(i);
  const changed = order.some((v, k) => v !== k);
  if (changed) {
    const sorted = order.map((i) => nodes[i]!);
    nodes.splice(0, nodes.length, ...sorted);
  }
  return changed;
}

/** The elements of a stored (inline) tensor as float64. */
function tensorValues(t: TensorProto): Float64Array {
  if (t.dataLocation === TensorProto_DataLocation.EXTERNAL || t.externalData.length > 0) {
    throw new UnsupportedError(`tensor "${t.name}" is stored outside the model; load the model with its external data`, { tensor: t.name });
  }
  const dims = tensorDims(t);
  const count = elementCount(dims);
  const bytes = t.rawData.length > 0 || count === 0 ? t.rawData : typedFieldBytes(t, count);
  return new TensorBuffer(t.dataType, dims, bytes).toFloat64();
}

function isDefaultDomain(n: NodeProto): boolean {
  return n.domain === '' || n.domain === 'ai.onnx';
}

const HALF_TYPES = new Set<number>([TensorProto_DataType.FLOAT16, TensorProto_DataType.BFLOAT16]);

function promoteValueInfo(vi: ValueInfoProto): boolean {
  if (vi.type?.value.case === 'tensorType' && HALF_TYPES.has(vi.type.value.value.elemType)) {
    vi.type.value.value.elemType = TensorProto_DataType.FLOAT;
    return true;
  }
  return false;
}

function promoteTensor(t: TensorProto): TensorProto {
  if (!HALF_TYPES.has(t.dataType)) return t;
  return makeTensor(t.name, TensorProto_DataType.FLOAT, tensorDims(t), tensorValues(t));
}

/**
 * Computes a FLOAT16/BFLOAT16 model in FLOAT: half initializers and Constant/ConstantOfShape values are widened
 * (exactly), casts to a half type become casts to FLOAT, and half graph inputs and outputs become FLOAT (feed
 * float32 data). Returns whether anything was half.
 */
export function promoteHalfToFloat(model: ModelProto): boolean {
  const graph = model.graph!;
  let changed = false;
  graph.initializer = graph.initializer.map((t) => {
    const p = promoteTensor(t);
    if (p !== t) changed = true;
    return p;
  });
  for (const n of graph.node) {
    for (const a of n.attribute) {
      if (a.t && HALF_TYPES.has(a.t.dataType)) {
        a.t = promoteTensor(a.t);
        changed = true;
      }
      const typeAttr = (n.opType === 'Cast' && a.name === 'to') || (a.name === 'dtype' && /^(RandomNormal|RandomUniform|RandomNormalLike|RandomUniformLike|EyeLike|Multinomial|Bernoulli)$/.test(n.opType));
      if (typeAttr && isDefaultDomain(n) && HALF_TYPES.has(Number(a.i))) {
        a.i = BigInt(TensorProto_DataType.FLOAT);
        changed = true;
      }
    }
  }
  for (const vi of [...graph.input, ...graph.output, ...graph.valueInfo]) if (promoteValueInfo(vi)) changed = true;
  return changed;
}

function attrProto(n: NodeProto, name: string): AttributeProto | undefined {
  return n.attribute.find((a) => a.name === name);
}

function dropAttrs(n: NodeProto, ...names: string[]): void {
  n.attribute = n.attribute.filter((a) => !names.includes(a.name));
}

/**
 * Upgrades a model importing opset 7–10 to opset 11 in memory: the ops whose form changed are rewritten
 * (Slice, Clip, Pad, TopK attributes → inputs; Upsample and opset-10 Resize → opset-11 Resize with the
 * `asymmetric` coordinate mapping and `floor` rounding of the older kernels; Scatter → ScatterElements;
 * BatchNormalization's `spatial`), everything else is valid as it is. Returns the opset the model imported.
 * Throws `UnsupportedError` for a form it cannot rewrite exactly.
 */
export function upgradeToOpset11(model: ModelProto): number {
  const opset = defaultOpset(model);
  if (opset >= 11) return opset;
  if (opset < 7) throw new UnsupportedError(`the probe needs opset ≥ 7 (model imports opset ${opset})`, { opset });
  const graph = model.graph!;
  const names = new Set<string>();
  for (const n of graph.node) for (const t of [...n.input, ...n.output]) names.add(t);
  for (const t of graph.initializer) names.add(t.name);
  let counter = 0;
  const fresh = (hint: string) => {
    let name: string;
    do name = `gm_upgrade/${hint}_${counter++}`;
    while (names.has(name));
    names.add(name);
    return name;
  };
  const floatType = graph.input.some((i) => valueInfoType(i)?.elemType === TensorProto_DataType.DOUBLE) ? TensorProto_DataType.DOUBLE : TensorProto_DataType.FLOAT;
  const constant = (dataType: number, dims: number[], values: ArrayLike<number>, hint: string) => {
    const name = fresh(hint);
    graph.initializer.push(makeTensor(name, dataType, dims, values));
    return name;
  };
  const ints = (values: number[], hint: string) => constant(TensorProto_DataType.INT64, [values.length], values, hint);
  const constValues = (name: string): number[] | undefined => {
    const init = graph.initializer.find((t) => t.name === name);
    if (init) return Array.from(tensorValues(init));
    const c = graph.node.find((n) => n.opType === 'Constant' && n.output[0] === name)?.attribute.find((a) => a.name === 'value')?.t;
    return c ? Array.from(tensorValues(c)) : undefined;
  };
  function refuse(n: NodeProto, why: string): never {
    throw new UnsupportedError(`cannot upgrade node "${nodeLabel(n)}" (${n.opType}) from opset ${opset} to 11: ${why}`, { node: nodeLabel(n), opType: n.opType, opset });
  }
  const olderResize = (n: NodeProto, scalesName: string | undefined, scales: number[] | undefined): void => {
    const mode = attrString(n, 'mode', 'nearest');
    if (mode !== 'nearest' && mode !== 'linear') refuse(n, `mode "${mode}"`);
    const attrs: Record<string, string> = { mode, coordinate_transformation_mode: 'asymmetric' };
    if (mode === 'nearest') {
      const values = scales ?? (scalesName ? constValues(scalesName) : undefined);
      // The opset 7–10 kernels truncate the source coordinate when upsampling (floor) and round up when
      // downsampling; one nearest_mode serves only when no axis shrinks.
      if (!values) refuse(n, 'nearest resampling with non-constant scales (its rounding depends on them)');
      if (values.some((s) => s < 1)) refuse(n, 'nearest downsampling (the older kernel rounds differently)');
      attrs.nearest_mode = 'floor';
    }
    const scalesInput = scalesName ?? constant(TensorProto_DataType.FLOAT, [scales!.length], scales!, 'scales');
    const upgraded = makeNode('Resize', [n.input[0]!, constant(TensorProto_DataType.FLOAT, [0], [], 'roi'), scalesInput], [n.output[0]!], attrs, n.name);
    n.opType = upgraded.opType;
    n.input = upgraded.input;
    n.attribute = upgraded.attribute;
  };
  for (const n of graph.node) {
    if (!isDefaultDomain(n)) continue;
    switch (n.opType) {
      case 'Slice':
        if (opset < 10) {
          const starts = attrInts(n, 'starts');
          const ends = attrInts(n, 'ends');
          if (!starts || !ends) refuse(n, 'starts/ends missing');
          const axes = attrInts(n, 'axes');
          n.input = [n.input[0]!, ints(starts, 'starts'), ints(ends, 'ends'), ...(axes ? [ints(axes, 'axes')] : [])];
          dropAttrs(n, 'starts', 'ends', 'axes');
        }
        break;
      case 'Clip': {
        const lo = attrFloat(n, 'min', -Infinity);
        const hi = attrFloat(n, 'max', Infinity);
        n.input = [n.input[0]!, Number.isFinite(lo) ? constant(floatType, [], [lo], 'clip_min') : '', Number.isFinite(hi) ? constant(floatType, [], [hi], 'clip_max') : ''];
        while (n.input.length > 1 && n.input[n.input.length - 1] === '') n.input.pop();
        dropAttrs(n, 'min', 'max');
        break;
      }
      case 'Pad': {
        const pads = attrInts(n, 'pads');
        if (!pads) refuse(n, 'pads missing');
        const value = attrFloat(n, 'value', 0);
        n.input = [n.input[0]!, ints(pads, 'pads'), ...(value !== 0 ? [constant(floatType, [], [value], 'pad_value')] : [])];
        dropAttrs(n, 'pads', 'value');
        break;
      }
      case 'TopK':
        if (opset < 10) {
          n.input = [n.input[0]!, ints([attrInt(n, 'k', 1)], 'k')];
          dropAttrs(n, 'k');
        }
        break;
      case 'Upsample': {
        const scalesAttr = attrProto(n, 'scales');
        const scales = scalesAttr ? scalesAttr.floats.map(Number) : undefined;
        olderResize(n, scales ? undefined : n.input[1], scales);
        break;
      }
      case 'Resize':
        olderResize(n, n.input[1], undefined);
        break;
      case 'Scatter':
        n.opType = 'ScatterElements';
        break;
      case 'BatchNormalization':
        if (opset < 9) {
          if (attrInt(n, 'spatial', 1) !== 1) refuse(n, 'spatial=0');
          dropAttrs(n, 'spatial', 'is_test', 'consumed_inputs');
        }
        break;
      default:
        break;
    }
  }
  for (const imp of model.opsetImport) if (imp.domain === '' || imp.domain === 'ai.onnx') imp.version = 11n;
  if (model.irVersion < 6n) model.irVersion = 6n;
  return opset;
}

/** Graph inputs that are fed at run time (not initializers). */
function dataInputs(model: ModelProto): ValueInfoProto[] {
  const inits = new Set(model.graph!.initializer.map((t) => t.name));
  return model.graph!.input.filter((i) => !inits.has(i.name));
}

function setLeadingDim(vi: ValueInfoProto, param: string): void {
  if (vi.type?.value.case !== 'tensorType') return;
  const dim = vi.type.value.value.shape?.dim[0];
  if (dim) vi.type.value.value.shape!.dim[0] = create(TensorShapeProto_DimensionSchema, { value: { case: 'dimParam', value: param } });
}

/** Runs `model` once per feed set in one onnxruntime session. */
async function runModel(model: ModelProto, feeds: Record<string, ort.Tensor>[]): Promise<Record<string, ort.Tensor>[]> {
  const session = await ort.InferenceSession.create(toBinary(ModelProtoSchema, model), { graphOptimizationLevel: 'disabled' });
  try {
    const out: Record<string, ort.Tensor>[] = [];
    for (const f of feeds) out.push((await session.run(f)) as Record<string, ort.Tensor>);
    return out;
  } finally {
    await session.release();
  }
}

function concatBatch(parts: ort.Tensor[]): ort.Tensor {
  const first = parts[0]!;
  const per = first.data.length;
  const Ctor = (first.data as Float32Array).constructor as unknown as { new (n: number): { set(a: ArrayLike<unknown>, o: number): void } };
  const data = new Ctor(per * parts.length);
  parts.forEach((p, k) => data.set(p.data as ArrayLike<unknown>, k * per));
  return new ort.Tensor(first.type as 'float32', data as unknown as Float32Array, [parts.length, ...first.dims.slice(1)]);
}

/** Whether `relaxed` computes, on a batch of `n` random examples, what `original` computes on each example alone. */
async function batchesLikeSingles(original: ModelProto, relaxed: ModelProto, fixedDims: Record<string, number> | undefined, n = 3): Promise<boolean> {
  const singles: Record<string, ort.Tensor>[] = [];
  const inputs = dataInputs(original);
  for (let k = 0; k < n; k++) {
    const feeds: Record<string, ort.Tensor> = {};
    for (const inp of inputs) {
      const info = valueInfoType(inp)!;
      const dims = info.dims!.map((d, i) => (i === 0 ? 1 : typeof d === 'number' && d > 0 ? d : typeof d === 'string' && fixedDims?.[d] !== undefined ? fixedDims[d]! : 2));
      feeds[inp.name] = randomTensor(info.elemType, dims, 777 + 31 * k);
    }
    singles.push(feeds);
  }
  try {
    const batched: Record<string, ort.Tensor> = {};
    for (const inp of inputs) batched[inp.name] = concatBatch(singles.map((f) => f[inp.name]!));
    const [got] = (await runModel(relaxed, [batched])) as [Record<string, ort.Tensor>];
    const refs = await runModel(original, singles);
    for (const name of Object.keys(refs[0]!)) {
      const want = refs.map((r) => r[name]!);
      const out = got[name];
      if (!out || out.dims[0] !== n || want.some((w) => w.dims[0] !== 1)) return false;
      const per = want[0]!.data.length;
      if (out.data.length !== per * n) return false;
      let scale = 0;
      for (const w of want) {
        const d = w.data as ArrayLike<number>;
        for (let i = 0; i < d.length; i++) scale = Math.max(scale, Math.abs(Number(d[i])));
      }
      for (let k = 0; k < n; k++) {
        const w = want[k]!.data as ArrayLike<number>;
        const o = out.data as ArrayLike<number>;
        for (let i = 0; i < per; i++) if (!(Math.abs(Number(o[k * per + i]) - Number(w[i])) <= 1e-4 * scale + 1e-6)) return false;
      }
    }
    return true;
  } catch {
    return false;
  }
}

/**
 * Relaxes a batch dimension fixed at 1 (the leading dim of every data input, and of the outputs that have it) to a
 * symbolic one, so that minibatches run in one call. Reshape targets that hard-code the batch (a constant shape
 * starting with 1) are rewritten to copy it (0) when that is what it takes. Kept only when the relaxed model gives,
 * on a batch of random examples, exactly what the model gives on each example alone; otherwise the model is left
 * as it is (and is run one example at a time). Returns whether the batch was relaxed.
 */
export async function relaxFixedBatch(model: ModelProto, fixedDims?: Record<string, number>): Promise<boolean> {
  const graph = model.graph!;
  const inputs = dataInputs(model);
  if (inputs.length === 0) return false;
  const leading = inputs.map((i) => valueInfoType(i)?.dims?.[0]);
  if (!leading.every((d) => d === 1)) return false;
  const used = new Set<string>();
  for (const vi of [...graph.input, ...graph.output, ...graph.valueInfo]) for (const d of valueInfoType(vi)?.dims ?? []) if (typeof d === 'string') used.add(d);
  let param = 'gm_batch';
  while (used.has(param)) param += '_';
  const relax = (target: ModelProto, reshapes: boolean): void => {
    const g = target.graph!;
    for (const i of dataInputs(target)) setLeadingDim(i, param);
    for (const o of g.output) if (valueInfoType(o)?.dims?.[0] === 1) setLeadingDim(o, param);
    g.valueInfo = [];
    if (!reshapes) return;
    const shapeUses = new Map<string, number>();
    for (const n of g.node) n.input.forEach((x, k) => x && shapeUses.set(x, (shapeUses.get(x) ?? 0) + (n.opType === 'Reshape' && k === 1 ? 1 : 1000)));
    for (const n of g.node) {
      if (n.opType !== 'Reshape' || !isDefaultDomain(n) || attrInt(n, 'allowzero', 0) !== 0) continue;
      const s = n.input[1]!;
      if (shapeUses.get(s) !== 1) continue;
      const init = g.initializer.findIndex((t) => t.name === s);
      const c = g.node.find((m) => m.opType === 'Constant' && m.output[0] === s)?.attribute.find((a) => a.name === 'value');
      const t = init >= 0 ? g.initializer[init]! : c?.t;
      if (!t || t.dataType !== TensorProto_DataType.INT64 || elementSize(t.dataType) !== 8) continue;
      const values = Array.from(tensorValues(t));
      if (values[0] !== 1) continue;
      values[0] = 0;
      const replaced = makeTensor(t.name, TensorProto_DataType.INT64, tensorDims(t), values);
      if (init >= 0) g.initializer[init] = replaced;
      else c!.t = replaced;
    }
  };
  for (const reshapes of [false, true]) {
    const candidate = structuredCloneModel(model);
    relax(candidate, reshapes);
    if (await batchesLikeSingles(model, candidate, fixedDims)) {
      model.graph = candidate.graph;
      return true;
    }
  }
  return false;
}

function structuredCloneModel(model: ModelProto): ModelProto {
  return clone(ModelProtoSchema, model);
}

/** What {@link prepareForProbe} changed in the probe's copy of a model. */
export interface PreparedModel {
  /** The opset the model imported (11+ after preparation). */
  originalOpset: number;
  /** The node list was not topologically sorted. */
  sorted: boolean;
  /** FLOAT16/BFLOAT16 tensors are computed in FLOAT. */
  promotedHalf: boolean;
  /** A batch dimension fixed at 1 was relaxed to a symbolic one. */
  relaxedBatch: boolean;
}

/**
 * Applies the in-memory rewrites of this module to `model` (the probe's own copy): topological sort, FLOAT16 →
 * FLOAT, opset 7–10 → 11 and, with `relaxBatch`, a fixed batch of 1 relaxed.
 */
export async function prepareForProbe(model: ModelProto, options: { relaxBatch?: boolean; fixedDims?: Record<string, number> } = {}): Promise<PreparedModel> {
  const sorted = sortTopologically(model.graph!.node);
  const promotedHalf = promoteHalfToFloat(model);
  const originalOpset = upgradeToOpset11(model);
  const relaxedBatch = options.relaxBatch === false ? false : await relaxFixedBatch(model, options.fixedDims);
  return { originalOpset, sorted, promotedHalf, relaxedBatch };
}
