/**
 * TINY (Verbockhaven, Rudkiewicz, Chevallier, Charpiat, TMLR 2024): new units that best fit the expressivity
 * bottleneck, the part of the desired functional update the existing weights cannot express.
 */
import { Matrix, matmul, matmulTransA, meanColumnNorm, meanRowNorm, requireNonZeroSlopeAtZero, symmetricEigen, validateRequest } from '@gradmax/core';
import type { GrowthRequest, GrowthStrategy, LossOracle, NewUnits, RetainedSamples } from '@gradmax/core';
import { siteActivation } from './internal/activation.js';
import { baseReport, checkInteger, checkPositive } from './internal/util.js';

/** Options of {@link tiny}. */
export interface TinyOptions {
  /**
   * Project out what a change of the existing units' outgoing weights could express (default true, TINY's
   * expressivity bottleneck). With false the new units fit the whole desired update −g.
   */
  projection?: boolean;
  /** Amplitude γ used when the request has no loss oracle (default 0.5; see {@link tiny}). */
  amplitude?: number;
  /** Maximum loss-oracle evaluations of the line search (default 12, at least 3). */
  maxEvaluations?: number;
  /** First amplitude the line search tries (default 1). */
  initialAmplitude?: number;
  /** Eigenvalues of S below `tolerance × λ_max` count as zero (pseudo-inverse), and likewise for the fit (default 1e-10). */
  tolerance?: number;
}

/**
 * Creates TINY from Verbockhaven, Rudkiewicz, Chevallier and Charpiat, "Growing Tiny Networks: Spotting
 * Expressivity Bottlenecks and Fixing Them Optimally" (TMLR 2024). Not function-preserving: both incoming and
 * outgoing weights are non-zero.
 *
 * Derivation (retained samples s with input h_s, per-example gradient g_s of the next layer's pre-activation
 * z, and existing activations a_s = f(W h_s + b)): the desired functional update is v_s = −g_s. Changing the
 * existing outgoing weights by ΔΩ gives ΔΩ·a_s, so with `projection` (default) the targets become the
 * least-squares residual v⊥ = (I − A(AᵀA)⁺Aᵀ)V, what the existing weights cannot express. To first order
 * (f(x) ≈ f(0) + f'(0)x) k new units add Σᵢ ωᵢ f'(0) αᵢᵀh_s = B h_s with B of rank k; TINY minimises
 * ‖V⊥ − H Bᵀ‖_F. With S = HᵀH and N = V⊥ᵀH this is ‖B S^{1/2} − N S^{-1/2}‖² + const, whose rank-k minimiser
 * comes from the SVD of the whitened N S^{-1/2} = Σ σᵢ uᵢ vᵢᵀ: ωᵢ ∝ √σᵢ uᵢ, αᵢ ∝ √σᵢ S^{-1/2} vᵢ (computed as
 * S⁺Nᵀuᵢ/√σᵢ from the eigenvectors uᵢ of N S⁺ Nᵀ). Each pair is rebalanced so ‖ωᵢ‖ and ‖αᵢ‖ are in the ratio of
 * the existing mean outgoing and incoming norms (the product is unchanged), and divided by f'(0). Units beyond
 * the rank of the fit are zero (reported). Amplitude: γ multiplies both sides (the contribution scales as γ²).
 * With `request.lossOracle` γ comes from a bracketing + golden-section line search on the oracle (at most
 * `maxEvaluations`, default 12; γ = 0 when nothing decreases the loss); without one γ = `amplitude` (default
 * 0.5, i.e. a quarter of the least-squares fit of one functional gradient step). Needs retained samples.
 *
 * @param options - {@link TinyOptions}; defaults: projection true, amplitude 0.5, maxEvaluations 12, initialAmplitude 1, tolerance 1e-10.
 */
export function tiny(options: TinyOptions = {}): GrowthStrategy {
  const projection = options.projection ?? true;
  const defaultAmplitude = checkPositive('tiny', 'amplitude', options.amplitude ?? 0.5, true);
  const maxEvaluations = checkInteger('tiny', 'maxEvaluations', options.maxEvaluations ?? 12, 3);
  const initialAmplitude = checkPositive('tiny', 'initialAmplitude', options.initialAmplitude ?? 1);
  const tolerance = checkPositive('tiny', 'tolerance', options.tolerance ?? 1e-10);
  const strategy: GrowthStrategy = {
    name: 'tiny',
    functionPreserving: false,
    needs: { moment: false, samples: true, lossOracle: true },
    grow(request: GrowthRequest): NewUnits {
      const stats = validateRequest(strategy, request)!;
      const { site, count } = request;
      requireNonZeroSlopeAtZero('TINY', site);
      const samples = stats.samples!;
      const { h, g } = samples;
      const n = h.rows;
      const notes: string[] = [];

      // Targets V = −G, projected off the span of the existing activations.
      const v = new Matrix(n, site.fanOut);
      for (let i = 0; i < v.data.length; i++) v.data[i] = -g.data[i]!;
      let expressibleFraction = 0;
      if (projection && site.units > 0) {
        const act = siteActivation('tiny', site);
        const pre = matmul(h, transposeOf(site.incoming));
        const basis: Float64Array[] = [];
        for (let j = 0; j < site.units; j++) {
          const col = new Float64Array(n);
          const b = site.incomingBias ? site.incomingBias[j]! : 0;
          for (let s = 0; s < n; s++) col[s] = act.f(pre.data[s * site.units + j]! + b);
          gramSchmidtAppend(basis, col, tolerance);
        }
        const before = sumSquares(v.data);
        for (const q of basis) {
          for (let o = 0; o < site.fanOut; o++) {
            let d = 0;
            for (let s = 0; s < n; s++) d += q[s]! * v.data[s * site.fanOut + o]!;
            if (d !== 0) for (let s = 0; s < n; s++) v.data[s * site.fanOut + o]! -= d * q[s]!;
          }
        }
        expressibleFraction = before > 0 ? 1 - sumSquares(v.data) / before : 0;
      }

      // Whitened least squares: S = HᵀH, N = V⊥ᵀH, K = N S⁺ Nᵀ.
      const S = matmulTransA(h, h);
      const eig = symmetricEigen(S);
      const lmax = eig.values[0] ?? 0;
      const fanIn = site.fanIn;
      const sPinv = new Matrix(fanIn, fanIn);
      let sRank = 0;
      for (let r = 0; r < fanIn; r++) {
        const lr = eig.values[r]!;
        if (!(lmax > 0) || lr <= tolerance * lmax) continue;
        sRank++;
        const inv = 1 / lr;
        for (let i = 0; i < fanIn; i++) {
          const qi = eig.vectors.data[i * fanIn + r]! * inv;
          if (qi === 0) continue;
          for (let j = 0; j < fanIn; j++) sPinv.data[i * fanIn + j]! += qi * eig.vectors.data[j * fanIn + r]!;
        }
      }
      const N = matmulTransA(v, h); // [fanOut × fanIn]
      const NS = matmul(N, sPinv); // N S⁺
      const K = matmul(NS, transposeOf(N)); // [fanOut × fanOut]
      symmetrise(K);
      const kEig = symmetricEigen(K);
      const s1sq = Math.max(kEig.values[0] ?? 0, 0);
      const df0 = site.activation.df0;
      const rhoIn = meanRowNorm(site.incoming);
      const rhoOut = meanColumnNorm(site.outgoing);
      const incoming = new Matrix(count, fanIn);
      const outgoing = new Matrix(site.fanOut, count);
      const singularValues: number[] = [];
      let zeroUnits = 0;
      for (let i = 0; i < count; i++) {
        const lam = i < site.fanOut ? kEig.values[i]! : 0;
        if (!(s1sq > 0) || lam <= tolerance * s1sq) {
          zeroUnits++;
          singularValues.push(0);
          continue;
        }
        const sigma = Math.sqrt(lam);
        singularValues.push(sigma);
        const u = kEig.vectors.col(i);
        // α = S⁺Nᵀu / √σ = (N S⁺)ᵀ u / √σ ; ω = √σ u.
        const alpha = new Float64Array(fanIn);
        for (let o = 0; o < site.fanOut; o++) {
          const uo = u[o]!;
          if (uo !== 0) for (let j = 0; j < fanIn; j++) alpha[j]! += uo * NS.data[o * fanIn + j]!;
        }
        let aNorm = 0;
        for (let j = 0; j < fanIn; j++) aNorm += alpha[j]! * alpha[j]!;
        aNorm = Math.sqrt(aNorm) / Math.sqrt(sigma);
        const wNorm = Math.sqrt(sigma);
        // Rebalance: ‖ω‖/ρ_out = ‖α‖/ρ_in (λ multiplies ω, 1/λ multiplies α); fold 1/f'(0) into α.
        const lambda = rhoIn > 0 && rhoOut > 0 && aNorm > 0 ? Math.sqrt((aNorm / rhoIn) * rhoOut / wNorm) : 1;
        for (let j = 0; j < fanIn; j++) incoming.data[i * fanIn + j] = alpha[j]! / Math.sqrt(sigma) / lambda / df0;
        for (let o = 0; o < site.fanOut; o++) outgoing.data[o * count + i] = Math.sqrt(sigma) * u[o]! * lambda;
      }
      if (zeroUnits > 0) notes.push(`${count} units requested but the whitened fit has rank ${count - zeroUnits}: ${zeroUnits} unit(s) are zero`);

      const raw: NewUnits = { incoming, incomingBias: new Float64Array(count), outgoing, report: baseReport('tiny', site, count) };
      let amplitude = defaultAmplitude;
      let search: LineSearchResult | undefined;
      if (request.lossOracle) {
        search = lineSearch(request.lossOracle, raw, initialAmplitude, maxEvaluations);
        amplitude = search.amplitude;
        if (amplitude === 0) notes.push('line search found no amplitude that decreases the oracle loss: units added at amplitude 0');
      }
      for (let i = 0; i < incoming.data.length; i++) incoming.data[i]! *= amplitude;
      for (let i = 0; i < outgoing.data.length; i++) outgoing.data[i]! *= amplitude;
      return {
        incoming,
        incomingBias: new Float64Array(count),
        outgoing,
        report: {
          ...baseReport('tiny', site, count, notes),
          singularValues,
          numericalRank: count - zeroUnits,
          covarianceRank: sRank,
          projection,
          expressibleFraction,
          amplitude,
          amplitudeSource: search ? 'lineSearch' : 'default',
          ...(search ? { lineSearchEvaluations: search.evaluations, lossAtZero: search.lossAtZero, lossAtAmplitude: search.loss } : {}),
          predictedLossDecrease: linearisedDecrease(samples, incoming, outgoing, df0),
        },
      };
    },
  };
  return strategy;
}

/** First-order loss decrease −weight·Σ_s g_sᵀ (f'(0)·Ω A) h_s of new units in the linear regime. */
function linearisedDecrease(samples: RetainedSamples, incoming: Matrix, outgoing: Matrix, df0: number): number {
  const hA = matmul(samples.h, transposeOf(incoming)); // [n × k]
  const gO = matmul(samples.g, outgoing); // [n × k]
  let total = 0;
  for (let i = 0; i < hA.data.length; i++) total += hA.data[i]! * gO.data[i]!;
  return -samples.weight * df0 * total;
}

/** Result of the amplitude line search. */
interface LineSearchResult {
  amplitude: number;
  loss: number;
  lossAtZero: number;
  evaluations: number;
}

/**
 * Minimises φ(γ) = oracle(units, γ) over γ ≥ 0 with at most `maxEvaluations` calls: φ(0), then expand (×2)
 * or shrink (÷2) from `initial` until a bracket is found, then golden-section search inside it. Returns the
 * best evaluated γ (0 when nothing beat φ(0)). Non-finite losses count as +∞.
 */
function lineSearch(oracle: LossOracle, units: NewUnits, initial: number, maxEvaluations: number): LineSearchResult {
  let evaluations = 0;
  let best = { amplitude: 0, loss: Infinity };
  const phi = (gamma: number): number => {
    evaluations++;
    const raw = oracle(units, gamma);
    const value = Number.isFinite(raw) ? raw : Infinity;
    if (value < best.loss) best = { amplitude: gamma, loss: value };
    return value;
  };
  const f0 = phi(0);
  let lo = 0;
  let mid = initial;
  let fMid = phi(mid);
  let hi: number;
  if (fMid < f0) {
    hi = 2 * mid;
    let fHi = phi(hi);
    while (fHi < fMid && evaluations < maxEvaluations) {
      lo = mid;
      mid = hi;
      fMid = fHi;
      hi = 2 * hi;
      fHi = phi(hi);
    }
  } else {
    hi = mid;
    mid = mid / 2;
    fMid = phi(mid);
    while (fMid >= f0 && evaluations < maxEvaluations) {
      hi = mid;
      mid = mid / 2;
      fMid = phi(mid);
    }
    if (fMid >= f0) return { amplitude: 0, loss: f0, lossAtZero: f0, evaluations };
  }
  // Golden-section search on [lo, hi].
  const ratio = (Math.sqrt(5) - 1) / 2;
  let a = lo;
  let b = hi;
  let x1 = b - ratio * (b - a);
  let x2 = a + ratio * (b - a);
  let f1 = evaluations < maxEvaluations ? phi(x1) : Infinity;
  let f2 = evaluations < maxEvaluations ? phi(x2) : Infinity;
  while (evaluations < maxEvaluations) {
    if (f1 < f2) {
      b = x2;
      x2 = x1;
      f2 = f1;
      x1 = b - ratio * (b - a);
      f1 = phi(x1);
    } else {
      a = x1;
      x1 = x2;
      f1 = f2;
      x2 = a + ratio * (b - a);
      f2 = phi(x2);
    }
  }
  return { amplitude: best.amplitude, loss: best.loss, lossAtZero: f0, evaluations };
}

function transposeOf(m: Matrix): Matrix {
  const t = new Matrix(m.cols, m.rows);
  for (let i = 0; i < m.rows; i++) for (let j = 0; j < m.cols; j++) t.data[j * m.rows + i] = m.data[i * m.cols + j]!;
  return t;
}

function symmetrise(m: Matrix): void {
  const n = m.rows;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const avg = 0.5 * (m.data[i * n + j]! + m.data[j * n + i]!);
      m.data[i * n + j] = avg;
      m.data[j * n + i] = avg;
    }
  }
}

function sumSquares(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return s;
}

/** Modified Gram–Schmidt (twice) append with a relative tolerance. */
function gramSchmidtAppend(basis: Float64Array[], col: Float64Array, tolerance: number): void {
  const original = Math.sqrt(sumSquares(col));
  if (!(original > 0)) return;
  const v = col.slice();
  for (let pass = 0; pass < 2; pass++) {
    for (const q of basis) {
      let d = 0;
      for (let i = 0; i < v.length; i++) d += q[i]! * v[i]!;
      for (let i = 0; i < v.length; i++) v[i]! -= d * q[i]!;
    }
  }
  const rest = Math.sqrt(sumSquares(v));
  if (rest <= Math.max(tolerance, 1e-12) * 1e3 * original) return;
  for (let i = 0; i < v.length; i++) v[i]! /= rest;
  basis.push(v);
}
