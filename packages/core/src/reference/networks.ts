/**
 * Small pure-TypeScript two-layer networks (float64) with analytic backward passes, used as ground truth by the
 * conformance tests of every growth strategy.
 *
 * Loss: L = ½ · mean over examples of the summed squared error, so each example's own loss is
 * ℓ_n = ½‖out_n − target_n‖² and the per-example gradient of the output (the next layer's pre-activation) is
 * g_n = out_n − target_n. These g_n (not g_n / N) are what statistics accumulate.
 *
 * Typical strategy test: build a net, take `site()` and `statistics()`, call `strategy.grow`, build
 * `net.grow(units)`, compare `forward` before and after (function preservation) and compare
 * `newIncomingGradient` with the prediction f'(0)·Ωᵀ M.
 * @packageDocumentation
 */
import { InvalidArgumentError, ShapeMismatchError } from '../errors.js';
import { Matrix } from '../matrix.js';
import { Rng } from '../rng.js';
import type { ConvPairGeometry, GrowthSite, NewUnits, SiteStatistics } from '../site.js';
import { ConvStatistics } from '../statistics/conv.js';
import { flattenDenseGeometry, makeConvPairGeometry } from '../statistics/conv-geometry.js';
import type { PaddingSpec, Size2D } from '../statistics/conv-geometry.js';
import { DenseStatistics } from '../statistics/dense.js';
import { referenceActivation } from './activations.js';
import type { ReferenceActivation, ReferenceActivationName } from './activations.js';
import { currentConvGeometry, naiveConv2d, naiveConv2dBackpropFilter, naiveConv2dBackpropInput, nextConvGeometry } from './conv.js';
import { checkTensor4, zeros4 } from './tensor.js';
import type { Tensor4, Tensor4Like } from './tensor.js';

/** Options of the reference networks' `statistics()`. */
export interface ReferenceStatisticsOptions {
  /** Rows to retain in the sample reservoir (default 0). */
  retainSamples?: number;
  /** Reservoir seed (default 0). */
  seed?: number;
  /** Feed the accumulator in chunks of this many examples (default: all at once). */
  batchSize?: number;
  /** Statistic name (default `"<site> statistics"`). */
  name?: string;
}

/** Output values of a reference network: anything with float64 `data` (a Matrix or a Tensor4). */
export interface ReferenceOutput {
  /** Row-major output values. */
  data: Float64Array;
}

/** Common surface of the reference networks. `In`/`Out` are the input and output types. */
export interface ReferenceNetwork<In, Out extends ReferenceOutput> {
  /** `"dense"` or `"conv"` (conv→flatten→dense is a conv site). */
  readonly kind: 'dense' | 'conv';
  /** Current width of the hidden layer (the site's units). */
  readonly units: number;
  /** Number of units added by the `grow` call that produced this network (0 for a fresh one). */
  readonly lastGrowth: number;
  /** The activation between the two layers. */
  readonly activation: ReferenceActivation;
  /** Network output. */
  forward(x: In): Out;
  /** ½ · mean over examples of the summed squared error. */
  loss(x: In, target: Out | Tensor4Like | Matrix): number;
  /** The growth site between the two layers. */
  site(name?: string): GrowthSite;
  /** Growth statistics of the site on (x, target), via the core statistics classes. */
  statistics(x: In, target: Out | Tensor4Like | Matrix, options?: ReferenceStatisticsOptions): SiteStatistics;
  /** A new network with `units` appended (applies `existingOutgoingScale`). */
  grow(units: NewUnits): ReferenceNetwork<In, Out>;
  /** ∂L/∂(incoming weights) of the last `count` units (default {@link lastGrowth}), `[count × fanIn]`. */
  newIncomingGradient(x: In, target: Out | Tensor4Like | Matrix, count?: number): Matrix;
  /** Live views of all parameter arrays, by name (for finite differences). */
  parameters(): Record<string, Float64Array>;
}

function checkCountArg(count: number, units: number, what: string): void {
  if (!Number.isInteger(count) || count < 1 || count > units) {
    throw new InvalidArgumentError(`${what}: count must be an integer in [1, ${units}], got ${count}`, { count, units });
  }
}

function checkNewUnits(units: NewUnits, site: GrowthSite): number {
  const k = units.incoming.rows;
  if (k < 1) throw new InvalidArgumentError(`site "${site.name}": NewUnits adds no units`, { site: site.name });
  if (units.incoming.cols !== site.fanIn) throw new ShapeMismatchError(`site "${site.name}": NewUnits.incoming`, [k, site.fanIn], units.incoming.shape);
  if (units.outgoing.rows !== site.fanOut || units.outgoing.cols !== k) throw new ShapeMismatchError(`site "${site.name}": NewUnits.outgoing`, [site.fanOut, k], units.outgoing.shape);
  if (units.incomingBias.length !== k) throw new ShapeMismatchError(`site "${site.name}": NewUnits.incomingBias`, [k], [units.incomingBias.length]);
  if (units.existingOutgoingScale && units.existingOutgoingScale.length !== site.units) {
    throw new ShapeMismatchError(`site "${site.name}": NewUnits.existingOutgoingScale`, [site.units], [units.existingOutgoingScale.length]);
  }
  return k;
}

function scaleOf(units: NewUnits, j: number): number {
  return units.existingOutgoingScale ? units.existingOutgoingScale[j]! : 1;
}

function matrixArg(m: Matrix | Tensor4Like | { data: ArrayLike<number> }, rows: number, cols: number, what: string): Float64Array {
  const d = m.data;
  if (d.length !== rows * cols) throw new ShapeMismatchError(what, [rows, cols], [d.length]);
  if (m instanceof Matrix && (m.rows !== rows || m.cols !== cols)) throw new ShapeMismatchError(what, [rows, cols], m.shape);
  return Float64Array.from(d);
}

function flatTarget(t: { data: ArrayLike<number> }, length: number, what: string): Float64Array {
  if (!t || !t.data || t.data.length !== length) throw new ShapeMismatchError(`${what} length`, [length], [t?.data?.length ?? 0]);
  return Float64Array.from(t.data);
}

function randn(rng: Rng, n: number, scale: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = scale * rng.normal();
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Dense

/** Parameters of {@link DenseReferenceNet}. */
export interface DenseReferenceParams {
  /** `[n1 × n0]` first-layer weights (incoming layout: row j = unit j). */
  w1: Matrix;
  /** First-layer bias (length n1). */
  b1: Float64Array;
  /** `[n2 × n1]` second-layer weights (outgoing layout: column j = unit j). */
  w2: Matrix;
  /** Second-layer bias (length n2). */
  b2: Float64Array;
  /** Hidden activation. */
  activation: ReferenceActivationName;
}

/** Options of {@link DenseReferenceNet.random}. */
export interface DenseReferenceOptions {
  /** Inputs n0. */
  inputs: number;
  /** Hidden units n1 (the site's units). */
  hidden: number;
  /** Outputs n2. */
  outputs: number;
  /** Hidden activation (default `relu1`). */
  activation?: ReferenceActivationName;
  /** Seed of the weights. */
  seed: number;
  /** Standard deviation of the weights (default 1/sqrt(fan-in)). */
  weightScale?: number;
  /** Standard deviation of the biases (default 0.1). */
  biasScale?: number;
}

/** Everything the analytic backward pass of {@link DenseReferenceNet} produces. */
export interface DenseGradients {
  /** The loss L. */
  loss: number;
  /** ∂L/∂W1 `[n1 × n0]` (also the site's incoming layout). */
  w1: Matrix;
  /** ∂L/∂b1. */
  b1: Float64Array;
  /** ∂L/∂W2 `[n2 × n1]` (also the site's outgoing layout). */
  w2: Matrix;
  /** ∂L/∂b2. */
  b2: Float64Array;
  /** Inputs of the current layer `[N × n0]` (the h of the statistics). */
  h: Matrix;
  /** Per-example gradients of each example's own loss wrt the output `[N × n2]` (the g of the statistics). */
  g: Matrix;
  /** Hidden pre-activations `[N × n1]`. */
  z1: Matrix;
  /** Hidden activations `[N × n1]`. */
  a1: Matrix;
  /** Outputs `[N × n2]`. */
  output: Matrix;
}

/** x → W1 x + b1 → f → W2 · + b2. Inputs and outputs are `[N × features]` matrices. */
export class DenseReferenceNet implements ReferenceNetwork<Matrix, Matrix> {
  readonly kind = 'dense' as const;
  /** `[n1 × n0]` first-layer weights (live; finite differences perturb it). */
  readonly w1: Matrix;
  /** First-layer bias. */
  readonly b1: Float64Array;
  /** `[n2 × n1]` second-layer weights. */
  readonly w2: Matrix;
  /** Second-layer bias. */
  readonly b2: Float64Array;
  readonly activation: ReferenceActivation;
  readonly lastGrowth: number;

  /**
   * @param params - weights (used as is, not copied)
   * @param lastGrowth - units added by the growth that produced this network
   */
  constructor(params: DenseReferenceParams, lastGrowth = 0) {
    const { w1, b1, w2, b2 } = params;
    if (b1.length !== w1.rows) throw new ShapeMismatchError('DenseReferenceNet b1', [w1.rows], [b1.length]);
    if (w2.cols !== w1.rows) throw new ShapeMismatchError('DenseReferenceNet w2', [w2.rows, w1.rows], w2.shape);
    if (b2.length !== w2.rows) throw new ShapeMismatchError('DenseReferenceNet b2', [w2.rows], [b2.length]);
    this.w1 = w1;
    this.b1 = b1;
    this.w2 = w2;
    this.b2 = b2;
    this.activation = referenceActivation(params.activation);
    this.lastGrowth = lastGrowth;
  }

  /** A network with Gaussian weights drawn from `seed`. */
  static random(o: DenseReferenceOptions): DenseReferenceNet {
    const rng = new Rng(o.seed);
    const bs = o.biasScale ?? 0.1;
    return new DenseReferenceNet({
      w1: new Matrix(o.hidden, o.inputs, randn(rng, o.hidden * o.inputs, o.weightScale ?? 1 / Math.sqrt(o.inputs))),
      b1: randn(rng, o.hidden, bs),
      w2: new Matrix(o.outputs, o.hidden, randn(rng, o.outputs * o.hidden, o.weightScale ?? 1 / Math.sqrt(o.hidden))),
      b2: randn(rng, o.outputs, bs),
      activation: o.activation ?? 'relu1',
    });
  }

  /** Inputs n0. */
  get inputs(): number {
    return this.w1.cols;
  }
  /** Hidden units n1. */
  get units(): number {
    return this.w1.rows;
  }
  /** Outputs n2. */
  get outputs(): number {
    return this.w2.rows;
  }

  private pass(x: Matrix): { z1: Matrix; a1: Matrix; out: Matrix } {
    if (x.cols !== this.inputs) throw new ShapeMismatchError('DenseReferenceNet input', [x.rows, this.inputs], x.shape);
    const N = x.rows;
    const n1 = this.units;
    const z1 = new Matrix(N, n1);
    const a1 = new Matrix(N, n1);
    const out = new Matrix(N, this.outputs);
    for (let n = 0; n < N; n++) {
      for (let j = 0; j < n1; j++) {
        let s = this.b1[j]!;
        for (let i = 0; i < this.inputs; i++) s += this.w1.get(j, i) * x.get(n, i);
        z1.set(n, j, s);
        a1.set(n, j, this.activation.f(s));
      }
      for (let o = 0; o < this.outputs; o++) {
        let s = this.b2[o]!;
        for (let j = 0; j < n1; j++) s += this.w2.get(o, j) * a1.get(n, j);
        out.set(n, o, s);
      }
    }
    return { z1, a1, out };
  }

  forward(x: Matrix): Matrix {
    return this.pass(x).out;
  }

  loss(x: Matrix, target: Matrix | Tensor4Like): number {
    return this.gradientsOrLoss(x, target, false).loss;
  }

  /** Analytic backward pass. */
  gradients(x: Matrix, target: Matrix | Tensor4Like): DenseGradients {
    return this.gradientsOrLoss(x, target, true) as DenseGradients;
  }

  private gradientsOrLoss(x: Matrix, target: Matrix | Tensor4Like, backward: boolean): DenseGradients | { loss: number } {
    const { z1, a1, out } = this.pass(x);
    const N = x.rows;
    const t = matrixArg(target, N, this.outputs, 'DenseReferenceNet target');
    const g = new Matrix(N, this.outputs);
    let loss = 0;
    for (let i = 0; i < g.data.length; i++) {
      const d = out.data[i]! - t[i]!;
      g.data[i] = d;
      loss += d * d;
    }
    loss = (0.5 * loss) / N;
    if (!backward) return { loss };
    const n1 = this.units;
    const w1 = new Matrix(n1, this.inputs);
    const b1 = new Float64Array(n1);
    const w2 = new Matrix(this.outputs, n1);
    const b2 = new Float64Array(this.outputs);
    for (let n = 0; n < N; n++) {
      for (let o = 0; o < this.outputs; o++) {
        const go = g.get(n, o) / N;
        b2[o] += go;
        for (let j = 0; j < n1; j++) w2.data[o * n1 + j] += go * a1.get(n, j);
      }
      for (let j = 0; j < n1; j++) {
        let s = 0;
        for (let o = 0; o < this.outputs; o++) s += this.w2.get(o, j) * g.get(n, o);
        const dz = (s / N) * this.activation.df(z1.get(n, j));
        b1[j] += dz;
        for (let i = 0; i < this.inputs; i++) w1.data[j * this.inputs + i] += dz * x.get(n, i);
      }
    }
    return { loss, w1, b1, w2, b2, h: x.clone(), g, z1, a1, output: out };
  }

  site(name = 'dense->dense'): GrowthSite {
    return {
      name,
      kind: 'dense',
      units: this.units,
      fanIn: this.inputs,
      fanOut: this.outputs,
      incoming: this.w1.clone(),
      incomingBias: this.b1.slice(),
      outgoing: this.w2.clone(),
      activation: { ...this.activation.info },
    };
  }

  /** The {@link DenseStatistics} accumulator filled with (x, target). */
  statisticsAccumulator(x: Matrix, target: Matrix | Tensor4Like, options: ReferenceStatisticsOptions = {}): DenseStatistics {
    const { g } = this.gradients(x, target);
    const stats = new DenseStatistics(this.outputs, this.inputs, { retainSamples: options.retainSamples ?? 0, seed: options.seed ?? 0 }, options.name ?? 'dense->dense statistics');
    const bs = options.batchSize ?? Math.max(1, x.rows);
    for (let start = 0; start < x.rows; start += bs) {
      const end = Math.min(x.rows, start + bs);
      stats.accumulate(
        new Matrix(end - start, this.outputs, g.data.slice(start * this.outputs, end * this.outputs)),
        new Matrix(end - start, this.inputs, x.data.slice(start * this.inputs, end * this.inputs)),
      );
    }
    return stats;
  }

  statistics(x: Matrix, target: Matrix | Tensor4Like, options?: ReferenceStatisticsOptions): SiteStatistics {
    return this.statisticsAccumulator(x, target, options).snapshot();
  }

  grow(units: NewUnits): DenseReferenceNet {
    const site = this.site();
    const k = checkNewUnits(units, site);
    const n1 = this.units;
    const n0 = this.inputs;
    const w1 = new Matrix(n1 + k, n0);
    w1.data.set(this.w1.data);
    w1.data.set(units.incoming.data, n1 * n0);
    const b1 = new Float64Array(n1 + k);
    b1.set(this.b1);
    b1.set(units.incomingBias, n1);
    const w2 = new Matrix(this.outputs, n1 + k);
    for (let o = 0; o < this.outputs; o++) {
      for (let j = 0; j < n1; j++) w2.set(o, j, this.w2.get(o, j) * scaleOf(units, j));
      for (let j = 0; j < k; j++) w2.set(o, n1 + j, units.outgoing.get(o, j));
    }
    return new DenseReferenceNet({ w1, b1, w2, b2: this.b2.slice(), activation: this.activation.name }, k);
  }

  newIncomingGradient(x: Matrix, target: Matrix | Tensor4Like, count = this.lastGrowth): Matrix {
    checkCountArg(count, this.units, 'DenseReferenceNet.newIncomingGradient');
    const { w1 } = this.gradients(x, target);
    return new Matrix(count, this.inputs, w1.data.slice((this.units - count) * this.inputs));
  }

  parameters(): Record<string, Float64Array> {
    return { w1: this.w1.data, b1: this.b1, w2: this.w2.data, b2: this.b2 };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Conv → conv

/** Parameters of {@link ConvReferenceNet}. */
export interface ConvReferenceParams {
  /** Site geometry (midChannels must equal w1's output channels). */
  geometry: ConvPairGeometry;
  /** HWIO `[k1h, k1w, m0, m1]`. */
  w1: Tensor4;
  /** Length m1. */
  b1: Float64Array;
  /** HWIO `[k2h, k2w, m1, m2]`. */
  w2: Tensor4;
  /** Length m2. */
  b2: Float64Array;
  /** Activation between the convs. */
  activation: ReferenceActivationName;
}

/** Options of {@link ConvReferenceNet.random} and {@link ConvDenseReferenceNet.random}. */
export interface ConvReferenceOptions {
  /** Input channels m0. */
  inChannels: number;
  /** Intermediate channels m1 (the site's units). */
  midChannels: number;
  /** Output channels of the next conv (or dense units for {@link ConvDenseReferenceNet}). */
  outChannels: number;
  /** Input spatial size. */
  inputSize: Size2D;
  /** First conv kernel. */
  kernel1: Size2D;
  /** First conv stride (default 1). */
  stride1?: Size2D;
  /** First conv padding (default `'valid'`). */
  padding1?: PaddingSpec;
  /** Ignored by {@link ConvDenseReferenceNet}. */
  kernel2?: Size2D;
  /** Ignored by {@link ConvDenseReferenceNet}. */
  stride2?: Size2D;
  /** Ignored by {@link ConvDenseReferenceNet}. */
  padding2?: PaddingSpec;
  /** Activation (default `relu1`). */
  activation?: ReferenceActivationName;
  /** Seed of the weights. */
  seed: number;
  /** Standard deviation of the weights (default 1/sqrt(fan-in)). */
  weightScale?: number;
  /** Standard deviation of the biases (default 0.1). */
  biasScale?: number;
}

/** Everything the analytic backward pass of {@link ConvReferenceNet} produces. */
export interface ConvGradients {
  /** The loss L. */
  loss: number;
  /** ∂L/∂w1, HWIO. */
  w1: Tensor4;
  /** ∂L/∂b1. */
  b1: Float64Array;
  /** ∂L/∂w2, HWIO. */
  w2: Tensor4;
  /** ∂L/∂b2. */
  b2: Float64Array;
  /** ∂L/∂(incoming weights) in the site layout `[m1 × k1h·k1w·m0]`. */
  incoming: Matrix;
  /** ∂L/∂(outgoing weights) in the site layout `[k2h·k2w·m2 × m1]`. */
  outgoing: Matrix;
  /** The current conv's input (the x of the statistics). */
  x: Tensor4;
  /** Per-example gradients of each example's own loss wrt the next conv's pre-activation `[N, H2, W2, m2]`. */
  g: Tensor4;
  /** Intermediate pre-activations `[N, H1, W1, m1]`. */
  z1: Tensor4;
  /** Intermediate activations. */
  a1: Tensor4;
  /** Output `[N, H2, W2, m2]`. */
  output: Tensor4;
}

/** HWIO kernel `[kh, kw, cin, units]` → incoming layout `[units × kh·kw·cin]`. */
export function hwioToIncoming(w: Tensor4): Matrix {
  const [kh, kw, ci, units] = w.shape;
  const fanIn = kh * kw * ci;
  const m = new Matrix(units, fanIn);
  for (let f = 0; f < fanIn; f++) for (let j = 0; j < units; j++) m.data[j * fanIn + f] = w.data[f * units + j]!;
  return m;
}

/** HWIO kernel `[kh, kw, units, cout]` → outgoing layout `[kh·kw·cout × units]`. */
export function hwioToOutgoing(w: Tensor4): Matrix {
  const [kh, kw, units, co] = w.shape;
  const m = new Matrix(kh * kw * co, units);
  for (let t = 0; t < kh * kw; t++) {
    for (let j = 0; j < units; j++) for (let c = 0; c < co; c++) m.data[(t * co + c) * units + j] = w.data[(t * units + j) * co + c]!;
  }
  return m;
}

function growIncomingKernel(w: Tensor4, incoming: Matrix): Tensor4 {
  const [kh, kw, ci, m1] = w.shape;
  const k = incoming.rows;
  const out = zeros4([kh, kw, ci, m1 + k]);
  const fanIn = kh * kw * ci;
  for (let f = 0; f < fanIn; f++) {
    for (let j = 0; j < m1; j++) out.data[f * (m1 + k) + j] = w.data[f * m1 + j]!;
    for (let j = 0; j < k; j++) out.data[f * (m1 + k) + m1 + j] = incoming.data[j * fanIn + f]!;
  }
  return out;
}

function growOutgoingKernel(w: Tensor4, units: NewUnits): Tensor4 {
  const [kh, kw, m1, co] = w.shape;
  const k = units.outgoing.cols;
  const out = zeros4([kh, kw, m1 + k, co]);
  for (let t = 0; t < kh * kw; t++) {
    for (let j = 0; j < m1; j++) {
      const s = scaleOf(units, j);
      for (let c = 0; c < co; c++) out.data[(t * (m1 + k) + j) * co + c] = w.data[(t * m1 + j) * co + c]! * s;
    }
    for (let j = 0; j < k; j++) for (let c = 0; c < co; c++) out.data[(t * (m1 + k) + m1 + j) * co + c] = units.outgoing.get(t * co + c, j);
  }
  return out;
}

function addBias(t: Tensor4, b: Float64Array): void {
  const c = t.shape[3];
  for (let i = 0; i < t.data.length; i++) t.data[i] += b[i % c]!;
}

function sumPerChannel(t: Tensor4): Float64Array {
  const c = t.shape[3];
  const out = new Float64Array(c);
  for (let i = 0; i < t.data.length; i++) out[i % c] += t.data[i]!;
  return out;
}

function randomKernel(rng: Rng, shape: [number, number, number, number], scale: number): Tensor4 {
  const t = zeros4(shape);
  t.data.set(randn(rng, t.data.length, scale));
  return t;
}

/** x → conv1 (k1, s1, p1) + b1 → f → conv2 (k2, s2, p2) + b2. NHWC activations, HWIO kernels. */
export class ConvReferenceNet implements ReferenceNetwork<Tensor4Like, Tensor4> {
  readonly kind = 'conv' as const;
  /** Site geometry. */
  readonly geometry: ConvPairGeometry;
  /** HWIO `[k1h, k1w, m0, m1]` (live). */
  readonly w1: Tensor4;
  /** First conv bias. */
  readonly b1: Float64Array;
  /** HWIO `[k2h, k2w, m1, m2]` (live). */
  readonly w2: Tensor4;
  /** Second conv bias. */
  readonly b2: Float64Array;
  readonly activation: ReferenceActivation;
  readonly lastGrowth: number;

  /**
   * @param params - geometry and weights (used as is, not copied)
   * @param lastGrowth - units added by the growth that produced this network
   */
  constructor(params: ConvReferenceParams, lastGrowth = 0) {
    const g = params.geometry;
    const [k1h, k1w] = g.kernel1;
    const [k2h, k2w] = g.kernel2;
    const expect = (t: Tensor4, shape: number[], what: string) => {
      const s = checkTensor4(t, what);
      if (s.some((d, i) => d !== shape[i])) throw new ShapeMismatchError(what, shape, s);
    };
    expect(params.w1, [k1h, k1w, g.inChannels, g.midChannels], 'ConvReferenceNet w1');
    expect(params.w2, [k2h, k2w, g.midChannels, g.outChannels], 'ConvReferenceNet w2');
    if (params.b1.length !== g.midChannels) throw new ShapeMismatchError('ConvReferenceNet b1', [g.midChannels], [params.b1.length]);
    if (params.b2.length !== g.outChannels) throw new ShapeMismatchError('ConvReferenceNet b2', [g.outChannels], [params.b2.length]);
    this.geometry = g;
    this.w1 = params.w1;
    this.b1 = params.b1;
    this.w2 = params.w2;
    this.b2 = params.b2;
    this.activation = referenceActivation(params.activation);
    this.lastGrowth = lastGrowth;
  }

  /** A network with Gaussian weights drawn from `seed`; geometry from {@link makeConvPairGeometry}. */
  static random(o: ConvReferenceOptions): ConvReferenceNet {
    if (o.kernel2 === undefined) throw new InvalidArgumentError('ConvReferenceNet.random: kernel2 is required');
    const g = makeConvPairGeometry({ ...o, kernel2: o.kernel2, name: 'ConvReferenceNet' });
    const rng = new Rng(o.seed);
    const [k1h, k1w] = g.kernel1;
    const [k2h, k2w] = g.kernel2;
    const bs = o.biasScale ?? 0.1;
    return new ConvReferenceNet({
      geometry: g,
      w1: randomKernel(rng, [k1h, k1w, g.inChannels, g.midChannels], o.weightScale ?? 1 / Math.sqrt(k1h * k1w * g.inChannels)),
      b1: randn(rng, g.midChannels, bs),
      w2: randomKernel(rng, [k2h, k2w, g.midChannels, g.outChannels], o.weightScale ?? 1 / Math.sqrt(k2h * k2w * g.midChannels)),
      b2: randn(rng, g.outChannels, bs),
      activation: o.activation ?? 'relu1',
    });
  }

  get units(): number {
    return this.geometry.midChannels;
  }

  /** Input shape for a batch of `n` examples. */
  inputShape(n: number): [number, number, number, number] {
    return [n, this.geometry.inputSize[0], this.geometry.inputSize[1], this.geometry.inChannels];
  }

  /** Output shape for a batch of `n` examples. */
  outputShape(n: number): [number, number, number, number] {
    return [n, this.geometry.outputSize[0], this.geometry.outputSize[1], this.geometry.outChannels];
  }

  private pass(x: Tensor4Like): { z1: Tensor4; a1: Tensor4; out: Tensor4 } {
    const s = checkTensor4(x, 'ConvReferenceNet input');
    const e = this.inputShape(s[0]);
    if (s.some((d, i) => d !== e[i])) throw new ShapeMismatchError('ConvReferenceNet input', e, s);
    const z1 = naiveConv2d(x, this.w1, currentConvGeometry(this.geometry));
    addBias(z1, this.b1);
    const a1 = zeros4(z1.shape);
    for (let i = 0; i < z1.data.length; i++) a1.data[i] = this.activation.f(z1.data[i]!);
    const out = naiveConv2d(a1, this.w2, nextConvGeometry(this.geometry));
    addBias(out, this.b2);
    return { z1, a1, out };
  }

  forward(x: Tensor4Like): Tensor4 {
    return this.pass(x).out;
  }

  loss(x: Tensor4Like, target: Tensor4Like | Matrix): number {
    const out = this.forward(x);
    const t = flatTarget(target, out.data.length, 'ConvReferenceNet target');
    let s = 0;
    for (let i = 0; i < t.length; i++) s += (out.data[i]! - t[i]!) ** 2;
    return (0.5 * s) / out.shape[0];
  }

  /** Analytic backward pass (naive conv backprops). */
  gradients(x: Tensor4Like, target: Tensor4Like | Matrix): ConvGradients {
    const { z1, a1, out } = this.pass(x);
    const N = out.shape[0];
    const t = flatTarget(target, out.data.length, 'ConvReferenceNet target');
    const g = zeros4(out.shape);
    const gm = zeros4(out.shape);
    let loss = 0;
    for (let i = 0; i < t.length; i++) {
      const d = out.data[i]! - t[i]!;
      g.data[i] = d;
      gm.data[i] = d / N;
      loss += d * d;
    }
    loss = (0.5 * loss) / N;
    const geo2 = nextConvGeometry(this.geometry);
    const w2 = naiveConv2dBackpropFilter(a1, gm, this.geometry.kernel2, geo2);
    const b2 = sumPerChannel(gm);
    const da1 = naiveConv2dBackpropInput(gm, this.w2, this.geometry.midSize, geo2);
    for (let i = 0; i < da1.data.length; i++) da1.data[i] *= this.activation.df(z1.data[i]!);
    const w1 = naiveConv2dBackpropFilter(x, da1, this.geometry.kernel1, currentConvGeometry(this.geometry));
    const b1 = sumPerChannel(da1);
    const xs = checkTensor4(x, 'ConvReferenceNet input');
    return {
      loss, w1, b1, w2, b2,
      incoming: hwioToIncoming(w1),
      outgoing: hwioToOutgoing(w2),
      x: { shape: xs, data: Float64Array.from(x.data) },
      g, z1, a1, output: out,
    };
  }

  site(name = 'conv->conv'): GrowthSite {
    return {
      name,
      kind: 'conv',
      units: this.units,
      fanIn: this.geometry.kernel1[0] * this.geometry.kernel1[1] * this.geometry.inChannels,
      fanOut: this.geometry.kernel2[0] * this.geometry.kernel2[1] * this.geometry.outChannels,
      incoming: hwioToIncoming(this.w1),
      incomingBias: this.b1.slice(),
      outgoing: hwioToOutgoing(this.w2),
      activation: { ...this.activation.info },
      conv: structuredClone(this.geometry),
    };
  }

  /** The {@link ConvStatistics} accumulator filled with (x, target) through its naive `accumulate` path. */
  statisticsAccumulator(x: Tensor4Like, target: Tensor4Like | Matrix, options: ReferenceStatisticsOptions = {}): ConvStatistics {
    const { g, x: xs } = this.gradients(x, target);
    return accumulateConv(this.geometry, xs, g, options, 'conv->conv statistics');
  }

  statistics(x: Tensor4Like, target: Tensor4Like | Matrix, options?: ReferenceStatisticsOptions): SiteStatistics {
    return this.statisticsAccumulator(x, target, options).snapshot();
  }

  grow(units: NewUnits): ConvReferenceNet {
    const k = checkNewUnits(units, this.site());
    const b1 = new Float64Array(this.units + k);
    b1.set(this.b1);
    b1.set(units.incomingBias, this.units);
    return new ConvReferenceNet({
      geometry: { ...structuredClone(this.geometry), midChannels: this.units + k },
      w1: growIncomingKernel(this.w1, units.incoming),
      b1,
      w2: growOutgoingKernel(this.w2, units),
      b2: this.b2.slice(),
      activation: this.activation.name,
    }, k);
  }

  newIncomingGradient(x: Tensor4Like, target: Tensor4Like | Matrix, count = this.lastGrowth): Matrix {
    checkCountArg(count, this.units, 'ConvReferenceNet.newIncomingGradient');
    const { incoming } = this.gradients(x, target);
    return new Matrix(count, incoming.cols, incoming.data.slice((this.units - count) * incoming.cols));
  }

  parameters(): Record<string, Float64Array> {
    return { w1: this.w1.data, b1: this.b1, w2: this.w2.data, b2: this.b2 };
  }
}

function accumulateConv(geometry: ConvPairGeometry, x: Tensor4, g: { shape: readonly number[]; data: Float64Array }, options: ReferenceStatisticsOptions, defaultName: string): ConvStatistics {
  const stats = new ConvStatistics(geometry, { retainSamples: options.retainSamples ?? 0, seed: options.seed ?? 0 }, options.name ?? defaultName);
  const N = x.shape[0];
  const bs = options.batchSize ?? Math.max(1, N);
  const xPer = x.data.length / Math.max(N, 1);
  const gPer = g.data.length / Math.max(N, 1);
  for (let start = 0; start < N; start += bs) {
    const end = Math.min(N, start + bs);
    stats.accumulate(x.data.subarray(start * xPer, end * xPer), g.data.subarray(start * gPer, end * gPer), end - start);
  }
  return stats;
}

// ---------------------------------------------------------------------------------------------------------------
// Conv → flatten → dense

/** Parameters of {@link ConvDenseReferenceNet}. */
export interface ConvDenseReferenceParams {
  /** Geometry from {@link flattenDenseGeometry} (outChannels = dense units). */
  geometry: ConvPairGeometry;
  /** HWIO `[k1h, k1w, m0, m1]`. */
  w1: Tensor4;
  /** Conv bias (length m1). */
  b1: Float64Array;
  /** Dense weights `[outUnits × H1·W1·m1]`, columns in HWC flatten order `(h·W1 + w)·m1 + c`. */
  wd: Matrix;
  /** Dense bias (length outUnits). */
  bd: Float64Array;
  /** Activation after the conv. */
  activation: ReferenceActivationName;
}

/** Everything the analytic backward pass of {@link ConvDenseReferenceNet} produces. */
export interface ConvDenseGradients {
  /** The loss L. */
  loss: number;
  /** ∂L/∂w1, HWIO. */
  w1: Tensor4;
  /** ∂L/∂b1. */
  b1: Float64Array;
  /** ∂L/∂wd `[outUnits × H1·W1·m1]`. */
  wd: Matrix;
  /** ∂L/∂bd. */
  bd: Float64Array;
  /** ∂L/∂(incoming weights) in the site layout `[m1 × k1h·k1w·m0]`. */
  incoming: Matrix;
  /** ∂L/∂(outgoing weights) in the site layout `[H1·W1·outUnits × m1]`. */
  outgoing: Matrix;
  /** The conv's input (the x of the statistics). */
  x: Tensor4;
  /** Per-example output gradients as the conv view `[N, 1, 1, outUnits]` (the g of the statistics). */
  g: Tensor4;
  /** Outputs `[N × outUnits]`. */
  output: Matrix;
}

/**
 * x → conv1 + b1 → f → flatten (HWC) → dense. Its own forward/backward (matrix products over the flattened map),
 * independent of the conv view; its site uses {@link flattenDenseGeometry}. Outputs are `[N × outUnits]`.
 */
export class ConvDenseReferenceNet implements ReferenceNetwork<Tensor4Like, Matrix> {
  readonly kind = 'conv' as const;
  /** Site geometry (from {@link flattenDenseGeometry}). */
  readonly geometry: ConvPairGeometry;
  /** HWIO `[k1h, k1w, m0, m1]` (live). */
  readonly w1: Tensor4;
  /** Conv bias. */
  readonly b1: Float64Array;
  /** Dense weights `[outUnits × H1·W1·m1]`, HWC flatten order (live). */
  readonly wd: Matrix;
  /** Dense bias. */
  readonly bd: Float64Array;
  readonly activation: ReferenceActivation;
  readonly lastGrowth: number;

  /**
   * @param params - geometry and weights (used as is, not copied)
   * @param lastGrowth - units added by the growth that produced this network
   */
  constructor(params: ConvDenseReferenceParams, lastGrowth = 0) {
    const g = params.geometry;
    const [H1, W1] = g.midSize;
    if (g.kernel2[0] !== H1 || g.kernel2[1] !== W1 || g.outputSize[0] !== 1 || g.outputSize[1] !== 1) {
      throw new InvalidArgumentError('ConvDenseReferenceNet: geometry must come from flattenDenseGeometry (kernel2 = midSize, output 1×1)');
    }
    const s = checkTensor4(params.w1, 'ConvDenseReferenceNet w1');
    const e = [g.kernel1[0], g.kernel1[1], g.inChannels, g.midChannels];
    if (s.some((d, i) => d !== e[i])) throw new ShapeMismatchError('ConvDenseReferenceNet w1', e, s);
    if (params.b1.length !== g.midChannels) throw new ShapeMismatchError('ConvDenseReferenceNet b1', [g.midChannels], [params.b1.length]);
    if (params.wd.rows !== g.outChannels || params.wd.cols !== H1 * W1 * g.midChannels) throw new ShapeMismatchError('ConvDenseReferenceNet wd', [g.outChannels, H1 * W1 * g.midChannels], params.wd.shape);
    if (params.bd.length !== g.outChannels) throw new ShapeMismatchError('ConvDenseReferenceNet bd', [g.outChannels], [params.bd.length]);
    this.geometry = g;
    this.w1 = params.w1;
    this.b1 = params.b1;
    this.wd = params.wd;
    this.bd = params.bd;
    this.activation = referenceActivation(params.activation);
    this.lastGrowth = lastGrowth;
  }

  /** A network with Gaussian weights drawn from `seed`; `outChannels` is the number of dense units. */
  static random(o: ConvReferenceOptions): ConvDenseReferenceNet {
    const g = flattenDenseGeometry({ ...o, outUnits: o.outChannels, name: 'ConvDenseReferenceNet' });
    const rng = new Rng(o.seed);
    const [k1h, k1w] = g.kernel1;
    const flat = g.midSize[0] * g.midSize[1] * g.midChannels;
    const bs = o.biasScale ?? 0.1;
    return new ConvDenseReferenceNet({
      geometry: g,
      w1: randomKernel(rng, [k1h, k1w, g.inChannels, g.midChannels], o.weightScale ?? 1 / Math.sqrt(k1h * k1w * g.inChannels)),
      b1: randn(rng, g.midChannels, bs),
      wd: new Matrix(g.outChannels, flat, randn(rng, g.outChannels * flat, o.weightScale ?? 1 / Math.sqrt(flat))),
      bd: randn(rng, g.outChannels, bs),
      activation: o.activation ?? 'relu1',
    });
  }

  get units(): number {
    return this.geometry.midChannels;
  }

  /** Input shape for a batch of `n` examples. */
  inputShape(n: number): [number, number, number, number] {
    return [n, this.geometry.inputSize[0], this.geometry.inputSize[1], this.geometry.inChannels];
  }

  private pass(x: Tensor4Like): { z1: Tensor4; a1: Tensor4; out: Matrix } {
    const s = checkTensor4(x, 'ConvDenseReferenceNet input');
    const e = this.inputShape(s[0]);
    if (s.some((d, i) => d !== e[i])) throw new ShapeMismatchError('ConvDenseReferenceNet input', e, s);
    const z1 = naiveConv2d(x, this.w1, currentConvGeometry(this.geometry));
    addBias(z1, this.b1);
    const a1 = zeros4(z1.shape);
    for (let i = 0; i < z1.data.length; i++) a1.data[i] = this.activation.f(z1.data[i]!);
    const N = s[0];
    const flat = this.wd.cols;
    const out = new Matrix(N, this.wd.rows);
    for (let n = 0; n < N; n++) {
      for (let o = 0; o < this.wd.rows; o++) {
        let acc = this.bd[o]!;
        for (let i = 0; i < flat; i++) acc += this.wd.data[o * flat + i]! * a1.data[n * flat + i]!;
        out.set(n, o, acc);
      }
    }
    return { z1, a1, out };
  }

  forward(x: Tensor4Like): Matrix {
    return this.pass(x).out;
  }

  loss(x: Tensor4Like, target: Matrix | Tensor4Like): number {
    const out = this.forward(x);
    const t = matrixArg(target, out.rows, out.cols, 'ConvDenseReferenceNet target');
    let s = 0;
    for (let i = 0; i < t.length; i++) s += (out.data[i]! - t[i]!) ** 2;
    return (0.5 * s) / out.rows;
  }

  /** Analytic backward pass. `g` is `[N, 1, 1, outUnits]` (the conv view of the dense output gradient). */
  gradients(x: Tensor4Like, target: Matrix | Tensor4Like): ConvDenseGradients {
    const { z1, a1, out } = this.pass(x);
    const N = out.rows;
    const t = matrixArg(target, N, out.cols, 'ConvDenseReferenceNet target');
    const nOut = out.cols;
    const flat = this.wd.cols;
    const g = zeros4([N, 1, 1, nOut]);
    let loss = 0;
    for (let i = 0; i < t.length; i++) {
      const d = out.data[i]! - t[i]!;
      g.data[i] = d;
      loss += d * d;
    }
    loss = (0.5 * loss) / N;
    const wd = new Matrix(nOut, flat);
    const bd = new Float64Array(nOut);
    const da1 = zeros4(a1.shape);
    for (let n = 0; n < N; n++) {
      for (let o = 0; o < nOut; o++) {
        const go = g.data[n * nOut + o]! / N;
        bd[o] += go;
        for (let i = 0; i < flat; i++) {
          wd.data[o * flat + i] += go * a1.data[n * flat + i]!;
          da1.data[n * flat + i] += go * this.wd.data[o * flat + i]!;
        }
      }
    }
    for (let i = 0; i < da1.data.length; i++) da1.data[i] *= this.activation.df(z1.data[i]!);
    const w1 = naiveConv2dBackpropFilter(x, da1, this.geometry.kernel1, currentConvGeometry(this.geometry));
    const b1 = sumPerChannel(da1);
    const xs = checkTensor4(x, 'ConvDenseReferenceNet input');
    return { loss, w1, b1, wd, bd, incoming: hwioToIncoming(w1), outgoing: this.denseToOutgoing(wd), x: { shape: xs, data: Float64Array.from(x.data) }, g, output: out };
  }

  private denseToOutgoing(wd: Matrix): Matrix {
    const [H1, W1] = this.geometry.midSize;
    const m1 = this.units;
    const nOut = wd.rows;
    const m = new Matrix(H1 * W1 * nOut, m1);
    for (let p = 0; p < H1 * W1; p++) {
      for (let o = 0; o < nOut; o++) for (let j = 0; j < m1; j++) m.set(p * nOut + o, j, wd.get(o, p * m1 + j));
    }
    return m;
  }

  site(name = 'conv->flatten->dense'): GrowthSite {
    return {
      name,
      kind: 'conv',
      units: this.units,
      fanIn: this.geometry.kernel1[0] * this.geometry.kernel1[1] * this.geometry.inChannels,
      fanOut: this.geometry.midSize[0] * this.geometry.midSize[1] * this.geometry.outChannels,
      incoming: hwioToIncoming(this.w1),
      incomingBias: this.b1.slice(),
      outgoing: this.denseToOutgoing(this.wd),
      activation: { ...this.activation.info },
      conv: structuredClone(this.geometry),
    };
  }

  /** The {@link ConvStatistics} accumulator filled with (x, target). */
  statisticsAccumulator(x: Tensor4Like, target: Matrix | Tensor4Like, options: ReferenceStatisticsOptions = {}): ConvStatistics {
    const { g, x: xs } = this.gradients(x, target);
    return accumulateConv(this.geometry, xs, g, options, 'conv->flatten->dense statistics');
  }

  statistics(x: Tensor4Like, target: Matrix | Tensor4Like, options?: ReferenceStatisticsOptions): SiteStatistics {
    return this.statisticsAccumulator(x, target, options).snapshot();
  }

  grow(units: NewUnits): ConvDenseReferenceNet {
    const k = checkNewUnits(units, this.site());
    const [H1, W1] = this.geometry.midSize;
    const m1 = this.units;
    const nOut = this.wd.rows;
    const wd = new Matrix(nOut, H1 * W1 * (m1 + k));
    for (let o = 0; o < nOut; o++) {
      for (let p = 0; p < H1 * W1; p++) {
        for (let j = 0; j < m1; j++) wd.set(o, p * (m1 + k) + j, this.wd.get(o, p * m1 + j) * scaleOf(units, j));
        for (let j = 0; j < k; j++) wd.set(o, p * (m1 + k) + m1 + j, units.outgoing.get(p * nOut + o, j));
      }
    }
    const b1 = new Float64Array(m1 + k);
    b1.set(this.b1);
    b1.set(units.incomingBias, m1);
    return new ConvDenseReferenceNet({
      geometry: { ...structuredClone(this.geometry), midChannels: m1 + k },
      w1: growIncomingKernel(this.w1, units.incoming),
      b1,
      wd,
      bd: this.bd.slice(),
      activation: this.activation.name,
    }, k);
  }

  newIncomingGradient(x: Tensor4Like, target: Matrix | Tensor4Like, count = this.lastGrowth): Matrix {
    checkCountArg(count, this.units, 'ConvDenseReferenceNet.newIncomingGradient');
    const { incoming } = this.gradients(x, target);
    return new Matrix(count, incoming.cols, incoming.data.slice((this.units - count) * incoming.cols));
  }

  parameters(): Record<string, Float64Array> {
    return { w1: this.w1.data, b1: this.b1, wd: this.wd.data, bd: this.bd };
  }
}
