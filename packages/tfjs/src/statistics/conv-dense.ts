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
import { hasSpatialBetween, inputShapeOf, outputShapeOf, siteLayers } from '../sites/core-site.js';
import type { TfjsGrowthSite } from '../sites/types.js';
import { pair, spatialRouting } from './conv-tap.js';
import { convPatches } from './patches.js';

type Config = Record<string, unknown>;

/**
 * Σ over the chunk of the growth-matrix numerator of a conv-dense site, `[P·n2 × fanIn]` row-major with row index
 * p·n2 + o (the (b_r, b_c, c_out) order of the equivalent conv).
 *
 * @param x - the current conv's input `[B, H0, W0, m0]`
 * @param g - per-example gradients of the dense layer's pre-activation `[B, n2]` (each example's own loss)
 */
export function convDenseSum(model: tfl.LayersModel, site: TfjsGrowthSite, x: tf.Tensor4D, g: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const { current } = siteLayers(model, site);
    const c1 = current.getConfig() as Config;
    const B = x.shape[0];
    const patches = convPatches(x, pair(c1['kernelSize']), pair(c1['strides'] ?? 1), (c1['padding'] ?? 'valid') as 'valid' | 'same');
    const fanIn = patches.shape[2];
    const mid = outputShapeOf(current);
    const hw1 = Number(mid[1]) * Number(mid[2]);
    const flatten = site.between.find((b) => b.role === 'flatten' || b.role === 'global-pool')!;
    // Flatten: P = Hf·Wf positions; global pooling: a single position (the pooled map is 1×1).
    const fs = flatten.role === 'flatten' ? inputShapeOf(modelGraph(model).byName.get(flatten.name)!.layer) : [null, 1, 1];
    const P = Number(fs[1]) * Number(fs[2]);
    // z[p, n, i] = Σ_u R[u, p] patch_n(u)[i]
    let z: tf.Tensor3D;
    if (!hasSpatialBetween(site)) {
      z = tf.transpose(patches, [1, 0, 2]);
    } else {
      const routing = spatialRouting(model, site, [Number(fs[1]), Number(fs[2])]);
      const r = tf.tensor2d(routing.matrix, [routing.rows, routing.cols]);
      const flat = tf.reshape(tf.transpose(patches, [1, 0, 2]), [hw1, B * fanIn]);
      z = tf.reshape(tf.matMul(tf.transpose(r), flat), [P, B, fanIn]);
    }
    const n2 = g.shape[1];
    const gt = tf.tile(tf.reshape(tf.transpose(g), [1, n2, B]), [P, 1, 1]);
    return tf.reshape(tf.matMul(gt, z), [P * n2, fanIn]);
  });
}
