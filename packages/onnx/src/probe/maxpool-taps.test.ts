/**
 * The MaxPool gradient without the Indices output (per-window-tap routing: one-hot depthwise Conv, ArgMax over the
 * taps, one depthwise ConvTranspose), taken for overlapping windows before opset 16, against a gradient routed by
 * hand to the FIRST (row-major) maximum of each window — inputs full of ties, and border windows whose inputs are all
 * negative, so that a padded tap (a 0 from the Conv's zero padding) would win if it were not excluded — and against
 * the Indices path of the same graph at opset 17.
 */
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { toBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema } from 'onnx-buf';
import type { ModelProto } from 'onnx-buf';
import { Rng } from '@gradmax/core';
import { GraphBuilder } from './__tests__/graph.js';
import { FLOAT } from './__tests__/fd.js';
import { relErr } from './__tests__/rel-err.js';
import { buildVjpModel } from './index.js';

interface PoolCase {
  name: string;
  size: [number, number];
  kernel: [number, number];
  strides?: [number, number];
  /** top, left, bottom, right */
  pads?: [number, number, number, number];
  dilations?: [number, number];
  ceil?: boolean;
  autoPad?: string;
  /** A Relu before the pool (its mask is then applied to the pooled gradient). */
  relu?: boolean;
  opset?: number;
}

const cases: PoolCase[] = [
  { name: '3×3/2 pads 1 (overlapping)', size: [9, 8], kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
  { name: '2×2/1', size: [6, 7], kernel: [2, 2] },
  { name: '3×3/2 asymmetric pads', size: [8, 9], kernel: [3, 3], strides: [2, 2], pads: [1, 0, 2, 1] },
  { name: 'kernel 2×3, strides 1×2, asymmetric pads', size: [7, 9], kernel: [2, 3], strides: [1, 2], pads: [0, 1, 1, 2] },
  { name: '3×2/1 with dilations 2×1 and pads', size: [9, 7], kernel: [3, 2], dilations: [2, 1], pads: [2, 1, 1, 0] },
  { name: '3×3/2 ceil_mode', size: [8, 10], kernel: [3, 3], strides: [2, 2], ceil: true },
  { name: '3×3/2 ceil_mode with pads', size: [9, 8], kernel: [3, 3], strides: [2, 2], pads: [1, 1, 0, 1], ceil: true },
  { name: '3×3/2 auto_pad SAME_UPPER', size: [7, 8], kernel: [3, 3], strides: [2, 2], autoPad: 'SAME_UPPER' },
  { name: 'Relu → 3×3/2 pads 1', size: [9, 9], kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], relu: true },
  { name: '3×3/2 pads 1 at opset 11', size: [8, 8], kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], opset: 11 },
];

async function run(model: ModelProto, feeds: Record<string, ort.Tensor>): Promise<ort.InferenceSession.OnnxValueMapType> {
  const session = await ort.InferenceSession.create(toBinary(ModelProtoSchema, model));
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

describe('MaxPool gradient without Indices: first window maximum, ties and padding', () => {
  cases.forEach((pc, caseIndex) => {
    it(pc.name, async () => {
      const rng = new Rng(900 + caseIndex);
      const [N, C] = [2, 3];
      const [H, W] = pc.size;
      const [kh, kw] = pc.kernel;
      const [sh, sw] = pc.strides ?? [1, 1];
      const [dh, dw] = pc.dilations ?? [1, 1];
      const attrs: Record<string, number | number[] | string> = { kernel_shape: pc.kernel, strides: [sh, sw], dilations: [dh, dw] };
      if (pc.autoPad) attrs.auto_pad = pc.autoPad;
      else attrs.pads = pc.pads ?? [0, 0, 0, 0];
      if (pc.ceil) attrs.ceil_mode = 1;
      const build = (opset: number): ModelProto => {
        const b = new GraphBuilder(FLOAT);
        b.input('x', [N, C, H, W]);
        const pooled = b.op1('MaxPool', [pc.relu ? b.op1('Relu', ['x']) : 'x'], attrs, 'pool');
        b.output(pooled);
        return b.build(opset);
      };
      // Small integers: many tied maxima; the first row and column of every map negative, so that windows reaching
      // into the padding hold only negative inputs.
      const x = new Float32Array(N * C * H * W).map(() => rng.int(6) - 3);
      for (let nc = 0; nc < N * C; nc++) {
        for (let i = 0; i < H; i++) x[nc * H * W + i * W] = -1 - rng.int(2);
        for (let j = 0; j < W; j++) x[nc * H * W + j] = -1 - rng.int(2);
      }
      const xT = new ort.Tensor('float32', x, [N, C, H, W]);
      const fwd = await run(build(pc.opset ?? 13), { x: xT });
      const yT = Object.values(fwd)[0]!;
      const [Ho, Wo] = yT.dims.slice(2) as [number, number];
      const yv = yT.data as Float32Array;
      const g = new Float32Array(N * C * Ho * Wo).map(() => rng.normal());

      // Leading pads as onnxruntime resolves them (SAME_UPPER puts the smaller half first).
      let [pt, pl] = pc.pads ?? [0, 0];
      if (pc.autoPad === 'SAME_UPPER') {
        pt = Math.floor(Math.max(0, (Ho - 1) * sh + (kh - 1) * dh + 1 - H) / 2);
        pl = Math.floor(Math.max(0, (Wo - 1) * sw + (kw - 1) * dw + 1 - W) / 2);
      }
      const expected = new Float64Array(N * C * H * W);
      let ties = 0;
      let paddedAllNegative = 0;
      for (let nc = 0; nc < N * C; nc++) {
        for (let oy = 0; oy < Ho; oy++) {
          for (let ox = 0; ox < Wo; ox++) {
            let best = -Infinity;
            let at = -1;
            let count = 0;
            let padded = false;
            for (let i = 0; i < kh; i++) {
              for (let j = 0; j < kw; j++) {
                const r = sh * oy - pt + i * dh;
                const c = sw * ox - pl + j * dw;
                if (r < 0 || r >= H || c < 0 || c >= W) {
                  padded = true;
                  continue;
                }
                const v = pc.relu ? Math.max(0, x[(nc * H + r) * W + c]!) : x[(nc * H + r) * W + c]!;
                if (v > best) [best, at, count] = [v, (nc * H + r) * W + c, 1];
                else if (v === best) count++;
              }
            }
            const o = (nc * Ho + oy) * Wo + ox;
            expect(yv[o]).toBe(best);
            if (count > 1) ties++;
            if (padded && best < 0) paddedAllNegative++;
            if (!pc.relu || best > 0) expected[at] += g[o]!;
          }
        }
      }
      expect(ties).toBeGreaterThan(10);
      if (!pc.relu && ((pc.pads ?? []).some((p) => p > 0) || pc.autoPad)) expect(paddedAllNegative).toBeGreaterThan(0);
      expect(Math.hypot(...expected)).toBeGreaterThan(1);

      const gradient = async (opset: number, indices: boolean): Promise<Float32Array> => {
        const vjp = await buildVjpModel(build(opset), { wrt: ['x'] });
        const pool = vjp.model.graph!.node.find((n) => n.opType === 'MaxPool')!;
        expect(pool.output.filter((o) => o).length).toBe(indices ? 2 : 1);
        expect(vjp.model.graph!.node.some((n) => n.opType === 'ConvTranspose')).toBe(!indices);
        const [output, cot] = Object.entries(vjp.cotangents)[0]!;
        expect(output).toBe(Object.keys(fwd)[0]);
        const res = await run(vjp.model, { x: xT, [cot]: new ort.Tensor('float32', g, [N, C, Ho, Wo]) });
        return res[vjp.gradients.x!]!.data as Float32Array;
      };
      // Every case overlaps: the per-tap path before opset 16.
      expect(relErr(await gradient(pc.opset ?? 13, false), expected, 1e-300)).toBeLessThan(1e-6);
      // The Indices path of the same graph at opset 17 routes to the same elements.
      expect(relErr(await gradient(17, true), expected, 1e-300)).toBeLessThan(1e-6);
    });
  });
});
