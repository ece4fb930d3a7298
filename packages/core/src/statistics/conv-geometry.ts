/**
 * Geometry of conv growth sites: padding resolution (TF `same`, asymmetric), output sizes, validated
 * {@link ConvPairGeometry} construction, fan sizes, and the one-hot kernel used to tap-scatter gradients.
 * @packageDocumentation
 */
import { InvalidArgumentError, ShapeMismatchError, UnsupportedError } from '../errors.js';
import type { ConvPairGeometry, Padding2D } from '../site.js';

/**
 * How a conv pads its input.
 * - `'valid'`: no padding.
 * - `'same'`: TensorFlow semantics; total = max((ceil(in/s) − 1)·s + k − in, 0) per axis, `floor(total/2)`
 *   before and the rest after (so it can be asymmetric, e.g. stride 2 on even sizes).
 * - a number: that many pixels on every side.
 * - `[padH, padW]`: padH on top and bottom, padW on left and right.
 * - a {@link Padding2D}: explicit per-side padding.
 */
export type PaddingSpec = 'valid' | 'same' | number | [number, number] | Padding2D;

/** A spatial size, kernel size, stride or dilation: one number for both axes, or `[height, width]`. */
export type Size2D = number | readonly [number, number];

function pair(value: Size2D, what: string, min: number): [number, number] {
  if (!Array.isArray(value) && typeof value !== 'number') {
    throw new InvalidArgumentError(`${what} must be a number or a [height, width] pair`, { what, value });
  }
  if (Array.isArray(value) && value.length !== 2) throw new ShapeMismatchError(what, [2], [value.length]);
  const v: [number, number] = typeof value === 'number' ? [value, value] : [value[0], value[1]];
  for (const x of v) {
    if (!Number.isInteger(x) || x < min) {
      throw new InvalidArgumentError(`${what} must hold integers ≥ ${min}, got [${v.join(', ')}]`, { what, value: v });
    }
  }
  return v;
}

function checkPadding(p: Padding2D, what: string): Padding2D {
  for (const side of ['top', 'bottom', 'left', 'right'] as const) {
    const x = p[side];
    if (!Number.isInteger(x) || x < 0) {
      throw new InvalidArgumentError(`${what}.${side} must be a non-negative integer, got ${x}`, { what, side, value: x });
    }
  }
  return { top: p.top, bottom: p.bottom, left: p.left, right: p.right };
}

function sameAxis(input: number, kernel: number, stride: number): [number, number] {
  const total = Math.max((Math.ceil(input / stride) - 1) * stride + kernel - input, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

/**
 * Resolves a {@link PaddingSpec} into the per-side padding the framework actually applies.
 * @param spec - padding specification
 * @param inputSize - input spatial size `[H, W]` (only used by `'same'`)
 * @param kernel - kernel size `[kh, kw]` (only used by `'same'`)
 * @param stride - stride `[sh, sw]` (only used by `'same'`)
 * @param what - name used in error messages
 */
export function resolvePadding(spec: PaddingSpec, inputSize: Size2D, kernel: Size2D, stride: Size2D, what = 'padding'): Padding2D {
  if (spec === 'valid') return { top: 0, bottom: 0, left: 0, right: 0 };
  if (spec === 'same') {
    const [h, w] = pair(inputSize, `${what}: input size`, 1);
    const [kh, kw] = pair(kernel, `${what}: kernel`, 1);
    const [sh, sw] = pair(stride, `${what}: stride`, 1);
    const [top, bottom] = sameAxis(h, kh, sh);
    const [left, right] = sameAxis(w, kw, sw);
    return { top, bottom, left, right };
  }
  if (typeof spec === 'number' || Array.isArray(spec)) {
    const [ph, pw] = pair(spec as Size2D, what, 0);
    return { top: ph, bottom: ph, left: pw, right: pw };
  }
  if (spec && typeof spec === 'object') return checkPadding(spec as Padding2D, what);
  throw new InvalidArgumentError(`${what}: unknown padding specification ${JSON.stringify(spec)}`, { what, spec });
}

/**
 * Output spatial size of a conv: `floor((in + before + after − k) / s) + 1` per axis.
 * Throws {@link InvalidArgumentError} when the padded input is smaller than the kernel.
 */
export function convOutputSize(inputSize: Size2D, kernel: Size2D, stride: Size2D, padding: Padding2D, what = 'conv'): [number, number] {
  const [h, w] = pair(inputSize, `${what}: input size`, 1);
  const [kh, kw] = pair(kernel, `${what}: kernel`, 1);
  const [sh, sw] = pair(stride, `${what}: stride`, 1);
  const p = checkPadding(padding, `${what}: padding`);
  const oh = Math.floor((h + p.top + p.bottom - kh) / sh) + 1;
  const ow = Math.floor((w + p.left + p.right - kw) / sw) + 1;
  if (h + p.top + p.bottom < kh || w + p.left + p.right < kw) {
    throw new InvalidArgumentError(
      `${what}: padded input ${h + p.top + p.bottom}×${w + p.left + p.right} is smaller than the kernel ${kh}×${kw}`,
      { what, inputSize: [h, w], kernel: [kh, kw], padding: p },
    );
  }
  return [oh, ow];
}

/** Options of {@link makeConvPairGeometry}. Sizes accept one number for both axes or `[height, width]`. */
export interface ConvPairOptions {
  /** Input channels m0 of the current conv. */
  inChannels: number;
  /** Output channels m1 of the current conv (its current number of units). */
  midChannels: number;
  /** Output channels m2 of the next conv. */
  outChannels: number;
  /** Spatial size of the current conv's input. */
  inputSize: Size2D;
  /** Current conv kernel. */
  kernel1: Size2D;
  /** Current conv stride (default 1). */
  stride1?: Size2D;
  /** Current conv padding (default `'valid'`). */
  padding1?: PaddingSpec;
  /** Next conv kernel. */
  kernel2: Size2D;
  /** Next conv stride (default 1). */
  stride2?: Size2D;
  /** Next conv padding (default `'valid'`), resolved against the intermediate map size. */
  padding2?: PaddingSpec;
  /** Current conv dilation; only 1 is supported. */
  dilation1?: Size2D;
  /** Next conv dilation; only 1 is supported. */
  dilation2?: Size2D;
  /** Site name used in error messages. */
  name?: string;
}

function checkChannels(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 1) throw new InvalidArgumentError(`${what} must be a positive integer, got ${value}`, { what, value });
  return value;
}

function checkDilation(d: Size2D | undefined, what: string): void {
  if (d === undefined) return;
  const v = pair(d, what, 1);
  if (v[0] !== 1 || v[1] !== 1) {
    throw new UnsupportedError(`${what} is [${v.join(', ')}]; dilated convolutions are not supported by conv growth statistics`, { what, dilation: v });
  }
}

/**
 * Builds and validates the geometry of a conv→conv growth site. Paddings are resolved with the framework's
 * rule (`'same'` is TF's asymmetric rule; padding2 is resolved against the intermediate map).
 * Throws {@link InvalidArgumentError} for non-positive sizes or maps smaller than the kernel, and
 * {@link UnsupportedError} for dilation ≠ 1.
 */
export function makeConvPairGeometry(options: ConvPairOptions): ConvPairGeometry {
  const name = options.name ?? 'conv pair';
  checkDilation(options.dilation1, `${name}: dilation1`);
  checkDilation(options.dilation2, `${name}: dilation2`);
  const inChannels = checkChannels(options.inChannels, `${name}: inChannels`);
  const midChannels = checkChannels(options.midChannels, `${name}: midChannels`);
  const outChannels = checkChannels(options.outChannels, `${name}: outChannels`);
  const inputSize = pair(options.inputSize, `${name}: inputSize`, 1);
  const kernel1 = pair(options.kernel1, `${name}: kernel1`, 1);
  const stride1 = pair(options.stride1 ?? 1, `${name}: stride1`, 1);
  const pad1 = resolvePadding(options.padding1 ?? 'valid', inputSize, kernel1, stride1, `${name}: padding1`);
  const midSize = convOutputSize(inputSize, kernel1, stride1, pad1, `${name}: current conv`);
  const kernel2 = pair(options.kernel2, `${name}: kernel2`, 1);
  const stride2 = pair(options.stride2 ?? 1, `${name}: stride2`, 1);
  const pad2 = resolvePadding(options.padding2 ?? 'valid', midSize, kernel2, stride2, `${name}: padding2`);
  const outputSize = convOutputSize(midSize, kernel2, stride2, pad2, `${name}: next conv`);
  return { inChannels, midChannels, outChannels, kernel1, stride1, pad1, kernel2, stride2, pad2, inputSize, midSize, outputSize };
}

/** Options of {@link flattenDenseGeometry}. */
export interface FlattenDenseOptions {
  /** Input channels m0 of the conv. */
  inChannels: number;
  /** Output channels m1 of the conv (its current number of units). */
  midChannels: number;
  /** Output units of the dense layer after the flatten. */
  outUnits: number;
  /** Spatial size of the conv's input. */
  inputSize: Size2D;
  /** Conv kernel. */
  kernel1: Size2D;
  /** Conv stride (default 1). */
  stride1?: Size2D;
  /** Conv padding (default `'valid'`). */
  padding1?: PaddingSpec;
  /** Conv dilation; only 1 is supported. */
  dilation1?: Size2D;
  /** Site name used in error messages. */
  name?: string;
}

/**
 * Geometry of a conv→flatten→dense site, viewing the dense layer as a conv whose kernel covers the whole
 * intermediate map `[H1, W1]` (valid padding, stride 1, output 1×1, `outChannels` = dense units).
 *
 * The dense kernel's input rows must be in (h, w, c) order — a channels-last (HWC) flatten — so that dense row
 * `(h·W1 + w)·m1 + c` is tap (h, w), channel c of the equivalent HWIO kernel. Adapters whose flatten uses another
 * order (e.g. CHW) must permute the dense rows (and the new units' outgoing rows) accordingly.
 */
export function flattenDenseGeometry(options: FlattenDenseOptions): ConvPairGeometry {
  const name = options.name ?? 'conv→flatten→dense';
  checkDilation(options.dilation1, `${name}: dilation1`);
  const inputSize = pair(options.inputSize, `${name}: inputSize`, 1);
  const kernel1 = pair(options.kernel1, `${name}: kernel1`, 1);
  const stride1 = pair(options.stride1 ?? 1, `${name}: stride1`, 1);
  const pad1 = resolvePadding(options.padding1 ?? 'valid', inputSize, kernel1, stride1, `${name}: padding1`);
  const midSize = convOutputSize(inputSize, kernel1, stride1, pad1, `${name}: conv`);
  return makeConvPairGeometry({
    name,
    inChannels: options.inChannels,
    midChannels: options.midChannels,
    outChannels: options.outUnits,
    inputSize,
    kernel1,
    stride1,
    padding1: pad1,
    kernel2: midSize,
    stride2: 1,
    padding2: 'valid',
  });
}

/**
 * Checks that an externally built {@link ConvPairGeometry} is consistent (integer sizes, padding, and
 * midSize/outputSize equal to what the kernels, strides and paddings imply). Returns a normalised copy.
 */
export function validateConvPairGeometry(geometry: ConvPairGeometry, name = 'conv geometry'): ConvPairGeometry {
  if (!geometry || typeof geometry !== 'object') throw new InvalidArgumentError(`${name} must be an object`, { name });
  const rebuilt = makeConvPairGeometry({
    name,
    inChannels: geometry.inChannels,
    midChannels: geometry.midChannels,
    outChannels: geometry.outChannels,
    inputSize: geometry.inputSize,
    kernel1: geometry.kernel1,
    stride1: geometry.stride1,
    padding1: geometry.pad1,
    kernel2: geometry.kernel2,
    stride2: geometry.stride2,
    padding2: geometry.pad2,
  });
  const mid = pair(geometry.midSize, `${name}: midSize`, 1);
  const out = pair(geometry.outputSize, `${name}: outputSize`, 1);
  if (mid[0] !== rebuilt.midSize[0] || mid[1] !== rebuilt.midSize[1]) throw new ShapeMismatchError(`${name}: midSize`, rebuilt.midSize, mid);
  if (out[0] !== rebuilt.outputSize[0] || out[1] !== rebuilt.outputSize[1]) throw new ShapeMismatchError(`${name}: outputSize`, rebuilt.outputSize, out);
  return rebuilt;
}

/** Length of one unit's incoming kernel: k1h·k1w·m0 (order a_r, a_c, c_in). */
export function convFanIn(geometry: ConvPairGeometry): number {
  return geometry.kernel1[0] * geometry.kernel1[1] * geometry.inChannels;
}

/** Length of one unit's outgoing slice: k2h·k2w·m2 (order b_r, b_c, c_out). */
export function convFanOut(geometry: ConvPairGeometry): number {
  return geometry.kernel2[0] * geometry.kernel2[1] * geometry.outChannels;
}

/** Shape `[k2h, k2w, k2h·k2w·m2, m2]` of {@link tapScatterKernel}. */
export function tapScatterKernelShape(geometry: ConvPairGeometry): [number, number, number, number] {
  const [kh, kw] = geometry.kernel2;
  return [kh, kw, convFanOut(geometry), geometry.outChannels];
}

/**
 * One-hot kernel that tap-scatters the next conv's output gradient with a single conv-transpose.
 *
 * Layout: HWIO of the *forward* next conv, `[k2h, k2w, F, m2]` with F = k2h·k2w·m2, i.e. what TF/tfjs
 * `conv2dTranspose` expects as `[height, width, outDepth, inDepth]`. Entry `[b_r, b_c, f, c]` is 1 iff
 * f = (b_r·k2w + b_c)·m2 + c. Applying `conv2dTranspose(g, kernel, [B, H1, W1, F], stride2, pad2)` to
 * g `[B, H2, W2, m2]` gives T with T[n, u, (b, c)] = g[n, y, c] where u = s2·y + b − p2 (other entries 0):
 * exactly the tap scatter. Pad2 must be the next conv's per-side padding (top/left matter; the output size
 * fixes the rest).
 */
export function tapScatterKernel(geometry: ConvPairGeometry): Float32Array {
  const [kh, kw, f, m2] = tapScatterKernelShape(geometry);
  const out = new Float32Array(kh * kw * f * m2);
  for (let br = 0; br < kh; br++) {
    for (let bc = 0; bc < kw; bc++) {
      for (let c = 0; c < m2; c++) {
        const fi = (br * kw + bc) * m2 + c;
        out[((br * kw + bc) * f + fi) * m2 + c] = 1;
      }
    }
  }
  return out;
}
