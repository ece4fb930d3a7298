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
/** The `gradmax` entry point (see {@link main}). */
export { main } from './main.js';
/** `gradmax onnx ...` and the strategy registration it performs. */
export { runOnnx, ensureStrategies } from './onnx/index.js';
