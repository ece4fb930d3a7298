/**
 * A randomized sketch of the growth matrix M (`[fanOut × fanIn]`), for sites whose M is too large to form.
 *
 * GradMax needs M only through its top-k left singular vectors. With seeded Gaussian test matrices Ω (`[fanIn × r]`)
 * and Ψ (`[l × fanOut]`), r = k + oversampling and l ≈ 2r, the single-pass sketch (Tropp, Yurtsever, Udell & Cevher,
 * "Practical sketching algorithms for low-rank matrix approximation", 2017) keeps
 *
 *     Y = M·Ω  (`[fanOut × r]`, the range sketch)    and    W = Ψ·M  (`[l × fanIn]`, the co-range sketch).
 *
 * Both are linear in M, so sums over batches and workers merge by addition exactly like the moment itself. The
 * reconstruction is Q = orth(Y), X = (Ψ·Q)⁺·W ≈ Qᵀ·M (`[r × fanIn]`), M̂ = Q·X; the SVD X = U_X·Σ·V_Xᵀ gives the
 * approximate singular triplets of M as (Q·U_X, Σ, V_X). When rank(M) ≤ r the reconstruction is exact (Ψ·Q has full
 * column rank almost surely because l ≥ r). An adapter computes Y and W without forming M (for a conv pair: the
 * next layer's weight gradient with the current conv run with Ω as its filters, and the current layer's weight
 * gradient against the next layer's input gradient with Ψ as its weights), or from an explicit M with
 * {@link SketchStatistics.addSum} (the naive reference).
 * @packageDocumentation
 */
import { InvalidArgumentError, ShapeMismatchError, NonFiniteError } from '../errors.js';
import { Matrix } from '../matrix.js';
import { Rng } from '../rng.js';
import { householderQr } from '../linalg/qr.js';
import { svd } from '../linalg/svd.js';
import type { SiteStatistics } from '../site.js';
import type { MatrixLike } from './accumulator.js';
import { decodeFloat64Base64, encodeFloat64Base64 } from './base64.js';

/** Options of a {@link SketchStatistics}. */
export interface SketchOptions {
  /** Columns r of the range test matrix Ω (k units + oversampling; default 16). */
  rank?: number;
  /** Rows l of the co-range test matrix Ψ (default 2r + 1; at least r). */
  rowSketch?: number;
  /** Seed of the Gaussian test matrices (default 0). Sketches merge only with equal seeds. */
  seed?: number;
  /**
   * Explicit test matrices instead of the seeded ones (Ω `[fanIn × rank]`, Ψ `[rowSketch × fanOut]`; e.g. blocks of a
   * larger sketch's). Such a sketch merges only with sketches using the same objects and has no JSON form.
   */
  tests?: SketchTestMatrices;
}

/** Default range-sketch width r. */
export const DEFAULT_SKETCH_RANK = 16;

/** The seeded Gaussian test matrices of a sketch. */
export interface SketchTestMatrices {
  /** Ω, `[fanIn × r]`, row-major. */
  omega: Matrix;
  /** Ψ, `[l × fanOut]`, row-major. */
  psi: Matrix;
}

/**
 * The test matrices of a sketch with these sizes and seed: independent standard normal entries, Ω drawn from the
 * stream `fork("sketch-omega")` and Ψ from `fork("sketch-psi")` of `new Rng(seed)`, each row-major, so that each
 * depends only on its own size and the seed. A block of Ω's rows (or of Ψ's columns) is the test matrix of that
 * block of M's columns (rows): a stacked growth matrix can be sketched block by block.
 */
export function sketchTestMatrices(fanOut: number, fanIn: number, rank: number, rowSketch: number, seed: number): SketchTestMatrices {
  const root = new Rng(seed);
  const omega = new Matrix(fanIn, rank, root.fork('sketch-omega').fillNormal(new Float64Array(fanIn * rank)));
  const psi = new Matrix(rowSketch, fanOut, root.fork('sketch-psi').fillNormal(new Float64Array(rowSketch * fanOut)));
  return { omega, psi };
}

/** Serialised {@link SketchStatistics} (lossless). */
export interface SketchStatisticsJSON {
  /** Always `"gradmax-statistics"`. */
  format: 'gradmax-statistics';
  /** Format version (1). */
  version: 1;
  /** Always `"sketch"`. */
  kind: 'sketch';
  /** Name used in error messages. */
  name: string;
  /** Rows of M. */
  fanOut: number;
  /** Columns of M. */
  fanIn: number;
  /** r. */
  rank: number;
  /** l. */
  rowSketch: number;
  /** Test-matrix seed. */
  seed: number;
  /** Examples accumulated. */
  count: number;
  /** Σ over examples of Y, `[fanOut × r]`, base64 float64. */
  y: string;
  /** Σ over examples of W, `[l × fanIn]`, base64 float64. */
  w: string;
}

/** Approximate leading singular triplets of M from a sketch. */
export interface SketchReconstruction {
  /** `[fanOut × p]` approximate left singular vectors (orthonormal columns), p = min(r, fanOut, fanIn). */
  u: Matrix;
  /** The p approximate singular values, descending. */
  singularValues: Float64Array;
  /** `[fanIn × p]` approximate right singular vectors (orthonormal columns). */
  v: Matrix;
}

function check(cond: boolean, message: string, where: Record<string, unknown>): asserts cond {
  if (!cond) throw new InvalidArgumentError(message, where);
}

/**
 * The sketch of a growth matrix M: Σ Y = Σ M·Ω and Σ W = Σ Ψ·M over examples, mergeable (sum) across batches and
 * workers and serialisable. See the module documentation for the maths.
 */
export class SketchStatistics {
  /** Rows of M (outputs side). */
  readonly fanOut: number;
  /** Columns of M (inputs side). */
  readonly fanIn: number;
  /** Range sketch width r. */
  readonly rank: number;
  /** Co-range sketch height l. */
  readonly rowSketch: number;
  /** Test-matrix seed. */
  readonly seed: number;
  /** Name used in error messages. */
  readonly name: string;
  private readonly y: Float64Array;
  private readonly w: Float64Array;
  private examples = 0;
  private tests: SketchTestMatrices | undefined;
  private explicitTests = false;

  /**
   * @param fanOut - rows of M
   * @param fanIn - columns of M
   * @param options - r, l and the seed (see {@link SketchOptions})
   * @param name - used in error messages
   */
  constructor(fanOut: number, fanIn: number, options: SketchOptions = {}, name = 'sketch statistics') {
    check(typeof name === 'string', 'sketch statistics: name must be a string', { name });
    for (const [what, v] of [['fanOut', fanOut], ['fanIn', fanIn]] as const) {
      check(Number.isInteger(v) && v >= 1, `${name}: ${what} must be a positive integer, got ${v}`, { statistic: name, [what]: v });
    }
    const rank = options.rank ?? DEFAULT_SKETCH_RANK;
    check(Number.isInteger(rank) && rank >= 1, `${name}: sketch rank must be a positive integer, got ${rank}`, { statistic: name, rank });
    const rowSketch = options.rowSketch ?? 2 * rank + 1;
    check(Number.isInteger(rowSketch) && rowSketch >= rank, `${name}: rowSketch must be an integer ≥ rank (${rank}), got ${rowSketch}`, { statistic: name, rowSketch });
    const seed = options.seed ?? 0;
    check(Number.isSafeInteger(seed), `${name}: seed must be a safe integer, got ${seed}`, { statistic: name, seed });
    this.fanOut = fanOut;
    this.fanIn = fanIn;
    this.rank = rank;
    this.rowSketch = rowSketch;
    this.seed = seed;
    this.name = name;
    if (options.tests) {
      const { omega, psi } = options.tests;
      if (omega?.rows !== fanIn || omega.cols !== rank || psi?.rows !== rowSketch || psi.cols !== fanOut) {
        throw new ShapeMismatchError(`${name}: explicit test matrices Ω and Ψ`, [fanIn, rank, rowSketch, fanOut], [omega?.rows, omega?.cols, psi?.rows, psi?.cols] as number[], { statistic: name });
      }
      this.tests = options.tests;
      this.explicitTests = true;
    }
    this.y = new Float64Array(fanOut * rank);
    this.w = new Float64Array(rowSketch * fanIn);
  }

  /** Number of examples accumulated. */
  get count(): number {
    return this.examples;
  }

  /** The seeded test matrices Ω (`[fanIn × r]`) and Ψ (`[l × fanOut]`) (computed once; do not modify). */
  testMatrices(): SketchTestMatrices {
    this.tests ??= sketchTestMatrices(this.fanOut, this.fanIn, this.rank, this.rowSketch, this.seed);
    return this.tests;
  }

  /** Σ Y over examples, `[fanOut × r]` (a copy). */
  rangeSum(): Matrix {
    return new Matrix(this.fanOut, this.rank, this.y.slice());
  }

  /** Σ W over examples, `[l × fanIn]` (a copy). */
  coRangeSum(): Matrix {
    return new Matrix(this.rowSketch, this.fanIn, this.w.slice());
  }

  private assertFinite(what: string, values: ArrayLike<number>): void {
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (!Number.isFinite(v)) throw new NonFiniteError(`${this.name}: ${what}`, i, v, { statistic: this.name });
    }
  }

  /**
   * Adds sketches an adapter computed over `count` examples: `y` = Σ M_n·Ω (`[fanOut × r]`) and `w` = Σ Ψ·M_n
   * (`[l × fanIn]`), sums (not means) of per-example growth matrices of each example's own loss.
   */
  accumulateSketch(y: MatrixLike, w: MatrixLike, count: number): void {
    check(Number.isInteger(count) && count > 0, `${this.name}: count must be a positive integer, got ${count}`, { statistic: this.name, count });
    if (!y || y.rows !== this.fanOut || y.cols !== this.rank || y.data?.length !== this.y.length) {
      throw new ShapeMismatchError(`${this.name}: range sketch Y`, [this.fanOut, this.rank], [y?.rows, y?.cols] as number[], { statistic: this.name });
    }
    if (!w || w.rows !== this.rowSketch || w.cols !== this.fanIn || w.data?.length !== this.w.length) {
      throw new ShapeMismatchError(`${this.name}: co-range sketch W`, [this.rowSketch, this.fanIn], [w?.rows, w?.cols] as number[], { statistic: this.name });
    }
    this.assertFinite('range sketch Y', y.data);
    this.assertFinite('co-range sketch W', w.data);
    for (let i = 0; i < this.y.length; i++) this.y[i] += y.data[i]!;
    for (let i = 0; i < this.w.length; i++) this.w[i] += w.data[i]!;
    this.examples += count;
  }

  /**
   * Naive reference: adds the sketch of an explicit Σ g hᵀ over `count` examples (`[fanOut × fanIn]`), i.e.
   * Y += sum·Ω and W += Ψ·sum.
   */
  addSum(sumGH: MatrixLike, count: number): void {
    if (!sumGH || sumGH.rows !== this.fanOut || sumGH.cols !== this.fanIn || sumGH.data?.length !== this.fanOut * this.fanIn) {
      throw new ShapeMismatchError(`${this.name}: addSum(sumGH)`, [this.fanOut, this.fanIn], [sumGH?.rows, sumGH?.cols] as number[], { statistic: this.name });
    }
    const { omega, psi } = this.testMatrices();
    const { fanOut: F, fanIn: K, rank: r, rowSketch: l } = this;
    const m = sumGH.data;
    const y = new Float64Array(F * r);
    const w = new Float64Array(l * K);
    for (let f = 0; f < F; f++) {
      for (let i = 0; i < K; i++) {
        const v = m[f * K + i]!;
        if (v === 0) continue;
        for (let j = 0; j < r; j++) y[f * r + j] += v * omega.data[i * r + j]!;
        for (let p = 0; p < l; p++) w[p * K + i] += psi.data[p * F + f]! * v;
      }
    }
    this.accumulateSketch({ rows: F, cols: r, data: y }, { rows: l, cols: K, data: w }, count);
  }

  /** Throws unless `other` sketches a matrix of the same shape with the same test matrices. */
  private checkMergeable(other: SketchStatistics): void {
    if (!(other instanceof SketchStatistics)) throw new InvalidArgumentError(`${this.name}: can only merge with another sketch`, { statistic: this.name });
    if (other.fanOut !== this.fanOut || other.fanIn !== this.fanIn) {
      throw new ShapeMismatchError(`${this.name}: merge with "${other.name}"`, [this.fanOut, this.fanIn], [other.fanOut, other.fanIn], { statistic: this.name });
    }
    if (other.rank !== this.rank || other.rowSketch !== this.rowSketch || other.seed !== this.seed || this.explicitTests !== other.explicitTests || (this.explicitTests && this.tests !== other.tests)) {
      throw new InvalidArgumentError(
        `${this.name}: cannot merge with "${other.name}": test matrices differ (rank ${this.rank}/${other.rank}, rowSketch ${this.rowSketch}/${other.rowSketch}, seed ${this.seed}/${other.seed})`,
        { statistic: this.name },
      );
    }
  }

  /** A new sketch holding this one's and `other`'s data: sums and counts add (neither input changes). */
  merge(other: SketchStatistics): SketchStatistics {
    this.checkMergeable(other);
    const out = new SketchStatistics(this.fanOut, this.fanIn, { rank: this.rank, rowSketch: this.rowSketch, seed: this.seed, ...(this.explicitTests ? { tests: this.tests! } : {}) }, this.name);
    for (let i = 0; i < out.y.length; i++) out.y[i] = this.y[i]! + other.y[i]!;
    for (let i = 0; i < out.w.length; i++) out.w[i] = this.w[i]! + other.w[i]!;
    out.examples = this.examples + other.examples;
    return out;
  }

  private requireData(): void {
    if (this.examples === 0) throw new InvalidArgumentError(`${this.name}: no examples accumulated, the growth matrix is undefined`, { statistic: this.name });
  }

  /**
   * Q (`[fanOut × p]`, orthonormal columns spanning the range sketch) and X = (Ψ·Q)⁺·W/count ≈ Qᵀ·M
   * (`[p × fanIn]`), p = min(r, fanOut), so that M̂ = Q·X.
   */
  factors(): { q: Matrix; x: Matrix } {
    this.requireData();
    const { fanOut: F, fanIn: K, rowSketch: l } = this;
    const n = this.examples;
    const yMean = new Matrix(F, this.rank, this.y.map((v) => v / n));
    const q = householderQr(yMean).q; // [F × p]
    const p = q.cols;
    const { psi } = this.testMatrices();
    // Ψ·Q, [l × p]
    const pq = new Matrix(l, p);
    for (let a = 0; a < l; a++) {
      for (let f = 0; f < F; f++) {
        const s = psi.data[a * F + f]!;
        if (s === 0) continue;
        for (let j = 0; j < p; j++) pq.data[a * p + j] += s * q.data[f * p + j]!;
      }
    }
    // Least squares Ψ·Q·X = W: Ψ·Q = Q2·R2 → X = R2⁻¹·Q2ᵀ·W (R2 [p × p] upper triangular).
    const { q: q2, r: r2 } = householderQr(pq);
    const rhs = new Float64Array(p * K);
    for (let a = 0; a < l; a++) {
      for (let j = 0; j < p; j++) {
        const c = q2.data[a * p + j]! / n;
        if (c === 0) continue;
        for (let i = 0; i < K; i++) rhs[j * K + i] += c * this.w[a * K + i]!;
      }
    }
    const x = new Matrix(p, K);
    const scale = Math.abs(r2.data[0]!) || 1;
    for (let j = p - 1; j >= 0; j--) {
      const d = r2.data[j * p + j]!;
      for (let i = 0; i < K; i++) {
        let v = rhs[j * K + i]!;
        for (let t = j + 1; t < p; t++) v -= r2.data[j * p + t]! * x.data[t * K + i]!;
        // A (numerically) singular Ψ·Q means Q has directions Ψ cannot see; they get no weight.
        x.data[j * K + i] = Math.abs(d) > 1e-13 * scale ? v / d : 0;
      }
    }
    return { q, x };
  }

  /** Approximate leading singular triplets of M (mean over examples) from the sketch (see the module docs). */
  reconstruct(): SketchReconstruction {
    const { q, x } = this.factors();
    const p = Math.min(x.rows, x.cols);
    // SVD of X [p × fanIn] through its transpose when that is the tall orientation.
    let ux: Matrix;
    let s: Float64Array;
    let vx: Matrix;
    if (x.rows >= x.cols) {
      const res = svd(x);
      ux = res.u;
      s = res.s;
      vx = res.v;
    } else {
      const xt = new Matrix(x.cols, x.rows);
      for (let i = 0; i < x.rows; i++) for (let j = 0; j < x.cols; j++) xt.data[j * x.rows + i] = x.data[i * x.cols + j]!;
      const res = svd(xt);
      ux = res.v;
      s = res.s;
      vx = res.u;
    }
    const F = this.fanOut;
    const u = new Matrix(F, p);
    for (let f = 0; f < F; f++) {
      for (let t = 0; t < q.cols; t++) {
        const qv = q.data[f * q.cols + t]!;
        if (qv === 0) continue;
        for (let j = 0; j < p; j++) u.data[f * p + j] += qv * ux.data[t * ux.cols + j]!;
      }
    }
    return { u, singularValues: s.slice(0, p), v: vx };
  }

  /** The low-rank approximation M̂ = Q·X (`[fanOut × fanIn]`, mean over examples). */
  approximation(): Matrix {
    const { q, x } = this.factors();
    const F = this.fanOut;
    const K = this.fanIn;
    const p = q.cols;
    const m = new Matrix(F, K);
    for (let f = 0; f < F; f++) {
      for (let j = 0; j < p; j++) {
        const c = q.data[f * p + j]!;
        if (c === 0) continue;
        for (let i = 0; i < K; i++) m.data[f * K + i] += c * x.data[j * K + i]!;
      }
    }
    return m;
  }

  /**
   * An unbiased estimate of ‖M‖²_F (mean over examples) from the range sketch: E‖M·Ω‖²_F = r·‖M‖²_F for standard
   * Gaussian Ω.
   */
  frobeniusSquaredEstimate(): number {
    this.requireData();
    const n = this.examples;
    let t = 0;
    for (let i = 0; i < this.y.length; i++) t += (this.y[i]! / n) ** 2;
    return t / this.rank;
  }

  /**
   * The statistics a strategy reads: `moment` is the rank-≤r approximation M̂ = Q·X (`[fanOut × fanIn]`), whose
   * top-k left singular vectors and values approximate M's (exact when rank(M) ≤ r).
   */
  snapshot(): SiteStatistics {
    this.requireData();
    let moment: Matrix | undefined;
    const self = this;
    // Formed on first read: a caller that needs only the singular triplets (reconstruct) never pays for fanOut·fanIn.
    return {
      get moment(): Matrix {
        moment ??= self.approximation();
        return moment;
      },
      count: this.examples,
    };
  }

  /** Lossless, versioned JSON form. */
  toJSON(): SketchStatisticsJSON {
    if (this.explicitTests) throw new InvalidArgumentError(`${this.name}: a sketch with explicit test matrices has no JSON form (its test matrices are not seeded)`, { statistic: this.name });
    return {
      format: 'gradmax-statistics',
      version: 1,
      kind: 'sketch',
      name: this.name,
      fanOut: this.fanOut,
      fanIn: this.fanIn,
      rank: this.rank,
      rowSketch: this.rowSketch,
      seed: this.seed,
      count: this.examples,
      y: encodeFloat64Base64(this.y),
      w: encodeFloat64Base64(this.w),
    };
  }

  /** Restores {@link SketchStatistics.toJSON} output (object or JSON text); validates it and throws typed errors. */
  static fromJSON(value: unknown): SketchStatistics {
    let json: unknown = value;
    if (typeof value === 'string') {
      try {
        json = JSON.parse(value);
      } catch (e) {
        throw new InvalidArgumentError(`sketch statistics JSON: not valid JSON (${(e as Error).message})`);
      }
    }
    if (!json || typeof json !== 'object') throw new InvalidArgumentError('sketch statistics JSON: expected an object');
    const o = json as Record<string, unknown>;
    if (o.format !== 'gradmax-statistics' || o.version !== 1 || o.kind !== 'sketch') {
      throw new InvalidArgumentError(`sketch statistics JSON: expected format "gradmax-statistics", version 1, kind "sketch"; got ${JSON.stringify([o.format, o.version, o.kind])}`);
    }
    if (typeof o.name !== 'string') throw new InvalidArgumentError('sketch statistics JSON: "name" must be a string');
    for (const f of ['fanOut', 'fanIn', 'rank', 'rowSketch', 'seed', 'count']) {
      if (!Number.isSafeInteger(o[f])) throw new InvalidArgumentError(`sketch statistics JSON "${o.name}": field "${f}" must be an integer, got ${JSON.stringify(o[f])}`, { field: f });
    }
    const j = o as unknown as SketchStatisticsJSON;
    if (j.count < 0) throw new InvalidArgumentError(`sketch statistics JSON "${j.name}": count must be non-negative, got ${j.count}`);
    const s = new SketchStatistics(j.fanOut, j.fanIn, { rank: j.rank, rowSketch: j.rowSketch, seed: j.seed }, j.name);
    const y = decodeFloat64Base64(j.y, s.y.length, `sketch statistics JSON "${j.name}": y`);
    const w = decodeFloat64Base64(j.w, s.w.length, `sketch statistics JSON "${j.name}": w`);
    s.assertFinite('y (from JSON)', y);
    s.assertFinite('w (from JSON)', w);
    s.y.set(y);
    s.w.set(w);
    s.examples = j.count;
    return s;
  }
}
