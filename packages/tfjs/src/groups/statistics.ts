/**
 * Growth statistics of a channel group by autodiff through the real layers: the group is widened temporarily by one
 * virtual unit per outgoing entry (F = Σ consumer fan-outs units, zero incoming weights and biases, outgoing weights
 * the identity I_F), so the gradient of the loss with respect to virtual unit f's incoming weights is row f of
 * f'(0)·M. One forward/backward pass gives all of M, through any per-channel layers and joins (Add, Multiply gates,
 * Concatenate), for every producer and consumer type; then the widening is undone exactly.
 *
 * Exact when a new unit with zero incoming weights shows 0 to every consumer (f(0) = 0 along the group), which is
 * when incoming-zero strategies apply at all. M is the gradient divided by the group's f'(0) (its largest path
 * derivative), so GradMax's f'(0)·ΩᵀM is exactly the new units' gradient.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { DenseStatistics, InvalidArgumentError, Matrix, ShapeMismatchError, UnsupportedError, type NewUnits, type SiteStatistics } from '@gradmax/core';
import { collectStatistics, createAccumulator, type SiteAccumulator } from '../statistics/collect.js';
import type { TfjsGrowthSite } from '../sites/types.js';
import { pairBlocks, type PairBlock } from './pairs.js';
import { withInputShape } from '../model/shapes.js';
import { modelGraph } from '../model/graph.js';
import { outputShapeOf } from '../sites/core-site.js';
import { validateBatch, type Batch } from '../statistics/batch.js';
import { runGraph } from '../statistics/executor.js';
import { resolveLoss, type LossSpec, type MeanLoss } from '../statistics/loss.js';
import { groupLayout, type GroupLayout } from './layout.js';
import { layerRule, type Config } from './rules.js';
import type { ChannelGroup } from './types.js';
import { widenGroup } from './widen.js';
import { registerDilatedConvGradients } from '../backend/dilated-conv-gradient.js';

/** Options of {@link collectGroupStatistics}. */
export interface GroupStatisticsOptions {
  /** Loss (a tfjs-layers loss name or `(yTrue, yPred) => scalar`); defaults to the model's compiled loss. */
  loss?: LossSpec;
  /** An accumulator to add to (from an earlier batch); a new one otherwise. */
  into?: DenseStatistics;
  /**
   * `pairs`: one pass of the unwidened model, each (producer, consumer) block as a pair statistic (groups of Dense /
   * undilated Conv2D layers with Add, Average or Concatenate joins and the pair statistics' in-between layers);
   * `virtual`: autodiff through a temporary widening by Σ(consumer fan-outs) virtual units (any group);
   * `auto` (default): `pairs` where it applies, else `virtual`. Both are exact.
   */
  method?: 'auto' | 'pairs' | 'virtual';
}

/** Largest number of floats of one widened intermediate tensor before the batch is processed in chunks. */
const CHUNK_FLOATS = 1 << 23;

/**
 * Collects the growth matrix M `[Σ fanOut × Σ fanIn]` of `group` on `batch` (see the module notes) into a
 * `DenseStatistics` (mean over examples; no retained samples).
 */
export function collectGroupStatistics(model: tfl.LayersModel, group: ChannelGroup, batch: Batch, options: GroupStatisticsOptions = {}): DenseStatistics {
  const size = validateBatch(model, batch);
  const loss = resolveLoss(options.loss, model);
  const layout = groupLayout(model, group);
  const F = layout.fanOut;
  const fanIn = layout.fanIn;
  const acc = options.into ?? new DenseStatistics(F, fanIn, { retainSamples: 0 }, group.name);
  if (acc.fanOut !== F || acc.fanIn !== fanIn) throw new InvalidArgumentError(`group "${group.name}": the accumulator in \`into\` is [${acc.fanOut} × ${acc.fanIn}], the group needs [${F} × ${fanIn}]`, { group: group.name });
  if (group.activation.f0 !== 0) {
    throw new UnsupportedError(`group "${group.name}": a new unit shows f(0) = ${group.activation.f0} ≠ 0 to its consumers (${group.activation.name}), so the growth matrix of incoming-zero units is not defined; use a strategy with zero or copied outgoing weights`, { group: group.name });
  }
  const graph = modelGraph(model);
  for (const m of [...group.producers, ...group.passThrough, ...group.joins, ...group.consumers]) {
    const problem = layerRule(m.className)?.noGradient?.(graph.byName.get(m.name)!.layer.getConfig() as Config);
    if (problem) {
      throw new UnsupportedError(`group "${group.name}": layer "${m.name}": ${problem}, so its growth statistics cannot be computed; strategies that need no gradient (random, randomOutgoingZero, allZero, net2net, north) still grow it`, { group: group.name, layer: m.name });
    }
  }
  // Dilated Conv1D/Conv2D/separable/depthwise layers: tfjs has no gradient; the space-to-batch one is registered.
  registerDilatedConvGradients();
  const method = options.method ?? 'auto';
  if (method !== 'virtual') {
    const blocks = pairBlocks(model, group);
    if (blocks) return collectByPairs(model, group, layout, blocks, batch, loss, acc);
    if (method === 'pairs') throw new UnsupportedError(`group "${group.name}": its statistics cannot be split into pair statistics (it needs the virtual-unit method)`, { group: group.name });
  }
  const df0 = group.activation.df0 === 0 ? 1 : group.activation.df0;
  const identity = new Matrix(F, F);
  for (let f = 0; f < F; f++) identity.data[f * F + f] = 1;
  const virtual: NewUnits = { incoming: new Matrix(F, fanIn), incomingBias: new Float64Array(F), outgoing: identity, report: { strategy: 'virtual', site: group.name, count: F, notes: [] } };
  const n = group.units;
  const sum = new Float64Array(F * fanIn);
  const widening = widenGroup(model, group, virtual, { skipOptimizer: true });
  try {
    const step = withInputShape(model, batch.xs.shape, () => chunkSize(model, group, size));
    for (let start = 0; start < size; start += step) {
      const count = Math.min(step, size - start);
      const xs = count === size ? batch.xs : tf.slice(batch.xs, start, count);
      const ys = count === size ? batch.ys : tf.slice(batch.ys, start, count);
      const variables = layout.producers.map((p) => p.kernel.variable.read() as tf.Variable);
      const { value, grads } = tf.variableGrads(() => tf.tidy(() => tf.mul(loss(ys, runGraph(model, [xs]).outputs[0]!), count) as tf.Scalar), variables);
      layout.producers.forEach((p, v) => {
        const g = grads[variables[v]!.name]!.dataSync();
        const { outer, inner } = p.kernel;
        const width = n + F;
        for (let o = 0; o < outer; o++) {
          for (let f = 0; f < F; f++) {
            for (let i = 0; i < inner; i++) sum[f * fanIn + p.col0 + o * inner + i]! += g[(o * width + n + f) * inner + i]! / df0;
          }
        }
      });
      tf.dispose([value, ...Object.values(grads)]);
      if (xs !== batch.xs) xs.dispose();
      if (ys !== batch.ys) ys.dispose();
    }
  } finally {
    widening.undo();
  }
  acc.addSum({ rows: F, cols: fanIn, data: sum }, size);
  return acc;
}

/** The `pairs` method: one pass for every (producer, consumer) pair site, blocks scaled by their path factors. */
function collectByPairs(model: tfl.LayersModel, group: ChannelGroup, layout: GroupLayout, blocks: PairBlock[], batch: Batch, loss: MeanLoss, acc: DenseStatistics): DenseStatistics {
  const pairs = collectStatistics(model, blocks.map((b) => b.site), batch, { loss });
  return assemblePairs(group, layout, blocks, pairs, acc);
}

/** Adds the group's M assembled from its pair blocks' accumulators to `acc`. */
function assemblePairs(group: ChannelGroup, layout: GroupLayout, blocks: PairBlock[], pairs: Map<string, SiteAccumulator>, acc: DenseStatistics): DenseStatistics {
  const fanIn = layout.fanIn;
  const sum = new Float64Array(layout.fanOut * fanIn);
  for (const b of blocks) {
    const m = pairs.get(b.site.name)!.sumMatrix();
    const p = layout.producers[b.producer]!;
    const c = layout.consumers[b.consumer]!;
    if (m.rows !== c.fanOut || m.cols !== p.fanIn) {
      throw new ShapeMismatchError(`group "${group.name}": pair block ${b.site.name}`, [c.fanOut, p.fanIn], [m.rows, m.cols], { group: group.name });
    }
    for (let r = 0; r < m.rows; r++) for (let i = 0; i < m.cols; i++) sum[(c.row0 + r) * fanIn + p.col0 + i]! += b.factor * m.data[r * m.cols + i]!;
  }
  acc.addSum({ rows: layout.fanOut, cols: fanIn, data: sum }, pairs.get(blocks[0]!.site.name)?.count ?? 0);
  return acc;
}

/** Options of {@link collectGrowthStatistics}. */
export interface GrowthStatisticsOptions {
  /** Loss (a tfjs-layers loss name or `(yTrue, yPred) => scalar`); defaults to the model's compiled loss. */
  loss?: LossSpec;
  /** Raw samples retained per layer-pair site (strategies that read samples; groups retain none). Default 0. */
  retainSamples?: number;
  /** Seed of the sample reservoirs. */
  seed?: number;
}

/**
 * Statistics of several sites and groups of the same (unchanged) model at once: every layer-pair site and every
 * pair block of the groups that allow the `pairs` method share ONE forward/backward pass; the other groups take one
 * virtual-unit pass each. Returns the statistics strategies read, by site or group name. Use it when all targets
 * grow from the same model (statistics of a model change once any of its targets has grown).
 */
export function collectGrowthStatistics(model: tfl.LayersModel, targets: readonly (TfjsGrowthSite | ChannelGroup)[], batch: Batch, options: GrowthStatisticsOptions = {}): Map<string, SiteStatistics> {
  validateBatch(model, batch);
  const loss = resolveLoss(options.loss, model);
  const sites: TfjsGrowthSite[] = [];
  const split: { group: ChannelGroup; layout: GroupLayout; blocks: PairBlock[] }[] = [];
  const virtual: ChannelGroup[] = [];
  for (const t of targets) {
    if ('current' in t) sites.push(t);
    else {
      const blocks = pairBlocks(model, t);
      if (blocks) split.push({ group: t, layout: groupLayout(model, t), blocks });
      else virtual.push(t);
    }
  }
  // Pair blocks of groups retain no samples; their accumulators are created here, the sites' by collectStatistics.
  const accumulators = new Map<string, SiteAccumulator>();
  withInputShape(model, batch.xs.shape, () => {
    for (const { blocks } of split) for (const b of blocks) accumulators.set(b.site.name, createAccumulator(model, b.site, { retainSamples: 0 }));
  });
  const pairSites = [...sites, ...split.flatMap((s) => s.blocks.map((b) => b.site))];
  collectStatistics(model, pairSites, batch, { loss, into: accumulators, retainSamples: options.retainSamples ?? 0, seed: options.seed ?? 0 });
  const out = new Map<string, SiteStatistics>();
  for (const site of sites) out.set(site.name, accumulators.get(site.name)!.snapshot());
  for (const { group, layout, blocks } of split) {
    out.set(group.name, assemblePairs(group, layout, blocks, accumulators, new DenseStatistics(layout.fanOut, layout.fanIn, { retainSamples: 0 }, group.name)).snapshot());
  }
  for (const group of virtual) out.set(group.name, collectGroupStatistics(model, group, batch, { loss, method: 'virtual' }).snapshot());
  return out;
}

/** Examples per chunk, from the largest widened map of the group (shapes are read while the group is widened). */
function chunkSize(model: tfl.LayersModel, group: ChannelGroup, batch: number): number {
  const graph = modelGraph(model);
  let worst = 1;
  for (const m of [...group.producers, ...group.passThrough, ...group.joins]) {
    const shape = outputShapeOf(graph.byName.get(m.name)!.layer);
    const spatial = shape.slice(1, -1).reduce<number>((a, b) => a * Number(b ?? 1), 1);
    worst = Math.max(worst, spatial * Number(shape[shape.length - 1]));
  }
  return Math.max(1, Math.min(batch, Math.floor(CHUNK_FLOATS / worst)));
}
