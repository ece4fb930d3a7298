/**
 * Growth statistics of a Conv→Conv (or Conv→Flatten→Dense) site: the exact conv growth matrix.
 *
 * Math. Let the current conv (kernel k1, stride s1, padding p1) map x to the intermediate map, and the next conv
 * (k2, s2, p2) map the intermediate map to z, whose per-example gradient is g = ∂ℓ_n/∂z. A new intermediate
 * channel with incoming kernel w1 (`[k1h, k1w, m0]`) and outgoing slice w2 (`[k2h, k2w, m2]`) contributes to z at
 * position y through intermediate positions u = s2·y + b − p2 (b a tap of the next kernel), but only when u is
 * inside the intermediate map: positions in the next conv's zero padding carry no signal from w1. At u, the new
 * channel's pre-activation reads the input pixels s1·u + a − p1. With w1 = 0 the gradient of the mean loss is
 * f'(0)·Σ_{b, c_out} w2[b, c_out]·M[(b, c_out), (a, c_in)] with
 *
 *   M[(b, c_out), (a, c_in)] = (1/N) Σ_n Σ_{y : u inside} x_n[s1·u + a − p1, c_in] · g_n[y, c_out].
 *
 * Equivalently: scatter g onto the intermediate map per tap, T[n, u, (b, c_out)] = g_n[y, c_out] (the "tap
 * scatter", a conv-transpose with a one-hot kernel), then take the current conv's weight gradient of x against T:
 * that is `[k1h, k1w, m0, k2h·k2w·m2]`, i.e. Mᵀ summed over examples. Each row pair (x patch at u, T at u) is one
 * retained sample. A single auxiliary K×K conv is not exact when the next conv pads, so it is not offered.
 * @packageDocumentation
 */
import { InvalidArgumentError, ShapeMismatchError } from '../errors.js';
import type { Matrix } from '../matrix.js';
import type { ConvPairGeometry } from '../site.js';
import { MomentAccumulator, parseStatisticsJSON } from './accumulator.js';
import type { MatrixLike, StatisticsJSON, StatisticsOptions } from './accumulator.js';
import { convFanIn, convFanOut, validateConvPairGeometry } from './conv-geometry.js';

/** An NHWC tensor as `{shape: [B, H, W, C], data}` (any numeric array type). */
export interface NhwcLike {
  /** `[B, H, W, C]`. */
  shape: readonly number[];
  /** Row-major entries. */
  data: ArrayLike<number>;
}

/** Accumulates the exact conv growth matrix (`[k2h·k2w·m2 × k1h·k1w·m0]`), mergeable and serialisable. */
export class ConvStatistics extends MomentAccumulator {
  /** The validated site geometry. */
  readonly geometry: ConvPairGeometry;

  /**
   * @param geometry - site geometry (see `makeConvPairGeometry` / `flattenDenseGeometry`); validated
   * @param options - `retainSamples` (max rows kept, default 0) and `seed` of the reservoir keys
   * @param name - used in error messages
   */
  constructor(geometry: ConvPairGeometry, options?: StatisticsOptions, name = 'conv statistics') {
    const g = validateConvPairGeometry(geometry, `${name}: geometry`);
    super('conv', convFanOut(g), convFanIn(g), options, name);
    this.geometry = g;
  }

  /**
   * Adds a tap gradient computed by an adapter: the current conv's weight gradient (HWIO,
   * `[k1h, k1w, m0, k2h·k2w·m2]`, row-major) of its input against the tap-scattered next-layer gradient,
   * summed (not averaged) over `count` examples. It must be built from per-example gradients of each example's own
   * loss: if the adapter back-propagated a batch-mean loss (gradient g/B per example), multiply by B first.
   */
  accumulateTapGradient(tapGradient: ArrayLike<number>, count: number): void {
    const { fanIn, fanOut } = this;
    if (!tapGradient || tapGradient.length !== fanIn * fanOut) {
      const [k1h, k1w] = this.geometry.kernel1;
      throw new ShapeMismatchError(`${this.name}: tap gradient`, [k1h, k1w, this.geometry.inChannels, fanOut], [tapGradient?.length ?? 0], { statistic: this.name });
    }
    const t = new Float64Array(fanIn * fanOut);
    for (let i = 0; i < fanIn; i++) for (let f = 0; f < fanOut; f++) t[f * fanIn + i] = tapGradient[i * fanOut + f]!;
    this.addSumData(t, count, 'tap gradient');
  }

  /** Adds Σ over `count` examples of the growth-matrix numerator, already in `[fanOut × fanIn]` layout. */
  addSum(sumGH: MatrixLike | Matrix, count: number): void {
    if (!sumGH || sumGH.rows !== this.fanOut || sumGH.cols !== this.fanIn) {
      throw new ShapeMismatchError(`${this.name}: addSum(sumGH)`, [this.fanOut, this.fanIn], [sumGH?.rows, sumGH?.cols] as number[], { statistic: this.name });
    }
    this.addSumData(sumGH.data, count, 'addSum(sumGH)');
  }

  /**
   * Naive path: adds a batch from the current conv's NHWC input x `[B, H0, W0, m0]` and the per-example
   * gradients g `[B, H2, W2, m2]` of the next conv's pre-activation (each example's own loss). Pass `{shape,
   * data}` tensors, or flat arrays together with `batch`. Rows whose tap-gradient vector is all zero are not
   * offered to the reservoir (they contribute nothing).
   */
  accumulate(x: NhwcLike | ArrayLike<number>, g: NhwcLike | ArrayLike<number>, batch?: number): void {
    const geo = this.geometry;
    const [H0, W0] = geo.inputSize;
    const [H1, W1] = geo.midSize;
    const [H2, W2] = geo.outputSize;
    const m0 = geo.inChannels;
    const m2 = geo.outChannels;
    const xd = this.unpack(x, 'input x', [H0, W0, m0], batch);
    const gd = this.unpack(g, 'gradient g', [H2, W2, m2], batch);
    if (xd.batch !== gd.batch) throw new ShapeMismatchError(`${this.name}: batch sizes of x and g`, [xd.batch], [gd.batch], { statistic: this.name });
    const B = xd.batch;
    if (B === 0) return;
    this.assertFinite('input x', xd.data);
    this.assertFinite('gradient g', gd.data);
    const [k1h, k1w] = geo.kernel1;
    const [k2h, k2w] = geo.kernel2;
    const [s1h, s1w] = geo.stride1;
    const [s2h, s2w] = geo.stride2;
    const { fanIn, fanOut } = this;
    const patch = new Float64Array(fanIn);
    const tap = new Float64Array(fanOut);
    for (let n = 0; n < B; n++) {
      for (let ur = 0; ur < H1; ur++) {
        for (let uc = 0; uc < W1; uc++) {
          tap.fill(0);
          let any = false;
          for (let br = 0; br < k2h; br++) {
            const num = ur + geo.pad2.top - br;
            if (num < 0 || num % s2h !== 0) continue;
            const yr = num / s2h;
            if (yr >= H2) continue;
            for (let bc = 0; bc < k2w; bc++) {
              const numc = uc + geo.pad2.left - bc;
              if (numc < 0 || numc % s2w !== 0) continue;
              const yc = numc / s2w;
              if (yc >= W2) continue;
              const src = ((n * H2 + yr) * W2 + yc) * m2;
              const dst = (br * k2w + bc) * m2;
              for (let c = 0; c < m2; c++) {
                const v = gd.data[src + c]!;
                tap[dst + c] = v;
                if (v !== 0) any = true;
              }
            }
          }
          if (!any) continue;
          patch.fill(0);
          for (let ar = 0; ar < k1h; ar++) {
            const xr = s1h * ur + ar - geo.pad1.top;
            if (xr < 0 || xr >= H0) continue;
            for (let ac = 0; ac < k1w; ac++) {
              const xc = s1w * uc + ac - geo.pad1.left;
              if (xc < 0 || xc >= W0) continue;
              const src = ((n * H0 + xr) * W0 + xc) * m0;
              const dst = (ar * k1w + ac) * m0;
              for (let c = 0; c < m0; c++) patch[dst + c] = xd.data[src + c]!;
            }
          }
          for (let f = 0; f < fanOut; f++) {
            const tv = tap[f]!;
            if (tv === 0) continue;
            const base = f * fanIn;
            for (let i = 0; i < fanIn; i++) this.sum[base + i] += tv * patch[i]!;
          }
          this.offer(tap, patch);
        }
      }
    }
    this.examples += B;
    this.markSampled(B);
  }

  private unpack(t: NhwcLike | ArrayLike<number>, what: string, inner: [number, number, number], batch: number | undefined): { batch: number; data: ArrayLike<number> } {
    const per = inner[0] * inner[1] * inner[2];
    if (t && typeof t === 'object' && 'shape' in t && 'data' in t) {
      const s = t.shape;
      if (s.length !== 4 || s[1] !== inner[0] || s[2] !== inner[1] || s[3] !== inner[2] || (batch !== undefined && s[0] !== batch)) {
        throw new ShapeMismatchError(`${this.name}: ${what}`, [batch ?? s[0] ?? -1, ...inner], [...s], { statistic: this.name });
      }
      const b = s[0]!;
      if (t.data.length !== b * per) throw new ShapeMismatchError(`${this.name}: ${what} data length`, [b * per], [t.data.length], { statistic: this.name });
      return { batch: b, data: t.data };
    }
    if (batch === undefined) throw new InvalidArgumentError(`${this.name}: ${what} is a flat array, so the batch size must be given`, { statistic: this.name });
    if (!Number.isInteger(batch) || batch < 0) throw new InvalidArgumentError(`${this.name}: batch must be a non-negative integer, got ${batch}`, { statistic: this.name });
    const arr = t as ArrayLike<number>;
    if (!arr || arr.length !== batch * per) throw new ShapeMismatchError(`${this.name}: ${what}`, [batch, ...inner], [arr?.length ?? 0], { statistic: this.name });
    return { batch, data: arr };
  }

  /** A new accumulator holding this one's and `other`'s data (neither input changes). Geometries must agree. */
  merge(other: ConvStatistics): ConvStatistics {
    this.checkMergeable(other);
    if (JSON.stringify(other.geometry) !== JSON.stringify(this.geometry)) {
      throw new InvalidArgumentError(`${this.name}: cannot merge with "${other.name}": geometries differ`, { statistic: this.name, geometry: this.geometry, other: other.geometry });
    }
    const target = new ConvStatistics(this.geometry, { retainSamples: this.retainSamples, seed: Math.min(this.seed, other.seed) }, this.name);
    return this.mergeInto(target, other);
  }

  /** Lossless, versioned JSON form (includes the geometry). */
  toJSON(): StatisticsJSON {
    return { ...this.baseJSON('conv'), geometry: this.geometry };
  }

  /** Restores {@link ConvStatistics.toJSON} output (object or JSON text); validates it and throws typed errors. */
  static fromJSON(value: unknown): ConvStatistics {
    const json = parseStatisticsJSON(value, 'conv');
    if (!json.geometry || typeof json.geometry !== 'object') throw new InvalidArgumentError(`statistics JSON "${json.name}": conv statistics need a "geometry"`, { statistic: json.name });
    const stats = new ConvStatistics(json.geometry, { retainSamples: json.retainSamples, seed: json.seed }, json.name);
    if (stats.fanOut !== json.fanOut || stats.fanIn !== json.fanIn) {
      throw new ShapeMismatchError(`statistics JSON "${json.name}": fanOut × fanIn vs geometry`, [stats.fanOut, stats.fanIn], [json.fanOut, json.fanIn], { statistic: json.name });
    }
    stats.restoreJSON(json);
    return stats;
  }
}
