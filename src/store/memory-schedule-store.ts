import { scheduleDocumentSchema, type ScheduleDocument } from '../contract/schedule.ts';
import { describeIssues } from '../platform/schema-errors.ts';
import { firingOutcomes, type FiringOutcome, type FiringRecord, type ProgrammeLog, type ScheduleStore, type StoredSchedule } from './types.ts';

/** A local calendar day as the log's summaries name it; anything else is a caller's bug, refused before it is kept. */
export function checkDate(date: string): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) throw new RangeError(`schedule store: summary date must be YYYY-MM-DD, got ${JSON.stringify(date)}`);
  return date;
}

/**
 * The firing log's bound: a broken cron (every second) writes 86,400 rows a day, and the card must not fill
 * up with them. 200,000 rows is ~90 days of ~2,000 firings a day (20–30 MB on disk); past it, the oldest slots go first.
 */
const DEFAULT_MAX_FIRINGS = 200_000;

const scheduleSources: readonly StoredSchedule['source'][] = ['village', 'all'];

/**
 * The schedule's documents and completion log in memory, for unit tests of the scheduler. It passes the same
 * contract suite as the SQLite store: documents are kept as JSON text and read back through their schema,
 * and every record handed out is a copy, so a test cannot pass here by sharing objects and fail on SQLite.
 */
export function createMemoryScheduleStore(options: { maxFirings?: number } = {}): MemoryScheduleStore {
  return new MemoryScheduleStore(checkedCap(options.maxFirings));
}

export class MemoryScheduleStore implements ScheduleStore, ProgrammeLog {
  private readonly schedules = new Map<StoredSchedule['source'], { json: string; appliedAt: number }>();
  private readonly firings = new Map<string, FiringRecord>();
  private cursorAt: number | undefined;
  private summarized: string | undefined;
  private closed = false;

  constructor(private readonly maxFirings: number) {}

  load(source: StoredSchedule['source']): StoredSchedule | undefined {
    this.checkOpen();
    checkSource(source);
    const row = this.schedules.get(source);
    if (row === undefined) return undefined;
    const read = readDocument(row.json);
    if (!read.ok) throw new Error(`schedule store (memory): the stored ${source} schedule no longer reads: ${read.problems.join('; ')}`);
    return { source, document: read.document, appliedAt: row.appliedAt };
  }

  save(schedule: StoredSchedule): void {
    this.checkOpen();
    const checked = checkedSchedule(schedule);
    this.schedules.set(checked.source, { json: checked.json, appliedAt: checked.appliedAt });
  }

  open(record: FiringRecord): boolean {
    this.checkOpen();
    const checked = checkedFiring(record);
    const key = slotKey(checked.programme, checked.scheduledAt);
    if (this.firings.has(key)) return false;
    this.firings.set(key, checked);
    const excess = this.firings.size - this.maxFirings;
    if (excess > 0) {
      const oldest = this.ordered((r) => r !== checked).slice(0, excess);
      for (const r of oldest) this.firings.delete(slotKey(r.programme, r.scheduledAt));
    }
    return true;
  }

  settle(requestId: string, outcome: Exclude<FiringOutcome, 'playing'>, reason: string | undefined, at: number): boolean {
    this.checkOpen();
    const settled = checkedSettle(requestId, outcome, reason, at);
    let found = false;
    for (const [key, r] of this.firings) {
      if (r.requestId !== requestId || r.outcome !== 'playing') continue;
      const { reason: _old, ...rest } = r;
      this.firings.set(key, {
        ...rest,
        outcome: settled.outcome,
        at: settled.at,
        ...(settled.reason === undefined ? {} : { reason: settled.reason }),
      });
      found = true;
    }
    return found;
  }

  has(programme: string, scheduledAt: number): boolean {
    this.checkOpen();
    return this.firings.has(slotKey(programme, scheduledAt));
  }

  between(from: number, to: number): FiringRecord[] {
    this.checkOpen();
    return this.ordered((r) => r.scheduledAt >= from && r.scheduledAt < to);
  }

  playing(): FiringRecord[] {
    this.checkOpen();
    return this.ordered((r) => r.outcome === 'playing');
  }

  prune(before: number): number {
    this.checkOpen();
    checkTime('prune before', before);
    let pruned = 0;
    for (const [key, r] of this.firings) {
      if (r.scheduledAt >= before) continue;
      this.firings.delete(key);
      pruned += 1;
    }
    return pruned;
  }

  cursor(): number | undefined {
    this.checkOpen();
    return this.cursorAt;
  }

  setCursor(at: number): void {
    this.checkOpen();
    this.cursorAt = Math.floor(checkTime('cursor', at));
  }

  summarizedThrough(): string | undefined {
    this.checkOpen();
    return this.summarized;
  }

  setSummarizedThrough(date: string): void {
    this.checkOpen();
    this.summarized = checkDate(date);
  }

  /** Idempotent; every other method throws once closed. */
  close(): void {
    this.closed = true;
  }

  /** Copies, oldest slot first, then by programme, as the SQLite index orders them. */
  private ordered(keep: (record: FiringRecord) => boolean): FiringRecord[] {
    return [...this.firings.values()]
      .filter(keep)
      .sort((a, b) => a.scheduledAt - b.scheduledAt || (a.programme < b.programme ? -1 : a.programme > b.programme ? 1 : 0))
      .map((r) => ({ ...r }));
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('schedule store: closed');
  }
}

function slotKey(programme: string, scheduledAt: number): string {
  return `${scheduledAt}\u0000${programme}`;
}

// The rules below are the contract's, kept by both stores: what may be written, and how a document is read back.

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

function checkTime(what: string, at: number): number {
  if (!Number.isFinite(at)) throw new RangeError(`schedule store: ${what} must be a finite epoch ms, got ${at}`);
  return at;
}
