/**
 * Independent check of the weight layouts and conv geometry exposed by growthSite: the change in the next layer's
 * output caused by new units (non-zero incoming and outgoing weights, identity between the layers) is computed
 * directly from the core's conventions (incoming (a_r, a_c, c_in), outgoing (b_r, b_c, c_out), u = s2·y + b − p2)
 * and compared with onnxruntime running the original and the widened model.
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Matrix, Rng, type ConvPairGeometry, type NewUnits } from '@gradmax/core';
import { findSite, growthSite, loadModel, makeInputs, runModel, saveModel, widen } from '@gradmax/onnx';
import { GraphBuilder } from './helpers.js';
import { saveTemp } from './grow-helpers.js';

/** Contribution of new units to the next layer's output, [N, m2, H2, W2] flattened, from the core conventions. */
function predicted(x: Float32Array, n: number, g: ConvPairGeometry, u: NewUnits): Float64Array {
  const [H0, W0] = g.inputSize;
  const [H1, W1] = g.midSize;
  const [H2, W2] = g.outputSize;
  const [k1h, k1w] = g.kernel1;
  const [k2h, k2w] = g.kernel2;
  const m0 = g.inChannels;
  const m2 = g.outChannels;
  const k = u.incoming.rows;
  const fanIn = k1h * k1w * m0;
  const fanOut = k2h * k2w * m2;
  const out = new Float64Array(n * m2 * H2 * W2);
  for (let b = 0; b < n; b++) {
    // new channels' intermediate maps
    const mid = new Float64Array(k * H1 * W1);
    for (let j = 0; j < k; j++)
      for (let y = 0; y < H1; y++)
        for (let xx = 0; xx < W1; xx++) {
          let s = u.incomingBias[j]!;
          for (let ar = 0; ar < k1h; ar++)
            for (let ac = 0; ac < k1w; ac++) {
              const iy = g.stride1[0] * y + ar - g.pad1.top;
              const ix = g.stride1[1] * xx + ac - g.pad1.left;
              if (iy < 0 || iy >= H0 || ix < 0 || ix >= W0) continue;
              for (let c = 0; c < m0; c++) s += u.incoming.data[j * fanIn + (ar * k1w + ac) * m0 + c]! * x[((b * m0 + c) * H0 + iy) * W0 + ix]!;
            }
          mid[(j * H1 + y) * W1 + xx] = s;
        }
    for (let o = 0; o < m2; o++)
      for (let y = 0; y < H2; y++)
        for (let xx = 0; xx < W2; xx++) {
          let s = 0;
          for (let br = 0; br < k2h; br++)
            for (let bc = 0; bc < k2w; bc++) {
              const uy = g.stride2[0] * y + br - g.pad2.top;
              const ux = g.stride2[1] * xx + bc - g.pad2.left;
              if (uy < 0 || uy >= H1 || ux < 0 || ux >= W1) continue;
              for (let j = 0; j < k; j++) s += u.outgoing.data[((br * k2w + bc) * m2 + o) * k + j]! * mid[(j * H1 + uy) * W1 + ux]!;
            }
          out[((b * m2 + o) * H2 + y) * W2 + xx] = s;
        }
  }
  return out;
}

async function check(build: (b: GraphBuilder) => void, site: string) {
  const b = new GraphBuilder(new Rng(61));
  build(b);
  const file = saveTemp(b.model());
  const model = loadModel(file);
  const s = findSite(model, site);
  expect(s.growable, s.reason).toBe(true);
  expect(s.exactGeometry).toBe(true);
  const gs = growthSite(model, s);
  const rng = new Rng(62);
  const k = 2;
  const units: NewUnits = {
    incoming: Matrix.from(k, gs.fanIn, rng.fillNormal(new Float64Array(k * gs.fanIn))),
    incomingBias: Float64Array.from([0.3, -0.2]),
    outgoing: Matrix.from(gs.fanOut, k, rng.fillNormal(new Float64Array(gs.fanOut * k))),
    report: { strategy: 'layout', site: s.name, count: k, notes: [] },
  };
  widen(model, [{ site: s.name, newUnits: units }]);
  const out = path.join(path.dirname(file), 'w.onnx');
  saveModel(model, out);
  const feeds = makeInputs(loadModel(file), { dims: { N: 2 }, seed: 3 });
  const before = await runModel(file, feeds);
  const after = await runModel(out, feeds);
  const [name, a] = [...before][0]!;
  const diff = after.get(name)!.data.map((v, i) => v - a.data[i]!);
  const want = predicted(feeds.x!.data as Float32Array, 2, gs.conv!, units);
  expect(diff.length).toBe(want.length);
  let err = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(diff[i]! - want[i]!));
    scale = Math.max(scale, Math.abs(want[i]!));
  }
  expect(scale).toBeGreaterThan(0.1);
  expect(err / scale).toBeLessThan(1e-5);
}

describe('layouts and geometry match the core conventions', () => {
  it('Conv (stride 2, asymmetric pads) -> Conv (stride 2, pads)', async () => {
    await check((b) => {
      const x = b.input('x', ['N', 2, 7, 6]);
      const c1 = b.op('Conv', [x, b.weight([3, 2, 3, 2])], { pads: [1, 0, 0, 1], strides: [2, 1] }, 1, 'c1');
      b.output(b.op('Conv', [c1, b.weight([4, 3, 2, 3])], { pads: [0, 1, 1, 1], strides: [1, 2] }, 1, 'c2'));
    }, 'c1');
  });

  it('Conv -> Flatten -> Gemm(transB=1, alpha) as a conv covering the whole map', async () => {
    await check((b) => {
      const x = b.input('x', ['N', 2, 5, 4]);
      const c1 = b.op('Conv', [x, b.weight([3, 2, 2, 2])], { pads: [0, 0, 1, 0] }, 1, 'c1');
      const f = b.op('Flatten', [c1]);
      const y = b.op('Gemm', [f, b.weight([4, 3 * 5 * 3])], { transB: 1, alpha: 0.5 }, 1, 'fc');
      // reshape [N, 4] -> [N, 4, 1, 1] so that the prediction's NCHW layout applies
      b.output(b.op('Reshape', [y, b.int64([0, 4, 1, 1])]));
    }, 'c1');
  });
});
