/**
 * Group pairs whose new channel reaches the consumer through a spatial index map (a MaxPool's first-element tie
 * routing, see `groups/spatial-maps.ts`): the consumer reads `u[π(t)]`, with u the producer's new output. The pair's
 * growth matrix is then exactly that of a 1×1 "producer" whose input is the producer's input windows taken at the
 * positions π(t): P[n, (a, c), t] = x[n, c, s·π(t) + e·a − pad] (zero outside x), with the consumer's real geometry on
 * the map of the positions t. P is built in-graph by one constant Gather per spatial axis of the zero-padded input
 * (no full-resolution im2col), its channels ordered (tap a, input channel c) as the producer's stacked incoming layout.
 * @packageDocumentation
 */
import { TensorProto_DataType } from 'onnx-buf';
import { UnsupportedError, flattenDenseGeometry, makeConvPairGeometry } from '@gradmax/core';
import { attrInts, nodeLabel } from '../attributes.js';
import type { GroupLayer, OnnxGroup } from '../groups/types.js';
import { asStride, describeMap } from '../groups/spatial-maps.js';
import type { ProbeSite } from './build.js';
import type { Emitter } from './emitter.js';
import { resolveNodePads } from './rules.js';
import type { TensorInfo } from './shapes.js';

/** How the probe replaces a pair's h by the producer's input windows at mapped positions (see the module notes). */
export interface PairWindows {
  /** Input channels m0 of the producer. */
  channels: number;
  /** Producer kernel, strides, dilations (per spatial axis). */
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** Producer pads `[begin…, end…]`. */
  pads: number[];
  /** Per spatial axis, the producer output positions the consumer reads (its map). */
  index: number[][];
}

const spatial = (info: TensorInfo | undefined) => info?.dims.slice(2);
const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);
const fixed = (dims: readonly (number | null)[] | undefined): dims is number[] => !!dims && dims.every((d) => d !== null);

/**
 * The strides when producer → consumer's map is a plain subsampling of the producer's whole output (`t → s·t`, a
 * VGG-style k2 s2 pool): the ordinary pair path folds it into the producer's stride (no windows needed).
 */
export function mappedPairStride(infos: Map<string, TensorInfo>, p: GroupLayer, map: number[][]): number[] | undefined {
  const mid = spatial(infos.get(p.node.output[0]!));
  return fixed(mid) && mid.length === map.length ? asStride(map, mid) : undefined;
}

/**
 * The probe site of a (producer, consumer) pair whose new channel reaches the consumer through `map` (one index array
 * per spatial axis into the producer's output): h becomes the producer's input windows at the mapped positions
 * ({@link PairWindows}), the producer a 1×1 conv over them, the consumer keeps its geometry on the mapped map.
 * Throws {@link UnsupportedError} naming the pair when this does not apply.
 */
export function mappedPairSite(infos: Map<string, TensorInfo>, group: OnnxGroup, p: GroupLayer, c: GroupLayer, map: number[][], name: string): ProbeSite {
  const where = `group "${group.name}": ${nodeLabel(p.node)} -> ${nodeLabel(c.node)} (through a MaxPool)`;
  if (p.type !== 'Conv' || p.groups !== 1 || p.dims.length !== 4) throw new UnsupportedError(`${where}: statistics need a 2-D, ungrouped Conv producer (got ${p.type}${p.groups > 1 ? `, group ${p.groups}` : ''}, rank ${p.dims.length})`, { group: group.name });
  const input = p.node.input[0]!;
  const x = spatial(infos.get(input));
  const mid = spatial(infos.get(p.node.output[0]!));
  if (!fixed(x) || !fixed(mid)) throw new UnsupportedError(`${where}: the spatial size of "${input}" is not fixed; pass fixedDims for the symbolic dims`, { group: group.name });
  if (map.length !== mid.length || map.some((idx, i) => idx.some((t) => t < 0 || t >= mid[i]!))) {
    throw new UnsupportedError(`${where}: the map ${describeMap(map)} does not fit the producer's output [${mid.join(', ')}]`, { group: group.name });
  }
  const seen = map.map((idx) => idx.length);
  const kernel = p.dims.slice(2);
  const strides = attrInts(p.node, 'strides') ?? [1, 1];
  const dilations = attrInts(p.node, 'dilations') ?? [1, 1];
  const pads = resolveNodePads({ node: p.node }, x, kernel, strides, dilations);
  const windows: PairWindows = { channels: p.dims[1]!, kernel, strides, dilations, pads, index: map.map((idx) => [...idx]) };
  const common = { name, inChannels: p.dims[1]! * prod(kernel), midChannels: p.dims[0]!, inputSize: seen as [number, number], kernel1: [1, 1] as [number, number], stride1: 1 };
  const preActivation = c.node.output[0]!;
  const cin = spatial(infos.get(c.node.input[0]!));
  if (c.mean) {
    const ok = c.type === 'Conv' ? c.groups === 1 && c.dims.slice(2).every((k) => k === 1) && (cin ?? []).every((d) => d === 1) : c.blk === 1;
    if (!ok) throw new UnsupportedError(`${where}: statistics through a spatial mean need a 1×1 conv or a dense consumer`, { group: group.name });
    const outChannels = c.type === 'Conv' ? c.dims[0]! : c.length;
    const geometry = makeConvPairGeometry({ ...common, outChannels, kernel2: seen as [number, number], stride2: 1, padding2: 'valid' });
    return { name, kind: 'conv', input, preActivation, geometry, windows, meanTaps: prod(seen) } as ProbeSite & { meanTaps: number };
  }
  if (c.type === 'Conv') {
    if (c.groups !== 1 || c.dims.length !== 4) throw new UnsupportedError(`${where}: statistics need a 2-D, ungrouped Conv consumer`, { group: group.name });
    if (!cin || cin.join() !== seen.join()) throw new UnsupportedError(`${where}: the consumer reads a [${cin?.join(', ') ?? '?'}] map, the pooled new channel is [${seen.join(', ')}]`, { group: group.name });
    const strides2 = attrInts(c.node, 'strides') ?? [1, 1];
    const dil2 = attrInts(c.node, 'dilations') ?? [1, 1];
    const k2 = c.dims.slice(2);
    const p2 = resolveNodePads({ node: c.node }, seen, k2, strides2, dil2);
    const geometry = makeConvPairGeometry({ ...common, outChannels: c.dims[0]!, kernel2: k2 as [number, number], stride2: strides2 as [number, number], padding2: { top: p2[0]!, left: p2[1]!, bottom: p2[2]!, right: p2[3]! }, dilation2: dil2 as [number, number] });
    return { name, kind: 'conv', input, preActivation, geometry, windows };
  }
  if ((c.type === 'Gemm' || c.type === 'MatMul') && c.blk === prod(seen)) {
    const geometry = flattenDenseGeometry({ name, inChannels: common.inChannels, midChannels: common.midChannels, outUnits: c.length / c.blk, inputSize: common.inputSize, kernel1: [1, 1], stride1: 1 });
    return { name, kind: 'conv', input, preActivation, geometry, windows };
  }
  throw new UnsupportedError(`${where}: statistics for ${p.type} -> ${c.type} reading ${c.blk} entries per channel of a [${seen.join(', ')}] map are not supported`, { group: group.name });
}

/**
 * Emits P `[N, Π k · m0, T…]`: the producer's input windows at the mapped positions, channel a·m0 + c (taps row-major)
 * for tap a and input channel c. Per spatial axis one Gather with the constant `[k, T]` indices `s·π(t) + e·a` into
 * the input zero-padded by the producer's pads, then one Transpose and Reshape.
 */
export function emitPairWindows(e: Emitter, x: string, w: PairWindows): string {
  const n = w.kernel.length;
  const padded = w.pads.some((v) => v !== 0) ? e.op('Pad', [x, e.ints([0, 0, ...w.pads.slice(0, n), 0, 0, ...w.pads.slice(n)])]) : x;
  let cur = padded;
  for (let i = 0; i < n; i++) {
    const k = w.kernel[i]!;
    const idx = w.index[i]!;
    const values: number[] = [];
    for (let a = 0; a < k; a++) for (const t of idx) values.push(w.strides[i]! * t + w.dilations[i]! * a);
    cur = e.op('Gather', [cur, e.constant(TensorProto_DataType.INT64, [k, idx.length], values, 'window_index')], { axis: 2 + 2 * i });
  }
  // [N, m0, k0, T0, k1, T1, …] → [N, k0, k1, …, m0, T0, T1, …]
  const perm = [0, ...Array.from({ length: n }, (_, i) => 2 + 2 * i), 1, ...Array.from({ length: n }, (_, i) => 3 + 2 * i)];
  return e.reshape(e.transpose(cur, perm), [-1, prod(w.kernel) * w.channels, ...w.index.map((idx) => idx.length)]);
}
