/**
 * Library API: build the probe, stream minibatches through onnxruntime and merge the per-batch sums into the
 * core's statistics objects.
 * @packageDocumentation
 */
import * as ort from 'onnxruntime-node';
import { toBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema, TensorProto_DataType } from 'onnx-buf';
import type { ModelProto } from 'onnx-buf';
import { ConvStatistics, DenseStatistics, InvalidArgumentError, ShapeMismatchError, SketchStatistics } from '@gradmax/core';
import type { StatisticsOptions } from '@gradmax/core';
import { ExecutionProviderError, RuntimeError } from '../errors.js';
import { OnnxModel, loadModel } from '../model.js';
import { buildProbe } from './build.js';
import { placementProfile, type NodePlacement } from '../placement.js';
import type { BuildProbeOptions, ProbeModel } from './build.js';

/** A plain tensor: ORT type name (`"float32"`, `"float64"`, `"int64"`…), row-major data and dims. */
export interface TensorLike {
  type: string;
  data: ArrayLike<number> | BigInt64Array;
  dims: readonly number[];
}

/** One minibatch: the model's data inputs and the labels (cross-entropy) or targets (MSE). */
export interface ProbeBatch {
  /** A tensor for the single data input, or tensors by input name (onnxruntime tensors or {@link TensorLike}s). */
  inputs: ort.Tensor | TensorLike | Record<string, ort.Tensor | TensorLike>;
  /**
   * Integer class labels `[N]` (any integer array, or an INT64/INT32 tensor) for cross-entropy; a float tensor
   * shaped like the output (or a flat float array) for MSE.
   */
  labels: ort.Tensor | TensorLike | ArrayLike<number> | BigInt64Array;
}

function isTensorLike(v: unknown): v is TensorLike {
  return !!v && typeof v === 'object' && 'dims' in v && 'data' in v && 'type' in v;
}

function toOrt(t: ort.Tensor | TensorLike): ort.Tensor {
  return t instanceof ort.Tensor ? t : new ort.Tensor(t.type as 'float32', t.data as Float32Array, [...t.dims]);
}

/** Progress report after each minibatch. */
export interface ProbeProgress {
  /** Examples processed so far. */
  examples: number;
  /** Minibatches processed so far. */
  batches: number;
  /** Mean loss over the examples so far. */
  meanLoss: number;
}

/** Options of {@link computeStatistics}. */
export interface ComputeStatisticsOptions extends BuildProbeOptions {
  /** Minibatches (each is split into chunks of at most `batchSize` examples). */
  data: Iterable<ProbeBatch> | AsyncIterable<ProbeBatch>;
  /** Largest batch sent to onnxruntime at once (default: each minibatch as given). */
  batchSize?: number;
  /** onnxruntime session options (merged; `executionProviders` is set from `executionProvider` unless given here). */
  sessionOptions?: ort.InferenceSession.SessionOptions;
  /** Execution provider name: `"cpu"` (default), `"webgpu"` (needs a Vulkan/Metal/D3D12 driver), `"cuda"`. */
  executionProvider?: string;
  /** Options of the core statistics objects (sample retention is not available from the probe). */
  statisticsOptions?: Omit<StatisticsOptions, 'retainSamples'>;
  /** Called after every minibatch. */
  onProgress?: (progress: ProbeProgress) => void;
}

/** Statistics of one site: core statistics objects (call `.snapshot()` for the strategy's `SiteStatistics` (from `@gradmax/core`)). */
export type ProbeStatistics = DenseStatistics | ConvStatistics | SketchStatistics;

/** Result of {@link computeStatistics}. */
export interface ComputeStatisticsResult {
  /** Statistics per site name. */
  statistics: Map<string, ProbeStatistics>;
  /** Examples processed. */
  examples: number;
  /** Mean loss over all examples. */
  meanLoss: number;
  /** The probe that was run. */
  probe: ProbeModel;
  /** Where the probe's nodes ran, for a provider other than cpu (which nodes fell back to the CPU provider). */
  placement?: NodePlacement;
}

/** Creates an onnxruntime session for `model` on the requested execution provider. */
export async function createProbeSession(
  model: ModelProto,
  options: { sessionOptions?: ort.InferenceSession.SessionOptions; executionProvider?: string } = {},
): Promise<ort.InferenceSession> {
  const ep = options.executionProvider ?? 'cpu';
  const known = ort.listSupportedBackends?.() ?? [{ name: 'cpu', bundled: true }];
  const entry = known.find((b) => b.name === ep);
  if (!entry) throw new ExecutionProviderError(`execution provider "${ep}" is not supported by onnxruntime-node; available: ${known.map((b) => b.name).join(', ')}`, { executionProvider: ep });
  // logSeverityLevel 3: onnxruntime's warning that some nodes run on the CPU provider is replaced by the placement report.
  const sessionOptions: ort.InferenceSession.SessionOptions = { executionProviders: [ep], ...(ep !== 'cpu' ? { logSeverityLevel: 3 as const } : {}), ...options.sessionOptions };
  const bytes = toBinary(ModelProtoSchema, model);
  try {
    return await ort.InferenceSession.create(bytes, sessionOptions);
  } catch (err) {
    // onnxruntime's whole message: the first line alone often names only the failing node, not why.
    const message = ((err as Error).message ?? String(err)).trimEnd();
    if (ep !== 'cpu') {
      throw new ExecutionProviderError(
        `execution provider "${ep}" is unavailable here (${entry.bundled ? '' : 'its provider libraries are not installed; '}${message}); use the cpu provider`,
        { executionProvider: ep },
      );
    }
    throw new RuntimeError(`onnxruntime could not load the probe model: ${message}`, { executionProvider: ep });
  }
}

function batchOf(t: ort.Tensor): number {
  const n = t.dims[0];
  if (n === undefined) throw new InvalidArgumentError('input tensors need a batch dimension');
  return n;
}

function sliceTensor(t: ort.Tensor, start: number, end: number): ort.Tensor {
  if (start === 0 && end === batchOf(t)) return t;
  const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
  const data = (t.data as unknown as { subarray(a: number, b: number): ArrayLike<number> }).subarray(start * per, end * per);
  return new ort.Tensor(t.type as 'float32', data as Float32Array, [end - start, ...t.dims.slice(1)]);
}

function labelsTensor(labelsIn: ProbeBatch['labels'], probe: ProbeModel, batch: number, outputDims: readonly (number | null)[], classes?: number): ort.Tensor {
  let labels = isTensorLike(labelsIn) ? toOrt(labelsIn) : labelsIn;
  if (probe.labelsType === TensorProto_DataType.INT64) {
    if (labels instanceof ort.Tensor) {
      if (labels.type === 'int64') labels = labels.data as BigInt64Array;
      else if (labels.type === 'float32' || labels.type === 'float64') throw new InvalidArgumentError('cross-entropy labels must be integers, got a float tensor');
      else labels = labels.data as ArrayLike<number>;
    }
    const src = labels as ArrayLike<number | bigint>;
    const arr = new BigInt64Array(src.length);
    for (let i = 0; i < src.length; i++) {
      const v = src[i]!;
      if (typeof v === 'number' && !Number.isInteger(v)) throw new InvalidArgumentError(`label ${i} is not an integer (${v})`, { index: i });
      arr[i] = BigInt(v);
    }
    if (arr.length !== batch) throw new ShapeMismatchError('labels', [batch], [arr.length]);
    // Out-of-range labels would select no logit and give a meaningless loss and M.
    if (typeof classes === 'number' && classes > 0) {
      for (let i = 0; i < arr.length; i++) {
        if (arr[i]! < 0n || arr[i]! >= BigInt(classes)) throw new InvalidArgumentError(`label ${i} is ${arr[i]}, outside [0, ${classes}) for an output with ${classes} classes`, { index: i, label: String(arr[i]), classes });
      }
    }
    return new ort.Tensor('int64', arr, [batch]);
  }
  const type = probe.floatType === TensorProto_DataType.DOUBLE ? 'float64' : 'float32';
  const dims = [batch, ...outputDims.slice(1).map((d) => d ?? -1)];
  if (dims.includes(-1)) {
    if (labels instanceof ort.Tensor) return labels;
    throw new InvalidArgumentError('MSE targets must be a tensor when the output has symbolic dims');
  }
  const data = labels instanceof ort.Tensor ? (labels.data as ArrayLike<number>) : (labels as ArrayLike<number>);
  const count = dims.reduce((a, b) => a * b, 1);
  if (data.length !== count) throw new ShapeMismatchError('targets', dims, [data.length]);
  if (labels instanceof ort.Tensor && labels.type === type) return new ort.Tensor(type, labels.data as Float32Array, dims);
  return new ort.Tensor(type, type === 'float64' ? Float64Array.from(data as ArrayLike<number>) : Float32Array.from(data as ArrayLike<number>), dims);
}

function sliceLabels(labelsIn: ProbeBatch['labels'], start: number, end: number, batch: number): ProbeBatch['labels'] {
  if (start === 0 && end === batch) return labelsIn;
  const labels = isTensorLike(labelsIn) ? toOrt(labelsIn) : labelsIn;
  if (labels instanceof ort.Tensor) return sliceTensor(labels, start, end);
  const per = (labels as ArrayLike<number>).length / batch;
  const sub = labels as unknown as { subarray?: (a: number, b: number) => ArrayLike<number>; slice: (a: number, b: number) => ArrayLike<number> };
  return (sub.subarray ? sub.subarray(start * per, end * per) : sub.slice(start * per, end * per)) as ArrayLike<number>;
}

/** Runs a built probe over minibatches and merges the results into core statistics objects. */
export async function runProbe(
  probe: ProbeModel,
  session: ort.InferenceSession,
  data: Iterable<ProbeBatch> | AsyncIterable<ProbeBatch>,
  options: { batchSize?: number; statisticsOptions?: Omit<StatisticsOptions, 'retainSamples'>; onProgress?: (p: ProbeProgress) => void; outputDims?: readonly (number | null)[]; classes?: number } = {},
): Promise<{ statistics: Map<string, ProbeStatistics>; examples: number; meanLoss: number }> {
  const statistics = new Map<string, ProbeStatistics>();
  for (const o of probe.outputs) {
    if (o.sketch) {
      const { fanOut, fanIn, rank, rowSketch, seed, tests } = o.sketch;
      statistics.set(o.site.name, new SketchStatistics(fanOut, fanIn, { rank, rowSketch, ...(seed !== undefined ? { seed } : {}), ...(tests ? { tests } : {}) }, o.site.name));
    } else if (o.layout === 'sum-gh') statistics.set(o.site.name, new DenseStatistics(o.shape[0]!, o.shape[1]!, { ...options.statisticsOptions }, o.site.name));
    else statistics.set(o.site.name, new ConvStatistics(o.site.geometry!, { ...options.statisticsOptions }, o.site.name));
  }
  if (options.batchSize !== undefined && (!Number.isInteger(options.batchSize) || options.batchSize < 1)) {
    throw new InvalidArgumentError(`batchSize must be a positive integer, got ${options.batchSize}`);
  }
  let examples = 0;
  let batches = 0;
  let lossSum = 0;
  const outNames = [probe.lossOutput, ...probe.outputs.flatMap((o) => (o.coRange ? [o.output, o.coRange.output] : [o.output]))];
  for await (const mb of data as AsyncIterable<ProbeBatch>) {
    const single = mb.inputs instanceof ort.Tensor || isTensorLike(mb.inputs);
    const feedsAll: Record<string, ort.Tensor> = {};
    if (single) feedsAll[probe.inputs[0]!] = toOrt(mb.inputs as ort.Tensor | TensorLike);
    else for (const [k, v] of Object.entries(mb.inputs as Record<string, ort.Tensor | TensorLike>)) feedsAll[k] = toOrt(v);
    if (single && probe.inputs.length !== 1) {
      throw new InvalidArgumentError(`the model has ${probe.inputs.length} data inputs (${probe.inputs.join(', ')}); pass inputs by name`);
    }
    for (const name of probe.inputs) if (!feedsAll[name]) throw new InvalidArgumentError(`minibatch is missing input "${name}"`, { input: name });
    const n = batchOf(feedsAll[probe.inputs[0]!]!);
    const step = options.batchSize ?? n;
    for (let start = 0; start < n; start += step) {
      const end = Math.min(n, start + step);
      const feeds: Record<string, ort.Tensor> = {};
      for (const name of probe.inputs) feeds[name] = sliceTensor(feedsAll[name]!, start, end);
      feeds[probe.labelsInput] = labelsTensor(sliceLabels(mb.labels, start, end, n), probe, end - start, options.outputDims ?? [], options.classes);
      let result: ort.InferenceSession.OnnxValueMapType;
      try {
        result = await session.run(feeds, outNames);
      } catch (err) {
        throw new RuntimeError(`probe run failed on batch ${batches}: ${(err as Error).message}`, { batch: batches });
      }
      const count = end - start;
      lossSum += Number((result[probe.lossOutput]!.data as ArrayLike<number>)[0]);
      for (const o of probe.outputs) {
        const value = result[o.output]!.data as ArrayLike<number>;
        const s = statistics.get(o.site.name)!;
        if (s instanceof SketchStatistics) {
          const w = result[o.coRange!.output]!.data as ArrayLike<number>;
          s.accumulateSketch({ rows: o.shape[0]!, cols: o.shape[1]!, data: value }, { rows: o.coRange!.shape[0]!, cols: o.coRange!.shape[1]!, data: w }, count);
        } else if (s instanceof DenseStatistics) s.addSum({ rows: o.shape[0]!, cols: o.shape[1]!, data: value }, count);
        else s.accumulateTapGradient(value, count);
      }
      for (const v of Object.values(result)) v.dispose?.();
      examples += count;
      batches++;
      options.onProgress?.({ examples, batches, meanLoss: lossSum / examples });
    }
  }
  if (examples === 0) throw new InvalidArgumentError('no data: the minibatch iterable was empty');
  return { statistics, examples, meanLoss: lossSum / examples };
}

/**
 * Computes GradMax statistics for ONNX model sites from labelled minibatches: builds the probe, runs it in
 * onnxruntime (execution provider and session options are the caller's), and merges the per-batch sums into core
 * statistics objects (`DenseStatistics.addSum`, `ConvStatistics.accumulateTapGradient`).
 */
export async function computeStatistics(model: string | Uint8Array | ModelProto | OnnxModel, options: ComputeStatisticsOptions): Promise<ComputeStatisticsResult> {
  const source = typeof model === 'string' || model instanceof Uint8Array ? loadModel(model) : model;
  const probe = await buildProbe(source, options);
  const profile = placementProfile(options.executionProvider ?? 'cpu');
  const session = await createProbeSession(probe.model, { ...options, sessionOptions: { ...profile.sessionOptions, ...options.sessionOptions } });
  let run: Awaited<ReturnType<typeof runProbe>>;
  try {
    const outInfo = probe.model.graph!.input.find((i) => i.name === probe.labelsInput);
    const dims = outInfo?.type?.value.case === 'tensorType' ? outInfo.type.value.value.shape?.dim.map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : null)) : undefined;
    // Cross-entropy: the number of classes is the loss output's last dim (labels outside [0, classes) are refused).
    const graph = source instanceof OnnxModel ? source.graph : source.graph!;
    const lossName = options.loss.output ?? graph.output[0]?.name;
    const lossOut = graph.output.find((o) => o.name === lossName);
    const lastDim = lossOut?.type?.value.case === 'tensorType' ? lossOut.type.value.value.shape?.dim.at(-1) : undefined;
    const classes = lastDim?.value.case === 'dimValue' ? Number(lastDim.value.value) : undefined;
    run = await runProbe(probe, session, options.data, { ...options, outputDims: dims, ...(classes ? { classes } : {}) });
  } finally {
    await session.release();
  }
  const placement = profile.read();
  return { ...run, probe, ...(placement ? { placement } : {}) };
}
