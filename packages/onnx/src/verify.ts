/**
 * Verification: run two models in onnxruntime-node on the same inputs and compare every output.
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { InvalidArgumentError, Rng } from '@gradmax/core';
import { TensorProto_DataLocation, type TensorProto, type ValueInfoProto } from 'onnx-buf';
import { ExecutionProviderError, FileAccessError, RuntimeError, assertRegularFile } from './errors.js';
import { halfToNumber, numberToHalf } from './fp16.js';
import { loadModel, valueInfoElemType, valueInfoShape, type OnnxModel } from './model.js';
import { npyToFloat64, readNpy, type NpyArray } from './npy.js';
import { ortTypeName } from './ort-types.js';
import { chooseDims, indexBounds, symbolicDims, type DimAssignment, type SymbolicDim } from './verify-dims.js';
import { dataTypeName } from './tensor.js';
import { placementProfile, type NodePlacement, type PlacementProfile } from './placement.js';

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
  /**
   * Values for symbolic dims of graph inputs (e.g. `{ N: 4 }`; a dim without a name is `INPUT:AXIS`). Dims not
   * given here are chosen by verification (see {@link verifyModels}).
   */
  dims?: Record<string, number>;
  /** Seed of the random inputs (default 0). */
  seed?: number;
  /** Samples compared (default 8): one batch when the batch dim allows, else several runs. */
  samples?: number;
  /**
   * Scales of the random float inputs (default `[1, 10]`): the samples are split into equal parts, part `i` drawn
   * from N(0, scales[i]²), so that both small and large activations are compared.
   */
  scales?: number[];
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
  /** Output shape (of the first run). */
  shape: number[];
  /** Max absolute difference over all runs. */
  maxAbs: number;
  /**
   * Max absolute difference divided by the original output's max |value|, taken separately for the samples of each
   * input scale and the largest kept (0 when both are 0).
   */
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
  /** Input shapes of one run. */
  inputs: Record<string, number[]>;
  /** Value used for every symbolic input dim, by name (`INPUT:AXIS` for a dim without a name). */
  dims: Record<string, number>;
  /** Where each value of {@link dims} came from: `--dim`, `inputs`, `batch`, `hint: ...`, `default`, `searched`. */
  dimSources: Record<string, string>;
  /** Samples compared (rows over all runs). */
  samples: number;
  /** onnxruntime runs per model. */
  runs: number;
  /** Scales of the random float inputs (empty when every input was supplied). */
  scales: number[];
  /** Execution provider used. */
  executionProvider: string;
  /** Where the widened model's nodes ran, for a provider other than cpu (which nodes fell back to the CPU provider). */
  placement?: NodePlacement;
}

/** One input tensor as handed to onnxruntime. */
export interface Feed {
  /** onnxruntime type name (`float32`, `int64`, ...). */
  type: string;
  /** Elements. */
  data: ArrayLike<number | bigint | boolean>;
  /** Shape. */
  dims: number[];
}

function graphInputs(model: OnnxModel): ValueInfoProto[] {
  const inits = new Set(model.graph.initializer.map((t) => t.name));
  return model.graph.input.filter((i) => !inits.has(i.name));
}

/** The ORT types {@link makeInputs} can fill (from `.npy` arrays or at random). */
const VERIFY_INPUT_TYPES: ReadonlySet<string> = new Set(['float32', 'float16', 'float64', 'int64', 'int32', 'bool']);

/** Largest number of elements of one random input tensor in one run (2^26: 256 MiB as float32). */
export const MAX_VERIFY_INPUT_ELEMENTS = 1 << 26;

const DEFAULT_SAMPLES = 8;
const DEFAULT_SCALES = [1, 10];

function ortType(elem: number): string {
  const t = ortTypeName(elem);
  if (t === undefined || !VERIFY_INPUT_TYPES.has(t)) throw new InvalidArgumentError(`graph inputs of type ${dataTypeName(elem)} are not supported by verify`, { dataType: elem });
  return t;
}

function feedFromArray(type: string, arr: NpyArray): Feed {
  const values = npyToFloat64(arr);
  let data: ArrayLike<number | bigint | boolean>;
  if (type === 'float32') data = Float32Array.from(values);
  else if (type === 'float64') data = Float64Array.from(values);
  else if (type === 'float16') data = Uint16Array.from(values, numberToHalf);
  else if (type === 'int64') data = BigInt64Array.from(values, (v) => BigInt(Math.trunc(v)));
  else if (type === 'int32') data = Int32Array.from(values);
  else data = Array.from(values, (v) => v !== 0);
  return { type, data, dims: [...arr.shape] };
}

/** Supplied inputs read once; their shapes checked against the declared ones (rank and fixed dims). */
function suppliedInputs(model: OnnxModel, options: VerifyOptions): Map<string, NpyArray> {
  const out = new Map<string, NpyArray>();
  for (const input of graphInputs(model)) {
    const given = options.inputs?.[input.name];
    if (given === undefined) continue;
    const arr = typeof given === 'string' ? readNpy(given) : given;
    const declared = valueInfoShape(input);
    const where = typeof given === 'string' ? ` (${given})` : '';
    if (declared) {
      if (declared.length !== arr.shape.length) {
        throw new InvalidArgumentError(`input "${input.name}"${where} has shape [${arr.shape.join(', ')}], but the model declares rank ${declared.length} ([${declared.map((d) => d ?? '?').join(', ')}])`, { input: input.name, shape: [...arr.shape] });
      }
      declared.forEach((d, axis) => {
        if (typeof d === 'number' && d > 0 && arr.shape[axis] !== d) {
          throw new InvalidArgumentError(`input "${input.name}"${where} has shape [${arr.shape.join(', ')}], but the model declares size ${d} at axis ${axis} ([${declared.map((x) => x ?? '?').join(', ')}])`, { input: input.name, shape: [...arr.shape], axis });
        }
      });
    }
    out.set(input.name, arr);
  }
  return out;
}

/** The feeds of every run for one choice of dim values, with the rows per run. */
interface RunPlan {
  feeds: Record<string, Feed>[];
  rowsPerRun: number;
  /** Index (into scales) of the scale of row `row` of run `run`. */
  groupOf: (run: number, row: number) => number;
  samples: number;
  scales: number[];
  inputs: Record<string, number[]>;
}

function planRuns(model: OnnxModel, options: VerifyOptions, supplied: Map<string, NpyArray>, dims: Record<string, number>): RunPlan {
  const samples = Math.max(1, Math.floor(options.samples ?? DEFAULT_SAMPLES));
  const scales = options.scales?.length ? options.scales : DEFAULT_SCALES;
  const rng = new Rng(options.seed ?? 0);
  const bounds = indexBounds(model);
  const specs: { name: string; type: string; dims: number[]; given?: NpyArray }[] = [];
  for (const input of graphInputs(model)) {
    const elem = valueInfoElemType(input);
    if (elem === undefined) throw new InvalidArgumentError(`graph input "${input.name}" is not a tensor`, { input: input.name });
    const type = ortType(elem);
    const given = supplied.get(input.name);
    if (given) {
      specs.push({ name: input.name, type, dims: [...given.shape], given });
      continue;
    }
    const shape = valueInfoShape(input);
    if (!shape) throw new InvalidArgumentError(`graph input "${input.name}" has no declared shape; supply it with --inputs`, { input: input.name });
    const d = shape.map((x, axis) => {
      if (typeof x === 'number' && x > 0) return x;
      const key = typeof x === 'string' && x !== '' ? x : `${input.name}:${axis}`;
      const v = dims[key];
      if (v === undefined) throw new InvalidArgumentError(`graph input "${input.name}" has symbolic dimension ${axis} ("${key}") without a value; give it with --dim ${key}=VALUE`, { input: input.name, dim: key });
      return v;
    });
    const n = d.reduce((a, b) => a * b, 1);
    if (!(n <= MAX_VERIFY_INPUT_ELEMENTS)) {
      throw new InvalidArgumentError(`graph input "${input.name}" of shape [${d.join(', ')}] has ${n} elements, more than verification draws at random (${MAX_VERIFY_INPUT_ELEMENTS}); supply it with --inputs or smaller --dim values`, { input: input.name, shape: d });
    }
    specs.push({ name: input.name, type, dims: d });
  }
  // rows per run: the leading size of the first input of rank >= 2 (the batch), else 1
  const lead = specs.find((s) => s.dims.length >= 2);
  const rowsPerRun = Math.max(1, lead?.dims[0] ?? 1);
  const allGiven = specs.length > 0 && specs.every((s) => s.given);
  const runs = supplied.size ? 1 : Math.ceil(samples / rowsPerRun);
  // sample k of all runs is drawn at scale floor(k * scales / samples)
  const groupOf = (run: number, row: number) => (allGiven ? 0 : Math.min(scales.length - 1, Math.floor(((run * rowsPerRun + row) * scales.length) / Math.max(samples, runs * rowsPerRun))));
  const feeds: Record<string, Feed>[] = [];
  for (let r = 0; r < runs; r++) {
    const run: Record<string, Feed> = {};
    for (const s of specs) {
      if (s.given) {
        run[s.name] = feedFromArray(s.type, s.given);
        continue;
      }
      const n = s.dims.reduce((a, b) => a * b, 1);
      const rows = s.dims.length >= 1 && s.dims[0] === rowsPerRun ? rowsPerRun : 1;
      const per = rows ? n / rows : n;
      const scaleOf = (row: number) => scales[groupOf(r, row)]!;
      let data: ArrayLike<number | bigint | boolean>;
      if (s.type === 'float32' || s.type === 'float64' || s.type === 'float16') {
        const v = rng.fillNormal(new Float64Array(n));
        for (let i = 0; i < n; i++) v[i]! *= scaleOf(Math.floor(i / per));
        data = s.type === 'float32' ? Float32Array.from(v) : s.type === 'float64' ? v : Uint16Array.from(v, numberToHalf);
      } else if (s.type === 'int64') data = BigInt64Array.from({ length: n }, () => BigInt(rng.int(bounds.get(s.name) ?? 10)));
      else if (s.type === 'int32') data = Int32Array.from({ length: n }, () => rng.int(bounds.get(s.name) ?? 10));
      else data = Array.from({ length: n }, () => rng.uniform() < 0.5);
      run[s.name] = { type: s.type, data, dims: [...s.dims] };
    }
    feeds.push(run);
  }
  const inputs: Record<string, number[]> = {};
  for (const s of specs) inputs[s.name] = [...s.dims];
  return { feeds, rowsPerRun, groupOf, samples: runs * rowsPerRun, scales: allGiven ? [] : scales, inputs };
}

/** Values fixed before any choice: `options.dims` (`--dim`) and the sizes of supplied inputs. */
function fixedDims(model: OnnxModel, dims: SymbolicDim[], options: VerifyOptions, supplied: Map<string, NpyArray>): Record<string, { value: number; source: string }> {
  const fixed: Record<string, { value: number; source: string }> = {};
  for (const d of dims) {
    const v = options.dims?.[d.key];
    if (v !== undefined) {
      if (!(Number.isInteger(v) && v >= 1)) throw new InvalidArgumentError(`the value of dimension "${d.key}" must be an integer >= 1, got ${v}`, { dim: d.key, value: v });
      fixed[d.key] = { value: v, source: '--dim' };
    }
  }
  for (const d of dims) {
    for (const slot of d.slots) {
      const arr = supplied.get(slot.input);
      if (!arr) continue;
      const size = arr.shape[slot.axis]!;
      const prior = fixed[d.key];
      if (prior && prior.value !== size) {
        throw new InvalidArgumentError(`dimension "${d.key}" is ${prior.value} (${prior.source}) but input "${slot.input}" has size ${size} at axis ${slot.axis}`, { dim: d.key, input: slot.input });
      }
      fixed[d.key] = { value: size, source: 'inputs' };
    }
  }
  void model;
  return fixed;
}

/**
 * Builds the input feeds of one run: supplied `.npy` arrays, or seeded random values of the declared shapes with
 * the symbolic dims chosen as in {@link verifyModels} (without running the model: the first choice). Float inputs are
 * drawn at the first of {@link VerifyOptions.scales}' scales for the first rows, larger ones for later rows.
 */
export function makeInputs(model: OnnxModel, options: VerifyOptions = {}): Record<string, Feed> {
  const supplied = suppliedInputs(model, options);
  const dims = symbolicDims(model);
  const samples = Math.max(1, Math.floor(options.samples ?? DEFAULT_SAMPLES));
  const [first] = chooseDims(model, dims, fixedDims(model, dims, options, supplied), samples, 1);
  return planRuns(model, options, supplied, first!.values).feeds[0]!;
}

/** Names of the execution providers onnxruntime-node reports, with whether they ship with the package. */
export function executionProviders(): { name: string; bundled: boolean }[] {
  return runtime().listSupportedBackends().map((b) => ({ name: b.name, bundled: b.bundled }));
}

async function createSession(file: string | Uint8Array, ep: string, label: string, baseDir?: string, extra: PlacementProfile['sessionOptions'] = {}) {
  const o = runtime();
  const known = o.listSupportedBackends();
  const entry = known.find((b) => b.name === ep);
  if (!entry) throw new ExecutionProviderError(`execution provider "${ep}" is not supported by onnxruntime-node; available: ${known.map((b) => b.name).join(', ')}`, { executionProvider: ep });
  try {
    // logSeverityLevel 4 (fatal): failures come back as one typed error instead of native log lines on stderr.
    // A model given as bytes has no folder of its own: its external data is resolved against `baseDir` (the folder
    // it was loaded from), never against the working directory.
    const options = {
      executionProviders: [ep],
      graphOptimizationLevel: 'disabled',
      logSeverityLevel: 4,
      ...extra,
      ...(typeof file !== 'string' && baseDir ? { extra: { session: { model_external_initializers_file_folder_path: path.resolve(baseDir) } } } : {}),
    } as const;
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

/** Outputs of one onnxruntime run, by output name, as float64. */
export type Outputs = Map<string, { data: Float64Array; dims: number[]; type: string }>;

/** An onnxruntime session of a model file or a loaded model, run on several feeds, released once. */
class ModelSession {
  private constructor(
    private readonly session: Awaited<ReturnType<typeof createSession>>,
    readonly label: string,
  ) {}

  static async open(model: string | OnnxModel, executionProvider: string, profile?: PlacementProfile): Promise<ModelSession> {
    const extra = profile?.sessionOptions ?? {};
    if (typeof model === 'string') {
      // onnxruntime would read /dev/zero or a FIFO without end
      let st: fs.Stats;
      try {
        st = fs.statSync(model);
      } catch (e) {
        throw new FileAccessError(`cannot read model file "${model}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: model });
      }
      assertRegularFile(st, `model file "${model}"`, model);
      return new ModelSession(await createSession(model, executionProvider, model, undefined, extra), model);
    }
    // A loaded model runs as it is now (it may have been edited since it was read from its file). External tensors
    // rewritten in memory are inlined for the session (their data file still holds the old bytes); the others stay
    // external and are read from the model's own folder.
    const { serializeModel } = await import('./model.js');
    const saved: [TensorProto, Pick<TensorProto, 'dataLocation' | 'externalData' | 'rawData'>][] = [];
    let bytes: Uint8Array;
    try {
      for (const [t, data] of model.externalOverrides) {
        saved.push([t, { dataLocation: t.dataLocation, externalData: t.externalData, rawData: t.rawData }]);
        t.dataLocation = TensorProto_DataLocation.DEFAULT;
        t.externalData = [];
        t.rawData = data as Uint8Array<ArrayBuffer>;
      }
      bytes = serializeModel(model);
    } finally {
      for (const [t, v] of saved) Object.assign(t, v);
    }
    return new ModelSession(await createSession(bytes, executionProvider, model.label, model.baseDir, extra), model.label);
  }

  async run(feeds: Record<string, Feed>): Promise<Outputs> {
    const o = runtime();
    const ortFeeds: Record<string, InstanceType<Ort['Tensor']>> = {};
    for (const [name, f] of Object.entries(feeds)) {
      try {
        ortFeeds[name] = new o.Tensor(f.type as 'float32', f.data as Float32Array, f.dims);
      } catch (e) {
        throw new InvalidArgumentError(`input "${name}" of shape [${f.dims.join(', ')}]: ${(e as Error).message}`, { input: name, shape: f.dims });
      }
    }
    let results;
    try {
      results = await this.session.run(ortFeeds);
    } catch (e) {
      throw new RuntimeError(`onnxruntime failed to run ${this.label}: ${((e as Error).message ?? String(e)).trimEnd()}`, { file: this.label });
    }
    const out: Outputs = new Map();
    for (const [name, t] of Object.entries(results)) out.set(name, { data: toFloat64(t as { type: string; data: unknown }), dims: [...(t as { dims: readonly number[] }).dims], type: (t as { type: string }).type });
    return out;
  }

  async release(): Promise<void> {
    await this.session.release().catch(() => undefined);
  }
}

/** Runs a model (file path or loaded model) on the given feeds; returns outputs as float64 with shapes. */
export async function runModel(model: string | OnnxModel, feeds: Record<string, Feed>, executionProvider = 'cpu'): Promise<Outputs> {
  const session = await ModelSession.open(model, executionProvider);
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

/**
 * Runs the original and the widened model (paths or loaded models) on the same inputs and compares every output of
 * the original by name.
 *
 * Inputs not supplied are drawn at random: {@link VerifyOptions.samples} samples (default 8) at more than one scale
 * ({@link VerifyOptions.scales}). Symbolic input dims not given in {@link VerifyOptions.dims} are chosen here:
 * batch-like dims (any symbolic leading dim, or a name like `batch`/`N`) hold all samples in one batch, other dims take
 * the size the model's weights or constants imply, else a default of their kind (32 for image sizes, 16 for sequence
 * lengths) that keeps the graph's static shapes consistent. When onnxruntime rejects a choice, batch 1 (with one run
 * per sample) and a few other values are tried; the report lists the values used ({@link VerifyReport.dims}).
 *
 * Throws {@link ExecutionProviderError} when the provider is unavailable, {@link InvalidArgumentError} when supplied
 * inputs do not fit the declared shapes or no tried value of a symbolic dim runs (naming the dim to give), and
 * {@link RuntimeError} when a model cannot be loaded or run.
 */
export async function verifyModels(original: string | OnnxModel, widened: string | OnnxModel, options: VerifyOptions = {}): Promise<VerifyReport> {
  const a = typeof original === 'string' ? loadModel(original) : original;
  const ep = options.executionProvider ?? 'cpu';
  if (options.inputs) {
    const known = new Set(graphInputs(a).map((i) => i.name));
    for (const name of Object.keys(options.inputs)) if (!known.has(name)) throw new InvalidArgumentError(`--inputs names "${name}", which is not a graph input; inputs: ${[...known].join(', ')}`, { input: name });
  }
  const supplied = suppliedInputs(a, options);
  const symbolic = symbolicDims(a);
  const fixed = fixedDims(a, symbolic, options, supplied);
  const samples = Math.max(1, Math.floor(options.samples ?? DEFAULT_SAMPLES));
  const attempts = chooseDims(a, symbolic, fixed, samples);

  const sa = await ModelSession.open(typeof original === 'string' ? path.resolve(original) : original, ep);
  let plan: RunPlan | undefined;
  let chosen: DimAssignment | undefined;
  let reference: Outputs[] = [];
  const failures: string[] = [];
  let planError: InvalidArgumentError | undefined;
  let firstFailure: RuntimeError | undefined;
  try {
    for (const attempt of attempts) {
      let p: RunPlan;
      try {
        p = planRuns(a, options, supplied, attempt.values);
      } catch (e) {
        // too large for this choice (e.g. the whole batch): a later choice (batch 1) may fit
        if (!(e instanceof InvalidArgumentError) || attempt === attempts[attempts.length - 1]) throw e;
        planError ??= e;
        continue;
      }
      try {
        reference = [];
        for (const feeds of p.feeds) reference.push(await sa.run(feeds));
        plan = p;
        chosen = attempt;
        break;
      } catch (e) {
        if (!(e instanceof RuntimeError)) throw e;
        firstFailure ??= e;
        failures.push(`${describeDims(attempt.values)}: ${e.message}`);
        // nothing was chosen here: the model itself does not run on these inputs
        if (!symbolic.some((d) => !fixed[d.key])) throw e;
      }
    }
  } finally {
    await sa.release();
  }
  if (!plan || !chosen) {
    if (planError && !failures.length) throw planError;
    const auto = symbolic.filter((d) => !fixed[d.key]);
    const named = auto.filter((d) => d.kind !== 'batch');
    if (!named.length && firstFailure) {
      // only batch sizes were chosen: the model fails whatever the batch, so the failure is not about a dimension
      throw new RuntimeError(`${firstFailure.message} (batch sizes tried: ${[...new Set(attempts.map((t) => auto.map((d) => t.values[d.key]).join('/')))].join(', ')})`, firstFailure.details);
    }
    const ask = (named.length ? named : auto).map((d) => d.key);
    throw new InvalidArgumentError(
      `cannot choose values for the symbolic input dimension${ask.length === 1 ? '' : 's'} ${ask.map((k) => `"${k}"`).join(', ')}: onnxruntime rejected every choice tried (${failures[0]}${failures.length > 1 ? `; and ${failures.length - 1} more` : ''}); give ${ask.length === 1 ? 'it' : 'them'} with ${ask.map((k) => `--dim ${k}=VALUE`).join(' ')}`,
      { dims: ask, tried: attempts.map((t) => t.values) },
    );
  }
  const profile = placementProfile(ep);
  const sb = await ModelSession.open(typeof widened === 'string' ? path.resolve(widened) : widened, ep, profile);
  // per output and input scale: max |Δ| and max |a| (relative differences are taken per scale, so that the large
  // outputs of the scaled samples do not hide a difference in the small ones)
  const acc = new Map<string, { shape: number[]; maxAbs: number[]; scale: number[]; type: string; broken: boolean }>();
  const groups = Math.max(1, plan.scales.length);
  try {
    for (let r = 0; r < plan.feeds.length; r++) {
      const ra = reference[r]!;
      const rb = await sb.run(plan.feeds[r]!);
      for (const [name, x] of ra) {
        let e = acc.get(name);
        if (!e) acc.set(name, (e = { shape: x.dims, maxAbs: new Array<number>(groups).fill(0), scale: new Array<number>(groups).fill(0), type: x.type, broken: false }));
        const y = rb.get(name);
        if (!y || x.dims.join() !== y.dims.join()) {
          e.broken = true;
          if (y) e.shape = y.dims;
          continue;
        }
        const rows = x.dims.length >= 1 && x.dims[0] === plan.rowsPerRun ? plan.rowsPerRun : 1;
        const per = Math.max(1, x.data.length / rows);
        for (let i = 0; i < x.data.length; i++) {
          const xa = x.data[i]!;
          const yb = y.data[i]!;
          const g = plan.groupOf(r, Math.floor(i / per));
          if (Number.isFinite(xa)) e.scale[g] = Math.max(e.scale[g]!, Math.abs(xa));
          if (xa === yb || (Number.isNaN(xa) && Number.isNaN(yb))) continue;
          const d = Math.abs(xa - yb);
          e.maxAbs[g] = Number.isNaN(d) ? Infinity : Math.max(e.maxAbs[g]!, d);
        }
      }
    }
  } finally {
    await sb.release();
  }
  const placement = profile.read();
  const outputs: OutputDiff[] = [];
  for (const [name, e] of acc) {
    if (e.broken) {
      outputs.push({ name, shape: e.shape, maxAbs: Infinity, maxRel: Infinity, ok: false });
      continue;
    }
    const maxAbs = Math.max(...e.maxAbs);
    const maxRel = Math.max(...e.maxAbs.map((d, g) => (d === 0 ? 0 : e.scale[g] === 0 ? Infinity : d / e.scale[g]!)));
    const half = e.type === 'float16';
    const atol = options.atol ?? (half ? 0 : 1e-5);
    const rtol = options.rtol ?? (half ? 1e-2 : 1e-5);
    outputs.push({ name, shape: e.shape, maxAbs, maxRel, ok: maxAbs <= atol || maxRel <= rtol });
  }
  return {
    ok: outputs.every((o) => o.ok),
    outputs,
    inputs: plan.inputs,
    dims: chosen.values,
    dimSources: chosen.sources,
    samples: plan.samples,
    runs: plan.feeds.length,
    scales: plan.scales,
    executionProvider: ep,
    ...(placement ? { placement } : {}),
  };
}

function describeDims(values: Record<string, number>): string {
  const e = Object.entries(values);
  return e.length ? e.map(([k, v]) => `${k}=${v}`).join(' ') : 'fixed shapes';
}

/** True when `file` exists (helper for CLIs). */
export function fileExists(file: string): boolean {
  return fs.existsSync(file);
}
