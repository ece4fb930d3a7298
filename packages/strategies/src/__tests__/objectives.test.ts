/**
 * Each strategy's own objective, checked against independent computations on the reference networks
 * (analytic backward passes of `@gradmax/core/reference`, naive loops here).
 */
import { describe, expect, it } from 'vitest';
import { Matrix, Rng } from '@gradmax/core';
import type { GrowthStrategy, NewUnits, RetainedSamples } from '@gradmax/core';
import { referenceActivation } from '@gradmax/core/reference';
import type { ReferenceActivationName } from '@gradmax/core/reference';
import { allZero, firefly, fireflyDecrease, gradmax, gradmaxOpt, north, random, randomOutgoingZero, tiny } from '@gradmax/strategies';
import { allFixtures, convDenseFixture, convFixture, denseFixture, oracleOf, type Fixture } from './fixtures.js';

const fixtures = allFixtures();

function grow(strategy: GrowthStrategy, f: Fixture, count: number, seed = 3, withOracle = false): NewUnits {
  return strategy.grow({ site: f.site, count, statistics: f.statistics, rng: new Rng(seed), ...(withOracle ? { lossOracle: oracleOf(f) } : {}) });
}

function frobenius(m: Matrix): number {
  return Math.sqrt(m.data.reduce((s, v) => s + v * v, 0));
}

function columnNorm(m: Matrix, j: number): number {
  let s = 0;
  for (let i = 0; i < m.rows; i++) s += m.get(i, j) ** 2;
  return Math.sqrt(s);
}

function mul(a: Matrix, b: Matrix): Matrix {
  const out = new Matrix(a.rows, b.cols);
  for (let i = 0; i < a.rows; i++) for (let k = 0; k < a.cols; k++) for (let j = 0; j < b.cols; j++) out.data[i * b.cols + j]! += a.get(i, k) * b.get(k, j);
  return out;
}

function samplesOf(f: Fixture): RetainedSamples {
  return f.statistics.samples!;
}

describe('GradMax has the largest new-weight gradient among function-preserving strategies (k = 1)', () => {
  // With k = 1 every incoming-zero strategy's new incoming gradient is f'(0)·Mᵀω, so at equal outgoing norm
  // GradMax (ω = c·u₁) is the maximum. The gradients are measured with the reference network's autodiff,
  // divided by the new unit's outgoing norm (random/gradmaxOpt use the same c; outgoing-zero strategies have
  // ω = 0 and an exactly zero incoming gradient). Net2Net is not compared: its copies do not start from zero
  // incoming weights, so their gradient is the source unit's, masked by its activation pattern, a different
  // objective.
  const rivals: [string, () => GrowthStrategy][] = [
    ['random', () => random()],
    ['random uniformPositive', () => random({ distribution: 'uniformPositive' })],
    ['gradmaxOpt (5 steps)', () => gradmaxOpt({ steps: 5 })],
    ['randomOutgoingZero', () => randomOutgoingZero()],
    ['allZero', () => allZero()],
    ['north', () => north()],
  ];
  it.each(fixtures)('on $name', (f) => {
    const gm = grow(gradmax(), f, 1);
    const gmGrad = frobenius(f.net.grow(gm).newIncomingGradient(f.x, f.target, 1));
    const c = columnNorm(gm.outgoing, 0);
    const gmGain = gmGrad / c;
    expect(gmGain).toBeGreaterThan(0);
    expect(gmGrad).toBeCloseTo(gm.report.predictedGradientNorm!, 10);
    for (const [label, make] of rivals) {
      for (const seed of [1, 2, 3]) {
        const units = grow(make(), f, 1, seed);
        const grad = frobenius(f.net.grow(units).newIncomingGradient(f.x, f.target, 1));
        const norm = columnNorm(units.outgoing, 0);
        const gain = norm > 0 ? grad / norm : grad;
        if (norm === 0) expect(grad, label).toBe(0);
        expect(gain, `${label} seed ${seed}`).toBeLessThanOrEqual(gmGain * (1 + 1e-12));
      }
    }
  });
});

describe('Firefly', () => {
  const reluFixtures = [denseFixture('relu1'), convFixture(), convDenseFixture()];

  it.each(reluFixtures)('its first-order objective matches the real loss change on $name', (f) => {
    const units = grow(firefly(), f, 2);
    const act = referenceActivation(f.site.activation.name as ReferenceActivationName);
    const predicted = fireflyDecrease(samplesOf(f), units.incoming, units.outgoing, act.f).reduce((s, v) => s + v, 0);
    expect(predicted).toBeCloseTo(units.report.predictedLossDecrease as number, 12);
    const actual = f.net.loss(f.x, f.target) - f.net.grow(units).loss(f.x, f.target);
    expect(predicted).toBeGreaterThan(0);
    // Second-order terms are O(ε²) relative to the first-order decrease (ε = 1e-2).
    expect(Math.abs(actual - predicted)).toBeLessThanOrEqual(1e-2 * predicted);
  });

  it.each(fixtures)('selected candidates beat the unoptimised pool on $name', (f) => {
    const act = referenceActivation(f.site.activation.name as ReferenceActivationName);
    const k = 2;
    const optimised = grow(firefly({ steps: 10 }), f, k, 5);
    const unoptimised = grow(firefly({ steps: 0 }), f, k, 5);
    const sum = (u: NewUnits) => fireflyDecrease(samplesOf(f), u.incoming, u.outgoing, act.f).reduce((s, v) => s + v, 0);
    expect(sum(optimised)).toBeGreaterThan(sum(unoptimised));
    expect(sum(unoptimised)).toBeCloseTo(optimised.report.unoptimisedPoolLossDecrease as number, 12);
    // Every candidate's objective is non-decreasing, and the selection is the top k of the optimised pool.
    const initial = optimised.report.poolInitialDecrease as number[];
    const final = optimised.report.poolFinalDecrease as number[];
    expect(initial.length).toBe(4 * k);
    final.forEach((v, i) => expect(v).toBeGreaterThanOrEqual(initial[i]!));
    const best = [...final].sort((a, b) => b - a).slice(0, k);
    expect((optimised.report.selected as number[]).map((i) => final[i])).toEqual(best);
  });
});

/**
 * TINY's objective, evaluated independently. For a new-unit linear map B (fanOut × fanIn; new units add B·h_s to
 * the next pre-activation in the linear regime) and targets v_s, the first-order loss decrease achievable by
 * scaling B optimally under the isotropic quadratic model L(z + Δz) ≈ L + Σ w gᵀΔz + ½ Σ w ‖Δz‖² is
 * D(B) = w·⟨v, HBᵀ⟩² / ‖HBᵀ‖²: a norm-free comparison (the amplitude is optimised out for every strategy).
 */
function decreaseAtBestAmplitude(h: Matrix, v: Matrix, b: Matrix, weight: number): number {
  let inner = 0;
  let sq = 0;
  for (let s = 0; s < h.rows; s++) {
    for (let o = 0; o < b.rows; o++) {
      let bh = 0;
      for (let i = 0; i < h.cols; i++) bh += b.get(o, i) * h.get(s, i);
      inner += v.get(s, o) * bh;
      sq += bh * bh;
    }
  }
  return sq > 0 ? (weight * inner * inner) / sq : 0;
}

/** −G projected off the span of the existing units' activations (least squares, normal equations). */
function bottleneckTargets(f: Fixture): Matrix {
  const { h, g } = samplesOf(f);
  const act = referenceActivation(f.site.activation.name as ReferenceActivationName);
  const n = h.rows;
  const u = f.site.units;
  const a = new Matrix(n, u);
  for (let s = 0; s < n; s++) {
    for (let j = 0; j < u; j++) {
      let z = f.site.incomingBias![j]!;
      for (let i = 0; i < h.cols; i++) z += f.site.incoming.get(j, i) * h.get(s, i);
      a.set(s, j, act.f(z));
    }
  }
  const v = new Matrix(n, g.cols);
  for (let i = 0; i < v.data.length; i++) v.data[i] = -g.data[i]!;
  // Solve (AᵀA) X = AᵀV by Gaussian elimination with partial pivoting.
  const ata = new Matrix(u, u);
  const atv = new Matrix(u, g.cols);
  for (let s = 0; s < n; s++) {
    for (let i = 0; i < u; i++) {
      for (let j = 0; j < u; j++) ata.data[i * u + j]! += a.get(s, i) * a.get(s, j);
      for (let o = 0; o < g.cols; o++) atv.data[i * g.cols + o]! += a.get(s, i) * v.get(s, o);
    }
  }
  const x = solve(ata, atv);
  const out = v.clone();
  for (let s = 0; s < n; s++) for (let o = 0; o < g.cols; o++) for (let j = 0; j < u; j++) out.data[s * g.cols + o]! -= a.get(s, j) * x.get(j, o);
  return out;
}

function solve(a0: Matrix, b0: Matrix): Matrix {
  const a = a0.clone();
  const b = b0.clone();
  const n = a.rows;
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(a.get(r, c)) > Math.abs(a.get(p, c))) p = r;
    for (let j = 0; j < n; j++) [a.data[c * n + j], a.data[p * n + j]] = [a.data[p * n + j]!, a.data[c * n + j]!];
    for (let j = 0; j < b.cols; j++) [b.data[c * b.cols + j], b.data[p * b.cols + j]] = [b.data[p * b.cols + j]!, b.data[c * b.cols + j]!];
    for (let r = c + 1; r < n; r++) {
      const m = a.get(r, c) / a.get(c, c);
      for (let j = c; j < n; j++) a.data[r * n + j]! -= m * a.get(c, j);
      for (let j = 0; j < b.cols; j++) b.data[r * b.cols + j]! -= m * b.get(c, j);
    }
  }
  const x = new Matrix(n, b.cols);
  for (let r = n - 1; r >= 0; r--) {
    for (let j = 0; j < b.cols; j++) {
      let s = b.get(r, j);
      for (let k = r + 1; k < n; k++) s -= a.get(r, k) * x.get(k, j);
      x.set(r, j, s / a.get(r, r));
    }
  }
  return x;
}

describe('TINY', () => {
  /** B of GradMax after one SGD step on the new incoming weights: Ω·(−∇_A L), with ∇_A L from autodiff. */
  function gradmaxMap(f: Fixture, k: number): Matrix {
    const gm = grow(gradmax(), f, k);
    const grad = f.net.grow(gm).newIncomingGradient(f.x, f.target, k);
    const step = new Matrix(grad.rows, grad.cols, grad.data.map((v) => -v));
    return mul(gm.outgoing, step);
  }
  /** B of TINY's units in the linear regime: f'(0)·Ω·A. */
  function tinyMap(units: NewUnits, f: Fixture): Matrix {
    const b = mul(units.outgoing, units.incoming);
    for (let i = 0; i < b.data.length; i++) b.data[i]! *= f.site.activation.df0;
    return b;
  }

  it.each(fixtures)('reduces the linearised loss at least as much as GradMax at the best amplitude on $name', (f) => {
    const { h, g, weight } = samplesOf(f);
    const v = new Matrix(g.rows, g.cols, g.data.map((x) => -x));
    const vPerp = bottleneckTargets(f);
    for (const k of [1, 2]) {
      const gm = gradmaxMap(f, k);
      // Without projection: TINY fits the whole desired update −g.
      const plain = tinyMap(grow(tiny({ projection: false }), f, k), f);
      expect(decreaseAtBestAmplitude(h, v, plain, weight)).toBeGreaterThanOrEqual(decreaseAtBestAmplitude(h, v, gm, weight) * (1 - 1e-9));
      // With projection (default): on the part the existing outgoing weights cannot express.
      const projected = tinyMap(grow(tiny(), f, k), f);
      expect(decreaseAtBestAmplitude(h, vPerp, projected, weight)).toBeGreaterThanOrEqual(decreaseAtBestAmplitude(h, vPerp, gm, weight) * (1 - 1e-9));
    }
  });

  it('with full rank and amplitude 1 it is the unconstrained least-squares fit B = VᵀH (HᵀH)⁻¹', () => {
    const f = denseFixture('relu1');
    const { h, g } = samplesOf(f);
    const k = Math.min(f.site.fanIn, f.site.fanOut);
    const b = tinyMap(grow(tiny({ projection: false, amplitude: 1 }), f, k), f);
    const hth = mul(transposed(h), h);
    const htv = mul(transposed(h), new Matrix(g.rows, g.cols, g.data.map((x) => -x)));
    const expected = transposed(solve(hth, htv));
    for (let i = 0; i < b.data.length; i++) expect(b.data[i]).toBeCloseTo(expected.data[i]!, 9);
  });

  it.each(fixtures)('the line search on the loss oracle decreases the real loss on $name', (f) => {
    const units = grow(tiny(), f, 2, 3, true);
    const l0 = f.net.loss(f.x, f.target);
    const l1 = f.net.grow(units).loss(f.x, f.target);
    expect(units.report.amplitudeSource).toBe('lineSearch');
    expect(units.report.lossAtZero).toBeCloseTo(l0, 12);
    expect(l1).toBeCloseTo(units.report.lossAtAmplitude as number, 12);
    expect(l1).toBeLessThan(l0);
    expect(units.report.lineSearchEvaluations as number).toBeLessThanOrEqual(12);
  });

  function transposed(m: Matrix): Matrix {
    const t = new Matrix(m.cols, m.rows);
    for (let i = 0; i < m.rows; i++) for (let j = 0; j < m.cols; j++) t.set(j, i, m.get(i, j));
    return t;
  }
});

describe('NORTH', () => {
  function preActivations(h: Matrix, w: Matrix, bias: Float64Array | undefined): Float64Array[] {
    const out: Float64Array[] = [];
    for (let j = 0; j < w.rows; j++) {
      const p = new Float64Array(h.rows);
      for (let s = 0; s < h.rows; s++) {
        let z = bias ? bias[j]! : 0;
        for (let i = 0; i < h.cols; i++) z += w.get(j, i) * h.get(s, i);
        p[s] = z;
      }
      out.push(p);
    }
    return out;
  }
  const cosine = (a: Float64Array, b: Float64Array) => {
    let ab = 0, aa = 0, bb = 0;
    for (let i = 0; i < a.length; i++) { ab += a[i]! * b[i]!; aa += a[i]! * a[i]!; bb += b[i]! * b[i]!; }
    return ab / Math.sqrt(aa * bb);
  };

  it.each([[denseFixture('relu1'), 2], [convFixture(), 6], [convDenseFixture(), 4]] as const)('new pre-activations are orthogonal to the existing ones and to each other on %#', (f, k) => {
    const units = grow(north(), f, k);
    expect(units.report.notOrthogonal).toBe(0);
    const h = samplesOf(f).h;
    const existing = preActivations(h, f.site.incoming, f.site.incomingBias);
    const added = preActivations(h, units.incoming, units.incomingBias);
    for (let i = 0; i < added.length; i++) {
      for (const p of existing) expect(Math.abs(cosine(added[i]!, p))).toBeLessThan(1e-9);
      for (let j = 0; j < i; j++) expect(Math.abs(cosine(added[i]!, added[j]!))).toBeLessThan(1e-9);
    }
    // Norm: scale × mean existing incoming norm.
    let mean = 0;
    for (let j = 0; j < f.site.units; j++) mean += Math.sqrt(f.site.incoming.row(j).reduce((s, x) => s + x * x, 0));
    mean /= f.site.units;
    for (let i = 0; i < k; i++) expect(Math.sqrt(units.incoming.row(i).reduce((s, x) => s + x * x, 0))).toBeCloseTo(0.5 * mean, 12);
  });

  it('reports the units it cannot make orthogonal when fanIn is exhausted', () => {
    const f = denseFixture('relu1'); // fanIn 6, 4 existing units: 2 free directions
    const units = grow(north(), f, 3);
    expect(units.report.notOrthogonal).toBe(1);
    expect(units.report.notes.join(' ')).toMatch(/not orthogonal/);
  });
});
