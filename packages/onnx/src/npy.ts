/**
 * A small `.npy` reader/writer (NumPy format versions 1.0, 2.0 and 3.0 headers; float32/float64 (also float16,
 * int32, int64 for inputs); little- or big-endian; C order only).
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import { FileAccessError, NpyFormatError, assertRegularFile } from './errors.js';
import { halfToNumber } from './fp16.js';

/** A decoded `.npy` array. */
export interface NpyArray {
  /** NumPy dtype descriptor, normalised to little-endian (`"<f4"`, `"<f8"`, `"<f2"`, `"<i4"`, `"<i8"`, `"|b1"`). */
  dtype: '<f4' | '<f8' | '<f2' | '<i4' | '<i8' | '|b1';
  /** Shape (empty for a scalar). */
  shape: number[];
  /** Elements in C order. Float types and int32 are numbers; int64 is a BigInt64Array; bool is a Uint8Array. */
  data: Float32Array | Float64Array | Uint16Array | Int32Array | BigInt64Array | Uint8Array;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
const SIZES: Record<string, number> = { f4: 4, f8: 8, f2: 2, i4: 4, i8: 8, b1: 1 };

/** Parses `.npy` bytes. `label` names the file in errors. Throws {@link NpyFormatError}. */
export function parseNpy(bytes: Uint8Array, label = '<npy>'): NpyArray {
  const fail = (msg: string): never => {
    throw new NpyFormatError(`${label}: ${msg}`, { file: label });
  };
  if (bytes.length < 10 || MAGIC.some((m, i) => bytes[i] !== m)) fail('not a .npy file (bad magic)');
  const major = bytes[6]!;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = dv.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) fail('truncated header');
    headerLen = dv.getUint32(8, true);
    start = 12;
  } else return fail(`unsupported format version ${major}.${bytes[7]}`);
  if (start + headerLen > bytes.length) fail('truncated header');
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) fail(`malformed header ${JSON.stringify(header.trim())}`);
  if (fortran === 'True') fail('Fortran-order arrays are not supported; save with np.ascontiguousarray');
  const shape = shapeText!
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length)
    .map((s) => {
      if (!/^\d+L?$/.test(s)) fail(`bad shape entry "${s}"`);
      return Number.parseInt(s, 10);
    });
  const m = /^([<>|=])([fib])(\d)$/.exec(descr!);
  if (!m || SIZES[`${m[2]}${m[3]}`] === undefined) return fail(`unsupported dtype "${descr}" (use float32 or float64)`);
  const kind = `${m[2]}${m[3]}`;
  const size = SIZES[kind]!;
  const big = m[1] === '>';
  const count = shape.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(count) || count > 0x7fffffff) fail(`shape (${shape.join(', ')}) is too large`);
  const offset = start + headerLen;
  if (bytes.length - offset !== count * size) fail(`expected ${count * size} data bytes for shape (${shape.join(', ')}) of ${descr}, found ${bytes.length - offset}`);
  const raw = new Uint8Array(bytes.subarray(offset)); // a copy with its own ArrayBuffer
  if (big && size > 1) {
    for (let i = 0; i < raw.length; i += size) raw.subarray(i, i + size).reverse();
  }
  const buf = raw.buffer;
  switch (kind) {
    case 'f4':
      return { dtype: '<f4', shape, data: new Float32Array(buf) };
    case 'f8':
      return { dtype: '<f8', shape, data: new Float64Array(buf) };
    case 'f2':
      return { dtype: '<f2', shape, data: new Uint16Array(buf) };
    case 'i4':
      return { dtype: '<i4', shape, data: new Int32Array(buf) };
    case 'i8':
      return { dtype: '<i8', shape, data: new BigInt64Array(buf) };
    default:
      return { dtype: '|b1', shape, data: new Uint8Array(buf) };
  }
}

/** Reads a `.npy` file. Throws {@link FileAccessError} or {@link NpyFormatError}. */
export function readNpy(file: string): NpyArray {
  let bytes: Uint8Array;
  try {
    assertRegularFile(fs.statSync(file), `"${file}"`, file);
    bytes = fs.readFileSync(file);
  } catch (e) {
    if (e instanceof FileAccessError) throw e;
    throw new FileAccessError(`cannot read "${file}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file });
  }
  return parseNpy(bytes, file);
}

/** The array's elements as float64 numbers (float16 decoded exactly; int64 via Number). */
export function npyToFloat64(a: NpyArray): Float64Array {
  if (a.dtype === '<f2') return Float64Array.from(a.data as Uint16Array, halfToNumber);
  if (a.dtype === '<i8') return Float64Array.from(a.data as BigInt64Array, (v) => Number(v));
  return Float64Array.from(a.data as ArrayLike<number>);
}

/** Encodes a float32/float64 array as `.npy` bytes (version 1.0 header, C order, little-endian). */
export function encodeNpy(data: Float32Array | Float64Array, shape: readonly number[]): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new NpyFormatError(`encodeNpy: ${data.length} values for shape (${shape.join(', ')})`, { shape: [...shape] });
  const descr = data instanceof Float32Array ? '<f4' : '<f8';
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

/** Writes a `.npy` file atomically (temporary file + rename). */
export function writeNpy(file: string, data: Float32Array | Float64Array, shape: readonly number[]): void {
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  try {
    fs.writeFileSync(tmp, encodeNpy(data, shape), { flag: 'wx' });
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    if (e instanceof NpyFormatError) throw e;
    throw new FileAccessError(`cannot write "${file}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file });
  }
}
