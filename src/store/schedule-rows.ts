import { scheduleDocumentSchema, type ScheduleDocument } from '../contract/schedule.ts';
import { describeIssues } from '../platform/schema-errors.ts';
import { firingOutcomes, type FiringOutcome, type FiringRecord, type StoredSchedule } from './types.ts';

/**
 * What both schedule stores (SQLite and memory) check before they keep anything and after they read it back,
 * so the two refuse and accept exactly the same rows (one contract suite runs on both).
 */

/**
 * The firing log's bound: a broken cron (every second) writes 86,400 rows a day, and the card must not fill
 * up with them. 200,000 rows is ~90 days of ~2,000 firings a day (20–30 MB on disk); past it, the oldest slots go first.
 */
const DEFAULT_MAX_FIRINGS = 200_000;

const scheduleSources: readonly StoredSchedule['source'][] = ['village', 'all'];

/** A local calendar day as the log's summaries name it; anything else is a caller's bug, refused before it is kept. */
export function checkDate(date: string): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) throw new RangeError(`schedule store: summary date must be YYYY-MM-DD, got ${JSON.stringify(date)}`);
  return date;
}

export function checkedCap(maxFirings: number | undefined): number {
  const cap = maxFirings ?? DEFAULT_MAX_FIRINGS;
  if (!Number.isSafeInteger(cap) || cap < 1) throw new RangeError(`schedule store: maxFirings must be a positive integer, got ${cap}`);
  return cap;
}

export function checkSource(source: string): asserts source is StoredSchedule['source'] {
  if (!(scheduleSources as readonly string[]).includes(source))
    throw new TypeError(`schedule store: source must be one of ${scheduleSources.join(', ')}, got ${JSON.stringify(source)}`);
}

/** The schedule as it is stored: its document as JSON text, refused unless it would read back. */
export function checkedSchedule(schedule: StoredSchedule): { source: StoredSchedule['source']; json: string; version: number; appliedAt: number } {
  checkSource(schedule.source);
  const parsed = scheduleDocumentSchema.safeParse(schedule.document);
  if (!parsed.success)
    throw new TypeError(
      `schedule store: refusing to save a ${schedule.source} schedule that would not read back: ${describeIssues(parsed.error, 'document').join('; ')}`,
    );
  const appliedAt = Math.floor(checkTime('appliedAt', schedule.appliedAt));
  return { source: schedule.source, json: JSON.stringify(parsed.data), version: parsed.data.version, appliedAt };
}

/** A stored document read back through its schema: the card may be damaged, or an older build may read a newer one's. */
export function readDocument(json: string): { ok: true; document: ScheduleDocument } | { ok: false; problems: string[] } {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    return { ok: false, problems: [`document: not JSON (${error instanceof Error ? error.message : String(error)})`] };
  }
  const parsed = scheduleDocumentSchema.safeParse(value);
  return parsed.success
    ? { ok: true, document: parsed.data }
    : { ok: false, problems: describeIssues(parsed.error, 'document', scheduleDocumentSchema) };
}

/** A copy holding only the record's own fields, checked: a slot is an exact integer, since it is half the key. */
export function checkedFiring(record: FiringRecord): FiringRecord {
  if (typeof record.programme !== 'string' || record.programme === '') throw new TypeError('programme log: programme must be a non-empty string');
  if (!Number.isSafeInteger(record.scheduledAt))
    throw new RangeError(`programme log: scheduledAt must be an integer epoch ms, got ${record.scheduledAt}`);
  if (!Number.isSafeInteger(record.version) || record.version < 0)
    throw new RangeError(`programme log: version must be a whole number, got ${record.version}`);
  checkOutcome(record.outcome);
  if (record.reason !== undefined && typeof record.reason !== 'string') throw new TypeError('programme log: reason must be a string');
  if (record.requestId !== undefined && (typeof record.requestId !== 'string' || record.requestId === ''))
    throw new TypeError('programme log: requestId must be a non-empty string');
  return {
    programme: record.programme,
    scheduledAt: record.scheduledAt,
    version: record.version,
    outcome: record.outcome,
    ...(record.reason === undefined ? {} : { reason: record.reason }),
    at: Math.floor(checkTime('at', record.at)),
    ...(record.requestId === undefined ? {} : { requestId: record.requestId }),
  };
}

export function checkedSettle(
  requestId: string,
  outcome: Exclude<FiringOutcome, 'playing'>,
  reason: string | undefined,
  at: number,
): { outcome: Exclude<FiringOutcome, 'playing'>; reason: string | undefined; at: number } {
  if (typeof requestId !== 'string' || requestId === '') throw new TypeError('programme log: requestId must be a non-empty string');
  checkOutcome(outcome);
  if ((outcome as FiringOutcome) === 'playing') throw new TypeError('programme log: settle needs a final outcome, not playing');
  if (reason !== undefined && typeof reason !== 'string') throw new TypeError('programme log: reason must be a string');
  return { outcome, reason, at: Math.floor(checkTime('at', at)) };
}

function checkOutcome(outcome: string): asserts outcome is FiringOutcome {
  if (!(firingOutcomes as readonly string[]).includes(outcome))
    throw new TypeError(`programme log: outcome must be one of ${firingOutcomes.join(', ')}, got ${JSON.stringify(outcome)}`);
}

export function checkTime(what: string, at: number): number {
  if (!Number.isFinite(at)) throw new RangeError(`schedule store: ${what} must be a finite epoch ms, got ${at}`);
  return at;
}
