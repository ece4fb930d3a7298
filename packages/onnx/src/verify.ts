/**
 * Verification: run two models in onnxruntime-node on the same inputs and compare every output.
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { InvalidArgumentError, Rng } from '@gradmax/core';
import type { ValueInfoProto } from 'onnx-buf';
import { ExecutionProviderError, RuntimeError } from './errors.js';
import { halfToNumber, numberToHalf } from './fp16.js';
import { loadModel, valueInfoElemType, valueInfoShape, type OnnxModel } from './model.js';
import { npyToFloat64, readNpy, type NpyArray } from './npy.js';
import { ortTypeName } from './ort-types.js';
import { dataTypeName } from './tensor.js';

type Ort = typeof import('onnxruntime-node');
let ort: Ort | undefined;
function runtime(): Ort {
  if (!ort) {
    ort = createRequire(import.meta.url)('onnxruntime-node') as Ort;
    // Errors come back as typed errors; keep onnxruntime's native logger quiet unless asked otherwise.
    if (!process.env.GRADMAX_ORT_LOG) ort.env.logLevel = 'fatal';
  }
  return ort;
}

/** Options of {@link verifyModels}. */
export interface VerifyOptions {
  /** Inputs by graph input name: `.npy` file paths or arrays. Missing inputs are drawn at random. */
  inputs?: Record<string, string | NpyArray>;
  /** Values for symbolic dims of graph inputs (e.g. `{ N: 4 }`). */
  dims?: Record<string, number>;
  /** Seed of the random inputs (default 0). */
  seed?: number;
  /** onnxruntime execution provider (default `"cpu"`). */
  executionProvider?: string;
  /** Allowed max |Δ| per output (default 1e-5 for float32/float64 outputs, 1e-2·max|a| for float16 outputs). */
  atol?: number;
  /** Allowed max |Δ| / max|a| per output (default 1e-5; 1e-2 for float16 outputs). An output passes when either holds. */
  rtol?: number;
}

/** Comparison of one output. */
export interface OutputDiff {
  /** Output name. */
  name: string;
  /** Output shape. */
  shape: number[];
  /** Max absolute difference. */
  maxAbs: number;
  /** Max absolute difference divided by the original output's max |value| (0 when both are 0). */
  maxRel: number;
  /** Whether the output is within tolerance. */
  ok: boolean;
}

/** Result of {@link verifyModels}. */
export interface VerifyReport {
  /** True when every output is within tolerance. */
  ok: boolean;
  /** One entry per output of the original model. */
  outputs: OutputDiff[];
  /** Input shapes used. */
  inputs: Record<string, number[]>;
  /** Execution provider used. */
  executionProvider: string;
}

function graphInputs(model: OnnxModel): ValueInfoProto[] {
  const inits = new Set(model.graph.initializer.map((t) => t.name));
  return model.graph.input.filter((i) => !inits.has(i.name));
}

/** The ORT types {@link makeInputs} can fill (from `.npy` arrays or at random). */
const VERIFY_INPUT_TYPES: ReadonlySet<string> = new Set(['float32', 'float16', 'float64', 'int64', 'int32', 'bool']);

function ortType(elem: number): string {
  const t = ortTypeName(elem);
  if (t === undefined || !VERIFY_INPUT_TYPES.has(t)) throw new InvalidArgumentError(`graph inputs of type ${dataTypeName(elem)} are not supported by verify`, { dataType: elem });
  return t;
}

/** Builds the input feeds: supplied `.npy` arrays or seeded random values of the declared shapes. */
export function makeInputs(model: OnnxModel, options: VerifyOptions = {}): Record<string, { type: string; data: ArrayLike<number | bigint | boolean>; dims: number[] }> {
  const rng = new Rng(options.seed ?? 0);
  const feeds: Record<string, { type: string; data: ArrayLike<number | bigint | boolean>; dims: number[] }> = {};
  for (const input of graphInputs(model)) {
    const elem = valueInfoElemType(input);
    if (elem === undefined) throw new InvalidArgumentError(`graph input "${input.name}" is not a tensor`, { input: input.name });
    const type = ortType(elem);
    const given = options.inputs?.[input.name];
    if (given !== undefined) {
      const arr = typeof given === 'string' ? readNpy(given) : given;
      const values = npyToFloat64(arr);
      let data: ArrayLike<number | bigint | boolean>;
      if (type === 'float32') data = Float32Array.from(values);
      else if (type === 'float64') data = Float64Array.from(values);
      else if (type === 'float16') data = Uint16Array.from(values, numberToHalf);
      else if (type === 'int64') data = BigInt64Array.from(values, (v) => BigInt(Math.trunc(v)));
      else if (type === 'int32') data = Int32Array.from(values);
      else data = Array.from(values, (v) => v !== 0);
      feeds[input.name] = { type, data, dims: [...arr.shape] };
      continue;
    }
    const shape = valueInfoShape(input);
    if (!shape) throw new InvalidArgumentError(`graph input "${input.name}" has no declared shape; supply it with --inputs`, { input: input.name });
    const dims = shape.map((d, i) => {
      if (typeof d === 'number') return d;
      if (typeof d === 'string' && options.dims?.[d] !== undefined) return options.dims[d]!;
      throw new InvalidArgumentError(`graph input "${input.name}" has symbolic dimension ${i} ("${d ?? '?'}"); give it a value (e.g. --dim ${d ?? 'name'}=1) or supply inputs`, {
        input: input.name,
        dim: d,
      });
    });
    const n = dims.reduce((a, b) => a * b, 1);
    let data: ArrayLike<number | bigint | boolean>;
    if (type === 'float32') data = rng.fillNormal(new Float32Array(n));
    else if (type === 'float64') data = rng.fillNormal(new Float64Array(n));
    else if (type === 'float16') data = Uint16Array.from({ length: n }, () => numberToHalf(rng.normal()));
    else if (type === 'int64') data = BigInt64Array.from({ length: n }, () => BigInt(rng.int(10)));
    else if (type === 'int32') data = Int32Array.from({ length: n }, () => rng.int(10));
    else data = Array.from({ length: n }, () => rng.uniform() < 0.5);
    feeds[input.name] = { type, data, dims };
  }
  return feeds;
}

/** Names of the execution providers onnxruntime-node reports, with whether they ship with the package. */
export function executionProviders(): { name: string; bundled: boolean }[] {
  return runtime().listSupportedBackends().map((b) => ({ name: b.name, bundled: b.bundled }));
}

async function createSession(file: string | Uint8Array, ep: string, label: string) {
  const o = runtime();
  const known = o.listSupportedBackends();
  const entry = known.find((b) => b.name === ep);
  if (!entry) throw new ExecutionProviderError(`execution provider "${ep}" is not supported by onnxruntime-node; available: ${known.map((b) => b.name).join(', ')}`, { executionProvider: ep });
  try {
    // logSeverityLevel 4 (fatal): failures come back as one typed error instead of native log lines on stderr
    const options = { executionProviders: [ep], graphOptimizationLevel: 'disabled', logSeverityLevel: 4 } as const;
    return typeof file === 'string' ? await o.InferenceSession.create(file, options) : await o.InferenceSession.create(file, options);
  } catch (e) {
    const msg = (e as Error).message ?? String(e);
    if (ep !== 'cpu') {
      throw new ExecutionProviderError(`execution provider "${ep}" is unavailable here (${entry.bundled ? '' : 'its provider libraries are not installed; '}${msg.trimEnd()}); use --execution-provider cpu`, { executionProvider: ep });
    }
    throw new RuntimeError(`onnxruntime cannot load ${label}: ${msg.trimEnd()}`, { file: label });
  }
}

function toFloat64(t: { type: string; data: unknown }): Float64Array {
  if (t.type === 'float16') return Float64Array.from(t.data as Uint16Array, halfToNumber);
  if (t.type === 'int64' || t.type === 'uint64') return Float64Array.from(t.data as BigInt64Array, (v) => Number(v));
  if (t.type === 'bool') return Float64Array.from(t.data as Uint8Array);
  return Float64Array.from(t.data as ArrayLike<number>);
}

/** Runs a model (file path or loaded model) on the given feeds; returns outputs as float64 with shapes. */
export async function runModel(model: string | OnnxModel, feeds: ReturnType<typeof makeInputs>, executionProvider = 'cpu'): Promise<Map<string, { data: Float64Array; dims: number[]; type: string }>> {
  const o = runtime();
  const file = typeof model === 'string' ? model : model.label;
  let session;
  // A loaded model runs as it is now (it may have been edited since it was read from its file).
  if (typeof model === 'string') session = await createSession(model, executionProvider, model);
  else {
    const { serializeModel } = await import('./model.js');
    session = await createSession(serializeModel(model), executionProvider, model.label);
  }
  const ortFeeds: Record<string, InstanceType<Ort['Tensor']>> = {};
  for (const [name, f] of Object.entries(feeds)) {
    try {
      ortFeeds[name] = new o.Tensor(f.type as 'float32', f.data as Float32Array, f.dims);
    } catch (e) {
      await session.release().catch(() => undefined);
      throw new InvalidArgumentError(`input "${name}" of shape [${f.dims.join(', ')}]: ${(e as Error).message}`, { input: name, shape: f.dims });
    }
  }
  let results;
  try {
    results = await session.run(ortFeeds);
  } catch (e) {
    throw new RuntimeError(`onnxruntime failed to run ${file ?? 'the model'}: ${((e as Error).message ?? String(e)).trimEnd()}`, { file });
  } finally {
    await session.release().catch(() => undefined);
  }
  const out = new Map<string, { data: Float64Array; dims: number[]; type: string }>();
  for (const [name, t] of Object.entries(results)) out.set(name, { data: toFloat64(t as { type: string; data: unknown }), dims: [...(t as { dims: readonly number[] }).dims], type: (t as { type: string }).type });
  return out;
}

/**
 * Runs the original and the widened model (paths or loaded models) on the same inputs and compares every output of
 * the original by name. Throws {@link ExecutionProviderError} when the provider is unavailable,
 * {@link InvalidArgumentError} for symbolic dims without a value.
 */
export async function verifyModels(original: string | OnnxModel, widened: string | OnnxModel, options: VerifyOptions = {}): Promise<VerifyReport> {
  const a = typeof original === 'string' ? loadModel(original) : original;
  const ep = options.executionProvider ?? 'cpu';
  if (options.inputs) {
    const known = new Set(graphInputs(a).map((i) => i.name));
    for (const name of Object.keys(options.inputs)) if (!known.has(name)) throw new InvalidArgumentError(`--inputs names "${name}", which is not a graph input; inputs: ${[...known].join(', ')}`, { input: name });
  }
  const feeds = makeInputs(a, options);
  const ra = await runModel(typeof original === 'string' ? path.resolve(original) : original, feeds, ep);
  const rb = await runModel(typeof widened === 'string' ? path.resolve(widened) : widened, feeds, ep);
  const outputs: OutputDiff[] = [];
  for (const [name, x] of ra) {
    const y = rb.get(name);
    if (!y) {
      outputs.push({ name, shape: x.dims, maxAbs: Infinity, maxRel: Infinity, ok: false });
      continue;
    }
    if (x.dims.join() !== y.dims.join()) {
      outputs.push({ name, shape: y.dims, maxAbs: Infinity, maxRel: Infinity, ok: false });
      continue;
    }
    let maxAbs = 0;
    let scale = 0;
    for (let i = 0; i < x.data.length; i++) {
      const xa = x.data[i]!;
      const yb = y.data[i]!;
      if (xa === yb || (Number.isNaN(xa) && Number.isNaN(yb))) {
        if (Number.isFinite(xa)) scale = Math.max(scale, Math.abs(xa));
        continue;
      }
      const d = Math.abs(xa - yb);
      maxAbs = Number.isNaN(d) ? Infinity : Math.max(maxAbs, d);
      if (Number.isFinite(xa)) scale = Math.max(scale, Math.abs(xa));
    }
    const maxRel = maxAbs === 0 ? 0 : scale === 0 ? Infinity : maxAbs / scale;
    const half = x.type === 'float16';
    const atol = options.atol ?? (half ? 0 : 1e-5);
    const rtol = options.rtol ?? (half ? 1e-2 : 1e-5);
    outputs.push({ name, shape: x.dims, maxAbs, maxRel, ok: maxAbs <= atol || maxRel <= rtol });
  }
  const inputs: Record<string, number[]> = {};
  for (const [k, v] of Object.entries(feeds)) inputs[k] = v.dims;
  return { ok: outputs.every((o) => o.ok), outputs, inputs, executionProvider: ep };
}

/** True when `file` exists (helper for CLIs). */
export function fileExists(file: string): boolean {
  return fs.existsSync(file);
}
