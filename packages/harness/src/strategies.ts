/**
 * The arms of a benchmark: every registered growth strategy plus the fixed-width `small` and `big` baselines.
 */
import { registerAllStrategies, strategyCatalog } from '@gradmax/strategies';
import { createStrategy, hasStrategy, listStrategies, UnknownNameError, type GrowthStrategy } from '@gradmax/core';
import type { ArmKind, Task } from './types.js';

/** The fixed-width baselines every task supports. */
export const BASELINE_ARMS = ['small', 'big'] as const;

registerAllStrategies();

/**
 * Names of all registered strategies: the `@gradmax/strategies` catalog in its order (GradMax, GradMax-Opt,
 * Random, …), then any strategy the user registered, sorted.
 */
export function strategyNames(): string[] {
  const all = listStrategies();
  const catalog = strategyCatalog.map((e) => e.name).filter((n) => all.includes(n));
  return [...catalog, ...all.filter((n) => !catalog.includes(n)).sort()];
}

/**
 * Default arms of a task: every strategy the task supports, then `small`, `big`, then the task's analysis arms.
 * Strategies listed in `task.unsupportedArms` are left out (the report says why).
 */
export function defaultArms(task: Task<any>): string[] {
  const skip = task.unsupportedArms ?? {};
  return [...strategyNames().filter((s) => !(s in skip)), ...BASELINE_ARMS, ...task.analysisArms];
}

/** What kind of arm `arm` is for `task`; throws {@link UnknownNameError} listing the valid arms. */
export function armKind(task: Task<any>, arm: string): ArmKind {
  if (arm === 'small' || arm === 'big') return arm;
  if (task.analysisArms.includes(arm)) return 'analysis';
  if (hasStrategy(arm)) return 'strategy';
  throw new UnknownNameError(`arm of task "${task.name}"`, arm, defaultArms(task));
}

/** Creates the registered strategy `name` with `options`. */
export function makeStrategy(name: string, options: Record<string, unknown> = {}): GrowthStrategy {
  return createStrategy(name, options);
}
