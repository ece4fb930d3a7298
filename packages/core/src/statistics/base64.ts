/**
 * Lossless base64 encoding of float64 arrays (little-endian IEEE-754 bytes), used by the statistics JSON format.
 * Dependency-free so the core runs unchanged in browsers and Node.
 */
import { InvalidArgumentError } from '../errors.js';

const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const lookup = new Int16Array(128).fill(-1);
for (let i = 0; i < alphabet.length; i++) lookup[alphabet.charCodeAt(i)] = i;

/** Encodes float64 values as base64 of their little-endian bytes. */
export function encodeFloat64Base64(values: ArrayLike<number>): string {
  const bytes = new Uint8Array(values.length * 8);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat64(i * 8, values[i]!, true);
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += alphabet[(n >>> 18) & 63]! + alphabet[(n >>> 12) & 63]! + alphabet[(n >>> 6) & 63]! + alphabet[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += alphabet[(n >>> 18) & 63]! + alphabet[(n >>> 12) & 63]! + '==';
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += alphabet[(n >>> 18) & 63]! + alphabet[(n >>> 12) & 63]! + alphabet[(n >>> 6) & 63]! + '=';
  }
  return out;
}

/**
 * Decodes {@link encodeFloat64Base64} output. Throws {@link InvalidArgumentError} (naming `what`) on malformed
 * text or when the decoded length is not `expectedLength` values.
 */
export function decodeFloat64Base64(text: unknown, expectedLength: number, what: string): Float64Array {
  if (typeof text !== 'string') throw new InvalidArgumentError(`${what}: expected a base64 string`, { what });
  if (text.length % 4 !== 0) throw new InvalidArgumentError(`${what}: base64 length ${text.length} is not a multiple of 4`, { what });
  const pad = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  const byteLength = (text.length / 4) * 3 - pad;
  if (byteLength !== expectedLength * 8) {
    throw new InvalidArgumentError(`${what}: holds ${byteLength / 8} float64 values, expected ${expectedLength}`, { what, expected: expectedLength, actual: byteLength / 8 });
  }
  const bytes = new Uint8Array(byteLength);
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    let n = 0;
    for (let j = 0; j < 4; j++) {
      const ch = text.charCodeAt(i + j);
      const isPad = ch === 61 && i + j >= text.length - pad;
      const v = isPad ? 0 : ch < 128 ? lookup[ch]! : -1;
      if (v < 0) throw new InvalidArgumentError(`${what}: invalid base64 character at ${i + j}`, { what, index: i + j });
      n = (n << 6) | v;
    }
    if (o < byteLength) bytes[o++] = (n >>> 16) & 255;
    if (o < byteLength) bytes[o++] = (n >>> 8) & 255;
    if (o < byteLength) bytes[o++] = n & 255;
  }
  const view = new DataView(bytes.buffer);
  const out = new Float64Array(expectedLength);
  for (let i = 0; i < expectedLength; i++) out[i] = view.getFloat64(i * 8, true);
  return out;
}
