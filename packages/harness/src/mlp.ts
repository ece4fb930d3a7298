/**
 * A small growable MLP on raw tfjs variables, used by the dense tasks. Hidden layers use `relu1` from
 * `@gradmax/tfjs` (ReLU whose gradient at exactly 0 is 1), so incoming-zero strategies such as GradMax
 * receive a gradient. Growth applies a strategy's {@link NewUnits} by weight surgery and pads the
 * momentum buffers with zeros (method reference §5.3).
 */
import type * as tfc from '@tensorflow/tfjs-core';
import {
  InvalidArgumentError,
  Matrix,
  ShapeMismatchError,
  UnsupportedError,
  type GrowthSite,
  type LossOracle,
  type NewUnits,
  type Rng,
  type SiteStatistics,
} from '@gradmax/core';

import { relu1 } from '@gradmax/tfjs';

type Tf = typeof tfc;

/** A variable holding a copy of `initial`; `initial` is disposed. */
function variableFrom(tf: Tf, initial: tfc.Tensor): tfc.Variable {
  const v = tf.variable(initial);
  initial.dispose();
  return v;
}

/** Loss of an {@link GrowableMlp}: mean squared error (mean over outputs and batch) or softmax cross-entropy. */
export type MlpLoss = 'mse' | 'softmaxCrossEntropy';

/** Weights of one dense layer: `kernel` is `[in × out]` row-major (tfjs orientation). */
export interface DenseWeights {
  kernel: Float32Array;
  inputs: number;
  outputs: number;
  bias?: Float32Array;
}

/** Glorot-uniform initial weights for `sizes = [in, h1, ..., out]` drawn from `rng`. */
export function glorotMlp(sizes: readonly number[], rng: Rng, bias: boolean): DenseWeights[] {
  const layers: DenseWeights[] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    const inputs = sizes[i]!;
    const outputs = sizes[i + 1]!;
    const limit = Math.sqrt(6 / (inputs + outputs));
    const kernel = new Float32Array(inputs * outputs);
    for (let j = 0; j < kernel.length; j++) kernel[j] = rng.uniformRange(-limit, limit);
    layers.push({ kernel, inputs, outputs, ...(bias ? { bias: new Float32Array(outputs) } : {}) });
  }
  return layers;
}

/** Weights with entries U[−range, range] (the teacher-student teacher), no bias. */
export function uniformMlp(sizes: readonly number[], rng: Rng, range: number): DenseWeights[] {
  const layers: DenseWeights[] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    const kernel = new Float32Array(sizes[i]! * sizes[i + 1]!);
    for (let j = 0; j < kernel.length; j++) kernel[j] = rng.uniformRange(-range, range);
    layers.push({ kernel, inputs: sizes[i]!, outputs: sizes[i + 1]! });
  }
  return layers;
}

/** Result of {@link GrowableMlp.gradientNorms}. */
export interface GradientNorms {
  /** Loss value. */
  loss: number;
  /** Frobenius norm of the gradient on the whole kernel of the grown layer. */
  kernel: number;
  /** Frobenius norm of the gradient on the kernel columns from `firstUnit` on. */
  tail: number;
  /** Frobenius norm of the gradient on the next kernel's rows from `firstUnit` on. */
  outgoingTail: number;
}

/**
 * A multi-layer perceptron whose hidden layers can be widened. Layer i maps `sizes[i]` to `sizes[i+1]`;
 * growth site `l` is hidden layer l (between weight layers l and l+1).
 */
export class GrowableMlp {
  private readonly tf: Tf;
  private kernels: tfc.Variable[] = [];
  private biases: (tfc.Variable | undefined)[] = [];
  private velocities: tfc.Variable[][] = [];
  /** Kept scalar tensors (−learning rate, momentum), created once per value like tfjs's own optimizers do. */
  private readonly scalars = new Map<number, tfc.Scalar>();
  /** Loss used by training, statistics and the loss oracle. */
  readonly loss: MlpLoss;
  /** SGD momentum (0 = plain SGD). */
  readonly momentum: number;
  /** Nesterov momentum (`w ← w − lr·(g + μ·v)` after `v ← μv + g`, tfjs's and Keras's form). */
  readonly nesterov: boolean;

  /**
   * @param tf - tfjs-core namespace with a backend set
   * @param layers - initial weights
   * @param options - loss, momentum and whether it is Nesterov momentum
   */
  constructor(tf: Tf, layers: readonly DenseWeights[], options: { loss: MlpLoss; momentum?: number; nesterov?: boolean }) {
    if (layers.length < 2) throw new InvalidArgumentError(`an MLP needs at least two layers, got ${layers.length}`);
    for (let i = 1; i < layers.length; i++) {
      if (layers[i]!.inputs !== layers[i - 1]!.outputs) {
        throw new ShapeMismatchError(`layer ${i} inputs`, [layers[i - 1]!.outputs], [layers[i]!.inputs], { layer: i });
      }
    }
    this.tf = tf;
    this.loss = options.loss;
    this.momentum = options.momentum ?? 0;
    this.nesterov = options.nesterov ?? false;
    for (const layer of layers) {
      if (layer.kernel.length !== layer.inputs * layer.outputs) throw new ShapeMismatchError('kernel data', [layer.inputs, layer.outputs], [layer.kernel.length]);
      this.kernels.push(variableFrom(tf, tf.tensor2d(layer.kernel, [layer.inputs, layer.outputs])));
      this.biases.push(layer.bias ? variableFrom(tf, tf.tensor1d(layer.bias)) : undefined);
    }
    if (this.momentum > 0) this.velocities = this.trainable().map((v) => [variableFrom(tf, tf.zerosLike(v))]);
  }

  /** Widths of the hidden layers. */
  get hiddenWidths(): number[] {
    return this.kernels.slice(0, -1).map((k) => k.shape[1]!);
  }

  /** Number of trainable parameters. */
  get parameterCount(): number {
    return this.trainable().reduce((s, v) => s + v.size, 0);
  }

  /** Number of growth sites (hidden layers). */
  get siteCount(): number {
    return this.kernels.length - 1;
  }

  private trainable(): tfc.Variable[] {
    const out: tfc.Variable[] = [];
    this.kernels.forEach((k, i) => {
      out.push(k);
      const b = this.biases[i];
      if (b) out.push(b);
    });
    return out;
  }

  private act(x: tfc.Tensor2D): tfc.Tensor2D {
    return relu1(x);
  }

  private layer(i: number, x: tfc.Tensor2D): tfc.Tensor2D {
    const z = this.tf.matMul(x, this.kernels[i]!) as tfc.Tensor2D;
    const b = this.biases[i];
    return b ? (this.tf.add(z, b) as tfc.Tensor2D) : z;
  }

  /** Network output (logits or regression values) for a batch `x` `[B × in]`. */
  forward(x: tfc.Tensor2D): tfc.Tensor2D {
    let h = x;
    for (let i = 0; i < this.kernels.length; i++) {
      const z = this.layer(i, h);
      h = i + 1 < this.kernels.length ? this.act(z) : z;
    }
    return h;
  }

  /** Mean loss of `output` against `target` (regression targets or one-hot labels). */
  lossOf(output: tfc.Tensor2D, target: tfc.Tensor2D): tfc.Scalar {
    return this.loss === 'mse' ? this.tf.losses.meanSquaredError(target, output) : this.tf.losses.softmaxCrossEntropy(target, output);
  }

  /** Mean loss on a batch (a scalar tensor; the caller disposes it). */
  evaluate(x: tfc.Tensor2D, target: tfc.Tensor2D): tfc.Scalar {
    return this.tf.tidy(() => this.lossOf(this.forward(x), target));
  }

  /** Accuracy (argmax agreement) on a batch with one-hot targets. */
  accuracy(x: tfc.Tensor2D, target: tfc.Tensor2D): number {
    const tf = this.tf;
    const acc = tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(this.forward(x), 1), tf.argMax(target, 1)), 'float32')));
    const value = acc.dataSync()[0]!;
    acc.dispose();
    return value;
  }

  private scalar(value: number): tfc.Scalar {
    let t = this.scalars.get(value);
    if (!t) {
      t = this.tf.keep(this.tf.scalar(value));
      this.scalars.set(value, t);
    }
    return t;
  }

  /**
   * One SGD step (with momentum when configured: `v ← μv + g; w ← w − lr·v`, or with Nesterov momentum
   * `w ← w − lr·(g + μv)`). Returns the loss before the update as a scalar tensor the caller must dispose.
   * `learningRate` may change every step (a schedule): its scalar is made inside the step and disposed with it.
   */
  step(x: tfc.Tensor2D, target: tfc.Tensor2D, learningRate: number): tfc.Scalar {
    const tf = this.tf;
    const vars = this.trainable();
    const mu = this.momentum > 0 ? this.scalar(this.momentum) : undefined;
    return tf.tidy(() => {
      const negLr = tf.scalar(-learningRate);
      const { value, grads } = tf.variableGrads(() => this.lossOf(this.forward(x), target), vars);
      vars.forEach((v, i) => {
        const g = grads[v.name]!;
        if (mu) {
          const vel = this.velocities[i]![0]!;
          vel.assign(tf.add(tf.mul(vel, mu), g));
          v.assign(tf.add(v, tf.mul(this.nesterov ? tf.add(g, tf.mul(vel, mu)) : vel, negLr)));
        } else {
          v.assign(tf.add(v, tf.mul(g, negLr)));
        }
      });
      return value;
    });
  }

  private checkSite(site: number): void {
    if (!Number.isInteger(site) || site < 0 || site >= this.siteCount) {
      throw new InvalidArgumentError(`growth site index ${site} is out of range (the MLP has ${this.siteCount} hidden layers)`, { site });
    }
  }

  /** The framework-neutral description of growth site `site` (hidden layer `site`). */
  growthSite(site: number): GrowthSite {
    this.checkSite(site);
    const w1 = this.kernels[site]!;
    const w2 = this.kernels[site + 1]!;
    const [fanIn, units] = w1.shape as [number, number];
    const fanOut = w2.shape[1]!;
    const k1 = w1.dataSync();
    const k2 = w2.dataSync();
    const incoming = new Matrix(units, fanIn);
    for (let i = 0; i < fanIn; i++) for (let j = 0; j < units; j++) incoming.data[j * fanIn + i] = k1[i * units + j]!;
    const outgoing = new Matrix(fanOut, units);
    for (let j = 0; j < units; j++) for (let o = 0; o < fanOut; o++) outgoing.data[o * units + j] = k2[j * fanOut + o]!;
    const bias = this.biases[site];
    return {
      name: `hidden${site}`,
      kind: 'dense',
      units,
      fanIn,
      fanOut,
      incoming,
      ...(bias ? { incomingBias: Float64Array.from(bias.dataSync()) } : {}),
      outgoing,
      activation: { name: 'relu1', f0: 0, df0: 1 },
    };
  }

  private inputOf(site: number, x: tfc.Tensor2D): tfc.Tensor2D {
    let h = x;
    for (let i = 0; i < site; i++) h = this.act(this.layer(i, h));
    return h;
  }

  private restFrom(site: number, z: tfc.Tensor2D): tfc.Tensor2D {
    // z is the pre-activation of weight layer site+1.
    let h = z;
    for (let i = site + 1; i < this.kernels.length; i++) {
      if (i > site + 1) h = this.layer(i, h);
      if (i + 1 < this.kernels.length) h = this.act(h);
    }
    return h;
  }

  /**
   * Growth statistics of site `site` on a batch: M = (1/B) Σ_b g̃_b h_bᵀ with h the site's input and g̃_b the
   * gradient of example b's own loss w.r.t. the next layer's pre-activation. With `retainSamples`, all B
   * (h, g̃) pairs are kept (weight 1/B).
   */
  statistics(site: number, x: tfc.Tensor2D, target: tfc.Tensor2D, retainSamples: boolean): SiteStatistics {
    this.checkSite(site);
    const tf = this.tf;
    const batch = x.shape[0];
    let stats: SiteStatistics | undefined;
    tf.tidy(() => {
      const h = this.inputOf(site, x);
      const z = this.layer(site + 1, this.act(this.layer(site, h)));
      const dz = tf.grad((zz: tfc.Tensor) => this.lossOf(this.restFrom(site, zz as tfc.Tensor2D), target))(z) as tfc.Tensor2D;
      const g = tf.mul(dz, batch) as tfc.Tensor2D;
      const fanIn = h.shape[1];
      const fanOut = g.shape[1];
      const moment = Matrix.from(fanOut, fanIn, tf.div(tf.matMul(g, h, true, false), batch).dataSync());
      stats = { moment, count: batch };
      if (retainSamples) stats.samples = { h: Matrix.from(batch, fanIn, h.dataSync()), g: Matrix.from(batch, fanOut, g.dataSync()), weight: 1 / batch };
    });
    return stats!;
  }

  /**
   * Gradient norms of the loss on a batch: site `site`'s whole kernel, its columns from `firstUnit` on (new units'
   * incoming weights), and the next kernel's rows from `firstUnit` on (new units' outgoing weights).
   */
  gradientNorms(site: number, x: tfc.Tensor2D, target: tfc.Tensor2D, firstUnit: number): GradientNorms {
    this.checkSite(site);
    const tf = this.tf;
    const kernel = this.kernels[site]!;
    const next = this.kernels[site + 1]!;
    const units = kernel.shape[1]!;
    const out = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => this.lossOf(this.forward(x), target), [kernel, next]);
      const g = grads[kernel.name]!;
      const gn = grads[next.name]!;
      const tail = firstUnit < units ? tf.norm(tf.slice(g, [0, firstUnit], [-1, units - firstUnit])) : tf.scalar(0);
      const outTail = firstUnit < units ? tf.norm(tf.slice(gn, [firstUnit, 0], [units - firstUnit, -1])) : tf.scalar(0);
      return tf.stack([value, tf.norm(g), tail, outTail]);
    });
    const [loss, whole, tail, outTail] = out.dataSync();
    out.dispose();
    return { loss: loss!, kernel: whole!, tail: tail!, outgoingTail: outTail! };
  }

  /**
   * A loss oracle for site `site` on a batch: the loss with `units` added at amplitude α on both sides
   * (incoming and bias × α, outgoing × α), without changing the network.
   */
  lossOracle(site: number, x: tfc.Tensor2D, target: tfc.Tensor2D): LossOracle {
    this.checkSite(site);
    const tf = this.tf;
    return (units: NewUnits, amplitude: number): number => {
      const t = tf.tidy(() => {
        const hIn = this.inputOf(site, x);
        const a = this.act(this.layer(site, hIn));
        let z = this.layer(site + 1, a);
        const inc = tf.tensor2d(units.incoming.toFloat32(), [units.incoming.rows, units.incoming.cols]);
        const pre = tf.add(tf.matMul(hIn, inc, false, true), tf.tensor1d(Float32Array.from(units.incomingBias)));
        const out = tf.tensor2d(units.outgoing.toFloat32(), [units.outgoing.rows, units.outgoing.cols]);
        z = tf.add(z, tf.mul(tf.matMul(this.act(tf.mul(pre, amplitude)), out, false, true), amplitude));
        if (units.existingOutgoingScale) {
          const scaled = tf.mul(a, tf.tensor1d(Float32Array.from(units.existingOutgoingScale))) as tfc.Tensor2D;
          z = tf.add(tf.sub(z, this.layer(site + 1, a)), this.layer(site + 1, scaled));
        }
        return this.lossOf(this.restFrom(site, z), target);
      });
      const v = t.dataSync()[0]!;
      t.dispose();
      return v;
    };
  }

  /** Appends `units` to site `site` (new kernel columns, bias entries and next-layer rows); momentum padded with zeros. */
  grow(site: number, units: NewUnits): void {
    this.checkSite(site);
    const tf = this.tf;
    const w1 = this.kernels[site]!;
    const w2 = this.kernels[site + 1]!;
    const [fanIn, n1] = w1.shape as [number, number];
    const fanOut = w2.shape[1]!;
    const k = units.incoming.rows;
    const where = { site: `hidden${site}` };
    if (units.incoming.cols !== fanIn) throw new ShapeMismatchError('new incoming weights', [k, fanIn], units.incoming.shape, where);
    if (units.outgoing.rows !== fanOut || units.outgoing.cols !== k) throw new ShapeMismatchError('new outgoing weights', [fanOut, k], units.outgoing.shape, where);
    if (units.incomingBias.length !== k) throw new ShapeMismatchError('new biases', [k], [units.incomingBias.length], where);
    const bias = this.biases[site];
    if (!bias && units.incomingBias.some((b) => b !== 0)) {
      throw new UnsupportedError(`strategy "${units.report.strategy}" sets non-zero biases on new units, but layer ${site} of this MLP has no bias`, where);
    }
    if (units.existingOutgoingScale && units.existingOutgoingScale.length !== n1) {
      throw new ShapeMismatchError('existingOutgoingScale', [n1], [units.existingOutgoingScale.length], where);
    }
    const oldVars = this.trainable();
    const rowScale = units.existingOutgoingScale ? Float32Array.from(units.existingOutgoingScale) : undefined;
    const newW1 = tf.tidy(() => tf.concat([w1, tf.transpose(tf.tensor2d(units.incoming.toFloat32(), [k, fanIn]))], 1));
    const newW2 = tf.tidy(() => {
      const base = rowScale ? tf.mul(w2, tf.reshape(tf.tensor1d(rowScale), [n1, 1])) : w2;
      return tf.concat([base, tf.transpose(tf.tensor2d(units.outgoing.toFloat32(), [fanOut, k]))], 0);
    });
    const newBias = bias ? tf.tidy(() => tf.concat([bias, tf.tensor1d(Float32Array.from(units.incomingBias))], 0)) : undefined;
    // Momentum buffers: pad with zeros in the same places.
    let oldVel: Map<tfc.Variable, tfc.Variable> | undefined;
    if (this.momentum > 0) oldVel = new Map(oldVars.map((v, i) => [v, this.velocities[i]![0]!]));
    const padded = new Map<tfc.Variable, tfc.Tensor>();
    if (oldVel) {
      padded.set(w1, tf.tidy(() => tf.concat([oldVel!.get(w1)!, tf.zeros([fanIn, k])], 1)));
      padded.set(w2, tf.tidy(() => {
        const base = rowScale ? tf.mul(oldVel!.get(w2)!, tf.reshape(tf.tensor1d(rowScale), [n1, 1])) : oldVel!.get(w2)!;
        return tf.concat([base, tf.zeros([k, fanOut])], 0);
      }));
      if (bias) padded.set(bias, tf.tidy(() => tf.concat([oldVel!.get(bias)!, tf.zeros([k])], 0)));
    }
    this.kernels[site] = tf.variable(newW1);
    this.kernels[site + 1] = tf.variable(newW2);
    if (bias && newBias) this.biases[site] = tf.variable(newBias);
    newW1.dispose();
    newW2.dispose();
    newBias?.dispose();
    const replaced = new Map<tfc.Variable, tfc.Variable>([[w1, this.kernels[site]!], [w2, this.kernels[site + 1]!]]);
    if (bias) replaced.set(bias, this.biases[site]!);
    if (oldVel) {
      const newVel: tfc.Variable[][] = [];
      for (const v of oldVars) {
        const p = padded.get(v);
        if (p) {
          newVel.push([tf.variable(p)]);
          p.dispose();
          oldVel.get(v)!.dispose();
        } else newVel.push([oldVel.get(v)!]);
      }
      this.velocities = newVel;
    }
    for (const v of replaced.keys()) v.dispose();
  }

  /** A copy of all weights and momentum buffers (Float32), for checkpoints. */
  snapshot(): { layers: DenseWeights[]; velocities: Float32Array[] } {
    const layers = this.kernels.map((k, i) => {
      const b = this.biases[i];
      return { kernel: Float32Array.from(k.dataSync()), inputs: k.shape[0]!, outputs: k.shape[1]!, ...(b ? { bias: Float32Array.from(b.dataSync()) } : {}) };
    });
    return { layers, velocities: this.velocities.map((v) => Float32Array.from(v[0]!.dataSync())) };
  }

  /** Restores a {@link snapshot} (shapes may differ from the current ones). */
  restore(snap: { layers: DenseWeights[]; velocities: Float32Array[] }): void {
    const tf = this.tf;
    this.dispose();
    this.kernels = snap.layers.map((l) => variableFrom(tf, tf.tensor2d(l.kernel, [l.inputs, l.outputs])));
    this.biases = snap.layers.map((l) => (l.bias ? variableFrom(tf, tf.tensor1d(l.bias)) : undefined));
    if (this.momentum > 0) {
      const vars = this.trainable();
      this.velocities = vars.map((v, i) => [variableFrom(tf, tf.tensor(snap.velocities[i] ?? new Float32Array(v.size), v.shape))]);
    }
  }

  /** Disposes every variable and cached scalar. */
  dispose(): void {
    for (const t of this.scalars.values()) t.dispose();
    this.scalars.clear();
    for (const v of this.trainable()) v.dispose();
    for (const v of this.velocities) v[0]!.dispose();
    this.kernels = [];
    this.biases = [];
    this.velocities = [];
  }
}
