/**
 * IEEE 754 binary16 (half precision) conversion, bit-exact in both directions.
 * @packageDocumentation
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Converts a half-precision bit pattern to its (exact) number value. NaN payloads are not preserved. */
export function halfToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac === 0 ? sign * Infinity : NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/**
 * Converts a number to the nearest half-precision bit pattern (round to nearest, ties to even; overflow to ±Infinity;
 * NaN to the canonical quiet NaN 0x7e00). The number is first rounded to float32, as ONNX runtimes do.
 */
export function numberToHalf(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return mant ? 0x7e00 : sign | 0x7c00;
  // Unbiased exponent, re-biased for half.
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): shift the implicit bit in, then round.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    const rounded = rem > mid || (rem === mid && (half & 1)) ? half + 1 : half;
    return sign | rounded;
  }
  const half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  const rounded = rem > 0x1000 || (rem === 0x1000 && (half & 1)) ? half + 1 : half;
  return sign | rounded; // a carry into the exponent is correct (may reach Infinity)
}

let table: Float64Array | undefined;

/** The value of every half-precision bit pattern (a shared 65,536-entry table). */
export function halfTable(): Float64Array {
  if (!table) {
    // Built through float32 bit patterns (every half is exactly a float32): a plain integer loop, fast even before
    // the JIT warms up. Subnormal halves are computed, since they are normal float32 numbers.
    const f = new Float32Array(65536);
    const bits = new Uint32Array(f.buffer);
    for (let h = 0; h < 65536; h++) {
      const sign = (h & 0x8000) << 16;
      const exp = (h >>> 10) & 0x1f;
      const frac = h & 0x3ff;
      if (exp === 0) f[h] = (sign ? -frac : frac) * 5.960464477539063e-8; // 2^-24
      else if (exp === 0x1f) bits[h] = (sign | 0x7f800000 | (frac ? 0x400000 : 0)) >>> 0;
      else bits[h] = (sign | ((exp + 112) << 23) | (frac << 13)) >>> 0;
    }
    table = Float64Array.from(f);
  }
  return table;
}

/** Decodes many half-precision bit patterns at once (table lookup). */
export function halvesToFloat64(bits: Uint16Array, out = new Float64Array(bits.length)): Float64Array {
  const t = halfTable();
  for (let i = 0; i < bits.length; i++) out[i] = t[bits[i]!]!;
  return out;
}
