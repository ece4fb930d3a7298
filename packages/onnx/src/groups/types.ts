/**
 * Channel groups: every layer and op that must change together when a layer gains output channels.
 * @packageDocumentation
 */
import type { ActivationInfo } from '@gradmax/core';
import type { NodeProto } from 'onnx-buf';
import type { WeightRef } from '../model.js';

/** The nodes of a group, by role (node labels, in graph order). */
export interface GroupMembers {
  /** Layers whose output channels are the group's channels: they get the new units' incoming weights. */
  producers: string[];
  /** Nodes the channels pass through, each extended per channel (identity channels, zero constants, gates). */
  passthrough: string[];
  /** Layers that read the group's channels: they get the new units' outgoing weights. */
  consumers: string[];
}

/** A channel group as reported by {@link findGroups} and `gradmax onnx inspect --json`. */
export interface OnnxGroup {
  /** The first producer's node label; any producer's label, or `"<producer>-><consumer>"`, also finds it. */
  name: string;
  /** Whether the group can be widened. */
  growable: boolean;
  /** Why not (absent when growable). The reason names the node that blocks growth. */
  reason?: string;
  /** Channels of the group (output channels of each producer). */
  units?: number;
  /** New units must come in multiples of this (the group count of grouped convolutions); 1 otherwise. */
  multiple?: number;
  /** Length of a unit's stacked incoming weight vector (sum over producers). */
  fanIn?: number;
  /** Length of a unit's stacked outgoing weight vector (sum over consumers). */
  fanOut?: number;
  /** Element type of the weights (`"FLOAT"`, `"FLOAT16"`, `"DOUBLE"`). */
  dataType?: string;
  /** Members by role. */
  members: GroupMembers;
  /**
   * What a new channel sees on its way from the producers to the consumers: f(0) (0 for every consumer when
   * incoming-zero strategies preserve the function) and the largest path derivative f'(0).
   */
  activation?: ActivationInfo;
  /** Per producer (stacked order) the slice `[start, end)` of the stacked incoming vector. */
  incomingBlocks?: { node: string; start: number; end: number }[];
  /** Per consumer (stacked order) the slice `[start, end)` of the stacked outgoing vector. */
  outgoingBlocks?: { node: string; start: number; end: number }[];
  /** Remarks (e.g. why GradMax statistics would be inexact, f(0) ≠ 0). */
  notes: string[];
}

/** Supported layer types. */
export type LayerType = 'Conv' | 'ConvTranspose' | 'Gemm' | 'MatMul';

/** A layer's bias (internal plan). */
export interface GroupBias {
  /** The bias tensor. */
  weight: WeightRef;
  /** The node reading it (the layer, or a MatMul's bias Add). */
  node: NodeProto;
  /** Input index of the bias. */
  input: number;
  /** Gemm beta (1 otherwise). */
  scale: number;
  /** One value broadcast to every unit (expanded to one per unit when grown). */
  broadcast: boolean;
  /** Axis of the bias tensor indexing units. */
  axis: number;
}

/** A layer read or written by a group (internal plan). */
export interface GroupLayer {
  /** The node. */
  node: NodeProto;
  /** Its op type. */
  type: LayerType;
  /** Its weight. */
  weight: WeightRef;
  /** Input index of the weight. */
  weightInput: number;
  /** Weight shape. */
  dims: number[];
  /** Axis of the weight indexing the group's channels (output channels of a producer, input channels of a consumer). */
  axis: number;
  /** Conv group count (1 for dense layers). */
  groups: number;
  /** Gemm alpha (1 otherwise). */
  scale: number;
  /** Entries per channel along `axis` (H·W… after a flatten; 1 otherwise). */
  blk: number;
  /** Entry offset of the group's channel 0 along `axis` (after a Concat; 0 otherwise). */
  offset: number;
  /** Length of one unit's weight vector in this layer (incoming for producers, outgoing for consumers). */
  length: number;
  /** Start of this layer's slice in the stacked vector. */
  start: number;
  /** Conv kernel spatial size (empty for dense layers). */
  kernel: number[];
  /** Producer: its bias, if any. */
  bias?: GroupBias;
  /** Producer: input slot where a bias can be added (Conv/Gemm/ConvTranspose). */
  biasSlot?: number;
  /** Consumer: the value it reads the channels from. */
  input?: string;
  /** Consumer: path derivative of the new channel seen here, per main producer. */
  coefficients?: number[];
  /** Consumer: value of the new channel seen here when the producers' new units output 0. */
  f0?: number;
  /** Consumer: spatial subsampling of the channels it reads relative to the producers' output (strided depthwise). */
  stride?: number[];
  /** Consumer: it reads the channels averaged over space (GlobalAveragePool). */
  mean?: boolean;
  /**
   * Consumer: per main producer, the spatial index map from the positions it reads to that producer's output positions
   * (one index array per spatial axis; a MaxPool's first-element tie routing composed with strided depthwise convs);
   * undefined entries are the identity. See `spatial-maps.ts`.
   */
  maps?: (number[][] | undefined)[];
}

/** Fill of new channels of a per-channel tensor. */
export type ParamFill = 'zero' | 'one' | 'bnvar' | 'delta' | 'prelu';

/** A per-channel tensor of a pass-through node (internal plan). */
export interface GroupParam {
  /** The node. */
  node: NodeProto;
  /** Input index. */
  input: number;
  /** The tensor. */
  weight: WeightRef;
  /** Axis indexing channels. */
  axis: number;
  /** Entries per channel. */
  blk: number;
  /** Entry offset of channel 0. */
  offset: number;
  /** Value of new channels (unless copied from a source unit). */
  fill: ParamFill;
  /** BatchNorm epsilon (fill `bnvar`). */
  eps?: number;
}

/** A value whose channel axis grows (internal plan). */
export interface GroupValue {
  /** Value name. */
  name: string;
  /** Channel axis. */
  axis: number;
  /** Entries per channel. */
  blk: number;
}

/** Internal plan of a growable group. */
export interface GroupPlan {
  /** Producers whose new rows the strategy chooses, in stacked order. */
  producers: GroupLayer[];
  /** Producers of gate channels (squeeze-excitation): new rows and biases are zero. */
  gates: GroupLayer[];
  /** Consumers, in stacked order. */
  consumers: GroupLayer[];
  /** Per-channel tensors to extend. */
  params: GroupParam[];
  /** Depthwise convs whose `group` attribute grows with the channels. */
  depthwise: NodeProto[];
  /** Constant shape/size targets whose entry `index` holds a widened size (grows by k·blk). */
  targets: { node: NodeProto; input: number; weight: WeightRef; index: number; blk: number }[];
  /** Values whose channel axis grows. */
  values: GroupValue[];
  /** Channels. */
  units: number;
  /** Multiple of new units. */
  multiple: number;
  /** Stacked fan-in. */
  fanIn: number;
  /** Stacked fan-out. */
  fanOut: number;
  /** Composite activation. */
  activation: ActivationInfo;
  /** Weight element type. */
  dataType: number;
  /** Why statistics assembled from layer-pair correlations would be inexact (ops that mix space); empty when exact. */
  inexact: string[];
}
