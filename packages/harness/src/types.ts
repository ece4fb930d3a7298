/**
 * The data model of the harness: tasks, arms, run specifications and the self-describing result files.
 */
import type * as tfc from '@tensorflow/tfjs-core';
import type { GpuAdapterInfo } from '@gradmax/tfjs';

/**
 * Backend requested on the command line; `auto` prefers tfjs-node-gpu, then tfjs-node, then wasm, then cpu (never
 * webgpu: ask for `webgpu` by name, and only tasks with {@link Task.asyncReads} run on it).
 */
export type BackendRequest = 'auto' | 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';

/**
 * The backend a run actually used. Results with different backend keys (`name`, plus the adapter on webgpu; see
 * `backendKey`) are never merged in one table.
 */
export interface BackendInfo {
  /** tfjs backend name that ran: `"tensorflow"` (tfjs-node or tfjs-node-gpu), `"webgpu"`, `"wasm"` or `"cpu"`. */
  name: string;
  /** The WebGPU adapter (vendor, architecture, description, software flag) when `name` is `"webgpu"`. */
  adapter?: GpuAdapterInfo;
  /** Human-readable device, e.g. `"wasm (SIMD, single-threaded)"`, `"tfjs-node-gpu (CUDA)"`. */
  device: string;
  /** What was requested. */
  requested: BackendRequest;
  /** Package that provided the backend, e.g. `"@tensorflow/tfjs-backend-wasm"`. */
  package: string;
  /** Why a fallback happened, when it did. */
  note?: string;
}

/** A named series of (step, value) points. */
export interface Curve {
  /** Steps, ascending. */
  step: number[];
  /** Values at those steps. */
  value: number[];
}

/**
 * One growth event as it happened inside a training run. The gradient and loss measurements are optional (a task
 * may not measure them); the built-in tasks record them all.
 */
export interface GrowthRecord {
  /** Training step at which the growth fired (before that step's update). */
  step: number;
  /** Site grown, e.g. `"hidden0"`. */
  site: string;
  /** Strategy that created the units. */
  strategy: string;
  /** Width of the site before growth. */
  unitsBefore: number;
  /** Width after growth. */
  unitsAfter: number;
  /**
   * Frobenius norm of the loss gradient on all new weights (incoming and outgoing) right after growth. Incoming-zero
   * strategies (GradMax, Random) get it all on the incoming side, outgoing-zero ones (NORTH) on the outgoing side.
   */
  newWeightGradNorm?: number;
  /** The incoming part of {@link GrowthRecord.newWeightGradNorm} (what GradMax maximises). */
  newIncomingGradNorm?: number;
  /** The outgoing part of {@link GrowthRecord.newWeightGradNorm}. */
  newOutgoingGradNorm?: number;
  /** Frobenius norm of the loss gradient on the grown layer's whole kernel before growth. */
  kernelGradNormBefore?: number;
  /** Same, right after growth. */
  kernelGradNormAfter?: number;
  /** Loss on the growth batch before growth. */
  lossBefore?: number;
  /** Loss on the growth batch right after growth (equal to `lossBefore` for function-preserving strategies). */
  lossAfter?: number;
  /** Wall time of the whole growth (statistics, strategy, weight surgery), ms. */
  durationMs: number;
  /** Notes from the strategy's report. */
  notes?: string[];
}

/** A {@link GrowthRecord} with every measurement present (the dense tasks). */
export type MeasuredGrowthRecord = GrowthRecord & Required<Pick<GrowthRecord, 'newWeightGradNorm' | 'newIncomingGradNorm' | 'newOutgoingGradNorm' | 'kernelGradNormBefore' | 'kernelGradNormAfter' | 'lossBefore' | 'lossAfter'>>;

/** One strategy's outcome at one growth of the growth-gain analysis (teacher-student). */
export interface GainRecord {
  /** 1-based growth number. */
  growth: number;
  /** Step of the checkpoint the analysis branched from. */
  step: number;
  /** Width before growth. */
  unitsBefore: number;
  /** Strategy name. */
  strategy: string;
  /** Gradient norm on all new weights (incoming and outgoing) of each repeat (different growth seeds, same checkpoint). */
  newWeightGradNorm: number[];
  /** Its incoming part (what GradMax maximises), per repeat. */
  newIncomingGradNorm: number[];
  /** Change of the whole grown kernel's gradient norm (after − before) for each repeat: the notebook's measure. */
  kernelGradNormDelta: number[];
  /** Mean training loss over the next `stepsAfter` SGD steps, starting from repeat 0's grown network. */
  meanLossAfter: number;
  /** Number of SGD steps averaged in `meanLossAfter`. */
  stepsAfter: number;
}

/** Wall-clock split of a run, in milliseconds. */
export interface Timings {
  /** Whole run, including setup and evaluation. */
  totalMs: number;
  /** Data loading and model construction. */
  setupMs: number;
  /** Training steps (excluding growth and evaluation). */
  trainMs: number;
  /** Growth events (statistics, strategy, weight surgery). */
  growthMs: number;
  /** Evaluation passes. */
  evalMs: number;
  /** Extra analysis (growth-gain branches). */
  analysisMs: number;
  /** Number of training steps taken. */
  steps: number;
}

/** What a task's `run` returns; the runner wraps it into a {@link RunResult}. */
export interface TaskOutput {
  /** Named curves: `trainLoss`, `testLoss`, `testAccuracy`, `width`, ... */
  curves: Record<string, Curve>;
  /** Growth events, in order. */
  growths: GrowthRecord[];
  /** Growth-gain analysis records (teacher-student `growth-gain` arm only). */
  gain?: GainRecord[];
  /** Final scalar metrics: `finalTrainLoss`, `finalTestLoss`, `finalTestAccuracy`, `finalWidth`, `parameters`, ... */
  summary: Record<string, number>;
  /** Timings measured by the task (the runner adds `totalMs`). */
  timings: Omit<Timings, 'totalMs'>;
}

/** Schema tag written into every result file. */
export const RESULT_SCHEMA = 'gradmax.bench.result/v1';

/** One finished (or failed) run: everything needed to interpret it without other files. */
export interface RunResult extends Partial<TaskOutput> {
  /** Always {@link RESULT_SCHEMA}. */
  schema: typeof RESULT_SCHEMA;
  /** `"ok"` or `"failed"`; failed runs are re-run by default and listed separately by `report`. */
  status: 'ok' | 'failed';
  /** Stable id: task, arm, seed, backend and config hash. */
  id: string;
  /** Task name. */
  task: string;
  /** Arm: a strategy, `small`, `big` or an analysis arm. */
  arm: string;
  /** Seed of the run. */
  seed: number;
  /** Backend that ran it. */
  backend: BackendInfo;
  /** Short hash of the resolved task config (runs with different configs are reported separately). */
  configHash: string;
  /** The resolved task config. */
  config: Record<string, unknown>;
  /** Versions of node, tfjs and the gradmax packages. */
  versions: Record<string, string>;
  /** Host facts. */
  host: { platform: string; arch: string; cpus: number; cpuModel: string; node: string };
  /** Wall-clock split (successful runs). */
  timings?: Timings;
  /** Error message of a failed run. */
  error?: string;
  /** ISO time the run started. */
  startedAt: string;
  /** ISO time the run ended. */
  finishedAt: string;
}

/** Whether an arm grows with a strategy, is a fixed-width baseline, or is an analysis. */
export type ArmKind = 'strategy' | 'small' | 'big' | 'analysis';

/** Everything a task needs to run one (arm, seed). */
export interface TaskContext<C> {
  /** The tfjs-core namespace, with the backend already set. */
  tf: typeof tfc;
  /** Resolved config. */
  config: C;
  /** Arm name: a registered strategy, `small`, `big`, or a task-specific analysis arm. */
  arm: string;
  /** Seed of this run. */
  seed: number;
  /** Backend in use. */
  backend: BackendInfo;
  /** Progress callback: fraction in [0, 1]. */
  progress?: (fraction: number) => void;
}

/** The score a report compares arms on (final value per run, from `RunResult.summary`). */
export interface ReportMetric {
  /** Key in `summary`, e.g. `"finalTestAccuracy"`. */
  key: string;
  /** Label in tables and prose, e.g. `"test accuracy"`. */
  label: string;
  /** Whether larger values are better (accuracy) or smaller (loss). */
  higherIsBetter: boolean;
  /** Show values ×100 with a `%` (differences in percentage points). */
  percent?: boolean;
}

/** What a task's report hook receives: the group's successful results and its resolved config. */
export interface TaskReportInput<C> {
  /** Successful results of one (task, backend, config), sorted by arm then seed. */
  results: readonly RunResult[];
  /** The resolved config of the group. */
  config: C;
  /** Prefix for SVG file names (`task-backend-confighash`). */
  key: string;
  /** Backend of the group for plot titles (name, plus the adapter on webgpu). */
  backend: string;
}

/** Task-owned report content: Markdown lines and SVG files. */
export interface TaskReportSection {
  /** Markdown lines appended after the generic sections. */
  markdown: string[];
  /** SVG files by name. */
  svgs: Record<string, string>;
}

/** A benchmark task: a model, data, schedule and protocol, runnable for any arm and seed. */
export interface Task<C extends object = Record<string, unknown>> {
  /** CLI name, e.g. `"teacher-student"`. */
  readonly name: string;
  /** One-line description. */
  readonly description: string;
  /** Markdown description of the protocol under the `default` preset, printed by `bench list` ({@link Task.describe} of that config). */
  readonly protocol: string;
  /**
   * The task card as Markdown, generated from a resolved config (never literal numbers): model, data, budget,
   * schedule, scale, adapter and the paper claim the task tests. Reports print it for the config that ran.
   */
  describe(config: C): string;
  /** The score the report's comparison table, paired tests and gap-recovered estimate use. */
  readonly metric: ReportMetric;
  /** Task-specific report sections (analysis arms, checks, reference comparisons). */
  report?(input: TaskReportInput<C>): TaskReportSection;
  /** Default seeds when `--seeds` is not given. */
  readonly defaultSeeds: number;
  /** Resolved config for a preset (`default` or `tiny`) with overrides applied and validated. */
  resolveConfig(preset: string, overrides?: Record<string, unknown>): C;
  /** Names of the presets this task accepts. */
  readonly presets: readonly string[];
  /** Extra task-specific arms (e.g. `growth-gain`) beyond the strategies and the `small`/`big` baselines. */
  readonly analysisArms: readonly string[];
  /**
   * Whether the task reads tensors only asynchronously (`await t.data()`) and grows through the controller's async
   * path, so that it runs on webgpu in Node, where synchronous reads are impossible. Tasks without it are refused on
   * webgpu with an `UnsupportedError` before anything runs.
   */
  readonly asyncReads?: boolean;
  /** Strategies this task cannot run, with the reason (left out of the default arms; listed in reports). */
  readonly unsupportedArms?: Readonly<Record<string, string>>;
  /**
   * Relative cost of an arm (default 1), used only to start long runs first so parallel workers finish together.
   */
  relativeCost?(arm: string): number;
  /** Runs one (arm, seed). */
  run(context: TaskContext<C>): Promise<TaskOutput>;
}
