/**
 * GradMax statistics of channel groups. A group's growth matrix stacks, for every consumer c and producer p, the
 * pair growth matrix M(p→c) (the dense E[g hᵀ] or the exact conv growth matrix of §2.5, with g the gradient of c's
 * output and h p's input) scaled by the path derivative d(p→c) of the new channel between them divided by the
 * group's reference derivative f'(0):
 *
 *     M_group[c-rows, p-columns] = d(p→c) / f'(0) · M(p→c)
 *
 * so that the gradient of the loss with respect to the new units' stacked incoming weights is f'(0) · Ωᵀ M_group,
 * the same contract as a single site. Pair matrices come from one probe run over all pairs; conv pairs may have 1 to
 * 3 spatial axes, dilations, conv groups and stride-1 ConvTransposes on either side.
 *
 * Grouped convolutions (group count G > 1, ResNeXt/RegNet): new units come in G shares, share s at the end of conv
 * group s. A unit of share s reads only the input channels of its producers' conv group s and writes only the
 * outputs of its consumers' conv group s, so its gradient is f'(0) · ωᵀ M_s with a matrix M_s of its own (in the
 * stacked layouts, which index the channels of the unit's conv group). No single `[fanOut × fanIn]` matrix gives every
 * share its gradient, so a grouped group's statistics carry the G matrices in `shares` ({@link GroupSiteStatistics}),
 * and `growModel` presents the group to the strategy as G sites, one per share (the share's existing units, its
 * matrix, k/G new units): GradMax's solution per share, for which the gradient identity holds unit by unit.
 * @packageDocumentation
 */
import { fromBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema } from 'onnx-buf';
import type { NodeProto } from 'onnx-buf';
import { Matrix, SketchStatistics, UnsupportedError, makeConvPairGeometryND, sketchTestMatrices, type SiteStatistics, type SketchTestMatrices } from '@gradmax/core';
import { attrInt, attrInts, attrString, nodeLabel } from '../attributes.js';
import { serializeModel, type OnnxModel } from '../model.js';
import { findGroup, findGroups, groupPlan } from '../groups/find.js';
import type { GroupLayer, OnnxGroup } from '../groups/types.js';
import type { ProbeSite } from './build.js';
import { computeStatistics, type ComputeStatisticsOptions } from './compute.js';
import { MissingGradientRuleError } from './errors.js';
import { resolveNodePads } from './rules.js';
import { discoverShapes, type TensorInfo } from './shapes.js';
import { planarGeometry, preferSketch, sketchSettings, statisticCosts } from './sketch.js';
import { mappedPairSite, mappedPairStride } from './mapped-pairs.js';
import type { NodePlacement } from '../placement.js';

/** Options of {@link computeGroupStatistics}: those of `computeStatistics` with groups instead of sites. */
export interface GroupStatisticsOptions extends Omit<ComputeStatisticsOptions, 'sites'> {
  /** Group names (or producer names, or `"PRODUCER->CONSUMER"`), as listed by `findGroups`. */
  groups: readonly string[];
  /**
   * Largest growth matrix (fanOut × fanIn entries) computed; larger groups are refused with their size instead of
   * exhausting memory (default 2^28 entries, 2 GiB as float64; VGG's last conv group, whose consumer reads a 7×7 map
   * flattened into a 4096-unit layer, has 4608 × 200704).
   */
  maxEntries?: number;
}

/**
 * Statistics of a group. For a grouped group (`multiple` G > 1), `shares[s]` is the growth matrix of the units of share
 * s (see the module notes) and `moment` is their sum, which is not the matrix of any unit: strategies must be given
 * the shares (as `growModel` does).
 */
export interface GroupSiteStatistics extends SiteStatistics {
  /** Per share of new units (conv group), its `[fanOut × fanIn]` growth matrix; absent when the group has one share. */
  shares?: SiteStatistics[];
}

/** Default of {@link GroupStatisticsOptions.maxEntries}. */
export const MAX_GROUP_MATRIX_ENTRIES = 2 ** 28;

/** Result of {@link computeGroupStatistics}. */
export interface GroupStatisticsResult {
  /** Statistics per group name (stacked `[fanOut × fanIn]` growth matrix, mean over examples; per share for grouped convs). */
  statistics: Map<string, GroupSiteStatistics>;
  /** Groups whose statistics cannot be computed exactly, with the reason. */
  refused: Map<string, string>;
  /**
   * The groups whose growth matrix was sketched (option `statistics`), by name: their `statistics` entry is the
   * sketch's snapshot (a rank-≤r M̂, formed when first read); the sketch itself gives the singular triplets cheaply.
   */
  sketches: Map<string, SketchStatistics>;
  /** Examples processed (0 when every group was refused). */
  examples: number;
  /** Mean loss over the examples. */
  meanLoss: number;
  /** Where the probe's nodes ran, for a provider other than cpu. */
  placement?: NodePlacement;
}

/**
 * How a pair's blocks are read out of its probe matrix (rows (b…, c_out), columns (a…, c_in) over ALL the channels of
 * the layers' input and output): per share of new units, the input channels its producer reads and the output
 * channels its consumer writes (conv groups), and the tap reversal of a ConvTranspose mapped onto its conv.
 */
interface PairRead {
  /** Taps of the producer (Π k1) and of the consumer (Π k2) in the probe matrix. */
  taps1: number;
  taps2: number;
  /** Channels of the producer's input (m0) and of the consumer's output (m2) in the probe matrix. */
  m0: number;
  m2: number;
  /** Producer conv groups (input channels of share s: the s-th of `groups1` equal blocks); 1 when it reads all. */
  groups1: number;
  /** Consumer conv groups (output channels of share s: the s-th of `groups2` blocks); 1 when it writes all. */
  groups2: number;
  /** ConvTranspose producer/consumer computed as the stride-1 conv with the reversed kernel: reverse the taps back. */
  flip1: boolean;
  flip2: boolean;
  /** The consumer reads the spatial mean of the map: the probe's taps are averaged. */
  meanTaps?: number;
}

interface PairSpec {
  site: ProbeSite;
  group: OnnxGroup;
  producer: GroupLayer;
  consumer: GroupLayer;
  scale: number;
  read: PairRead;
}

const spatial = (info: TensorInfo | undefined) => info?.dims.slice(2);
const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);
const fixed = (dims: readonly (number | null)[] | undefined): dims is number[] => !!dims && dims.every((d) => d !== null);

/** Strides, dilations and per-side pads `[begin…, end…]` of a conv-like node with `n` spatial axes. */
function convAttrs(node: NodeProto, inSize: number[], kernel: number[]): { strides: number[]; dilations: number[]; pads: number[] } {
  const n = kernel.length;
  const strides = attrInts(node, 'strides') ?? new Array<number>(n).fill(1);
  const dilations = attrInts(node, 'dilations') ?? new Array<number>(n).fill(1);
  const pads = resolveNodePads({ node }, inSize, kernel, strides, dilations);
  return { strides, dilations, pads };
}

/**
 * A stride-1 ConvTranspose as the conv it equals: out[u] = Σ_a x[u − e·a + p] · w[a] is the conv with the reversed
 * kernel (tap k − 1 − a), leading pad e·(k − 1) − p and the trailing pad that gives its output size. Refused (with
 * the reason) for strides > 1, where the new channel's map interleaves input positions between the strides, and for
 * the padding forms whose placement depends on the runtime (auto_pad SAME_*, output_shape).
 */
function transposeAsConv(node: NodeProto, inSize: number[], outSize: number[], kernel: number[], where: string, role: string): { strides: number[]; dilations: number[]; pads: number[] } {
  const n = kernel.length;
  const label = `ConvTranspose "${nodeLabel(node)}"`;
  const strides = attrInts(node, 'strides') ?? new Array<number>(n).fill(1);
  if (strides.some((s) => s !== 1)) throw new UnsupportedError(`${where}: statistics through ${label} (${role}) with strides [${strides.join(', ')}] are not supported: its output interleaves the input positions between the strides, so the growth matrix is not one correlation per tap; only stride-1 transposed convs are exact here`, { node: nodeLabel(node) });
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  if (autoPad !== 'NOTSET' && autoPad !== 'VALID') throw new UnsupportedError(`${where}: statistics through ${label} (${role}) with auto_pad ${autoPad} are not supported (explicit pads only)`, { node: nodeLabel(node) });
  if (attrInts(node, 'output_shape')) throw new UnsupportedError(`${where}: statistics through ${label} (${role}) with output_shape are not supported (explicit pads only)`, { node: nodeLabel(node) });
  const dilations = attrInts(node, 'dilations') ?? new Array<number>(n).fill(1);
  const given = autoPad === 'VALID' ? new Array<number>(2 * n).fill(0) : (attrInts(node, 'pads') ?? new Array<number>(2 * n).fill(0));
  const pads = new Array<number>(2 * n).fill(0);
  for (let i = 0; i < n; i++) {
    const reach = dilations[i]! * (kernel[i]! - 1);
    pads[i] = reach - given[i]!;
    pads[n + i] = outSize[i]! - inSize[i]! - pads[i]! + reach;
    if (pads[i]! < 0 || pads[n + i]! < 0) throw new UnsupportedError(`${where}: ${label} (${role}) crops more than its kernel reaches on axis ${i} (pads [${given.join(', ')}]); not supported`, { node: nodeLabel(node) });
  }
  return { strides, dilations, pads };
}

function pairSite(model: OnnxModel, infos: Map<string, TensorInfo>, group: OnnxGroup, p: GroupLayer, c: GroupLayer, name: string): { site: ProbeSite; read: PairRead } {
  const where = `group "${group.name}": ${nodeLabel(p.node)} -> ${nodeLabel(c.node)}`;
  const input = p.node.input[0]!;
  const preActivation = c.node.output[0]!;
  const dense = (l: GroupLayer) => l.type === 'Gemm' || l.type === 'MatMul';
  if (dense(p) && dense(c)) {
    if (c.blk !== 1) throw new UnsupportedError(`${where}: the consumer reads several entries per channel`, { group: group.name });
    if (c.type === 'Gemm' && attrInt(c.node, 'transA', 0) === 1) throw new UnsupportedError(`${where}: Gemm with transA = 1 as consumer`, { group: group.name });
    const site: ProbeSite = { name, kind: 'dense', input, inputTransposed: p.type === 'Gemm' && attrInt(p.node, 'transA', 0) === 1, preActivation };
    return { site, read: { taps1: 1, taps2: 1, m0: p.length, m2: c.length, groups1: 1, groups2: 1, flip1: false, flip2: false } };
  }
  if (p.type !== 'Conv' && p.type !== 'ConvTranspose') throw new UnsupportedError(`${where}: statistics for a ${p.type} producer feeding a ${c.type} consumer are not supported`, { group: group.name });
  const n = p.dims.length - 2;
  const x = spatial(infos.get(input));
  const mid = spatial(infos.get(p.node.output[0]!));
  if (!fixed(x) || !fixed(mid)) throw new UnsupportedError(`${where}: the spatial size of "${input}" is not fixed; pass fixedDims for the symbolic dims`, { group: group.name });
  if (x.length !== n) throw new UnsupportedError(`${where}: input "${input}" has ${x.length} spatial axes but the weight has ${n}`, { group: group.name });
  const k1 = p.dims.slice(2);
  const transposed1 = p.type === 'ConvTranspose';
  const g1 = transposed1 ? transposeAsConv(p.node, x, mid, k1, where, 'producer') : convAttrs(p.node, x, k1);
  // Strided centre-delta depthwise convs between the layers subsample the new channel: fold them into stride1.
  const strides1 = g1.strides.map((v, i) => v * (c.stride?.[i] ?? 1));
  const m0 = transposed1 ? p.dims[0]! : p.dims[1]! * p.groups;
  const common = { name, inChannels: m0, midChannels: transposed1 ? p.dims[1]! * p.groups : p.dims[0]!, inputSize: x, kernel1: k1, stride1: strides1, dilation1: g1.dilations, pads1: g1.pads };
  const read = { taps1: prod(k1), m0, groups1: p.groups, flip1: transposed1 };
  const cin = spatial(infos.get(c.node.input[0]!));
  // The map the consumer sees (before any spatial mean): the producer's output, subsampled.
  const seen = c.stride ? mid.map((m, i) => Math.floor((m - 1) / c.stride![i]!) + 1) : mid;
  const whole = (outChannels: number) => makeConvPairGeometryND({ ...common, outChannels, kernel2: seen, stride2: seen.map(() => 1) });
  if (c.mean) {
    // The consumer reads the spatial mean of the map: the pair matrix of a conv whose kernel covers the whole map,
    // averaged over its taps.
    const ok = c.type === 'Conv' ? c.groups === 1 && c.dims.slice(2).every((k) => k === 1) && (cin ?? []).every((d) => d === 1) : c.type !== 'ConvTranspose' && c.blk === 1;
    if (!ok) throw new UnsupportedError(`${where}: statistics through a spatial mean need an ungrouped 1×1 conv or a dense consumer`, { group: group.name });
    const outChannels = c.type === 'Conv' ? c.dims[0]! : c.length;
    return { site: { name, kind: 'conv', input, preActivation, geometryND: whole(outChannels) }, read: { ...read, taps2: prod(seen), m2: outChannels, groups2: 1, flip2: false, meanTaps: prod(seen) } };
  }
  if (c.type === 'Conv' || c.type === 'ConvTranspose') {
    if (c.dims.length !== n + 2) throw new UnsupportedError(`${where}: the consumer's kernel has ${c.dims.length - 2} spatial axes, the producer's ${n}`, { group: group.name });
    if (!cin || cin.join() !== seen.join()) throw new UnsupportedError(`${where}: the map changes from [${seen.join(', ')}] to [${cin?.join(', ') ?? '?'}] between the layers; the pair growth matrix is exact only for per-channel ops`, { group: group.name });
    const k2 = c.dims.slice(2);
    const transposed2 = c.type === 'ConvTranspose';
    let g2: { strides: number[]; dilations: number[]; pads: number[] };
    if (transposed2) {
      const z = spatial(infos.get(preActivation));
      if (!fixed(z)) throw new UnsupportedError(`${where}: the spatial size of "${preActivation}" is not fixed; pass fixedDims for the symbolic dims`, { group: group.name });
      g2 = transposeAsConv(c.node, seen, z, k2, where, 'consumer');
    } else g2 = convAttrs(c.node, seen, k2);
    const m2 = transposed2 ? c.dims[1]! * c.groups : c.dims[0]!;
    const geometryND = makeConvPairGeometryND({ ...common, outChannels: m2, kernel2: k2, stride2: g2.strides, dilation2: g2.dilations, pads2: g2.pads });
    return { site: { name, kind: 'conv', input, preActivation, geometryND }, read: { ...read, taps2: prod(k2), m2, groups2: c.groups, flip2: transposed2 } };
  }
  if (dense(c) && c.blk === prod(seen) && !c.stride) {
    const outUnits = c.length / c.blk;
    return { site: { name, kind: 'conv', input, preActivation, geometryND: whole(outUnits) }, read: { ...read, taps2: prod(seen), m2: outUnits, groups2: 1, flip2: false } };
  }
  throw new UnsupportedError(`${where}: statistics for ${p.type} -> ${c.type} through a spatial reduction are not supported`, { group: group.name });
}

/**
 * The block of a pair's probe matrix that share `s` of the new units sees, `[taps2 · m2/groups2 × taps1 · m0/groups1]`
 * with rows (b, o) and columns (a, c) in the layers' stacked layouts (local channels of the share's conv groups), the
 * taps of a ConvTranspose reversed back and a spatial mean's taps averaged.
 */
function shareBlock(m: Matrix, r: PairRead, s: number): Matrix {
  const inL = r.m0 / r.groups1;
  const outL = r.m2 / r.groups2;
  const c0 = r.groups1 > 1 ? s * inL : 0;
  const o0 = r.groups2 > 1 ? s * outL : 0;
  const taps2 = r.meanTaps ? 1 : r.taps2;
  const out = Matrix.zeros(taps2 * outL, r.taps1 * inL);
  const cols = r.taps1 * r.m0;
  for (let b = 0; b < r.taps2; b++) {
    const bo = r.meanTaps ? 0 : r.flip2 ? r.taps2 - 1 - b : b;
    const w = r.meanTaps ? 1 / r.meanTaps : 1;
    for (let o = 0; o < outL; o++) {
      const src = (b * r.m2 + o0 + o) * cols;
      const dst = (bo * outL + o) * out.cols;
      for (let a = 0; a < r.taps1; a++) {
        const ao = r.flip1 ? r.taps1 - 1 - a : a;
        for (let c = 0; c < inL; c++) out.data[dst + ao * inL + c]! += w * m.data[src + a * r.m0 + c0 + c]!;
      }
    }
  }
  return out;
}

/**
 * A pair through a MaxPool ({@link mappedPairSite}): the producer is a 1×1 conv over its input windows, so the probe
 * matrix already has the layers' stacked layouts (columns (a, c) of the producer, rows (b, o) of the consumer).
 */
function mappedPair(infos: Map<string, TensorInfo>, group: OnnxGroup, p: GroupLayer, c: GroupLayer, map: number[][], name: string): { site: ProbeSite; read: PairRead } {
  const site = mappedPairSite(infos, group, p, c, map, name) as ProbeSite & { meanTaps?: number };
  const geo = site.geometry!;
  const taps2 = geo.kernel2[0] * geo.kernel2[1];
  return { site, read: { taps1: 1, m0: p.length, groups1: 1, flip1: false, taps2, m2: geo.outChannels, groups2: 1, flip2: false, ...(site.meanTaps ? { meanTaps: site.meanTaps } : {}) } };
}

/** Whether a pair's block can be sketched: dense, a plain pair of ungrouped, undilated 2-D convs, or a MaxPool pair. */
function sketchable(pair: PairSpec): boolean {
  if (pair.site.kind === 'dense' || pair.site.windows) return true;
  const r = pair.read;
  return !!pair.site.geometryND && !!planarGeometry(pair.site.geometryND) && r.groups1 === 1 && r.groups2 === 1 && !r.flip1 && !r.flip2;
}

/** True for a (sync) iterable that hands out a fresh iterator each time (an array, not a generator object). */
function isReiterable(data: unknown): boolean {
  const iterate = (data as Partial<Iterable<unknown>> | null)?.[Symbol.iterator];
  return typeof iterate === 'function' && iterate.call(data) !== data;
}

/**
 * Test matrices of one (producer, consumer) pair cut from its group's: Ω's rows of the producer's columns of M, Ψ's
 * columns of the consumer's rows (spread over the taps, divided by their count, when the consumer reads a mean).
 */
function pairTests(group: SketchTestMatrices, plan: { fanOut: number }, p: GroupLayer, c: GroupLayer, taps: number | undefined): SketchTestMatrices {
  const r = group.omega.cols;
  const l = group.psi.rows;
  const omega = new Matrix(p.length, r, group.omega.data.slice(p.start * r, (p.start + p.length) * r));
  const t = taps ?? 1;
  const psi = new Matrix(l, t * c.length);
  for (let i = 0; i < l; i++) for (let b = 0; b < t; b++) for (let o = 0; o < c.length; o++) psi.data[i * t * c.length + b * c.length + o] = group.psi.data[i * plan.fanOut + c.start + o]! / t;
  return { omega, psi };
}

/**
 * Computes the stacked growth matrix of each requested group from labelled data, in one probe run over all the
 * (producer, consumer) pairs (per share for grouped convs, see {@link GroupSiteStatistics}). Groups whose matrix
 * would not be exact (ops that mix space between the layers, strided ConvTransposes, consumers behind a Concat) are
 * returned in `refused` with the reason instead of an approximation.
 */
export async function computeGroupStatistics(model: OnnxModel, options: GroupStatisticsOptions): Promise<GroupStatisticsResult> {
  const all = findGroups(model);
  const refused = new Map<string, string>();
  const wanted: OnnxGroup[] = [];
  for (const name of options.groups) {
    const g = findGroup(model, name, all);
    const plan = groupPlan(g);
    if (!plan || !g.growable) refused.set(g.name, `not growable: ${g.reason ?? 'unknown reason'}`);
    else if (plan.inexact.length) refused.set(g.name, `pair statistics would be inexact: ${plan.inexact.join('; ')}`);
    else if (!Number.isFinite(plan.activation.df0) || plan.activation.df0 === 0) refused.set(g.name, `the new channels get no gradient (f'(0) = ${plan.activation.df0})`);
    else if (plan.fanOut * plan.fanIn > (options.maxEntries ?? MAX_GROUP_MATRIX_ENTRIES)) refused.set(g.name, `the growth matrix would have ${plan.fanOut} × ${plan.fanIn} = ${plan.fanOut * plan.fanIn} entries, more than maxEntries (${options.maxEntries ?? MAX_GROUP_MATRIX_ENTRIES})`);
    else if (!wanted.includes(g)) wanted.push(g);
  }
  const needsShapes = wanted.some((g) => groupPlan(g)!.producers.some((p) => p.type === 'Conv' || p.type === 'ConvTranspose'));
  const infos = needsShapes ? await discoverShapes(fromBinary(ModelProtoSchema, serializeModel(model)), options.fixedDims ? { fixedDims: options.fixedDims } : {}) : new Map<string, TensorInfo>();
  const pairs: PairSpec[] = [];
  for (const g of wanted) {
    const plan = groupPlan(g)!;
    const mine: PairSpec[] = [];
    try {
      plan.consumers.forEach((c) => {
        plan.producers.forEach((p, pi) => {
          const d = c.coefficients?.[pi] ?? 0;
          if (d === 0) return;
          const name = `${g.name}::${nodeLabel(p.node)}::${nodeLabel(c.node)}`;
          // Through a MaxPool the consumer reads the producer's output at mapped positions (a plain subsampling folds
          // into the producer's stride).
          const map = c.maps?.[pi];
          const stride = map && (c.type === 'Conv' || c.mean) ? mappedPairStride(infos, p, map) : undefined;
          const { site, read } = map && !stride ? mappedPair(infos, g, p, c, map, name) : pairSite(model, infos, g, p, stride ? { ...c, stride } : c, name);
          mine.push({ site, read, group: g, producer: p, consumer: c, scale: d / plan.activation.df0 });
        });
      });
      pairs.push(...mine);
    } catch (e) {
      if (!(e instanceof UnsupportedError)) throw e;
      refused.set(g.name, e.message);
    }
  }
  const statistics = new Map<string, GroupSiteStatistics>();
  const sketches = new Map<string, SketchStatistics>();
  if (!pairs.length) return { statistics, refused, sketches, examples: 0, meanLoss: NaN };
  // Sketched groups: each pair gets the blocks of its group's test matrices, so that the pair sketches add up to the
  // group's (Y and W are linear in M). Only groups of ungrouped, undilated 2-D convs and dense layers are sketched
  // (grouped convs need one matrix per share; the others stay exact).
  const mode = options.statistics ?? 'exact';
  const settings = sketchSettings(options);
  const groupTests = new Map<OnnxGroup, SketchTestMatrices>();
  for (const g of wanted) {
    const plan = groupPlan(g)!;
    if (refused.has(g.name) || mode === 'exact') continue;
    const mine = pairs.filter((x) => x.group === g);
    if (plan.multiple > 1 || !mine.every(sketchable)) continue;
    if (mode === 'auto') {
      const costs = { exact: 0, sketch: 0 };
      let kind: 'dense' | 'conv' = 'dense';
      for (const pair of mine) {
        if (pair.site.kind === 'conv') kind = 'conv';
        const geo = pair.site.geometryND ? planarGeometry(pair.site.geometryND) : pair.site.geometry;
        const fanOut = geo ? geo.kernel2[0] * geo.kernel2[1] * geo.outChannels : pair.consumer.length;
        const c = statisticCosts(fanOut, pair.producer.length, geo, settings);
        costs.exact += c.exact;
        costs.sketch += c.sketch;
      }
      if (!preferSketch(plan.fanOut, plan.fanIn, costs, kind)) continue;
    }
    groupTests.set(g, sketchTestMatrices(plan.fanOut, plan.fanIn, settings.rank, settings.rowSketch, settings.seed));
  }
  const sketchTests = new Map<string, SketchTestMatrices>();
  for (const pair of pairs) {
    const tests = groupTests.get(pair.group);
    if (tests) sketchTests.set(pair.site.name, pairTests(tests, groupPlan(pair.group)!, pair.producer, pair.consumer, pair.read.meanTaps));
  }
  const { groups: _groups, maxEntries: _maxEntries, ...rest } = options;
  let run: Awaited<ReturnType<typeof computeStatistics>>;
  try {
    run = await computeStatistics(model, { ...rest, statistics: 'exact', sketchTests, sites: pairs.map((p) => p.site) });
  } catch (e) {
    // One group's path to the loss may cross an op without a gradient rule: probe the groups one by one so the
    // others still get statistics, and refuse that group with the error. (Data must be re-iterable for this.)
    if (!(e instanceof MissingGradientRuleError) || wanted.length < 2 || !isReiterable(options.data)) throw e;
    const merged: GroupStatisticsResult = { statistics: new Map(), refused, sketches: new Map(), examples: 0, meanLoss: NaN };
    for (const g of wanted) {
      if (refused.has(g.name)) continue;
      try {
        const one = await computeGroupStatistics(model, { ...options, groups: [g.name] });
        for (const [k, v] of one.statistics) merged.statistics.set(k, v);
        for (const [k, v] of one.sketches) merged.sketches.set(k, v);
        for (const [k, v] of one.refused) refused.set(k, v);
        if (one.examples) Object.assign(merged, { examples: one.examples, meanLoss: one.meanLoss });
      } catch (inner) {
        if (!(inner instanceof MissingGradientRuleError)) throw inner;
        refused.set(g.name, inner.message);
      }
    }
    return merged;
  }
  for (const g of wanted) {
    if (refused.has(g.name)) continue;
    const plan = groupPlan(g)!;
    const tests = groupTests.get(g);
    if (tests) {
      const r = tests.omega.cols;
      const l = tests.psi.rows;
      const y = new Float64Array(plan.fanOut * r);
      const w = new Float64Array(l * plan.fanIn);
      let count = 0;
      for (const pair of pairs.filter((x) => x.group === g)) {
        const sk = run.statistics.get(pair.site.name) as SketchStatistics;
        count = sk.count;
        const { consumer: c, producer: p } = pair;
        const taps = pair.read.meanTaps ?? 1;
        const py = sk.rangeSum();
        const pw = sk.coRangeSum();
        for (let b = 0; b < taps; b++) for (let o = 0; o < c.length; o++) for (let j = 0; j < r; j++) y[(c.start + o) * r + j]! += (pair.scale * py.data[(b * c.length + o) * r + j]!) / taps;
        for (let a = 0; a < l; a++) for (let i = 0; i < p.length; i++) w[a * plan.fanIn + p.start + i]! += pair.scale * pw.data[a * p.length + i]!;
      }
      const sketch = new SketchStatistics(plan.fanOut, plan.fanIn, { rank: r, rowSketch: l, seed: settings.seed }, g.name);
      sketch.accumulateSketch({ rows: plan.fanOut, cols: r, data: y }, { rows: l, cols: plan.fanIn, data: w }, count);
      sketches.set(g.name, sketch);
      statistics.set(g.name, sketch.snapshot());
      continue;
    }
    const shares = Array.from({ length: plan.multiple }, () => Matrix.zeros(plan.fanOut, plan.fanIn));
    let count = 0;
    for (const pair of pairs.filter((x) => x.group === g)) {
      const snap = run.statistics.get(pair.site.name)!.snapshot();
      count = snap.count;
      const { consumer: c, producer: p } = pair;
      shares.forEach((m, s) => {
        const pm = shareBlock(snap.moment, pair.read, s);
        if (pm.rows !== c.length || pm.cols !== p.length) throw new UnsupportedError(`group "${g.name}": pair ${pair.site.name} has a [${pm.rows} × ${pm.cols}] matrix, expected [${c.length} × ${p.length}]`, { group: g.name });
        for (let r = 0; r < pm.rows; r++) for (let i = 0; i < pm.cols; i++) m.data[(c.start + r) * plan.fanIn + p.start + i]! += pair.scale * pm.data[r * pm.cols + i]!;
      });
    }
    if (shares.length === 1) statistics.set(g.name, { moment: shares[0]!, count });
    else {
      const sum = Matrix.zeros(plan.fanOut, plan.fanIn);
      for (const m of shares) for (let i = 0; i < sum.data.length; i++) sum.data[i]! += m.data[i]!;
      statistics.set(g.name, { moment: sum, count, shares: shares.map((moment) => ({ moment, count })) });
    }
  }
  return { statistics, refused, sketches, examples: run.examples, meanLoss: run.meanLoss, ...(run.placement ? { placement: run.placement } : {}) };
}
