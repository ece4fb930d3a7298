/**
 * The exact growth statistic of a Conv2D→…→Flatten→Dense site without materialising the (very sparse) tap-scattered
 * map: with the dense layer viewed as a conv whose kernel covers the flattened map, tap p (a flattened position) of
 * output o reads the intermediate map only where the in-between layers route position p, so
 *
 *   Σ_n M[(p, o), i] = Σ_n g_n[o] · Σ_u R[u, p] · patch_n(u)[i]
 *
 * with R the routing of the in-between spatial layers (pooling, depthwise) at a constant channel (identity when there
 * are none) and patch_n(u) the current conv's input patch at intermediate position u, in (a_r, a_c, c_in) order.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { modelGraph } from '../model/graph.js';
import { inputShapeOf } from '../sites/core-site.js';
import type { TfjsGrowthSite } from '../sites/types.js';
import { routedPatches } from './conv-tap.js';

/**
 * Σ over the chunk of the growth-matrix numerator of a conv-dense site, `[P·n2 × fanIn]` row-major with row index
 * p·n2 + o (the (b_r, b_c, c_out) order of the equivalent conv).
 *
 * @param x - the current conv's input `[B, H0, W0, m0]`
 * @param g - per-example gradients of the dense layer's pre-activation `[B, n2]` (each example's own loss)
 */
export function convDenseSum(model: tfl.LayersModel, site: TfjsGrowthSite, x: tf.Tensor4D, g: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const flatten = site.between.find((b) => b.role === 'flatten' || b.role === 'global-pool')!;
    // Flatten: P = Hf·Wf positions; global pooling: a single position (the pooled map is 1×1).
    const fs = flatten.role === 'flatten' ? inputShapeOf(modelGraph(model).byName.get(flatten.name)!.layer) : [null, 1, 1];
    const [hf, wf] = [Number(fs[1]), Number(fs[2])];
    // z[n, p, i] = Σ_u R[u, p] patch_n(u)[i]
    const z = routedPatches(model, site, x, [hf, wf]);
    const [B, , , fanIn] = z.shape;
    const P = hf * wf;
    const n2 = g.shape[1];
    // One matmul gᵀ·z over the batch, then (o, p, i) → (p, o, i).
    const sum = tf.matMul(tf.transpose(g), tf.reshape(z, [B, P * fanIn]));
    return tf.reshape(tf.transpose(tf.reshape(sum, [n2, P, fanIn]), [1, 0, 2]), [P * n2, fanIn]) as tf.Tensor2D;
  });
}
