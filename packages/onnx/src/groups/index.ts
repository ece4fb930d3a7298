/**
 * Channel groups: discovery, the strategies' view of a group and widening.
 * @packageDocumentation
 */
export { findGroups, findGroup, groupPlan, isCurrentGroup, topologicalOrder } from './find.js';
export { groupGrowthSite } from './site.js';
export { widenGroup, insertionPoints } from './widen.js';
export type { GroupWidenResult } from './widen.js';
export { CHANNEL_RULES } from './rules.js';
export type { ChannelRule, ChannelContext, ChannelValue, Hit } from './rules.js';
export type { OnnxGroup, GroupMembers, GroupPlan, GroupLayer, GroupParam, GroupValue, GroupBias, LayerType, ParamFill } from './types.js';
export type { Lin } from './lin.js';
