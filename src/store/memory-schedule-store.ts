import type { FiringOutcome, FiringRecord, ProgrammeLog, ScheduleStore, StoredSchedule } from './types.ts';
import { checkDate, checkedCap, checkedFiring, checkedSchedule, checkedSettle, checkSource, checkTime, readDocument } from './schedule-rows.ts';

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
