/**
 * `@gradmax/onnx/probe`: GradMax statistics for ONNX models from a generated backward graph run in onnxruntime.
 *
 * {@link buildProbe} appends a loss, a backward pass (vector-Jacobian rules as ordinary ONNX ops) and per-site
 * statistics reductions to a model; {@link computeStatistics} streams labelled minibatches through it and merges
 * the sums into the core's `DenseStatistics` / `ConvStatistics`.
 * @packageDocumentation
 */
export { NON_DIFFERENTIABLE_OPS, buildProbe, missingGradientRules, probeSiteOf } from './build.js';
export type { BuildProbeOptions, MissingRule, NodePairSite, ProbeLoss, ProbeLossKind, ProbeModel, ProbeOutput, ProbeSite } from './build.js';
export { computeStatistics, createProbeSession, runProbe } from './compute.js';
export type { ComputeStatisticsOptions, ComputeStatisticsResult, ProbeBatch, ProbeProgress, ProbeStatistics, TensorLike } from './compute.js';
export { MissingGradientRuleError } from './errors.js';
export { VJP_RULES, supportedOps } from './rules.js';
export type { RuleContext, VjpRule } from './rules.js';
export type { Emitter } from './emitter.js';
export { discoverShapes } from './shapes.js';
export { computeGroupStatistics, MAX_GROUP_MATRIX_ENTRIES } from './groups.js';
export type { GroupSiteStatistics, GroupStatisticsOptions, GroupStatisticsResult } from './groups.js';
export type { DiscoverShapesOptions, TensorInfo } from './shapes.js';
export { buildVjpModel } from './vjp.js';
export { adviseGrowth } from './advise.js';
export type { AdviseGrowthOptions, GrowthAdvice, GrowthAdviceResult, SkippedSite } from './advise.js';
export { prepareForProbe, promoteHalfToFloat, relaxFixedBatch, sortTopologically, upgradeToOpset11 } from './prepare.js';
export type { PreparedModel } from './prepare.js';
export type { VjpModel, VjpModelOptions } from './vjp.js';
export { SKETCH_AUTO_MIN_ENTRIES, preferSketch, statisticCosts } from './sketch.js';
export type { ProbeSketchSettings, ProbeStatisticsMode, StatisticCosts } from './sketch.js';
