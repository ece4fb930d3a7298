/**
 * Deferred loading of large weights: a model file is scanned at the protobuf wire level, the `raw_data` payloads of
 * large main-graph initializers are left in the file (only their byte ranges are recorded), and everything else is
 * parsed as usual. The payloads are read back on demand and streamed from the source file on save, so loading,
 * widening and saving a model needs memory for the graph and the touched weights, not for the whole file.
 * @packageDocumentation
 */
import * as fs from 'node:fs';

/** A byte range of a file holding one tensor's `raw_data`. */
export interface FileRange {
  /** Absolute path of the file. */
  file: string;
  /** Byte offset in the file. */
  offset: number;
  /** Byte length. */
  length: number;
  /** The file's stamp when it was checked (external data): a file swapped in or changed later is refused. */
  identity?: FileStamp;
}

/**
 * Identity and times of a file, to detect that it changed: device and inode (a file renamed over it is another
 * inode), size, modification time, and status-change time (any write or rename updates it, and unlike the
 * modification time it cannot be set back with `utimes`).
 */
export interface FileStamp {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

/** The stamp of a file's current status. */
export function stampOf(st: fs.Stats): FileStamp {
  return { dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
}

/** True when `st` (of a file opened by path) is the file `stamp` was taken from, unchanged. */
export function sameFile(st: fs.Stats, stamp: FileStamp): boolean {
  return st.dev === stamp.dev && st.ino === stamp.ino && st.size === stamp.size && st.mtimeMs === stamp.mtimeMs && st.ctimeMs === stamp.ctimeMs;
}

/** Result of {@link scanModelFile}: protobuf bytes without the deferred payloads, and where those payloads are. */
export interface ScannedModel {
  /** A valid `ModelProto` encoding in which every deferred tensor has no `raw_data` field. */
  skeleton: Uint8Array;
  /** Per main-graph initializer index: the file range of its `raw_data` (only for deferred initializers). */
  deferred: Map<number, FileRange>;
  /** Per `"node:attribute"` index pair of the main graph: the file range of that attribute tensor's `raw_data`. */
  deferredAttributes: Map<string, FileRange>;
}

/** Thrown inside the scanner when the file is not in the simple form it handles; the caller then parses eagerly. */
class NotScannable extends Error {}

/** Protobuf field numbers of onnx.proto on the path to a weight's bytes. */
export const FIELD = {
  /** ModelProto.graph */
  modelGraph: 7,
  /** GraphProto.node */
  graphNode: 1,
  /** GraphProto.initializer */
  graphInitializer: 5,
  /** NodeProto.attribute */
  nodeAttribute: 5,
  /** AttributeProto.t */
  attributeTensor: 5,
  /** TensorProto.raw_data */
  tensorRawData: 9,
} as const;
const { modelGraph: MODEL_GRAPH, graphNode: GRAPH_NODE, graphInitializer: GRAPH_INITIALIZER, nodeAttribute: NODE_ATTRIBUTE, attributeTensor: ATTRIBUTE_TENSOR, tensorRawData: TENSOR_RAW_DATA } = FIELD;
const WINDOW = 1 << 16;

/** Sequential reader over a file with a window buffer; skipped ranges are never read. */
class FileCursor {
  pos = 0;
  private readonly window = new Uint8Array(WINDOW);
  private windowStart = 0;
  private windowEnd = 0;

  constructor(
    private readonly fd: number,
    readonly size: number,
  ) {}

  private fill(at: number): void {
    this.windowStart = at;
    this.windowEnd = at;
    const want = Math.min(WINDOW, this.size - at);
    let done = 0;
    while (done < want) {
      const n = fs.readSync(this.fd, this.window, done, want - done, at + done);
      if (n <= 0) break;
      done += n;
    }
    this.windowEnd = at + done;
  }

  byte(): number {
    if (this.pos >= this.size) throw new NotScannable('unexpected end of file');
    if (this.pos < this.windowStart || this.pos >= this.windowEnd) this.fill(this.pos);
    if (this.pos >= this.windowEnd) throw new NotScannable('short read');
    return this.window[this.pos++ - this.windowStart]!;
  }

  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.byte();
      result += (b & 0x7f) * scale;
      if (!(b & 0x80)) {
        if (result > Number.MAX_SAFE_INTEGER) throw new NotScannable('varint too large');
        return result;
      }
      scale *= 128;
    }
    throw new NotScannable('malformed varint');
  }

  /** Copies `[start, end)` of the file (a range already scanned or about to be). */
  bytes(start: number, end: number): Uint8Array {
    if (end > this.size || start > end) throw new NotScannable('range outside the file');
    const out = new Uint8Array(end - start);
    if (start >= this.windowStart && end <= this.windowEnd) {
      out.set(this.window.subarray(start - this.windowStart, end - this.windowStart));
      return out;
    }
    let done = 0;
    while (done < out.length) {
      const n = fs.readSync(this.fd, out, done, out.length - done, start + done);
      if (n <= 0) throw new NotScannable('short read');
      done += n;
    }
    return out;
  }

  /** Skips the payload of a scalar field (wire type 0, 1 or 5), checking that it stays within `end`. */
  skipScalar(wire: number, end: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 5) this.pos += 4;
    else throw new NotScannable(`wire type ${wire}`);
    if (this.pos > end) throw new NotScannable('field runs past its message');
  }
}

/** Protobuf varint encoding. */
export function encodeVarint(n: number): Uint8Array {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Uint8Array.from(out);
}

function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Scans the message in `[start, end)`, copying every field except those `special` handles. `special(field, wire,
 * payloadEnd)` is called with the cursor at the start of a length-delimited payload and returns replacement bytes
 * for the whole field (tag included), or undefined to copy the field as it is.
 */
function scanMessage(c: FileCursor, end: number, special: (field: number, payloadEnd: number, tagStart: number) => Uint8Array[] | undefined): Uint8Array[] {
  const parts: Uint8Array[] = [];
  let copyFrom = c.pos;
  while (c.pos < end) {
    const tagStart = c.pos;
    const tag = c.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === 0) throw new NotScannable('field number 0');
    if (wire === 2) {
      const len = c.varint();
      const payloadEnd = c.pos + len;
      if (payloadEnd > end) throw new NotScannable('field runs past its message');
      const replaced = special(field, payloadEnd, tagStart);
      if (replaced) {
        if (tagStart > copyFrom) parts.push(c.bytes(copyFrom, tagStart));
        parts.push(...replaced);
        copyFrom = payloadEnd;
      }
      c.pos = payloadEnd;
    } else c.skipScalar(wire, end);
  }
  if (c.pos !== end) throw new NotScannable('message length mismatch');
  if (end > copyFrom) parts.push(c.bytes(copyFrom, end));
  return parts;
}

/**
 * Scans a model file, deferring the `raw_data` of at least `threshold` bytes of main-graph initializers and of
 * main-graph node attribute tensors (a `Constant` node's value). Returns
 * undefined when the file is not in the plain form this handles (then parse it whole): a malformed or truncated file,
 * a graph field split in several parts, a tensor with several `raw_data` fields, or deprecated group fields.
 */
export function scanModelFile(file: string, threshold: number): ScannedModel | undefined {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).size;
    const c = new FileCursor(fd, size);
    const deferred = new Map<number, FileRange>();
    const deferredAttributes = new Map<string, FileRange>();
    /** Field bytes for a length-delimited field holding `parts`. */
    const field = (number: number, parts: Uint8Array[]): Uint8Array[] => {
      const body = concat(parts);
      return [encodeVarint(number * 8 + 2), encodeVarint(body.length), body];
    };
    /** Scans a TensorProto; returns its bytes without raw_data and the payload's range when it is deferred. */
    const tensor = (end: number): { parts: Uint8Array[]; raw: FileRange } | undefined => {
      let raw: FileRange | undefined;
      let rawFields = 0;
      const parts = scanMessage(c, end, (tField, rawEnd) => {
        if (tField !== TENSOR_RAW_DATA) return undefined;
        if (++rawFields > 1) throw new NotScannable('several raw_data fields');
        const length = rawEnd - c.pos;
        if (length < threshold) return undefined;
        raw = { file, offset: c.pos, length };
        return [];
      });
      return raw ? { parts, raw } : undefined;
    };
    let graphs = 0;
    const top = scanMessage(c, size, (mField, graphEnd) => {
      if (mField !== MODEL_GRAPH) return undefined;
      if (++graphs > 1) throw new NotScannable('several graph fields');
      let initializer = 0;
      let node = 0;
      const graphParts = scanMessage(c, graphEnd, (gField, end) => {
        if (gField === GRAPH_INITIALIZER) {
          const index = initializer++;
          const t = tensor(end);
          if (!t) return undefined;
          deferred.set(index, t.raw);
          return field(GRAPH_INITIALIZER, t.parts);
        }
        if (gField !== GRAPH_NODE) return undefined;
        // A node's attribute tensors (a Constant node's value): NodeProto.attribute[a].t.raw_data
        const nodeIndex = node++;
        let attribute = 0;
        let any = false;
        const nodeParts = scanMessage(c, end, (nField, attrEnd) => {
          if (nField !== NODE_ATTRIBUTE) return undefined;
          const attrIndex = attribute++;
          let tensors = 0;
          let found: FileRange | undefined;
          const attrParts = scanMessage(c, attrEnd, (aField, tensorEnd) => {
            if (aField !== ATTRIBUTE_TENSOR) return undefined;
            if (++tensors > 1) throw new NotScannable('several t fields in an attribute');
            const t = tensor(tensorEnd);
            if (!t) return undefined;
            found = t.raw;
            return field(ATTRIBUTE_TENSOR, t.parts);
          });
          if (!found) return undefined;
          deferredAttributes.set(`${nodeIndex}:${attrIndex}`, found);
          any = true;
          return field(NODE_ATTRIBUTE, attrParts);
        });
        return any ? field(GRAPH_NODE, nodeParts) : undefined;
      });
      if (!deferred.size && !deferredAttributes.size) return undefined;
      return field(MODEL_GRAPH, graphParts);
    });
    return { skeleton: concat(top), deferred, deferredAttributes };
  } catch (e) {
    if (e instanceof NotScannable) return undefined;
    throw e;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
