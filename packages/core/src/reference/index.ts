/**
 * `@gradmax/core/reference`: naive, obviously-correct float64 reference implementations (conv forward and
 * backward, tap scatter, exact growth matrices) and small two-layer networks with analytic gradients, for tests.
 * Not optimised; do not use in training loops.
 * @packageDocumentation
 */
export * from './tensor.js';
export * from './conv.js';
export * from './activations.js';
export * from './networks.js';
export * from './finite-difference.js';
export * from './conv-nd.js';
