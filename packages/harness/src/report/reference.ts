/**
 * The reference notebook's teacher-student numbers (method reference §6.1a: `Student_Teacher.ipynb`, cell
 * "Figure 2a and 2c", one Colab run, input dimension 10, one fixed teacher, scale 1.0). The gains are the
 * notebook's measure: the change of the whole first-layer kernel's gradient norm after growth.
 */

/** One row of the notebook table. */
export interface NotebookGrowthRow {
  /** 1-based growth number (growth k: 5+k−1 → 5+k units). */
  growth: number;
  /** Gain of GradMax. */
  gainGradmax: number;
  /** Gain of Random (max of 5 repeats). */
  gainRandomMax: number;
  /** Gain of GradMax-Opt (Adam lr 100, max of 5 repeats). */
  gainGradmaxOptMax: number;
  /** Mean loss over the next 499 steps (last repeat). */
  lossGradmax: number;
  lossRandom: number;
  lossGradmaxOpt: number;
}

/** The notebook's five growths. */
export const NOTEBOOK_TEACHER_STUDENT: readonly NotebookGrowthRow[] = [
  { growth: 1, gainGradmax: 0.2657, gainRandomMax: 0.1669, gainGradmaxOptMax: 0.2469, lossGradmax: 0.4595, lossRandom: 0.51, lossGradmaxOpt: 0.5064 },
  { growth: 2, gainGradmax: 0.2641, gainRandomMax: 0.1058, gainGradmaxOptMax: 0.1997, lossGradmax: 0.3723, lossRandom: 0.4279, lossGradmaxOpt: 0.3949 },
  { growth: 3, gainGradmax: 0.2341, gainRandomMax: 0.0931, gainGradmaxOptMax: 0.1813, lossGradmax: 0.3091, lossRandom: 0.3551, lossGradmaxOpt: 0.3284 },
  { growth: 4, gainGradmax: 0.1902, gainRandomMax: 0.0831, gainGradmaxOptMax: 0.1476, lossGradmax: 0.2795, lossRandom: 0.287, lossGradmaxOpt: 0.2832 },
  { growth: 5, gainGradmax: 0.1719, gainRandomMax: 0.0766, gainGradmaxOptMax: 0.1299, lossGradmax: 0.2356, lossRandom: 0.2612, lossGradmaxOpt: 0.2572 },
];

/** Where the notebook numbers come from, for the report. */
export const NOTEBOOK_PROVENANCE =
  'google-research/growneuron `Student_Teacher.ipynb` (commit c1f3d1f), cell "Figure 2a and 2c": one Colab run with ' +
  '10-dimensional inputs, one fixed teacher, scale 1.0, starting from the Random run\'s checkpoints; gains are the change ' +
  'of the whole first-layer kernel\'s gradient norm; Random and GradMax-Opt gains are the max over 5 repeats; losses are ' +
  'the mean over the next 499 SGD steps at lr 0.05 (last repeat).';
