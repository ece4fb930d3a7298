/**
 * Growth sites of a tfjs model: which layer pairs can gain units without changing the network function.
 */
import type { ActivationInfo } from '@gradmax/core';
import type { ScalarActivation } from '../activation/info.js';
import type { ChannelGroup } from '../groups/types.js';

/** How a layer between the two layers of a site treats a new channel. */
export type BetweenRole =
  /** Dropout-like: identity in inference mode, zero stays zero in training mode. */
  | 'identity'
  /** Element-wise activation layer. */
  | 'activation'
  /** BatchNormalization: new channel γ=1, β=0, moving mean 0, moving variance 1−ε (exact identity). */
  | 'batchnorm'
  /** DepthwiseConv2D (depth multiplier 1): new channel gets a centre-delta kernel and zero bias. */
  | 'depthwise'
  /** Max or average 2-D pooling (per channel). */
  | 'pool'
  /** Flatten between the current conv and the next dense layer (HWC order: a channel maps to H·W rows). */
  | 'flatten'
  /** GlobalAveragePooling2D / GlobalMaxPooling2D before the next dense layer (a channel maps to one row). */
  | 'global-pool';

/** A layer between the current and the next layer of a site. */
export interface BetweenLayer {
  /** Layer name. */
  name: string;
  /** Layer class name. */
  className: string;
  /** Role for new channels. */
  role: BetweenRole;
  /** Element-wise activation applied by this layer (activation layers, depthwise conv's own activation). */
  activation?: ScalarActivation;
}

/** A growable layer pair of a tfjs model. */
export interface TfjsGrowthSite {
  /** `"<current>-><next>"`, e.g. `"conv1->conv2"`. */
  name: string;
  /** `dense`: Dense→Dense; `conv`: Conv2D→Conv2D; `conv-dense`: Conv2D→…→Flatten (or global pooling)→Dense. */
  kind: 'dense' | 'conv' | 'conv-dense';
  /** Name of the layer that gains units (Dense or Conv2D). */
  current: string;
  /** Name of the layer consuming them (Dense or Conv2D). */
  next: string;
  /** Layers in between, in forward order (flatten included for `conv-dense`). */
  between: BetweenLayer[];
  /** Current width (units or filters) of the current layer. */
  units: number;
  /** Composite activation seen by a new unit (current layer's activation, then in-between activations). */
  activation: ActivationInfo;
  /** Element-wise activations in order, composing {@link TfjsGrowthSite.activation}. */
  activationChain: ScalarActivation[];
}

/** A layer that cannot be grown, and why. */
export interface NotGrowable {
  /** Layer name. */
  layer: string;
  /** Layer class name. */
  className: string;
  /** Why it cannot gain units without changing the network function. */
  reason: string;
}

/** Result of {@link findGrowthSites}. */
export interface GrowthSiteScan {
  /** Growable layer pairs in network order. */
  sites: TfjsGrowthSite[];
  /** Growable channel groups in network order (of their first producer); grown by name like sites. */
  groups: ChannelGroup[];
  /** Layers that could gain channels but cannot grow, each with the reason. */
  notGrowable: NotGrowable[];
}
