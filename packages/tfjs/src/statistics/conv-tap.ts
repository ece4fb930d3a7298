/**
 * The exact conv growth statistic of a Conv2D→Conv2D site as a tap gradient: the next conv's output gradient is
 * tap-scattered (method reference §2.5), carried back through pooling/depthwise layers in between (their backward pass
 * at a constant channel), and reduced against the current conv's input patches (its weight gradient).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { ShapeMismatchError } from '@gradmax/core';
import { modelGraph } from '../model/graph.js';
import { conv2dBackpropFilterViaConv } from '../backend/conv2d-backprop-filter.js';
import { hasSpatialBetween, inputShapeOf, outputShapeOf, siteLayers } from '../sites/core-site.js';
import type { TfjsGrowthSite } from '../sites/types.js';
import { blockRoutingJs, tapScatterJs } from './js-kernels.js';
import { convPatches } from './patches.js';

type Config = Record<string, unknown>;

/** `[h, w]` from a number or a pair. */
export function pair(v: unknown): [number, number] {
  return Array.isArray(v) ? [Number(v[0]), Number(v[1] ?? v[0])] : [Number(v), Number(v)];
}

/** Back-propagates a tap-scattered map through the spatial layers between the two convs (pooling, depthwise). */
export function throughSpatialLayers(model: tfl.LayersModel, site: TfjsGrowthSite, t: tf.Tensor4D): tf.Tensor4D {
  const graph = modelGraph(model);
  let cur = t;
  const spatial = site.between.filter((b) => b.role === 'pool' || b.role === 'depthwise' || b.role === 'global-pool').reverse();
  for (const b of spatial) {
    const layer = graph.byName.get(b.name)!.layer;
    const c = layer.getConfig() as Config;
    const s = inputShapeOf(layer);
    const F = cur.shape[3];
    const zeros = tf.zeros([cur.shape[0], Number(s[1]), Number(s[2]), F]) as tf.Tensor4D;
    let forward: (x: tf.Tensor4D) => tf.Tensor4D;
    if (b.role === 'global-pool') {
      // Same ops as the layers: mean / max over the spatial axes (kept as a 1×1 map here).
      forward = b.className === 'GlobalMaxPooling2D' ? (x) => tf.max(x, [1, 2], true) : (x) => tf.mean(x, [1, 2], true);
    } else if (b.role === 'pool') {
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

/**
 * How the spatial layers between the two layers of a site (pooling, depthwise) route gradient from the next layer's
 * input map back to the intermediate map, for a channel that is constant (a new unit): `[H1·W1 × P]` row-major with
 * P = Hn·Wn. The same for every channel and example, so it is computed once on a one-channel-per-position identity.
 */
export function spatialRouting(model: tfl.LayersModel, site: TfjsGrowthSite, nextInput: [number, number]): { matrix: Float32Array; rows: number; cols: number } {
  // The routing depends only on the spatial layers' configs and map sizes, which growth never changes.
  // Map sizes are part of the key: models with dynamic input sizes see several.
  const graph = modelGraph(model);
  const sizes = site.between.map((b) => `${b.name}:${inputShapeOf(graph.byName.get(b.name)!.layer).join('x')}`).join(',');
  const key = `${site.name}|${sizes}|${nextInput.join('x')}|${tf.getBackend()}`;
  let perModel = routingCache.get(model);
  if (!perModel) routingCache.set(model, (perModel = new Map()));
  const hit = perModel.get(key);
  if (hit) return hit;
  const routing = computeRouting(model, site, nextInput);
  perModel.set(key, routing);
  return routing;
}

const routingCache = new WeakMap<tfl.LayersModel, Map<string, { matrix: Float32Array; rows: number; cols: number }>>();

function computeRouting(model: tfl.LayersModel, site: TfjsGrowthSite, nextInput: [number, number]): { matrix: Float32Array; rows: number; cols: number } {
  const [hn, wn] = nextInput;
  const P = hn * wn;
  const routed = tf.tidy(() => throughSpatialLayers(model, site, tf.reshape(tf.eye(P), [1, hn, wn, P]) as tf.Tensor4D));
  const rows = routed.shape[1] * routed.shape[2];
  const matrix = routed.dataSync() as Float32Array;
  routed.dispose();
  return { matrix, rows, cols: P };
}

/** A routing that is one fixed `[s_r × s_c]` mask per next-layer position (non-overlapping pooling). */
export interface BlockRouting {
  stride: [number, number];
  mask: Float32Array;
  /** Intermediate map size `[H1, W1]`. */
  size: [number, number];
}

/**
 * Recognises the routing of a single non-overlapping pooling layer (stride = pool size): intermediate position u gets
 * `mask[u mod s]` times the gradient of position `floor(u / s)`. Returns undefined for any other routing (the
 * caller then uses the layers' own backward pass).
 */
export function blockRouting(model: tfl.LayersModel, site: TfjsGrowthSite, routing: { matrix: Float32Array; rows: number; cols: number }, nextInput: [number, number]): BlockRouting | undefined {
  const spatial = site.between.filter((b) => b.role === 'pool' || b.role === 'depthwise');
  if (spatial.length !== 1 || spatial[0]!.role !== 'pool') return undefined;
  const layer = modelGraph(model).byName.get(spatial[0]!.name)!.layer;
  const c = layer.getConfig() as Config;
  const size = pair(c['poolSize'] ?? 2);
  const stride = pair(c['strides'] ?? c['poolSize'] ?? 2);
  if (size[0] !== stride[0] || size[1] !== stride[1]) return undefined;
  const s1 = inputShapeOf(layer);
  const [h1, w1] = [Number(s1[1]), Number(s1[2])];
  const [hn, wn] = nextInput;
  const [sr, sc] = stride;
  const mask = new Float32Array(sr * sc);
  for (let a = 0; a < sr; a++) for (let b = 0; b < sc; b++) if (a < h1 && b < w1) mask[a * sc + b] = routing.matrix[(a * w1 + b) * routing.cols]!;
  for (let ur = 0; ur < h1; ur++) {
    for (let uc = 0; uc < w1; uc++) {
      const pr = Math.floor(ur / sr);
      const pc = Math.floor(uc / sc);
      for (let p = 0; p < routing.cols; p++) {
        const inBlock = pr < hn && pc < wn && p === pr * wn + pc;
        const expected = inBlock ? mask[(ur - pr * sr) * sc + (uc - pc * sc)]! : 0;
        if (routing.matrix[(ur * w1 + uc) * routing.cols + p] !== expected) return undefined;
      }
    }
  }
  return { stride, mask, size: [h1, w1] };
}

/** Applies a {@link BlockRouting} to `t` `[B, Hn, Wn, F]`, giving `[B, H1·W1, F]` (reshapes and one multiply). */
export function applyBlockRouting(t: tf.Tensor4D, routing: BlockRouting): tf.Tensor3D {
  return tf.getBackend() === 'cpu' ? blockRoutingJs(t, routing.stride, routing.mask, routing.size) : applyBlockRoutingByOps(t, routing);
}

/** {@link applyBlockRouting} with tensor ops (one zero-interleaving pad per non-zero mask entry). */
export function applyBlockRoutingByOps(t: tf.Tensor4D, routing: BlockRouting): tf.Tensor3D {
  return tf.tidy(() => {
    const [B, hn, wn, F] = t.shape;
    const [sr, sc] = routing.stride;
    const [h1, w1] = routing.size;
    // One zero-interleaving pad per non-zero mask entry (a single one for max pooling); no broadcasting.
    const t6 = tf.reshape(t, [B, hn, 1, wn, 1, F]);
    let spread: tf.Tensor | undefined;
    for (let a = 0; a < sr; a++) {
      for (let b = 0; b < sc; b++) {
        const w = routing.mask[a * sc + b]!;
        if (w === 0) continue;
        let part: tf.Tensor = tf.pad(t6, [[0, 0], [0, 0], [a, sr - 1 - a], [0, 0], [b, sc - 1 - b], [0, 0]]);
        if (w !== 1) part = tf.mul(part, w);
        spread = spread ? tf.add(spread, part) : part;
      }
    }
    let up = tf.reshape(spread ?? tf.zeros([B, hn, sr, wn, sc, F]), [B, hn * sr, wn * sc, F]) as tf.Tensor4D;
    if (hn * sr < h1 || wn * sc < w1) up = tf.pad(up, [[0, 0], [0, Math.max(0, h1 - hn * sr)], [0, Math.max(0, w1 - wn * sc)], [0, 0]]);
    if (up.shape[1] !== h1 || up.shape[2] !== w1) up = tf.slice(up, [0, 0, 0, 0], [B, h1, w1, F]);
    return tf.reshape(up, [B, h1 * w1, F]) as tf.Tensor3D;
  });
}

/**
 * Tap scatter of the next conv's output gradient g `[B, H2, W2, m2]` onto its input map `[B, Hn, Wn, k2h·k2w·m2]`:
 * channel block (b_r, b_c) holds g[y] at u = s2·y + b − p2 (zero elsewhere). Same result as a conv2dTranspose with the
 * core's one-hot `tapScatterKernel`, built from a zero-interleaving reshape and shifted slices (no dense conv work).
 */
export function tapScatter(g: tf.Tensor4D, kernel: [number, number], strides: [number, number], padding: 'valid' | 'same', inputSize: [number, number]): tf.Tensor4D {
  return tf.getBackend() === 'cpu' ? tapScatterJs(g, kernel, strides, padding, inputSize) : tapScatterByOps(g, kernel, strides, padding, inputSize);
}

/** {@link tapScatter} with tensor ops (zero-interleaving reshape, pads, slices, one concat). */
export function tapScatterByOps(g: tf.Tensor4D, kernel: [number, number], strides: [number, number], padding: 'valid' | 'same', inputSize: [number, number]): tf.Tensor4D {
  return tf.tidy(() => {
    const [B, h2, w2, m2] = g.shape;
    const [sh, sw] = strides;
    const [hn, wn] = inputSize;
    const info = tf.backend_util.computeConv2DInfo([B, hn, wn, 1], [kernel[0], kernel[1], 1, 1], strides, 1, padding, undefined, false, 'channelsLast');
    // D[s·y] = g[y]: interleave zeros along both spatial axes.
    let d: tf.Tensor4D = g;
    if (sh > 1 || sw > 1) {
      const g6 = tf.reshape(g, [B, h2, 1, w2, 1, m2]);
      d = tf.reshape(tf.pad(g6, [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]), [B, h2 * sh, w2 * sw, m2]);
    }
    const dh = d.shape[1];
    const dw = d.shape[2];
    const blocks: tf.Tensor4D[] = [];
    for (let br = 0; br < kernel[0]; br++) {
      for (let bc = 0; bc < kernel[1]; bc++) {
        // T_b[u] = D[u + o], o = p2 − b.
        const or = info.padInfo.top - br;
        const oc = info.padInfo.left - bc;
        const top = Math.max(0, -or);
        const left = Math.max(0, -oc);
        const bottom = Math.max(0, or + hn - dh);
        const right = Math.max(0, oc + wn - dw);
        const padded = top || left || bottom || right ? tf.pad(d, [[0, 0], [top, bottom], [left, right], [0, 0]]) : d;
        blocks.push(tf.slice(padded, [0, or + top, oc + left, 0], [B, hn, wn, m2]));
      }
    }
    return blocks.length === 1 ? blocks[0]! : tf.concat(blocks, 3);
  });
}

/**
 * The two factors of a conv site's statistic: the current conv's input patches `[B, H1·W1, fanIn]` and the tap-scattered
 * gradient carried back to the intermediate map `[B, H1·W1, k2h·k2w·m2]`. Row (n, u) of both is one retained sample.
 */
export function convTapParts(model: tfl.LayersModel, site: TfjsGrowthSite, x: tf.Tensor4D, g: tf.Tensor4D): { patches: tf.Tensor3D; routed: tf.Tensor3D } {
  return tf.tidy(() => {
    const { current, next } = siteLayers(model, site);
    const c1 = current.getConfig() as Config;
    const c2 = next.getConfig() as Config;
    const nIn = inputShapeOf(next);
    const t = tapScatter(g, pair(c2['kernelSize']), pair(c2['strides'] ?? 1), (c2['padding'] ?? 'valid') as 'valid' | 'same', [Number(nIn[1]), Number(nIn[2])]);
    const patches = convPatches(x, pair(c1['kernelSize']), pair(c1['strides'] ?? 1), (c1['padding'] ?? 'valid') as 'valid' | 'same');
    const [B, hw1] = patches.shape;
    const F = t.shape[3];
    let routed: tf.Tensor3D;
    if (!hasSpatialBetween(site)) {
      routed = tf.reshape(t, [B, -1, F]) as tf.Tensor3D;
    } else {
      const nextInput: [number, number] = [Number(nIn[1]), Number(nIn[2])];
      const block = blockRouting(model, site, spatialRouting(model, site, nextInput), nextInput);
      routed = block ? applyBlockRouting(t, block) : (tf.reshape(throughSpatialLayers(model, site, t), [B, -1, F]) as tf.Tensor3D);
    }
    if (routed.shape[1] !== hw1) {
      throw new ShapeMismatchError(`site "${site.name}": intermediate map`, [hw1], [routed.shape[1]!], { site: site.name });
    }
    return { patches, routed };
  });
}

/** Σ over rows of patchᵀ·routed: the tap gradient `[fanIn, F]` (HWIO of the current conv, summed over the chunk). */
export function tapGradientOf(parts: { patches: tf.Tensor3D; routed: tf.Tensor3D }): tf.Tensor2D {
  return tf.tidy(() => {
    const [B, hw1, fanIn] = parts.patches.shape;
    const F = parts.routed.shape[2];
    // An explicit transpose is much faster than matMul's transposeA on wasm.
    return tf.matMul(tf.transpose(tf.reshape(parts.patches, [B * hw1, fanIn])), tf.reshape(parts.routed, [B * hw1, F]));
  });
}

/**
 * Tap gradient `[k1h·k1w·m0, k2h·k2w·m2]` (HWIO of the current conv, summed over the chunk) of a conv site: the
 * current conv's input patches, transposed, times the tap-scattered gradient carried back to the intermediate map.
 */
export function convTapGradient(model: tfl.LayersModel, site: TfjsGrowthSite, x: tf.Tensor4D, g: tf.Tensor4D): tf.Tensor2D {
  const parts = convTapParts(model, site, x, g);
  const tap = tapGradientOf(parts);
  tf.dispose([parts.patches, parts.routed]);
  return tap;
}

/**
 * The current conv's input patches carried forward through the in-between spatial layers onto the next conv's input
 * map `nextInput` (`[Hn, Wn]`; `[1, 1]` after global pooling): `q[n, v] = Σ_u R[u, v] · patch_n(u)`,
 * `[B, Hn, Wn, fanIn]` (R the routing of {@link spatialRouting}). The
 * transpose of what {@link convTapParts} does to the gradient, so the large tap-scattered map is never built.
 */
export function routedPatches(model: tfl.LayersModel, site: TfjsGrowthSite, x: tf.Tensor4D, nextInput: [number, number]): tf.Tensor4D {
  return tf.tidy(() => {
    const { current } = siteLayers(model, site);
    const c1 = current.getConfig() as Config;
    const patches = convPatches(x, pair(c1['kernelSize']), pair(c1['strides'] ?? 1), (c1['padding'] ?? 'valid') as 'valid' | 'same');
    const [B, hw1, fanIn] = patches.shape;
    const mid = outputShapeOf(current);
    const [h1, w1] = [Number(mid[1]), Number(mid[2])];
    if (h1 * w1 !== hw1) throw new ShapeMismatchError(`site "${site.name}": intermediate map`, [h1 * w1], [hw1], { site: site.name });
    if (!hasSpatialBetween(site)) return tf.reshape(patches, [B, h1, w1, fanIn]) as tf.Tensor4D;
    const [hn, wn] = nextInput;
    const routing = spatialRouting(model, site, nextInput);
    const block = blockRouting(model, site, routing, nextInput);
    if (block) {
      // q[v] = Σ_(a,b) mask[a, b] · patch(s·v + (a, b)), over positions inside the intermediate map.
      const [sr, sc] = block.stride;
      let p4 = tf.reshape(patches, [B, h1, w1, fanIn]) as tf.Tensor4D;
      const [H, W] = [hn * sr, wn * sc];
      if (H > h1 || W > w1) p4 = tf.pad(p4, [[0, 0], [0, Math.max(0, H - h1)], [0, Math.max(0, W - w1)], [0, 0]]);
      if (p4.shape[1] !== H || p4.shape[2] !== W) p4 = tf.slice(p4, [0, 0, 0, 0], [B, H, W, fanIn]);
      // Rank 4 views only (rank-6 slices are slow on wasm): [B·hn, sr, wn, sc·fanIn].
      const p6 = tf.reshape(p4, [B * hn, sr, wn, sc * fanIn]);
      let q: tf.Tensor | undefined;
      for (let a = 0; a < sr; a++) {
        for (let b = 0; b < sc; b++) {
          const w = block.mask[a * sc + b]!;
          if (w === 0) continue;
          let part: tf.Tensor = tf.slice(p6, [0, a, 0, b * fanIn], [B * hn, 1, wn, fanIn]);
          if (w !== 1) part = tf.mul(part, w);
          q = q ? tf.add(q, part) : part;
        }
      }
      return tf.reshape(q ?? tf.zeros([B, hn, wn, fanIn]), [B, hn, wn, fanIn]) as tf.Tensor4D;
    }
    // General routing: q = Rᵀ · patches per position.
    const r = tf.tensor2d(routing.matrix, [routing.rows, routing.cols]);
    const byPosition = tf.reshape(tf.transpose(patches, [1, 0, 2]), [hw1, B * fanIn]);
    const q = tf.reshape(tf.matMul(tf.transpose(r), byPosition), [hn * wn, B, fanIn]);
    return tf.reshape(tf.transpose(q, [1, 0, 2]), [B, hn, wn, fanIn]) as tf.Tensor4D;
  });
}

/**
 * The same tap gradient `[fanIn, k2h·k2w·m2]` as {@link tapGradientOf}∘{@link convTapParts}, computed without the
 * tap-scattered map: the routing is folded into the patches ({@link routedPatches}), and
 * `M[(b, o), i] = Σ_n Σ_y g[y, o] · q[s2·y + b − p2, i]` is the next conv's weight gradient with q as its input (its
 * zero padding does the tap masking). Much less work and memory when the intermediate map is large.
 */
export function convTapGradientFolded(model: tfl.LayersModel, site: TfjsGrowthSite, x: tf.Tensor4D, g: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => {
    const { next } = siteLayers(model, site);
    const c2 = next.getConfig() as Config;
    const nIn = inputShapeOf(next);
    const q = routedPatches(model, site, x, [Number(nIn[1]), Number(nIn[2])]);
    const fanIn = q.shape[3];
    const [k2h, k2w] = pair(c2['kernelSize']);
    const m2 = g.shape[3];
    const dw = conv2dBackpropFilterViaConv(q, g, [k2h, k2w, fanIn, m2], pair(c2['strides'] ?? 1), (c2['padding'] ?? 'valid') as 'valid' | 'same');
    // [k2h, k2w, fanIn, m2] → [fanIn, (b_r, b_c, o)]
    return tf.reshape(tf.transpose(dw, [2, 0, 1, 3]), [fanIn, k2h * k2w * m2]) as tf.Tensor2D;
  });
}

/**
 * {@link convTapGradientFolded} for several conv sites that share the current layer, the in-between spatial layers
 * and the next layers' geometry (kernel, strides, padding, input and output sizes) — the (producer, consumer) blocks
 * of a channel group: the routed patches are built once and one weight gradient runs over the next layers' output
 * gradients side by side. Returns one tap gradient per site, in order.
 */
export function convTapGradientsShared(model: tfl.LayersModel, sites: readonly TfjsGrowthSite[], x: tf.Tensor4D, gs: readonly tf.Tensor4D[]): tf.Tensor2D[] {
  if (sites.length === 1) return [convTapGradientFolded(model, sites[0]!, x, gs[0]!)];
  return tf.tidy(() => {
    const { next } = siteLayers(model, sites[0]!);
    const c2 = next.getConfig() as Config;
    const nIn = inputShapeOf(next);
    const q = routedPatches(model, sites[0]!, x, [Number(nIn[1]), Number(nIn[2])]);
    const fanIn = q.shape[3];
    const [k2h, k2w] = pair(c2['kernelSize']);
    const widths = gs.map((g) => g.shape[3]);
    const total = widths.reduce((a, b) => a + b, 0);
    const dw = conv2dBackpropFilterViaConv(q, tf.concat(gs as tf.Tensor4D[], 3), [k2h, k2w, fanIn, total], pair(c2['strides'] ?? 1), (c2['padding'] ?? 'valid') as 'valid' | 'same');
    return tf.split(dw, widths, 3).map((part, i) => tf.reshape(tf.transpose(part, [2, 0, 1, 3]), [fanIn, k2h * k2w * widths[i]!]) as tf.Tensor2D);
  });
}

/** Sites that {@link convTapGradientsShared} can serve together share this key. */
export function sharedTapKey(model: tfl.LayersModel, site: TfjsGrowthSite): string {
  const { next } = siteLayers(model, site);
  const c2 = next.getConfig() as Config;
  const spatial = site.between.filter((b) => b.role === 'pool' || b.role === 'depthwise' || b.role === 'global-pool').map((b) => b.name);
  return JSON.stringify([site.current, spatial, pair(c2['kernelSize']), pair(c2['strides'] ?? 1), c2['padding'] ?? 'valid', inputShapeOf(next).slice(1, 3), outputShapeOf(next).slice(1, 3)]);
}
