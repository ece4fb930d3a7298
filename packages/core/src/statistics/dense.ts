/**
 * Growth statistics of a Dense→Dense site.
 *
 * With per-example gradients g_n = ∂ℓ_n/∂z_{l+1} (each example's own loss) and inputs h_n of layer l, the growth
 * matrix is M = (1/N) Σ_n g_n h_nᵀ (`[fanOut × fanIn]`). If k new units with zero incoming weights feed the next
 * layer through Ω (`[fanOut × k]`), the gradient of the mean loss with respect to their incoming weights is
 * f'(0)·Ωᵀ M.
 * @packageDocumentation
 */
import { ShapeMismatchError } from '../errors.js';
import type { Matrix } from '../matrix.js';
import { MomentAccumulator, parseStatisticsJSON } from './accumulator.js';
import type { MatrixLike, StatisticsJSON, StatisticsOptions } from './accumulator.js';

/** Accumulates the dense growth matrix M = mean over examples of g hᵀ, mergeable and serialisable. */
export class DenseStatistics extends MomentAccumulator {
  /**
   * @param fanOut - outputs n2 of the next layer (rows of M)
   * @param fanIn - inputs n0 of the current layer (columns of M)
   * @param options - `retainSamples` (max rows kept, default 0) and `seed` of the reservoir keys
   * @param name - used in error messages
   */
  constructor(fanOut: number, fanIn: number, options?: StatisticsOptions, name = 'dense statistics') {
    super('dense', fanOut, fanIn, options, name);
  }

  /**
   * Adds a batch: `g` is `[B × fanOut]` (per-example gradients of each example's own loss), `h` is `[B × fanIn]`.
   * Throws {@link ShapeMismatchError} (with both shapes) or {@link NonFiniteError}.
   */
  accumulate(g: MatrixLike | Matrix, h: MatrixLike | Matrix): void {
    const where = { statistic: this.name, g: [g?.rows, g?.cols], h: [h?.rows, h?.cols] };
    if (!g || !h || g.cols !== this.fanOut || h.cols !== this.fanIn || g.rows !== h.rows) {
      throw new ShapeMismatchError(`${this.name}: accumulate(g, h)`, `g [B × ${this.fanOut}] and h [B × ${this.fanIn}]`, `g [${g?.rows}, ${g?.cols}] and h [${h?.rows}, ${h?.cols}]`, where);
    }
    if (g.data.length !== g.rows * g.cols) throw new ShapeMismatchError(`${this.name}: g data length`, [g.rows * g.cols], [g.data.length], where);
    if (h.data.length !== h.rows * h.cols) throw new ShapeMismatchError(`${this.name}: h data length`, [h.rows * h.cols], [h.data.length], where);
    if (g.rows === 0) return;
    this.assertFinite('gradients g', g.data);
    this.assertFinite('inputs h', h.data);
    const { fanOut, fanIn } = this;
    const gd = g.data;
    const hd = h.data;
    const grow = new Float64Array(fanOut);
    const hrow = new Float64Array(fanIn);
    for (let n = 0; n < g.rows; n++) {
      for (let o = 0; o < fanOut; o++) grow[o] = gd[n * fanOut + o]!;
      for (let i = 0; i < fanIn; i++) hrow[i] = hd[n * fanIn + i]!;
      for (let o = 0; o < fanOut; o++) {
        const go = grow[o]!;
        if (go === 0) continue;
        const base = o * fanIn;
        for (let i = 0; i < fanIn; i++) this.sum[base + i] += go * hrow[i]!;
      }
      this.offer(grow, hrow);
    }
    this.examples += g.rows;
    this.markSampled(g.rows);
  }

  /**
   * Adds Σ g hᵀ over `count` examples that an adapter reduced itself (`[fanOut × fanIn]`, a sum, not a mean).
   * Such examples contribute no retained samples. Build it from per-example gradients of each example's own loss
   * (with a batch-mean loss, multiply the back-propagated gradient by the batch size first).
   */
  addSum(sumGH: MatrixLike | Matrix, count: number): void {
    if (!sumGH || sumGH.rows !== this.fanOut || sumGH.cols !== this.fanIn) {
      throw new ShapeMismatchError(`${this.name}: addSum(sumGH)`, [this.fanOut, this.fanIn], [sumGH?.rows, sumGH?.cols] as number[], { statistic: this.name });
    }
    this.addSumData(sumGH.data, count, 'addSum(sumGH)');
  }

  /** A new accumulator holding this one's and `other`'s data (neither input changes). See the module docs. */
  merge(other: DenseStatistics): DenseStatistics {
    this.checkMergeable(other);
    const target = new DenseStatistics(this.fanOut, this.fanIn, { retainSamples: this.retainSamples, seed: Math.min(this.seed, other.seed) }, this.name);
    return this.mergeInto(target, other);
  }

  /** Lossless, versioned JSON form. */
  toJSON(): StatisticsJSON {
    return this.baseJSON('dense');
  }

  /** Restores {@link DenseStatistics.toJSON} output (object or JSON text); validates it and throws typed errors. */
  static fromJSON(value: unknown): DenseStatistics {
    const json = parseStatisticsJSON(value, 'dense');
    const stats = new DenseStatistics(json.fanOut, json.fanIn, { retainSamples: json.retainSamples, seed: json.seed }, json.name);
    stats.restoreJSON(json);
    return stats;
  }
}
