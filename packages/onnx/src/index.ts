/**
 * `@gradmax/onnx`: widen layers of exported ONNX models without changing what they compute.
 * @packageDocumentation
 */
export * from './errors.js';
export * from './fp16.js';
export * from './tensor.js';
export * from './model.js';
