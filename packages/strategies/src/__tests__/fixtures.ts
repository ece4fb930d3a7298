/**
 * Shared fixtures of the strategy tests: small float64 reference networks (from `@gradmax/core/reference`) with
 * data, targets, their growth site and statistics (all rows retained, so samples.weight = 1/N).
 */
import { Matrix, Rng } from '@gradmax/core';
import type { GrowthSite, NewUnits, SiteStatistics } from '@gradmax/core';
import { ConvDenseReferenceNet, ConvReferenceNet, DenseReferenceNet, randomTensor4 } from '@gradmax/core/reference';
import type { ReferenceActivationName, ReferenceNetwork, Tensor4 } from '@gradmax/core/reference';

/** A network with fixed data, ready for growth. */
export interface Fixture {
  name: string;
  net: ReferenceNetwork<any, { data: Float64Array }>;
  x: Matrix | Tensor4;
  target: Matrix | Tensor4;
  site: GrowthSite;
  statistics: SiteStatistics;
}

function finish(name: string, net: ReferenceNetwork<any, { data: Float64Array }>, x: Matrix | Tensor4, target: Matrix | Tensor4): Fixture {
  const site = net.site(name);
  const statistics = net.statistics(x, target, { retainSamples: 100_000, seed: 1 });
  return { name, net, x, target, site, statistics };
}

function randomMatrix(rows: number, cols: number, rng: Rng, scale = 1): Matrix {
  const m = new Matrix(rows, cols);
  for (let i = 0; i < m.data.length; i++) m.data[i] = scale * rng.normal();
  return m;
}

/** Dense 6 → hidden → 5 with N = 40 examples. */
export function denseFixture(activation: ReferenceActivationName = 'relu1', hidden = 4, seed = 11): Fixture {
  const rng = new Rng(seed + 1000);
  const net = DenseReferenceNet.random({ inputs: 6, hidden, outputs: 5, activation, seed });
  const x = randomMatrix(40, 6, rng);
  const target = randomMatrix(40, 5, rng);
  return finish(`dense-${activation}`, net, x, target);
}

/** Conv 3×3 (stride 1, same) → relu1 → conv 3×3 (stride 2, same), 6×6×2 input, 3 → 2 channels, N = 3. */
export function convFixture(seed = 21): Fixture {
  const rng = new Rng(seed + 1000);
  const net = ConvReferenceNet.random({
    inChannels: 2,
    midChannels: 3,
    outChannels: 2,
    inputSize: [6, 6],
    kernel1: [3, 3],
    padding1: 'same',
    kernel2: [3, 3],
    stride2: [2, 2],
    padding2: 'same',
    activation: 'relu1',
    seed,
  });
  const x = randomTensor4(net.inputShape(3), rng);
  const target = randomTensor4(net.outputShape(3), rng);
  return finish('conv-conv', net, x, target);
}

/** Conv 3×3 (valid) → relu1 → flatten → dense 3, 4×4×2 input, 3 channels, N = 6. */
export function convDenseFixture(seed = 31): Fixture {
  const rng = new Rng(seed + 1000);
  const net = ConvDenseReferenceNet.random({ inChannels: 2, midChannels: 3, outChannels: 3, inputSize: [4, 4], kernel1: [3, 3], padding1: 'valid', activation: 'relu1', seed });
  const x = randomTensor4(net.inputShape(6), rng);
  const target = randomMatrix(6, 3, rng);
  return finish('conv-flatten-dense', net, x, target);
}

/** Every fixture of the conformance table. */
export function allFixtures(): Fixture[] {
  return [denseFixture('relu1'), denseFixture('tanh', 4, 12), convFixture(), convDenseFixture()];
}

/** max |a − b| over two equally long arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** The same units with incoming and outgoing weights multiplied by `amplitude`. */
export function scaleUnits(units: NewUnits, amplitude: number): NewUnits {
  const incoming = units.incoming.clone();
  const outgoing = units.outgoing.clone();
  for (let i = 0; i < incoming.data.length; i++) incoming.data[i]! *= amplitude;
  for (let i = 0; i < outgoing.data.length; i++) outgoing.data[i]! *= amplitude;
  return { ...units, incoming, outgoing };
}

/** A loss oracle backed by the fixture's network (what an adapter supplies). */
export function oracleOf(f: Fixture): (units: NewUnits, amplitude: number) => number {
  return (units, amplitude) => f.net.grow(scaleUnits(units, amplitude)).loss(f.x, f.target);
}
