/**
 * A small registry so users and adapters pick strategies by name (`"gradmax"`, `"random"`, ...).
 * Named exports stay tree-shakeable: nothing is registered until someone calls {@link registerStrategy}
 * (or imports an opt-in `register` entry point such as `@gradmax/strategies/register`).
 */
import { InvalidArgumentError, UnknownNameError } from './errors.js';
import type { GrowthStrategy } from './site.js';

/** Builds a strategy from (optional, strategy-specific) options. */
export type StrategyFactory<O = Record<string, unknown>> = (options?: O) => GrowthStrategy;

const factories = new Map<string, StrategyFactory<any>>();

/**
 * Registers a strategy factory under a name. Re-registering the same factory is a no-op; a different
 * factory under a taken name throws unless `override` is set.
 */
export function registerStrategy<O>(name: string, factory: StrategyFactory<O>, override = false): void {
  if (!/^[A-Za-z][\w.-]*$/.test(name)) throw new InvalidArgumentError(`invalid strategy name "${name}"`, { name });
  const existing = factories.get(name);
  if (existing && existing !== factory && !override) {
    throw new InvalidArgumentError(`a different strategy is already registered as "${name}" (pass override=true to replace it)`, { name });
  }
  factories.set(name, factory);
}

/** Creates the strategy registered under `name` with the given options. Throws {@link UnknownNameError}. */
export function createStrategy<O>(name: string, options?: O): GrowthStrategy {
  const factory = factories.get(name);
  if (!factory) throw new UnknownNameError('strategy', name, listStrategies());
  return factory(options);
}

/** True when a strategy is registered under `name`. */
export function hasStrategy(name: string): boolean {
  return factories.has(name);
}

/** Names of all registered strategies, sorted. */
export function listStrategies(): string[] {
  return [...factories.keys()].sort();
}

/** Removes a registration (mainly for tests). */
export function unregisterStrategy(name: string): boolean {
  return factories.delete(name);
}
