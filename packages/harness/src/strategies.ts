/**
 * The arms of a benchmark: every registered growth strategy plus the fixed-width `small` and `big` baselines.
 */
import { registerAllStrategies, strategyCatalog } from '@gradmax/strategies';
import { createStrategy, hasStrategy, InvalidArgumentError, listStrategies, UnknownNameError, type GrowthStrategy } from '@gradmax/core';
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

/**
 * A strategy arm split into the registered strategy and the options its name sets. A *variant arm* is a strategy
 * name followed by `:key=value` pairs, e.g. `gradmax:sign=largestNegative` or `gradmax:sign=random:scale=1`: it
 * runs that strategy with those options on top of the task's own (values are parsed as JSON when they can be,
 * so numbers and booleans keep their type; anything else is a string).
 */
export interface ArmStrategy {
  /** Registered strategy name (`gradmax` for `gradmax:sign=random`). */
  strategy: string;
  /** Options set by the arm name (empty for a plain strategy arm). */
  options: Record<string, unknown>;
}

/**
 * Splits a strategy arm into its registered strategy and the options of a variant arm (see {@link ArmStrategy}).
 * Throws {@link InvalidArgumentError} on a malformed `key=value` pair, naming the arm.
 */
export function parseArm(arm: string): ArmStrategy {
  const [strategy, ...pairs] = arm.split(':');
  const options: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError(`arm "${arm}": "${pair}" is not key=value (variant arms look like gradmax:sign=largestNegative)`, { arm });
    const key = pair.slice(0, eq);
    const raw = pair.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw;
    }
    options[key] = value;
  }
  return { strategy: strategy!, options };
}

/** Whether `arm` is a variant arm (a strategy with `:key=value` options in its name). */
export function isVariantArm(arm: string): boolean {
  return arm.includes(':');
}

/** What kind of arm `arm` is for `task`; throws {@link UnknownNameError} listing the valid arms. */
export function armKind(task: Task<any>, arm: string): ArmKind {
  if (arm === 'small' || arm === 'big') return arm;
  if (task.analysisArms.includes(arm)) return 'analysis';
  const { strategy } = parseArm(arm);
  if (hasStrategy(strategy)) return 'strategy';
  throw new UnknownNameError(`arm of task "${task.name}"`, arm, defaultArms(task));
}

/**
 * Creates the strategy of arm `arm` (a registered strategy name or a variant arm such as
 * `gradmax:sign=random`) with the task's `options`, overridden by the variant's own.
 */
export function makeStrategy(arm: string, options: Record<string, unknown> = {}): GrowthStrategy {
  const parsed = parseArm(arm);
  return createStrategy(parsed.strategy, { ...options, ...parsed.options });
}
