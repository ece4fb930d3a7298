/**
 * Tensor data access: element types, little-endian byte images of a tensor's elements, and a small editable
 * buffer used to grow weights while keeping every existing element bit-identical.
 * @packageDocumentation
 */
import { TensorProto_DataType, type TensorProto } from 'onnx-buf';
import { OnnxFormatError } from './errors.js';
import { halfTable, halfToNumber, halvesToFloat64, numberToHalf } from './fp16.js';

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Largest element count this package will allocate for one tensor (2^31 - 1 elements). */
export const MAX_TENSOR_ELEMENTS = 0x7fffffff;

/** Floating-point element types that weights may use; they are read and written in their own type. */
export const FLOAT_TYPES: ReadonlySet<number> = new Set([TensorProto_DataType.FLOAT, TensorProto_DataType.FLOAT16, TensorProto_DataType.DOUBLE]);

/** Bytes per element of the fixed-width types this package reads, or undefined for unsupported types. */
export function elementSize(dataType: number): number | undefined {
  switch (dataType) {
    case TensorProto_DataType.FLOAT:
    case TensorProto_DataType.INT32:
    case TensorProto_DataType.UINT32:
      return 4;
    case TensorProto_DataType.DOUBLE:
    case TensorProto_DataType.INT64:
    case TensorProto_DataType.UINT64:
      return 8;
    case TensorProto_DataType.FLOAT16:
    case TensorProto_DataType.BFLOAT16:
    case TensorProto_DataType.INT16:
    case TensorProto_DataType.UINT16:
      return 2;
    case TensorProto_DataType.INT8:
    case TensorProto_DataType.UINT8:
    case TensorProto_DataType.BOOL:
      return 1;
    default:
      return undefined;
  }
}

/** Name of an ONNX element type, e.g. `"FLOAT16"`. */
export function dataTypeName(dataType: number): string {
  return TensorProto_DataType[dataType] ?? `type#${dataType}`;
}

/** The tensor's dims as numbers; throws {@link OnnxFormatError} for negative or huge dims. */
export function tensorDims(tensor: TensorProto): number[] {
  const dims: number[] = [];
  let count = 1;
  for (const d of tensor.dims) {
    if (d < 0n || d > BigInt(MAX_TENSOR_ELEMENTS)) {
      throw new OnnxFormatError(`tensor "${tensor.name}" has an invalid dimension ${d}`, { initializer: tensor.name, dims: tensor.dims.map(String) });
    }
    const n = Number(d);
    dims.push(n);
    count *= n;
  }
  if (count > MAX_TENSOR_ELEMENTS) {
    throw new OnnxFormatError(`tensor "${tensor.name}" has too many elements (${count})`, { initializer: tensor.name, shape: dims });
  }
  return dims;
}

/** Product of dims (1 for a scalar). */
export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/**
 * Little-endian byte image of the elements stored in a tensor's *typed* fields (`float_data`, `int32_data`,
 * `int64_data`, `double_data`, `uint64_data`), as they would appear in `raw_data`.
 */
export function typedFieldBytes(tensor: TensorProto, count: number): Uint8Array {
  const dt = tensor.dataType;
  const fail = (field: string, got: number) =>
    new OnnxFormatError(`tensor "${tensor.name}" (${dataTypeName(dt)}) holds ${got} values in ${field}, expected ${count}`, {
      initializer: tensor.name,
      field,
      expected: count,
      actual: got,
    });
  switch (dt) {
    case TensorProto_DataType.FLOAT: {
      if (tensor.floatData.length !== count) throw fail('float_data', tensor.floatData.length);
      return new Uint8Array(Float32Array.from(tensor.floatData).buffer);
    }
    case TensorProto_DataType.DOUBLE: {
      if (tensor.doubleData.length !== count) throw fail('double_data', tensor.doubleData.length);
      return new Uint8Array(Float64Array.from(tensor.doubleData).buffer);
    }
    case TensorProto_DataType.FLOAT16:
    case TensorProto_DataType.BFLOAT16:
    case TensorProto_DataType.INT16:
    case TensorProto_DataType.UINT16: {
      if (tensor.int32Data.length !== count) throw fail('int32_data', tensor.int32Data.length);
      return new Uint8Array(Uint16Array.from(tensor.int32Data, (v) => v & 0xffff).buffer);
    }
    case TensorProto_DataType.INT32:
      if (tensor.int32Data.length !== count) throw fail('int32_data', tensor.int32Data.length);
      return new Uint8Array(Int32Array.from(tensor.int32Data).buffer);
    case TensorProto_DataType.INT8:
    case TensorProto_DataType.UINT8:
    case TensorProto_DataType.BOOL:
      if (tensor.int32Data.length !== count) throw fail('int32_data', tensor.int32Data.length);
      return Uint8Array.from(tensor.int32Data, (v) => v & 0xff);
    case TensorProto_DataType.INT64:
      if (tensor.int64Data.length !== count) throw fail('int64_data', tensor.int64Data.length);
      return new Uint8Array(BigInt64Array.from(tensor.int64Data).buffer);
    case TensorProto_DataType.UINT32:
    case TensorProto_DataType.UINT64: {
      if (tensor.uint64Data.length !== count) throw fail('uint64_data', tensor.uint64Data.length);
      if (dt === TensorProto_DataType.UINT64) return new Uint8Array(BigUint64Array.from(tensor.uint64Data).buffer);
      return new Uint8Array(Uint32Array.from(tensor.uint64Data, (v) => Number(v & 0xffffffffn)).buffer);
    }
    default:
      throw new OnnxFormatError(`tensor "${tensor.name}" has unsupported element type ${dataTypeName(dt)}`, { initializer: tensor.name, dataType: dt });
  }
}

/** Stores a little-endian byte image back into the tensor's typed field for its element type (clears the others). */
export function setTypedFieldBytes(tensor: TensorProto, bytes: Uint8Array): void {
  // new Uint8Array(view) copies into a buffer of its own; a Node Buffer's slice() shares the (pooled) memory.
  const copy = new Uint8Array(bytes);
  const dv = new DataView(copy.buffer);
  const dt = tensor.dataType;
  switch (dt) {
    case TensorProto_DataType.FLOAT:
      tensor.floatData = Array.from(new Float32Array(copy.buffer));
      return;
    case TensorProto_DataType.DOUBLE:
      tensor.doubleData = Array.from(new Float64Array(copy.buffer));
      return;
    case TensorProto_DataType.FLOAT16:
    case TensorProto_DataType.BFLOAT16:
    case TensorProto_DataType.UINT16:
      tensor.int32Data = Array.from(new Uint16Array(copy.buffer));
      return;
    case TensorProto_DataType.INT16:
      tensor.int32Data = Array.from(new Int16Array(copy.buffer));
      return;
    case TensorProto_DataType.INT32:
      tensor.int32Data = Array.from(new Int32Array(copy.buffer));
      return;
    case TensorProto_DataType.INT8:
      tensor.int32Data = Array.from(new Int8Array(copy.buffer));
      return;
    case TensorProto_DataType.UINT8:
    case TensorProto_DataType.BOOL:
      tensor.int32Data = Array.from(copy);
      return;
    case TensorProto_DataType.INT64:
      tensor.int64Data = Array.from(new BigInt64Array(copy.buffer));
      return;
    case TensorProto_DataType.UINT64:
      tensor.uint64Data = Array.from(new BigUint64Array(copy.buffer));
      return;
    case TensorProto_DataType.UINT32:
      tensor.uint64Data = Array.from({ length: copy.length / 4 }, (_, i) => BigInt(dv.getUint32(4 * i, true)));
      return;
    default:
      throw new OnnxFormatError(`tensor "${tensor.name}" has unsupported element type ${dataTypeName(dt)}`, { initializer: tensor.name, dataType: dt });
  }
}

/**
 * An editable, dense, little-endian copy of a tensor's elements. Growing an axis copies existing elements byte for
 * byte, so they stay bit-identical; new elements start as all-zero bits (+0 for floats).
 */
export class TensorBuffer {
  /** Element type (an ONNX `TensorProto.DataType`). */
  readonly dataType: number;
  /** Shape. */
  readonly dims: number[];
  /** Little-endian element bytes, `elementCount(dims) * elementSize` long. */
  readonly bytes: Uint8Array;
  /** Bytes per element. */
  readonly elemSize: number;
  private readonly view: DataView;

  constructor(dataType: number, dims: readonly number[], bytes?: Uint8Array) {
    const size = elementSize(dataType);
    if (size === undefined) throw new OnnxFormatError(`unsupported element type ${dataTypeName(dataType)}`, { dataType });
    this.dataType = dataType;
    this.dims = [...dims];
    this.elemSize = size;
    const n = elementCount(dims) * size;
    if (bytes && bytes.length !== n) {
      throw new OnnxFormatError(`tensor data has ${bytes.length} bytes, expected ${n} for shape [${dims.join(', ')}] of ${dataTypeName(dataType)}`, {
        shape: [...dims],
        expectedBytes: n,
        actualBytes: bytes.length,
      });
    }
    this.bytes = bytes ?? new Uint8Array(n);
    this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
  }

  /** Number of elements. */
  get length(): number {
    return this.bytes.length / this.elemSize;
  }

  /** Row-major flat index of a multi-index. */
  index(...idx: number[]): number {
    let flat = 0;
    for (let a = 0; a < this.dims.length; a++) flat = flat * this.dims[a]! + idx[a]!;
    return flat;
  }

  /** Element `i` (flat) as a number (FLOAT16 decoded exactly; INT64 via Number). */
  get(i: number): number {
    const o = i * this.elemSize;
    switch (this.dataType) {
      case TensorProto_DataType.FLOAT:
        return this.view.getFloat32(o, true);
      case TensorProto_DataType.DOUBLE:
        return this.view.getFloat64(o, true);
      case TensorProto_DataType.FLOAT16:
        return halfToNumber(this.view.getUint16(o, true));
      case TensorProto_DataType.INT64:
        return Number(this.view.getBigInt64(o, true));
      case TensorProto_DataType.INT32:
        return this.view.getInt32(o, true);
      case TensorProto_DataType.INT16:
        return this.view.getInt16(o, true);
      case TensorProto_DataType.UINT16:
        return this.view.getUint16(o, true);
      case TensorProto_DataType.INT8:
        return this.view.getInt8(o);
      case TensorProto_DataType.UINT8:
      case TensorProto_DataType.BOOL:
        return this.view.getUint8(o);
      default:
        throw new OnnxFormatError(`reading ${dataTypeName(this.dataType)} elements is not supported`, { dataType: this.dataType });
    }
  }

  /** Sets element `i` (flat), rounding to the element type (FLOAT16: nearest, ties to even). */
  set(i: number, value: number): void {
    const o = i * this.elemSize;
    switch (this.dataType) {
      case TensorProto_DataType.FLOAT:
        this.view.setFloat32(o, value, true);
        return;
      case TensorProto_DataType.DOUBLE:
        this.view.setFloat64(o, value, true);
        return;
      case TensorProto_DataType.FLOAT16:
        this.view.setUint16(o, numberToHalf(value), true);
        return;
      case TensorProto_DataType.INT64:
        this.view.setBigInt64(o, BigInt(Math.trunc(value)), true);
        return;
      case TensorProto_DataType.INT32:
        this.view.setInt32(o, value | 0, true);
        return;
      case TensorProto_DataType.INT16:
        this.view.setInt16(o, value, true);
        return;
      case TensorProto_DataType.UINT16:
        this.view.setUint16(o, value, true);
        return;
      case TensorProto_DataType.INT8:
        this.view.setInt8(o, value);
        return;
      case TensorProto_DataType.UINT8:
      case TensorProto_DataType.BOOL:
        this.view.setUint8(o, value);
        return;
      default:
        throw new OnnxFormatError(`writing ${dataTypeName(this.dataType)} elements is not supported`, { dataType: this.dataType });
    }
  }

  /**
   * Sets element `indices[n]` to `values[n] / divisor` for every n, rounded to the element type exactly as
   * {@link TensorBuffer.set} rounds (through typed views where the buffer allows; FLOAT16 to nearest, ties to even).
   */
  setMany(indices: ArrayLike<number>, values: ArrayLike<number>, divisor = 1): void {
    if (indices.length !== values.length) throw new OnnxFormatError(`setMany: ${indices.length} indices for ${values.length} values`, { shape: this.dims });
    const n = indices.length;
    const t = this.dataType;
    const aligned = LITTLE_ENDIAN && this.bytes.byteOffset % this.elemSize === 0;
    const { buffer, byteOffset } = this.bytes;
    if (aligned && t === TensorProto_DataType.FLOAT) {
      const a = new Float32Array(buffer, byteOffset, this.length);
      for (let i = 0; i < n; i++) a[indices[i]!] = values[i]! / divisor;
    } else if (aligned && t === TensorProto_DataType.DOUBLE) {
      const a = new Float64Array(buffer, byteOffset, this.length);
      for (let i = 0; i < n; i++) a[indices[i]!] = values[i]! / divisor;
    } else if (aligned && t === TensorProto_DataType.FLOAT16) {
      const a = new Uint16Array(buffer, byteOffset, this.length);
      for (let i = 0; i < n; i++) a[indices[i]!] = numberToHalf(values[i]! / divisor);
    } else for (let i = 0; i < n; i++) this.set(indices[i]!, values[i]! / divisor);
  }

  /**
   * A fast element reader `at(flatIndex) → number` without decoding the whole tensor (typed-array views on
   * little-endian machines; FLOAT16 through a lookup table).
   */
  reader(): (i: number) => number {
    const typed = this.typedElements();
    if (typed?.lut) {
      const { values, lut } = typed;
      return (i) => lut[values[i]!]!;
    }
    if (typed) {
      const { values } = typed;
      return (i) => values[i]!;
    }
    return (i) => this.get(i);
  }

  /**
   * The elements as a typed array on little-endian machines (FLOAT, DOUBLE; FLOAT16 as bit patterns with the decoding
   * table); an unaligned payload (raw_data inside a protobuf buffer) is copied once so typed views apply.
   */
  private typedElements(): { values: Float32Array | Float64Array | Uint16Array; lut?: Float64Array } | undefined {
    const t = this.dataType;
    if (!LITTLE_ENDIAN || (t !== TensorProto_DataType.FLOAT && t !== TensorProto_DataType.DOUBLE && t !== TensorProto_DataType.FLOAT16)) return undefined;
    const { buffer, byteOffset } = this.bytes.byteOffset % this.elemSize === 0 ? this.bytes : new Uint8Array(this.bytes);
    const n = this.length;
    if (t === TensorProto_DataType.FLOAT) return { values: new Float32Array(buffer, byteOffset, n) };
    if (t === TensorProto_DataType.DOUBLE) return { values: new Float64Array(buffer, byteOffset, n) };
    return { values: new Uint16Array(buffer, byteOffset, n), lut: halfTable() };
  }

  /** All elements as a Float64Array. */
  toFloat64(): Float64Array {
    const typed = this.typedElements();
    if (typed?.lut) return halvesToFloat64(typed.values as Uint16Array);
    if (typed) return Float64Array.from(typed.values);
    const n = this.length;
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = this.get(i);
    return out;
  }

  /**
   * The elements, viewed as a row-major `rows × cols` matrix (`rows · cols` must equal the element count), transposed
   * into `out` (`cols × rows`, row-major) as float64. Works in cache-sized tiles, without a per-element call.
   */
  toFloat64Transposed(rows: number, cols: number, out: Float64Array<ArrayBufferLike> = new Float64Array(rows * cols)): Float64Array<ArrayBufferLike> {
    if (rows * cols !== this.length || out.length !== this.length) throw new OnnxFormatError(`cannot view ${this.length} elements as ${rows}x${cols}`, { shape: this.dims });
    const typed = this.typedElements();
    const src: ArrayLike<number> = typed ? typed.values : this.toFloat64();
    const lut = typed?.lut;
    const T = 32;
    for (let r0 = 0; r0 < rows; r0 += T) {
      const r1 = Math.min(rows, r0 + T);
      for (let c0 = 0; c0 < cols; c0 += T) {
        const c1 = Math.min(cols, c0 + T);
        for (let r = r0; r < r1; r++) {
          const base = r * cols;
          if (lut) for (let c = c0; c < c1; c++) out[c * rows + r] = lut[src[base + c]!]!;
          else for (let c = c0; c < c1; c++) out[c * rows + r] = src[base + c]!;
        }
      }
    }
    return out;
  }

  /** Copies element `from` to element `to` byte for byte (bit-identical). */
  copyElement(from: number, to: number): void {
    const s = this.elemSize;
    this.bytes.copyWithin(to * s, from * s, from * s + s);
  }

  /**
   * A new buffer with `extra` more entries at the end of `axis`; existing elements are copied bytewise, new ones are
   * zero bits.
   */
  growAxis(axis: number, extra: number): TensorBuffer {
    const dims = [...this.dims];
    if (axis < 0 || axis >= dims.length) throw new OnnxFormatError(`cannot grow axis ${axis} of a rank-${dims.length} tensor`, { shape: dims, axis });
    let outer = 1;
    for (let a = 0; a < axis; a++) outer *= dims[a]!;
    let inner = this.elemSize;
    for (let a = axis + 1; a < dims.length; a++) inner *= dims[a]!;
    const oldBlock = dims[axis]! * inner;
    dims[axis] = dims[axis]! + extra;
    const newBlock = dims[axis]! * inner;
    const out = new TensorBuffer(this.dataType, dims);
    if (oldBlock === newBlock) out.bytes.set(this.bytes);
    else for (let o = 0; o < outer; o++) out.bytes.set(this.bytes.subarray(o * oldBlock, (o + 1) * oldBlock), o * newBlock);
    return out;
  }

  /**
   * A new buffer with one zero slice inserted along `axis` before each old index in `positions` (ascending; the old
   * length appends). Existing elements are copied bytewise. The slice inserted for `positions[j]` lands at index
   * `positions[j] + j`.
   */
  insertSlices(axis: number, positions: readonly number[]): TensorBuffer {
    const dims = [...this.dims];
    if (axis < 0 || axis >= dims.length) throw new OnnxFormatError(`cannot grow axis ${axis} of a rank-${dims.length} tensor`, { shape: dims, axis });
    const len = dims[axis]!;
    for (let j = 0; j < positions.length; j++) {
      const p = positions[j]!;
      if (!Number.isInteger(p) || p < 0 || p > len || (j > 0 && p < positions[j - 1]!)) throw new OnnxFormatError(`insertSlices: positions must ascend within [0, ${len}]`, { shape: dims, axis });
    }
    if (positions.every((p) => p === len)) return this.growAxis(axis, positions.length);
    let outer = 1;
    for (let a = 0; a < axis; a++) outer *= dims[a]!;
    let inner = this.elemSize;
    for (let a = axis + 1; a < dims.length; a++) inner *= dims[a]!;
    dims[axis] = len + positions.length;
    const out = new TensorBuffer(this.dataType, dims);
    const oldBlock = len * inner;
    const newBlock = dims[axis]! * inner;
    for (let o = 0; o < outer; o++) {
      let src = 0;
      let dst = 0;
      for (let j = 0; j <= positions.length; j++) {
        const until = j < positions.length ? positions[j]! : len;
        const n = (until - src) * inner;
        out.bytes.set(this.bytes.subarray(o * oldBlock + src * inner, o * oldBlock + src * inner + n), o * newBlock + dst * inner);
        dst += until - src + (j < positions.length ? 1 : 0);
        src = until;
      }
    }
    return out;
  }

  /** A new buffer with the same elements and a different shape of equal element count. */
  reshape(dims: readonly number[]): TensorBuffer {
    return new TensorBuffer(this.dataType, dims, this.bytes);
  }
}
