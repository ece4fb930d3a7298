/**
 * Geometry of conv growth sites with any number of spatial axes (1-D, 2-D, 3-D convs) and dilations: the
 * N-axis generalisation of {@link ConvPairGeometry}, used by adapters whose convs are not 2-D or are dilated.
 *
 * Per spatial axis, the current conv (kernel k1, stride s1, dilation e1, leading pad p1) reads input position
 * `s1·u + e1·a − p1` for intermediate position u and tap a; the next conv reads intermediate position
 * `u = s2·y + e2·b − p2` for output position y and tap b. Layouts follow the core conventions: a unit's incoming
 * vector is ordered (a…, c_in) with c_in fastest and the taps row-major over the axes, its outgoing vector
 * (b…, c_out) with c_out fastest.
 * @packageDocumentation
 */
import { InvalidArgumentError, ShapeMismatchError } from '../errors.js';
import type { ConvPairGeometry } from '../site.js';

/** One spatial axis of a conv pair: sizes and both convs' kernel, stride, dilation and per-side padding. */
export interface ConvPairAxis {
  /** Size of the current conv's input along this axis (H0). */
  inSize: number;
  /** Size of the intermediate map (the current conv's output, H1). */
  midSize: number;
  /** Size of the next conv's output (H2). */
  outSize: number;
  /** Current conv kernel size k1. */
  kernel1: number;
  /** Current conv stride s1. */
  stride1: number;
  /** Current conv dilation e1. */
  dilation1: number;
  /** Current conv padding before the input (leading, p1). */
  padBegin1: number;
  /** Current conv padding after the input. */
  padEnd1: number;
  /** Next conv kernel size k2. */
  kernel2: number;
  /** Next conv stride s2. */
  stride2: number;
  /** Next conv dilation e2. */
  dilation2: number;
  /** Next conv padding before the intermediate map (p2). */
  padBegin2: number;
  /** Next conv padding after the intermediate map. */
  padEnd2: number;
}

/** Geometry of a conv→conv growth site with any number of spatial axes (see the module notes for the conventions). */
export interface ConvPairGeometryND {
  /** Input channels m0 of the current conv. */
  inChannels: number;
  /** Output channels m1 of the current conv (= units). */
  midChannels: number;
  /** Output channels m2 of the next conv. */
  outChannels: number;
  /** The spatial axes, outermost first. */
  axes: ConvPairAxis[];
}

/** Options of {@link makeConvPairGeometryND}. Per-axis arrays have one entry per spatial axis. */
export interface ConvPairNDOptions {
  /** Input channels m0 of the current conv. */
  inChannels: number;
  /** Output channels m1 of the current conv. */
  midChannels: number;
  /** Output channels m2 of the next conv. */
  outChannels: number;
  /** Spatial size of the current conv's input. */
  inputSize: readonly number[];
  /** Current conv kernel. */
  kernel1: readonly number[];
  /** Current conv strides (default 1). */
  stride1?: readonly number[];
  /** Current conv dilations (default 1). */
  dilation1?: readonly number[];
  /** Current conv pads in ONNX order `[begin…, end…]` (default 0). */
  pads1?: readonly number[];
  /** Next conv kernel. */
  kernel2: readonly number[];
  /** Next conv strides (default 1). */
  stride2?: readonly number[];
  /** Next conv dilations (default 1). */
  dilation2?: readonly number[];
  /** Next conv pads in ONNX order `[begin…, end…]` (default 0). */
  pads2?: readonly number[];
  /** Site name used in error messages. */
  name?: string;
}

function ints(values: readonly number[] | undefined, n: number, fallback: number, min: number, what: string): number[] {
  const v = values ? [...values] : new Array<number>(n).fill(fallback);
  if (v.length !== n) throw new ShapeMismatchError(what, [n], [v.length], { what });
  for (const x of v) if (!Number.isInteger(x) || x < min) throw new InvalidArgumentError(`${what} must hold integers ≥ ${min}, got [${v.join(', ')}]`, { what, value: v });
  return v;
}

/** Output size of a conv along one axis: `floor((in + begin + end − e·(k − 1) − 1) / s) + 1` (throws when the kernel does not fit). */
export function convAxisOutputSize(inSize: number, kernel: number, stride: number, dilation: number, padBegin: number, padEnd: number, what = 'conv'): number {
  const span = dilation * (kernel - 1) + 1;
  const padded = inSize + padBegin + padEnd;
  if (padded < span) throw new InvalidArgumentError(`${what}: padded input ${padded} is smaller than the dilated kernel ${span}`, { what, inSize, kernel, dilation, padBegin, padEnd });
  return Math.floor((padded - span) / stride) + 1;
}

/**
 * Builds and validates the N-axis geometry of a conv→conv growth site (1 to 3 spatial axes are what ONNX convs
 * have; any count is accepted). Throws {@link InvalidArgumentError} for non-positive sizes or maps smaller than a
 * dilated kernel, {@link ShapeMismatchError} when the per-axis arrays disagree in length.
 */
export function makeConvPairGeometryND(options: ConvPairNDOptions): ConvPairGeometryND {
  const name = options.name ?? 'conv pair';
  const n = options.inputSize.length;
  if (n < 1) throw new InvalidArgumentError(`${name}: a conv pair needs at least one spatial axis`, { name });
  const channels = (v: number, what: string) => {
    if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`${name}: ${what} must be a positive integer, got ${v}`, { name, what, value: v });
    return v;
  };
  const inputSize = ints(options.inputSize, n, 1, 1, `${name}: inputSize`);
  const k1 = ints(options.kernel1, n, 1, 1, `${name}: kernel1`);
  const s1 = ints(options.stride1, n, 1, 1, `${name}: stride1`);
  const e1 = ints(options.dilation1, n, 1, 1, `${name}: dilation1`);
  const p1 = ints(options.pads1, 2 * n, 0, 0, `${name}: pads1`);
  const k2 = ints(options.kernel2, n, 1, 1, `${name}: kernel2`);
  const s2 = ints(options.stride2, n, 1, 1, `${name}: stride2`);
  const e2 = ints(options.dilation2, n, 1, 1, `${name}: dilation2`);
  const p2 = ints(options.pads2, 2 * n, 0, 0, `${name}: pads2`);
  const axes: ConvPairAxis[] = inputSize.map((inSize, i) => {
    const midSize = convAxisOutputSize(inSize, k1[i]!, s1[i]!, e1[i]!, p1[i]!, p1[n + i]!, `${name}: current conv, axis ${i}`);
    const outSize = convAxisOutputSize(midSize, k2[i]!, s2[i]!, e2[i]!, p2[i]!, p2[n + i]!, `${name}: next conv, axis ${i}`);
    return {
      inSize,
      midSize,
      outSize,
      kernel1: k1[i]!,
      stride1: s1[i]!,
      dilation1: e1[i]!,
      padBegin1: p1[i]!,
      padEnd1: p1[n + i]!,
      kernel2: k2[i]!,
      stride2: s2[i]!,
      dilation2: e2[i]!,
      padBegin2: p2[i]!,
      padEnd2: p2[n + i]!,
    };
  });
  return { inChannels: channels(options.inChannels, 'inChannels'), midChannels: channels(options.midChannels, 'midChannels'), outChannels: channels(options.outChannels, 'outChannels'), axes };
}

/** The N-axis form (two axes, dilation 1) of a 2-D {@link ConvPairGeometry}. */
export function convPairGeometryToND(geometry: ConvPairGeometry): ConvPairGeometryND {
  const pads = (p: ConvPairGeometry['pad1']) => [[p.top, p.bottom], [p.left, p.right]] as const;
  const q1 = pads(geometry.pad1);
  const q2 = pads(geometry.pad2);
  const axes: ConvPairAxis[] = [0, 1].map((i) => ({
    inSize: geometry.inputSize[i]!,
    midSize: geometry.midSize[i]!,
    outSize: geometry.outputSize[i]!,
    kernel1: geometry.kernel1[i]!,
    stride1: geometry.stride1[i]!,
    dilation1: 1,
    padBegin1: q1[i]![0],
    padEnd1: q1[i]![1],
    kernel2: geometry.kernel2[i]!,
    stride2: geometry.stride2[i]!,
    dilation2: 1,
    padBegin2: q2[i]![0],
    padEnd2: q2[i]![1],
  }));
  return { inChannels: geometry.inChannels, midChannels: geometry.midChannels, outChannels: geometry.outChannels, axes };
}

/** Fan-in of one unit of an N-axis pair: Π k1 · m0 (order a…, c_in). */
export function convFanInND(geometry: ConvPairGeometryND): number {
  return geometry.axes.reduce((p, a) => p * a.kernel1, 1) * geometry.inChannels;
}

/** Fan-out of one unit of an N-axis pair: Π k2 · m2 (order b…, c_out). */
export function convFanOutND(geometry: ConvPairGeometryND): number {
  return geometry.axes.reduce((p, a) => p * a.kernel2, 1) * geometry.outChannels;
}
