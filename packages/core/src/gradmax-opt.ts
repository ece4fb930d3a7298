/**
 * GradMax-Opt: the optimisation-based variant of GradMax (reference `AddGradmaxOptim`), as pure linear algebra
 * over the growth matrix M instead of a double backward pass through the network.
 */
import { InvalidArgumentError } from './errors.js';
import { outgoingMagnitude, requireNonZeroSlopeAtZero, type OutgoingScaleOptions } from './gradmax.js';
import { Matrix } from './matrix.js';
import type { GrowthRequest, GrowthStrategy, NewUnits } from './site.js';
import { validateRequest } from './validate.js';

/** Options of {@link gradmaxOpt}. */
export interface GradMaxOptOptions extends OutgoingScaleOptions {
  /** Adam steps (default 100, as the reference). */
  steps?: number;
  /**
   * Adam learning rate relative to the outgoing magnitude c (default 0.1): the absolute rate is
   * `learningRate × c`, so the result does not depend on the scale of the weights.
   */
  learningRate?: number;
  /** Adam β₁ (default 0.9). */
  beta1?: number;
  /** Adam β₂ (default 0.999). */
  beta2?: number;
  /** Adam ε (default 1e-7, the Keras default). */
  epsilon?: number;
  /**
   * Remove each unit's radial gradient component (along its own outgoing vector) before the Adam update, so
   * the ascent moves along the norm sphere (default true). The radial part is undone by the projection anyway,
   * but Adam's per-coordinate scaling would turn it into jitter that keeps the iterate from converging.
   * `false` gives the reference's plain projected Adam.
   */
  tangentGradient?: boolean;
}

/**
 * Creates the GradMax-Opt strategy: zero incoming weights, outgoing weights initialised at random with norm c
 * (like {@link gradmax}'s Random baseline), then `steps` of projected gradient ascent with Adam on the
 * (unsquared) new-weight gradient norm ‖Ωᵀ M‖_F, renormalising every unit's outgoing vector to c after each
 * step. There is no orthogonality constraint between new units, so for k > 1 units may drift towards the
 * same top direction (the closed form avoids this). Function-preserving; needs M.
 *
 * @param options - {@link GradMaxOptOptions}; defaults: steps 100, learningRate 0.1 (× c), scale 0.5, meanNorm.
 */
export function gradmaxOpt(options: GradMaxOptOptions = {}): GrowthStrategy {
  const steps = options.steps ?? 100;
  const lr = options.learningRate ?? 0.1;
  const beta1 = options.beta1 ?? 0.9;
  const beta2 = options.beta2 ?? 0.999;
  const eps = options.epsilon ?? 1e-7;
  const tangent = options.tangentGradient ?? true;
  if (!Number.isInteger(steps) || steps < 0) throw new InvalidArgumentError(`gradmaxOpt: steps must be a non-negative integer, got ${steps}`);
  if (!(lr > 0)) throw new InvalidArgumentError(`gradmaxOpt: learningRate must be positive, got ${lr}`);
  const strategy: GrowthStrategy = {
    name: 'gradmaxOpt',
    functionPreserving: true,
    needs: { moment: true, samples: false, lossOracle: false },
    grow(request: GrowthRequest): NewUnits {
      const stats = validateRequest(strategy, request)!;
      const { site, count, rng } = request;
      requireNonZeroSlopeAtZero('GradMax-Opt', site);
      const c = outgoingMagnitude(site, options);
      const M = stats.moment;
      const n = site.fanOut;
      const k = count;
      const omega = new Float64Array(n * k);
      for (let i = 0; i < omega.length; i++) omega[i] = rng.normal();
      projectColumns(omega, n, k, c);
      const initialObjective = objective(M, omega, n, k);
      const m1 = new Float64Array(n * k);
      const m2 = new Float64Array(n * k);
      const step = lr * c;
      for (let t = 1; t <= steps; t++) {
        const { value, grad } = objectiveAndGradient(M, omega, n, k);
        if (value === 0) break;
        if (tangent) projectToTangent(grad, omega, n, k);
        const bc1 = 1 - beta1 ** t;
        const bc2 = 1 - beta2 ** t;
        for (let i = 0; i < omega.length; i++) {
          const gi = grad[i]!;
          m1[i] = beta1 * m1[i]! + (1 - beta1) * gi;
          m2[i] = beta2 * m2[i]! + (1 - beta2) * gi * gi;
          omega[i]! += (step * (m1[i]! / bc1)) / (Math.sqrt(m2[i]! / bc2) + eps);
        }
        projectColumns(omega, n, k, c);
      }
      const finalObjective = objective(M, omega, n, k);
      return {
        incoming: new Matrix(k, site.fanIn),
        incomingBias: new Float64Array(k),
        outgoing: new Matrix(n, k, omega),
        report: {
          strategy: 'gradmaxOpt',
          site: site.name,
          count: k,
          predictedGradientNorm: Math.abs(site.activation.df0) * finalObjective,
          initialObjective,
          finalObjective,
          steps,
          outgoingNorm: c,
          notes: [],
        },
      };
    },
  };
  return strategy;
}

/** ‖Ωᵀ M‖_F with Ω given as row-major `[n × k]` data. */
function objective(M: Matrix, omega: Float64Array, n: number, k: number): number {
  return Math.sqrt(sumSquares(omegaTransposeM(M, omega, n, k)));
}

/** Value ‖ΩᵀM‖_F and its gradient M (ΩᵀM)ᵀ / value with respect to Ω (row-major `[n × k]`). */
function objectiveAndGradient(M: Matrix, omega: Float64Array, n: number, k: number): { value: number; grad: Float64Array } {
  const p = omegaTransposeM(M, omega, n, k); // [k × fanIn]
  const value = Math.sqrt(sumSquares(p));
  const grad = new Float64Array(n * k);
  if (value === 0) return { value, grad };
  const cols = M.cols;
  for (let i = 0; i < n; i++) {
    const mRow = i * cols;
    for (let j = 0; j < k; j++) {
      let s = 0;
      const pRow = j * cols;
      for (let q = 0; q < cols; q++) s += M.data[mRow + q]! * p[pRow + q]!;
      grad[i * k + j] = s / value;
    }
  }
  return { value, grad };
}

function omegaTransposeM(M: Matrix, omega: Float64Array, n: number, k: number): Float64Array {
  const cols = M.cols;
  const out = new Float64Array(k * cols);
  for (let i = 0; i < n; i++) {
    const mRow = i * cols;
    for (let j = 0; j < k; j++) {
      const w = omega[i * k + j]!;
      if (w === 0) continue;
      const oRow = j * cols;
      for (let q = 0; q < cols; q++) out[oRow + q]! += w * M.data[mRow + q]!;
    }
  }
  return out;
}

function sumSquares(a: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return s;
}

function projectToTangent(grad: Float64Array, omega: Float64Array, n: number, k: number): void {
  for (let j = 0; j < k; j++) {
    let dot = 0, sq = 0;
    for (let i = 0; i < n; i++) {
      dot += grad[i * k + j]! * omega[i * k + j]!;
      sq += omega[i * k + j]! ** 2;
    }
    if (sq === 0) continue;
    const f = dot / sq;
    for (let i = 0; i < n; i++) grad[i * k + j]! -= f * omega[i * k + j]!;
  }
}

function projectColumns(omega: Float64Array, n: number, k: number, c: number): void {
  for (let j = 0; j < k; j++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += omega[i * k + j]! ** 2;
    const f = s > 0 ? c / Math.sqrt(s) : 0;
    for (let i = 0; i < n; i++) omega[i * k + j]! *= f;
  }
}
