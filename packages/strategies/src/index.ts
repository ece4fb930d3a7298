/**
 * `@gradmax/strategies`: every growth strategy behind the core's `GrowthStrategy` contract (GradMax,
 * GradMax-Opt, Random, Random outgoing-zero, All-zero, Firefly, Net2Net, NORTH, TINY). Named exports only; call
 * {@link registerAllStrategies} or import `@gradmax/strategies/register` to use them by name.
 * @packageDocumentation
 * @module @gradmax/strategies
 */
export { gradmax, gradmaxOpt } from '@gradmax/core';
export type { GradMaxOptions, GradMaxOptOptions, OutgoingScaleOptions, ScaleMethod } from '@gradmax/core';
export { random, type RandomOptions } from './random.js';
export { randomOutgoingZero, type RandomOutgoingZeroOptions } from './random-outgoing-zero.js';
export { allZero, type AllZeroOptions } from './all-zero.js';
export { firefly, fireflyDecrease, type FireflyOptions } from './firefly.js';
export { net2net, type Net2NetOptions, type Net2NetSelection } from './net2net.js';
export { north, type NorthOptions } from './north.js';
export { tiny, type TinyOptions } from './tiny.js';
export type { Distribution, IncomingScaleOptions } from './internal/util.js';
export { strategyCatalog, registerAllStrategies, type StrategyCatalogEntry } from './catalog.js';
