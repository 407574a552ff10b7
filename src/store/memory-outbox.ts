import { checkLimit, payloadJson, preparedRecord } from './outbox-record.ts';
import {
  outboxStreams,
  type AppendInput,
  type AttemptUpdate,
  type JsonObject,
  type Outbox,
  type OutboxRecord,
  type OutboxStats,
  type OutboxStream,
} from './types.ts';

/** A record as held here: the payload kept as JSON text, exactly as SQLite keeps it. */
type StoredRecord = Omit<OutboxRecord, 'payload'> & { payload: string };

/**
 * The outbox in memory: where records live while the data directory cannot be written (the resilient
 * outbox falls back to it), and the store of unit tests of domain logic. It passes the same contract suite
 * as the SQLite outbox: payloads round-trip through JSON and every record handed out is a copy, so a test
 * cannot pass here by relying on shared objects and then fail against the real store.
 */
export class MemoryOutbox implements Outbox {
  private readonly records = new Map<string, StoredRecord>();
  private readonly lastSeq = new Map<OutboxStream, number>();
  private closed = false;

  append(input: AppendInput): OutboxRecord {
    return this.commit(this.prepare(input));
  }

  prepare(input: AppendInput): OutboxRecord {
    this.checkOpen();
    if (!(outboxStreams as readonly string[]).includes(input.stream)) throw new Error(`outbox: unknown stream ${String(input.stream)}`);
    if (this.records.has(input.id)) throw new Error(`outbox: record ${input.id} already exists`);
    const seq = (this.lastSeq.get(input.stream) ?? 0) + 1;
    const record = preparedRecord(input, seq);
    this.lastSeq.set(input.stream, seq);
    return record;
  }

  commit(record: OutboxRecord): OutboxRecord {
    this.checkOpen();
    if (this.records.has(record.id)) throw new Error(`outbox: record ${record.id} already exists`);
    const stored: StoredRecord = { ...record, payload: payloadJson(record.payload, record.id) };
    this.records.set(record.id, stored);
    this.raiseSeqFloor(record.stream, record.seq);
    return toRecord(stored);
  }

  updatePayload(id: string, payload: JsonObject): void {
    const stored = this.open(id, 'update payload of');
    if (stored.ackedAt !== null) throw new Error(`outbox: cannot update payload of ${id}: already acked`);
    stored.payload = payloadJson(payload, id);
  }

  due(stream: OutboxStream, now: number, limit: number): OutboxRecord[] {
    this.checkOpen();
    checkLimit('due', limit);
    return [...this.records.values()]
      .filter((r) => r.stream === stream && r.ackedAt === null && r.nextAttemptAt <= now)
      .sort((a, b) => a.seq - b.seq)
      .slice(0, limit)
      .map(toRecord);
  }

  recordAttempts(updates: readonly AttemptUpdate[]): void {
    // All or nothing, like the SQLite transaction: check every id before changing any.
    const stored = updates.map((update) => this.open(update.id, 'record an attempt of'));
    updates.forEach((update, i) => {
      const record = stored[i]!;
      if (record.ackedAt !== null) return;
      record.attempts = update.attempts;
      record.nextAttemptAt = update.nextAttemptAt;
    });
  }

  rescheduleAll(now: number): void {
    this.checkOpen();
    for (const r of this.records.values()) if (r.ackedAt === null && r.nextAttemptAt > now) r.nextAttemptAt = now;
  }

  ackMany(ids: readonly string[], now: number): OutboxRecord[] {
    this.checkOpen();
    return ids.flatMap((id) => {
      const stored = this.records.get(id);
      if (!stored || stored.ackedAt !== null) return [];
      stored.ackedAt = now;
      return [toRecord(stored)];
    });
  }

  get(id: string): OutboxRecord | undefined {
    this.checkOpen();
    const stored = this.records.get(id);
    return stored && toRecord(stored);
  }

  latestUnacked(stream: OutboxStream, subject: string): OutboxRecord | undefined {
    this.checkOpen();
    let latest: StoredRecord | undefined;
    for (const r of this.records.values()) {
      if (r.stream === stream && r.subject === subject && r.ackedAt === null && (!latest || r.seq > latest.seq)) latest = r;
    }
    return latest && toRecord(latest);
  }

  recent(stream: OutboxStream, limit: number): OutboxRecord[] {
    this.checkOpen();
    checkLimit('recent', limit);
    return [...this.records.values()]
      .filter((r) => r.stream === stream)
      .sort((a, b) => b.seq - a.seq)
      .slice(0, limit)
      .map(toRecord);
  }

  stats(): OutboxStats {
    this.checkOpen();
    const stats: OutboxStats = { depth: 0, oldestUnackedAt: null, byStream: { alarm: 0, fault: 0, report: 0 } };
    for (const r of this.records.values()) {
      if (r.ackedAt !== null) continue;
      stats.depth += 1;
      stats.byStream[r.stream] += 1;
      if (stats.oldestUnackedAt === null || r.createdAt < stats.oldestUnackedAt) stats.oldestUnackedAt = r.createdAt;
    }
    return stats;
  }

  close(): void {
    this.closed = true;
  }

  /** The next seq of `stream` will be above `seq`: seqs handed out elsewhere are never handed out again. */
  raiseSeqFloor(stream: OutboxStream, seq: number): void {
    if (seq > (this.lastSeq.get(stream) ?? 0)) this.lastSeq.set(stream, seq);
  }

  /** Every record held, acked or not, oldest seq first per stream. */
  all(): OutboxRecord[] {
    return [...this.records.values()].sort((a, b) => a.seq - b.seq).map(toRecord);
  }

  private open(id: string, action: string): StoredRecord {
    this.checkOpen();
    const stored = this.records.get(id);
    if (!stored) throw new Error(`outbox: cannot ${action} ${id}: unknown record`);
    return stored;
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('outbox: closed');
  }
}

function toRecord(stored: StoredRecord): OutboxRecord {
  return { ...stored, payload: JSON.parse(stored.payload) as JsonObject };
}

export function createMemoryOutbox(): MemoryOutbox {
  return new MemoryOutbox();
}
