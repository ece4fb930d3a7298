/**
 * Static shape and type discovery for the probe builder: runs the forward model in onnxruntime twice with
 * every intermediate tensor exposed, with the symbolic input dims set to two different values, and keeps the
 * dims that did not change as static.
 * @packageDocumentation
 */
import { clone, create, toBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema, ValueInfoProtoSchema } from 'onnx-buf';
import type { ModelProto } from 'onnx-buf';
import * as ort from 'onnxruntime-node';
import { InvalidArgumentError } from '@gradmax/core';
import { RuntimeError } from '../errors.js';
import { onnxElemType, ortTypeName } from '../ort-types.js';
import { valueInfoType } from './onnx-util.js';

/** Element type and shape of one tensor; `null` dims vary with the symbolic input dims (e.g. the batch). */
export interface TensorInfo {
  elemType: number;
  dims: (number | null)[];
}

/** ORT tensor type name of an ONNX element type. */
export function ortType(elemType: number): ort.Tensor.Type {
  const t = ortTypeName(elemType);
  if (t === undefined) throw new InvalidArgumentError(`element type ${elemType} is not supported by the probe`, { elemType });
  return t;
}

/** ONNX element type of an ORT tensor type name. */
export function onnxType(t: string): number {
  const v = onnxElemType(t);
  if (v === undefined) throw new InvalidArgumentError(`tensor type ${t} is not supported by the probe`, { type: t });
  return v;
}

/** Creates a random ORT tensor (ints are zeros) of the given ONNX type and dims. */
export function randomTensor(elemType: number, dims: number[], seed: number): ort.Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  const t = ortType(elemType);
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) / 4294967296) * 2 - 1;
  };
  if (t === 'float32') return new ort.Tensor(t, Float32Array.from({ length: n }, next), dims);
  if (t === 'float64') return new ort.Tensor(t, Float64Array.from({ length: n }, next), dims);
  if (t === 'int64') return new ort.Tensor(t, new BigInt64Array(n), dims);
  if (t === 'int32') return new ort.Tensor(t, new Int32Array(n), dims);
  if (t === 'bool') return new ort.Tensor(t, new Uint8Array(n), dims);
  if (t === 'uint8') return new ort.Tensor(t, new Uint8Array(n), dims);
  if (t === 'int8') return new ort.Tensor(t, new Int8Array(n), dims);
  throw new InvalidArgumentError(`cannot create a random ${t} input`, { type: t });
}

/** Options of {@link discoverShapes}. */
export interface DiscoverShapesOptions {
  /**
   * Values tried for symbolic dims (two different values). Default: a leading (batch) dim takes 2 and 3, other dims
   * 16 and 33 (far enough apart that strided and pooled sizes differ too), then 32 and 64 if the model fails with
   * those (a U-Net needs sizes its poolings divide).
   */
  symbolicValues?: [number, number];
  /** Explicit values for named symbolic dims (kept fixed in both runs). */
  fixedDims?: Record<string, number>;
}

/**
 * Discovers the element type and shape of every main-graph tensor (graph inputs, initializers' consumers'
 * outputs, node outputs) by running the model in onnxruntime on random inputs.
 */
export async function discoverShapes(model: ModelProto, options: DiscoverShapesOptions = {}): Promise<Map<string, TensorInfo>> {
  const graph = model.graph;
  if (!graph) throw new InvalidArgumentError('model has no graph');
  const probe = clone(ModelProtoSchema, model);
  const g = probe.graph!;
  const existing = new Set(g.output.map((o) => o.name));
  const initNames = new Set(g.initializer.map((t) => t.name));
  for (const node of g.node) {
    for (const out of node.output) {
      if (out && !existing.has(out)) {
        existing.add(out);
        g.output.push(create(ValueInfoProtoSchema, { name: out }));
      }
    }
  }
  // Drop the (possibly stale) value_info so ORT infers everything itself.
  g.valueInfo = [];
  const bytes = toBinary(ModelProtoSchema, probe);
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'disabled' });
  const attempts: SymbolicValues[] = options.symbolicValues
    ? [{ batch: options.symbolicValues, other: options.symbolicValues }]
    : [
        { batch: [2, 3], other: [16, 33] },
        { batch: [2, 3], other: [32, 64] },
      ];
  let runs: Record<string, ort.Tensor>[] = [];
  let inputInfo = new Map<string, TensorInfo>();
  let firstError: unknown;
  for (const values of attempts) {
    try {
      ({ runs, inputInfo } = await runWithSymbolicValues(session, graph, initNames, values, options.fixedDims));
      firstError = undefined;
      break;
    } catch (err) {
      // Small symbolic sizes can be too small for the model (a U-Net's spatial dims pooled below 1): larger ones next.
      firstError ??= err;
    }
  }
  await session.release();
  if (firstError !== undefined) {
    const message = ((firstError as Error).message ?? String(firstError)).trimEnd();
    const tried = attempts.map((a) => `batch ${a.batch.join('/')}, others ${a.other.join('/')}`).join('; then ');
    throw new RuntimeError(`shape discovery: onnxruntime could not run the model with its symbolic dims set to ${tried} (give their values with fixedDims): ${message}`, {});
  }
  const result = new Map<string, TensorInfo>(inputInfo);
  for (const t of g.initializer) result.set(t.name, { elemType: t.dataType, dims: t.dims.map((d) => Number(d)) });
  for (const name of Object.keys(runs[0]!)) {
    const a = runs[0]![name]!;
    const b = runs[1]![name]!;
    const dims = a.dims.map((d, i) => (b.dims.length === a.dims.length && b.dims[i] === d ? d : null));
    result.set(name, { elemType: onnxType(a.type), dims: b.dims.length === a.dims.length ? dims : a.dims.map(() => null) });
  }
  for (const [, t] of Object.entries(runs[0]!)) t.dispose?.();
  for (const [, t] of Object.entries(runs[1]!)) t.dispose?.();
  return result;
}

/** Two values for the leading (batch) symbolic dims and two for the others. */
interface SymbolicValues {
  batch: [number, number];
  other: [number, number];
}

/** Runs the all-outputs model twice, the symbolic input dims set to the first, then the second of their values. */
async function runWithSymbolicValues(
  session: ort.InferenceSession,
  graph: NonNullable<ModelProto['graph']>,
  initNames: ReadonlySet<string>,
  values: SymbolicValues,
  fixedDims: Record<string, number> | undefined,
): Promise<{ runs: Record<string, ort.Tensor>[]; inputInfo: Map<string, TensorInfo> }> {
  const options = { fixedDims };
  const runs: Record<string, ort.Tensor>[] = [];
  const inputInfo = new Map<string, TensorInfo>();
  const roles = new Map<string, boolean>();
  for (const k of [0, 1]) {
    const feeds: Record<string, ort.Tensor> = {};
    for (const inp of graph.input) {
      if (initNames.has(inp.name)) continue;
      const info = valueInfoType(inp);
      if (!info || !info.dims) throw new InvalidArgumentError(`graph input "${inp.name}" has no tensor shape`, { input: inp.name });
      const dims = info.dims.map((d, i) => {
        if (typeof d === 'number' && d > 0) return d;
        if (typeof d === 'string' && options.fixedDims?.[d] !== undefined) return options.fixedDims[d]!;
        // A named dim keeps one role (batch or other) across inputs: the role of its first appearance.
        let leading = i === 0;
        if (typeof d === 'string' && d) leading = roles.get(d) ?? (roles.set(d, leading), leading);
        return (leading ? values.batch : values.other)[k]!;
      });
      if (k === 0) inputInfo.set(inp.name, { elemType: info.elemType, dims: info.dims.map((d) => (typeof d === 'number' && d > 0 ? d : typeof d === 'string' && options.fixedDims?.[d] !== undefined ? options.fixedDims[d]! : null)) });
      feeds[inp.name] = randomTensor(info.elemType, dims, 12345 + k);
    }
    runs.push(await session.run(feeds));
  }
  return { runs, inputInfo };
}
