/**
 * `@gradmax/harness`: runs every growth strategy on the same tasks, seeds, schedule and backend, writes one
 * self-describing JSON result per run, and turns any set of results into Markdown reports with SVG plots.
 * @packageDocumentation
 */
export * from './types.js';
export { setupBackend, activeBackend, parseBackendRequest, BACKEND_REQUESTS, backendKey, backendLabel, assertTaskRunsOn } from './backend.js';
export { resolveFlatConfig, configHash, canonicalJson, type ConfigValue } from './config.js';
export { GrowableMlp, glorotMlp, uniformMlp, type DenseWeights, type MlpLoss, type GradientNorms } from './mlp.js';
export { growMlpSite } from './growth.js';
export {
  loadMnist,
  loadImages,
  hasFashionMnist,
  fashionMnistDir,
  FASHION_MNIST_DIR,
  DATA_NAME,
  DATA_SOURCE,
  LR_SCHEDULES,
  learningRateAt,
  scheduledGrowthSteps,
  optimizerSentence,
  takeMnist,
  gatherBatch,
  BatchStream,
  type ImageDataset,
  type MnistSplit,
  type MnistTrainingConfig,
} from './mnist.js';
export { expandGrid, shardGrid, parseShard, parseSeeds, MAX_SEEDS, type GridCell, type Shard } from './grid.js';
export {
  writeResult,
  readResult,
  parseResult,
  collectResults,
  resultId,
  resultPath,
  writeFileAtomic,
  collectVersions,
  hostInfo,
  ResultFileError,
} from './results.js';
export { executeCell, type CellJob } from './execute.js';
export { runBenchmark, defaultWorkers, workerScript, type RunOptions, type RunSummary, type RunnerEvent } from './runner.js';
export { BASELINE_ARMS, defaultArms, armKind, strategyNames, makeStrategy, parseArm, isVariantArm, type ArmStrategy } from './strategies.js';
export * from './tasks/index.js';
export * from './report/index.js';
