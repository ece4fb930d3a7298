/**
 * `@gradmax/onnx`: widen layers of exported ONNX models without changing what they compute.
 * @packageDocumentation
 */
export * from './errors.js';
export * from './fp16.js';
export * from './tensor.js';
export * from './model.js';
export * from './attributes.js';
export * from './shapes.js';
export * from './sites.js';
export * from './widen.js';
export * from './npy.js';
export * from './statistics.js';
export * from './verify.js';
export * from './verify-dims.js';
export * from './grow.js';
export * from './groups/index.js';
