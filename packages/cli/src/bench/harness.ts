/**
 * The harness and core symbols the bench commands use (one import site).
 */
export {
  BACKEND_REQUESTS,
  assertTaskRunsOn,
  defaultArms,
  isVariantArm,
  parseArm,
  defaultWorkers,
  getTask,
  listTasks,
  parseBackendRequest,
  parseSeeds,
  parseShard,
  reportFromPaths,
  runBenchmark,
  strategyNames,
  type RunnerEvent,
} from '@gradmax/harness';
export { GradmaxError } from '@gradmax/core';
