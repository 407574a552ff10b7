import { fstatSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pino, type Logger, type DestinationStream, type LevelWithSilent } from 'pino';

export type { Logger };

/** From node_modules, not the bundle: the service under systemd never formats for a person. */
function prettyStdout(): DestinationStream {
  const pretty = createRequire(import.meta.url)('pino-pretty') as (options: Record<string, unknown>) => DestinationStream;
  return pretty({
    destination: 1,
    sync: true,
    colorize: process.stdout.isTTY,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname',
    singleLine: true,
  });
}

/** pino's level numbers → syslog priorities (journald's `PRIORITY`): fatal 2 crit, error 3, warn 4, info 6, debug/trace 7. */
function syslogPriority(level: number): number {
  if (level >= 60) return 2;
  if (level >= 50) return 3;
  if (level >= 40) return 4;
  if (level >= 30) return 6;
  return 7;
}

/**
 * Whether file descriptor `fd` is still the journal stream systemd connected it to: `JOURNAL_STREAM` holds
 * its `device:inode` (systemd.exec(5)); a redirect by a wrapper script makes them differ.
 */
export function isJournalStream(env: NodeJS.ProcessEnv, fd: number): boolean {
  const [device, inode] = (env['JOURNAL_STREAM'] ?? '').split(':');
  if (device === undefined || inode === undefined || device === '' || inode === '') return false;
  try {
    const stats = fstatSync(fd, { bigint: true });
    return stats.dev === BigInt(device) && stats.ino === BigInt(inode);
  } catch {
    return false;
  }
}

/**
 * Each line prefixed with its syslog priority (`<4>{"level":40,…}`): journald strips the prefix and files
 * the line at that priority (SyslogLevelPrefix=, on by default), so `journalctl -p warning` shows warnings
 * and errors, while the line it keeps is the same JSON.
 */
function withPriorityPrefix(destination: DestinationStream): DestinationStream {
  return {
    write(line: string) {
      const level = /^\{"level":(\d+)/.exec(line)?.[1];
      destination.write(level === undefined ? line : `<${syslogPriority(Number(level))}>${line}`);
    },
  };
}

/**
 * JSON lines on stdout (journald keeps them, at each line's priority when stdout is the journal); tests
 * pass their own destination to read them back.
 */
export function createLogger(options: {
  level: LevelWithSilent;
  destination?: DestinationStream;
  /** Prefix each line with its syslog priority; by default, when stdout is the journal. */
  journald?: boolean;
  /** `pretty`: coloured lines for a technician at the console (pino-pretty, loaded only then), not JSON. */
  format?: 'json' | 'pretty';
  env?: NodeJS.ProcessEnv;
}): Logger {
  const destination = options.destination ?? (options.format === 'pretty' ? prettyStdout() : pino.destination({ dest: 1, sync: true }));
  const journald =
    options.journald ?? (options.destination === undefined && options.format !== 'pretty' && isJournalStream(options.env ?? process.env, 1));
  return pino(
    {
      level: options.level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        // One `level` per line, the log level: a field of that name (an emergency's level) would be a second
        // key of the same name, which jq and log shippers read as they please.
        log: (object) => {
          if (!Object.hasOwn(object, 'level')) return object;
          const { level, ...rest } = object;
          return { ...rest, levelField: level };
        },
      },
    },
    journald ? withPriorityPrefix(destination) : destination,
  );
}
