/**
 * GradMax statistics of channel groups. A group's growth matrix stacks, for every consumer c and producer p, the
 * pair growth matrix M(p→c) (the dense E[g hᵀ] or the exact conv growth matrix of §2.5, with g the gradient of c's
 * output and h p's input) scaled by the path derivative d(p→c) of the new channel between them divided by the
 * group's reference derivative f'(0):
 *
 *     M_group[c-rows, p-columns] = d(p→c) / f'(0) · M(p→c)
 *
 * so that the gradient of the loss with respect to the new units' stacked incoming weights is f'(0) · Ωᵀ M_group,
 * the same contract as a single site. Pair matrices come from one probe run over all pairs.
 * @packageDocumentation
 */
import { fromBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema } from 'onnx-buf';
import { Matrix, UnsupportedError, flattenDenseGeometry, makeConvPairGeometry, type SiteStatistics } from '@gradmax/core';
import { attrInt, attrInts, nodeLabel } from '../attributes.js';
import { serializeModel, type OnnxModel } from '../model.js';
import { findGroup, findGroups, groupPlan } from '../groups/find.js';
import type { GroupLayer, OnnxGroup } from '../groups/types.js';
import type { ProbeSite } from './build.js';
import { computeStatistics, type ComputeStatisticsOptions } from './compute.js';
import { MissingGradientRuleError } from './errors.js';
import { resolveNodePads } from './rules.js';
import { discoverShapes, type TensorInfo } from './shapes.js';
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

/** Default of {@link GroupStatisticsOptions.maxEntries}. */
export const MAX_GROUP_MATRIX_ENTRIES = 2 ** 28;

/** Result of {@link computeGroupStatistics}. */
export interface GroupStatisticsResult {
  /** Statistics per group name (stacked `[fanOut × fanIn]` growth matrix, mean over examples). */
  statistics: Map<string, SiteStatistics>;
  /** Groups whose statistics cannot be computed exactly, with the reason. */
  refused: Map<string, string>;
  /** Examples processed (0 when every group was refused). */
  examples: number;
  /** Mean loss over the examples. */
  meanLoss: number;
  /** Where the probe's nodes ran, for a provider other than cpu. */
  placement?: NodePlacement;
}

interface PairSpec {
  site: ProbeSite;
  group: OnnxGroup;
  producer: GroupLayer;
  consumer: GroupLayer;
  scale: number;
}

const spatial = (info: TensorInfo | undefined) => info?.dims.slice(2);

function pairSite(model: OnnxModel, infos: Map<string, TensorInfo>, group: OnnxGroup, p: GroupLayer, c: GroupLayer, name: string): ProbeSite {
  const where = `group "${group.name}": ${nodeLabel(p.node)} -> ${nodeLabel(c.node)}`;
  const input = p.node.input[0]!;
  const preActivation = c.node.output[0]!;
  const dense = (l: GroupLayer) => l.type === 'Gemm' || l.type === 'MatMul';
  if (dense(p) && dense(c)) {
    if (c.blk !== 1) throw new UnsupportedError(`${where}: the consumer reads several entries per channel`, { group: group.name });
    if (c.type === 'Gemm' && attrInt(c.node, 'transA', 0) === 1) throw new UnsupportedError(`${where}: Gemm with transA = 1 as consumer`, { group: group.name });
    return { name, kind: 'dense', input, inputTransposed: p.type === 'Gemm' && attrInt(p.node, 'transA', 0) === 1, preActivation };
  }
  if (p.type !== 'Conv' || p.groups !== 1 || p.dims.length !== 4) throw new UnsupportedError(`${where}: statistics need a 2-D, ungrouped Conv producer (got ${p.type}${p.groups > 1 ? `, group ${p.groups}` : ''}, rank ${p.dims.length})`, { group: group.name });
  const x = spatial(infos.get(input));
  const mid = spatial(infos.get(p.node.output[0]!));
  if (!x || !mid || x.some((d) => d === null) || mid.some((d) => d === null)) throw new UnsupportedError(`${where}: the spatial size of "${input}" is not fixed; pass fixedDims for the symbolic dims`, { group: group.name });
  // Strided centre-delta depthwise convs between the layers subsample the new channel: fold them into stride1.
  const strides1 = (attrInts(p.node, 'strides') ?? [1, 1]).map((v, i) => v * (c.stride?.[i] ?? 1));
  const dil1 = attrInts(p.node, 'dilations') ?? [1, 1];
  const k1 = p.dims.slice(2);
  const p1 = resolveNodePads({ node: p.node }, x as number[], k1, attrInts(p.node, 'strides') ?? [1, 1], dil1);
  const padding1 = { top: p1[0]!, left: p1[1]!, bottom: p1[2]!, right: p1[3]! };
  const common = {
    name,
    inChannels: p.dims[1]!,
    midChannels: p.dims[0]!,
    inputSize: x as [number, number],
    kernel1: k1 as [number, number],
    stride1: strides1 as [number, number],
    padding1,
    dilation1: dil1 as [number, number],
  };
  const cin = spatial(infos.get(c.node.input[0]!));
  // The map the consumer sees (before any spatial mean): the producer's output, subsampled.
  const seen = c.stride ? (mid as number[]).map((m, i) => Math.floor((m - 1) / c.stride![i]!) + 1) : (mid as number[]);
  if (c.mean) {
    // The consumer reads the spatial mean of the map: the pair matrix of a conv whose kernel covers the whole map,
    // averaged over its taps.
    const ok = c.type === 'Conv' ? c.groups === 1 && c.dims.slice(2).every((k) => k === 1) && (cin ?? []).every((d) => d === 1) : c.blk === 1;
    if (!ok) throw new UnsupportedError(`${where}: statistics through a spatial mean need a 1×1 conv or a dense consumer`, { group: group.name });
    const outChannels = c.type === 'Conv' ? c.dims[0]! : c.length;
    const geometry = makeConvPairGeometry({ ...common, outChannels, kernel2: seen as [number, number], stride2: 1, padding2: 'valid' });
    return { name, kind: 'conv', input, preActivation, geometry, meanTaps: seen[0]! * seen[1]! } as ProbeSite & { meanTaps: number };
  }
  if (c.type === 'Conv') {
    if (c.groups !== 1 || c.dims.length !== 4) throw new UnsupportedError(`${where}: statistics need a 2-D, ungrouped Conv consumer`, { group: group.name });
    if (!cin || cin.join() !== seen.join()) throw new UnsupportedError(`${where}: the map changes from [${seen.join(', ')}] to [${cin?.join(', ') ?? '?'}] between the layers; the pair growth matrix is exact only for per-channel ops`, { group: group.name });
    const strides2 = attrInts(c.node, 'strides') ?? [1, 1];
    const dil2 = attrInts(c.node, 'dilations') ?? [1, 1];
    const k2 = c.dims.slice(2);
    const p2 = resolveNodePads({ node: c.node }, seen, k2, strides2, dil2);
    const geometry = makeConvPairGeometry({ ...common, outChannels: c.dims[0]!, kernel2: k2 as [number, number], stride2: strides2 as [number, number], padding2: { top: p2[0]!, left: p2[1]!, bottom: p2[2]!, right: p2[3]! }, dilation2: dil2 as [number, number] });
    return { name, kind: 'conv', input, preActivation, geometry };
  }
  if (dense(c) && c.blk === seen.reduce((a, b) => a * b, 1) && !c.stride) {
    const outUnits = c.length / c.blk;
    const geometry = flattenDenseGeometry({ name, inChannels: p.dims[1]!, midChannels: p.dims[0]!, outUnits, inputSize: x as [number, number], kernel1: k1 as [number, number], stride1: strides1 as [number, number], padding1 });
    return { name, kind: 'conv', input, preActivation, geometry };
  }
  throw new UnsupportedError(`${where}: statistics for ${p.type} -> ${c.type} through a spatial reduction are not supported`, { group: group.name });
}

/** True for a (sync) iterable that hands out a fresh iterator each time (an array, not a generator object). */
function isReiterable(data: unknown): boolean {
  const iterate = (data as Partial<Iterable<unknown>> | null)?.[Symbol.iterator];
  return typeof iterate === 'function' && iterate.call(data) !== data;
}

/** Rows (tap b, output o) → rows o, averaged over the taps. */
function meanOverTaps(m: Matrix, taps: number): Matrix {
  const outs = m.rows / taps;
  const out = Matrix.zeros(outs, m.cols);
  for (let b = 0; b < taps; b++) for (let o = 0; o < outs; o++) for (let i = 0; i < m.cols; i++) out.data[o * m.cols + i]! += m.data[(b * outs + o) * m.cols + i]! / taps;
  return out;
}

/**
 * Computes the stacked growth matrix of each requested group from labelled data, in one probe run over all the
 * (producer, consumer) pairs. Groups whose matrix would not be exact (ops that mix space between the layers, grouped
 * or transposed convs, consumers behind a Concat) are returned in `refused` with the reason instead of an
 * approximation.
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
  const needsShapes = wanted.some((g) => groupPlan(g)!.producers.some((p) => p.type === 'Conv'));
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
          const site = map && !stride ? mappedPairSite(infos, g, p, c, map, name) : pairSite(model, infos, g, p, stride ? { ...c, stride } : c, name);
          mine.push({ site, group: g, producer: p, consumer: c, scale: d / plan.activation.df0 });
        });
      });
      pairs.push(...mine);
    } catch (e) {
      if (!(e instanceof UnsupportedError)) throw e;
      refused.set(g.name, e.message);
    }
  }
  const statistics = new Map<string, SiteStatistics>();
  if (!pairs.length) return { statistics, refused, examples: 0, meanLoss: NaN };
  const { groups: _groups, maxEntries: _maxEntries, ...rest } = options;
  let run: Awaited<ReturnType<typeof computeStatistics>>;
  try {
    run = await computeStatistics(model, { ...rest, sites: pairs.map((p) => p.site) });
  } catch (e) {
    // One group's path to the loss may cross an op without a gradient rule: probe the groups one by one so the
    // others still get statistics, and refuse that group with the error. (Data must be re-iterable for this.)
    if (!(e instanceof MissingGradientRuleError) || wanted.length < 2 || !isReiterable(options.data)) throw e;
    const merged: GroupStatisticsResult = { statistics: new Map(), refused, examples: 0, meanLoss: NaN };
    for (const g of wanted) {
      if (refused.has(g.name)) continue;
      try {
        const one = await computeGroupStatistics(model, { ...options, groups: [g.name] });
        for (const [k, v] of one.statistics) merged.statistics.set(k, v);
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
    const m = Matrix.zeros(plan.fanOut, plan.fanIn);
    let count = 0;
    for (const pair of pairs.filter((x) => x.group === g)) {
      const snap = run.statistics.get(pair.site.name)!.snapshot();
      count = snap.count;
      const { consumer: c, producer: p } = pair;
      const taps = (pair.site as ProbeSite & { meanTaps?: number }).meanTaps;
      const pm = taps ? meanOverTaps(snap.moment, taps) : snap.moment;
      if (pm.rows !== c.length || pm.cols !== p.length) throw new UnsupportedError(`group "${g.name}": pair ${pair.site.name} has a [${pm.rows} × ${pm.cols}] matrix, expected [${c.length} × ${p.length}]`, { group: g.name });
      for (let r = 0; r < pm.rows; r++) for (let i = 0; i < pm.cols; i++) m.data[(c.start + r) * plan.fanIn + p.start + i]! += pair.scale * pm.data[r * pm.cols + i]!;
    }
    statistics.set(g.name, { moment: m, count });
  }
  return { statistics, refused, examples: run.examples, meanLoss: run.meanLoss, ...(run.placement ? { placement: run.placement } : {}) };
}
