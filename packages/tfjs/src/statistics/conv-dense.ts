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
import { pair, throughSpatialLayers } from './conv-tap.js';

type Config = Record<string, unknown>;

/**
 * Input patches of a conv, `[B, H1·W1, k1h·k1w·m0]` in (a_r, a_c, c_in) order, using the padding tfjs applies.
 */
export function convPatches(x: tf.Tensor4D, kernel: [number, number], strides: [number, number], padding: 'valid' | 'same'): tf.Tensor3D {
  return tf.tidy(() => {
    const [B, , , m0] = x.shape;
    const info = tf.backend_util.computeConv2DInfo(x.shape, [kernel[0], kernel[1], m0, 1], strides, 1, padding, undefined, false, 'channelsLast');
    const { top, bottom, left, right } = info.padInfo;
    const xp = top || bottom || left || right ? tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]]) : x;
    const [sh, sw] = strides;
    const h1 = info.outHeight;
    const w1 = info.outWidth;
    const taps: tf.Tensor4D[] = [];
    for (let ar = 0; ar < kernel[0]; ar++) {
      for (let ac = 0; ac < kernel[1]; ac++) {
        taps.push(tf.stridedSlice(xp, [0, ar, ac, 0], [B, ar + sh * (h1 - 1) + 1, ac + sw * (w1 - 1) + 1, m0], [1, sh, sw, 1]) as tf.Tensor4D);
      }
    }
    return tf.reshape(taps.length === 1 ? taps[0]! : tf.concat(taps, 3), [B, h1 * w1, kernel[0] * kernel[1] * m0]);
  });
}

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
    const flatten = site.between.find((b) => b.role === 'flatten')!;
    const fs = inputShapeOf(modelGraph(model).byName.get(flatten.name)!.layer);
    const P = Number(fs[1]) * Number(fs[2]);
    // z[p, n, i] = Σ_u R[u, p] patch_n(u)[i]
    let z: tf.Tensor3D;
    if (!hasSpatialBetween(site)) {
      z = tf.transpose(patches, [1, 0, 2]);
    } else {
      const identity = tf.reshape(tf.eye(P), [1, Number(fs[1]), Number(fs[2]), P]) as tf.Tensor4D;
      const routing = tf.reshape(throughSpatialLayers(model, site, identity), [hw1, P]);
      const flat = tf.reshape(tf.transpose(patches, [1, 0, 2]), [hw1, B * fanIn]);
      z = tf.reshape(tf.matMul(routing, flat, true, false), [P, B, fanIn]);
    }
    const n2 = g.shape[1];
    const gt = tf.tile(tf.reshape(tf.transpose(g), [1, n2, B]), [P, 1, 1]);
    return tf.reshape(tf.matMul(gt, z), [P * n2, fanIn]);
  });
}
