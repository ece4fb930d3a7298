import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, ShapeMismatchError, UnsupportedError } from '../errors.js';
import {
  convFanIn,
  convFanOut,
  convOutputSize,
  flattenDenseGeometry,
  makeConvPairGeometry,
  resolvePadding,
  tapScatterKernel,
  tapScatterKernelShape,
  validateConvPairGeometry,
} from './index.js';

describe('resolvePadding', () => {
  it('TF same padding is asymmetric for stride 2 on even sizes', () => {
    expect(resolvePadding('same', 8, 3, 2)).toEqual({ top: 0, bottom: 1, left: 0, right: 1 });
    expect(resolvePadding('same', 7, 3, 2)).toEqual({ top: 1, bottom: 1, left: 1, right: 1 });
    expect(resolvePadding('same', [8, 7], [4, 3], [1, 1])).toEqual({ top: 1, bottom: 2, left: 1, right: 1 });
    expect(resolvePadding('same', 5, 1, 2)).toEqual({ top: 0, bottom: 0, left: 0, right: 0 });
    expect(resolvePadding('valid', 5, 3, 1)).toEqual({ top: 0, bottom: 0, left: 0, right: 0 });
    expect(resolvePadding(2, 5, 3, 1)).toEqual({ top: 2, bottom: 2, left: 2, right: 2 });
    expect(resolvePadding([1, 0], 5, 3, 1)).toEqual({ top: 1, bottom: 1, left: 0, right: 0 });
    expect(resolvePadding({ top: 0, bottom: 1, left: 2, right: 3 }, 5, 3, 1)).toEqual({ top: 0, bottom: 1, left: 2, right: 3 });
  });

  it('same padding gives output ceil(in / s), with before ≤ after ≤ before + 1', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 4 }), (n, k, s) => {
        const p = resolvePadding('same', n, k, s);
        expect(p.top).toBeLessThanOrEqual(p.bottom);
        expect(p.bottom).toBeLessThanOrEqual(p.top + 1);
        expect(convOutputSize(n, k, s, p)[0]).toBe(Math.ceil(n / s));
      }),
    );
  });

  it('rejects bad specifications with typed errors', () => {
    expect(() => resolvePadding(-1, 5, 3, 1)).toThrow(InvalidArgumentError);
    expect(() => resolvePadding({ top: 0, bottom: 0.5, left: 0, right: 0 }, 5, 3, 1)).toThrow(InvalidArgumentError);
    expect(() => resolvePadding('full' as never, 5, 3, 1)).toThrow(InvalidArgumentError);
    expect(() => resolvePadding([1, 2, 3] as never, 5, 3, 1)).toThrow(ShapeMismatchError);
    expect(() => convOutputSize(2, 3, 1, { top: 0, bottom: 0, left: 0, right: 0 })).toThrow(InvalidArgumentError);
  });
});

describe('makeConvPairGeometry', () => {
  it('resolves both paddings and sizes', () => {
    const g = makeConvPairGeometry({ inChannels: 3, midChannels: 4, outChannels: 5, inputSize: [8, 9], kernel1: 3, stride1: 2, padding1: 'same', kernel2: [3, 1], stride2: [1, 2], padding2: 'same' });
    expect(g.midSize).toEqual([4, 5]);
    expect(g.pad1).toEqual({ top: 0, bottom: 1, left: 1, right: 1 });
    expect(g.outputSize).toEqual([4, 3]);
    expect(g.pad2).toEqual({ top: 1, bottom: 1, left: 0, right: 0 });
    expect(convFanIn(g)).toBe(27);
    expect(convFanOut(g)).toBe(15);
    expect(validateConvPairGeometry(g)).toEqual(g);
  });

  it('refuses dilation and bad sizes with typed errors', () => {
    const base = { inChannels: 2, midChannels: 2, outChannels: 2, inputSize: 6, kernel1: 3, kernel2: 3 };
    expect(() => makeConvPairGeometry({ ...base, dilation1: 2 })).toThrow(UnsupportedError);
    expect(() => makeConvPairGeometry({ ...base, dilation2: [1, 2] })).toThrow(/dilation2/);
    expect(makeConvPairGeometry({ ...base, dilation1: 1, dilation2: [1, 1] }).outputSize).toEqual([2, 2]);
    expect(() => makeConvPairGeometry({ ...base, inChannels: 0 })).toThrow(InvalidArgumentError);
    expect(() => makeConvPairGeometry({ ...base, kernel1: 1.5 })).toThrow(InvalidArgumentError);
    expect(() => makeConvPairGeometry({ ...base, inputSize: 4 })).toThrow(/next conv/);
    expect(() => makeConvPairGeometry({ ...base, stride2: 0 })).toThrow(InvalidArgumentError);
    const g = makeConvPairGeometry(base);
    expect(() => validateConvPairGeometry({ ...g, midSize: [5, 4] })).toThrow(ShapeMismatchError);
  });

  it('flattenDenseGeometry views the dense layer as a whole-map conv', () => {
    const g = flattenDenseGeometry({ inChannels: 3, midChannels: 4, outUnits: 10, inputSize: [7, 6], kernel1: 3, stride1: 2, padding1: 'same' });
    expect(g.midSize).toEqual([4, 3]);
    expect(g.kernel2).toEqual([4, 3]);
    expect(g.stride2).toEqual([1, 1]);
    expect(g.pad2).toEqual({ top: 0, bottom: 0, left: 0, right: 0 });
    expect(g.outputSize).toEqual([1, 1]);
    expect(g.outChannels).toBe(10);
    expect(convFanOut(g)).toBe(4 * 3 * 10);
    expect(() => flattenDenseGeometry({ inChannels: 3, midChannels: 4, outUnits: 10, inputSize: 7, kernel1: 3, dilation1: 2 })).toThrow(UnsupportedError);
  });

  it('tapScatterKernel is one-hot in the documented layout', () => {
    const g = makeConvPairGeometry({ inChannels: 1, midChannels: 2, outChannels: 3, inputSize: 6, kernel1: 1, kernel2: [2, 3] });
    const [kh, kw, f, m2] = tapScatterKernelShape(g);
    expect([kh, kw, f, m2]).toEqual([2, 3, 18, 3]);
    const k = tapScatterKernel(g);
    expect(k.length).toBe(2 * 3 * 18 * 3);
    let ones = 0;
    for (let br = 0; br < kh; br++) for (let bc = 0; bc < kw; bc++) for (let fi = 0; fi < f; fi++) for (let c = 0; c < m2; c++) {
      const v = k[((br * kw + bc) * f + fi) * m2 + c]!;
      const expected = fi === (br * kw + bc) * m2 + c ? 1 : 0;
      expect(v).toBe(expected);
      ones += v;
    }
    expect(ones).toBe(18);
  });
});
