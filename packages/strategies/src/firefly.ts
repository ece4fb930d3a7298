/**
 * Firefly neural architecture descent (Wu, Liu, Stone, Liu, NeurIPS 2020), "grow new neurons" step.
 */
import { InvalidArgumentError, Matrix, matmulTransA, matmulTransB, meanColumnNorm, meanRowNorm, validateRequest } from '@gradmax/core';
import type { GrowthRequest, GrowthSite, GrowthStrategy, NewUnits, RetainedSamples, ScaleMethod } from '@gradmax/core';
import { siteActivation, type ActivationFunction } from './internal/activation.js';
import type { net2net } from './net2net.js';
import { baseReport, checkChoice, checkInteger, checkPositive, randomUnitVector } from './internal/util.js';

/** Options of {@link firefly}. */
export interface FireflyOptions {
  /** Number m of candidate units (default 4 × the requested count; must be ≥ the count). */
  poolSize?: number;
  /** Projected gradient steps per candidate (default 10). 0 keeps the random pool as drawn. */
  steps?: number;
  /**
   * Initial angular step (radians, default 0.5) of the normalised gradient steps on the unit spheres of the
   * candidate's incoming and outgoing directions. A step that does not improve a candidate is undone and the
   * candidate's step is halved, so every candidate's objective is non-decreasing.
   */
  stepSize?: number;
  /**
   * ε (default 1e-2): candidates' incoming weights have norm ε × mean existing incoming norm and their outgoing
   * weights norm ε × mean existing outgoing norm (`scaleMethod: 'meanNorm'`), or both norm ε (`'fixed'`).
   * Must be > 0 (with ε = 0 the candidates carry nothing).
   */
  epsilon?: number;
  /** See `epsilon` (default `'meanNorm'`). */
  scaleMethod?: ScaleMethod;
}

/**
 * First-order loss decrease of candidates on retained samples: for candidate c with incoming a_c and outgoing
 * ω_c (no bias), `decrease_c = −weight · Σ_s (ω_cᵀ g_s) · f(a_cᵀ h_s)`. Exported for tests and diagnostics.
 *
 * @param incoming - `[m × fanIn]` candidates' incoming weights.
 * @param outgoing - `[fanOut × m]` candidates' outgoing weights.
 */
export function fireflyDecrease(samples: RetainedSamples, incoming: Matrix, outgoing: Matrix, f: (x: number) => number): Float64Array {
  const { h, g, weight } = samples;
  const m = incoming.rows;
  const out = new Float64Array(m);
  for (let c = 0; c < m; c++) {
    let total = 0;
    for (let s = 0; s < h.rows; s++) {
      let pre = 0;
      for (let i = 0; i < h.cols; i++) pre += incoming.data[c * h.cols + i]! * h.data[s * h.cols + i]!;
      let proj = 0;
      for (let o = 0; o < g.cols; o++) proj += outgoing.data[o * m + c]! * g.data[s * g.cols + o]!;
      total += proj * f(pre);
    }
    out[c] = -weight * total;
  }
  return out;
}

/**
 * Creates the Firefly "grow new neurons" step of Wu, Liu, Stone and Liu, "Firefly Neural Architecture Descent:
 * a General Approach for Growing Neural Networks" (NeurIPS 2020), the real algorithm rather than the GradMax
 * repository's simplified one. It maximises the first-order loss decrease of adding a unit with incoming a and
 * outgoing ω, estimated on retained samples (h_s, g_s): adding the unit changes the next layer's pre-activation
 * by Δz_s = ω·f(aᵀh_s), so ΔL ≈ weight·Σ_s g_sᵀΔz_s and the decrease is −weight·Σ_s (ωᵀg_s)·f(aᵀh_s), with the
 * site's own activation f (ReLU family: max(x, 0)). Its gradients are −weight·Σ_s g_s f(aᵀh_s) for ω (the
 * outgoing path) and −weight·Σ_s (ωᵀg_s) f'(aᵀh_s) h_s for a (the incoming path). A pool of `poolSize`
 * (default 4k) candidates with random directions, incoming norm ε·(mean incoming norm) and outgoing norm
 * ε·(mean outgoing norm) (`epsilon` default 1e-2), is optimised for `steps` (default 10) normalised gradient
 * steps on the two spheres (`stepSize` default 0.5 rad, halved on failure), then the best k are selected
 * greedily; the first-order effect of a set is the sum of its members', so greedy selection is the top k.
 * Not function-preserving: the selected units change the output by O(ε²) (only as ε → 0 is the function
 * kept). Conv sites work the same (samples are patches and per-tap gradient vectors). This is Firefly's
 * "grow new neurons" step; its neuron-splitting branch is not included (see {@link net2net}), and nothing keeps
 * selected candidates apart (a first-order objective has no diversity term). Needs retained samples.
 *
 * @param options - {@link FireflyOptions}; defaults: poolSize 4k, steps 10, stepSize 0.5, epsilon 1e-2, meanNorm.
 */
export function firefly(options: FireflyOptions = {}): GrowthStrategy {
  const steps = checkInteger('firefly', 'steps', options.steps ?? 10, 0);
  const stepSize = checkPositive('firefly', 'stepSize', options.stepSize ?? 0.5);
  const epsilon = checkPositive('firefly', 'epsilon', options.epsilon ?? 1e-2);
  const scaleMethod = checkChoice('firefly', 'scaleMethod', options.scaleMethod ?? 'meanNorm', ['meanNorm', 'fixed']);
  if (options.poolSize !== undefined) checkInteger('firefly', 'poolSize', options.poolSize, 1);
  const strategy: GrowthStrategy = {
    name: 'firefly',
    functionPreserving: false,
    needs: { moment: false, samples: true, lossOracle: false },
    grow(request: GrowthRequest): NewUnits {
      const stats = validateRequest(strategy, request)!;
      const { site, count, rng } = request;
      const samples = stats.samples!;
      const poolSize = options.poolSize ?? 4 * count;
      if (poolSize < count) {
        throw new InvalidArgumentError(`firefly on site "${site.name}": poolSize ${poolSize} is smaller than the number of new units ${count}`, {
          site: site.name,
          poolSize,
          count,
        });
      }
      const act = siteActivation('firefly', site);
      const { rhoIn, rhoOut } = magnitudes(site, epsilon, scaleMethod);
      const pool = optimisePool(samples, act, poolSize, steps, stepSize, rhoIn, rhoOut, site, rng);
      const order = Array.from({ length: poolSize }, (_, c) => c).sort((a, b) => pool.final[b]! - pool.final[a]! || a - b);
      const selected = order.slice(0, count);
      const incoming = new Matrix(count, site.fanIn);
      const outgoing = new Matrix(site.fanOut, count);
      for (let i = 0; i < count; i++) {
        const c = selected[i]!;
        for (let j = 0; j < site.fanIn; j++) incoming.data[i * site.fanIn + j] = rhoIn * pool.a[c * site.fanIn + j]!;
        for (let o = 0; o < site.fanOut; o++) outgoing.data[o * count + i] = rhoOut * pool.w[c * site.fanOut + o]!;
      }
      const initialTop = Array.from(pool.initial).sort((x, y) => y - x).slice(0, count);
      const sum = (v: number[]) => v.reduce((s, x) => s + x, 0);
      return {
        incoming,
        incomingBias: new Float64Array(count),
        outgoing,
        report: {
          ...baseReport('firefly', site, count),
          poolSize,
          steps,
          epsilon,
          incomingNorm: rhoIn,
          outgoingNorm: rhoOut,
          selected,
          predictedLossDecrease: sum(selected.map((c) => pool.final[c]!)),
          unoptimisedPoolLossDecrease: sum(initialTop),
          poolInitialDecrease: Array.from(pool.initial),
          poolFinalDecrease: Array.from(pool.final),
        },
      };
    },
  };
  return strategy;
}

function magnitudes(site: GrowthSite, epsilon: number, method: ScaleMethod): { rhoIn: number; rhoOut: number } {
  if (method === 'fixed') return { rhoIn: epsilon, rhoOut: epsilon };
  const inNorm = meanRowNorm(site.incoming);
  const outNorm = meanColumnNorm(site.outgoing);
  if (!(inNorm > 0) || !(outNorm > 0)) {
    throw new InvalidArgumentError(`firefly on site "${site.name}": scaleMethod "meanNorm" needs non-zero existing incoming and outgoing weights; use scaleMethod "fixed"`, {
      site: site.name,
    });
  }
  return { rhoIn: epsilon * inNorm, rhoOut: epsilon * outNorm };
}

interface Pool {
  /** `[m × fanIn]` unit incoming directions, row-major. */
  a: Float64Array;
  /** `[m × fanOut]` unit outgoing directions, row-major (one row per candidate). */
  w: Float64Array;
  initial: Float64Array;
  final: Float64Array;
}

/**
 * Per-candidate objective and (optionally) Euclidean gradients with respect to the unit directions, as matrix
 * products: P = ρ_in·H Âᵀ and Q = ρ_out·G Ŵᵀ (`[n × m]`), value_c = −weight·Σ_s Q[s,c]·f(P[s,c]),
 * ∂/∂Ŵ = −weight·ρ_out·f(P)ᵀG and ∂/∂Â = −weight·ρ_in·(Q∘f'(P))ᵀH.
 */
function evaluate(
  samples: RetainedSamples,
  act: ActivationFunction,
  a: Matrix,
  w: Matrix,
  rhoIn: number,
  rhoOut: number,
  grads?: { ga: Matrix; gw: Matrix },
): Float64Array {
  const { h, g, weight } = samples;
  const m = a.rows;
  const p = matmulTransB(h, a);
  const q = matmulTransB(g, w);
  const value = new Float64Array(m);
  const fp = grads ? new Matrix(p.rows, m) : undefined;
  const r = grads ? new Matrix(p.rows, m) : undefined;
  for (let i = 0; i < p.data.length; i++) {
    const pre = rhoIn * p.data[i]!;
    const proj = rhoOut * q.data[i]!;
    const fv = act.f(pre);
    value[i % m]! -= weight * proj * fv;
    if (fp && r) {
      fp.data[i] = fv;
      r.data[i] = proj * act.df(pre);
    }
  }
  if (grads && fp && r) {
    matmulTransA(fp, g, grads.gw);
    matmulTransA(r, h, grads.ga);
    for (let i = 0; i < grads.gw.data.length; i++) grads.gw.data[i]! *= -weight * rhoOut;
    for (let i = 0; i < grads.ga.data.length; i++) grads.ga.data[i]! *= -weight * rhoIn;
  }
  return value;
}

function optimisePool(
  samples: RetainedSamples,
  act: ActivationFunction,
  m: number,
  steps: number,
  stepSize: number,
  rhoIn: number,
  rhoOut: number,
  site: GrowthSite,
  rng: GrowthRequest['rng'],
): Pool {
  const fanIn = site.fanIn;
  const fanOut = site.fanOut;
  const a = new Matrix(m, fanIn);
  const w = new Matrix(m, fanOut);
  for (let c = 0; c < m; c++) {
    randomUnitVector(a.data.subarray(c * fanIn, (c + 1) * fanIn), rng, 'normal');
    randomUnitVector(w.data.subarray(c * fanOut, (c + 1) * fanOut), rng, 'normal');
  }
  const grads = { ga: new Matrix(m, fanIn), gw: new Matrix(m, fanOut) };
  const withGrads = () => {
    grads.ga.data.fill(0);
    grads.gw.data.fill(0);
    return grads;
  };
  let current = evaluate(samples, act, a, w, rhoIn, rhoOut, steps > 0 ? withGrads() : undefined);
  const initial = current.slice();
  const eta = new Float64Array(m).fill(stepSize);
  const trialA = new Matrix(m, fanIn);
  const trialW = new Matrix(m, fanOut);
  for (let t = 0; t < steps; t++) {
    for (let c = 0; c < m; c++) {
      const ac = a.data.subarray(c * fanIn, (c + 1) * fanIn);
      const wc = w.data.subarray(c * fanOut, (c + 1) * fanOut);
      const ga = grads.ga.data.subarray(c * fanIn, (c + 1) * fanIn);
      const gw = grads.gw.data.subarray(c * fanOut, (c + 1) * fanOut);
      // Tangent components (Riemannian gradient on each unit sphere), one normalised step of angle ≈ η.
      let da = 0;
      for (let i = 0; i < fanIn; i++) da += ga[i]! * ac[i]!;
      let dw = 0;
      for (let o = 0; o < fanOut; o++) dw += gw[o]! * wc[o]!;
      let tn = 0;
      for (let i = 0; i < fanIn; i++) tn += (ga[i]! - da * ac[i]!) ** 2;
      for (let o = 0; o < fanOut; o++) tn += (gw[o]! - dw * wc[o]!) ** 2;
      tn = Math.sqrt(tn);
      const scale = tn > 0 ? eta[c]! / tn : 0;
      const ta = trialA.data.subarray(c * fanIn, (c + 1) * fanIn);
      const tw = trialW.data.subarray(c * fanOut, (c + 1) * fanOut);
      for (let i = 0; i < fanIn; i++) ta[i] = ac[i]! + scale * (ga[i]! - da * ac[i]!);
      for (let o = 0; o < fanOut; o++) tw[o] = wc[o]! + scale * (gw[o]! - dw * wc[o]!);
      normalise(ta);
      normalise(tw);
    }
    const trial = evaluate(samples, act, trialA, trialW, rhoIn, rhoOut);
    let moved = false;
    for (let c = 0; c < m; c++) {
      if (trial[c]! > current[c]!) {
        a.data.set(trialA.data.subarray(c * fanIn, (c + 1) * fanIn), c * fanIn);
        w.data.set(trialW.data.subarray(c * fanOut, (c + 1) * fanOut), c * fanOut);
        current[c] = trial[c]!;
        moved = true;
      } else {
        eta[c]! *= 0.5;
      }
    }
    if (moved && t + 1 < steps) current = evaluate(samples, act, a, w, rhoIn, rhoOut, withGrads());
  }
  return { a: a.data, w: w.data, initial, final: current };
}

function normalise(v: Float64Array): void {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  s = Math.sqrt(s);
  if (s > 0) for (let i = 0; i < v.length; i++) v[i]! /= s;
}
