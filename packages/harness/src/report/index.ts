/**
 * Reports: Markdown tables, SVG plots and terminal summaries from result files.
 */
export { buildReport, writeReport, reportFromPaths, groupResults, compareArms, resolveStoredConfig, type BuiltReport, type ReportGroup } from './build.js';
export { comparisonSection, ALPHA, PAIRED_REFERENCE, REPORT_BOOTSTRAP_SEED, type Comparison, type ComparisonResult, type GapRecovered } from './compare.js';
export { table, textTable, check, stepList, scheduleSentence } from './markdown.js';
export { lineChart, barChart, niceTicks, seriesColor, PALETTE, HIGHLIGHT, type LineChartOptions, type LineSeries, type VLine, type BarChartOptions } from './svg.js';
export {
  mean,
  std,
  fmt,
  meanStd,
  aggregateCurves,
  windowMean,
  bootstrapCi,
  bootstrapStatisticCi,
  quantile,
  pairedPermutationTest,
  fmtInterval,
  fmtP,
  type BootstrapOptions,
  type Interval,
  type PairedTest,
  type PermutationOptions,
} from './stats.js';
export { NOTEBOOK_TEACHER_STUDENT, NOTEBOOK_PROVENANCE, type NotebookGrowthRow } from './reference.js';
export { variantSection, variantMeasures, growthIntervals, type VariantComparison, type VariantMeasure, type VariantSectionResult } from './variants.js';
