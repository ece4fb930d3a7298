/**
 * Which layers of a model are most starved for width: every growable site's growth matrix M = E[g hᵀ] from
 * labelled data (through the probe), its leading singular values and GradMax's first-order gain of adding k units.
 * @packageDocumentation
 */
import { InvalidArgumentError, frobeniusNorm, topKSvd } from '@gradmax/core';
import type { ModelProto } from 'onnx-buf';
import { OnnxModel, loadModel } from '../model.js';
import { findGroup, findGroups, groupPlan } from '../groups/find.js';
import { computeGroupStatistics } from './groups.js';
import type { ProbeLoss } from './build.js';
import type { ProbeBatch, ProbeProgress } from './compute.js';
import type { NodePlacement } from '../placement.js';
import type { ProbeStatisticsMode } from './sketch.js';

/** The growth outlook of one site (see {@link adviseGrowth}). */
export interface GrowthAdvice {
  /** Channel group name (its first producer; `findGroups`). */
  site: string;
  /** `"conv"` when a producer is a convolution, else `"dense"`. */
  kind: 'dense' | 'conv';
  /** Current units of the layer that grows. */
  units: number | undefined;
  /** Shape of M, `[rows, cols]` (dense: `[fanOut, fanIn]`; conv: next-kernel taps × current-kernel taps). */
  shape: [number, number];
  /** Leading singular values of M, descending (at most `top`, or `k` when larger). */
  singularValues: number[];
  /**
   * ‖M‖_F², the gain of adding as many units as M has singular values (for a sketched M, the unbiased estimate
   * ‖M·Ω‖²_F / r from the range sketch).
   */
  total: number;
  /** How M was computed: exactly, or as a randomized sketch (singular values then approximate). */
  statistic: 'exact' | 'sketch';
  /** Units the gain is computed for (`k`, capped by the number of singular values). */
  k: number;
  /**
   * GradMax's objective at its optimum for k new units with unit-norm outgoing weights Ω = U_k: ‖ΩᵀM‖²_F =
   * Σ_{i≤k} σᵢ². One SGD step of size η on the new (zero) incoming weights lowers the loss by about η·c²·gain, where
   * c is the outgoing norm the strategy gives the new units.
   */
  gain: number;
  /** `gain / k`: the gain per added unit. */
  gainPerUnit: number;
  /** `gain / total`: the fraction of the attainable first-order gain that k units capture (at most 1). */
  share: number;
}

/** A site left out of the advice, and why. */
export interface SkippedSite {
  /** Site name. */
  site: string;
  /** Why (not growable, or refused by the probe). */
  reason: string;
  /** Whether the site is growable (then the probe refused it: its M would not be exact). */
  growable: boolean;
}

/** Result of {@link adviseGrowth}. */
export interface GrowthAdviceResult {
  /** One entry per advised site, largest gain first. */
  advice: GrowthAdvice[];
  /** Sites left out, with the reason. */
  skipped: SkippedSite[];
  /** Examples the statistics were computed from. */
  examples: number;
  /** Mean loss over those examples. */
  meanLoss: number;
  /** Where the probe's nodes ran, for a provider other than cpu. */
  placement?: NodePlacement;
}

/** Options of {@link adviseGrowth}. */
export interface AdviseGrowthOptions {
  /** Labelled minibatches. */
  data: Iterable<ProbeBatch> | AsyncIterable<ProbeBatch>;
  /** The loss. */
  loss: ProbeLoss;
  /** Units to add per site for the gain (default 8). */
  k?: number;
  /** Singular values to report per site (default 3). */
  top?: number;
  /** Restrict to these groups (a group name, a producer's name or `PRODUCER->CONSUMER`; default every growable group). */
  sites?: readonly string[];
  /** Largest batch sent to onnxruntime at once. */
  batchSize?: number;
  /** onnxruntime execution provider (default cpu). */
  executionProvider?: string;
  /** Called after every minibatch. */
  onProgress?: (progress: ProbeProgress) => void;
  /** Values of named symbolic input dims other than the batch (shape discovery). */
  fixedDims?: Record<string, number>;
  /** Exact growth matrices, randomized sketches, or `auto` (sketch the large ones; default `exact`). */
  statistics?: ProbeStatisticsMode;
  /** Sketch width r (default max(16, k + 8); the gain of a sketched group counts at most r singular values). */
  sketchRank?: number;
  /** Seed of the sketch's test matrices (default 0). */
  sketchSeed?: number;
}

/**
 * Computes every growable channel group's growth matrix M from labelled data in one probe run and ranks the groups by
 * GradMax's first-order gain of adding `k` units (Σ of the k largest σᵢ² of M; for grouped convs, ⌊k/G⌋ units per
 * share, the sum over the shares' matrices). Sites the probe cannot take (e.g. a
 * conv pair whose in-between ops make M inexact) are listed in `skipped` with the reason.
 */
export async function adviseGrowth(model: string | Uint8Array | ModelProto | OnnxModel, options: AdviseGrowthOptions): Promise<GrowthAdviceResult> {
  const k = options.k ?? 8;
  const top = options.top ?? 3;
  if (!Number.isInteger(k) || k < 1) throw new InvalidArgumentError(`k must be a positive integer, got ${k}`, { k });
  if (!Number.isInteger(top) || top < 1) throw new InvalidArgumentError(`top must be a positive integer, got ${top}`, { top });
  const ir = typeof model === 'string' || model instanceof Uint8Array ? loadModel(model) : model instanceof OnnxModel ? model : new OnnxModel(model);
  // Channel groups: a group's M stacks every (consumer, producer) pair (see computeGroupStatistics).
  const all = findGroups(ir);
  const wanted = options.sites?.map((name) => findGroup(ir, name, all).name);
  const skipped: SkippedSite[] = [];
  const usable: string[] = [];
  for (const g of all) {
    if (wanted && !wanted.includes(g.name)) continue;
    if (!g.growable) skipped.push({ site: g.name, reason: g.reason ?? 'not growable', growable: false });
    else usable.push(g.name);
  }
  if (!usable.length) throw new InvalidArgumentError(`no group of the model can grow${skipped.length ? `: ${skipped.map((s) => `${s.site}: ${s.reason}`).join('; ')}` : ''}`);
  const res = await computeGroupStatistics(ir, {
    groups: usable,
    loss: options.loss,
    data: options.data,
    ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
    ...(options.executionProvider ? { executionProvider: options.executionProvider } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.fixedDims ? { fixedDims: options.fixedDims } : {}),
    ...(options.statistics ? { statistics: options.statistics } : {}),
    // The sketch's singular values beyond its rank are unknown: r = k + 8 at least (default 16).
    sketchRank: options.sketchRank ?? Math.max(16, k + 8),
    ...(options.sketchSeed !== undefined ? { sketchSeed: options.sketchSeed } : {}),
  });
  for (const [name, reason] of res.refused) skipped.push({ site: name, reason, growable: true });
  if (!res.statistics.size) throw new InvalidArgumentError(`no group of the model has exact statistics: ${skipped.map((s) => `${s.site}: ${s.reason}`).join('; ')}`);
  const advice: GrowthAdvice[] = [...res.statistics].map(([name, stats]) => {
    const group = all.find((g) => g.name === name)!;
    const sketch = res.sketches.get(name);
    let rows: number;
    let cols: number;
    let s: number[];
    let total: number;
    let kk: number;
    let gain: number;
    if (sketch) {
      // From the sketch's singular triplets (never forming M).
      rows = sketch.fanOut;
      cols = sketch.fanIn;
      s = Array.from(sketch.reconstruct().singularValues);
      total = sketch.frobeniusSquaredEstimate();
      kk = Math.min(k, s.length);
      gain = s.slice(0, kk).reduce((a, v) => a + v * v, 0);
    } else {
      const m = stats.moment;
      rows = m.rows;
      cols = m.cols;
      const p = Math.min(rows, cols);
      // Grouped convs: k/G units per share, each share with its own matrix (see computeGroupStatistics).
      const shares = stats.shares?.map((x) => x.moment) ?? [m];
      const perShare = Math.max(1, Math.min(Math.floor(k / shares.length), p));
      const want = Math.min(Math.max(perShare, top), p);
      const spectra = shares.map((x) => Array.from(topKSvd(x, want).s));
      s = spectra.flat().sort((x, y) => y - x);
      total = shares.reduce((acc, x) => acc + frobeniusNorm(x) ** 2, 0);
      kk = perShare * shares.length;
      gain = spectra.reduce((acc, sp) => acc + sp.slice(0, perShare).reduce((t, v) => t + v * v, 0), 0);
    }
    const conv = groupPlan(group)?.producers.some((l) => l.type === 'Conv' || l.type === 'ConvTranspose') ?? false;
    return {
      site: name,
      kind: conv ? 'conv' : 'dense',
      units: group.units,
      shape: [rows, cols],
      singularValues: s.slice(0, Math.max(top, 1)),
      total,
      statistic: sketch ? 'sketch' : 'exact',
      k: kk,
      gain,
      gainPerUnit: gain / kk,
      share: total > 0 ? Math.min(1, gain / total) : 0,
    };
  });
  advice.sort((a, b) => b.gain - a.gain);
  return { advice, skipped, examples: res.examples, meanLoss: res.meanLoss, ...(res.placement ? { placement: res.placement } : {}) };
}
