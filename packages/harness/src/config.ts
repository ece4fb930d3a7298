/**
 * Flat task configs: defaults, named presets and `key=value` overrides with type coercion and checks.
 */
import { createHash } from 'node:crypto';
import { InvalidArgumentError } from '@gradmax/core';

/** A config value: number, string, boolean or list of strings. */
export type ConfigValue = number | string | boolean | string[];

/**
 * Resolves `defaults` ← `presets[preset]` ← `overrides`. Override values may be strings (from the command
 * line) and are coerced to the default's type; unknown keys and bad values throw {@link InvalidArgumentError}
 * naming the task and key.
 */
export function resolveFlatConfig<C extends { [key: string]: ConfigValue }>(
  task: string,
  defaults: C,
  presets: Readonly<Record<string, Partial<C>>>,
  preset: string,
  overrides: Record<string, unknown> = {},
): C {
  const base = presets[preset];
  if (!base) throw new InvalidArgumentError(`task "${task}" has no preset "${preset}"; presets: ${Object.keys(presets).join(', ')}`, { task, preset });
  const out: Record<string, ConfigValue> = { ...defaults, ...base };
  for (const [key, raw] of Object.entries(overrides)) {
    if (!(key in defaults)) {
      throw new InvalidArgumentError(`task "${task}" has no config key "${key}"; keys: ${Object.keys(defaults).join(', ')}`, { task, key });
    }
    out[key] = coerce(task, key, defaults[key]!, raw);
  }
  return out as C;
}

function coerce(task: string, key: string, like: ConfigValue, raw: unknown): ConfigValue {
  const bad = (): never => {
    throw new InvalidArgumentError(`task "${task}" config "${key}": expected ${Array.isArray(like) ? 'a comma-separated list' : typeof like}, got ${JSON.stringify(raw)}`, { task, key });
  };
  if (typeof like === 'number') {
    const v = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
    return Number.isFinite(v) ? v : bad();
  }
  if (typeof like === 'boolean') {
    if (typeof raw === 'boolean') return raw;
    if (raw === 'true' || raw === '1') return true;
    if (raw === 'false' || raw === '0') return false;
    return bad();
  }
  if (Array.isArray(like)) {
    if (Array.isArray(raw) && raw.every((x) => typeof x === 'string')) return raw as string[];
    if (typeof raw === 'string') return raw.split(',').map((s) => s.trim()).filter(Boolean);
    return bad();
  }
  return typeof raw === 'string' ? raw : bad();
}

/** Checks that `config[key]` is an integer ≥ `min`. */
export function requireInteger(task: string, config: Record<string, unknown>, key: string, min: number): void {
  const v = config[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw new InvalidArgumentError(`task "${task}" config "${key}" must be an integer ≥ ${min}, got ${String(v)}`, { task, key });
  }
}

/** Checks that `config[key]` is a finite number > 0. */
export function requirePositive(task: string, config: Record<string, unknown>, key: string): void {
  const v = config[key];
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) {
    throw new InvalidArgumentError(`task "${task}" config "${key}" must be a positive number, got ${String(v)}`, { task, key });
  }
}

/** Canonical JSON (sorted keys) of a value. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value as object).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** 8-hex-digit hash of a config's canonical JSON. */
export function configHash(config: unknown): string {
  return createHash('sha256').update(canonicalJson(config)).digest('hex').slice(0, 8);
}
