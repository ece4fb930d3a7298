/**
 * TINY (Verbockhaven, Rudkiewicz, Chevallier, Charpiat, TMLR 2024): new units that best fit the expressivity
 * bottleneck, the part of the desired functional update the existing weights cannot express.
 */
import { Matrix, matmul, matmulTransA, matmulTransB, meanColumnNorm, meanRowNorm, requireNonZeroSlopeAtZero, svd, symmetricEigen, validateRequest } from '@gradmax/core';
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

      // Targets V = −G, projected off the span of the existing activations A = f(H Wᵀ + b).
      const v = new Matrix(n, site.fanOut);
      for (let i = 0; i < v.data.length; i++) v.data[i] = -g.data[i]!;
      let expressibleFraction = 0;
      let activationRank = 0;
      if (projection && site.units > 0) {
        const act = siteActivation('tiny', site);
        const a = matmulTransB(h, site.incoming);
        for (let s = 0; s < n; s++) {
          for (let j = 0; j < site.units; j++) {
            const idx = s * site.units + j;
            a.data[idx] = act.f(a.data[idx]! + (site.incomingBias ? site.incomingBias[j]! : 0));
          }
        }
        const q = columnBasis(a, tolerance);
        activationRank = q.cols;
        const before = sumSquares(v.data);
        if (q.cols > 0) {
          const coeff = matmulTransA(q, v); // [r × fanOut]
          const expressed = matmul(q, coeff); // [n × fanOut]
          for (let i = 0; i < v.data.length; i++) v.data[i]! -= expressed.data[i]!;
        }
        expressibleFraction = before > 0 ? 1 - sumSquares(v.data) / before : 0;
      }

      // Whitened least squares: S = HᵀH = Q Λ Qᵀ, N = V⊥ᵀH, N S⁺ = (N Q_r Λ_r⁻¹) Q_rᵀ, K = N S⁺ Nᵀ.
      const fanIn = site.fanIn;
      const eig = symmetricEigen(matmulTransA(h, h));
      const lmax = eig.values[0] ?? 0;
      let sRank = 0;
      while (sRank < fanIn && lmax > 0 && eig.values[sRank]! > tolerance * lmax) sRank++;
      const qr = new Matrix(fanIn, sRank);
      for (let i = 0; i < fanIn; i++) for (let r = 0; r < sRank; r++) qr.data[i * sRank + r] = eig.vectors.data[i * fanIn + r]!;
      const N = matmulTransA(v, h); // [fanOut × fanIn]
      const nq = matmul(N, qr); // [fanOut × r]
      const nqScaled = nq.clone();
      for (let o = 0; o < nq.rows; o++) for (let r = 0; r < sRank; r++) nqScaled.data[o * sRank + r]! /= eig.values[r]!;
      const NS = matmulTransB(nqScaled, qr); // N S⁺, [fanOut × fanIn]
      const K = matmulTransB(nqScaled, nq); // [fanOut × fanOut]
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
          activationRank,
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
  const hA = matmulTransB(samples.h, incoming); // [n × k]
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

/**
 * Orthonormal basis (columns) of the column space of `a`: left singular vectors whose singular value exceeds
 * `tolerance` relative to the largest (one-sided Jacobi SVD, accurate for rank-deficient input).
 */
function columnBasis(a: Matrix, tolerance: number): Matrix {
  const res = svd(a);
  const s1 = res.s[0] ?? 0;
  let r = 0;
  while (r < res.s.length && s1 > 0 && res.s[r]! > tolerance * s1) r++;
  const q = new Matrix(a.rows, r);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < r; j++) q.data[i * r + j] = res.u.data[i * res.u.cols + j]!;
  return q;
}
