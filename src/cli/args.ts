import { parseArgs, type ParseArgsConfig } from 'node:util';

/**
 * A user's mistake on the command line: printed as one line (never a stack) and exit 2, as getopt tools do.
 * Thrown by the parsing and checking of flags; the command line catches it in one place.
 */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * node's parseArgs, strict, with its ERR_PARSE_ARGS_* errors turned into one line that names the flag
 * (its own messages run to three lines and suggest `--` tricks a dispatcher does not need).
 */
export function parseFlags<O extends Options>(command: string, args: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h', default: false } }, strict: true, allowPositionals });
  } catch (error) {
    throw new UsageError(`${command}: ${describeParseError(error)} (see ${command} --help)`);
  }
}

function describeParseError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  const message = error instanceof Error ? error.message : String(error);
  const flag = /'(-[^' ]+)/.exec(message)?.[1];
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown flag ${flag ?? message}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      // A string flag given last, or followed by another flag ("--kid --out x"), has no value.
      return message.includes('argument missing') || message.includes('ambiguous')
        ? `${flag ?? 'a flag'} needs a value`
        : `${flag ?? 'a flag'} takes no value`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${/'([^']*)'/.exec(message)?.[1] ?? message}`;
    default:
      return message.split('\n')[0] ?? message;
  }
}

/** A whole number in [min, max], or a UsageError naming the flag. */
export function intFlag(command: string, flag: string, value: string, min: number, max: number): number {
  const n = /^-?\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new UsageError(`${command}: --${flag} ${JSON.stringify(value)}: a whole number from ${min} to ${max}`);
  return n;
}

/** One of `allowed`, or a UsageError naming the flag and the choices. */
export function choiceFlag<T extends string>(command: string, flag: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value))
    throw new UsageError(`${command}: --${flag} ${JSON.stringify(value)}: one of ${allowed.join(', ')}`);
  return value as T;
}
