/**
 * Sketched growth matrices in the probe graph: Y = M·Ω and W = Ψ·M (see `SketchStatistics` in `@gradmax/core`)
 * computed from the forward and backward tensors without forming M.
 *
 * Conv pair (current conv k1/s1/p1 on x, next conv k2/s2/p2 with output gradient g). Column (a, c) of M is the
 * current kernel's tap a and input channel c; row (b, o) the next kernel's tap b and output channel o.
 * - Y = M·Ω: run the current conv on x with the r columns of Ω as its filters (same stride and padding) to get an
 *   r-channel intermediate map h; Y is the next conv's weight gradient with input h and output gradient g, i.e.
 *   what the next layer's weights would get if r new channels with incoming kernels Ω fed it.
 * - W = Ψ·M: the next conv's input gradient of g with Ψ's rows as its weights (a ConvTranspose with l outputs, or
 *   for stride 1 a Conv with the flipped weights, gives an l-channel gradient q on the intermediate map, zero in the
 *   next conv's padding); W is the current conv's weight gradient with input x and output gradient q.
 * Both weight gradients are one Conv each with batch and channels swapped (the batch is summed like a channel).
 * Their cost is that of the two layers with r (or l) channels instead of m1.
 *
 * Dense pair (g `[B, F]`, h `[B, K]`): Y = gᵀ(h·Ω), W = (g·Ψᵀ)ᵀh.
 * @packageDocumentation
 */
import { InvalidArgumentError, Matrix, UnsupportedError, sketchTestMatrices, DEFAULT_SKETCH_RANK } from '@gradmax/core';
import type { ConvPairGeometry, ConvPairGeometryND, SketchTestMatrices } from '@gradmax/core';
import type { Emitter } from './emitter.js';
import type { LatticeGradient } from './build.js';

/**
 * How the probe computes a site's statistic:
 * - `exact`: the whole growth matrix M;
 * - `sketch`: the randomized sketch (Y = M·Ω, W = Ψ·M) of rank `sketchRank`;
 * - `auto`: the sketch where M is large (see {@link preferSketch}), else exact.
 */
export type ProbeStatisticsMode = 'exact' | 'sketch' | 'auto';

/** The probe's sketch settings. */
export interface ProbeSketchSettings {
  /** Range sketch width r (k new units + oversampling). */
  rank: number;
  /** Co-range sketch height l (≥ r). */
  rowSketch: number;
  /** Seed of the Gaussian test matrices. */
  seed: number;
}

/** Sketch settings from the probe options: rank default `DEFAULT_SKETCH_RANK`, rows 2r + 1, seed 0. */
export function sketchSettings(options: { sketchRank?: number; sketchRows?: number; sketchSeed?: number }): ProbeSketchSettings {
  const rank = options.sketchRank ?? DEFAULT_SKETCH_RANK;
  if (!Number.isInteger(rank) || rank < 1) throw new InvalidArgumentError(`sketchRank must be a positive integer, got ${rank}`, { sketchRank: rank });
  const rowSketch = options.sketchRows ?? 2 * rank + 1;
  if (!Number.isInteger(rowSketch) || rowSketch < rank) throw new InvalidArgumentError(`sketchRows must be an integer ≥ sketchRank (${rank}), got ${rowSketch}`, { sketchRows: rowSketch });
  const seed = options.sketchSeed ?? 0;
  if (!Number.isSafeInteger(seed)) throw new InvalidArgumentError(`sketchSeed must be a safe integer, got ${seed}`, { sketchSeed: seed });
  return { rank, rowSketch, seed };
}

/**
 * Entries of M below which `auto` keeps the exact statistic: 2^20 for a dense pair (whose exact statistic is one
 * product, about the cost of the layer's weight gradient), 2^12 for a conv pair (whose exact statistic also pays
 * per-site overheads: up to nine boundary-corrected correlations and a gather over the taps).
 */
export const SKETCH_AUTO_MIN_ENTRIES = { dense: 2 ** 20, conv: 2 ** 12 } as const;

/** Estimated multiply-adds per example of a site's exact statistic and of its sketch (see {@link statisticCosts}). */
export interface StatisticCosts {
  /** The exact statistic. */
  exact: number;
  /** The sketch. */
  sketch: number;
}

/**
 * Multiply-adds per example (per row for a dense pair) of the exact statistic and of the sketch:
 * - conv pair: exact m0·m2·Dh·Dw·H2·W2, the correlation every tap pair is read from (D = s1·(k2 − 1) + k1);
 *   sketch (r + l)·(K·H1·W1 + F·H2·W2), the two r-channel and two l-channel convolutions;
 * - dense pair: exact F·K, sketch (r + l)·(F + K).
 */
export function statisticCosts(fanOut: number, fanIn: number, geometry: ConvPairGeometry | undefined, settings: ProbeSketchSettings): StatisticCosts {
  const width = settings.rank + settings.rowSketch;
  if (!geometry) return { exact: fanOut * fanIn, sketch: width * (fanOut + fanIn) };
  const g = geometry;
  const span = (i: 0 | 1) => g.stride1[i] * (g.kernel2[i] - 1) + g.kernel1[i];
  const out = g.outputSize[0] * g.outputSize[1];
  return {
    exact: g.inChannels * g.outChannels * span(0) * span(1) * out,
    sketch: width * (fanIn * g.midSize[0] * g.midSize[1] + fanOut * out),
  };
}

/**
 * The `auto` rule: sketch a `[fanOut × fanIn]` growth matrix when it has at least {@link SKETCH_AUTO_MIN_ENTRIES}
 * entries (of its kind) AND the sketch's estimated cost is at most the exact statistic's ({@link statisticCosts},
 * summed over a group's pairs). The estimate favours the exact statistic, which was measured slower per multiply-add
 * (batch 32, 64×64, one thread): ResNet-18's `layer1` pairs, estimated 26 M exact against 14 M sketch multiply-adds
 * per example, cost about 0.5× one inference each exact and about 0.1× sketched; DenseNet-121's 58 pairs (M of
 * 288 × m0) took 15× one inference exact and 4.8× sketched. An MLP keeps its exact M; ResNet-18 and DenseNet-121
 * sketch every pair.
 */
export function preferSketch(fanOut: number, fanIn: number, costs: StatisticCosts, kind: 'dense' | 'conv' = 'conv'): boolean {
  return fanOut * fanIn >= SKETCH_AUTO_MIN_ENTRIES[kind] && costs.sketch <= costs.exact;
}

/** The test matrices of one site: its own, from the settings (a group passes blocks of the group's instead). */
export function siteTestMatrices(fanOut: number, fanIn: number, settings: ProbeSketchSettings): SketchTestMatrices {
  return sketchTestMatrices(fanOut, fanIn, settings.rank, settings.rowSketch, settings.seed);
}

/** Names of the two sketch outputs of a site. */
export interface SketchOutputs {
  /** Σ over the batch of Y = M·Ω, `[fanOut, r]`. */
  range: string;
  /** Σ over the batch of W = Ψ·M, `[l, fanIn]`. */
  coRange: string;
}

/**
 * out[c, o, a] = Σ_n Σ_y x[n, c, s·y + a − p] · gy[n, o, y] (zero outside x), `[C, O, kh, kw]`: a conv's weight
 * gradient (layout `[O, C, kh, kw]` transposed on the first two axes) as ONE Conv with x as `[C, N, H, W]` the
 * batch and gy as `[O, N, Ho, Wo]` the weights, dilated by the stride.
 */
function weightGradient(e: Emitter, x: string, C: number, inSize: [number, number], gy: string, O: number, outSize: [number, number], kernel: [number, number], stride: [number, number], padBegin: [number, number]): string {
  if (kernel[0] === 1 && kernel[1] === 1 && padBegin[0] === 0 && padBegin[1] === 0 && e.opset >= 12) {
    // One tap: a product over batch and positions. onnxruntime's Conv with a kernel as large as the map is several
    // times slower than this Einsum (the positions of x a 1×1 window reads are every stride-th, from 0).
    const reach = [stride[0] * (outSize[0] - 1) + 1, stride[1] * (outSize[1] - 1) + 1];
    const read = reach[0] === inSize[0] && reach[1] === inSize[1] && stride[0] === 1 && stride[1] === 1 ? x : e.op('Slice', [x, e.ints([0, 0]), e.ints(reach), e.ints([2, 3]), e.ints([stride[0], stride[1]])]);
    return e.reshape(e.op('Einsum', [read, gy], { equation: 'nchw,nohw->co' }), [C, O, 1, 1]);
  }
  const xt = C === 1 ? e.reshape(x, [1, -1, inSize[0], inSize[1]]) : e.transpose(x, [1, 0, 2, 3]);
  const gt = O === 1 ? e.reshape(gy, [1, -1, outSize[0], outSize[1]]) : e.transpose(gy, [1, 0, 2, 3]);
  const starts: number[] = [];
  const ends: number[] = [];
  const pads = [0, 0, 0, 0];
  const dilations: number[] = [];
  let sliced = false;
  for (let i = 0; i < 2; i++) {
    const lo = -padBegin[i]!;
    const hi = stride[i]! * (outSize[i]! - 1) + kernel[i]! - padBegin[i]!;
    const from = Math.max(0, lo);
    const to = Math.min(inSize[i]!, hi);
    if (to <= from) throw new UnsupportedError(`sketch: a conv window reads only padding (axis ${i})`, { axis: i });
    if (from > 0 || to < inSize[i]!) sliced = true;
    starts.push(from);
    ends.push(to);
    pads[i] = from - lo;
    pads[i + 2] = hi - to;
    dilations.push(outSize[i]! > 1 ? stride[i]! : 1);
  }
  const input = sliced ? e.op('Slice', [xt, e.ints(starts), e.ints(ends), e.ints([2, 3])]) : xt;
  return e.op('Conv', [input, gt], { kernel_shape: [outSize[0], outSize[1]], dilations, pads });
}

/** `[N, C, ·, ·]` → the size a conv with this kernel/stride/padding gives, per axis. */
function convOutSize(inSize: number, k: number, s: number, pb: number, pe: number): number {
  return Math.floor((inSize + pb + pe - k) / s) + 1;
}

/**
 * Emits Σ Y and Σ W of a conv pair site (see the module docs). `g` is the next conv's output gradient, `[N, m2, H2,
 * W2]` (or `[N, m2]` for a conv→flatten→dense site), `x` the current conv's input `[N, m0, H0, W0]`.
 */
export function emitConvSketch(e: Emitter, g: string, x: string, geo: ConvPairGeometry, t: number, tests: SketchTestMatrices): SketchOutputs {
  const [k1h, k1w] = geo.kernel1;
  const [k2h, k2w] = geo.kernel2;
  const m0 = geo.inChannels;
  const m2 = geo.outChannels;
  const [H0, W0] = geo.inputSize;
  const [H1, W1] = geo.midSize;
  const [H2, W2] = geo.outputSize;
  const K = k1h * k1w * m0;
  const F = k2h * k2w * m2;
  const r = tests.omega.cols;
  const l = tests.psi.rows;
  if (tests.omega.rows !== K || tests.psi.cols !== F) throw new UnsupportedError(`sketch: test matrices [${tests.omega.rows} × ${r}] and [${l} × ${tests.psi.cols}] do not fit M [${F} × ${K}]`);
  const p1 = geo.pad1;
  const p2 = geo.pad2;
  const [s1h, s1w] = geo.stride1;
  const [s2h, s2w] = geo.stride2;
  if (convOutSize(H0, k1h, s1h, p1.top, p1.bottom) !== H1 || convOutSize(W0, k1w, s1w, p1.left, p1.right) !== W1) {
    throw new UnsupportedError(`sketch: the current conv's geometry does not give the intermediate map [${H1}, ${W1}]`, { geometry: geo });
  }
  const g4 = e.reshape(g, [-1, m2, H2, W2]);

  // Y: the current conv with Ω's columns as filters, then the next conv's weight gradient.
  const wOmega = new Float64Array(r * m0 * k1h * k1w);
  for (let ah = 0; ah < k1h; ah++) for (let aw = 0; aw < k1w; aw++) for (let c = 0; c < m0; c++) {
    const row = ((ah * k1w + aw) * m0 + c) * r;
    for (let j = 0; j < r; j++) wOmega[((j * m0 + c) * k1h + ah) * k1w + aw] = tests.omega.data[row + j]!;
  }
  const omegaFilters = e.constant(t, [r, m0, k1h, k1w], wOmega, 'sketch_omega');
  const h = e.op('Conv', [x, omegaFilters], { kernel_shape: [k1h, k1w], strides: [s1h, s1w], pads: [p1.top, p1.left, p1.bottom, p1.right] });
  const yConv = weightGradient(e, h, r, [H1, W1], g4, m2, [H2, W2], [k2h, k2w], [s2h, s2w], [p2.top, p2.left]); // [r, m2, k2h, k2w]
  const range = e.reshape(e.transpose(yConv, [2, 3, 1, 0]), [F, r]);

  // W: the next conv's input gradient with Ψ's rows as its weights, then the current conv's weight gradient.
  let q: string;
  if (s2h === 1 && s2w === 1) {
    // Stride 1: the input gradient as a plain Conv with Ψ's weights flipped and swapped (onnxruntime's Conv gets its
    // NCHWc kernels, ConvTranspose never does): q[u] = Σ_b Ψ[b]·g[u + p2 − b], i.e. g padded by k2 − 1 − p2 in front
    // and by whatever gives H1 outputs behind (a negative pad crops g).
    const wFlip = new Float64Array(l * m2 * k2h * k2w);
    for (let i = 0; i < l; i++) for (let o = 0; o < m2; o++) for (let bh = 0; bh < k2h; bh++) for (let bw = 0; bw < k2w; bw++) {
      wFlip[((i * m2 + o) * k2h + (k2h - 1 - bh)) * k2w + (k2w - 1 - bw)] = tests.psi.data[i * F + (bh * k2w + bw) * m2 + o]!;
    }
    const begin = [k2h - 1 - p2.top, k2w - 1 - p2.left];
    const end = [H1 - H2 + k2h - 1 - begin[0]!, W1 - W2 + k2w - 1 - begin[1]!];
    const crop = begin.some((v) => v < 0) || end.some((v) => v < 0);
    const input = crop ? e.op('Slice', [g4, e.ints([Math.max(0, -begin[0]!), Math.max(0, -begin[1]!)]), e.ints([H2 - Math.max(0, -end[0]!), W2 - Math.max(0, -end[1]!)]), e.ints([2, 3])]) : g4;
    const pads = [Math.max(0, begin[0]!), Math.max(0, begin[1]!), Math.max(0, end[0]!), Math.max(0, end[1]!)];
    q = e.op('Conv', [input, e.constant(t, [l, m2, k2h, k2w], wFlip, 'sketch_psi_flipped')], { kernel_shape: [k2h, k2w], pads });
  } else {
    const wPsi = new Float64Array(m2 * l * k2h * k2w);
    for (let i = 0; i < l; i++) for (let bh = 0; bh < k2h; bh++) for (let bw = 0; bw < k2w; bw++) for (let o = 0; o < m2; o++) {
      wPsi[((o * l + i) * k2h + bh) * k2w + bw] = tests.psi.data[i * F + (bh * k2w + bw) * m2 + o]!;
    }
    const psiWeights = e.constant(t, [m2, l, k2h, k2w], wPsi, 'sketch_psi');
    const ends = [s2h * (H2 - 1) + k2h - p2.top - H1, s2w * (W2 - 1) + k2w - p2.left - W1];
    q = e.op('ConvTranspose', [g4, psiWeights], { kernel_shape: [k2h, k2w], strides: [s2h, s2w], pads: [p2.top, p2.left, Math.max(0, ends[0]!), Math.max(0, ends[1]!)] });
    // Intermediate positions no output window reaches get no gradient.
    if (ends[0]! < 0 || ends[1]! < 0) q = e.op('Pad', [q, e.ints([0, 0, 0, 0, 0, 0, Math.max(0, -ends[0]!), Math.max(0, -ends[1]!)])]);
  }
  const wConv = weightGradient(e, x, m0, [H0, W0], q, l, [H1, W1], [k1h, k1w], [s1h, s1w], [p1.top, p1.left]); // [m0, l, k1h, k1w]
  const coRange = e.reshape(e.transpose(wConv, [1, 2, 3, 0]), [l, K]);
  return { range, coRange };
}

/**
 * Emits Σ Y and Σ W of a dense pair: `g2` `[B, F]`, `h2` `[B, K]` (or `[K, B]` when `transposed`).
 */
export function emitDenseSketch(e: Emitter, g2: string, h2: string, transposed: boolean, t: number, tests: SketchTestMatrices): SketchOutputs {
  const K = tests.omega.rows;
  const r = tests.omega.cols;
  const l = tests.psi.rows;
  const F = tests.psi.cols;
  const omega = e.constant(t, [K, r], tests.omega.data, 'sketch_omega');
  const psiT = new Matrix(F, l);
  for (let i = 0; i < l; i++) for (let f = 0; f < F; f++) psiT.data[f * l + i] = tests.psi.data[i * F + f]!;
  const psiTName = e.constant(t, [F, l], psiT.data, 'sketch_psi_t');
  const hRows = transposed ? e.transpose(h2, [1, 0]) : h2; // [B, K]
  const hOmega = e.op('MatMul', [hRows, omega]); // [B, r]
  const gPsi = e.op('MatMul', [g2, psiTName]); // [B, l]
  if (e.opset >= 12) {
    return {
      range: e.op('Einsum', [g2, hOmega], { equation: 'nf,nr->fr' }),
      coRange: e.op('Einsum', [gPsi, hRows], { equation: 'nl,nk->lk' }),
    };
  }
  return { range: e.op('MatMul', [e.transpose(g2, [1, 0]), hOmega]), coRange: e.op('MatMul', [e.transpose(gPsi, [1, 0]), hRows]) };
}

/**
 * The next conv's output gradient `[N, m2, H2, W2]` from gradients known on lattices of output positions y =
 * step·h + offset (zero elsewhere, see `LatticeGradient`): each lattice interleaved with zeros, shifted into place
 * and the lattices summed.
 */
export function denseFromLattices(e: Emitter, lattices: readonly LatticeGradient[], m2: number, outSize: [number, number]): string {
  const [H2, W2] = outSize;
  const parts = lattices.map((lat) => {
    const [Hh, Wh] = lat.size;
    const [sh, sw] = lat.step;
    const [oh, ow] = lat.offset;
    let grid = lat.grad;
    if (sh > 1 || sw > 1) {
      const spread = e.op('Pad', [e.reshape(lat.grad, [-1, Hh, 1, Wh, 1]), e.ints([0, 0, 0, 0, 0, 0, 0, sh - 1, 0, sw - 1])]);
      grid = e.reshape(spread, [-1, m2, Hh * sh, Wh * sw]);
    }
    const endH = H2 - (oh + Hh * sh);
    const endW = W2 - (ow + Wh * sw);
    let placed = oh > 0 || ow > 0 || endH > 0 || endW > 0 ? e.op('Pad', [grid, e.ints([0, 0, oh, ow, 0, 0, Math.max(0, endH), Math.max(0, endW)])]) : grid;
    if (endH < 0 || endW < 0) placed = e.op('Slice', [placed, e.ints([0, 0]), e.ints([H2, W2]), e.ints([2, 3])]);
    return placed;
  });
  return parts.reduce((a, b) => e.op('Add', [a, b]));
}

/** The 2-D geometry of an N-axis pair when it is one (two spatial axes, no dilation); undefined otherwise. */
export function planarGeometry(geo: ConvPairGeometryND): ConvPairGeometry | undefined {
  if (geo.axes.length !== 2 || geo.axes.some((a) => a.dilation1 !== 1 || a.dilation2 !== 1)) return undefined;
  const [h, w] = geo.axes as [ConvPairGeometryND['axes'][number], ConvPairGeometryND['axes'][number]];
  return {
    inChannels: geo.inChannels,
    midChannels: geo.midChannels,
    outChannels: geo.outChannels,
    kernel1: [h.kernel1, w.kernel1],
    stride1: [h.stride1, w.stride1],
    pad1: { top: h.padBegin1, left: w.padBegin1, bottom: h.padEnd1, right: w.padEnd1 },
    kernel2: [h.kernel2, w.kernel2],
    stride2: [h.stride2, w.stride2],
    pad2: { top: h.padBegin2, left: w.padBegin2, bottom: h.padEnd2, right: w.padEnd2 },
    inputSize: [h.inSize, w.inSize],
    midSize: [h.midSize, w.midSize],
    outputSize: [h.outSize, w.outSize],
  };
}
