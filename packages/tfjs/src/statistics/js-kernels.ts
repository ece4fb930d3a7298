/**
 * Plain-JavaScript versions of the data-movement steps of the conv statistics (patch gathering, tap scatter, block
 * routing). The cpu backend implements slice and pad through generic element-by-element buffers, which makes the
 * tensor-op versions slow there; these loops over typed arrays give identical results.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Per-side padding and output size tfjs applies to a conv/pool of `kernel`, `strides`, `padding` on `[h, w]`. */
function convInfo(size: [number, number], kernel: [number, number], strides: [number, number], padding: 'valid' | 'same') {
  const info = tf.backend_util.computeConv2DInfo([1, size[0], size[1], 1], [kernel[0], kernel[1], 1, 1], strides, 1, padding, undefined, false, 'channelsLast');
  return { top: info.padInfo.top, left: info.padInfo.left, outH: info.outHeight, outW: info.outWidth };
}

/** Input patches `[B, H1·W1, k1h·k1w·m0]` in (a_r, a_c, c_in) order (zero outside the input). */
export function patchesJs(x: tf.Tensor4D, kernel: [number, number], strides: [number, number], padding: 'valid' | 'same'): tf.Tensor3D {
  const [B, H, W, m0] = x.shape;
  const { top, left, outH, outW } = convInfo([H, W], kernel, strides, padding);
  const [kh, kw] = kernel;
  const fanIn = kh * kw * m0;
  const xd = x.dataSync();
  const out = new Float32Array(B * outH * outW * fanIn);
  for (let n = 0; n < B; n++) {
    for (let ur = 0; ur < outH; ur++) {
      for (let uc = 0; uc < outW; uc++) {
        const base = ((n * outH + ur) * outW + uc) * fanIn;
        for (let ar = 0; ar < kh; ar++) {
          const r = strides[0] * ur + ar - top;
          if (r < 0 || r >= H) continue;
          for (let ac = 0; ac < kw; ac++) {
            const c = strides[1] * uc + ac - left;
            if (c < 0 || c >= W) continue;
            const src = ((n * H + r) * W + c) * m0;
            const dst = base + (ar * kw + ac) * m0;
            for (let ci = 0; ci < m0; ci++) out[dst + ci] = xd[src + ci]!;
          }
        }
      }
    }
  }
  return tf.tensor3d(out, [B, outH * outW, fanIn]);
}

/** Tap scatter of g `[B, H2, W2, m2]` onto the next conv's input map `[B, Hn, Wn, k2h·k2w·m2]`. */
export function tapScatterJs(g: tf.Tensor4D, kernel: [number, number], strides: [number, number], padding: 'valid' | 'same', inputSize: [number, number]): tf.Tensor4D {
  const [B, h2, w2, m2] = g.shape;
  const [hn, wn] = inputSize;
  const { top, left } = convInfo(inputSize, kernel, strides, padding);
  const [kh, kw] = kernel;
  const F = kh * kw * m2;
  const gd = g.dataSync();
  const out = new Float32Array(B * hn * wn * F);
  for (let n = 0; n < B; n++) {
    for (let yr = 0; yr < h2; yr++) {
      for (let yc = 0; yc < w2; yc++) {
        const src = ((n * h2 + yr) * w2 + yc) * m2;
        for (let br = 0; br < kh; br++) {
          const ur = strides[0] * yr + br - top;
          if (ur < 0 || ur >= hn) continue;
          for (let bc = 0; bc < kw; bc++) {
            const uc = strides[1] * yc + bc - left;
            if (uc < 0 || uc >= wn) continue;
            const dst = ((n * hn + ur) * wn + uc) * F + (br * kw + bc) * m2;
            for (let c = 0; c < m2; c++) out[dst + c] = gd[src + c]!;
          }
        }
      }
    }
  }
  return tf.tensor4d(out, [B, hn, wn, F]);
}

/**
 * Block routing (one `[s_r × s_c]` mask per next-layer position) of t `[B, Hn, Wn, F]` onto the intermediate map,
 * `[B, H1·W1, F]`.
 */
export function blockRoutingJs(t: tf.Tensor4D, stride: [number, number], mask: Float32Array, size: [number, number]): tf.Tensor3D {
  const [B, hn, wn, F] = t.shape;
  const [sr, sc] = stride;
  const [h1, w1] = size;
  const td = t.dataSync();
  const out = new Float32Array(B * h1 * w1 * F);
  for (let n = 0; n < B; n++) {
    for (let ur = 0; ur < Math.min(h1, hn * sr); ur++) {
      const pr = Math.floor(ur / sr);
      for (let uc = 0; uc < Math.min(w1, wn * sc); uc++) {
        const pc = Math.floor(uc / sc);
        const w = mask[(ur - pr * sr) * sc + (uc - pc * sc)]!;
        if (w === 0) continue;
        const src = ((n * hn + pr) * wn + pc) * F;
        const dst = ((n * h1 + ur) * w1 + uc) * F;
        for (let f = 0; f < F; f++) out[dst + f] = w * td[src + f]!;
      }
    }
  }
  return tf.tensor3d(out, [B, h1 * w1, F]);
}
