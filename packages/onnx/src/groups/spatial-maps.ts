/**
 * Spatial index maps of a group's new channel. At first order a new channel is a sum over the main producers of the
 * producer's new output read at some position: `v[t] = Σ_p d_p · u_p[map_p(t)]`. Per-position ops keep the map, a
 * strided centre-delta depthwise conv composes `t → s·t` into it, and a MaxPool composes its tie routing: with zero
 * incoming weights the new channel is constant, every window is a tie, and autodiff (onnxruntime's MaxPool gradient
 * through Indices, PyTorch CPU, the probe's per-tap rules) routes a tie to the FIRST valid element of the window in scan
 * order, so the pool's output at t reads the input at π(t), the first index `start(t) + j·dilation` (j = 0…k−1) inside
 * `[0, size)` with `start(t) = t·stride − pad_begin`. The map is separable: one index array per spatial axis.
 *
 * A map is the identity when absent. Maps need static spatial sizes (one entry per position of the value).
 * @packageDocumentation
 */

/** Per spatial axis, for each position t of the value, the position of the producer's output it reads. */
export type AxisMap = number[][];

/** Per main producer (the index of `Lin.d`), its map; `undefined` for the identity (or a producer that does not reach). */
export type SpatialMaps = (AxisMap | undefined)[];

/**
 * The tie routing π of a MaxPool along one axis: for each output position t < `outSize`, the first valid input index
 * of its window (`start(t) + j·dilation`, j < `kernel`, inside `[0, inSize)`), or -1 when the window holds no input.
 */
export function poolTieIndex(inSize: number, outSize: number, kernel: number, stride: number, padBegin: number, dilation: number): number[] {
  const out: number[] = [];
  for (let t = 0; t < outSize; t++) {
    const start = t * stride - padBegin;
    const j = start >= 0 ? 0 : Math.ceil(-start / dilation);
    const at = start + j * dilation;
    out.push(j < kernel && at < inSize ? at : -1);
  }
  return out;
}

/**
 * Output size of a pool along one axis as onnxruntime computes it: floor mode, or ceil mode where the last window must
 * start inside the input or its leading padding (ONNX 1.15+ / PyTorch).
 */
export function poolOutputSize(inSize: number, kernel: number, stride: number, padBegin: number, padEnd: number, dilation: number, ceil: boolean): number {
  const span = inSize + padBegin + padEnd - ((kernel - 1) * dilation + 1);
  if (!ceil) return Math.floor(span / stride) + 1;
  let out = Math.ceil(span / stride) + 1;
  if ((out - 1) * stride >= inSize + padBegin) out--;
  return out;
}

/** The identity map of a value with spatial sizes `sizes`. */
export function identityMap(sizes: readonly number[]): AxisMap {
  return sizes.map((n) => Array.from({ length: n }, (_, t) => t));
}

/** The subsampling `t → s·t` of a value with spatial sizes `sizes` (its positions t < sizes[i]). */
export function strideMap(sizes: readonly number[], strides: readonly number[]): AxisMap {
  return sizes.map((n, i) => Array.from({ length: n }, (_, t) => t * (strides[i] ?? 1)));
}

/** `outer ∘ inner`: position t reads `inner[outer[t]]` (per axis); `inner` undefined is the identity. */
export function composeMap(inner: AxisMap | undefined, outer: AxisMap): AxisMap {
  return inner ? outer.map((idx, i) => idx.map((t) => inner[i]![t]!)) : outer.map((idx) => [...idx]);
}

/** True when two maps (undefined = identity) are the same, given the value's spatial sizes for the identity. */
export function sameMap(a: AxisMap | undefined, b: AxisMap | undefined, sizes?: readonly number[]): boolean {
  if (!a && !b) return true;
  const x = a ?? (sizes ? identityMap(sizes) : undefined);
  const y = b ?? (sizes ? identityMap(sizes) : undefined);
  if (!x || !y || x.length !== y.length) return false;
  return x.every((idx, i) => idx.length === y[i]!.length && idx.every((v, t) => v === y[i]![t]));
}

/**
 * The strides `s` (per axis) when the map is the plain subsampling `t → s·t` of a producer output of size `mid`
 * (`floor((mid − 1)/s) + 1` positions, every one kept); undefined otherwise.
 */
export function asStride(map: AxisMap, mid: readonly number[]): number[] | undefined {
  const strides: number[] = [];
  for (let i = 0; i < map.length; i++) {
    const idx = map[i]!;
    const s = idx.length > 1 ? idx[1]! - idx[0]! : 1;
    if (s < 1 || idx.some((v, t) => v !== s * t)) return undefined;
    if (idx.length !== Math.floor((mid[i]! - 1) / s) + 1) return undefined;
    strides.push(s);
  }
  return strides;
}

/** A short description of a map for messages (`[0, 1, 3, 5, …]` per axis). */
export function describeMap(map: AxisMap): string {
  return map.map((idx) => `[${idx.slice(0, 5).join(', ')}${idx.length > 5 ? ', …' : ''}]`).join(' × ');
}
