/**
 * Gradient statistics of growth sites: the growth matrix M (dense and exact conv), mergeable across batches and
 * workers, with optional retained samples and a lossless JSON form; plus conv-pair geometry helpers.
 * @packageDocumentation
 */
export * from './conv-geometry.js';
export * from './conv-geometry-nd.js';
export { MomentAccumulator, STATISTICS_JSON_VERSION, reservoirKey } from './accumulator.js';
export type { MatrixLike, StatisticsJSON, StatisticsOptions, StatisticsSamplesJSON } from './accumulator.js';
export { DenseStatistics } from './dense.js';
export { ConvStatistics } from './conv.js';
export type { NhwcLike } from './conv.js';
export { encodeFloat64Base64, decodeFloat64Base64 } from './base64.js';
export { DEFAULT_SKETCH_RANK, SketchStatistics, sketchTestMatrices } from './sketch.js';
export type { SketchOptions, SketchReconstruction, SketchStatisticsJSON, SketchTestMatrices } from './sketch.js';
