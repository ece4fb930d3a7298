/**
 * The exact conv growth matrix as ONNX ops (method reference §2.5, generalised): one masked correlation per
 * outgoing tap, for convs with 1 to 3 spatial axes, any strides, paddings and dilations on both layers.
 *
 * Per axis, the current conv (kernel k1, stride s1, dilation e1, leading pad p1) reads input position
 * `s1·u + e1·a − p1` at intermediate position u; the next conv reads `u = s2·y + e2·b − p2` at output position y.
 * So tap pair (a, b) reads input `S·y + d − P` with S = s1·s2, d = s1·e2·b + e1·a, P = s1·p2 + p1, for the y whose
 * u lies inside the intermediate map, and d < D = s1·e2·(k2 − 1) + e1·(k1 − 1) + 1.
 * @packageDocumentation
 */
import { TensorProto_DataType } from 'onnx-buf';
import type { ConvPairGeometry, ConvPairGeometryND } from '@gradmax/core';
import { convPairGeometryToND } from '@gradmax/core';
import { makeTensor } from '../model.js';
import type { Emitter } from './emitter.js';
import type { TensorInfo } from './shapes.js';

const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

/**
 * A depthwise conv with one-hot kernels that extracts, for every input channel c and every kernel tap a (row-major
 * over the axes), the strided, dilated window [s·u + e·a − pad] as output channel c·Π k + a (zero outside the input).
 */
function windowsConv(e: Emitter, x: string, channels: number, geo: ConvPairGeometryND, t: number): string {
  const kernel = geo.axes.map((a) => a.kernel1);
  const taps = prod(kernel);
  const strides = geo.axes.map((a) => a.stride1);
  const dilations = geo.axes.map((a) => a.dilation1);
  const pads = [...geo.axes.map((a) => a.padBegin1), ...geo.axes.map((a) => a.padEnd1)];
  if (taps === 1 && strides.every((s) => s === 1) && pads.every((p) => p === 0)) return x;
  const w = new Float64Array(channels * taps * taps);
  for (let c = 0; c < channels; c++) for (let k = 0; k < taps; k++) w[(c * taps + k) * taps + k] = 1;
  const kernelName = e.constant(t, [channels * taps, 1, ...kernel], w, 'onehot_windows');
  return e.op('Conv', [x, kernelName], { group: channels, kernel_shape: kernel, strides, dilations, pads });
}

/** One spatial axis of the tap-gradient correlation (see {@link emitPairCorrelation}). */
interface CorrelationAxis {
  /** Combined stride S = s1·s2. */
  stride: number;
  /** Combined offset P = s1·p2 + p1 (leading pads). */
  offset: number;
  /** Combined kernel D = s1·e2·(k2 − 1) + e1·(k1 − 1) + 1: the offsets d = s1·e2·b + e1·a of every tap pair. */
  span: number;
  /** Offset of next-kernel tap b: s1·e2·b is `tapB·b`. */
  tapB: number;
  /** Offset of current-kernel tap a: e1·a is `tapA·a`. */
  tapA: number;
  /** Input size H0. */
  inSize: number;
  /** Next conv's output size H2 (or the lattice size). */
  outSize: number;
  /** Per next-kernel tap b: the output positions y whose intermediate position s2·y + e2·b − p2 is outside the map. */
  invalid: number[][];
  /** Union of `invalid` (sorted). */
  boundary: number[];
}

/**
 * A gradient of the next conv's output known only on the lattice of output positions y = step·h + offset (per
 * axis, h < size), as `[N, m2, size…]`; it is zero elsewhere. A dense gradient is the lattice step 1.
 */
export interface LatticeGradient {
  /** The gradient values on the lattice, `[N, m2, size_h, size_w]`. */
  grad: string;
  /** Offset of the lattice (per axis). */
  offset: [number, number];
  /** Step of the lattice (per axis). */
  step: [number, number];
  /** Lattice size (per axis). */
  size: [number, number];
}

/** The correlation axis of the output positions y = step·h + offset (h < size): the same reads, re-indexed by h. */
function latticeAxis(a: CorrelationAxis, step: number, offset: number, size: number): CorrelationAxis {
  const invalid = a.invalid.map((ys) => ys.filter((y) => y >= offset && (y - offset) % step === 0 && (y - offset) / step < size).map((y) => (y - offset) / step));
  const boundary = [...new Set(invalid.flat())].sort((p, q) => p - q);
  return { ...a, stride: a.stride * step, offset: a.offset - a.stride * offset, outSize: size, invalid, boundary };
}

/** Whether a conv pair is a conv→flatten→dense site (the next layer's kernel covers the whole map, one output). */
export function isFlattenDenseND(geo: ConvPairGeometryND): boolean {
  return geo.axes.every((a) => a.outSize === 1 && a.kernel2 === a.midSize && a.padBegin2 === 0 && a.dilation2 === 1);
}

/** {@link isFlattenDenseND} of a 2-D geometry. */
export function isFlattenDense(geo: ConvPairGeometry): boolean {
  return isFlattenDenseND(convPairGeometryToND(geo));
}

function correlationAxis(a: ConvPairGeometryND['axes'][number]): CorrelationAxis {
  const invalid: number[][] = [];
  const boundary = new Set<number>();
  for (let b = 0; b < a.kernel2; b++) {
    const ys: number[] = [];
    for (let y = 0; y < a.outSize; y++) {
      const u = a.stride2 * y + a.dilation2 * b - a.padBegin2;
      if (u < 0 || u >= a.midSize) ys.push(y);
    }
    invalid.push(ys);
    for (const y of ys) boundary.add(y);
  }
  return {
    stride: a.stride1 * a.stride2,
    offset: a.stride1 * a.padBegin2 + a.padBegin1,
    span: a.stride1 * a.dilation2 * (a.kernel2 - 1) + a.dilation1 * (a.kernel1 - 1) + 1,
    tapB: a.stride1 * a.dilation2,
    tapA: a.dilation1,
    inSize: a.inSize,
    outSize: a.outSize,
    invalid,
    boundary: [...boundary].sort((p, q) => p - q),
  };
}

/**
 * C[c, o, d…] = Σ_n Σ_{y in the block} g[n, o, y] · x[n, c, S·y + d − P] (zero outside the input) for the block of
 * output positions [y0, y1) (per axis), as ONE onnxruntime Conv: `xt` = x as `[m0, N, …]` is the batch, the block of
 * g as `[m2, N, …]` the weights (dilated by S), pads/slices chosen so the output is D per axis. Undefined when the
 * block only reads padding (its correlation is zero).
 */
function blockCorrelation(e: Emitter, xt: string, kernelBlock: (y0: number[], y1: number[]) => string, ax: CorrelationAxis[], y0: number[], y1: number[]): string | undefined {
  const n = ax.length;
  const sliceStarts: number[] = [];
  const sliceEnds: number[] = [];
  const pads = new Array<number>(2 * n).fill(0);
  const kernelShape: number[] = [];
  const dilations: number[] = [];
  let inputSliced = false;
  for (let i = 0; i < n; i++) {
    const a = ax[i]!;
    const lo = a.stride * y0[i]! - a.offset;
    const hi = a.stride * (y1[i]! - 1) + a.span - a.offset;
    const from = Math.max(0, lo);
    const to = Math.min(a.inSize, hi);
    if (to <= from) return undefined;
    sliceStarts.push(from);
    sliceEnds.push(to);
    if (from > 0 || to < a.inSize) inputSliced = true;
    pads[i] = from - lo;
    pads[i + n] = hi - to;
    kernelShape.push(y1[i]! - y0[i]!);
    dilations.push(y1[i]! - y0[i]! > 1 ? a.stride : 1);
  }
  const kernel = kernelBlock(y0, y1);
  const axes = Array.from({ length: n }, (_, i) => i + 2);
  const input = inputSliced ? e.op('Slice', [xt, e.ints(sliceStarts), e.ints(sliceEnds), e.ints(axes)]) : xt;
  // One offset (D = 1) read without padding or dilation: a plain product over batch and positions. onnxruntime's Conv
  // with a kernel as large as the map is several times slower (EfficientNet-B0's 1×1 pairs on 32×32 maps).
  if (e.opset >= 12 && n <= 3 && pads.every((p) => p === 0) && dilations.every((d) => d === 1) && kernelShape.every((k, i) => k === sliceEnds[i]! - sliceStarts[i]!)) {
    const sp = 'hwd'.slice(0, n);
    return e.reshape(e.op('Einsum', [input, kernel], { equation: `cn${sp},on${sp}->co` }), [-1, 0, ...new Array<number>(n).fill(1)]); // 0: copy the o axis
  }
  return e.op('Conv', [input, kernel], { kernel_shape: kernelShape, dilations, pads });
}

/** Calls `visit` for every tuple picking one entry of each list (row-major). */
function forEachTuple<T>(lists: readonly (readonly T[])[], visit: (tuple: T[]) => void): void {
  const idx = new Array<number>(lists.length).fill(0);
  if (lists.some((l) => l.length === 0)) return;
  for (;;) {
    visit(idx.map((v, i) => lists[i]![v]!));
    let a = lists.length - 1;
    for (; a >= 0; a--) {
      if (++idx[a]! < lists[a]!.length) break;
      idx[a] = 0;
    }
    if (a < 0) return;
  }
}

/**
 * Emits the pair correlation `[m0, m2, Π k1, Π k2]`: entry (c, o, a, b) is the exact growth statistic of input channel
 * c, output channel o, current-kernel tap a and next-kernel tap b (taps row-major over the axes), summed over the
 * batch, without materialising the tap-scattered gradient.
 *
 * Without the mask (u inside the intermediate map) every (a, b) is read off ONE correlation C[c, o, d…] over all y.
 * The mask is separable (valid(y, b) = Π_axes valid_i(y_i, b_i)) and only drops a few boundary positions per tap, so
 * by inclusion–exclusion over the subsets T of axes,
 * stat(a, b) = Σ_T (−1)^|T| Σ_{y_i invalid for b_i, i ∈ T} C restricted to those positions on the axes of T,
 * each correction being the same correlation restricted to one boundary position per axis of T (rows, columns,
 * corners in 2-D). A constant Gather picks and signs the terms of every (a, b).
 *
 * A conv→flatten→dense site (one tap per intermediate position) is one product of the current conv's input windows
 * with g instead. `g` is the dense gradient of the next layer's output, or (2-D only) per-tap lattice gradients.
 */
export function emitPairCorrelation(e: Emitter, g: string | LatticeGradient[], x: string, zInfo: TensorInfo, geo: ConvPairGeometryND, t: number): string {
  const n = geo.axes.length;
  const k1 = geo.axes.map((a) => a.kernel1);
  const k2 = geo.axes.map((a) => a.kernel2);
  const P1 = prod(k1);
  const P2 = prod(k2);
  const m0 = geo.inChannels;
  const m2 = geo.outChannels;
  const inSize = geo.axes.map((a) => a.inSize);
  const outSize = geo.axes.map((a) => a.outSize);
  if (typeof g === 'string' && isFlattenDenseND(geo)) {
    // One tap per intermediate position: R[(c_in, a, u), c_out] = Σ_n P[n, (c_in, a), u] · g[n, c_out].
    const patches = windowsConv(e, x, m0, geo, t); // channel c_in·Π k1 + a
    const pf = e.reshape(patches, [-1, m0 * P1 * P2]);
    const gf = e.reshape(g, [-1, m2]);
    const r = e.opset >= 12 ? e.op('Einsum', [pf, gf], { equation: 'nk,nm->km' }) : e.op('MatMul', [e.transpose(pf, [1, 0]), gf]);
    return e.transpose(e.reshape(r, [m0, P1, P2, m2]), [0, 3, 1, 2]);
  }
  if (typeof g !== 'string' && n !== 2) throw new Error('lattice gradients are 2-D');
  const full = geo.axes.map(correlationAxis);
  const D = full.map((a) => a.span);
  const Dn = prod(D);
  const lattices: LatticeGradient[] =
    typeof g === 'string' ? [{ grad: zInfo.dims.length === 2 + n ? g : e.reshape(g, [-1, m2, ...outSize]), offset: [0, 0], step: [1, 1], size: [outSize[0]!, outSize[1] ?? 1] }] : g;
  const perm = [1, 0, ...Array.from({ length: n }, (_, i) => i + 2)];
  const xt = m0 === 1 ? e.reshape(x, [1, -1, ...inSize]) : e.transpose(x, perm); // [m0, N, …]
  // The pool of correlations [m0, m2, Π D] each: per lattice, the whole map, then the boundary pieces of every
  // subset of axes; `termsOf` lists, per tap pair, the signed pieces that sum to its statistic.
  const pieces: string[] = [];
  const termsOf = Array.from({ length: P1 * P2 }, () => [] as [number, number][]);
  for (const lattice of lattices) {
    const sizes = typeof g === 'string' ? outSize : [...lattice.size];
    const ax = typeof g === 'string' ? full : full.map((a, i) => latticeAxis(a, lattice.step[i as 0 | 1], lattice.offset[i as 0 | 1], sizes[i]!));
    const gl = lattice.grad;
    const gt = m2 === 1 ? e.reshape(gl, [1, -1, ...sizes]) : e.transpose(gl, perm); // [m2, N, …]
    // Blocks of gt: the leading axes by Slice (cached); a single position of the last axis by a product with a
    // one-hot vector (exact; several times faster in onnxruntime than a Slice), other ranges by Slice.
    const leadBlocks = new Map<string, string>();
    const leadOf = (y0: number[], y1: number[]): string => {
      const axes: number[] = [];
      for (let i = 0; i < n - 1; i++) if (y0[i] !== 0 || y1[i] !== sizes[i]) axes.push(i);
      if (!axes.length) return gt;
      const key = axes.map((i) => `${i}:${y0[i]}:${y1[i]}`).join(',');
      let b = leadBlocks.get(key);
      if (!b) leadBlocks.set(key, (b = e.op('Slice', [gt, e.ints(axes.map((i) => y0[i]!)), e.ints(axes.map((i) => y1[i]!)), e.ints(axes.map((i) => i + 2))])));
      return b;
    };
    const last = n - 1;
    const W = sizes[last]!;
    const kernelBlock = (y0: number[], y1: number[]): string => {
      const lead = leadOf(y0, y1);
      if (y0[last] === 0 && y1[last] === W) return lead;
      if (y1[last]! - y0[last]! === 1) {
        const oneHot = new Array<number>(W).fill(0);
        oneHot[y0[last]!] = 1;
        // e_yᵀ · leadᵀ as one Gemm (transB)
        const column = e.op('Gemm', [e.constant(t, [1, W], oneHot, 'column'), e.reshape(lead, [-1, W])], { transB: 1 });
        return e.reshape(column, [m2, -1, ...Array.from({ length: last }, (_, i) => y1[i]! - y0[i]!), 1]);
      }
      return e.op('Slice', [lead, e.ints([y0[last]!]), e.ints([y1[last]!]), e.ints([last + 2])]);
    };
    const pieceOf = (y0: number[], y1: number[]): number | undefined => {
      const c = blockCorrelation(e, xt, kernelBlock, ax, y0, y1);
      if (c === undefined) return undefined;
      pieces.push(e.reshape(c, [m0, m2, Dn]));
      return pieces.length - 1;
    };
    // Piece of each subset of axes (bit mask) and boundary position per axis in it.
    const pieceAt = new Map<string, number | undefined>();
    for (let mask = 0; mask < 1 << n; mask++) {
      const chosen = Array.from({ length: n }, (_, i) => i).filter((i) => mask & (1 << i));
      forEachTuple(
        chosen.map((i) => ax[i]!.boundary),
        (pos) => {
          const y0 = sizes.map(() => 0);
          const y1 = [...sizes];
          chosen.forEach((i, j) => ((y0[i] = pos[j]!), (y1[i] = pos[j]! + 1)));
          pieceAt.set(`${mask}:${pos.join(',')}`, pieceOf(y0, y1));
        },
      );
    }
    let k = 0;
    forEachTuple(
      k1.map((v) => Array.from({ length: v }, (_, i) => i)),
      (a) => {
        forEachTuple(
          k2.map((v) => Array.from({ length: v }, (_, i) => i)),
          (b) => {
            let d = 0;
            for (let i = 0; i < n; i++) d = d * D[i]! + ax[i]!.tapB * b[i]! + ax[i]!.tapA * a[i]!;
            const list = termsOf[k++]!;
            for (let mask = 0; mask < 1 << n; mask++) {
              const chosen = Array.from({ length: n }, (_, i) => i).filter((i) => mask & (1 << i));
              const sign = chosen.length % 2 === 0 ? 1 : -1;
              forEachTuple(
                chosen.map((i) => ax[i]!.invalid[b[i]!]!),
                (pos) => {
                  const piece = pieceAt.get(`${mask}:${pos.join(',')}`);
                  if (piece !== undefined) list.push([piece * Dn + d, sign]);
                },
              );
            }
          },
        );
      },
    );
  }
  const K = termsOf.length;
  const J = Math.max(1, ...termsOf.map((l) => l.length));
  let selected: string;
  if (pieces.length === 0) {
    // Every window lies in the padding: the statistic is zero.
    selected = e.op('ConstantOfShape', [e.ints([m0, m2, K])], { value: makeTensor('', t, [1], [0]) });
  } else {
    const pool = pieces.length === 1 ? pieces[0]! : e.op('Concat', pieces, { axis: 2 });
    const idx = new Array<number>(K * J).fill(0);
    const sign = new Array<number>(K * J).fill(0);
    termsOf.forEach((list, k) => list.forEach(([i, s], j) => ((idx[k * J + j] = i), (sign[k * J + j] = s))));
    if (J === 1 && termsOf.every((l) => l.length === 1 && l[0]![1] === 1)) {
      selected = e.op('Gather', [pool, e.constant(TensorProto_DataType.INT64, [K], idx, 'tap_index')], { axis: 2 });
    } else {
      const gathered = e.op('Gather', [pool, e.constant(TensorProto_DataType.INT64, [K, J], idx, 'tap_index')], { axis: 2 });
      selected = e.reduceSum(e.op('Mul', [gathered, e.constant(t, [K, J], sign, 'tap_sign')]), [3], false);
    }
  }
  return e.reshape(selected, [m0, m2, P1, P2]);
}

/**
 * The conv tap gradient `[k1h, k1w, m0, k2h·k2w·m2]` of a 2-D pair (the current conv's weight gradient against the
 * tap-scattered next-layer gradient, summed over the batch): {@link emitPairCorrelation} in the layout of the core's
 * `ConvStatistics.accumulateTapGradient`.
 */
export function emitTapGradient(e: Emitter, g: string | LatticeGradient[], x: string, zInfo: TensorInfo, geo: ConvPairGeometry, t: number): string {
  const [k1h, k1w] = geo.kernel1;
  const F = geo.kernel2[0] * geo.kernel2[1] * geo.outChannels;
  const c = emitPairCorrelation(e, g, x, zInfo, convPairGeometryToND(geo), t); // [m0, m2, P1, P2]
  return e.reshape(e.transpose(c, [2, 0, 3, 1]), [k1h, k1w, geo.inChannels, F]);
}

/**
 * The growth matrix sum `[Π k2 · m2, Π k1 · m0]` (rows (b…, c_out), columns (a…, c_in), summed over the batch) of a
 * pair with any number of axes: {@link emitPairCorrelation} in the layout of `DenseStatistics.addSum`.
 */
export function emitPairMoment(e: Emitter, g: string | LatticeGradient[], x: string, zInfo: TensorInfo, geo: ConvPairGeometryND, t: number): string {
  const P1 = prod(geo.axes.map((a) => a.kernel1));
  const P2 = prod(geo.axes.map((a) => a.kernel2));
  const c = emitPairCorrelation(e, g, x, zInfo, geo, t);
  return e.reshape(e.transpose(c, [3, 1, 2, 0]), [P2 * geo.outChannels, P1 * geo.inChannels]);
}
