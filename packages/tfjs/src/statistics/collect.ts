/**
 * One extra forward/backward pass on a grow batch giving each site's growth statistics: dense sites get
 * Σ g hᵀ (per-example gradients g of each example's own loss at the next layer's pre-activation, inputs h of the
 * current layer); conv sites get the exact tap gradient (tap scatter of the next conv's output gradient, back through
 * in-between pooling/depthwise layers, reduced against the current conv's input patches); conv→flatten/global
 * pooling→dense sites get the same matrix without materialising the sparse tap scatter.
 *
 * The pass runs in inference mode (BatchNorm uses its moving statistics, Dropout is off) and changes no weights,
 * optimizer state or BatchNorm statistics.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { ConvStatistics, DenseStatistics, InvalidArgumentError, type SiteStatistics } from '@gradmax/core';
import { modelGraph } from '../model/graph.js';
import { withInputShape } from '../model/shapes.js';
import { inputShapeOf, outputShapeOf, siteGeometry, siteLayers } from '../sites/core-site.js';
import type { TfjsGrowthSite } from '../sites/types.js';
import { validateBatch, type Batch } from './batch.js';
import { convDenseSum } from './conv-dense.js';
import { convTapGradientsShared, convTapParts, sharedTapKey, tapGradientOf } from './conv-tap.js';
import { convDenseRows, tensorRows, transposeFlat } from './rows.js';
import { RoutedConvStatistics } from './routed-statistics.js';
import { runGraph } from './executor.js';
import { assertSyncReads } from '../backend/sync-reads.js';
import { registerDilatedConvGradients } from '../backend/dilated-conv-gradient.js';
import { resolveLoss, type LossSpec } from './loss.js';

/** A statistics accumulator of one site (dense or conv), from `@gradmax/core`. */
export type SiteAccumulator = DenseStatistics | ConvStatistics;

/** Options of {@link collectStatistics}. */
export interface CollectOptions {
  /** Loss (a tfjs-layers loss name or `(yTrue, yPred) => scalar`); defaults to the model's compiled loss. */
  loss?: LossSpec;
  /** Accumulators to add to (by site name), e.g. from an earlier batch; new ones are created otherwise. */
  into?: Map<string, SiteAccumulator>;
  /** Retain up to this many raw (g, h) rows per site (strategies that need samples). Default 0. */
  retainSamples?: number;
  /** Seed of the sample reservoir. */
  seed?: number;
}

type Config = Record<string, unknown>;


/** Largest number of floats of one intermediate tensor before the batch is processed in chunks. */
const CHUNK_FLOATS = 1 << 23;

/** A new accumulator for `site` (dense or routed conv statistics), for the shapes of the active input-shape scope. */
export function createAccumulator(model: tfl.LayersModel, site: TfjsGrowthSite, options: CollectOptions): SiteAccumulator {
  const stats = { retainSamples: options.retainSamples ?? 0, seed: options.seed ?? 0 };
  if (site.kind === 'dense') {
    const { current, next } = siteLayers(model, site);
    const fanIn = Number(inputShapeOf(current)[1]);
    const fanOut = Number((next.getConfig() as Config)['units']);
    return new DenseStatistics(fanOut, fanIn, stats, site.name);
  }
  return new RoutedConvStatistics(siteGeometry(model, site), stats, site.name);
}

function chunkSize(model: tfl.LayersModel, sites: readonly TfjsGrowthSite[], batch: number): number {
  let worst = 1;
  for (const site of sites) {
    if (site.kind === 'dense') continue;
    const { current } = siteLayers(model, site);
    const mid = outputShapeOf(current);
    const geometry = siteGeometry(model, site);
    const fanIn = geometry.kernel1[0] * geometry.kernel1[1] * geometry.inChannels;
    // conv: the tap-scattered map [H1, W1, k2h·k2w·m2] per example; conv-dense: patches and routed patches.
    const perExample = site.kind === 'conv' ? Number(mid[1]) * Number(mid[2]) * geometry.kernel2[0] * geometry.kernel2[1] * geometry.outChannels : (Number(mid[1]) * Number(mid[2]) + geometry.kernel2[0] * geometry.kernel2[1]) * fanIn;
    worst = Math.max(worst, perExample);
  }
  return Math.max(1, Math.min(batch, Math.floor(CHUNK_FLOATS / worst)));
}

/**
 * Collects growth statistics of `sites` on one grow batch. Returns one accumulator per site name (the ones passed
 * in `options.into`, updated, or new ones); call `.snapshot()` for the {@link SiteStatistics} a strategy reads.
 *
 * @throws typed errors for an empty, non-finite or shape-mismatched batch, or an unknown loss.
 */
export function collectStatistics(model: tfl.LayersModel, sites: readonly TfjsGrowthSite[], batch: Batch, options: CollectOptions = {}): Map<string, SiteAccumulator> {
  assertSyncReads('collectStatistics', 'withSyncReads(growthTensors(model, batch), () => collectStatistics(...))');
  const size = validateBatch(model, batch);
  const loss = resolveLoss(options.loss, model);
  // A dilated conv downstream of a site needs a gradient tfjs does not have (see registerDilatedConvGradients).
  registerDilatedConvGradients();
  const result = options.into ?? new Map<string, SiteAccumulator>();
  for (const site of sites) {
    if (!result.has(site.name)) result.set(site.name, withInputShape(model, batch.xs.shape, () => createAccumulator(model, site, options)));
    const acc = result.get(site.name)!;
    const ok = site.kind === 'dense' ? acc instanceof DenseStatistics : acc instanceof RoutedConvStatistics || (acc instanceof ConvStatistics && acc.retainSamples === 0);
    if (!ok) throw new InvalidArgumentError(`site "${site.name}": the accumulator in \`into\` does not fit this site (dense sites need DenseStatistics, conv sites RoutedConvStatistics or a ConvStatistics without samples)`, { site: site.name });
  }
  if (sites.length === 0) return result;
  const step = withInputShape(model, batch.xs.shape, () => chunkSize(model, sites, size));
  for (let start = 0; start < size; start += step) {
    const n = Math.min(step, size - start);
    const xs = n === size ? batch.xs : tf.slice(batch.xs, start, n);
    const ys = n === size ? batch.ys : tf.slice(batch.ys, start, n);
    // Models with dynamic input sizes: every shape below is the one of this chunk.
    withInputShape(model, xs.shape, () => collectChunk(model, sites, xs, ys, loss, result));
    if (xs !== batch.xs) xs.dispose();
    if (ys !== batch.ys) ys.dispose();
  }
  return result;
}

function collectChunk(
  model: tfl.LayersModel,
  sites: readonly TfjsGrowthSite[],
  xs: tf.Tensor,
  ys: tf.Tensor,
  loss: ReturnType<typeof resolveLoss>,
  result: Map<string, SiteAccumulator>,
): void {
  const n = xs.shape[0]!;
  const nextNames = [...new Set(sites.map((s) => s.next))];
  const probeShapes = nextNames.map((name) => {
    const layer = modelGraph(model).byName.get(name)!.layer;
    return [n, ...outputShapeOf(layer).slice(1).map(Number)];
  });
  const probes = probeShapes.map((shape) => tf.zeros(shape));
  const recorded = new Map<string, tf.Tensor>();
  const record = new Set(sites.map((s) => s.current));
  try {
    const { value, grads } = tf.valueAndGrads((...p: tf.Tensor[]) => {
      const run = runGraph(model, [xs], { recordInputs: record, probes: new Map(nextNames.map((name, i) => [name, p[i]!])) });
      for (const [k, v] of run.inputs) recorded.set(k, v);
      // The chunk's loss is a mean over the chunk; scale so that the gradient is Σ over examples of each one's own loss.
      return tf.mul(loss(ys, run.outputs[0]!), n) as tf.Scalar;
    })(probes);
    // Conv sites without samples that share the current layer and the next layers' geometry (a group's blocks) share
    // one routed-patch build and one weight gradient.
    const shared = new Map<string, TfjsGrowthSite[]>();
    for (const site of sites) {
      if (site.kind !== 'conv' || result.get(site.name)!.retainSamples > 0) continue;
      const key = sharedTapKey(model, site);
      shared.set(key, [...(shared.get(key) ?? []), site]);
    }
    const taps = new Map<string, tf.Tensor2D>();
    for (const bucket of shared.values()) {
      const out = convTapGradientsShared(model, bucket, recorded.get(bucket[0]!.current)! as tf.Tensor4D, bucket.map((s) => grads[nextNames.indexOf(s.next)]! as tf.Tensor4D));
      bucket.forEach((s, i) => taps.set(s.name, out[i]!));
    }
    for (const site of sites) {
      const g = grads[nextNames.indexOf(site.next)]!;
      const h = recorded.get(site.current)!;
      const acc = result.get(site.name)!;
      if (site.kind === 'dense') {
        const dense = acc as DenseStatistics;
        if (dense.retainSamples > 0) {
          dense.accumulate({ rows: n, cols: g.shape[1]!, data: g.dataSync() }, { rows: n, cols: h.shape[1]!, data: h.dataSync() });
        } else {
          const sum = tf.matMul(g as tf.Tensor2D, h as tf.Tensor2D, true, false);
          dense.addSum({ rows: sum.shape[0]!, cols: sum.shape[1]!, data: sum.dataSync() }, n);
          sum.dispose();
        }
      } else if (site.kind === 'conv-dense') {
        const sum = convDenseSum(model, site, h as tf.Tensor4D, g as tf.Tensor2D);
        const sumData = sum.dataSync();
        sum.dispose();
        const routed = acc as RoutedConvStatistics;
        // addSum takes [fanOut × fanIn]; the row-accepting path takes the tap layout [fanIn × fanOut].
        if (routed.retainSamples > 0) routed.accumulateRows(transposeFlat(sumData, routed.fanOut, routed.fanIn), convDenseRows(model, site, h as tf.Tensor4D, g as tf.Tensor2D), n);
        else routed.addSum({ rows: routed.fanOut, cols: routed.fanIn, data: sumData }, n);
      } else {
        const routed = acc as RoutedConvStatistics;
        if (routed.retainSamples > 0) {
          // Samples need the per-(example, position) rows, so the tap-scattered map is built.
          const parts = convTapParts(model, site, h as tf.Tensor4D, g as tf.Tensor4D);
          const tap = tapGradientOf(parts);
          routed.accumulateRows(tap.dataSync(), tensorRows(parts.routed, parts.patches), n);
          tf.dispose([tap, parts.patches, parts.routed]);
        } else {
          const tap = taps.get(site.name)!;
          routed.accumulateTapGradient(tap.dataSync(), n);
          tap.dispose();
        }
      }
    }
    tf.dispose(grads);
    value.dispose();
  } finally {
    tf.dispose(probes);
    for (const t of recorded.values()) t.dispose();
  }
}

/** Snapshots every accumulator (the statistics strategies read). */
export function snapshotStatistics(accumulators: Map<string, SiteAccumulator>): Map<string, SiteStatistics> {
  return new Map([...accumulators].map(([name, acc]) => [name, acc.snapshot()]));
}
