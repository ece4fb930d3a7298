import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TensorProto_DataType } from 'onnx-buf';
import { TensorBuffer, encodeNpy, parseNpy, halfTable, halfToNumber, numberToHalf } from '@gradmax/onnx';

const dtypes = [TensorProto_DataType.FLOAT, TensorProto_DataType.FLOAT16, TensorProto_DataType.DOUBLE];

describe('properties', () => {
  it('toFloat64Transposed and reader() agree with get() for every element type, shape and payload alignment', () => {
    fc.assert(
      fc.property(fc.constantFrom(...dtypes), fc.integer({ min: 1, max: 70 }), fc.integer({ min: 1, max: 70 }), fc.integer({ min: 0, max: 3 }), fc.integer(), (dtype, rows, cols, offset, seed) => {
        const plain = new TensorBuffer(dtype, [rows, cols]);
        let s = seed >>> 0;
        for (let i = 0; i < plain.length; i++) {
          s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
          plain.set(i, ((s >>> 8) / 16777216 - 0.5) * 8);
        }
        // the same bytes at an odd offset inside a larger buffer (as raw_data inside a protobuf message)
        const host = new Uint8Array(plain.bytes.length + offset);
        host.set(plain.bytes, offset);
        const buf = new TensorBuffer(dtype, [rows, cols], host.subarray(offset));
        const at = buf.reader();
        const expected = new Float64Array(rows * cols);
        const read = new Float64Array(rows * cols);
        for (let r = 0; r < rows; r++) {
          for (let c = 0; c < cols; c++) {
            expected[c * rows + r] = buf.get(r * cols + c);
            read[r * cols + c] = at(r * cols + c);
          }
        }
        expect(Array.from(buf.toFloat64Transposed(rows, cols))).toEqual(Array.from(expected));
        expect(Array.from(read)).toEqual(Array.from(buf.toFloat64()));
      }),
      { numRuns: 60, seed: 7 },
    );
  });

  it('setMany writes exactly what set() writes, for every element type and payload alignment', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...dtypes),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 0, max: 3 }),
        fc.array(fc.tuple(fc.nat(), fc.double({ min: -7e4, max: 7e4, noNaN: true })), { maxLength: 30 }),
        fc.constantFrom(1, 0.5, 3, -1.7),
        (dtype, length, offset, writes, divisor) => {
          const size = new TensorBuffer(dtype, [1]).elemSize;
          const host = new Uint8Array(length * size + offset);
          const one = new TensorBuffer(dtype, [length], host.subarray(offset));
          const many = new TensorBuffer(dtype, [length]);
          const indices = writes.map(([i]) => i % length);
          const values = writes.map(([, v]) => v);
          for (let n = 0; n < indices.length; n++) one.set(indices[n]!, values[n]! / divisor);
          many.setMany(indices, values, divisor);
          expect(Array.from(many.bytes)).toEqual(Array.from(one.bytes));
        },
      ),
      { numRuns: 200, seed: 11 },
    );
  });

  it('the half-precision lookup table equals the scalar decoder for all 65,536 bit patterns (incl. -0, subnormals, Inf, NaN)', () => {
    const table = halfTable();
    let mismatches = 0;
    for (let b = 0; b < 65536; b++) if (!Object.is(table[b], halfToNumber(b))) mismatches++;
    expect(mismatches).toBe(0);
    expect(Object.is(table[0x8000], -0)).toBe(true);
    expect(table[0x0001]).toBe(2 ** -24);
    expect(table[0x7c00]).toBe(Infinity);
    expect(Number.isNaN(table[0x7e01])).toBe(true);
  });


  it('growAxis keeps every existing element byte-identical at the same multi-index, new ones are zero', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 }),
        fc.nat(),
        fc.integer({ min: 1, max: 3 }),
        fc.constantFrom(...dtypes),
        fc.integer(),
        (dims, axisSeed, extra, dtype, seed) => {
          const axis = axisSeed % dims.length;
          const buf = new TensorBuffer(dtype, dims);
          let s = seed >>> 0;
          for (let i = 0; i < buf.bytes.length; i++) {
            s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
            buf.bytes[i] = s >>> 24;
          }
          const grown = buf.growAxis(axis, extra);
          expect(grown.dims).toEqual(dims.map((d, a) => (a === axis ? d + extra : d)));
          const size = buf.elemSize;
          const idx = new Array<number>(dims.length).fill(0);
          for (let flat = 0; flat < grown.length; flat++) {
            let rem = flat;
            for (let a = dims.length - 1; a >= 0; a--) {
              idx[a] = rem % grown.dims[a]!;
              rem = Math.floor(rem / grown.dims[a]!);
            }
            const bytes = grown.bytes.subarray(flat * size, flat * size + size);
            if (idx[axis]! >= dims[axis]!) expect(bytes.every((b) => b === 0)).toBe(true);
            else {
              const old = buf.index(...idx);
              expect(Array.from(bytes)).toEqual(Array.from(buf.bytes.subarray(old * size, old * size + size)));
            }
          }
        },
      ),
      { numRuns: 200, seed: 7 },
    );
  });

  it('.npy encode/parse round-trips float32 and float64 arrays', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 5 }), { maxLength: 3 }), fc.boolean(), (shape, f32) => {
        const n = shape.reduce((a, b) => a * b, 1);
        const data = f32 ? Float32Array.from({ length: n }, (_, i) => Math.fround(i / 3 - 1)) : Float64Array.from({ length: n }, (_, i) => i / 3 - 1);
        const back = parseNpy(encodeNpy(data, shape));
        expect(back.shape).toEqual(shape);
        expect(back.dtype).toBe(f32 ? '<f4' : '<f8');
        expect(Array.from(back.data as Float64Array)).toEqual(Array.from(data));
      }),
      { numRuns: 100, seed: 8 },
    );
  });

  it('numberToHalf returns the nearest half (ties to even) for float32 inputs', () => {
    fc.assert(
      fc.property(fc.float({ noNaN: true, min: -70000, max: 70000 }), (x) => {
        const h = numberToHalf(x);
        const v = halfToNumber(h);
        const f = Math.fround(x);
        if (!Number.isFinite(v)) {
          expect(Math.abs(f)).toBeGreaterThanOrEqual(65520);
          return;
        }
        // neighbours of h are not closer
        for (const nb of [h - 1, h + 1]) {
          if (nb < 0 || nb > 0xffff || ((nb ^ h) & 0x8000) !== 0) continue;
          const w = halfToNumber(nb);
          if (!Number.isFinite(w)) continue;
          const dv = Math.abs(v - f);
          const dw = Math.abs(w - f);
          expect(dv <= dw).toBe(true);
          if (dv === dw) expect(h & 1).toBe(0);
        }
      }),
      { numRuns: 2000, seed: 9 },
    );
  });
});
