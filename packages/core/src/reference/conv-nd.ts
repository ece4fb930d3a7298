/**
 * Naive, loop-by-loop references for convolutions with any number of spatial axes, dilations, groups and transposed
 * convolutions (channels-first layouts, as ONNX stores them), and the exact growth matrix of such a pair (method
 * reference §2.5, generalised). Written for clarity, not speed: the independent ground truth for the ONNX probe.
 * @packageDocumentation
 */
import { InvalidArgumentError, ShapeMismatchError } from '../errors.js';
import { Matrix } from '../matrix.js';

/** A channels-first tensor: `dims = [N, C, ...spatial]`, row-major `data`. */
export interface TensorND {
  /** Dimensions `[N, C, ...spatial]`. */
  dims: readonly number[];
  /** Row-major entries. */
  data: ArrayLike<number>;
}

/**
 * One conv layer along every spatial axis, ONNX semantics. A conv (`transposed` false) reads input position
 * `stride·o + dilation·t − padBegin` for output position o and tap t; a transposed conv writes output position
 * `stride·i + dilation·t − padBegin` from input position i.
 */
export interface NaiveConvLayer {
  /** ConvTranspose rather than Conv. */
  transposed?: boolean;
  /** Kernel size per axis. */
  kernel: readonly number[];
  /** Stride per axis (default 1). */
  stride?: readonly number[];
  /** Dilation per axis (default 1). */
  dilation?: readonly number[];
  /** Leading padding per axis (default 0). */
  padBegin?: readonly number[];
  /** Conv group count (default 1). */
  group?: number;
}

const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

/** Calls `visit(index, flat)` for every multi-index below `sizes` (row-major, last axis fastest). */
function forEachIndex(sizes: readonly number[], visit: (index: number[], flat: number) => void): void {
  const n = prod(sizes);
  const idx = new Array<number>(sizes.length).fill(0);
  for (let f = 0; f < n; f++) {
    visit(idx, f);
    for (let a = sizes.length - 1; a >= 0; a--) {
      if (++idx[a]! < sizes[a]!) break;
      idx[a] = 0;
    }
  }
}

function flatOf(index: readonly number[], sizes: readonly number[]): number {
  let f = 0;
  for (let a = 0; a < sizes.length; a++) f = f * sizes[a]! + index[a]!;
  return f;
}

const per = (v: readonly number[] | undefined, i: number, d: number) => v?.[i] ?? d;

/**
 * For a layer and one axis: the position on the layer's *input* side matching output position `o` and tap `t`, or
 * -1 when there is none (outside the input, or between the strides of a transposed conv).
 */
function inputPosition(layer: NaiveConvLayer, axis: number, o: number, t: number, inSize: number): number {
  const s = per(layer.stride, axis, 1);
  const e = per(layer.dilation, axis, 1);
  const p = per(layer.padBegin, axis, 0);
  if (!layer.transposed) {
    const i = s * o + e * t - p;
    return i >= 0 && i < inSize ? i : -1;
  }
  const r = o - e * t + p;
  if (r < 0 || r % s !== 0) return -1;
  const i = r / s;
  return i < inSize ? i : -1;
}

/**
 * Forward conv (or transposed conv) of a channels-first tensor.
 * Conv weight `[Cout, Cin/G, ...k]`; transposed weight `[Cin, Cout/G, ...k]` (ONNX layouts).
 * @param outSize - spatial output size (required for transposed convs, where output padding makes it ambiguous;
 * computed for convs when omitted)
 */
export function naiveConvND(x: TensorND, w: TensorND, layer: NaiveConvLayer, outSize?: readonly number[]): TensorND & { data: Float64Array } {
  const [N, C, ...S] = x.dims as number[];
  const G = layer.group ?? 1;
  const k = [...layer.kernel];
  if (w.dims.length !== 2 + S.length || k.some((v, i) => w.dims[2 + i] !== v)) throw new ShapeMismatchError('naiveConvND weight', [-1, -1, ...k], [...w.dims]);
  const cout = layer.transposed ? w.dims[1]! * G : w.dims[0]!;
  const cinG = C! / G;
  const coutG = cout / G;
  if (!Number.isInteger(cinG) || !Number.isInteger(coutG)) throw new InvalidArgumentError(`naiveConvND: channels ${C} → ${cout} do not split into ${G} groups`);
  if ((layer.transposed ? w.dims[0] : w.dims[1]! * G) !== C) throw new ShapeMismatchError('naiveConvND weight channels', [C!], [layer.transposed ? w.dims[0]! : w.dims[1]! * G]);
  const out =
    outSize ??
    S.map((s, i) => {
      if (layer.transposed) throw new InvalidArgumentError('naiveConvND: a transposed conv needs its output size');
      const span = per(layer.dilation, i, 1) * (k[i]! - 1) + 1;
      return Math.floor((s + 2 * per(layer.padBegin, i, 0) - span) / per(layer.stride, i, 1)) + 1;
    });
  const y = new Float64Array(N! * cout * prod(out));
  const inSp = prod(S);
  const outSp = prod(out);
  const taps = prod(k);
  for (let n = 0; n < N!; n++) {
    forEachIndex(out, (o, of) => {
      forEachIndex(k, (t, tf) => {
        const i = o.map((ov, a) => inputPosition(layer, a, ov, t[a]!, S[a]!));
        if (i.some((v) => v < 0)) return;
        const xf = flatOf(i, S);
        for (let g = 0; g < G; g++) {
          for (let cl = 0; cl < cinG; cl++) {
            const c = g * cinG + cl;
            const xv = x.data[(n * C! + c) * inSp + xf]!;
            for (let ol = 0; ol < coutG; ol++) {
              const oc = g * coutG + ol;
              const wv = layer.transposed ? w.data[(c * coutG + ol) * taps + tf]! : w.data[(oc * cinG + cl) * taps + tf]!;
              y[(n * cout + oc) * outSp + of]! += xv * wv;
            }
          }
        }
      });
    });
  }
  return { dims: [N!, cout, ...out], data: y };
}

/** The layer pair of {@link naiveConvGrowthMatrixND}. */
export interface NaiveConvPair {
  /** The current layer (whose new output channel is the unit). */
  producer: NaiveConvLayer;
  /** The next layer (which reads the new channel). */
  consumer: NaiveConvLayer;
  /** Spatial size of the intermediate map (the producer's output). */
  midSize: readonly number[];
  /** Input channels `[start, end)` the new unit reads (default all: a unit of an ungrouped producer). */
  inChannels?: readonly [number, number];
  /** Output channels `[start, end)` the new channel feeds (default all: an ungrouped consumer). */
  outChannels?: readonly [number, number];
}

/**
 * The exact growth matrix of a conv pair, straight from its definition: with the new unit's map
 * `a[u] = Σ_{a, c} A[a, c] · x[c, in(u, a)]` and the next layer adding `Σ_{b, o} Ω[b, o] · a[u]` to `z[o, y]` for every
 * (u, b) that the next layer connects to y,
 * `M[(b, o), (a, c)] = (1/N) Σ_n Σ_{u, y connected by b} x[n, c, in(u, a)] · g[n, o, y]`, so that the gradient of
 * the loss with respect to A is f'(0)·Ωᵀ M. Rows (b…, o) with o fastest, columns (a…, c) with c fastest; channels
 * restricted to `pair.inChannels` / `pair.outChannels` (local indices). Covers any number of axes, strides,
 * dilations, paddings and transposed layers on either side.
 * @param x - the producer's input `[N, m0, ...inSize]`
 * @param g - per-example gradients of the consumer's output `[N, m2, ...outSize]`
 */
export function naiveConvGrowthMatrixND(x: TensorND, g: TensorND, pair: NaiveConvPair): Matrix {
  const [N, m0, ...S0] = x.dims as number[];
  const [N2, m2, ...S2] = g.dims as number[];
  const S1 = [...pair.midSize];
  if (N2 !== N || S0.length !== S1.length || S2.length !== S1.length) throw new ShapeMismatchError('naiveConvGrowthMatrixND gradient', [N!, -1, ...S1.map(() => -1)], [...g.dims]);
  const [c0, c1] = pair.inChannels ?? [0, m0!];
  const [o0, o1] = pair.outChannels ?? [0, m2!];
  const k1 = pair.producer.kernel;
  const k2 = pair.consumer.kernel;
  const mIn = c1 - c0;
  const mOut = o1 - o0;
  const fanIn = prod(k1) * mIn;
  const fanOut = prod(k2) * mOut;
  const m = new Matrix(fanOut, fanIn);
  const sp0 = prod(S0);
  const sp2 = prod(S2);
  for (let n = 0; n < N!; n++) {
    forEachIndex(S1, (u) => {
      forEachIndex(k2, (b, bf) => {
        // The output position y that tap b connects to u: the consumer reads u at y (conv), or writes y from u (transposed).
        const y: number[] = [];
        for (let a = 0; a < S1.length; a++) {
          const consumer = pair.consumer;
          const s = per(consumer.stride, a, 1);
          const e = per(consumer.dilation, a, 1);
          const p = per(consumer.padBegin, a, 0);
          let v: number;
          if (consumer.transposed) v = s * u[a]! + e * b[a]! - p;
          else {
            const r = u[a]! - e * b[a]! + p;
            v = r >= 0 && r % s === 0 ? r / s : -1;
          }
          if (v < 0 || v >= S2[a]!) return;
          y.push(v);
        }
        const yf = flatOf(y, S2);
        forEachIndex(k1, (t, af) => {
          const i = u.map((uv, a) => inputPosition(pair.producer, a, uv, t[a]!, S0[a]!));
          if (i.some((v) => v < 0)) return;
          const xf = flatOf(i, S0);
          for (let c = 0; c < mIn; c++) {
            const xv = x.data[(n * m0! + c0 + c) * sp0 + xf]!;
            const col = af * mIn + c;
            for (let o = 0; o < mOut; o++) m.data[(bf * mOut + o) * fanIn + col] += (xv * g.data[(n * m2! + o0 + o) * sp2 + yf]!) / N!;
          }
        });
      });
    });
  }
  return m;
}
