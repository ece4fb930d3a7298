/**
 * The exact conv growth statistic of a Conv2D→Conv2D site as a tap gradient: the next conv's output gradient is
 * tap-scattered with a one-hot conv2dTranspose (method reference §2.5), carried back through pooling/depthwise layers
 * in between (their backward pass at a constant channel), and reduced with one conv weight-gradient of the current
 * conv's geometry.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { tapScatterKernel, tapScatterKernelShape } from '@gradmax/core';
import { conv2dBackpropFilterViaConv } from '../backend/conv2d-backprop-filter.js';
import { modelGraph } from '../model/graph.js';
import { inputShapeOf, siteGeometry, siteLayers } from '../sites/core-site.js';
import type { TfjsGrowthSite } from '../sites/types.js';

type Config = Record<string, unknown>;

/** `[h, w]` from a number or a pair. */
export function pair(v: unknown): [number, number] {
  return Array.isArray(v) ? [Number(v[0]), Number(v[1] ?? v[0])] : [Number(v), Number(v)];
}

/** Back-propagates a tap-scattered map through the spatial layers between the two convs (pooling, depthwise). */
export function throughSpatialLayers(model: tfl.LayersModel, site: TfjsGrowthSite, t: tf.Tensor4D): tf.Tensor4D {
  const graph = modelGraph(model);
  let cur = t;
  const spatial = site.between.filter((b) => b.role === 'pool' || b.role === 'depthwise').reverse();
  for (const b of spatial) {
    const layer = graph.byName.get(b.name)!.layer;
    const c = layer.getConfig() as Config;
    const s = inputShapeOf(layer);
    const F = cur.shape[3];
    const zeros = tf.zeros([cur.shape[0], Number(s[1]), Number(s[2]), F]) as tf.Tensor4D;
    let forward: (x: tf.Tensor4D) => tf.Tensor4D;
    if (b.role === 'pool') {
      const size = pair(c['poolSize'] ?? 2);
      const strides = pair(c['strides'] ?? c['poolSize'] ?? 2);
      const padding = (c['padding'] ?? 'valid') as 'valid' | 'same';
      forward = b.className === 'MaxPooling2D' ? (x) => tf.maxPool(x, size, strides, padding) : (x) => tf.avgPool(x, size, strides, padding);
    } else {
      const [kh, kw] = pair(c['kernelSize']);
      const delta = new Float32Array(kh * kw * F);
      const centre = Math.floor((kh - 1) / 2) * kw + Math.floor((kw - 1) / 2);
      delta.fill(1, centre * F, (centre + 1) * F);
      const kernel = tf.tensor4d(delta, [kh, kw, F, 1]);
      const strides = pair(c['strides'] ?? 1);
      const padding = (c['padding'] ?? 'valid') as 'valid' | 'same';
      forward = (x) => tf.depthwiseConv2d(x, kernel, strides, padding);
    }
    const prev = cur;
    cur = tf.grad(forward as (x: tf.Tensor) => tf.Tensor)(zeros, prev) as tf.Tensor4D;
  }
  return cur;
}

/** Tap gradient `[k1h, k1w, m0, k2h·k2w·m2]` (summed over the chunk) of a conv site. */
export function convTapGradient(model: tfl.LayersModel, site: TfjsGrowthSite, x: tf.Tensor4D, g: tf.Tensor): tf.Tensor4D {
  return tf.tidy(() => {
    const { current, next } = siteLayers(model, site);
    const c1 = current.getConfig() as Config;
    const B = x.shape[0];
    const geometry = siteGeometry(model, site);
    const c2 = next.getConfig() as Config;
    const scatter = { ...geometry, kernel2: pair(c2['kernelSize']), outChannels: g.shape[3]! };
    const kShape = tapScatterKernelShape(scatter);
    const kernel = tf.tensor4d(tapScatterKernel(scatter), kShape);
    const nIn = inputShapeOf(next);
    const t = tf.conv2dTranspose(g as tf.Tensor4D, kernel, [B, Number(nIn[1]), Number(nIn[2]), kShape[2]], pair(c2['strides'] ?? 1), (c2['padding'] ?? 'valid') as 'valid' | 'same');
    const t1 = throughSpatialLayers(model, site, t);
    return conv2dBackpropFilterViaConv(
      x,
      t1,
      [...pair(c1['kernelSize']), x.shape[3], t1.shape[3]],
      pair(c1['strides'] ?? 1),
      (c1['padding'] ?? 'valid') as 'valid' | 'same',
    );
  });
}

