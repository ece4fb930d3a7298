/**
 * `@gradmax/onnx`: widen layers of exported ONNX models without changing what they compute.
 * The public surface is listed here explicitly; internal plans stay internal.
 * @packageDocumentation
 * @module @gradmax/onnx
 */
export { OnnxFormatError, ExternalDataError, NpyFormatError, ExecutionProviderError, FileAccessError, RuntimeError } from './errors.js';
export { halfToNumber, numberToHalf, halfTable } from './fp16.js';
export { TensorBuffer, tensorDims, dataTypeName, elementSize, elementCount, FLOAT_TYPES, MAX_TENSOR_ELEMENTS } from './tensor.js';
export {
  OnnxModel,
  DEFAULT_DEFER_THRESHOLD,
  loadModel,
  serializeChunks,
  serializeModel,
  saveModel,
  makeTensor,
  makeAttribute,
  makeNode,
  makeValueInfo,
  valueInfoShape,
  valueInfoElemType,
} from './model.js';
export type { ExternalSource, FileRange, FileStamp, WeightRef, LoadOptions, GraphIndex, SaveOptions, MakeTensorOptions, AttributeValue } from './model.js';
export { attr, attrInt, attrFloat, attrInts, attrString, nodeLabel } from './attributes.js';
export { inferShapes } from './shapes.js';
export type { Dim, Shape } from './shapes.js';
export { findSites, findSite, growthSite, lazyGrowthSite } from './sites.js';
export type { OnnxSite, BetweenOp } from './sites.js';
export { widen } from './widen.js';
export type { WidenRequest, WidenResult } from './widen.js';
export { parseNpy, readNpy, npyToFloat64, encodeNpy, writeNpy } from './npy.js';
export type { NpyArray } from './npy.js';
export { statisticsFromNpy, readStatisticsManifest } from './statistics.js';
export type { NpyStatisticsSpec, StatisticsTarget } from './statistics.js';
export { makeInputs, executionProviders, runModel, verifyModels, MAX_VERIFY_INPUT_ELEMENTS } from './verify.js';
export { describePlacement, placementProfile } from './placement.js';
export type { NodePlacement, PlacementProfile } from './placement.js';
export type { VerifyOptions, OutputDiff, VerifyReport, Feed, Outputs } from './verify.js';
export { symbolicDims, chooseDims, DIM_CANDIDATES } from './verify-dims.js';
export type { SymbolicDim, DimKind, DimSlot, DimAssignment } from './verify-dims.js';
export { growModel, resolveTarget } from './grow.js';
export type { GrowRequest, GrowOptions, GrowResult } from './grow.js';
export { findGroups, findGroup, groupGrowthSite, widenGroup, insertionPoints, CHANNEL_RULES } from './groups/index.js';
export type { OnnxGroup, GroupMembers, GroupWidenResult, ChannelRule, ChannelContext, ChannelValue, Hit, ParamFill, Lin } from './groups/index.js';
