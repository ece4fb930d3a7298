/**
 * The Conv rule's input gradient, driven directly (a hand-made rule context), against a naive float64 scatter of the
 * output gradient through the weights: the stride-1 path (a Conv with the flipped, channel-swapped weight, baked
 * from the initializer or flipped by nodes at run time) and the strided ConvTranspose path, in FLOAT and FLOAT16,
 * run by onnxruntime with its default optimizations (NCHWc kernels). Also: the baked weight is an exact element
 * permutation in every float type, and an initializer a graph input can override is never baked.
 */
import { describe, expect, it } from 'vitest';
import { create, toBinary } from '@bufbuild/protobuf';
import * as ort from 'onnxruntime-node';
import { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema, TensorProto_DataType } from 'onnx-buf';
import type { NodeProto, TensorProto } from 'onnx-buf';
import { Rng } from '@gradmax/core';
import { makeNode, makeTensor, makeValueInfo } from '../model.js';
import { TensorBuffer } from '../tensor.js';
import { halfToNumber, numberToHalf } from '../fp16.js';
import { GraphBuilder } from './__tests__/graph.js';
import { Emitter } from './emitter.js';
import { buildProbe } from './index.js';
import { VJP_RULES } from './rules.js';
import type { RuleContext } from './rules.js';

const { FLOAT, FLOAT16, DOUBLE } = TensorProto_DataType;

interface Geometry {
  name: string;
  /** Input [N, C, H, W]. */
  x: [number, number, number, number];
  /** Weight [M, C/group, kh, kw]. */
  w: [number, number, number, number];
  strides?: [number, number];
  dilations?: [number, number];
  /** [top, left, bottom, right]. */
  pads?: [number, number, number, number];
  group?: number;
}

function outSize(g: Geometry, axis: 0 | 1): number {
  const s = g.strides?.[axis] ?? 1;
  const d = g.dilations?.[axis] ?? 1;
  const p = g.pads ?? [0, 0, 0, 0];
  return Math.floor((g.x[2 + axis]! + p[axis]! + p[axis + 2]! - d * (g.w[2 + axis]! - 1) - 1) / s) + 1;
}

function yDims(g: Geometry): number[] {
  return [g.x[0], g.w[0], outSize(g, 0), outSize(g, 1)];
}

/** dX[n, c, h, w] = Σ dY[n, m, y, x] · W[m, c − group start, i, j] over h = s·y − p + d·i (the conv's adjoint). */
function naiveInputGrad(g: Geometry, gy: Float64Array, w: Float64Array): Float64Array {
  const [N, C, H, W] = g.x;
  const [M, Cg, kh, kw] = g.w;
  const group = g.group ?? 1;
  const Mg = M / group;
  const [sh, sw] = g.strides ?? [1, 1];
  const [dh, dw] = g.dilations ?? [1, 1];
  const [pt, pl] = g.pads ?? [0, 0, 0, 0];
  const [, , Ho, Wo] = yDims(g);
  const dx = new Float64Array(N * C * H * W);
  for (let n = 0; n < N; n++) {
    for (let m = 0; m < M; m++) {
      const gi = Math.floor(m / Mg);
      for (let y = 0; y < Ho!; y++) {
        for (let x = 0; x < Wo!; x++) {
          const v = gy[((n * M + m) * Ho! + y) * Wo! + x]!;
          for (let c = 0; c < Cg; c++) {
            for (let i = 0; i < kh; i++) {
              const h = sh * y - pt + dh * i;
              if (h < 0 || h >= H) continue;
              for (let j = 0; j < kw; j++) {
                const col = sw * x - pl + dw * j;
                if (col < 0 || col >= W) continue;
                dx[((n * C + gi * Cg + c) * H + h) * W + col]! += v * w[((m * Cg + c) * kh + i) * kw + j]!;
              }
            }
          }
        }
      }
    }
  }
  return dx;
}

/** Values representable in `dataType` (FLOAT16 values rounded through half precision). */
function representable(rng: Rng, n: number, dataType: number): Float64Array {
  const v = rng.fillNormal(new Float64Array(n));
  if (dataType === FLOAT16) for (let i = 0; i < n; i++) v[i] = halfToNumber(numberToHalf(v[i]!));
  else if (dataType === FLOAT) for (let i = 0; i < n; i++) v[i] = Math.fround(v[i]!);
  return v;
}

interface RuleRun {
  emitter: Emitter;
  grad: string;
}

/** Runs the Conv rule on `node` for the gradient `gy` of its output; `graphInputs` as the probe builder passes them. */
function runConvRule(node: NodeProto, g: Geometry, dataType: number, weight: TensorProto, graphInputs: string[] | undefined): RuleRun {
  const emitter = new Emitter(['x', 'w', 'y', 'gy', node.name], 17);
  const infos: Record<string, number[]> = { x: [...g.x], w: [...g.w], y: yDims(g), gy: yDims(g) };
  let grad: string | undefined;
  const ctx: RuleContext = {
    node,
    e: emitter,
    opset: 17,
    info: (name) => ({ elemType: dataType, dims: infos[name]! }),
    gradOut: (i) => (i === 0 ? 'gy' : undefined),
    needs: (i) => i === 0,
    addGrad: (i, v) => {
      expect(i).toBe(0);
      grad = v;
    },
    initializer: (name) => (name === 'w' ? weight : undefined),
    ...(graphInputs ? { isGraphInput: (name: string) => graphInputs.includes(name) } : {}),
  };
  VJP_RULES.Conv!(ctx);
  expect(grad).toBeDefined();
  return { emitter, grad: grad! };
}

function convNode(g: Geometry): NodeProto {
  return makeNode('Conv', ['x', 'w'], ['y'], { kernel_shape: [g.w[2], g.w[3]], strides: g.strides ?? [1, 1], dilations: g.dilations ?? [1, 1], pads: g.pads ?? [0, 0, 0, 0], group: g.group ?? 1 }, 'conv');
}

/** The gradient graph alone (input gy and, when `weightInput`, the weight; output the rule's result), run in onnxruntime. */
async function runGradient(run: RuleRun, g: Geometry, dataType: number, weight: TensorProto, gy: Float64Array, weightInput: Float64Array | undefined): Promise<Float64Array> {
  const inputs = [makeValueInfo('gy', dataType, yDims(g))];
  const inits = [...run.emitter.initializers];
  if (weightInput) inputs.push(makeValueInfo('w', dataType, [...g.w]));
  else inits.push(weight);
  const model = create(ModelProtoSchema, {
    irVersion: 8n,
    opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 17n })],
    graph: create(GraphProtoSchema, { name: 'grad', node: run.emitter.nodes, initializer: inits, input: inputs, output: [makeValueInfo(run.grad, dataType)] }),
  });
  const session = await ort.InferenceSession.create(toBinary(ModelProtoSchema, model), { intraOpNumThreads: 1 });
  const tensor = (values: Float64Array, dims: number[]) =>
    dataType === FLOAT16 ? new ort.Tensor('float16', Uint16Array.from(values, (v) => numberToHalf(v)), dims) : new ort.Tensor('float32', Float32Array.from(values), dims);
  const feeds: Record<string, ort.Tensor> = { gy: tensor(gy, yDims(g)) };
  if (weightInput) feeds.w = tensor(weightInput, [...g.w]);
  const out = (await session.run(feeds))[run.grad]!;
  await session.release();
  expect([...out.dims]).toEqual([...g.x]);
  const data = out.data as Float32Array | Uint16Array;
  return dataType === FLOAT16 ? Float64Array.from(data as Uint16Array, (b) => halfToNumber(b)) : Float64Array.from(data as Float32Array);
}

/** max |a − r| / max |r|. */
function maxRelErr(a: Float64Array, r: Float64Array): number {
  let err = 0;
  let scale = 0;
  for (let i = 0; i < r.length; i++) {
    err = Math.max(err, Math.abs(a[i]! - r[i]!));
    scale = Math.max(scale, Math.abs(r[i]!));
  }
  return err / Math.max(scale, 1e-30);
}

const geometries: (Geometry & { op: 'Conv' | 'ConvTranspose' })[] = [
  { name: '3×3 pads 1, 16 → 16 channels', x: [2, 16, 7, 6], w: [16, 16, 3, 3], pads: [1, 1, 1, 1], op: 'Conv' },
  { name: '3×3 asymmetric pads, 8 → 8', x: [2, 8, 6, 7], w: [8, 8, 3, 3], pads: [2, 0, 1, 2], op: 'Conv' },
  { name: '3×3 dilations 2, pads beyond the reach', x: [2, 8, 8, 7], w: [8, 8, 3, 3], dilations: [2, 2], pads: [5, 1, 0, 3], op: 'Conv' },
  { name: '5×3 groups 2, 8 → 8 per group', x: [2, 16, 8, 6], w: [16, 8, 5, 3], group: 2, pads: [2, 1, 2, 1], op: 'Conv' },
  { name: 'depthwise 3×3, 16 channels', x: [2, 16, 6, 6], w: [16, 1, 3, 3], group: 16, pads: [1, 1, 1, 1], op: 'Conv' },
  { name: '1×1, 8 → 16', x: [2, 8, 5, 4], w: [16, 8, 1, 1], op: 'Conv' },
  { name: '3×3 strides 2, pads 1', x: [2, 8, 7, 8], w: [8, 8, 3, 3], strides: [2, 2], pads: [1, 1, 1, 1], op: 'ConvTranspose' },
  { name: '3×3, 2 gradient channels from 16', x: [2, 2, 6, 6], w: [16, 2, 3, 3], pads: [1, 1, 1, 1], op: 'ConvTranspose' },
];

describe('Conv input gradient paths against a naive float64 adjoint', () => {
  for (const [index, g] of geometries.entries()) {
    for (const dataType of [FLOAT, FLOAT16]) {
      for (const weightSource of ['baked', 'flipped at run time', 'graph input'] as const) {
        if (g.op === 'ConvTranspose' && weightSource !== 'baked') continue;
        it(`${g.name}, ${dataType === FLOAT ? 'FLOAT' : 'FLOAT16'}, weight ${weightSource} (${g.op})`, async () => {
          const rng = new Rng(500 + index);
          const wValues = representable(rng, g.w.reduce((a, b) => a * b, 1), dataType);
          const gy = representable(rng, yDims(g).reduce((a, b) => a * b, 1), dataType);
          const weight = makeTensor('w', dataType, [...g.w], wValues);
          // 'baked': the probe builder's view (the weight is no graph input); 'flipped at run time': graph inputs
          // unknown (buildVjpModel); 'graph input': the weight is fed at run time.
          const graphInputs = weightSource === 'baked' ? ['gy'] : weightSource === 'graph input' ? ['gy', 'w'] : undefined;
          const run = runConvRule(convNode(g), g, dataType, weight, graphInputs);
          const ops = run.emitter.nodes.map((n) => n.opType);
          expect(ops).toContain(g.op);
          expect(ops).not.toContain(g.op === 'Conv' ? 'ConvTranspose' : 'Conv');
          if (g.op === 'Conv') expect(run.emitter.initializers.some((t) => t.name.includes('conv_input_grad_weight'))).toBe(weightSource === 'baked');
          const got = await runGradient(run, g, dataType, weight, gy, weightSource === 'graph input' ? wValues : undefined);
          const ref = naiveInputGrad(g, gy, wValues);
          // float32: accumulation-order rounding only. float16: the result is rounded to half precision (unit
          // roundoff 2^-11 ≈ 4.9e-4 of each element, far below the largest).
          expect(maxRelErr(got, ref)).toBeLessThan(dataType === FLOAT ? 1e-5 : 1e-3);
        });
      }
    }
  }
});

describe('the baked input-gradient weight', () => {
  for (const dataType of [FLOAT, FLOAT16, DOUBLE]) {
    for (const [group, M, Cg] of [
      [1, 3, 4],
      [2, 4, 3],
      [5, 5, 1],
    ] as const) {
      it(`is W'[g·Cg + c, m, i, j] = W[g·Mg + m, c, kh−1−i, kw−1−j] bit for bit (type ${dataType}, group ${group}${group === 2 ? ', unaligned raw_data' : ''})`, () => {
        const [kh, kw] = [3, 2];
        const g: Geometry = { name: '', x: [1, group * Cg, 5, 5], w: [M, Cg, kh, kw], pads: [1, 1, 1, 1], group };
        const n = M * Cg * kh * kw;
        // Distinct values with full mantissas (random bits), so a misplaced or converted element shows.
        const rng = new Rng(17 + group);
        const src = new TensorBuffer(dataType, [M, Cg, kh, kw]);
        for (let i = 0; i < src.bytes.length; i++) src.bytes[i] = rng.int(256);
        // Keep every element finite (no NaN payloads to compare): clear the top exponent bit.
        const hi = src.elemSize - 1;
        for (let i = 0; i < n; i++) src.bytes[i * src.elemSize + hi]! &= 0xbf;
        const weight = makeTensor('w', dataType, [M, Cg, kh, kw], src);
        if (group === 2) {
          // raw_data at an odd byte offset (as when it is a view into a parsed file)
          const shifted = new Uint8Array(src.bytes.length + 1);
          shifted.set(src.bytes, 1);
          weight.rawData = shifted.subarray(1);
        }
        const run = runConvRule(convNode(g), g, dataType, weight, ['gy']);
        const baked = run.emitter.initializers.find((t) => t.name.includes('conv_input_grad_weight'));
        expect(baked).toBeDefined();
        const Mg = M / group;
        expect(baked!.dims.map(Number)).toEqual([group * Cg, Mg, kh, kw]);
        expect(baked!.dataType).toBe(dataType);
        const out = baked!.rawData;
        const size = src.elemSize;
        for (let gi = 0; gi < group; gi++) {
          for (let c = 0; c < Cg; c++) {
            for (let m = 0; m < Mg; m++) {
              for (let i = 0; i < kh; i++) {
                for (let j = 0; j < kw; j++) {
                  const to = (((gi * Cg + c) * Mg + m) * kh + i) * kw + j;
                  const from = (((gi * Mg + m) * Cg + c) * kh + (kh - 1 - i)) * kw + (kw - 1 - j);
                  expect([...out.subarray(to * size, (to + 1) * size)]).toEqual([...src.bytes.subarray(from * size, (from + 1) * size)]);
                }
              }
            }
          }
        }
      });
    }
  }

  it('is read from typed fields (float_data) as well as raw_data', () => {
    const g: Geometry = { name: '', x: [1, 2, 4, 4], w: [2, 2, 2, 2], pads: [0, 0, 0, 0] };
    const values = Array.from({ length: 16 }, (_, i) => i + 0.5);
    const weight = makeTensor('w', FLOAT, [2, 2, 2, 2], values, { typed: true });
    expect(weight.rawData.length).toBe(0);
    const run = runConvRule(convNode(g), g, FLOAT, weight, ['gy']);
    const baked = run.emitter.initializers.find((t) => t.name.includes('conv_input_grad_weight'))!;
    const got = Array.from(new Float32Array(baked.rawData.slice().buffer));
    // W'[c, m, i, j] = W[m, c, 1 − i, 1 − j]
    const expected = Array.from({ length: 16 }, (_, k) => {
      const [c, m, i, j] = [k >> 3, (k >> 2) & 1, (k >> 1) & 1, k & 1];
      return values[((m * 2 + c) * 2 + (1 - i)) * 2 + (1 - j)]!;
    });
    expect(got).toEqual(expected);
  });
});

describe('a probe whose gradient passes a stride-1 conv', () => {
  // x → conv1 → Relu → conv2 (the site's next layer) → Relu → conv3 (3×3 pads 1, 8 → 8: its input gradient is the
  // baked-weight Conv) → GlobalAveragePool → Flatten → Gemm.
  const [N, m0, m1, m2, H, classes] = [3, 2, 4, 8, 6, 3];
  function model(w3: Float64Array, w3Input: boolean) {
    const rng = new Rng(90);
    const b = new GraphBuilder(FLOAT);
    b.input('x', ['N', m0, H, H]);
    const z1 = b.op1('Conv', ['x', b.init([m1, m0, 3, 3], rng.fillNormal(new Float64Array(m1 * m0 * 9)))], { pads: [1, 1, 1, 1] }, 'conv1');
    const z2 = b.op1('Conv', [b.op1('Relu', [z1]), b.init([m2, m1, 3, 3], rng.fillNormal(new Float64Array(m2 * m1 * 9)))], { pads: [1, 1, 1, 1] }, 'conv2');
    const w3Name = b.init([m2, m2, 3, 3], w3, 'conv3_w');
    if (w3Input) b.input(w3Name, [m2, m2, 3, 3]);
    const z3 = b.op1('Conv', [b.op1('Relu', [z2]), w3Name], { pads: [1, 1, 1, 1] }, 'conv3');
    const flat = b.op1('Flatten', [b.op1('GlobalAveragePool', [z3])]);
    b.output(b.op1('Gemm', [flat, b.init([m2, classes], rng.fillNormal(new Float64Array(m2 * classes)))], {}, 'fc'), ['N', classes]);
    return b.build();
  }
  const rng = new Rng(91);
  const x = new ort.Tensor('float32', Float32Array.from(rng.fillNormal(new Float64Array(N * m0 * H * H))), [N, m0, H, H]);
  const labels = new ort.Tensor('int64', BigInt64Array.from([0n, 2n, 1n]), [N]);
  const wA = rng.fillNormal(new Float64Array(m2 * m2 * 9));
  const wB = rng.fillNormal(new Float64Array(m2 * m2 * 9));

  async function statistic(w3: Float64Array, w3Input: boolean): Promise<{ value: Float64Array; baked: boolean; readsWeight: string[] }> {
    const probe = await buildProbe(model(w3, w3Input), { sites: [{ current: 'conv1', next: 'conv2', name: 'site' }], loss: { kind: 'ce-logits' } });
    const generated = probe.model.graph!.node.filter((n) => n.name.startsWith('gm_probe/'));
    expect(generated.map((n) => n.opType)).not.toContain('ConvTranspose');
    const session = await ort.InferenceSession.create(toBinary(ModelProtoSchema, probe.model));
    const out = (await session.run({ x, [probe.labelsInput]: labels }))[probe.outputs[0]!.output]!;
    await session.release();
    return {
      value: Float64Array.from(out.data as Float32Array),
      baked: probe.model.graph!.initializer.some((t) => t.name.includes('conv_input_grad_weight')),
      readsWeight: generated.filter((n) => n.input.includes('conv3_w')).map((n) => n.opType),
    };
  }

  it('bakes the flipped weight, with the statistic of the weight flipped by nodes', async () => {
    const baked = await statistic(wA, false);
    expect(baked.baked).toBe(true);
    expect(baked.readsWeight).toEqual([]);
    // Listed as a graph input, the initializer is only a default a run may override (onnxruntime-node itself does not
    // let a run feed it): nothing is baked, the gradient flips the weight tensor with nodes.
    const flipped = await statistic(wA, true);
    expect(flipped.baked).toBe(false);
    expect(flipped.readsWeight).toEqual(['Transpose']);
    expect(maxRelErr(baked.value, flipped.value)).toBeLessThan(1e-5);
    // And the statistic depends on that weight (the comparison above is not vacuous).
    expect(maxRelErr((await statistic(wB, false)).value, baked.value)).toBeGreaterThan(1e-2);
  });
});
