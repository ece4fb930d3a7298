/**
 * `@gradmax/tfjs`: grow TensorFlow.js layers models while they train.
 *
 * - {@link setupBackend} picks native / wasm / cpu and registers the kernels growth needs.
 * - {@link findGrowthSites} lists growable layer pairs and channel groups (and why other layers are not growable).
 * - {@link collectStatistics} computes growth statistics on a grow batch.
 * - {@link grow} widens one site or channel group with any strategy, in place, carrying optimizer state.
 * - {@link GrowthController} and {@link growthCallback} run a growth schedule in a custom loop or in `model.fit`.
 * - {@link relu1} is the ReLU with derivative 1 at 0 that GradMax needs on grown layers.
 * @packageDocumentation
 */
export { BACKENDS, activeAdapter, adapterLabel, describeAdapter, setupBackend, wasmDistPath } from './backend/setup.js';
export type { BackendChoice, BackendSetup, GpuAdapterInfo, GpuAdapterLike, SetupBackendOptions } from './backend/setup.js';
export { growthTensors, syncReadsUnavailable, withSyncReads } from './backend/sync-reads.js';
export {
  conv2dBackpropFilterViaConv,
  registerConvBackpropFilter,
  restoreStockConvBackpropFilter,
  hasConvBackpropFilterReplacement,
} from './backend/conv2d-backprop-filter.js';
export { depthwiseBackpropInputViaOps, depthwiseBackpropFilterViaOps, registerDepthwiseBackprop, hasDepthwiseBackprop } from './backend/depthwise-backprop.js';
export type { DepthwiseBackpropAttrs } from './backend/depthwise-backprop.js';
export { maxPoolGradViaSlices, registerMaxPoolGrad, restoreStockMaxPoolGrad, hasMaxPoolGradReplacement } from './backend/max-pool-grad.js';
export { registerDilatedConvGradients } from './backend/dilated-conv-gradient.js';
export { conv3dBackpropInputViaOps, registerConv3dBackpropInput, hasConv3dBackpropInputReplacement, restoreStockConv3dBackpropInput } from './backend/conv3d-backprop-input.js';
export { relu1, RELU1, Relu1Activation, Relu1Layer, relu1Layer } from './activation/relu1.js';
export type { Relu1LayerArgs } from './activation/relu1.js';
export { scalarActivation, knownActivations } from './activation/info.js';
export type { ScalarActivation } from './activation/info.js';
export { findGrowthSites } from './sites/find.js';
export type { ChannelGroup, GroupMember, GroupRole } from './groups/types.js';
export { groupToCoreSite } from './groups/core-group.js';
export { collectGroupStatistics, collectGrowthStatistics } from './groups/statistics.js';
export { collectGroupInputSamples, groupRowsProblem, DEFAULT_GROUP_SAMPLES } from './groups/samples.js';
export type { GroupSampleOptions } from './groups/samples.js';
export type { GroupStatisticsOptions, GrowthStatisticsOptions } from './groups/statistics.js';
export { widenGroup } from './groups/widen.js';
export type { GroupWidening } from './groups/widen.js';
export { layerRoles } from './groups/rules.js';
export type { BetweenLayer, BetweenRole, GrowthSiteScan, NotGrowable, TfjsGrowthSite } from './sites/types.js';
export { toCoreSite, siteGeometry } from './sites/core-site.js';
export { collectStatistics, snapshotStatistics } from './statistics/collect.js';
export { RoutedConvStatistics } from './statistics/routed-statistics.js';
export type { CollectOptions, SiteAccumulator } from './statistics/collect.js';
export { validateBatch } from './statistics/batch.js';
export type { Batch } from './statistics/batch.js';
export { resolveLoss } from './statistics/loss.js';
export type { LossSpec, MeanLoss } from './statistics/loss.js';
export { widenSite, refuseConstantUnits } from './widen/apply.js';
export type { WidenOptions } from './widen/apply.js';
export { grow, growAsync, requireSite, requireTarget } from './api/grow.js';
export type { GrowOptions, GrowResult, GrowEventReport, GrowthTarget } from './api/grow.js';
export { resolveStrategy } from './api/strategy.js';
export { makeLossOracle } from './api/loss-oracle.js';
export { withTemporaryUnits } from './widen/temporary.js';
export type { StrategySpec } from './api/strategy.js';
export { GrowthController, scheduledSites } from './api/controller.js';
export type { GrowthControllerOptions, ControllerStep } from './api/controller.js';
export { growthCallback } from './api/callback.js';
export type { GrowthCallbackOptions } from './api/callback.js';
