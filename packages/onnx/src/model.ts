/**
 * The model IR: an {@link OnnxModel} wraps the onnx-buf `ModelProto` (the single source of truth, so everything this
 * package does not touch — metadata, doc strings, opset imports, unknown ops, functions, unknown protobuf fields — is
 * written back unchanged) plus the bookkeeping for weights stored in initializers, `Constant` nodes and external
 * data files.
 *
 * Editing a graph (for generators such as the backward-graph probe):
 * - add tensors with {@link OnnxModel.addInitializer} (build them with {@link makeTensor}),
 * - add nodes with {@link OnnxModel.addNode} (build them with {@link makeNode}; ONNX requires topological order, so
 *   pass `after` to insert right after the producer of a value, or append at the end),
 * - expose values with {@link OnnxModel.addOutput} (build value infos with {@link makeValueInfo}),
 * - pick fresh names with {@link OnnxModel.uniqueName},
 * - and call {@link OnnxModel.invalidate} if you edit `model.graph` directly, so the producer/consumer indexes are
 *   rebuilt. Then {@link saveModel} or {@link serializeModel}.
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { create, fromBinary, toBinary, type DescMessage, type Message } from '@bufbuild/protobuf';
import {
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  StringStringEntryProtoSchema,
  TensorProto_DataLocation,
  TensorProtoSchema,
  TensorShapeProto_DimensionSchema,
  TensorShapeProtoSchema,
  TypeProto_TensorSchema,
  TypeProtoSchema,
  ValueInfoProtoSchema,
  type AttributeProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from 'onnx-buf';
import { InvalidArgumentError } from '@gradmax/core';
import { ExternalDataError, FileAccessError, OnnxFormatError, assertRegularFile } from './errors.js';
import { TensorBuffer, dataTypeName, elementCount, elementSize, setTypedFieldBytes, tensorDims, typedFieldBytes } from './tensor.js';
import { FIELD, encodeVarint, sameFile, scanModelFile, stampOf, type FileRange, type FileStamp } from './deferred.js';

export type { FileRange, FileStamp } from './deferred.js';

/** Where an external tensor's bytes live (absolute resolved path of the data file, byte offset, byte length). */
export type ExternalSource = FileRange;

/** A weight found by value name: an initializer or the `value` tensor of a `Constant` node. */
export interface WeightRef {
  /** `"initializer"` or `"constant"` (a `Constant` node's `value` attribute). */
  kind: 'initializer' | 'constant';
  /** The value name. */
  name: string;
  /** The tensor holding the data (edit it through {@link OnnxModel.writeTensor}). */
  tensor: TensorProto;
  /** The `Constant` node, for kind `"constant"`. */
  node?: NodeProto;
}

/** Options of {@link loadModel}. */
export interface LoadOptions {
  /** Folder that external data locations are relative to, when loading from bytes. Defaults to the model's folder. */
  baseDir?: string;
  /** Name used in error messages when loading from bytes. */
  label?: string;
  /**
   * When loading from a file path: main-graph initializers and node attribute tensors (`Constant` values) whose
   * `raw_data` has at least this many bytes are not read at load time; their bytes are read from the file when
   * needed and streamed from it on save, so memory use does not grow with the model size. Default 65,536 bytes;
   * `Infinity` reads everything at load time. The file must not change while the model is in use (a change is
   * detected and reported).
   */
  deferThreshold?: number;
}

/** Default {@link LoadOptions.deferThreshold}. */
export const DEFAULT_DEFER_THRESHOLD = 1 << 16;

/** The source file's stamp when a model's deferred tensors were recorded. */
const sourceStamps = new WeakMap<object, FileStamp>();

/** Throws when the source file (open as `fd`) changed since `model`'s deferred tensors were recorded. */
function checkSourceUnchanged(model: object, fd: number, file: string): void {
  const stamp = sourceStamps.get(model);
  if (!stamp) return;
  // fd was opened by path: a file renamed over the source shows up as another inode
  if (!sameFile(fs.fstatSync(fd), stamp)) {
    throw new FileAccessError(`model file "${file}" changed since it was loaded; its large weights are read from it on demand, so load it again`, { file });
  }
}

/** The source-file range of a tensor whose raw_data `model` left in its file (none once the tensor is rewritten). */
function deferredRange(model: OnnxModel, tensor: TensorProto): FileRange | undefined {
  return tensor.rawData.length === 0 ? model.deferredSources.get(tensor) : undefined;
}

/** An ONNX model held in memory. See the module documentation for how to edit it. */
export class OnnxModel {
  /** The protobuf model; the source of truth. */
  readonly proto: ModelProto;
  /** Absolute path the model was loaded from, if any. */
  readonly sourcePath: string | undefined;
  /** Folder external data is resolved against, if any. */
  readonly baseDir: string | undefined;
  /** Name used in error messages (the file path, or a label). */
  readonly label: string;
  /** External data sources per tensor (filled by {@link loadModel}). */
  readonly externalSources = new Map<TensorProto, ExternalSource>();
  /** Bytes of external tensors that were rewritten in memory (written to the output's data file on save). */
  readonly externalOverrides = new Map<TensorProto, Uint8Array>();
  /**
   * Tensors whose `raw_data` was left in the model file at load time (see {@link LoadOptions.deferThreshold}): the
   * byte range of the payload. Their `rawData` field is empty; read them through {@link OnnxModel.tensorBytes}.
   */
  readonly deferredSources = new Map<TensorProto, FileRange>();
  private index: GraphIndex | undefined;

  /** Wraps a `ModelProto`. Use {@link loadModel} to read files (it also resolves external data). */
  constructor(proto: ModelProto, options: { sourcePath?: string; baseDir?: string; label?: string } = {}) {
    if (!proto.graph) throw new OnnxFormatError(`model ${options.label ?? ''} has no graph`.replace('  ', ' '), { file: options.sourcePath });
    this.proto = proto;
    this.sourcePath = options.sourcePath;
    this.baseDir = options.baseDir;
    this.label = options.label ?? options.sourcePath ?? '<memory>';
  }

  /** The main graph. */
  get graph(): GraphProto {
    return this.proto.graph!;
  }

  /** Opset version imported for `domain` (`""` = default ONNX domain), or undefined. */
  opsetVersion(domain = ''): number | undefined {
    for (const o of this.proto.opsetImport) {
      if ((o.domain === 'ai.onnx' ? '' : o.domain) === domain) return Number(o.version);
    }
    return undefined;
  }

  /** Producer/consumer/initializer indexes of the main graph (rebuilt lazily after {@link invalidate}). */
  get indexes(): GraphIndex {
    if (!this.index) this.index = buildIndex(this.graph);
    return this.index;
  }

  /** Drops cached indexes; call after editing `graph` directly. Also bumps {@link OnnxModel.revision}. */
  invalidate(): void {
    this.index = undefined;
    this.revision++;
  }

  /** Counter bumped by every {@link OnnxModel.invalidate}; sites found at an older revision are looked up again. */
  revision = 0;

  /** The node producing `value` in the main graph, if any. */
  producerOf(value: string): NodeProto | undefined {
    return this.indexes.producer.get(value);
  }

  /** Nodes of the main graph that read `value` (in graph order). */
  consumersOf(value: string): NodeProto[] {
    return this.indexes.consumers.get(value) ?? [];
  }

  /** The initializer or `Constant` node value named `value`, if it is a stored tensor. */
  weight(value: string): WeightRef | undefined {
    const init = this.indexes.initializers.get(value);
    if (init) return { kind: 'initializer', name: value, tensor: init };
    const node = this.indexes.producer.get(value);
    if (node && node.opType === 'Constant' && (node.domain === '' || node.domain === 'ai.onnx')) {
      const attr = node.attribute.find((a) => a.name === 'value');
      if (attr?.t) return { kind: 'constant', name: value, tensor: attr.t, node };
    }
    return undefined;
  }

  /**
   * Little-endian bytes of a tensor's elements, whatever its storage (`raw_data`, typed fields, external data).
   * The result may share memory with the model: do not modify it.
   */
  tensorBytes(tensor: TensorProto): Uint8Array {
    const dims = tensorDims(tensor);
    const size = elementSize(tensor.dataType);
    if (size === undefined) {
      throw new OnnxFormatError(`tensor "${tensor.name}" has unsupported element type ${dataTypeName(tensor.dataType)}`, { initializer: tensor.name, file: this.label });
    }
    const expected = elementCount(dims) * size;
    let bytes: Uint8Array;
    const deferred = deferredRange(this, tensor);
    if (tensor.dataLocation === TensorProto_DataLocation.EXTERNAL) {
      bytes = this.externalOverrides.get(tensor) ?? this.readExternal(tensor);
    } else if (deferred) {
      bytes = this.readDeferred(tensor, deferred);
    } else if (tensor.rawData.length > 0 || expected === 0) {
      bytes = tensor.rawData;
    } else {
      bytes = typedFieldBytes(tensor, elementCount(dims));
    }
    if (bytes.length !== expected) {
      throw new OnnxFormatError(`tensor "${tensor.name}" holds ${bytes.length} bytes, expected ${expected} for ${dataTypeName(tensor.dataType)} [${dims.join(', ')}]`, {
        initializer: tensor.name,
        file: this.label,
        shape: dims,
        expectedBytes: expected,
        actualBytes: bytes.length,
      });
    }
    return bytes;
  }

  /** An editable copy of a tensor's elements (see {@link TensorBuffer}). */
  readTensor(tensor: TensorProto): TensorBuffer {
    return new TensorBuffer(tensor.dataType, tensorDims(tensor), this.tensorBytes(tensor).slice());
  }

  /**
   * A read-only {@link TensorBuffer} view of a tensor's elements, sharing memory with the model (no copy). Use
   * {@link OnnxModel.readTensor} for a buffer you may edit.
   */
  viewTensor(tensor: TensorProto): TensorBuffer {
    return new TensorBuffer(tensor.dataType, tensorDims(tensor), this.tensorBytes(tensor));
  }

  /** A tensor's elements as numbers (FLOAT, FLOAT16, DOUBLE, INT32, INT64). */
  readNumbers(tensor: TensorProto): Float64Array {
    return new TensorBuffer(tensor.dataType, tensorDims(tensor), this.tensorBytes(tensor)).toFloat64();
  }

  /**
   * Stores `buffer` into `tensor` (dims and data), keeping the tensor's element type and storage form: `raw_data`
   * stays `raw_data`, typed fields stay typed fields, external data stays external (written beside the output on
   * save).
   */
  writeTensor(tensor: TensorProto, buffer: TensorBuffer): void {
    if (buffer.dataType !== tensor.dataType) {
      throw new OnnxFormatError(`tensor "${tensor.name}" is ${dataTypeName(tensor.dataType)}, refusing to store ${dataTypeName(buffer.dataType)} data`, { initializer: tensor.name });
    }
    tensor.dims = buffer.dims.map((d) => BigInt(d));
    if (tensor.dataLocation === TensorProto_DataLocation.EXTERNAL) {
      this.externalOverrides.set(tensor, buffer.bytes);
    } else if (tensor.rawData.length > 0 || !hasTypedData(tensor)) {
      tensor.rawData = buffer.bytes as Uint8Array<ArrayBuffer>;
      this.deferredSources.delete(tensor);
    } else {
      setTypedFieldBytes(tensor, buffer.bytes);
    }
    this.invalidate();
  }

  /** A value name not used by any value, node, initializer or graph input/output in the main graph. */
  uniqueName(base: string): string {
    const used = this.indexes.names;
    let name = base;
    for (let i = 1; used.has(name); i++) name = `${base}_${i}`;
    used.add(name);
    return name;
  }

  /**
   * Appends an initializer to the main graph. Throws if the name is taken. For IR version < 4, where every
   * initializer must also be a graph input, a matching graph input is added too.
   */
  addInitializer(tensor: TensorProto): void {
    if (this.indexes.initializers.has(tensor.name) || this.indexes.producer.has(tensor.name)) {
      throw new InvalidArgumentError(`an initializer or value named "${tensor.name}" already exists`, { initializer: tensor.name });
    }
    this.graph.initializer.push(tensor);
    if (this.proto.irVersion < 4n && !this.graph.input.some((i) => i.name === tensor.name)) {
      this.graph.input.push(makeValueInfo(tensor.name, tensor.dataType, tensor.dims.map((d) => Number(d))));
    }
    this.invalidate();
  }

  /**
   * Inserts a node into the main graph: after the node producing `after` (a value name) when given, else at the
   * end. Throws if one of its outputs is already produced by another node.
   */
  addNode(node: NodeProto, options: { after?: string } = {}): void {
    for (const o of node.output) {
      if (o && this.indexes.producer.has(o)) throw new InvalidArgumentError(`value "${o}" is already produced by another node`, { node: node.name, value: o });
    }
    let at = this.graph.node.length;
    if (options.after !== undefined) {
      const p = this.indexes.producer.get(options.after);
      if (p) at = this.graph.node.indexOf(p) + 1;
    }
    this.graph.node.splice(at, 0, node);
    this.invalidate();
  }

  /** Appends a graph output. */
  addOutput(info: ValueInfoProto): void {
    this.graph.output.push(info);
    this.invalidate();
  }

  /** Every tensor of the model (initializers and `Constant`/attribute tensors, in all graphs and functions). */
  allTensors(): TensorProto[] {
    const out: TensorProto[] = [];
    const visitNodes = (nodes: readonly NodeProto[]) => {
      for (const n of nodes) for (const a of n.attribute) visitAttr(a);
    };
    const visitAttr = (a: AttributeProto) => {
      if (a.t) out.push(a.t);
      out.push(...a.tensors);
      if (a.g) visitGraph(a.g);
      for (const g of a.graphs) visitGraph(g);
    };
    const visitGraph = (g: GraphProto) => {
      out.push(...g.initializer);
      visitNodes(g.node);
    };
    visitGraph(this.graph);
    for (const f of this.proto.functions) visitNodes(f.node);
    return out;
  }

  /**
   * True when a tensor's bytes are not held in its protobuf message: external data (read from its data file, or
   * rewritten in memory), or `raw_data` left in the model file at load time. Code that serialises `model.proto`
   * itself must fill such tensors in from {@link OnnxModel.tensorBytes}; {@link serializeModel} and
   * {@link saveModel} do it.
   */
  storedOutsideProto(tensor: TensorProto): boolean {
    return tensor.dataLocation === TensorProto_DataLocation.EXTERNAL || deferredRange(this, tensor) !== undefined;
  }

  private readExternal(tensor: TensorProto): Uint8Array {
    const src = this.externalSources.get(tensor);
    if (!src) {
      throw new ExternalDataError(`tensor "${tensor.name}" uses external data, but no data file was resolved (load the model from a file or pass baseDir)`, { initializer: tensor.name, file: this.label });
    }
    return this.readRange(tensor, src, false);
  }

  /** Deferred tensors read recently, while someone still holds their bytes (no extra memory is retained). */
  private readonly deferredReads = new WeakMap<TensorProto, WeakRef<Uint8Array>>();

  private readDeferred(tensor: TensorProto, range: FileRange): Uint8Array {
    const held = this.deferredReads.get(tensor)?.deref();
    if (held) return held;
    const bytes = this.readRange(tensor, range, true);
    this.deferredReads.set(tensor, new WeakRef(bytes));
    return bytes;
  }

  /** Reads a tensor's bytes from a file range; external data errors are ExternalDataError, others FileAccessError. */
  private readRange(tensor: TensorProto, range: FileRange, deferred: boolean): Uint8Array {
    const out = new Uint8Array(range.length);
    const where = { initializer: tensor.name, file: range.file };
    let fd: number | undefined;
    try {
      // External data: never through a link swapped in after the check, and only the file that was checked.
      fd = fs.openSync(range.file, deferred ? 'r' : fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0));
      if (deferred) checkSourceUnchanged(this, fd, range.file);
      else if (range.identity) {
        if (!sameFile(fs.fstatSync(fd), range.identity)) {
          throw new ExternalDataError(`external data file "${range.file}" of tensor "${tensor.name}" was replaced after the model was loaded; load it again`, where);
        }
      }
      readFully(fd, out, range.offset, range.file);
    } catch (e) {
      const reason = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      if (deferred) throw e instanceof FileAccessError ? e : new FileAccessError(`cannot read the weights of tensor "${tensor.name}" from "${range.file}": ${reason}`, where);
      if (e instanceof ExternalDataError) throw e;
      if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw new ExternalDataError(`external data file "${range.file}" of tensor "${tensor.name}" was replaced by a symbolic link after the model was loaded; refusing to follow it`, where);
      throw e instanceof FileAccessError
        ? new ExternalDataError(`external data file "${range.file}" ended early for tensor "${tensor.name}"`, where)
        : new ExternalDataError(`cannot read external data of tensor "${tensor.name}" from "${range.file}": ${reason}`, where);
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
    return out;
  }
}

/** Reads `out.length` bytes at `offset`; throws FileAccessError when the file ends early. */
function readFully(fd: number, out: Uint8Array, offset: number, file: string): void {
  let done = 0;
  while (done < out.length) {
    const n = fs.readSync(fd, out, done, out.length - done, offset + done);
    if (n <= 0) throw new FileAccessError(`"${file}" ended early (wanted ${out.length} bytes at offset ${offset})`, { file, offset, length: out.length });
    done += n;
  }
}

function hasTypedData(t: TensorProto): boolean {
  return t.floatData.length > 0 || t.int32Data.length > 0 || t.int64Data.length > 0 || t.doubleData.length > 0 || t.uint64Data.length > 0;
}

/** Lookup tables of a graph. */
export interface GraphIndex {
  /** Value name → producing node. */
  producer: Map<string, NodeProto>;
  /** Value name → consuming nodes (main graph only). */
  consumers: Map<string, NodeProto[]>;
  /** Initializer name → tensor. */
  initializers: Map<string, TensorProto>;
  /** Value name → value info (from `value_info`, inputs and outputs). */
  valueInfo: Map<string, ValueInfoProto>;
  /** Graph output names. */
  outputs: Set<string>;
  /** Every name in use. */
  names: Set<string>;
}

function buildIndex(g: GraphProto): GraphIndex {
  const producer = new Map<string, NodeProto>();
  const consumers = new Map<string, NodeProto[]>();
  const initializers = new Map<string, TensorProto>();
  const valueInfo = new Map<string, ValueInfoProto>();
  const names = new Set<string>();
  for (const t of g.initializer) {
    initializers.set(t.name, t);
    names.add(t.name);
  }
  for (const v of [...g.input, ...g.valueInfo, ...g.output]) {
    if (!valueInfo.has(v.name)) valueInfo.set(v.name, v);
    names.add(v.name);
  }
  for (const n of g.node) {
    if (n.name) names.add(n.name);
    for (const o of n.output) {
      if (!o) continue;
      producer.set(o, n);
      names.add(o);
    }
    for (const i of n.input) {
      if (!i) continue;
      let list = consumers.get(i);
      if (!list) consumers.set(i, (list = []));
      if (!list.includes(n)) list.push(n);
    }
    // Values captured by subgraphs (If/Loop/Scan bodies) count as consumed by the node owning the subgraph.
    for (const a of n.attribute) {
      for (const sub of a.g ? [a.g, ...a.graphs] : a.graphs) {
        for (const name of outerReferences(sub)) {
          let list = consumers.get(name);
          if (!list) consumers.set(name, (list = []));
          if (!list.includes(n)) list.push(n);
        }
      }
    }
  }
  return { producer, consumers, initializers, valueInfo, outputs: new Set(g.output.map((o) => o.name)), names };
}

/** Names a subgraph reads without defining them (values captured from the enclosing graph). */
function outerReferences(g: GraphProto, depth = 0): Set<string> {
  const defined = new Set<string>([...g.input.map((i) => i.name), ...g.initializer.map((t) => t.name)]);
  const refs = new Set<string>();
  if (depth > 64) return refs;
  for (const n of g.node) {
    for (const i of n.input) if (i && !defined.has(i)) refs.add(i);
    for (const a of n.attribute) {
      for (const sub of a.g ? [a.g, ...a.graphs] : a.graphs) for (const r of outerReferences(sub, depth + 1)) if (!defined.has(r)) refs.add(r);
    }
    for (const o of n.output) defined.add(o);
  }
  for (const o of g.output) if (!defined.has(o.name)) refs.add(o.name);
  return refs;
}

// ---------------------------------------------------------------------------------------------------------------
// Loading

/**
 * Loads a model from a file path or bytes. External data locations are validated (no absolute paths, no `..`, no
 * resolution outside the model folder through symbolic links) and their byte ranges checked; the data itself is read
 * lazily. Throws {@link OnnxFormatError}, {@link ExternalDataError} or {@link FileAccessError}.
 */
export function loadModel(source: string | Uint8Array, options: LoadOptions = {}): OnnxModel {
  let bytes: Uint8Array;
  let sourcePath: string | undefined;
  let baseDir = options.baseDir;
  let scanned: ReturnType<typeof scanModelFile>;
  let stamp: FileStamp | undefined;
  if (typeof source === 'string') {
    sourcePath = path.resolve(source);
    try {
      const st = fs.statSync(sourcePath);
      assertRegularFile(st, `model file "${source}"`, source);
      stamp = stampOf(st);
      const threshold = options.deferThreshold ?? DEFAULT_DEFER_THRESHOLD;
      if (!(threshold >= 0)) throw new InvalidArgumentError(`deferThreshold must be a non-negative number of bytes, got ${threshold}`, { deferThreshold: threshold });
      scanned = st.isFile() && Number.isFinite(threshold) && st.size >= threshold ? scanModelFile(sourcePath, Math.max(1, threshold)) : undefined;
      if (scanned) {
        // With nothing deferred, the skeleton is the whole file, byte for byte.
        bytes = scanned.skeleton;
        if (!scanned.deferred.size && !scanned.deferredAttributes.size) scanned = undefined;
      } else {
        const buf = fs.readFileSync(sourcePath);
        // A plain Uint8Array view (not a Buffer), so that slice() of tensor data copies as everywhere else.
        bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
      }
    } catch (e) {
      if (e instanceof InvalidArgumentError || e instanceof FileAccessError) throw e;
      throw new FileAccessError(`cannot read model file "${source}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: source });
    }
    baseDir ??= path.dirname(sourcePath);
  } else if (source instanceof Uint8Array) {
    bytes = Buffer.isBuffer(source) ? new Uint8Array(source.buffer, source.byteOffset, source.byteLength) : source;
  } else {
    throw new InvalidArgumentError('loadModel expects a file path or a Uint8Array');
  }
  const label = options.label ?? sourcePath ?? '<bytes>';
  let proto: ModelProto;
  try {
    proto = fromBinary(ModelProtoSchema, bytes);
  } catch (e) {
    throw new OnnxFormatError(`"${label}" is not a valid ONNX model: ${(e as Error).message}`, { file: label });
  }
  if (!proto.graph) throw new OnnxFormatError(`"${label}" is not a valid ONNX model: it has no graph`, { file: label });
  rejectDuplicateInitializers(proto.graph, label);
  let deferredTensors: [TensorProto | undefined, FileRange][] = [];
  if (scanned) {
    const g = proto.graph;
    deferredTensors = [
      ...[...scanned.deferred].map(([i, range]): [TensorProto | undefined, FileRange] => [g.initializer[i], range]),
      ...[...scanned.deferredAttributes].map(([key, range]): [TensorProto | undefined, FileRange] => {
        const [n, a] = key.split(':').map(Number) as [number, number];
        return [g.node[n]?.attribute[a]?.t, range];
      }),
    ];
    // A deferred payload belongs to a tensor whose raw_data is then empty; anything else means the scan and the
    // parse disagree (or the tensor is external), so read the whole file instead.
    for (const [t] of deferredTensors) {
      if (!t || t.rawData.length !== 0 || t.dataLocation !== TensorProto_DataLocation.DEFAULT) return loadModel(source, { ...options, deferThreshold: Infinity });
    }
  }
  const model = new OnnxModel(proto, { sourcePath, baseDir, label });
  if (scanned) {
    for (const [t, range] of deferredTensors) model.deferredSources.set(t!, range);
    if (stamp) sourceStamps.set(model, stamp);
  }
  let tensors: TensorProto[];
  try {
    tensors = model.allTensors();
  } catch (e) {
    // pathologically deep subgraph nesting
    throw new OnnxFormatError(`"${label}" cannot be walked: ${(e as Error).message}`, { file: label });
  }
  for (const t of tensors) {
    if (t.dataLocation === TensorProto_DataLocation.EXTERNAL) {
      model.externalSources.set(t, resolveExternal(t, baseDir, label));
    } else if (t.dataLocation !== TensorProto_DataLocation.DEFAULT) {
      throw new OnnxFormatError(`tensor "${t.name}" has unknown data_location ${t.dataLocation}`, { initializer: t.name, file: label });
    }
  }
  return model;
}

/**
 * Throws {@link OnnxFormatError} naming every initializer name that occurs more than once in one graph (the main graph
 * or a subgraph): onnxruntime and the checker reject such models, and growing one copy would write an invalid model.
 */
function rejectDuplicateInitializers(graph: GraphProto, label: string, where = 'the main graph', depth = 0): void {
  const seen = new Map<string, number>();
  for (const t of [...graph.initializer, ...graph.sparseInitializer.map((s) => s.values).filter((v): v is TensorProto => v !== undefined)]) seen.set(t.name, (seen.get(t.name) ?? 0) + 1);
  const dups = [...seen].filter(([, n]) => n > 1);
  if (dups.length) {
    const list = dups.map(([name, n]) => `"${name}" (${n} copies)`).join(', ');
    throw new OnnxFormatError(`"${label}" is not a valid ONNX model: ${where} has initializers with the same name: ${list}; each initializer needs its own name`, { file: label, duplicates: dups.map(([name]) => name) });
  }
  if (depth > 64) return;
  for (const n of graph.node) for (const a of n.attribute) for (const sub of a.g ? [a.g, ...a.graphs] : a.graphs) rejectDuplicateInitializers(sub, label, `the subgraph "${a.name}" of node "${n.name || n.opType}"`, depth + 1);
}

/** Parses and validates one tensor's external-data entries against `baseDir`. */
export function resolveExternal(t: TensorProto, baseDir: string | undefined, label: string): ExternalSource {
  const entries = new Map(t.externalData.map((e) => [e.key, e.value]));
  const location = entries.get('location');
  const where = { initializer: t.name, file: label, location };
  if (!location) throw new ExternalDataError(`tensor "${t.name}" has external data without a location`, where);
  if (location.includes('\0')) throw new ExternalDataError(`tensor "${t.name}": external data location contains a NUL byte`, where);
  if (path.posix.isAbsolute(location) || path.win32.isAbsolute(location) || /^[A-Za-z]:/.test(location)) {
    throw new ExternalDataError(`tensor "${t.name}": external data location "${location}" is absolute; only paths relative to the model folder are allowed`, where);
  }
  if (location.split(/[\\/]/).includes('..')) {
    throw new ExternalDataError(`tensor "${t.name}": external data location "${location}" contains "..", which could escape the model folder`, where);
  }
  if (baseDir === undefined) {
    throw new ExternalDataError(`tensor "${t.name}" uses external data "${location}", but the model was loaded from bytes without baseDir`, where);
  }
  let root: string;
  let file: string;
  try {
    root = fs.realpathSync(baseDir);
  } catch (e) {
    throw new ExternalDataError(`model folder "${baseDir}" is not accessible: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, where);
  }
  try {
    file = fs.realpathSync(path.join(root, location));
  } catch (e) {
    throw new ExternalDataError(`tensor "${t.name}": external data file "${location}" cannot be opened: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, where);
  }
  if (!file.startsWith(root + path.sep)) {
    throw new ExternalDataError(`tensor "${t.name}": external data location "${location}" resolves to "${file}", outside the model folder "${root}"`, where);
  }
  const stat = fs.statSync(file);
  if (!stat.isFile()) throw new ExternalDataError(`tensor "${t.name}": external data location "${location}" is not a regular file`, where);
  const parseInt = (key: string): number | undefined => {
    const v = entries.get(key);
    if (v === undefined) return undefined;
    if (!/^\d{1,15}$/.test(v)) throw new ExternalDataError(`tensor "${t.name}": external data ${key} "${v}" is not a non-negative integer`, where);
    return Number(v);
  };
  const offset = parseInt('offset') ?? 0;
  const size = elementSize(t.dataType);
  if (size === undefined) throw new OnnxFormatError(`tensor "${t.name}" has unsupported element type ${dataTypeName(t.dataType)}`, where);
  const expected = elementCount(tensorDims(t)) * size;
  const length = parseInt('length') ?? Math.max(0, stat.size - offset);
  if (length !== expected) {
    throw new ExternalDataError(`tensor "${t.name}": external data length ${length} does not match ${expected} bytes for shape [${tensorDims(t).join(', ')}]`, { ...where, length, expected });
  }
  if (offset + length > stat.size) {
    throw new ExternalDataError(`tensor "${t.name}": external data range [${offset}, ${offset + length}) lies outside "${location}" (${stat.size} bytes)`, { ...where, offset, length, fileSize: stat.size });
  }
  return { file, offset, length, identity: stampOf(stat) };
}

// ---------------------------------------------------------------------------------------------------------------
// Serialisation

/**
 * Encodes `msg` split around one field number: `[fields numbered below split, fields numbered above split + unknown
 * fields]`. protobuf-es writes fields in field-number order, so `head + <split field> + tail` is byte-identical to
 * `toBinary(msg)`.
 */
function encodeAround<D extends DescMessage>(schema: D, msg: Message, split: number): [Uint8Array, Uint8Array] {
  const head = create(schema) as Record<string, unknown>;
  const tail = create(schema) as Record<string, unknown>;
  const src = msg as unknown as Record<string, unknown>;
  for (const f of schema.fields) {
    if (f.number === split || !Object.prototype.hasOwnProperty.call(src, f.localName)) continue;
    (f.number < split ? head : tail)[f.localName] = src[f.localName];
  }
  if (src.$unknown) tail.$unknown = src.$unknown;
  return [toBinary(schema, head as never), toBinary(schema, tail as never)];
}

/** A piece of a serialised model: bytes in memory, or a tensor payload still in the source file. */
type Chunk = Uint8Array | FileRange;

/** Serialised length-delimited field: tag, length, payload chunks. */
function lengthDelimited(field: number, chunks: Chunk[]): Chunk[] {
  let len = 0;
  for (const c of chunks) len += c.length;
  return [encodeVarint((field << 3) | 2), encodeVarint(len), ...chunks];
}

const LARGE_TENSOR = 1 << 16;
const COPY_BUFFER = 1 << 22;

/** A tensor's encoding; its raw_data (field 9) is a chunk of its own when large or still in the source file. */
function tensorChunks(t: TensorProto, deferred: FileRange | undefined): Chunk[] {
  const payload = deferred ?? (t.rawData.length >= LARGE_TENSOR ? t.rawData : undefined);
  if (!payload) return [toBinary(TensorProtoSchema, t)];
  const [head, tail] = encodeAround(TensorProtoSchema, t, FIELD.tensorRawData);
  return [head, ...lengthDelimited(FIELD.tensorRawData, [payload]), tail];
}

/** A node whose attribute tensors may be deferred: its attributes are encoded one by one. */
function nodeChunks(n: NodeProto, deferred: (t: TensorProto) => FileRange | undefined): Chunk[] {
  const [head, tail] = encodeAround(NodeProtoSchema, n, FIELD.nodeAttribute);
  const out: Chunk[] = [head];
  for (const a of n.attribute) {
    const range = a.t ? deferred(a.t) : undefined;
    if (!range) {
      out.push(...lengthDelimited(FIELD.nodeAttribute, [toBinary(AttributeProtoSchema, a)]));
      continue;
    }
    const [aHead, aTail] = encodeAround(AttributeProtoSchema, a, FIELD.attributeTensor);
    out.push(...lengthDelimited(FIELD.nodeAttribute, [aHead, ...lengthDelimited(FIELD.attributeTensor, tensorChunks(a.t!, range)), aTail]));
  }
  out.push(tail);
  return out;
}

/** The encoding as chunks; payloads deferred in `model`'s source file stay file ranges. */
function modelChunks(proto: ModelProto, model: OnnxModel | undefined): Chunk[] {
  const g = proto.graph;
  if (!g) return [toBinary(ModelProtoSchema, proto)];
  const deferred = (t: TensorProto) => (model ? deferredRange(model, t) : undefined);
  const hasDeferred = (n: NodeProto) => n.attribute.some((a) => a.t && deferred(a.t));
  const graph: Chunk[] = [];
  const nodesChunked = g.node.some(hasDeferred);
  if (nodesChunked) {
    // nodes (field 1) one by one, then the rest of the head (fields 2-4)
    for (const n of g.node) graph.push(...lengthDelimited(FIELD.graphNode, hasDeferred(n) ? nodeChunks(n, deferred) : [toBinary(NodeProtoSchema, n)]));
  }
  const [gHead, gTail] = encodeAround(GraphProtoSchema, nodesChunked ? ({ ...g, node: [] } as GraphProto) : g, FIELD.graphInitializer);
  graph.push(gHead);
  for (const t of g.initializer) graph.push(...lengthDelimited(FIELD.graphInitializer, tensorChunks(t, deferred(t))));
  graph.push(gTail);
  const [mHead, mTail] = encodeAround(ModelProtoSchema, proto, FIELD.modelGraph);
  return [mHead, ...lengthDelimited(FIELD.modelGraph, graph), mTail];
}

/** Calls `use(fd)` with the source file of `model`'s deferred tensors open (checked unchanged), if there are any. */
function withSourceFile<T>(model: OnnxModel | undefined, chunks: readonly Chunk[], use: (fd: number | undefined) => T): T {
  const range = chunks.find((c): c is FileRange => !(c instanceof Uint8Array));
  if (!model || !range) return use(undefined);
  let fd: number;
  try {
    fd = fs.openSync(range.file, 'r');
  } catch (e) {
    throw new FileAccessError(`cannot reopen the source model "${range.file}" to read its weights: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: range.file });
  }
  try {
    checkSourceUnchanged(model, fd, range.file);
    return use(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The model's protobuf encoding as a list of chunks (large `raw_data` payloads are referenced, not copied; payloads
 * an {@link OnnxModel} left in its source file are read). The concatenation is byte-identical to
 * `toBinary(ModelProtoSchema, proto)` of the model with all its `raw_data` in memory.
 */
export function serializeChunks(model: OnnxModel | ModelProto): Uint8Array[] {
  const m = model instanceof OnnxModel ? model : undefined;
  const chunks = modelChunks(m ? m.proto : (model as ModelProto), m);
  return withSourceFile(m, chunks, (fd) =>
    chunks.map((c) => {
      if (c instanceof Uint8Array) return c;
      const out = new Uint8Array(c.length);
      readFully(fd!, out, c.offset, c.file);
      return out;
    }),
  );
}

/** The model's bytes (for in-memory use; models with external data reference their data files). */
export function serializeModel(model: OnnxModel | ModelProto): Uint8Array {
  const m = model instanceof OnnxModel ? model : undefined;
  const chunks = modelChunks(m ? m.proto : (model as ModelProto), m);
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  withSourceFile(m, chunks, (fd) => {
    let o = 0;
    for (const c of chunks) {
      if (c instanceof Uint8Array) out.set(c, o);
      else readFully(fd!, out.subarray(o, o + c.length), c.offset, c.file);
      o += c.length;
    }
  });
  return out;
}

/** Options of {@link saveModel}. */
export interface SaveOptions {
  /** Name of the external data file written beside the output (default `<output file name>.data`). */
  externalDataName?: string;
  /** Called with (bytesWritten, totalBytes) while writing. */
  onProgress?: (written: number, total: number) => void;
}

function realOrResolved(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

/**
 * Writes the model atomically (temporary file + rename). Refuses to overwrite the file the model was loaded from or
 * any of its external data files. Tensors stored as external data stay external: they are written to one data file
 * beside the output (`<output>.data`), and their locations are updated in `model` to point at it.
 */
export function saveModel(model: OnnxModel, outPath: string, options: SaveOptions = {}): void {
  const target = path.resolve(outPath);
  const dir = path.dirname(target);
  const dataName = options.externalDataName ?? `${path.basename(target)}.data`;
  const dataPath = path.join(dir, dataName);
  const protected_ = new Set<string>();
  if (model.sourcePath) protected_.add(realOrResolved(model.sourcePath));
  for (const s of model.externalSources.values()) protected_.add(realOrResolved(s.file));
  if (protected_.has(realOrResolved(target))) {
    throw new FileAccessError(`refusing to overwrite the input model "${outPath}"; choose another output path`, { file: outPath });
  }
  const external = model.allTensors().filter((t) => t.dataLocation === TensorProto_DataLocation.EXTERNAL);
  if (external.length && protected_.has(realOrResolved(dataPath))) {
    throw new FileAccessError(`refusing to overwrite the input's external data file "${dataPath}"; choose another output name`, { file: dataPath });
  }
  const temps: string[] = [];
  const saved = new Map<TensorProto, TensorProto['externalData']>();
  const newSources = new Map<TensorProto, ExternalSource>();
  try {
    let total = 0;
    // 1. external data file
    if (external.length) {
      const tmp = `${dataPath}.tmp-${process.pid}-${Date.now()}`;
      temps.push(tmp);
      const fd = openForWrite(tmp);
      try {
        let offset = 0;
        for (const t of external) {
          const bytes = model.tensorBytes(t);
          const pad = (64 - (offset % 64)) % 64;
          if (pad) writeAll(fd, new Uint8Array(pad), tmp);
          offset += pad;
          writeAll(fd, bytes, tmp);
          saved.set(t, t.externalData);
          t.externalData = [
            create(StringStringEntryProtoSchema, { key: 'location', value: dataName }),
            create(StringStringEntryProtoSchema, { key: 'offset', value: String(offset) }),
            create(StringStringEntryProtoSchema, { key: 'length', value: String(bytes.length) }),
          ];
          newSources.set(t, { file: dataPath, offset, length: bytes.length });
          offset += bytes.length;
          total += bytes.length;
        }
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    }
    // 2. the model itself
    const chunks = modelChunks(model.proto, model);
    let size = 0;
    for (const c of chunks) size += c.length;
    const tmp = `${target}.tmp-${process.pid}-${Date.now()}`;
    temps.push(tmp);
    withSourceFile(model, chunks, (source) => {
      const fd = openForWrite(tmp);
      try {
        // Small chunks are gathered into one writev call; large payloads are written as they are; payloads left in
        // the source file are copied through one reusable buffer.
        let written = 0;
        let batch: Uint8Array[] = [];
        let batchBytes = 0;
        let copyBuffer: Uint8Array | undefined;
        const flush = () => {
          if (!batch.length) return;
          if (batch.length === 1) writeAll(fd, batch[0]!, tmp);
          else {
            const n = fs.writevSync(fd, batch);
            if (n !== batchBytes) {
              // partial writev: finish byte by byte through writeAll
              let skip = n;
              for (const c of batch) {
                if (skip >= c.length) {
                  skip -= c.length;
                  continue;
                }
                writeAll(fd, c.subarray(skip), tmp);
                skip = 0;
              }
            }
          }
          written += batchBytes;
          batch = [];
          batchBytes = 0;
          options.onProgress?.(written, size);
        };
        for (const c of chunks) {
          if (c instanceof Uint8Array) {
            batch.push(c);
            batchBytes += c.length;
            if (batchBytes >= 1 << 22 || batch.length >= 512) flush();
            continue;
          }
          flush();
          copyBuffer ??= new Uint8Array(COPY_BUFFER);
          for (let done = 0; done < c.length; ) {
            const piece = copyBuffer.subarray(0, Math.min(COPY_BUFFER, c.length - done));
            readFully(source!, piece, c.offset + done, c.file);
            writeAll(fd, piece, tmp);
            done += piece.length;
            written += piece.length;
            options.onProgress?.(written, size);
          }
        }
        flush();
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    });
    if (external.length) fs.renameSync(temps[0]!, dataPath);
    fs.renameSync(tmp, target);
    temps.length = 0;
    for (const [t, src] of newSources) {
      const file = realOrResolved(src.file);
      model.externalSources.set(t, { file, offset: src.offset, length: src.length, identity: stampOf(fs.statSync(file)) });
      model.externalOverrides.delete(t);
    }
  } catch (e) {
    for (const [t, entries] of saved) t.externalData = entries;
    for (const tmp of temps) fs.rmSync(tmp, { force: true });
    if (e instanceof FileAccessError || e instanceof ExternalDataError || e instanceof OnnxFormatError) throw e;
    throw new FileAccessError(`cannot write "${outPath}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: outPath });
  }
}

function openForWrite(p: string): number {
  try {
    return fs.openSync(p, 'wx');
  } catch (e) {
    throw new FileAccessError(`cannot create "${p}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: p });
  }
}

function writeAll(fd: number, bytes: Uint8Array, file: string): void {
  let done = 0;
  while (done < bytes.length) {
    const n = fs.writeSync(fd, bytes, done, bytes.length - done);
    if (n <= 0) throw new FileAccessError(`short write to "${file}"`, { file });
    done += n;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Builders (used by tests, the widener and graph generators)

/** Element data for {@link makeTensor}: numbers are encoded in `dataType`; a TensorBuffer is used as is. */
export interface MakeTensorOptions {
  /** Store in typed fields (`float_data` etc.) instead of `raw_data`. */
  typed?: boolean;
}

/** Builds a `TensorProto` of `dataType` (FLOAT, FLOAT16, DOUBLE, INT32, INT64) and shape `dims` from numbers. */
export function makeTensor(name: string, dataType: number, dims: readonly number[], values: ArrayLike<number> | TensorBuffer, options: MakeTensorOptions = {}): TensorProto {
  let buf: TensorBuffer;
  if (values instanceof TensorBuffer) buf = values;
  else {
    buf = new TensorBuffer(dataType, dims);
    if (values.length !== buf.length) throw new InvalidArgumentError(`tensor "${name}": ${values.length} values for shape [${dims.join(', ')}]`, { initializer: name });
    for (let i = 0; i < values.length; i++) buf.set(i, values[i]!);
  }
  const t = create(TensorProtoSchema, { name, dataType, dims: dims.map((d) => BigInt(d)) });
  if (options.typed) setTypedFieldBytes(t, buf.bytes);
  else t.rawData = buf.bytes as Uint8Array<ArrayBuffer>;
  return t;
}

/** Attribute values accepted by {@link makeNode}. */
export type AttributeValue = number | bigint | string | number[] | bigint[] | string[] | TensorProto | GraphProto | { float: number } | { floats: number[] };

/** Builds an `AttributeProto`; integers are INT/INTS, `{float}`/`{floats}` force FLOAT(S). Non-integer numbers are FLOAT. */
export function makeAttribute(name: string, value: AttributeValue): AttributeProto {
  const T = AttributeProto_AttributeType;
  if (typeof value === 'bigint') return create(AttributeProtoSchema, { name, type: T.INT, i: value });
  if (typeof value === 'number') {
    return Number.isInteger(value) ? create(AttributeProtoSchema, { name, type: T.INT, i: BigInt(value) }) : create(AttributeProtoSchema, { name, type: T.FLOAT, f: value });
  }
  if (typeof value === 'string') return create(AttributeProtoSchema, { name, type: T.STRING, s: new TextEncoder().encode(value) });
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v === 'string')) return create(AttributeProtoSchema, { name, type: T.STRINGS, strings: (value as string[]).map((s) => new TextEncoder().encode(s)) });
    if (value.every((v) => typeof v === 'bigint' || Number.isInteger(v))) return create(AttributeProtoSchema, { name, type: T.INTS, ints: (value as (number | bigint)[]).map((v) => BigInt(v)) });
    return create(AttributeProtoSchema, { name, type: T.FLOATS, floats: value as number[] });
  }
  if ('float' in value) return create(AttributeProtoSchema, { name, type: T.FLOAT, f: value.float });
  if ('floats' in value) return create(AttributeProtoSchema, { name, type: T.FLOATS, floats: value.floats });
  if (value.$typeName === 'onnx.TensorProto') return create(AttributeProtoSchema, { name, type: T.TENSOR, t: value });
  return create(AttributeProtoSchema, { name, type: T.GRAPH, g: value });
}

/** Builds a `NodeProto`. */
export function makeNode(opType: string, inputs: string[], outputs: string[], attributes: Record<string, AttributeValue> = {}, name = '', domain = ''): NodeProto {
  return create(NodeProtoSchema, {
    opType,
    input: inputs,
    output: outputs,
    name,
    domain,
    attribute: Object.entries(attributes).map(([k, v]) => makeAttribute(k, v)),
  });
}

/** Builds a tensor `ValueInfoProto`; dims are numbers (fixed) or strings (symbolic); `shape: undefined` = unknown rank. */
export function makeValueInfo(name: string, elemType: number, shape?: readonly (number | string)[]): ValueInfoProto {
  const tensorType = create(TypeProto_TensorSchema, { elemType });
  if (shape) {
    tensorType.shape = create(TensorShapeProtoSchema, {
      dim: shape.map((d) =>
        create(TensorShapeProto_DimensionSchema, typeof d === 'number' ? { value: { case: 'dimValue', value: BigInt(d) } } : { value: { case: 'dimParam', value: d } }),
      ),
    });
  }
  return create(ValueInfoProtoSchema, { name, type: create(TypeProtoSchema, { value: { case: 'tensorType', value: tensorType } }) });
}

/** Shape of a tensor value info: numbers for fixed dims, strings for symbolic ones, `undefined` for unknown dims. */
export function valueInfoShape(info: ValueInfoProto | undefined): (number | string | undefined)[] | undefined {
  if (info?.type?.value.case !== 'tensorType') return undefined;
  const shape = info.type.value.value.shape;
  if (!shape) return undefined;
  return shape.dim.map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : d.value.case === 'dimParam' ? d.value.value : undefined));
}

/** Element type of a tensor value info, or undefined. */
export function valueInfoElemType(info: ValueInfoProto | undefined): number | undefined {
  return info?.type?.value.case === 'tensorType' ? info.type.value.value.elemType : undefined;
}
