/**
 * Reports: Markdown tables, SVG plots and terminal summaries from result files.
 */
export { buildReport, writeReport, reportFromPaths, groupResults, compareArms, type BuiltReport, type ReportGroup } from './build.js';
export { lineChart, barChart, niceTicks, seriesColor, type LineChartOptions, type LineSeries, type BarChartOptions } from './svg.js';
export { mean, std, fmt, meanStd, aggregateCurves, windowMean } from './stats.js';
export { NOTEBOOK_TEACHER_STUDENT, NOTEBOOK_PROVENANCE, type NotebookGrowthRow } from './reference.js';
