/**
 * The teacher-student task of the GradMax paper (§4.1) and its reference notebook.
 */
import type * as tfc from '@tensorflow/tfjs-core';
import { InvalidArgumentError, Rng, type GrowthStrategy } from '@gradmax/core';
import { requireInteger, requirePositive, resolveFlatConfig } from '../config.js';
import { pushPoint } from '../curves.js';
import { growMlpSite } from '../growth.js';
import { GrowableMlp, glorotMlp, uniformMlp } from '../mlp.js';
import { armKind, makeStrategy, parseArm, strategyNames } from '../strategies.js';
import type { Curve, GainRecord, GrowthRecord, Task, TaskContext, TaskOutput, TaskReportInput } from '../types.js';
import { scheduleSentence } from '../report/markdown.js';
import { teacherStudentReport } from './teacher-student-report.js';

/** Config of the teacher-student task (flat; every key can be set with `--set key=value`). */
export interface TeacherStudentConfig {
  [key: string]: number | string | boolean | string[];
  /** Input dimension d (paper: 20; the reference notebook actually used 10). */
  inputDim: number;
  /** Number of inputs x ~ N(0, I). */
  samples: number;
  /** Hidden width of the teacher. */
  teacherWidth: number;
  /** Output dimension of teacher and student. */
  outputDim: number;
  /** Teacher weights are U[−teacherRange, teacherRange]. */
  teacherRange: number;
  /** Hidden width the student starts with (and the `small` baseline keeps). */
  startWidth: number;
  /** First growth step. */
  growStart: number;
  /** Steps between growths. */
  growEvery: number;
  /** Number of growths. */
  growTimes: number;
  /** Units added per growth. */
  unitsPerGrowth: number;
  /** Total SGD steps. */
  steps: number;
  /** SGD learning rate (full batch, no momentum). */
  learningRate: number;
  /** Outgoing-norm multiplier given to strategies that take `scale` (notebook: 1.0). */
  scale: number;
  /** `meanNorm` or `fixed`. */
  scaleMethod: string;
  /** JSON object of extra per-strategy options, e.g. `{"gradmaxOpt":{"steps":50}}`. */
  strategyOptions: string;
  /** Record the training loss every this many steps. */
  logEvery: number;
  /** Growth-gain analysis: strategy of the trajectory the analysis branches from (notebook: random). */
  gainBase: string;
  /** Growth-gain analysis: repeats per strategy (different growth seeds from the same checkpoint). */
  gainRepeats: number;
  /** Growth-gain analysis: SGD steps after each branch whose mean loss is recorded (notebook: 499). */
  gainSteps: number;
  /** Growth-gain analysis: learning rate of those steps (notebook: 0.05). */
  gainLearningRate: number;
  /** Growth-gain analysis: strategies to compare (empty: all registered). */
  gainStrategies: string[];
}

const DEFAULTS: TeacherStudentConfig = {
  inputDim: 20,
  samples: 1000,
  teacherWidth: 10,
  outputDim: 10,
  teacherRange: 1,
  startWidth: 5,
  growStart: 200,
  growEvery: 200,
  growTimes: 5,
  unitsPerGrowth: 1,
  steps: 1500,
  learningRate: 0.1,
  scale: 1,
  scaleMethod: 'meanNorm',
  strategyOptions: '',
  logEvery: 1,
  gainBase: 'random',
  gainRepeats: 5,
  gainSteps: 499,
  gainLearningRate: 0.05,
  gainStrategies: [],
};

const PRESETS: Record<string, Partial<TeacherStudentConfig>> = {
  default: {},
  notebook: { inputDim: 10 },
  tiny: { samples: 128, inputDim: 8, startWidth: 3, growStart: 10, growEvery: 10, growTimes: 2, steps: 40, gainRepeats: 2, gainSteps: 10, logEvery: 1 },
};

/** Strategies whose new outgoing weights get a common norm `c = scale × mean norm` and accept `scale`/`scaleMethod`. */
export const SCALED_STRATEGIES: readonly string[] = ['gradmax', 'gradmaxOpt', 'random'];

/** Options for strategy `name` under config `c`: scale for the scaled family, then `strategyOptions` JSON. */
export function teacherStudentStrategyOptions(name: string, c: TeacherStudentConfig): Record<string, unknown> {
  const base: Record<string, unknown> = SCALED_STRATEGIES.includes(name) ? { scale: c.scale, scaleMethod: c.scaleMethod } : {};
  if (c.strategyOptions) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(c.strategyOptions);
    } catch {
      throw new InvalidArgumentError(`task "teacher-student" config "strategyOptions" is not valid JSON: ${c.strategyOptions}`, { key: 'strategyOptions' });
    }
    const extra = (parsed as Record<string, unknown>)[name];
    if (extra && typeof extra === 'object') Object.assign(base, extra);
  }
  return base;
}

function growthSteps(c: TeacherStudentConfig): number[] {
  const out: number[] = [];
  for (let i = 0; i < c.growTimes; i++) out.push(c.growStart + i * c.growEvery);
  return out.filter((s) => s < c.steps);
}

function readScalar(t: tfc.Scalar): number {
  const v = t.dataSync()[0]!;
  t.dispose();
  return v;
}

async function runTeacherStudent(ctx: TaskContext<TeacherStudentConfig>): Promise<TaskOutput> {
  const { tf, config: c, arm, seed } = ctx;
  const kind = armKind(teacherStudent, arm);
  const tStart = performance.now();
  const root = new Rng(seed);
  const d = c.inputDim;
  const xData = new Float32Array(c.samples * d);
  const inputRng = root.fork('inputs');
  for (let i = 0; i < xData.length; i++) xData[i] = inputRng.normal();
  const x = tf.tensor2d(xData, [c.samples, d]);
  const teacher = new GrowableMlp(tf, uniformMlp([d, c.teacherWidth, c.outputDim], root.fork('teacher'), c.teacherRange), { loss: 'mse' });
  const y = tf.tidy(() => teacher.forward(x));
  teacher.dispose();
  const finalWidth = c.startWidth + c.growTimes * c.unitsPerGrowth;
  const layers = kind === 'big' ? glorotMlp([d, finalWidth, c.outputDim], root.fork('student-big'), false) : glorotMlp([d, c.startWidth, c.outputDim], root.fork('student'), false);
  const model = new GrowableMlp(tf, layers, { loss: 'mse' });
  const baseName = kind === 'analysis' ? c.gainBase : kind === 'strategy' ? arm : undefined;
  const strategy: GrowthStrategy | undefined = baseName ? makeStrategy(baseName, teacherStudentStrategyOptions(parseArm(baseName).strategy, c)) : undefined;
  const gainNames = kind === 'analysis' ? (c.gainStrategies.length ? c.gainStrategies : strategyNames().filter((n) => !(n in (teacherStudent.unsupportedArms ?? {})))) : [];
  const gainStrategies = gainNames.map((n) => makeStrategy(n, teacherStudentStrategyOptions(n, c)));
  const schedule = kind === 'small' || kind === 'big' ? [] : growthSteps(c);
  const setupMs = performance.now() - tStart;

  const trainLoss: Curve = { step: [], value: [] };
  const width: Curve = { step: [0], value: [model.hiddenWidths[0]!] };
  const growths: GrowthRecord[] = [];
  const gain: GainRecord[] = [];
  let trainMs = 0;
  let growthMs = 0;
  let analysisMs = 0;
  const growthRng = root.fork('growth');
  try {
    for (let step = 0; step < c.steps; step++) {
      const g = schedule.indexOf(step);
      if (g >= 0 && strategy) {
        if (kind === 'analysis') {
          const ta = performance.now();
          gain.push(...growthGainAt(ctx, model, x, y, gainStrategies, g + 1, step));
          analysisMs += performance.now() - ta;
        }
        const record = growMlpSite(model, 0, strategy, c.unitsPerGrowth, x, y, growthRng.fork(g), step);
        growths.push(record);
        growthMs += record.durationMs;
        pushPoint(width, step, record.unitsAfter);
      }
      const ts = performance.now();
      const loss = model.step(x, y, c.learningRate);
      if (step % c.logEvery === 0) pushPoint(trainLoss, step, readScalar(loss));
      else loss.dispose();
      trainMs += performance.now() - ts;
      if (ctx.progress && step % 50 === 0) ctx.progress(step / c.steps);
    }
    const te = performance.now();
    const finalLoss = readScalar(model.evaluate(x, y));
    pushPoint(trainLoss, c.steps, finalLoss);
    const evalMs = performance.now() - te;
    return {
      curves: { trainLoss, width },
      growths,
      ...(kind === 'analysis' ? { gain } : {}),
      summary: { finalTrainLoss: finalLoss, finalWidth: model.hiddenWidths[0]!, parameters: model.parameterCount },
      timings: { setupMs, trainMs, growthMs, evalMs, analysisMs, steps: c.steps },
    };
  } finally {
    model.dispose();
    x.dispose();
    y.dispose();
  }
}

/**
 * The notebook's growth-gain analysis at one growth: from the current checkpoint, add units with each
 * strategy (`gainRepeats` growth seeds each), record the new-weight gradient norm and the change of the whole
 * kernel's gradient norm, and the mean loss over the next `gainSteps` SGD steps from repeat 0. The model is
 * restored to the checkpoint afterwards.
 */
function growthGainAt(
  ctx: TaskContext<TeacherStudentConfig>,
  model: GrowableMlp,
  x: tfc.Tensor2D,
  y: tfc.Tensor2D,
  strategies: GrowthStrategy[],
  growth: number,
  step: number,
): GainRecord[] {
  const { config: c, seed } = ctx;
  const checkpoint = model.snapshot();
  const unitsBefore = model.hiddenWidths[0]!;
  const rng = new Rng(seed).fork('gain').fork(growth);
  const out: GainRecord[] = [];
  for (const s of strategies) {
    const norms: number[] = [];
    const incoming: number[] = [];
    const deltas: number[] = [];
    let meanLossAfter = NaN;
    for (let r = c.gainRepeats - 1; r >= 0; r--) {
      model.restore(checkpoint);
      const rec = growMlpSite(model, 0, s, c.unitsPerGrowth, x, y, rng.fork(`${s.name}/${r}`), step);
      norms.unshift(rec.newWeightGradNorm);
      incoming.unshift(rec.newIncomingGradNorm);
      deltas.unshift(rec.kernelGradNormAfter - rec.kernelGradNormBefore);
      if (r === 0) {
        let sum = 0;
        for (let t = 0; t < c.gainSteps; t++) sum += readScalar(model.step(x, y, c.gainLearningRate));
        meanLossAfter = sum / c.gainSteps;
      }
    }
    out.push({ growth, step, unitsBefore, strategy: s.name, newWeightGradNorm: norms, newIncomingGradNorm: incoming, kernelGradNormDelta: deltas, meanLossAfter, stepsAfter: c.gainSteps });
  }
  model.restore(checkpoint);
  return out;
}

/** The teacher-student card (Markdown list) for a resolved config: every number comes from `c`. */
export function describeTeacherStudent(c: TeacherStudentConfig): string {
  const steps = growthSteps(c);
  const end = c.startWidth + steps.length * c.unitsPerGrowth;
  const scaled = SCALED_STRATEGIES.join(', ');
  const scale = c.scaleMethod === 'fixed' ? `fixed outgoing norm ${c.scale}` : `scale ${c.scale} × mean outgoing norm (\`meanNorm\`)`;
  return [
    '- Claim tested (paper §4.1, notebook Figure 2a/2c): GradMax\'s new units get a larger gradient norm than Random\'s and the loss falls faster right after growth.',
    `- Data: ${c.samples} inputs x ~ N(0, I) of dimension ${c.inputDim}; targets from a teacher MLP ${c.inputDim}-${c.teacherWidth}-${c.outputDim}, relu1, no bias, weights U[−${c.teacherRange}, ${c.teacherRange}]. A new teacher and data set per seed.`,
    `- Model (harness MLP, float32 tfjs): student ${c.inputDim}-${c.startWidth}-${c.outputDim}, relu1 hidden layer, no bias, Glorot-uniform init (same init for every growing arm of a seed). Full-batch mean squared error.`,
    `- Budget: ${c.steps} full-batch SGD steps at lr ${c.learningRate} (no momentum, constant rate).`,
    `- Schedule: +${c.unitsPerGrowth} hidden unit(s) per event, ${scheduleSentence(steps, c.steps)}, ${c.startWidth} → ${end} units; growth before that step's update, statistics on the full batch.`,
    `- Scale: strategies taking \`scale\` (${scaled}) get ${scale}.`,
    `- Baselines: \`small\` (${c.startWidth} units) and \`big\` (${end} units, its own Glorot init) trained ${c.steps} steps without growth.`,
    `- \`growth-gain\` analysis: follow the ${c.gainBase} trajectory; at each growth, from that checkpoint, add the units with ${c.gainStrategies.length ? c.gainStrategies.join(', ') : 'every supported strategy'} (${c.gainRepeats} growth seeds each) and record the new-weight gradient norm, the change of the whole first-layer kernel's gradient norm, and the mean loss over the next ${c.gainSteps} SGD steps at lr ${c.gainLearningRate} (repeat 0).`,
  ].join('\n');
}

/**
 * `teacher-student`: the GradMax paper's §4.1 setup. A random one-hidden-layer relu1 teacher (no bias,
 * weights U[−1, 1], 10 hidden units) labels 1000 inputs x ~ N(0, I) (dimension 20; the notebook used 10,
 * preset `notebook`). A relu1 student without bias starts at 5 hidden units and grows by 1 unit every 200
 * steps from step 200 (5 growths, to 10 units); 1500 full-batch SGD steps at lr 0.1 on the mean squared error.
 * Arms: every strategy, `small` (5 units) and `big` (10 units) without growth, and `growth-gain`, the
 * notebook's analysis. Growth statistics use the full batch.
 */
export const teacherStudent: Task<TeacherStudentConfig> = {
  name: 'teacher-student',
  description: 'Paper §4.1: grow a 5-unit student MLP to 10 units while fitting a random 10-unit teacher (full-batch MSE, SGD).',
  get protocol() {
    return describeTeacherStudent(resolveFlatConfig('teacher-student', DEFAULTS, PRESETS, 'default'));
  },
  describe: describeTeacherStudent,
  metric: { key: 'finalTrainLoss', label: 'final training loss', higherIsBetter: false },
  report: (input) => teacherStudentReport(input as TaskReportInput<Record<string, unknown>>),
  defaultSeeds: 6,
  presets: Object.keys(PRESETS),
  analysisArms: ['growth-gain'],
  relativeCost: (arm) => (arm === 'growth-gain' ? 12 : 1),
  unsupportedArms: { allZero: 'allZero sets the new units\' bias to 1, and the student has no biases (as in the paper and notebook)' },
  resolveConfig(preset, overrides) {
    const c = resolveFlatConfig('teacher-student', DEFAULTS, PRESETS, preset, overrides);
    for (const key of ['inputDim', 'samples', 'teacherWidth', 'outputDim', 'startWidth', 'growEvery', 'unitsPerGrowth', 'steps', 'logEvery', 'gainRepeats', 'gainSteps']) {
      requireInteger('teacher-student', c, key, 1);
    }
    requireInteger('teacher-student', c, 'growStart', 0);
    requireInteger('teacher-student', c, 'growTimes', 0);
    for (const key of ['learningRate', 'scale', 'teacherRange', 'gainLearningRate']) requirePositive('teacher-student', c, key);
    teacherStudentStrategyOptions('gradmax', c);
    return c;
  },
  run: runTeacherStudent,
};
