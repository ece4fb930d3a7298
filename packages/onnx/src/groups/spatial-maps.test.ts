/**
 * The premise of group statistics through MaxPool: with zero incoming weights a new channel is constant, every window
 * ties, and onnxruntime's MaxPool (its Indices, which its gradient and the probe's follow) picks the FIRST valid element
 * of each window in scan order. Checked per pool form against a naive scan, with the output sizes of `poolOutputSize`
 * and of the IR's shape inference.
 */
import { describe, expect, it } from 'vitest';
import { TensorProto_DataType } from 'onnx-buf';
import { OnnxModel, runModel } from '../index.js';
import { GraphBuilder } from '../probe/__tests__/graph.js';
import { inferShapes } from '../shapes.js';
import { composeMap, poolOutputSize, poolTieIndex, sameMap, strideMap, asStride } from './spatial-maps.js';

/** Naive tie routing of one pool axis: scan each window in order, keep the first element inside the input. */
function firstValid(inSize: number, outSize: number, k: number, s: number, pad: number, dil: number): number[] {
  const out: number[] = [];
  for (let t = 0; t < outSize; t++) {
    let found = -1;
    for (let j = 0; j < k && found < 0; j++) {
      const at = t * s - pad + j * dil;
      if (at >= 0 && at < inSize) found = at;
    }
    out.push(found);
  }
  return out;
}

describe('onnxruntime routes a MaxPool tie to the first valid element of the window', () => {
  const forms: [string, number, Record<string, number[] | number>][] = [
    ['ResNet stem k3 s2 p1', 12, { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }],
    ['VGG k2 s2', 7, { kernel_shape: [2, 2], strides: [2, 2] }],
    ['GoogLeNet k3 s1 p1 ceil', 7, { kernel_shape: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], ceil_mode: 1 }],
    ['k3 s2 p1 ceil', 8, { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 }],
    ['k2 s2 p1 ceil (last window trimmed)', 5, { kernel_shape: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 }],
    ['k3 s2 dilation 2, asymmetric pads', 9, { kernel_shape: [3, 2], strides: [2, 3], pads: [2, 1, 0, 1], dilations: [2, 1] }],
  ];
  it.each(forms)('%s', async (_name, size, attrs) => {
    const b = new GraphBuilder();
    const x = b.input('x', [1, 1, size, size]);
    const [y, idxName] = b.op('MaxPool', [x], attrs, 2, 'pool') as [string, string];
    b.output(y, [1, 1, 'H', 'W']);
    b.output(idxName, [1, 1, 'H', 'W'], TensorProto_DataType.INT64);
    const model = new OnnxModel(b.build(13));
    const out = await runModel(model, { x: { type: 'float32', data: new Float32Array(size * size), dims: [1, 1, size, size] } });
    const idx = out.get(idxName)!;
    const [ho, wo] = idx.dims.slice(2) as [number, number];
    const kernel = attrs.kernel_shape as number[];
    const strides = attrs.strides as number[];
    const pads = (attrs.pads as number[] | undefined) ?? [0, 0, 0, 0];
    const dil = (attrs.dilations as number[] | undefined) ?? [1, 1];
    const ceil = attrs.ceil_mode === 1;
    expect(inferShapes(model).get(y)?.slice(2)).toEqual([ho, wo]);
    expect([ho, wo]).toEqual([0, 1].map((i) => poolOutputSize(size, kernel[i]!, strides[i]!, pads[i]!, pads[i + 2]!, dil[i]!, ceil)));
    const ph = poolTieIndex(size, ho, kernel[0]!, strides[0]!, pads[0]!, dil[0]!);
    const pw = poolTieIndex(size, wo, kernel[1]!, strides[1]!, pads[1]!, dil[1]!);
    expect(ph).toEqual(firstValid(size, ho, kernel[0]!, strides[0]!, pads[0]!, dil[0]!));
    for (let a = 0; a < ho; a++) for (let c = 0; c < wo; c++) expect(Number(idx.data[a * wo + c])).toBe(ph[a]! * size + pw[c]!);
  });
});

describe('spatial maps', () => {
  it('compose, compare and recognise plain subsampling', () => {
    const pi = [[0, 1, 3, 5], [0, 1, 3, 5]];
    expect(composeMap(strideMap([8, 8], [2, 2]), pi)).toEqual([[0, 2, 6, 10], [0, 2, 6, 10]]);
    expect(composeMap(undefined, pi)).toEqual(pi);
    expect(sameMap(undefined, [[0, 1, 2]], [3])).toBe(true);
    expect(sameMap(pi, strideMap([4, 4], [2, 2]))).toBe(false);
    expect(asStride([[0, 2, 4, 6]], [8])).toEqual([2]);
    expect(asStride([[0, 2, 4]], [7])).toBeUndefined(); // floor((7 − 1)/2) + 1 = 4 positions, the pool keeps 3
    expect(asStride(pi, [8, 8])).toBeUndefined();
  });
});
