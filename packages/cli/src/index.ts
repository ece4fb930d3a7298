/**
 * `@gradmax/cli`: the `gradmax` command line, and the shared CLI utilities its subcommands use (argument parsing
 * with one-line errors, IO, progress, tables, exit codes).
 * @packageDocumentation
 */
export * from './shared/io.js';
export * from './shared/args.js';
export * from './shared/progress.js';
export * from './shared/table.js';
export * from './shared/errors.js';
export { main } from './main.js';
export { runOnnx, ensureStrategies } from './onnx/index.js';
