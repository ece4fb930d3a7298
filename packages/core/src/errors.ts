/**
 * Typed errors shared by every gradmax package. Each error carries a stable `code` and a
 * `details` record naming what is wrong and where (site, layer, node, file, shape).
 * @packageDocumentation
 */

/** Base class of every error thrown by gradmax. */
export class GradmaxError extends Error {
  /** Stable machine-readable code, e.g. `"shape-mismatch"`. */
  readonly code: string;
  /** Structured context: which site, layer, node, file or shape the error concerns. */
  readonly details: Readonly<Record<string, unknown>>;
  constructor(code: string, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }
}

/** Two shapes that must agree do not. The message names both shapes and what they belong to. */
export class ShapeMismatchError extends GradmaxError {
  constructor(what: string, expected: readonly number[] | string, actual: readonly number[] | string, details: Record<string, unknown> = {}) {
    const fmt = (s: readonly number[] | string) => (typeof s === 'string' ? s : `[${s.join(', ')}]`);
    super('shape-mismatch', `${what}: expected shape ${fmt(expected)}, got ${fmt(actual)}`, { what, expected, actual, ...details });
  }
}

/** A value that must be finite is NaN or ±Infinity. */
export class NonFiniteError extends GradmaxError {
  constructor(what: string, index: number, value: number, details: Record<string, unknown> = {}) {
    super('non-finite', `${what} contains a non-finite value (${value}) at flat index ${index}`, { what, index, value, ...details });
  }
}

/** An argument or option is outside its allowed range or of the wrong kind. */
export class InvalidArgumentError extends GradmaxError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('invalid-argument', message, details);
  }
}

/** The request is well-formed but cannot be carried out exactly (e.g. GradMax with f'(0) = 0, dilated convs). */
export class UnsupportedError extends GradmaxError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('unsupported', message, details);
  }
}

/** A strategy needs a statistic (moment, samples, loss oracle) that was not supplied. */
export class MissingStatisticError extends GradmaxError {
  constructor(strategy: string, statistic: string, site?: string) {
    super('missing-statistic', `strategy "${strategy}" needs ${statistic}${site ? ` for site "${site}"` : ''}, which was not supplied`, { strategy, statistic, site });
  }
}

/** No strategy (or backend) is registered under the requested name. */
export class UnknownNameError extends GradmaxError {
  constructor(kind: string, name: string, known: readonly string[]) {
    super('unknown-name', `unknown ${kind} "${name}"; known: ${known.length ? known.join(', ') : '(none registered)'}`, { kind, name, known });
  }
}

/** Throws {@link NonFiniteError} when `values` holds NaN or ±Infinity. */
export function assertFinite(what: string, values: ArrayLike<number>, details: Record<string, unknown> = {}): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) throw new NonFiniteError(what, i, v, details);
  }
}
