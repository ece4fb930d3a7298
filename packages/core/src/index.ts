/**
 * `@gradmax/core`: framework-agnostic, dependency-free growth of neural networks as linear algebra over
 * gradient statistics. Statistics in, new weights out.
 * @packageDocumentation
 * @module @gradmax/core
 */
export * from './errors.js';
export * from './rng.js';
export * from './matrix.js';
export * from './site.js';
export * from './registry.js';
export * from './validate.js';
export * from './linalg/index.js';
export * from './statistics/index.js';
export * from './gradmax.js';
export * from './gradmax-opt.js';
export * from './schedules.js';
