/**
 * What every layer class does to a channel of a group: one table (`LAYER_RULES`), one entry per class. An entry says
 * whether the layer can gain output channels (producer: how its kernel holds a unit's incoming weights), read new
 * input channels (consumer: how its kernel holds a channel's outgoing weights), pass channels through one by one
 * (pass: which per-channel parameters a new channel needs), or join several inputs (join). The group finder, the
 * widening and the scalar evaluation read only this table; a test fails when a class appears in the table without a
 * growth case.
 *
 * Kernel views: a kernel is read as `[outer, channels, inner]` (row-major), the channel axis being the one that
 * grows. Dense `[in, out]`, ConvND `[...k, in, out]` and the pointwise kernel of SeparableConv2D have output channels
 * last (producer view `[fanIn, units, 1]`, consumer view `[k…, in, out]`); Conv2DTranspose `[kh, kw, out, in]` has
 * them second to last.
 */
import { scalarActivation, type ScalarActivation } from '../activation/info.js';
import type { AnyLayer } from '../model/graph.js';
import type { BetweenRole } from '../sites/types.js';
import { convRows, denseRows, separableRows, transposeRows, type InputRows } from './input-rows.js';

/** A layer config. */
export type Config = Record<string, unknown>;

/** The axis of a kernel that holds the growing channels (the kernel is then viewed as `[outer, channels, inner]`). */
export type KernelView = (shape: number[]) => number;

/** A layer that gains output channels. */
export interface ProducerRule {
  /** Variable role holding the incoming weights (`kernel`, `pointwise_kernel`). */
  kernel: string;
  /** Config field holding the width (`units`, `filters`). */
  widthField: 'units' | 'filters';
  /** View of the kernel around its output-channel axis. */
  view: KernelView;
  /** Per-position input rows `[B, P, fanIn]` of the producer, in the column order of its incoming block (`input-rows.ts`). */
  inputRows: InputRows;
  /** Why the layer cannot be a producer, if it cannot. */
  problem?: (c: Config) => string | undefined;
}

/** A layer that reads new input channels. */
export interface ConsumerRule {
  /** Variable role holding the outgoing weights. */
  kernel: string;
  /** View of the kernel around its input-channel axis. */
  view: KernelView;
  /** Per-channel variables the consumer also holds for each input channel, with the fill of a new channel. */
  perChannel?: PerChannelParam[];
  /** Why the layer cannot be a consumer, if it cannot. */
  problem?: (c: Config) => string | undefined;
}

/** A per-channel variable of a pass-through layer (or consumer) and the value a new channel gets. */
export interface PerChannelParam {
  /** Variable role (`gamma`, `moving_variance`, `depthwise_kernel`, `alpha`). */
  role: string;
  /** View around the channel axis. */
  view: KernelView;
  /** Value of entry (outer o, inner i) of a new channel; `old` holds the variable's current values. */
  fill: (o: number, i: number, ctx: { layer: AnyLayer; shape: number[]; old: Float32Array }) => number;
}

/** How a pass-through layer treats channels. */
export type PassKind =
  /** Identity in inference, zero stays zero in training (Dropout). */
  | 'identity'
  /** Element-wise activation. */
  | 'activation'
  /** Per-channel parameters (BatchNormalization, DepthwiseConv2D, PReLU). */
  | 'parameters'
  /** Spatial, per channel, no parameters (pooling, up-sampling, padding, cropping). */
  | 'spatial'
  /** Spatial positions folded into the channel axis (Flatten) or reduced (global pooling). */
  | 'flatten'
  /** Reshape keeping the channel axis last (e.g. `[C]` → `[1, 1, C]` in squeeze-excitation). */
  | 'reshape';

/** A per-channel pass-through layer. */
export interface PassRule {
  kind: PassKind;
  /** The role the fast pair statistics give this layer between two layers, when they know it. */
  pairRole?: BetweenRole;
  /** Per-channel parameters and the fill of a new channel. */
  params?: PerChannelParam[];
  /** Element-wise activation the layer applies to a new channel (activations, depthwise conv's own activation). */
  activation?: (c: Config, layer: AnyLayer) => ScalarActivation | string;
  /** Why the layer cannot pass channels through, if it cannot. */
  problem?: (c: Config, layer: AnyLayer) => string | undefined;
}

/** How a join combines its inputs' channels. */
export type JoinKind = 'add' | 'multiply' | 'maximum' | 'minimum' | 'average' | 'concatenate';

/** Everything gradmax knows about one layer class. */
export interface LayerRule {
  /** Why channels cannot pass this layer at all (a known layer that mixes channels). */
  refusal?: string;
  /** Why tfjs cannot take gradients through this layer (statistics need them), if it cannot. */
  noGradient?: (c: Config) => string | undefined;
  producer?: ProducerRule;
  consumer?: ConsumerRule;
  pass?: PassRule;
  join?: JoinKind;
}

const lastOut: KernelView = (s) => s.length - 1;
const inSecondLast: KernelView = (s) => s.length - 2;
const transposeOut: KernelView = (s) => s.length - 2;
const transposeIn: KernelView = lastOut;
const perChannelVector: KernelView = lastOut;

function activationName(value: unknown): string {
  if (value == null) return 'linear';
  if (typeof value === 'string') return value;
  const cls = (value as { className?: string }).className;
  return typeof cls === 'string' ? cls : String(value);
}

/** The element-wise activation of a layer's `activation` config field, or a reason. */
export function ownActivation(c: Config): ScalarActivation | string {
  const name = activationName(c['activation']);
  return scalarActivation(name) ?? `activation "${name}" is not element-wise or not known to gradmax`;
}

const channelsLast = (c: Config) => ((c['dataFormat'] ?? 'channelsLast') !== 'channelsLast' ? 'only channelsLast layers are supported' : undefined);

const centreDelta = (o: number, _i: number, ctx: { shape: number[] }) => {
  const [kh, kw] = ctx.shape as [number, number];
  return o === Math.floor((kh - 1) / 2) * kw + Math.floor((kw - 1) / 2) ? 1 : 0;
};

/**
 * Why a dilated layer has no gradient. tfjs 4.22 refuses gradients of dilated convolutions; `Conv2D` and
 * `DepthwiseConv2dNative` kernels (Conv1D, Conv2D, SeparableConv2D, DepthwiseConv2D layers) get theirs from
 * `registerDilatedConvGradients`, which the statistics register, so only 3-D and transposed layers are refused.
 */
function dilated(c: Config): string | undefined {
  const d = c['dilationRate'];
  const values = Array.isArray(d) ? d.map(Number) : [Number(d ?? 1)];
  return values.some((v) => v !== 1) ? `tfjs 4.22 has no gradient for dilated 3-D or transposed convolutions (dilation ${values.join('×')})` : undefined;
}

const conv = (noGradient?: (c: Config) => string | undefined): LayerRule => ({
  producer: { kernel: 'kernel', widthField: 'filters', view: lastOut, inputRows: convRows, problem: channelsLast },
  consumer: { kernel: 'kernel', view: inSecondLast, problem: channelsLast },
  ...(noGradient ? { noGradient } : {}),
});

/** Activation-type layer classes and how each maps to an entry of the activation table (`activation/info.ts`). */
export const ACTIVATION_LAYERS: Record<string, (c: Config, layer?: AnyLayer) => ScalarActivation | string> = {
  Activation: (c) => ownActivation(c),
  ReLU: (c) => (c['maxValue'] != null ? scalarActivation('reluMax', Number(c['maxValue']))! : scalarActivation('relu')!),
  Relu1: (c) => (c['maxValue'] != null ? scalarActivation('relu1Max', Number(c['maxValue']))! : scalarActivation('relu1')!),
  LeakyReLU: (c) => scalarActivation('leakyReLU', Number(c['alpha'] ?? 0.3))!,
  ELU: (c) => scalarActivation('elu', Number(c['alpha'] ?? 1))!,
  ThresholdedReLU: (c) => scalarActivation('thresholdedReLU', Number(c['theta'] ?? 1))!,
  Softmax: () => "Softmax normalises over the channel axis: appending channels changes the existing channels' outputs",
};

/** Mean of a PReLU's existing slopes: the slope a new channel gets (so f'(0) of a new channel is that mean). */
export function preluNewSlope(old: Float32Array): number {
  let s = 0;
  for (const v of old) s += v;
  return old.length ? s / old.length : 0;
}

const spatial = (pairRole?: BetweenRole): LayerRule => ({ pass: { kind: 'spatial', problem: channelsLast, ...(pairRole ? { pairRole } : {}) } });
const flatten = (pairRole?: BetweenRole): LayerRule => ({ pass: { kind: 'flatten', problem: channelsLast, ...(pairRole ? { pairRole } : {}) } });

/** The table. */
export const LAYER_RULES: Record<string, LayerRule> = {
  Dense: {
    producer: { kernel: 'kernel', widthField: 'units', view: lastOut, inputRows: denseRows },
    consumer: { kernel: 'kernel', view: inSecondLast },
  },
  Conv1D: conv(),
  Conv2D: conv(),
  Conv3D: conv(dilated),
  Conv2DTranspose: {
    noGradient: dilated,
    producer: { kernel: 'kernel', widthField: 'filters', view: transposeOut, inputRows: transposeRows, problem: channelsLast },
    consumer: { kernel: 'kernel', view: transposeIn, problem: channelsLast },
  },
  SeparableConv2D: {
    producer: { kernel: 'pointwise_kernel', widthField: 'filters', view: lastOut, inputRows: separableRows, problem: channelsLast },
    consumer: {
      kernel: 'pointwise_kernel',
      view: inSecondLast,
      // A new input channel gets a centre-delta depthwise kernel, so its pointwise rows see the channel itself.
      perChannel: [{ role: 'depthwise_kernel', view: inSecondLast, fill: centreDelta }],
      problem: (c) => channelsLast(c) ?? (Number(c['depthMultiplier'] ?? 1) !== 1 ? 'SeparableConv2D with depthMultiplier ≠ 1 cannot read new channels' : undefined),
    },
  },
  DepthwiseConv2D: {
    pass: {
      kind: 'parameters',
      pairRole: 'depthwise',
      params: [
        { role: 'depthwise_kernel', view: inSecondLast, fill: centreDelta },
        { role: 'bias', view: perChannelVector, fill: () => 0 },
      ],
      activation: (c) => ownActivation(c),
      problem: (c) => channelsLast(c) ?? (Number(c['depthMultiplier'] ?? 1) !== 1 ? 'DepthwiseConv2D with depthMultiplier ≠ 1' : undefined),
    },
  },
  BatchNormalization: {
    pass: {
      kind: 'parameters',
      pairRole: 'batchnorm',
      params: [
        { role: 'gamma', view: perChannelVector, fill: () => 1 },
        { role: 'beta', view: perChannelVector, fill: () => 0 },
        { role: 'moving_mean', view: perChannelVector, fill: () => 0 },
        // γ = 1, β = 0, mean 0, variance 1 − ε: exactly the identity on a new channel.
        { role: 'moving_variance', view: perChannelVector, fill: (_o, _i, ctx) => 1 - Number((ctx.layer.getConfig() as Config)['epsilon'] ?? 1e-3) },
      ],
      problem: (c, layer) => {
        const axis = Number(c['axis'] ?? -1);
        const rank = (layer.inboundNodes[0]?.inputShapes as unknown as unknown[] | undefined)?.length ?? 0;
        return axis === -1 || axis === rank - 1 ? undefined : `BatchNormalization normalises axis ${axis}, not the channel axis`;
      },
    },
  },
  PReLU: {
    pass: {
      kind: 'parameters',
      params: [{ role: 'alpha', view: perChannelVector, fill: (_o, _i, ctx) => preluNewSlope(ctx.old) }],
      problem: (c) => (Array.isArray(c['sharedAxes']) && (c['sharedAxes'] as number[]).includes(-1) ? 'PReLU shares its slope over the channel axis' : undefined),
    },
  },
  Dropout: { pass: { kind: 'identity', pairRole: 'identity' } },
  SpatialDropout1D: { pass: { kind: 'identity', pairRole: 'identity' } },
  Activation: { pass: { kind: 'activation', pairRole: 'activation', activation: ACTIVATION_LAYERS['Activation'] } },
  ReLU: { pass: { kind: 'activation', pairRole: 'activation', activation: ACTIVATION_LAYERS['ReLU'] } },
  Relu1: { pass: { kind: 'activation', pairRole: 'activation', activation: ACTIVATION_LAYERS['Relu1'] } },
  LeakyReLU: { pass: { kind: 'activation', pairRole: 'activation', activation: ACTIVATION_LAYERS['LeakyReLU'] } },
  ELU: { pass: { kind: 'activation', pairRole: 'activation', activation: ACTIVATION_LAYERS['ELU'] } },
  ThresholdedReLU: { pass: { kind: 'activation', activation: ACTIVATION_LAYERS['ThresholdedReLU'] }, noGradient: () => 'tfjs 4.22 has no gradient for ThresholdedReLU (its Greater op has none)' },
  Softmax: { pass: { kind: 'activation', activation: ACTIVATION_LAYERS['Softmax'] } },
  MaxPooling1D: spatial(),
  MaxPooling2D: spatial('pool'),
  MaxPooling3D: spatial(),
  AveragePooling1D: spatial(),
  AveragePooling2D: spatial('pool'),
  AveragePooling3D: spatial(),
  UpSampling2D: spatial(),
  ZeroPadding2D: spatial(),
  Cropping2D: spatial(),
  Flatten: flatten('flatten'),
  GlobalAveragePooling1D: flatten(),
  GlobalAveragePooling2D: flatten('global-pool'),
  GlobalMaxPooling1D: flatten(),
  GlobalMaxPooling2D: flatten('global-pool'),
  Reshape: { pass: { kind: 'reshape' } },
  LayerNormalization: { refusal: "normalises over the channel axis: appending channels changes the existing channels' outputs" },
  Add: { join: 'add' },
  Multiply: { join: 'multiply' },
  Maximum: { join: 'maximum' },
  Minimum: { join: 'minimum' },
  Average: { join: 'average' },
  Concatenate: { join: 'concatenate' },
};

/** The rule of a layer class, if gradmax knows it. */
export function layerRule(className: string): LayerRule | undefined {
  return Object.prototype.hasOwnProperty.call(LAYER_RULES, className) ? LAYER_RULES[className] : undefined;
}

/** Every layer class gradmax knows, with the roles it can take in a group (`refused` for known channel-mixing layers). */
export function layerRoles(): Record<string, ('producer' | 'consumer' | 'pass' | 'join' | 'refused')[]> {
  const out: Record<string, ('producer' | 'consumer' | 'pass' | 'join' | 'refused')[]> = {};
  for (const [name, rule] of Object.entries(LAYER_RULES)) {
    out[name] = [
      ...(rule.producer ? (['producer'] as const) : []),
      ...(rule.consumer ? (['consumer'] as const) : []),
      ...(rule.pass ? (['pass'] as const) : []),
      ...(rule.join ? (['join'] as const) : []),
      ...(rule.refusal ? (['refused'] as const) : []),
    ];
  }
  return out;
}
