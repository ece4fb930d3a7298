/**
 * Resolving a strategy given by name or as an object.
 */
import { createStrategy, gradmax, gradmaxOpt, hasStrategy, type GrowthStrategy } from '@gradmax/core';

/** A strategy: a registered name (`"gradmax"`, `"random"`, ... after `import '@gradmax/strategies/register'`) or an object. */
export type StrategySpec = string | GrowthStrategy;

/**
 * Returns the strategy object for `spec`. Names resolve through the core registry; `gradmax` and `gradmaxOpt` work
 * even when nothing is registered.
 *
 * @throws UnknownNameError listing the registered names.
 */
export function resolveStrategy(spec: StrategySpec, options?: Record<string, unknown>): GrowthStrategy {
  if (typeof spec !== 'string') return spec;
  if (!hasStrategy(spec)) {
    if (spec === 'gradmax') return gradmax(options);
    if (spec === 'gradmaxOpt') return gradmaxOpt(options as Parameters<typeof gradmaxOpt>[0]);
  }
  return createStrategy(spec, options);
}
