/**
 * Choosing values for the symbolic dimensions of a model's graph inputs, for verification: batch-like dims hold
 * the samples, other dims come from the model's own static information (the weights a value meets, Reshape
 * targets, window sizes) or from defaults that make the graph's static shapes consistent.
 * @packageDocumentation
 */
import type { TensorShapeProto_Dimension, ValueInfoProto } from 'onnx-buf';
import { attrInt } from './attributes.js';
import { makeValueInfo, valueInfoShape, type OnnxModel } from './model.js';
import { constantNumbers, inferShapes, type Dim, type Shape } from './shapes.js';

/** What a symbolic dimension is taken to be. */
export type DimKind = 'batch' | 'spatial' | 'sequence' | 'other';

/** One place a symbolic dimension occurs: graph input and axis. */
export interface DimSlot {
  /** Graph input name. */
  input: string;
  /** Axis in that input. */
  axis: number;
  /** Rank of that input. */
  rank: number;
}

/** A symbolic dimension of the graph inputs and the values verification may give it. */
export interface SymbolicDim {
  /** The `dim_param` name, or `INPUT:AXIS` for a dimension without a name. */
  key: string;
  /** What the dimension is taken to be. */
  kind: DimKind;
  /** Every input/axis where it occurs. */
  slots: DimSlot[];
  /** A value read from the model's static information (e.g. the rows of the weight it is multiplied with). */
  hint?: { value: number; from: string };
}

/** A value chosen for a symbolic dimension and where it came from. */
export interface DimAssignment {
  /** Values by {@link SymbolicDim.key}. */
  values: Record<string, number>;
  /** For each key: `"--dim"`, `"inputs"`, `"batch"`, `"hint: ..."`, `"default"` or `"searched"`. */
  sources: Record<string, string>;
}

const BATCH_NAME = /batch|^(n|b|bs|num|samples?)$/i;
const SEQUENCE_NAME = /seq|len|time|token|step|^(t|s|l)$/i;
const SPATIAL_NAME = /height|width|depth|^(h|w|d|x|y|z)$|^(in|img|image)_?(h|w|size)/i;

/** Candidate values tried, in order, for each kind of dimension (after any hint). */
export const DIM_CANDIDATES: Readonly<Record<Exclude<DimKind, 'batch'>, readonly number[]>> = {
  spatial: [32, 64, 224, 28, 16, 96, 128, 256, 299, 8, 48, 112, 160, 192, 320, 384, 512],
  sequence: [16, 32, 8, 64, 128, 10, 20, 50, 100, 256, 512, 1024],
  other: [16, 8, 4, 2, 1, 32, 64, 3, 10, 128, 256],
};

function graphInputs(model: OnnxModel): ValueInfoProto[] {
  const inits = new Set(model.graph.initializer.map((t) => t.name));
  return model.graph.input.filter((i) => !inits.has(i.name));
}

function shapeDims(info: ValueInfoProto): TensorShapeProto_Dimension[] | undefined {
  if (info.type?.value.case !== 'tensorType') return undefined;
  return info.type.value.value.shape?.dim;
}

/** The key of dimension `axis` of `input` when it is symbolic, else undefined. */
function slotKey(input: string, axis: number, d: Dim): string | undefined {
  if (typeof d === 'number' && d > 0) return undefined;
  return typeof d === 'string' && d !== '' ? d : `${input}:${axis}`;
}

function classify(slots: DimSlot[], name: string, shapes: Map<string, Shape>): DimKind {
  const named = !slots.some((s) => name === `${s.input}:${s.axis}`);
  if (named && BATCH_NAME.test(name)) return 'batch';
  const first = slots[0]!;
  if (first.axis === 0) {
    // sequence-first layouts ([T, N, F]): a sequence-like name at axis 0 beside a batch-like name at axis 1
    const shape = shapes.get(first.input);
    const next = shape?.[1];
    if (named && SEQUENCE_NAME.test(name) && typeof next === 'string' && BATCH_NAME.test(next)) return 'sequence';
    return 'batch';
  }
  if (named && SPATIAL_NAME.test(name)) return 'spatial';
  if (named && SEQUENCE_NAME.test(name)) return 'sequence';
  const shape = shapes.get(first.input);
  if (shape) {
    const r = shape.length;
    if (r >= 3 && r <= 5 && first.axis >= 2 && typeof shape[1] === 'number') return 'spatial'; // channels-first image/volume
    if (r === 4 && (first.axis === 1 || first.axis === 2) && typeof shape[3] === 'number' && shape[3] <= 4) return 'spatial'; // NHWC
    if (r === 3 && first.axis === 2) return 'spatial'; // [N, C, L]: a length along a 1-D conv
    if (first.axis === 1 && (r === 2 || r === 3)) return 'sequence';
  }
  return 'other';
}

/**
 * Sets the graph inputs' dims given in `assign` (by key) to fixed values or names, runs `fn`, and restores the
 * inputs exactly as they were.
 */
function withInputDims<T>(model: OnnxModel, assign: ReadonlyMap<string, number | string>, fn: () => T): T {
  const saved: [TensorShapeProto_Dimension, TensorShapeProto_Dimension['value']][] = [];
  try {
    for (const input of graphInputs(model)) {
      const dims = shapeDims(input);
      const shape = valueInfoShape(input);
      if (!dims || !shape) continue;
      dims.forEach((d, axis) => {
        const key = slotKey(input.name, axis, shape[axis]);
        if (key === undefined || !assign.has(key)) return;
        const v = assign.get(key)!;
        saved.push([d, d.value]);
        d.value = typeof v === 'number' ? { case: 'dimValue', value: BigInt(v) } : { case: 'dimParam', value: v };
      });
    }
    return fn();
  } finally {
    for (const [d, v] of saved) d.value = v;
  }
}

/** Output shape of a Gather or Concat from its inputs' shapes (ops the static shape propagation leaves unknown). */
function extraShape(node: OnnxModel['graph']['node'][number], shapeOf: (i: number) => Shape): Dim[] | undefined {
  if (node.domain !== '' && node.domain !== 'ai.onnx') return undefined;
  if (node.opType === 'Gather') {
    const data = shapeOf(0);
    const idx = shapeOf(1);
    if (!data || !idx) return undefined;
    let axis = attrInt(node, 'axis', 0);
    if (axis < 0) axis += data.length;
    return [...data.slice(0, axis), ...idx, ...data.slice(axis + 1)];
  }
  if (node.opType === 'Concat') {
    const shapes = node.input.map((_, i) => shapeOf(i));
    if (!shapes.length || shapes.some((x) => !x || x.length !== shapes[0]!.length)) return undefined;
    const rank = shapes[0]!.length;
    let axis = attrInt(node, 'axis', 0);
    if (axis < 0) axis += rank;
    return shapes[0]!.map((d, k) => {
      if (k !== axis) return shapes.map((x) => x![k]).find((v) => typeof v === 'number') ?? d;
      const all = shapes.map((x) => x![k]);
      return all.every((v) => typeof v === 'number') ? (all as number[]).reduce((a, b) => a + b, 0) : undefined;
    });
  }
  return undefined;
}

/**
 * The value of a small integer tensor computed from shapes (`x.view(x.size(0), -1)` exports as
 * Shape -> Gather -> Unsqueeze -> Concat -> Reshape): stored constants, Shape, Gather/Unsqueeze/Squeeze/Cast/Concat
 * of such values, and Slice with constant bounds. Elements may be symbolic names; undefined when unknown.
 */
function shapeValue(model: OnnxModel, shapes: Map<string, Shape>, name: string | undefined, depth = 0): Dim[] | undefined {
  if (!name || depth > 32) return undefined;
  const w = model.weight(name);
  if (w) {
    const n = w.tensor.dims.reduce((a, d) => a * Number(d), 1);
    return n <= 64 ? numericConst(model, name) : undefined;
  }
  const node = model.producerOf(name);
  if (!node || (node.domain !== '' && node.domain !== 'ai.onnx')) return undefined;
  const op = node.opType;
  const arg = (i: number) => shapeValue(model, shapes, node.input[i], depth + 1);
  if (op === 'Shape') {
    const x = shapes.get(node.input[0] ?? '');
    if (!x) return undefined;
    const r = x.length;
    const norm = (v: number) => Math.min(r, Math.max(0, v < 0 ? v + r : v));
    return x.slice(norm(attrInt(node, 'start', 0)), norm(attrInt(node, 'end', r)));
  }
  if (op === 'Cast' || op === 'Identity' || op === 'Unsqueeze' || op === 'Squeeze') return arg(0);
  if (op === 'Concat') {
    const parts = node.input.map((_, i) => arg(i));
    return parts.every((p) => p) ? parts.flatMap((p) => p!) : undefined;
  }
  if (op === 'Gather') {
    const data = arg(0);
    const idx = numericConst(model, node.input[1]);
    if (!data || !idx || attrInt(node, 'axis', 0) !== 0) return undefined;
    return idx.map((i) => data[i < 0 ? i + data.length : i]);
  }
  if (op === 'Slice') {
    const data = arg(0);
    const starts = numericConst(model, node.input[1]);
    const ends = numericConst(model, node.input[2]);
    if (!data || !starts || !ends || starts.length !== 1 || (node.input[4] && numericConst(model, node.input[4])?.[0] !== 1)) return undefined;
    const r = data.length;
    const norm = (v: number) => Math.min(r, Math.max(0, v < 0 ? v + r : v));
    return data.slice(norm(starts[0]!), norm(ends[0]!));
  }
  return undefined;
}

/** Output shape of a Reshape whose target is computed from shapes (see {@link shapeValue}). */
function reshapeFromValue(node: OnnxModel['graph']['node'][number], x: Shape, target: Dim[]): Dim[] | undefined {
  const allowZero = attrInt(node, 'allowzero', 0) === 1;
  const out: Dim[] = target.map((d, i) => (d === 0 && !allowZero ? x?.[i] : d === -1 ? undefined : d));
  const minus = target.indexOf(-1);
  if (minus >= 0) {
    if (!x || !x.every((d) => typeof d === 'number')) return undefined;
    const total = (x as number[]).reduce((a, b) => a * b, 1);
    let known = 1;
    for (let i = 0; i < out.length; i++) if (i !== minus) known *= typeof out[i] === 'number' ? (out[i] as number) : NaN;
    if (!Number.isFinite(known) || known <= 0) return undefined;
    out[minus] = total / known;
  }
  return out;
}

/**
 * {@link inferShapes} plus Gather, Concat and Reshape to a computed target: their output shapes are added as temporary
 * `value_info` entries and the propagation repeated (a few passes), then the graph is restored.
 */
function inferAll(model: OnnxModel): Map<string, Shape> {
  void model.indexes; // built before the temporary entries exist, so they never enter the cached index
  const g = model.graph;
  const added: ValueInfoProto[] = [];
  try {
    let shapes = inferShapes(model);
    for (let pass = 0; pass < 4; pass++) {
      let changed = false;
      for (const node of g.node) {
        if (node.opType !== 'Gather' && node.opType !== 'Concat' && node.opType !== 'Reshape') continue;
        const out = node.output[0];
        if (!out || shapes.get(out) !== undefined) continue;
        let shape: Dim[] | undefined;
        if (node.opType === 'Reshape') {
          const target = shapeValue(model, shapes, node.input[1]);
          shape = target ? reshapeFromValue(node, shapes.get(node.input[0] ?? ''), target) : undefined;
        } else shape = extraShape(node, (i) => (node.input[i] ? shapes.get(node.input[i]!) : undefined));
        if (!shape || shape.some((d) => d === undefined || d === '')) continue;
        const vi = makeValueInfo(out, 1, shape as (number | string)[]);
        g.valueInfo.push(vi);
        added.push(vi);
        changed = true;
      }
      if (!changed) break;
      shapes = inferShapes(model);
    }
    return shapes;
  } finally {
    if (added.length) {
      const drop = new Set(added);
      const keep = g.valueInfo.filter((v) => !drop.has(v));
      g.valueInfo.length = 0;
      g.valueInfo.push(...keep);
    }
  }
}

/**
 * For integer graph inputs used as Gather indices into a stored table: the table's size along the gathered axis (the
 * smallest over all such uses). Random indices are drawn below it.
 */
export function indexBounds(model: OnnxModel): Map<string, number> {
  const inputs = new Set(graphInputs(model).map((i) => i.name));
  const out = new Map<string, number>();
  for (const node of model.graph.node) {
    if (node.opType !== 'Gather' || (node.domain !== '' && node.domain !== 'ai.onnx')) continue;
    let idx = node.input[1];
    // through a Cast of the input
    const p = idx ? model.producerOf(idx) : undefined;
    if (p && p.opType === 'Cast') idx = p.input[0];
    if (!idx || !inputs.has(idx)) continue;
    const w = model.weight(node.input[0] ?? '');
    if (!w) continue;
    const dims = w.tensor.dims.map(Number);
    let axis = attrInt(node, 'axis', 0);
    if (axis < 0) axis += dims.length;
    const n = dims[axis];
    if (n !== undefined && n >= 1) out.set(idx, Math.min(out.get(idx) ?? Infinity, n));
  }
  return out;
}

/** Dims (by key) of the graph inputs that have no fixed size, in the order they first occur. */
export function symbolicDims(model: OnnxModel): SymbolicDim[] {
  const byKey = new Map<string, DimSlot[]>();
  const shapes = new Map<string, Shape>();
  for (const input of graphInputs(model)) {
    const shape = valueInfoShape(input);
    shapes.set(input.name, shape);
    shape?.forEach((d, axis) => {
      const key = slotKey(input.name, axis, d);
      if (key === undefined) return;
      let slots = byKey.get(key);
      if (!slots) byKey.set(key, (slots = []));
      slots.push({ input: input.name, axis, rank: shape.length });
    });
  }
  const dims: SymbolicDim[] = [...byKey].map(([key, slots]) => ({ key, kind: classify(slots, key, shapes), slots }));
  const batch = dims.filter((d) => d.kind === 'batch');
  if (dims.length > batch.length) addHints(model, dims);
  return dims;
}

const numericConst = constantNumbers;

/** Pairs of dimensions that must be equal for the node to run (only those the static shapes can show). */
function equalities(node: OnnxModel['graph']['node'][number], shapeOf: (i: number) => Shape): [Dim, Dim][] {
  const op = node.opType;
  const a = shapeOf(0);
  const b = shapeOf(1);
  if (op === 'Gemm') {
    if (!a || !b || a.length !== 2 || b.length !== 2) return [];
    return [[attrInt(node, 'transA', 0) ? a[0] : a[1], attrInt(node, 'transB', 0) ? b[1] : b[0]]];
  }
  if (op === 'MatMul') {
    if (!a || !b || a.length < 1 || b.length < 1) return [];
    return [[a[a.length - 1], b.length === 1 ? b[0] : b[b.length - 2]]];
  }
  if (op === 'Conv') {
    if (!a || !b || a.length < 3 || b.length < 3) return [];
    const w = b[1];
    return [[a[1], typeof w === 'number' ? w * attrInt(node, 'group', 1) : undefined]];
  }
  if (op === 'BatchNormalization' || op === 'InstanceNormalization') {
    const s = shapeOf(1);
    return a && a.length >= 2 && s?.length === 1 ? [[a[1], s[0]]] : [];
  }
  if (op === 'LayerNormalization') {
    const s = shapeOf(1);
    if (!a || !s) return [];
    return s.map((d, i) => [a[a.length - s.length + i], d] as [Dim, Dim]);
  }
  if (['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'PRelu', 'Where', 'Sum', 'Mean', 'Equal', 'Less', 'Greater'].includes(op)) {
    const shapes = node.input.map((_, i) => shapeOf(i));
    if (shapes.some((s) => !s)) return [];
    const rank = Math.max(...shapes.map((s) => s!.length));
    const out: [Dim, Dim][] = [];
    for (let k = 0; k < rank; k++) {
      const col = shapes.map((s) => s![s!.length - rank + k]).filter((d) => d !== undefined && d !== 1);
      for (let j = 1; j < col.length; j++) out.push([col[0], col[j]]);
    }
    return out;
  }
  if (op === 'Concat') {
    const shapes = node.input.map((_, i) => shapeOf(i));
    if (shapes.some((s) => !s) || !shapes.length) return [];
    const rank = shapes[0]!.length;
    let axis = attrInt(node, 'axis', 0);
    if (axis < 0) axis += rank;
    const out: [Dim, Dim][] = [];
    for (let k = 0; k < rank; k++) if (k !== axis) for (let j = 1; j < shapes.length; j++) out.push([shapes[0]![k], shapes[j]![k]]);
    return out;
  }
  return [];
}

/** Fills {@link SymbolicDim.hint} from dims a symbolic dim meets with a fixed size (weights, constants). */
function addHints(model: OnnxModel, dims: SymbolicDim[]): void {
  const byName = new Map(dims.map((d) => [d.key, d]));
  // batch dims get a value, the others carry their key as a name through the shape propagation
  const assign = new Map<string, number | string>(dims.map((d) => [d.key, d.kind === 'batch' ? 2 : d.key]));
  withInputDims(model, assign, () => {
    let shapes: Map<string, Shape>;
    try {
      shapes = inferAll(model);
    } catch {
      return;
    }
    for (const node of model.graph.node) {
      const shapeOf = (i: number) => (node.input[i] ? shapes.get(node.input[i]!) : undefined);
      for (const [x, y] of equalities(node, shapeOf)) {
        for (const [s, n] of [
          [x, y],
          [y, x],
        ] as const) {
          if (typeof s !== 'string' || typeof n !== 'number' || n <= 0) continue;
          const d = byName.get(s);
          if (d && !d.hint && d.kind !== 'batch') d.hint = { value: n, from: `${node.opType} ${node.name || node.output[0]}` };
        }
      }
    }
  });
}

/**
 * Number of places where the static shapes of the graph contradict each other when the input dims take `values`:
 * mismatched contraction or broadcast dims, a Reshape whose element count does not fit, a window larger than its
 * input (size ≤ 0), a fractional size. 0 means nothing static speaks against the values (onnxruntime decides).
 */
export function shapeContradictions(model: OnnxModel, values: Record<string, number>): number {
  return withInputDims(model, new Map(Object.entries(values)), () => {
    let shapes: Map<string, Shape>;
    try {
      shapes = inferAll(model);
    } catch {
      return 0;
    }
    let bad = 0;
    for (const s of shapes.values()) if (s?.some((d) => typeof d === 'number' && (!(d >= 1) || !Number.isInteger(d)))) bad++;
    for (const node of model.graph.node) {
      const shapeOf = (i: number) => (node.input[i] ? shapes.get(node.input[i]!) : undefined);
      for (const [x, y] of equalities(node, shapeOf)) if (typeof x === 'number' && typeof y === 'number' && x !== y) bad++;
      if (node.opType === 'Reshape') {
        const x = shapeOf(0);
        const target = numericConst(model, node.input[1]);
        if (!x || !target || !x.every((d) => typeof d === 'number')) continue;
        const total = (x as number[]).reduce((p, d) => p * d, 1);
        const allowZero = attrInt(node, 'allowzero', 0) === 1;
        let known = 1;
        let free = false;
        target.forEach((d, i) => {
          if (d === -1) free = true;
          else known *= d === 0 && !allowZero ? ((x[i] as number | undefined) ?? 1) : d;
        });
        if (free ? known === 0 || total % known !== 0 : known !== total) bad++;
      }
    }
    return bad;
  });
}

/**
 * Chooses values for the symbolic dims: `fixed` values first (from `--dim` or supplied inputs), batch-like dims
 * `batch`, every other dim its hint or the first of its kind's {@link DIM_CANDIDATES} that keeps the static shapes
 * consistent (searched dim by dim; spatial dims of one input move together). Returns assignments to try in order:
 * the best first, then variants (batch 1; the next consistent values).
 */
export function chooseDims(model: OnnxModel, dims: SymbolicDim[], fixed: Record<string, { value: number; source: string }>, batch: number, maxAttempts = 5): DimAssignment[] {
  const values: Record<string, number> = {};
  const sources: Record<string, string> = {};
  const free: SymbolicDim[] = [];
  for (const d of dims) {
    const f = fixed[d.key];
    if (f) {
      values[d.key] = f.value;
      sources[d.key] = f.source;
    } else if (d.kind === 'batch') {
      values[d.key] = batch;
      sources[d.key] = 'batch';
    } else {
      values[d.key] = d.hint?.value ?? DIM_CANDIDATES[d.kind][0]!;
      sources[d.key] = d.hint ? `hint: ${d.hint.from}` : 'default';
      free.push(d);
    }
  }
  // groups searched together: the free spatial dims of one input, every other dim alone
  const groups: { keys: string[]; kind: Exclude<DimKind, 'batch'>; hint?: number }[] = [];
  for (const d of free) {
    const kind = d.kind as Exclude<DimKind, 'batch'>;
    const g = kind === 'spatial' && !d.hint ? groups.find((x) => x.kind === 'spatial' && x.hint === undefined && free.some((o) => x.keys.includes(o.key) && o.slots[0]!.input === d.slots[0]!.input)) : undefined;
    if (g) g.keys.push(d.key);
    else groups.push({ keys: [d.key], kind, ...(d.hint ? { hint: d.hint.value } : {}) });
  }
  const alternatives = new Map<(typeof groups)[number], number[]>();
  if (groups.length && shapeContradictions(model, values) > 0) {
    for (const g of groups) {
      const tried = [...new Set([...(g.hint !== undefined ? [g.hint] : []), ...DIM_CANDIDATES[g.kind]])];
      const scores: [number, number][] = [];
      const scan = (v: number) => {
        const trial = { ...values };
        for (const k of g.keys) trial[k] = v;
        scores.push([v, shapeContradictions(model, trial)]);
      };
      for (const v of tried) scan(v);
      if (!scores.some(([, c]) => c === 0)) for (let v = 1; v <= 1024; v++) if (!tried.includes(v)) scan(v);
      const best = Math.min(...scores.map(([, c]) => c));
      const ok = scores.filter(([, c]) => c === best).map(([v]) => v);
      for (const k of g.keys) {
        if (values[k] !== ok[0]) sources[k] = 'searched';
        values[k] = ok[0]!;
      }
      alternatives.set(g, ok.slice(1));
    }
  } else {
    for (const g of groups) alternatives.set(g, DIM_CANDIDATES[g.kind].filter((v) => v !== values[g.keys[0]!]));
  }
  const out: DimAssignment[] = [{ values, sources }];
  const seen = new Set([JSON.stringify(values)]);
  const push = (v: Record<string, number>, s: Record<string, string>) => {
    const id = JSON.stringify(v);
    if (out.length < maxAttempts && !seen.has(id)) {
      seen.add(id);
      out.push({ values: v, sources: s });
    }
  };
  const batchKeys = dims.filter((d) => d.kind === 'batch' && !fixed[d.key]).map((d) => d.key);
  if (batchKeys.length && batch > 1) push({ ...values, ...Object.fromEntries(batchKeys.map((k) => [k, 1])) }, sources);
  for (let i = 0; i < 3; i++) {
    for (const [g, alt] of alternatives) {
      if (alt[i] === undefined) continue;
      const v = { ...values };
      const s = { ...sources };
      for (const k of g.keys) {
        v[k] = alt[i]!;
        s[k] = 'searched';
      }
      push(v, s);
    }
  }
  return out;
}
