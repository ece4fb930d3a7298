/**
 * Sample rows of conv statistics: one (g, h) row per (example, intermediate position), g the next layer's tap
 * gradients carried back to that position and h the current conv's input patch there.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { hasSpatialBetween, inputShapeOf, siteLayers } from '../sites/core-site.js';
import { modelGraph } from '../model/graph.js';
import type { TfjsGrowthSite } from '../sites/types.js';
import { pair, spatialRouting } from './conv-tap.js';
import { convPatches } from './patches.js';

type Config = Record<string, unknown>;

/** `[rows × cols]` row-major → `[cols × rows]` row-major. */
export function transposeFlat(data: ArrayLike<number>, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]!;
  return out;
}

/** Rows of `routed` `[B, U, F]` (g) and `patches` `[B, U, fanIn]` (h), in (example, position) order. */
export function* tensorRows(routed: tf.Tensor3D, patches: tf.Tensor3D): Generator<{ g: Float32Array; h: Float32Array }> {
  const [B, U, F] = routed.shape;
  const fanIn = patches.shape[2];
  const gd = routed.dataSync() as Float32Array;
  const hd = patches.dataSync() as Float32Array;
  for (let r = 0; r < B * U; r++) yield { g: gd.subarray(r * F, (r + 1) * F), h: hd.subarray(r * fanIn, (r + 1) * fanIn) };
}

/**
 * Rows of a conv→flatten/global pooling→dense site: at intermediate position u of example n,
 * g[(p, o)] = R[u, p] · g_n[o] (R the routing of the in-between spatial layers, identity without them).
 */
export function* convDenseRows(model: tfl.LayersModel, site: TfjsGrowthSite, x: tf.Tensor4D, g: tf.Tensor2D): Generator<{ g: Float32Array; h: Float32Array }> {
  const { current } = siteLayers(model, site);
  const c1 = current.getConfig() as Config;
  const patches = convPatches(x, pair(c1['kernelSize']), pair(c1['strides'] ?? 1), (c1['padding'] ?? 'valid') as 'valid' | 'same');
  const [B, U, fanIn] = patches.shape;
  const hd = patches.dataSync() as Float32Array;
  patches.dispose();
  const flatten = site.between.find((b) => b.role === 'flatten' || b.role === 'global-pool')!;
  const fs = flatten.role === 'flatten' ? inputShapeOf(modelGraph(model).byName.get(flatten.name)!.layer) : [null, 1, 1];
  const nextInput: [number, number] = [Number(fs[1]), Number(fs[2])];
  const P = nextInput[0] * nextInput[1];
  const routing = hasSpatialBetween(site) ? spatialRouting(model, site, nextInput).matrix : undefined;
  const n2 = g.shape[1];
  const gd = g.dataSync();
  const row = new Float32Array(P * n2);
  for (let n = 0; n < B; n++) {
    for (let u = 0; u < U; u++) {
      row.fill(0);
      for (let p = 0; p < P; p++) {
        const w = routing ? routing[u * P + p]! : u === p ? 1 : 0;
        if (w === 0) continue;
        for (let o = 0; o < n2; o++) row[p * n2 + o] = w * gd[n * n2 + o]!;
      }
      yield { g: row, h: hd.subarray((n * U + u) * fanIn, (n * U + u + 1) * fanIn) };
    }
  }
}
