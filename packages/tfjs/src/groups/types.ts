/**
 * Channel groups: sets of layers whose channels must grow together (residual stages joined by Add, Concatenate
 * blocks, squeeze-excitation gates), presented to strategies as one growth site.
 */
import type { ActivationInfo } from '@gradmax/core';

/** What a member does with the group's channels. */
export type GroupRole = 'producer' | 'pass' | 'join' | 'consumer';

/** A layer of a channel group. */
export interface GroupMember {
  /** Layer name. */
  name: string;
  /** Layer class name. */
  className: string;
  /** Producer (gains output channels), pass (per-channel, identity-extended), join (Add, Concatenate, ...) or consumer. */
  role: GroupRole;
  /**
   * Where the group's first channel sits on the channel axis this member grows: the output axis of a producer
   * (always 0) or join, the input axis of a pass-through layer or consumer. New channels go right after the group's
   * channels, at `offset + units`.
   */
  offset: number;
  /** Length of that channel axis before growth (all channels, the group's and others'). */
  channels: number;
  /** Flattened positions per channel on the member's input (after Flatten: H·W; otherwise 1). */
  positions: number;
  /** Flattened positions per channel on the member's output (Flatten: H·W; otherwise `positions`). */
  outPositions: number;
}

/** A channel group of a tfjs model: every layer that must change when the group gains units. */
export interface ChannelGroup {
  /** `"<producers joined by +>-><consumers joined by +>"`, e.g. `"stem+b->a+out"`. */
  name: string;
  /** Number of channels the group holds (the width of each producer). */
  units: number;
  /** Layers gaining output channels, in network order. */
  producers: GroupMember[];
  /** Per-channel layers the channels pass through (BatchNorm, activations, pooling, Flatten, ...). */
  passThrough: GroupMember[];
  /** Layers joining the channels with other branches (Add, Multiply, Concatenate, ...). */
  joins: GroupMember[];
  /** Layers reading the channels (gaining input channels). */
  consumers: GroupMember[];
  /**
   * Scalar behaviour of a new unit: `f0` is the largest |value| a new unit with zero incoming weights shows any
   * consumer, `df0` the largest derivative of a consumer's input with respect to one producer's new pre-activation.
   */
  activation: ActivationInfo;
}
