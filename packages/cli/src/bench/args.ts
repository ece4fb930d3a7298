/**
 * A small, strict flag parser for the `gradmax bench` subcommands: `--flag value`, `--flag=value`, boolean
 * flags, repeatable flags and positionals. Anything unknown is a {@link UsageError}.
 */

/** A command-line usage error (exit code 2). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Declaration of one flag. */
export interface FlagSpec {
  /** `string` takes a value; `boolean` takes none. */
  type: 'string' | 'boolean';
  /** May be given several times (values collected in order; comma lists are split). */
  repeatable?: boolean;
}

/** Parsed flags and positionals. */
export interface ParsedArgs {
  flags: Map<string, string[]>;
  booleans: Set<string>;
  positionals: string[];
}

/** Parses `argv` against `specs` (flag names without dashes). `--help`/`-h` is always accepted as a boolean. */
export function parseArgs(command: string, argv: readonly string[], specs: Readonly<Record<string, FlagSpec>>): ParsedArgs {
  const flags = new Map<string, string[]>();
  const booleans = new Set<string>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '-h' || arg === '--help') {
      booleans.add('help');
      continue;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    if (!arg.startsWith('--')) throw new UsageError(`${command}: unknown flag ${arg} (flags are long, e.g. --workers 2; see ${command} --help)`);
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq >= 0 ? eq : undefined);
    const spec = specs[name];
    if (!spec) throw new UsageError(`${command}: unknown flag --${name} (see ${command} --help)`);
    if (spec.type === 'boolean') {
      if (eq >= 0) throw new UsageError(`${command}: flag --${name} takes no value`);
      booleans.add(name);
      continue;
    }
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('--') && next.length > 2)) throw new UsageError(`${command}: flag --${name} needs a value`);
      value = next;
      i++;
    }
    const list = flags.get(name) ?? [];
    if (list.length && !spec.repeatable) throw new UsageError(`${command}: flag --${name} given more than once`);
    list.push(value);
    flags.set(name, list);
  }
  return { flags, booleans, positionals };
}

/** The single value of a flag, or undefined. */
export function single(args: ParsedArgs, name: string): string | undefined {
  return args.flags.get(name)?.[0];
}

/** All values of a repeatable flag, with comma-separated lists split. */
export function list(args: ParsedArgs, name: string): string[] | undefined {
  const v = args.flags.get(name);
  return v ? v.flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean) : undefined;
}

/** Parses a non-negative integer flag value. */
export function integer(command: string, name: string, value: string, min = 0): number {
  if (!/^\d+$/.test(value) || Number(value) < min) throw new UsageError(`${command}: --${name} must be an integer ≥ ${min}, got "${value}"`);
  return Number(value);
}
