import { accessSync, constants, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseFlags, UsageError } from '../cli/args.ts';
import { printHelp } from '../cli/help.ts';
import { readConfigFile } from '../config/load.ts';
import { DEFAULT_TIMEZONE } from '../contract/schedule.ts';
import type { DailySummary, FiringCounts } from '../contract/schedule-summary.ts';
import { errorText } from '../platform/error-text.ts';
import { openScheduleLogReader, type ScheduleLogReader } from '../store/sqlite-schedule-store.ts';
import { dayBounds, summarizeDay } from './daily-summary.ts';
import { dateText, isCalendarDate, ZoneCalendar } from './zone-calendar.ts';
import type { FiringRecord } from './types.ts';

/** The systemd unit's config, as `village-edge status` reads it: a technician on the Pi types just `village-edge log`. */
const defaultConfigPath = '/etc/village-edge/config.json';
/** The file the service keeps its schedule and completion log in, inside its data directory. */
const databaseName = 'schedule.sqlite';

/** Where the command's lines go, and its clock (for "today"): stdout, stderr and Date.now, or a test's. */
export interface LogCommandIo {
  out(line: string): void;
  err(line: string): void;
  now(): number;
  /** Resolves once everything written has left the process. */
  flushed(): Promise<void>;
}

function processIo(): LogCommandIo {
  // `log | head` closes the pipe early: the reader's choice, not an error worth a stack trace.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });
  return {
    out: (line) => void process.stdout.write(`${line}\n`),
    err: (line) => void process.stderr.write(`${line}\n`),
    now: () => Date.now(),
    // The command line exits the moment a command returns: a full pipe would lose what is still queued.
    flushed: () => new Promise((resolve) => process.stdout.write('', () => resolve())),
  };
}

/**
 * `village-edge log [--since DATE] [--until DATE] [--json] [--config FILE]`: the completion log, one line per
 * firing in the schedule's local time, then the totals of each day. Reads the service's database read-only,
 * so it may run while the service does. Exit 0 when it printed (or there is nothing yet), 1 when the database
 * or config cannot be read; a wrong flag is a UsageError (one line, exit 2).
 */
export async function logCommand(args: string[], io: LogCommandIo = processIo()): Promise<number> {
  try {
    return printRequestedLog(args, io);
  } finally {
    await io.flushed();
  }
}

function printRequestedLog(args: string[], io: LogCommandIo): number {
  const { values } = parseFlags('log', args, {
    config: { type: 'string' },
    since: { type: 'string' },
    until: { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  if (values.help) return printHelp('log');
  const since = values.since === undefined ? undefined : dateFlag('since', values.since);
  const until = values.until === undefined ? undefined : dateFlag('until', values.until);
  if (since !== undefined && until !== undefined && until < since) throw new UsageError(`log: --until ${until} is before --since ${since}`);

  const configPath = values.config ?? defaultConfigPath;
  const config = readConfigFile(configPath);
  if (!config.ok) {
    const more = config.errors.length > 1 ? ` (and ${config.errors.length - 1} more: check-config ${configPath})` : '';
    io.err(`log: ${config.errors[0] ?? configPath}${more}`);
    return 1;
  }
  const path = join(config.config.dataDir, databaseName);
  if (!existsSync(path)) {
    // Not an error: a village whose schedule never fired has no log yet. Kept off stdout with --json.
    (values.json ? io.err : io.out)(`no firings recorded yet (${path} does not exist: the service makes it when it first keeps a schedule)`);
    return 0;
  }
  let reader: ScheduleLogReader;
  try {
    reader = openScheduleLogReader({ path });
  } catch (error) {
    io.err(`log: ${errorText(error)}${readable(path) ? '' : ' (permission denied: run it as the service user, or with sudo)'}`);
    return 1;
  }
  try {
    const calendar = new ZoneCalendar(scheduleZone(reader, io));
    const today = calendar.date(io.now());
    const from = since ?? today;
    // Dates compare as text (YYYY-MM-DD); a --since after today (a Pi whose clock is behind) shows that one day.
    const to = until ?? (from.localeCompare(today) > 0 ? from : today);
    printLog({ reader, calendar, from, to, json: values.json }, io);
    return 0;
  } catch (error) {
    // A row this build cannot read: named by the store, one line, no stack.
    io.err(`log: ${errorText(error)}`);
    return 1;
  } finally {
    reader.close();
  }
}

function dateFlag(flag: string, value: string): string {
  if (!isCalendarDate(value))
    throw new UsageError(`log: --${flag} ${JSON.stringify(value)}: not a calendar date; give one as YYYY-MM-DD, e.g. 2026-12-01`);
  return value;
}

function readable(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** The zone the running schedule counts its days in: the village's own document wins over `all`, as it does when it runs. */
function scheduleZone(reader: ScheduleLogReader, io: LogCommandIo): string {
  for (const source of ['village', 'all'] as const) {
    try {
      const stored = reader.load(source);
      if (stored !== undefined) return stored.document.timezone;
    } catch (error) {
      io.err(`log: warning: ${errorText(error)}`);
    }
  }
  return DEFAULT_TIMEZONE;
}

function printLog(options: { reader: ScheduleLogReader; calendar: ZoneCalendar; from: string; to: string; json: boolean }, io: LogCommandIo): void {
  const { reader, calendar, from, to, json } = options;
  const { timezone } = calendar;
  const [start] = dayBounds(from, calendar);
  const [, end] = dayBounds(to, calendar);
  const records = reader.between(start, end);
  const days = byLocalDay(records, calendar);
  const summaries = days.map(({ date, firings }) => summarizeDay(firings, { date, calendar }));
  const clock = localClock(calendar);
  if (json) {
    for (const { date, firings } of days) for (const r of firings) io.out(JSON.stringify(firingJson(r, date, clock(r.scheduledAt))));
    for (const summary of summaries) io.out(JSON.stringify({ type: 'day', ...summary }));
    return;
  }
  const range = from === to ? `on ${from}` : `from ${from} to ${to}`;
  if (records.length === 0) return io.out(`no firings recorded ${range} (days in ${timezone})`);
  io.out(`firings ${range}, times in ${timezone}:`);
  const rows = records.map((r) => ({ ...r, local: clock(r.scheduledAt) }));
  // A reduce, not Math.max(...rows): a log at its row cap would overflow the call's argument list.
  const width = (pick: (row: (typeof rows)[number]) => string) => rows.reduce((widest, row) => Math.max(widest, pick(row).length), 0);
  const [timeWidth, programmeWidth, outcomeWidth] = [width((r) => r.local), width((r) => r.programme), width((r) => r.outcome)];
  for (const r of rows) {
    const outcome = r.reason === undefined ? r.outcome : `${r.outcome.padEnd(outcomeWidth)}  ${r.reason}`;
    io.out(`${r.local.padEnd(timeWidth)}  ${r.programme.padEnd(programmeWidth)}  ${outcome}`);
  }
  io.out('');
  io.out('per day:');
  for (const summary of summaries) io.out(`${summary.date}  ${countsText(summary.totals)}`);
  if (summaries.length > 1) io.out(`${'total'.padEnd(10)}  ${countsText(sumCounts(summaries))}`);
}

/** Records come oldest slot first, so a day's bounds are worked out once per day that has firings. */
function byLocalDay(records: readonly FiringRecord[], calendar: ZoneCalendar): { date: string; firings: FiringRecord[] }[] {
  const days: { date: string; firings: FiringRecord[] }[] = [];
  let current: { date: string; firings: FiringRecord[]; end: number } | undefined;
  for (const record of records) {
    if (current === undefined || record.scheduledAt >= current.end) {
      const date = calendar.date(record.scheduledAt);
      current = { date, firings: [], end: dayBounds(date, calendar)[1] };
      days.push(current);
    }
    current.firings.push(record);
  }
  return days.map(({ date, firings }) => ({ date, firings }));
}

function firingJson(r: FiringRecord, date: string, local: string) {
  return {
    type: 'firing',
    date,
    local,
    programme: r.programme,
    scheduledAt: new Date(r.scheduledAt).toISOString(),
    outcome: r.outcome,
    ...(r.reason === undefined ? {} : { reason: r.reason }),
    version: r.version,
    at: new Date(r.at).toISOString(),
    ...(r.requestId === undefined ? {} : { requestId: r.requestId }),
  };
}

/** "2026-12-01 08:00" in the zone, with seconds only when the slot has them (six-field cron). */
function localClock(calendar: ZoneCalendar): (epochMs: number) => string {
  const two = (n: number) => String(n).padStart(2, '0');
  return (epochMs) => {
    const t = calendar.local(epochMs);
    return `${dateText(t)} ${two(t.hour)}:${two(t.minute)}${t.second === 0 ? '' : `:${two(t.second)}`}`;
  };
}

/** "due 4, played 3 (finished 2, preempted 1), missed 1": the outcomes that occurred, played ones grouped. */
function countsText(c: FiringCounts): string {
  const nonZero = (keys: readonly (keyof FiringCounts)[]) => keys.filter((k) => c[k] > 0).map((k) => `${k} ${c[k]}`);
  const playedParts = nonZero(['finished', 'preempted', 'stopped', 'playing']);
  const played = `played ${c.played}${playedParts.length === 0 ? '' : ` (${playedParts.join(', ')})`}`;
  return [`due ${c.due}`, played, ...nonZero(['missed', 'failed', 'skipped', 'withheld'])].join(', ');
}

function sumCounts(summaries: readonly DailySummary[]): FiringCounts {
  const total = { ...summaries[0]!.totals };
  for (const { totals } of summaries.slice(1)) for (const key of Object.keys(total) as (keyof FiringCounts)[]) total[key] += totals[key];
  return total;
}
