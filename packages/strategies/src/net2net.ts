/**
 * Net2WiderNet (Chen, Goodfellow, Shlens, ICLR 2016): widen a layer by splitting existing units.
 */
import { Matrix, UnsupportedError, validateRequest } from '@gradmax/core';
import type { GrowthRequest, GrowthStrategy, NewUnits } from '@gradmax/core';
import { baseReport, checkChoice, checkPositive, norm2 } from './internal/util.js';

/** How {@link net2net} picks the units to split. */
export type Net2NetSelection = 'random' | 'norm';

/** Options of {@link net2net}. */
export interface Net2NetOptions {
  /**
   * `'random'` (default): each new unit copies an existing unit drawn uniformly with replacement (the paper's
   * random mapping). `'norm'`: copies the units with the largest ‖incoming‖·‖outgoing‖ first (ties by index),
   * cycling when more units are requested than exist.
   */
  select?: Net2NetSelection;
  /**
   * Symmetry-breaking noise (default 0): each copy's incoming weights get i.i.d. Gaussian noise of standard
   * deviation `noise × ‖source incoming‖ / √fanIn`. Any noise > 0 breaks function preservation.
   */
  noise?: number;
}

/**
 * Creates Net2WiderNet of Chen, Goodfellow and Shlens, "Net2Net: Accelerating Learning via Knowledge Transfer"
 * (ICLR 2016). Optimises nothing; it transfers the existing function to the wider layer: each new unit copies
 * an existing unit's incoming weights and bias (chosen by `select`, default `'random'`), and the outgoing
 * weights of a unit split r times (itself plus its copies) are divided by r among them (the originals through
 * `existingOutgoingScale`). `sourceUnits` names each copy's source so adapters copy the per-channel parameters
 * of in-between layers (BatchNorm, depthwise kernels) too. Function-preserving for any activation iff
 * `noise` = 0 (default), which `functionPreserving` reflects. Copies have the same gradients as their sources,
 * so they add no new descent direction until noise or training breaks the symmetry. Needs no statistics.
 *
 * @param options - {@link Net2NetOptions}; defaults: select `random`, noise 0.
 */
export function net2net(options: Net2NetOptions = {}): GrowthStrategy {
  const select = checkChoice('net2net', 'select', options.select ?? 'random', ['random', 'norm']);
  const noise = checkPositive('net2net', 'noise', options.noise ?? 0, true);
  const strategy: GrowthStrategy = {
    name: 'net2net',
    functionPreserving: noise === 0,
    needs: { moment: false, samples: false, lossOracle: false },
    grow(request: GrowthRequest): NewUnits {
      validateRequest(strategy, request);
      const { site, count, rng } = request;
      const n1 = site.units;
      if (n1 === 0) throw new UnsupportedError(`net2net on site "${site.name}": the layer has no units to split`, { site: site.name, strategy: 'net2net' });
      const sources = new Int32Array(count);
      if (select === 'random') {
        for (let i = 0; i < count; i++) sources[i] = rng.int(n1);
      } else {
        const score = new Float64Array(n1);
        for (let j = 0; j < n1; j++) score[j] = norm2(site.incoming.row(j)) * norm2(site.outgoing.col(j));
        const order = Array.from({ length: n1 }, (_, j) => j).sort((a, b) => score[b]! - score[a]! || a - b);
        for (let i = 0; i < count; i++) sources[i] = order[i % n1]!;
      }
      const replicas = new Float64Array(n1).fill(1);
      for (const s of sources) replicas[s]!++;
      const existingOutgoingScale = new Float64Array(n1);
      for (let j = 0; j < n1; j++) existingOutgoingScale[j] = 1 / replicas[j]!;

      const { fanIn, fanOut } = site;
      const incoming = new Matrix(count, fanIn);
      const incomingBias = new Float64Array(count);
      const outgoing = new Matrix(fanOut, count);
      for (let i = 0; i < count; i++) {
        const s = sources[i]!;
        const row = site.incoming.data.subarray(s * fanIn, (s + 1) * fanIn);
        const sigma = noise > 0 ? (noise * norm2(row)) / Math.sqrt(Math.max(1, fanIn)) : 0;
        for (let c = 0; c < fanIn; c++) incoming.data[i * fanIn + c] = row[c]! + (sigma > 0 ? sigma * rng.normal() : 0);
        incomingBias[i] = site.incomingBias ? site.incomingBias[s]! : 0;
        for (let r = 0; r < fanOut; r++) outgoing.data[r * count + i] = site.outgoing.data[r * n1 + s]! / replicas[s]!;
      }
      const split = [...new Set(sources)].length;
      return {
        incoming,
        incomingBias,
        outgoing,
        existingOutgoingScale,
        sourceUnits: sources,
        report: {
          ...baseReport('net2net', site, count, noise > 0 ? [`noise ${noise} added to the copies' incoming weights: the function is not preserved exactly`] : []),
          select,
          noise,
          sourceUnits: Array.from(sources),
          unitsSplit: split,
        },
      };
    },
  };
  return strategy;
}
