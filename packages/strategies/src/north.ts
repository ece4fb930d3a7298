/**
 * NORTH-Pre (Maile, Rachelson, Luga, Wilson, AutoML-Conf 2022): new units whose pre-activations are orthogonal
 * to the existing ones.
 */
import { Matrix, matmulTransA, matmulTransB, svd, validateRequest } from '@gradmax/core';
import type { GrowthRequest, GrowthStrategy, NewUnits } from '@gradmax/core';
import { baseReport, checkChoice, checkPositive, incomingMagnitude, norm2, randomUnitVector, type IncomingScaleOptions } from './internal/util.js';

/** Options of {@link north}. */
export interface NorthOptions extends IncomingScaleOptions {
  /**
   * Relative tolerance (default 1e-9) below which a direction counts as already spanned (rank decisions in the
   * SVD of the existing constraints and the Gram–Schmidt steps of the new ones).
   */
  tolerance?: number;
}

/**
 * Creates NORTH-Pre from Maile, Rachelson, Luga and Wilson, "When, where, and how to add new neurons to ANNs"
 * (AutoML-Conf 2022, arXiv 2202.08539). It optimises orthogonality: the new units' pre-activations on the
 * retained samples H (`[n × fanIn]`, patches for conv sites) are orthogonal to the existing units'
 * pre-activations P = H·Wᵀ + 1·bᵀ and to each other. For each new unit a random Gaussian candidate r is moved
 * to the nearest weight vector (Euclidean, least squares in weight space) satisfying pᵀ(H a) = 0 for every
 * earlier pre-activation p, i.e. r is projected onto the null space of the rows pᵀH; the result is normalised
 * to `scale` × mean existing incoming norm (`scaleMethod: 'meanNorm'`, default) or `scale` (`'fixed'`), with
 * `scale` default 0.5. When the constraints leave no free direction (fanIn too small) the remaining units keep
 * their random direction and the report says so. Outgoing weights and biases are zero, so it is
 * function-preserving for any activation. Reads only the inputs h of the retained samples (`needs.inputsOnly`), so
 * it also takes input-only statistics (channel groups of `@gradmax/tfjs`).
 *
 * @param options - {@link NorthOptions}; defaults: scale 0.5, scaleMethod `meanNorm`, tolerance 1e-9.
 */
export function north(options: NorthOptions = {}): GrowthStrategy {
  const tolerance = checkPositive('north', 'tolerance', options.tolerance ?? 1e-9);
  checkPositive('north', 'scale', options.scale ?? 0.5);
  checkChoice('north', 'scaleMethod', options.scaleMethod ?? 'meanNorm', ['meanNorm', 'fixed']);
  const strategy: GrowthStrategy = {
    name: 'north',
    functionPreserving: true,
    needs: { moment: false, samples: true, inputsOnly: true, lossOracle: false },
    grow(request: GrowthRequest): NewUnits {
      const stats = validateRequest(strategy, request)!;
      const { site, count, rng } = request;
      const magnitude = incomingMagnitude('north', site, options);
      const h = stats.samples!.h;
      const n = h.rows;
      const fanIn = site.fanIn;
      // Existing pre-activations P = H Wᵀ + 1 bᵀ, constraint rows C = Pᵀ H; basis of row(C) by SVD.
      const pre0 = matmulTransB(h, site.incoming);
      if (site.incomingBias) for (let s = 0; s < n; s++) for (let j = 0; j < site.units; j++) pre0.data[s * site.units + j]! += site.incomingBias[j]!;
      const basis = site.units > 0 ? rowBasis(matmulTransA(pre0, h), tolerance) : [];
      const addConstraint = (pre: Float64Array) => {
        // Constraint row pᵀH (length fanIn).
        const row = new Float64Array(fanIn);
        for (let s = 0; s < n; s++) {
          const ps = pre[s]!;
          if (ps !== 0) for (let i = 0; i < fanIn; i++) row[i]! += ps * h.data[s * fanIn + i]!;
        }
        addToBasis(basis, row, tolerance);
      };
      const incoming = new Matrix(count, fanIn);
      let notOrthogonal = 0;
      for (let k = 0; k < count; k++) {
        const r = randomUnitVector(new Float64Array(fanIn), rng, 'normal');
        const a = r.slice();
        projectOut(basis, a);
        projectOut(basis, a);
        let norm = norm2(a);
        if (norm <= tolerance * 1e3) {
          notOrthogonal++;
          a.set(r);
          norm = 1;
        }
        for (let i = 0; i < fanIn; i++) incoming.data[k * fanIn + i] = (magnitude * a[i]!) / norm;
        const pre = new Float64Array(n);
        for (let s = 0; s < n; s++) {
          let v = 0;
          for (let i = 0; i < fanIn; i++) v += a[i]! * h.data[s * fanIn + i]!;
          pre[s] = v;
        }
        addConstraint(pre);
      }
      const notes: string[] = [];
      if (notOrthogonal > 0) {
        notes.push(
          `the pre-activation constraints leave no free direction in the ${fanIn}-dimensional weight space for ${notOrthogonal} of ${count} new unit(s): those keep a random direction and are not orthogonal`,
        );
      }
      return {
        incoming,
        incomingBias: new Float64Array(count),
        outgoing: new Matrix(site.fanOut, count),
        report: { ...baseReport('north', site, count, notes), incomingNorm: magnitude, notOrthogonal, constraintRank: basis.length },
      };
    },
  };
  return strategy;
}

/** Orthonormal basis (as vectors) of the row space of `c`: right singular vectors with σ > tolerance·σ₁. */
function rowBasis(c: Matrix, tolerance: number): Float64Array[] {
  const res = svd(c);
  const s1 = res.s[0] ?? 0;
  const out: Float64Array[] = [];
  for (let r = 0; r < res.s.length && s1 > 0 && res.s[r]! > tolerance * s1; r++) out.push(res.v.col(r));
  return out;
}

/** Removes from `v` its components along the orthonormal vectors of `basis`. */
function projectOut(basis: readonly Float64Array[], v: Float64Array): void {
  for (const q of basis) {
    let d = 0;
    for (let i = 0; i < v.length; i++) d += q[i]! * v[i]!;
    if (d !== 0) for (let i = 0; i < v.length; i++) v[i]! -= d * q[i]!;
  }
}

/** Gram–Schmidt (twice) step: appends the normalised new direction of `row` unless it is already spanned. */
function addToBasis(basis: Float64Array[], row: Float64Array, tolerance: number): void {
  const original = norm2(row);
  if (!(original > 0)) return;
  const v = row.slice();
  projectOut(basis, v);
  projectOut(basis, v);
  const rest = norm2(v);
  if (rest <= tolerance * original) return;
  for (let i = 0; i < v.length; i++) v[i]! /= rest;
  basis.push(v);
}
