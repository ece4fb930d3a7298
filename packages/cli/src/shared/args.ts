/**
 * Argument parsing on top of `node:util` `parseArgs`, with one-line usage errors.
 * @packageDocumentation
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A usage error: printed as one line on stderr, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Option declarations, as for `node:util` `parseArgs`. */
export type OptionSpecs = NonNullable<ParseArgsConfig['options']>;

/** Parsed values and positionals. */
export interface Parsed {
  /** Option values by name. */
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  /** Positional arguments. */
  positionals: string[];
}

/**
 * Parses `argv` strictly. `--help`/`-h` is always accepted. Errors become {@link UsageError}s naming the command,
 * e.g. `gradmax onnx widen: unknown option --foo (see gradmax onnx widen --help)`.
 */
export function parseCommand(command: string, argv: readonly string[], options: OptionSpecs, positionals: { min?: number; max?: number; names?: string } = {}): Parsed {
  const see = `(see ${command} --help)`;
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: { help: { type: 'boolean', short: 'h' }, ...options }, allowPositionals: true, strict: true });
  } catch (e) {
    const err = e as Error & { code?: string };
    const msg = err.message.split('\n')[0]!;
    let text: string;
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const name = /'([^']+)'/.exec(msg)?.[1] ?? msg;
      text = `unknown option ${name}`;
    } else if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const name = /'(-[^' ]+)/.exec(msg)?.[1];
      text = msg.includes('argument missing') && name ? `option ${name} needs a value` : msg.replace(/\.$/, '');
    } else text = msg.replace(/\.$/, '');
    throw new UsageError(`${command}: ${text} ${see}`);
  }
  const values = parsed.values as Parsed['values'];
  if (values.help) return { values, positionals: parsed.positionals };
  const n = parsed.positionals.length;
  if (positionals.min !== undefined && n < positionals.min) throw new UsageError(`${command}: missing ${positionals.names ?? 'arguments'} ${see}`);
  if (positionals.max !== undefined && n > positionals.max) throw new UsageError(`${command}: unexpected argument "${parsed.positionals[positionals.max]}" ${see}`);
  return { values, positionals: parsed.positionals };
}

/** Parses a non-negative/positive integer flag value, or throws a {@link UsageError}. */
export function parseIntegerFlag(command: string, flag: string, text: string, min = 0): number {
  if (!/^-?\d+$/.test(text.trim())) throw new UsageError(`${command}: ${flag} expects an integer, got "${text}"`);
  const v = Number(text);
  if (!Number.isSafeInteger(v) || v < min) throw new UsageError(`${command}: ${flag} must be an integer >= ${min}, got ${text}`);
  return v;
}

/** Parses a finite number flag value (at least `min` when given), or throws a {@link UsageError}. */
export function parseNumberFlag(command: string, flag: string, text: string, min?: number): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v)) throw new UsageError(`${command}: ${flag} expects a number, got "${text}"`);
  if (min !== undefined && v < min) throw new UsageError(`${command}: ${flag} must be >= ${min}, got ${text}`);
  return v;
}

/** Parses `name=value` pairs (e.g. `--dim N=4`). */
export function parsePairs(command: string, flag: string, items: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const item of items) {
    const at = item.indexOf('=');
    if (at <= 0) throw new UsageError(`${command}: ${flag} expects NAME=VALUE, got "${item}"`);
    out.set(item.slice(0, at), item.slice(at + 1));
  }
  return out;
}

/** A string[] view of a possibly repeated string option. */
export function stringList(v: string | boolean | (string | boolean)[] | undefined): string[] {
  if (v === undefined || typeof v === 'boolean') return [];
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string');
}
