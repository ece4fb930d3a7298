/**
 * The catalogue of every strategy `@gradmax/strategies` offers, for docs, READMEs and registration.
 */
import { gradmax, gradmaxOpt, registerStrategy } from '@gradmax/core';
import type { StatisticsNeeds, StrategyFactory } from '@gradmax/core';
import { allZero } from './all-zero.js';
import { firefly } from './firefly.js';
import { net2net } from './net2net.js';
import { north } from './north.js';
import { randomOutgoingZero } from './random-outgoing-zero.js';
import { random } from './random.js';
import { tiny } from './tiny.js';

/** One row of {@link strategyCatalog}. */
export interface StrategyCatalogEntry {
  /** Registry name (also the factory's name). */
  readonly name: string;
  /** The factory: `factory(options?) → GrowthStrategy`. */
  readonly factory: StrategyFactory<any>;
  /** Paper reference. */
  readonly paper: string;
  /** What the strategy optimises when it chooses the new weights. */
  readonly optimises: string;
  /** Whether the strategy preserves the network function with its default options. */
  readonly functionPreserving: boolean;
  /** When function preservation holds (or why not). */
  readonly functionPreservingNote: string;
  /** Statistics read with default options. */
  readonly needs: StatisticsNeeds;
}

const none: StatisticsNeeds = { moment: false, samples: false, lossOracle: false };

/** Every strategy, in the order the docs list them. */
export const strategyCatalog: readonly StrategyCatalogEntry[] = Object.freeze([
  {
    name: 'gradmax',
    factory: gradmax,
    paper: 'Evci et al., "GradMax: Growing Neural Networks using Gradient Information", ICLR 2022',
    optimises: "Closed form: maximises the new incoming weights' gradient norm ‖Ωᵀ M‖ under a per-unit outgoing norm (top-k left singular vectors of M)",
    functionPreserving: true,
    functionPreservingNote: 'yes when f(0) = 0 (zero incoming weights and biases)',
    needs: { moment: true, samples: false, lossOracle: false },
  },
  {
    name: 'gradmaxOpt',
    factory: gradmaxOpt,
    paper: 'Evci et al., ICLR 2022 (reference AddGradmaxOptim)',
    optimises: "Same objective as GradMax by projected Adam steps on the (unsquared) new-weight gradient norm",
    functionPreserving: true,
    functionPreservingNote: 'yes when f(0) = 0 (zero incoming weights and biases)',
    needs: { moment: true, samples: false, lossOracle: false },
  },
  {
    name: 'random',
    factory: random,
    paper: 'Evci et al., ICLR 2022 (Random baseline, AddRandom)',
    optimises: 'nothing: zero incoming, random outgoing of norm c (as GradMax)',
    functionPreserving: true,
    functionPreservingNote: 'yes when f(0) = 0 (zero incoming weights and biases)',
    needs: none,
  },
  {
    name: 'randomOutgoingZero',
    factory: randomOutgoingZero,
    paper: 'Evci et al., ICLR 2022 (AddRandom with is_outgoing_zero)',
    optimises: 'nothing: random incoming of norm scale × mean incoming norm, zero outgoing',
    functionPreserving: true,
    functionPreservingNote: 'yes, for any activation (zero outgoing weights)',
    needs: none,
  },
  {
    name: 'allZero',
    factory: allZero,
    paper: 'Evci et al., ICLR 2022 (notebook random_zeros, AddRandom.is_all_zero)',
    optimises: 'nothing: all new weights zero, new bias 1 (needs a layer with a bias)',
    functionPreserving: true,
    functionPreservingNote: 'yes, for any activation (zero outgoing weights)',
    needs: none,
  },
  {
    name: 'firefly',
    factory: firefly,
    paper: 'Wu, Liu, Stone, Liu, "Firefly Neural Architecture Descent", NeurIPS 2020',
    optimises: 'first-order loss decrease of ε-scaled candidates on retained samples; a pool optimised by gradient steps, best k selected greedily',
    functionPreserving: false,
    functionPreservingNote: 'no: the output changes by O(ε²); preserved only as ε → 0',
    needs: { moment: false, samples: true, lossOracle: false },
  },
  {
    name: 'net2net',
    factory: net2net,
    paper: 'Chen, Goodfellow, Shlens, "Net2Net: Accelerating Learning via Knowledge Transfer", ICLR 2016',
    optimises: 'nothing: splits existing units (copies incoming weights, divides outgoing weights)',
    functionPreserving: true,
    functionPreservingNote: 'yes iff noise = 0 (default), for any activation; adapters copy in-between per-channel layers from sourceUnits',
    needs: none,
  },
  {
    name: 'north',
    factory: north,
    paper: 'Maile, Rachelson, Luga, Wilson, "When, where, and how to add new neurons to ANNs", AutoML-Conf 2022 (NORTH-Pre)',
    optimises: "orthogonality of the new units' pre-activations on retained samples to the existing ones (zero outgoing)",
    functionPreserving: true,
    functionPreservingNote: 'yes, for any activation (zero outgoing weights)',
    needs: { moment: false, samples: true, inputsOnly: true, lossOracle: false },
  },
  {
    name: 'tiny',
    factory: tiny,
    paper: 'Verbockhaven, Rudkiewicz, Chevallier, Charpiat, "Growing Tiny Networks: Spotting Expressivity Bottlenecks and Fixing Them Optimally", TMLR 2024',
    optimises: 'least-squares fit (whitened by the input covariance) of the desired update −g the existing outgoing weights cannot express; amplitude by line search on a loss oracle',
    functionPreserving: false,
    functionPreservingNote: 'no: both incoming and outgoing weights are non-zero',
    needs: { moment: false, samples: true, lossOracle: true },
  },
]);

/**
 * Registers every strategy of {@link strategyCatalog} (gradmax, gradmaxOpt, random, randomOutgoingZero, allZero,
 * firefly, net2net, north, tiny) in the core registry under its name. Idempotent. The side-effect import
 * `import '@gradmax/strategies/register'` does the same.
 */
export function registerAllStrategies(): void {
  for (const entry of strategyCatalog) registerStrategy(entry.name, entry.factory);
}
