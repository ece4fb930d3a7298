/**
 * The growth contract: what a strategy is given ({@link GrowthRequest}) and what it returns ({@link NewUnits}).
 *
 * Layout conventions (framework-neutral; adapters convert):
 * - A site is a pair of layers: the *current* layer l (which gains units) and the *next* layer l+1 (which
 *   consumes them). `units` is l's current width n1.
 * - `incoming` is `[units × fanIn]`: row j holds unit j's incoming weights.
 *   Dense: fanIn = n0 (inputs of layer l). Conv: fanIn = k1h·k1w·m0, flattened in (a_r, a_c, c_in) order.
 * - `outgoing` is `[fanOut × units]`: column j holds unit j's outgoing weights.
 *   Dense: fanOut = n2 (outputs of layer l+1). Conv: fanOut = k2h·k2w·m2, flattened in (b_r, b_c, c_out) order.
 * - The growth matrix M is `[fanOut × fanIn]` = E[g hᵀ] (dense) or the exact conv growth matrix (conv), so that
 *   the gradient of a new unit's incoming weights (with zero incoming weights) is f'(0)·Ωᵀ M.
 */
import type { Matrix } from './matrix.js';
import type { Rng } from './rng.js';

/** Per-side zero padding of a 2-D convolution, in pixels (TF `same` may be asymmetric). */
export interface Padding2D {
  top: number;
  bottom: number;
  left: number;
  right: number;
}

/**
 * Geometry of a conv→conv (or conv→flatten→dense, with the dense layer viewed as a conv whose kernel covers
 * the whole map) growth site. Dilation is not supported (refused with {@link UnsupportedError}).
 */
export interface ConvPairGeometry {
  /** Input channels m0 of the current conv. */
  inChannels: number;
  /** Output channels m1 of the current conv (= units). */
  midChannels: number;
  /** Output channels m2 of the next conv. */
  outChannels: number;
  /** Current conv kernel [k1h, k1w]. */
  kernel1: [number, number];
  /** Current conv stride [s1h, s1w]. */
  stride1: [number, number];
  /** Current conv padding, per side, as actually applied by the framework. */
  pad1: Padding2D;
  /** Next conv kernel [k2h, k2w]. */
  kernel2: [number, number];
  /** Next conv stride [s2h, s2w]. */
  stride2: [number, number];
  /** Next conv padding, per side. */
  pad2: Padding2D;
  /** Spatial size [H0, W0] of the current conv's input. */
  inputSize: [number, number];
  /** Spatial size [H1, W1] of the intermediate map (current conv output). */
  midSize: [number, number];
  /** Spatial size [H2, W2] of the next conv's output. */
  outputSize: [number, number];
}

/** Activation between the two layers of a site, as seen by the new units. */
export interface ActivationInfo {
  /** Human-readable name, e.g. `"relu1"`. */
  name: string;
  /** f(0). Incoming-zero strategies are function-preserving only when this is 0. */
  f0: number;
  /** f'(0). GradMax needs it non-zero (a ReLU whose derivative at 0 is 1). */
  df0: number;
}

/** A growable layer pair, in framework-neutral form. */
export interface GrowthSite {
  /** Site name, e.g. `"dense_1->dense_2"`. Used in errors and reports. */
  name: string;
  /** `"dense"` for Dense→Dense; `"conv"` for Conv→Conv and Conv→Flatten→Dense. */
  kind: 'dense' | 'conv';
  /** Current width n1 of layer l. */
  units: number;
  /** Length of one unit's incoming weight vector. */
  fanIn: number;
  /** Length of one unit's outgoing weight vector. */
  fanOut: number;
  /** `[units × fanIn]` current incoming weights of layer l. */
  incoming: Matrix;
  /** Current biases of layer l (length units), or undefined when l has no bias. */
  incomingBias?: Float64Array;
  /** `[fanOut × units]` current outgoing weights (the slice of layer l+1 fed by layer l). */
  outgoing: Matrix;
  /** Activation applied to layer l's output (after any identity-extendable per-channel layers). */
  activation: ActivationInfo;
  /** Conv geometry; present iff kind is `"conv"`. */
  conv?: ConvPairGeometry;
}

/**
 * Retained raw samples, so that `moment ≈ weight · Σ_s g_s h_sᵀ`.
 * Dense: one row per example. Conv: one row per (example, intermediate position): h is the input patch
 * (fanIn) and g the per-tap gradient vector (fanOut) at that position.
 */
export interface RetainedSamples {
  /** `[n × fanIn]` inputs h (patches for conv). */
  h: Matrix;
  /** `[n × fanOut]` gradients g (per-tap gradient vectors for conv). */
  g: Matrix;
  /** Scale so that `weight · gᵀh` estimates the moment (1 / number of examples). */
  weight: number;
}

/** The statistics a strategy reads. Produced by `DenseStatistics` / `ConvStatistics` `.snapshot()`. */
export interface SiteStatistics {
  /** `[fanOut × fanIn]` growth matrix M (mean over examples). */
  moment: Matrix;
  /** Number of examples accumulated. */
  count: number;
  /** Bounded sample of raw (h, g) pairs, when retention was enabled. */
  samples?: RetainedSamples;
  /**
   * True for input-only statistics: only `samples.h` holds data; `moment` is `[0 × fanIn]` and `samples.g` is
   * `[n × 0]`. Adapters produce them where per-example gradient rows are not available (e.g. channel groups of
   * `@gradmax/tfjs`); `validateRequest` gives them only to strategies whose `needs.inputsOnly` is set (NORTH) and
   * throws `MissingStatisticError` for any strategy that reads M or g.
   */
  inputsOnly?: boolean;
}

/**
 * Loss oracle supplied by an adapter: the training loss (mean over a batch the adapter chose) of the network
 * with the given new units added at the given amplitude multiplier on both sides. Used by line searches (TINY).
 */
export type LossOracle = (units: NewUnits, amplitude: number) => number;

/** Everything a strategy needs to create `count` new units at one site. */
export interface GrowthRequest {
  site: GrowthSite;
  /** Number of new units k (positive integer). */
  count: number;
  /** Statistics of this site; required when the strategy's `needs.moment` or `needs.samples` is set. */
  statistics?: SiteStatistics;
  /** Seeded generator for every random choice of this growth. */
  rng: Rng;
  /** Optional loss oracle (line searches). */
  lossOracle?: LossOracle;
}

/** A strategy's report: free-form numbers plus a few well-known fields. */
export interface GrowthReport {
  /** Strategy name. */
  strategy: string;
  /** Site name. */
  site: string;
  /** Units added. */
  count: number;
  /** Singular values of M used (GradMax family). */
  singularValues?: number[];
  /** Numerical rank of M, when computed. */
  numericalRank?: number;
  /** True when `numericalRank` is a lower bound (M too large for its full spectrum; see `FULL_SPECTRUM_LIMIT`). */
  numericalRankIsLowerBound?: boolean;
  /** Predicted Frobenius norm of the new incoming weights' gradient at the next step. */
  predictedGradientNorm?: number;
  /** Number of new units whose direction was filled at random because M's rank was below k. */
  filledAtRandom?: number;
  /** Human-readable notes (e.g. "k exceeds rank: 2 directions filled at random"). */
  notes: string[];
  /** Any further strategy-specific numbers. */
  [key: string]: unknown;
}

/** What a strategy returns: the new units' weights, in the layouts described above. */
export interface NewUnits {
  /** `[count × fanIn]` incoming weights of the new units. */
  incoming: Matrix;
  /** Biases of the new units (length count); zeros for incoming-zero strategies. */
  incomingBias: Float64Array;
  /** `[fanOut × count]` outgoing weights of the new units. */
  outgoing: Matrix;
  /**
   * Optional multiplier per *existing* unit's outgoing column (length = site.units), e.g. Net2Net divides
   * the outgoing weights of split units. Adapters must apply it. Absent means all 1.
   */
  existingOutgoingScale?: Float64Array;
  /**
   * Optional: for each new unit, the existing unit it copies (-1 for none). Adapters copy the per-channel
   * parameters of in-between layers (BatchNorm, depthwise kernels) from that unit instead of identity-extending.
   */
  sourceUnits?: Int32Array;
  /** The strategy's report. */
  report: GrowthReport;
}

/** What a strategy reads, declared up front so adapters collect only what is needed. */
export interface StatisticsNeeds {
  /** Needs the growth matrix M. */
  moment: boolean;
  /** Needs retained (h, g) samples. */
  samples: boolean;
  /**
   * With `samples`: the strategy reads only the inputs h of the retained samples (never g or the moment), so it
   * accepts input-only statistics ({@link SiteStatistics.inputsOnly}). Default false.
   */
  inputsOnly?: boolean;
  /** Can use a loss oracle (optional unless stated in the strategy docs). */
  lossOracle: boolean;
}

/** A growth strategy: statistics and weights in, new units out. */
export interface GrowthStrategy {
  /** Registry name, e.g. `"gradmax"`. */
  readonly name: string;
  /** True when adding the units leaves the network function unchanged (exactly, not approximately). */
  readonly functionPreserving: boolean;
  /** Statistics this strategy reads. */
  readonly needs: StatisticsNeeds;
  /** Creates `request.count` new units. Throws typed errors on bad input. */
  grow(request: GrowthRequest): NewUnits;
}
