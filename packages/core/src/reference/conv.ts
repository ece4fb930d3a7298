/**
 * Naive, loop-by-loop reference implementations of 2-D convolution (NHWC activations, HWIO kernels), its two
 * backward passes, the tap scatter, and the exact growth matrices. Written for clarity, not speed: tests use them
 * as the independent ground truth for faster paths.
 * @packageDocumentation
 */
import { ShapeMismatchError } from '../errors.js';
import { Matrix } from '../matrix.js';
import type { ConvPairGeometry, Padding2D } from '../site.js';
import { checkTensor4, zeros4 } from './tensor.js';
import type { Tensor4, Tensor4Like } from './tensor.js';

/** Stride and per-side padding of one 2-D convolution (dilation 1). */
export interface Conv2DGeometry {
  /** Stride `[sh, sw]`. */
  stride: [number, number];
  /** Per-side zero padding of the input. */
  padding: Padding2D;
}

function outSize(h: number, w: number, kh: number, kw: number, g: Conv2DGeometry): [number, number] {
  const p = g.padding;
  return [Math.floor((h + p.top + p.bottom - kh) / g.stride[0]) + 1, Math.floor((w + p.left + p.right - kw) / g.stride[1]) + 1];
}

/**
 * Visits every (example, output pixel, kernel tap) whose input pixel lies inside the input, in the order
 * n, i, j, r, c (shared by the forward conv and its two backward passes). `visit` gets the element offsets of
 * the input pixel's first channel, of the output pixel's first channel, and of the kernel tap's `[r, c, 0, 0]`
 * entry in the HWIO kernel.
 */
function forEachConvTap(
  [B, H, W, C]: readonly [number, number, number, number],
  [Ho, Wo, co]: readonly [number, number, number],
  [kh, kw]: readonly [number, number],
  geometry: Conv2DGeometry,
  visit: (inputOffset: number, outputOffset: number, kernelOffset: number) => void,
): void {
  const [sh, sw] = geometry.stride;
  const { top, left } = geometry.padding;
  for (let n = 0; n < B; n++) {
    for (let i = 0; i < Ho; i++) {
      for (let j = 0; j < Wo; j++) {
        const outputOffset = ((n * Ho + i) * Wo + j) * co;
        for (let r = 0; r < kh; r++) {
          const xi = sh * i + r - top;
          if (xi < 0 || xi >= H) continue;
          for (let c = 0; c < kw; c++) {
            const xj = sw * j + c - left;
            if (xj < 0 || xj >= W) continue;
            visit(((n * H + xi) * W + xj) * C, outputOffset, (r * kw + c) * C * co);
          }
        }
      }
    }
  }
}

/**
 * Forward conv: `y[n, i, j, co] = Σ_{r, c, ci} x[n, s_h·i + r − p_top, s_w·j + c − p_left, ci] · w[r, c, ci, co]`
 * (out-of-range input pixels are zero).
 * @param x - input `[B, H, W, Cin]`
 * @param w - kernel `[kh, kw, Cin, Cout]`
 */
export function naiveConv2d(x: Tensor4Like, w: Tensor4Like, geometry: Conv2DGeometry): Tensor4 {
  const [B, H, W, C] = checkTensor4(x, 'naiveConv2d input');
  const [kh, kw, ci, co] = checkTensor4(w, 'naiveConv2d kernel');
  if (ci !== C) throw new ShapeMismatchError('naiveConv2d kernel input channels', [kh, kw, C, co], [kh, kw, ci, co]);
  const [Ho, Wo] = outSize(H, W, kh, kw, geometry);
  const y = zeros4([B, Ho, Wo, co]);
  forEachConvTap([B, H, W, C], [Ho, Wo, co], [kh, kw], geometry, (xo, yo, wt) => {
    for (let k = 0; k < C; k++) {
      const xv = x.data[xo + k]!;
      const wo = wt + k * co;
      for (let o = 0; o < co; o++) y.data[yo + o] += xv * w.data[wo + o]!;
    }
  });
  return y;
}

/**
 * Gradient of `Σ y ⊙ dy` with respect to the kernel: `dw[r, c, ci, co] = Σ_{n, i, j} x[n, s·i + r − p, ci] · dy[n, i, j, co]`.
 * @param x - input `[B, H, W, Cin]`
 * @param dy - output gradient `[B, Ho, Wo, Cout]`
 * @param kernelSize - `[kh, kw]`
 */
export function naiveConv2dBackpropFilter(x: Tensor4Like, dy: Tensor4Like, kernelSize: [number, number], geometry: Conv2DGeometry): Tensor4 {
  const [B, H, W, C] = checkTensor4(x, 'naiveConv2dBackpropFilter input');
  const [b2, Ho, Wo, co] = checkTensor4(dy, 'naiveConv2dBackpropFilter output gradient');
  const [kh, kw] = kernelSize;
  const [eh, ew] = outSize(H, W, kh, kw, geometry);
  if (b2 !== B || Ho !== eh || Wo !== ew) throw new ShapeMismatchError('naiveConv2dBackpropFilter output gradient', [B, eh, ew, co], [b2, Ho, Wo, co]);
  const dw = zeros4([kh, kw, C, co]);
  forEachConvTap([B, H, W, C], [Ho, Wo, co], [kh, kw], geometry, (xo, go, wt) => {
    for (let k = 0; k < C; k++) {
      const xv = x.data[xo + k]!;
      const wo = wt + k * co;
      for (let o = 0; o < co; o++) dw.data[wo + o] += xv * dy.data[go + o]!;
    }
  });
  return dw;
}

/**
 * Gradient of `Σ y ⊙ dy` with respect to the input (a conv-transpose of dy):
 * `dx[n, s·i + r − p, ci] += w[r, c, ci, co] · dy[n, i, j, co]`.
 * @param dy - output gradient `[B, Ho, Wo, Cout]`
 * @param w - kernel `[kh, kw, Cin, Cout]`
 * @param inputSize - `[H, W]` of the forward input (fixes the output size of the transpose)
 */
export function naiveConv2dBackpropInput(dy: Tensor4Like, w: Tensor4Like, inputSize: [number, number], geometry: Conv2DGeometry): Tensor4 {
  const [B, Ho, Wo, co] = checkTensor4(dy, 'naiveConv2dBackpropInput output gradient');
  const [kh, kw, C, co2] = checkTensor4(w, 'naiveConv2dBackpropInput kernel');
  const [H, W] = inputSize;
  const [eh, ew] = outSize(H, W, kh, kw, geometry);
  if (co2 !== co || Ho !== eh || Wo !== ew) throw new ShapeMismatchError('naiveConv2dBackpropInput output gradient', [B, eh, ew, co2], [B, Ho, Wo, co]);
  const dx = zeros4([B, H, W, C]);
  forEachConvTap([B, H, W, C], [Ho, Wo, co], [kh, kw], geometry, (xo, go, wt) => {
    for (let k = 0; k < C; k++) {
      const wo = wt + k * co;
      let acc = 0;
      for (let o = 0; o < co; o++) acc += w.data[wo + o]! * dy.data[go + o]!;
      dx.data[xo + k] += acc;
    }
  });
  return dx;
}

/** The current conv's geometry of a pair, as a {@link Conv2DGeometry}. */
export function currentConvGeometry(geometry: ConvPairGeometry): Conv2DGeometry {
  return { stride: [geometry.stride1[0], geometry.stride1[1]], padding: { ...geometry.pad1 } };
}

/** The next conv's geometry of a pair, as a {@link Conv2DGeometry}. */
export function nextConvGeometry(geometry: ConvPairGeometry): Conv2DGeometry {
  return { stride: [geometry.stride2[0], geometry.stride2[1]], padding: { ...geometry.pad2 } };
}

/**
 * Tap scatter of the next conv's output gradient onto the intermediate map:
 * `T[n, u, (b_r, b_c, c_out)] = g[n, y, c_out]` where `u = s2·y + b − p2` lies inside the map, 0 otherwise.
 * Channel index of (b_r, b_c, c_out) is `(b_r·k2w + b_c)·m2 + c_out`.
 * @param g - gradient of the next conv's pre-activation `[B, H2, W2, m2]`
 * @returns `[B, H1, W1, k2h·k2w·m2]`
 */
export function naiveTapScatter(g: Tensor4Like, geometry: ConvPairGeometry): Tensor4 {
  const [B, H2, W2, m2] = checkTensor4(g, 'naiveTapScatter gradient');
  const [eh, ew] = geometry.outputSize;
  if (H2 !== eh || W2 !== ew || m2 !== geometry.outChannels) throw new ShapeMismatchError('naiveTapScatter gradient', [B, eh, ew, geometry.outChannels], [B, H2, W2, m2]);
  const [H1, W1] = geometry.midSize;
  const [k2h, k2w] = geometry.kernel2;
  const F = k2h * k2w * m2;
  const t = zeros4([B, H1, W1, F]);
  for (let n = 0; n < B; n++) {
    for (let yr = 0; yr < H2; yr++) {
      for (let yc = 0; yc < W2; yc++) {
        for (let br = 0; br < k2h; br++) {
          const ur = geometry.stride2[0] * yr + br - geometry.pad2.top;
          if (ur < 0 || ur >= H1) continue;
          for (let bc = 0; bc < k2w; bc++) {
            const uc = geometry.stride2[1] * yc + bc - geometry.pad2.left;
            if (uc < 0 || uc >= W1) continue;
            for (let c = 0; c < m2; c++) {
              t.data[((n * H1 + ur) * W1 + uc) * F + (br * k2w + bc) * m2 + c] = g.data[((n * H2 + yr) * W2 + yc) * m2 + c]!;
            }
          }
        }
      }
    }
  }
  return t;
}

/**
 * The exact conv growth matrix, straight from its definition (method reference §2.5):
 * `M[(b, c_out), (a, c_in)] = (1/N) Σ_n Σ_y x[n, s1·u + a − p1, c_in] · g[n, y, c_out]`, summed over output
 * positions y whose intermediate position `u = s2·y + b − p2` is inside the intermediate map (input pixels
 * outside the input are zero). Rows ordered (b_r, b_c, c_out), columns (a_r, a_c, c_in).
 * @param x - current conv input `[N, H0, W0, m0]`
 * @param g - per-example gradients of the next conv's pre-activation `[N, H2, W2, m2]` (each example's own loss)
 * @returns `[k2h·k2w·m2 × k1h·k1w·m0]`
 */
export function naiveConvGrowthMatrix(x: Tensor4Like, g: Tensor4Like, geometry: ConvPairGeometry): Matrix {
  const [N, H0, W0, m0] = checkTensor4(x, 'naiveConvGrowthMatrix input');
  const [N2, H2, W2, m2] = checkTensor4(g, 'naiveConvGrowthMatrix gradient');
  if (H0 !== geometry.inputSize[0] || W0 !== geometry.inputSize[1] || m0 !== geometry.inChannels) {
    throw new ShapeMismatchError('naiveConvGrowthMatrix input', [N, geometry.inputSize[0], geometry.inputSize[1], geometry.inChannels], [N, H0, W0, m0]);
  }
  if (N2 !== N || H2 !== geometry.outputSize[0] || W2 !== geometry.outputSize[1] || m2 !== geometry.outChannels) {
    throw new ShapeMismatchError('naiveConvGrowthMatrix gradient', [N, geometry.outputSize[0], geometry.outputSize[1], geometry.outChannels], [N2, H2, W2, m2]);
  }
  const [H1, W1] = geometry.midSize;
  const [k1h, k1w] = geometry.kernel1;
  const [k2h, k2w] = geometry.kernel2;
  const fanIn = k1h * k1w * m0;
  const fanOut = k2h * k2w * m2;
  const m = new Matrix(fanOut, fanIn);
  for (let n = 0; n < N; n++) {
    for (let br = 0; br < k2h; br++) {
      for (let bc = 0; bc < k2w; bc++) {
        for (let yr = 0; yr < H2; yr++) {
          const ur = geometry.stride2[0] * yr + br - geometry.pad2.top;
          if (ur < 0 || ur >= H1) continue;
          for (let yc = 0; yc < W2; yc++) {
            const uc = geometry.stride2[1] * yc + bc - geometry.pad2.left;
            if (uc < 0 || uc >= W1) continue;
            for (let ar = 0; ar < k1h; ar++) {
              const xr = geometry.stride1[0] * ur + ar - geometry.pad1.top;
              if (xr < 0 || xr >= H0) continue;
              for (let ac = 0; ac < k1w; ac++) {
                const xc = geometry.stride1[1] * uc + ac - geometry.pad1.left;
                if (xc < 0 || xc >= W0) continue;
                for (let ci = 0; ci < m0; ci++) {
                  const xv = x.data[((n * H0 + xr) * W0 + xc) * m0 + ci]!;
                  const col = (ar * k1w + ac) * m0 + ci;
                  for (let co = 0; co < m2; co++) {
                    const row = (br * k2w + bc) * m2 + co;
                    m.data[row * fanIn + col] += (xv * g.data[((n * H2 + yr) * W2 + yc) * m2 + co]!) / N;
                  }
                }
              }
            }
          }
        }
      }
    }
  }
  return m;
}

/**
 * The dense growth matrix `M = (1/N) Σ_n g_n h_nᵀ`.
 * @param g - `[N × fanOut]` per-example gradients of the next layer's pre-activation
 * @param h - `[N × fanIn]` inputs of the current layer
 * @returns `[fanOut × fanIn]`
 */
export function naiveDenseMoment(g: Matrix, h: Matrix): Matrix {
  if (g.rows !== h.rows) throw new ShapeMismatchError('naiveDenseMoment: g and h must have the same number of rows', [g.rows, h.cols], [h.rows, h.cols]);
  const m = new Matrix(g.cols, h.cols);
  for (let o = 0; o < g.cols; o++) {
    for (let i = 0; i < h.cols; i++) {
      let s = 0;
      for (let n = 0; n < g.rows; n++) s += g.get(n, o) * h.get(n, i);
      m.set(o, i, s / g.rows);
    }
  }
  return m;
}
