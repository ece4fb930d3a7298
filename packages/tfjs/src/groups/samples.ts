/**
 * Input samples of a channel group: what NORTH reads. The group is one core site whose incoming matrix stacks the
 * producers' incoming weights (`core-group.ts`), so a sample row stacks the producers' input rows (`input-rows.ts`) at
 * one (example, output position): for row h and unit j, `h · w_j` is the sum over producers of their pre-activations
 * of channel j there (without biases). Producers must share their output positions; a producer with a single position
 * (a Dense gate of a squeeze-excitation block) repeats its row at every position, as its Multiply join broadcasts it.
 *
 * Memory is bounded: at most `retainSamples` rows are kept (a bottom-k reservoir over the rows, keyed by the core's
 * `reservoirKey(seed, row number)`, so the choice is deterministic for a seed and independent of chunking); the batch
 * is processed in chunks whose recorded producer inputs stay below 2²³ floats, and only the chosen rows are written
 * (no patch tensor is built).
 *
 * The statistics are input-only (`inputsOnly`: no growth matrix, no gradient rows), which `validateRequest` gives only
 * to strategies that read inputs alone. The pass runs in inference mode, up to the last producer's input only, and
 * changes nothing in the model.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { InvalidArgumentError, Matrix, ShapeMismatchError, UnsupportedError, reservoirKey, type SiteStatistics } from '@gradmax/core';
import { assertSyncReads } from '../backend/sync-reads.js';
import { modelGraph } from '../model/graph.js';
import { withInputShape } from '../model/shapes.js';
import { inputShapeOf, outputShapeOf } from '../sites/core-site.js';
import { validateBatch, type Batch } from '../statistics/batch.js';
import { runGraph } from '../statistics/executor.js';
import { groupLayout } from './layout.js';
import { layerRule } from './rules.js';
import type { ChannelGroup } from './types.js';

/** Options of {@link collectGroupInputSamples}. */
export interface GroupSampleOptions {
  /** Most rows kept (positive integer, default {@link DEFAULT_GROUP_SAMPLES}). */
  retainSamples?: number;
  /** Seed of the reservoir keys (default 0). */
  seed?: number;
}

/** Default number of input rows a group retains (the default of `grow`'s `retainSamples`). */
export const DEFAULT_GROUP_SAMPLES = 1024;

/** Largest number of floats of one chunk's recorded producer inputs. */
const CHUNK_FLOATS = 1 << 23;

interface Row {
  key: number;
  h: Float64Array;
}

/** Spatial output shape of each producer (for the active input-shape scope). */
function producerSpatial(model: tfl.LayersModel, group: ChannelGroup): number[][] {
  const graph = modelGraph(model);
  return group.producers.map((p) => outputShapeOf(graph.byName.get(p.name)!.layer).slice(1, -1).map(Number));
}

/**
 * Why the producers' input rows of `group` cannot be stacked row by row (their output positions differ), or
 * undefined when they can. Call inside the input-shape scope of the batch (as `grow` does) for dynamic input sizes.
 */
export function groupRowsProblem(model: tfl.LayersModel, group: ChannelGroup): string | undefined {
  const spatial = producerSpatial(model, group);
  const full = spatial.find((s) => s.reduce((a, b) => a * b, 1) > 1);
  if (!full) return undefined;
  for (let p = 0; p < spatial.length; p++) {
    const s = spatial[p]!;
    const positions = s.reduce((a, b) => a * b, 1);
    if (positions !== 1 && (s.length !== full.length || s.some((d, i) => d !== full[i]))) {
      const first = group.producers[spatial.indexOf(full)]!.name;
      return `producers "${first}" (output positions ${full.join('×')}) and "${group.producers[p]!.name}" (${s.join('×')}) do not share their output positions, so their input rows cannot be stacked into one sample row`;
    }
  }
  return undefined;
}

/**
 * Input samples of `group` on `batch` (see the module notes): input-only statistics whose `samples.h` is
 * `[rows × fanIn]` in the group's stacked column order, rows sorted by reservoir key.
 *
 * @throws InvalidArgumentError (bad batch or options), UnsupportedError (producers without shared output positions).
 */
export function collectGroupInputSamples(model: tfl.LayersModel, group: ChannelGroup, batch: Batch, options: GroupSampleOptions = {}): SiteStatistics {
  assertSyncReads('collectGroupInputSamples', 'withSyncReads(growthTensors(model, batch), () => collectGroupInputSamples(...))');
  const size = validateBatch(model, batch);
  const cap = options.retainSamples ?? DEFAULT_GROUP_SAMPLES;
  if (!Number.isInteger(cap) || cap < 1) throw new InvalidArgumentError(`group "${group.name}": retainSamples must be a positive integer, got ${cap}`, { group: group.name });
  const seed = options.seed ?? 0;
  if (!Number.isFinite(seed)) throw new InvalidArgumentError(`group "${group.name}": seed must be a finite number, got ${seed}`, { group: group.name });
  return withInputShape(model, batch.xs.shape, () => {
    const problem = groupRowsProblem(model, group);
    if (problem) throw new UnsupportedError(`group "${group.name}": ${problem}`, { group: group.name });
    const layout = groupLayout(model, group);
    const graph = modelGraph(model);
    const layers = group.producers.map((p) => graph.byName.get(p.name)!.layer);
    const positions = producerSpatial(model, group).map((s) => s.reduce((a, b) => a * b, 1));
    const P = Math.max(...positions);
    const fanIn = layout.fanIn;
    // Chunks bound the recorded producer inputs (the rows are written from them, only for the rows kept).
    const perExample = layers.reduce((sum, l) => sum + inputShapeOf(l).slice(1).reduce<number>((a, b) => a * Number(b ?? 1), 1), 0);
    const step = Math.max(1, Math.min(size, Math.floor(CHUNK_FLOATS / Math.max(1, perExample))));
    const names = new Set(group.producers.map((p) => p.name));
    let retained: Row[] = [];
    for (let start = 0; start < size; start += step) {
      const n = Math.min(step, size - start);
      // Bottom-k over this chunk's rows, then merged with the rows kept so far: only the chosen rows are written.
      let threshold = retained.length < cap ? Infinity : retained[cap - 1]!.key;
      let candidates: { key: number; r: number }[] = [];
      // Keeps the candidate list within 2·cap entries whatever the number of rows (sort, keep cap, tighten).
      const prune = () => {
        candidates.sort((a, b) => a.key - b.key);
        candidates = candidates.slice(0, cap);
        if (candidates.length === cap) threshold = Math.min(threshold, candidates[cap - 1]!.key);
      };
      for (let r = 0; r < n * P; r++) {
        const key = reservoirKey(seed, start * P + r);
        if (key < threshold) {
          candidates.push({ key, r });
          if (candidates.length >= 2 * cap) prune();
        }
      }
      if (candidates.length === 0) continue;
      prune();
      const chosen = candidates;
      const xs = n === size ? batch.xs : tf.slice(batch.xs, start, n);
      let inputs = new Map<string, tf.Tensor>();
      try {
        withInputShape(model, xs.shape, () => {
          tf.tidy(() => {
            inputs = runGraph(model, [xs], { recordInputs: names, stopWhenRecorded: true }).inputs;
          });
        });
        const sources = layout.producers.map((p, i) => {
          const source = layerRule(p.member.className)!.producer!.inputRows(inputs.get(p.member.name)!, layers[i]!);
          if (source.positions !== positions[i] || source.fanIn !== p.fanIn) {
            throw new ShapeMismatchError(`group "${group.name}": input rows of producer "${p.member.name}" [positions, fanIn]`, [positions[i]!, p.fanIn], [source.positions, source.fanIn], { group: group.name });
          }
          return source;
        });
        const rows = chosen.map(({ key, r }): Row => {
          const e = Math.floor(r / P);
          const u = r % P;
          const h = new Float64Array(fanIn);
          layout.producers.forEach((p, i) => sources[i]!.fill(e, positions[i] === 1 ? 0 : u, h, p.col0));
          return { key, h };
        });
        retained = [...retained, ...rows].sort((a, b) => a.key - b.key).slice(0, cap);
      } finally {
        tf.dispose([...inputs.values()]);
        if (xs !== batch.xs) xs.dispose();
      }
    }
    const h = new Matrix(retained.length, fanIn);
    retained.forEach((row, r) => h.data.set(row.h, r * fanIn));
    const offered = size * P;
    return {
      moment: new Matrix(0, fanIn),
      count: size,
      samples: { h, g: new Matrix(retained.length, 0), weight: retained.length > 0 ? offered / (retained.length * size) : 0 },
      inputsOnly: true,
    };
  });
}
