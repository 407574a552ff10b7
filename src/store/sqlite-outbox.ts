import type Database from 'better-sqlite3';
import { checkLimit, payloadJson, preparedRecord } from './outbox-record.ts';
import { resolve } from 'node:path';
import { DurableStorageError, openDurableSqlite } from './durable-sqlite.ts';
import type { Logger } from '../platform/logger.ts';
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

/**
 * Retention of acked rows: they are kept 7 days (so an operator can still see what went out and when), then
 * deleted by `ack`/`ackMany` itself — at most once an hour of the injected clock, a bounded batch per call,
 * inside the ack's own transaction so it costs no extra fsync. A full batch means a backlog (e.g. a week
 * after a 100,000-record drain), so the next ack prunes again. Freed pages are reused by SQLite, so the
 * file stays at its high-water mark instead of growing; no VACUUM is needed.
 */
const defaultAckedRetentionMs = 7 * 24 * 3600_000;
const pruneIntervalMs = 3600_000;
const pruneBatch = 1000;

/** The outbox file cannot be opened, is corrupt, or is newer than this build. */
export class OutboxStorageError extends DurableStorageError {
  constructor(path: string, problem: string, options?: { cause?: unknown }) {
    super('outbox', path, problem, options);
    this.name = 'OutboxStorageError';
  }
}

/** Forward migrations; entry i takes the schema from user_version i to i + 1. Never edit a shipped entry. */
const migrations: readonly string[] = [
  `CREATE TABLE outbox_record (
     id TEXT PRIMARY KEY,
     stream TEXT NOT NULL,
     seq INTEGER NOT NULL,
     subject TEXT NOT NULL,
     payload TEXT NOT NULL,
     attempts INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     next_attempt_at INTEGER NOT NULL,
     acked_at INTEGER,
     UNIQUE (stream, seq)
   );
   -- A counter, not max(seq): a seq must never be handed out twice, even after the newest rows are pruned.
   CREATE TABLE outbox_seq (stream TEXT PRIMARY KEY, last_seq INTEGER NOT NULL);
   -- Partial indexes hold only unacked rows, so due() and stats() cost the backlog, not the history.
   -- due() walks this in seq order, filters next_attempt_at from the index itself, and stops at LIMIT.
   CREATE INDEX outbox_unacked_by_seq ON outbox_record (stream, seq, next_attempt_at, created_at)
     WHERE acked_at IS NULL;
   CREATE INDEX outbox_unacked_by_subject ON outbox_record (stream, subject, seq) WHERE acked_at IS NULL;
   CREATE INDEX outbox_acked ON outbox_record (acked_at) WHERE acked_at IS NOT NULL;`,
];

export interface AbsorbInput {
  records: readonly OutboxRecord[];
  seqFloors: Partial<Record<OutboxStream, number>>;
  payloads: ReadonlyArray<{ id: string; payload: JsonObject }>;
  acks: ReadonlyArray<{ id: string; at: number }>;
}

interface RecordRow {
  id: string;
  stream: string;
  seq: number;
  subject: string;
  payload: string;
  attempts: number;
  created_at: number;
  next_attempt_at: number;
  acked_at: number | null;
}

const columns = 'id, stream, seq, subject, payload, attempts, created_at, next_attempt_at, acked_at';
const knownStreams: ReadonlySet<string> = new Set(outboxStreams);

/**
 * Opens (creating if missing) the outbox database at `path`. WAL with synchronous=FULL: every commit is
 * fsync'd before the call that made it returns. The whole file is checked (quick_check) on open, so a
 * damaged card is reported at start-up, naming the path, rather than at the first unlucky read.
 */
export function openSqliteOutbox(options: { path: string; logger?: Logger; ackedRetentionMs?: number }): SqliteOutbox {
  const path = resolve(options.path);
  let db: Database.Database | undefined;
  try {
    // A big transaction (rescheduleAll over a long backlog) grows the WAL; without a limit it stays that big.
    const opened = openDurableSqlite({
      path,
      migrations,
      label: 'outbox',
      journalSizeLimit: 4194304,
      ...(options.logger ? { logger: options.logger } : {}),
    });
    db = opened.db;
    const { schemaVersion, createdSchema } = opened;
    options.logger?.info({ path, journalMode: 'wal', synchronous: 'full', schemaVersion, created: createdSchema }, 'outbox opened');
    return new SqliteOutbox(db, path, options.ackedRetentionMs ?? defaultAckedRetentionMs, createdSchema);
  } catch (error) {
    db?.close();
    if (error instanceof OutboxStorageError) throw error;
    throw new OutboxStorageError(path, error instanceof Error ? error.message : String(error), { cause: error });
  }
}

function prepareStatements(db: Database.Database) {
  return {
    get: db.prepare<[string], RecordRow>(`SELECT ${columns} FROM outbox_record WHERE id = ?`),
    // INDEXED BY: never let the planner fall back to a scan and sort of the whole backlog.
    due: db.prepare<[string, number, number], RecordRow>(
      `SELECT ${columns} FROM outbox_record INDEXED BY outbox_unacked_by_seq
       WHERE stream = ? AND acked_at IS NULL AND next_attempt_at <= ? ORDER BY seq LIMIT ?`,
    ),
    recordAttempt: db.prepare<[number, number, string]>(
      'UPDATE outbox_record SET attempts = ?, next_attempt_at = ? WHERE id = ? AND acked_at IS NULL',
    ),
    rescheduleAll: db.prepare<[number, number]>('UPDATE outbox_record SET next_attempt_at = ? WHERE acked_at IS NULL AND next_attempt_at > ?'),
    ack: db.prepare<[number, string], RecordRow>(`UPDATE outbox_record SET acked_at = ? WHERE id = ? AND acked_at IS NULL RETURNING ${columns}`),
    updatePayload: db.prepare<[string, string]>('UPDATE outbox_record SET payload = ? WHERE id = ? AND acked_at IS NULL'),
    latestUnacked: db.prepare<[string, string], RecordRow>(
      `SELECT ${columns} FROM outbox_record
       WHERE stream = ? AND subject = ? AND acked_at IS NULL ORDER BY seq DESC LIMIT 1`,
    ),
    // Walks the (stream, seq) unique index backwards and stops at LIMIT: the cost is the limit, not the history.
    recent: db.prepare<[string, number], RecordRow>(`SELECT ${columns} FROM outbox_record WHERE stream = ? ORDER BY seq DESC LIMIT ?`),
    stats: db.prepare<[], { stream: string; depth: number; oldest: number }>(
      `SELECT stream, count(*) AS depth, min(created_at) AS oldest FROM outbox_record
       WHERE acked_at IS NULL GROUP BY stream`,
    ),
    lastSeqs: db.prepare<[], { stream: string; last_seq: number }>('SELECT stream, last_seq FROM outbox_seq'),
    lastSeq: db.prepare<[string], { last_seq: number }>('SELECT last_seq FROM outbox_seq WHERE stream = ?'),
    raiseSeq: db.prepare<[string, number]>(
      `INSERT INTO outbox_seq (stream, last_seq) VALUES (?, ?)
       ON CONFLICT (stream) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)`,
    ),
    insertWhole: db.prepare<[string, string, number, string, string, number, number, number, number | null]>(
      `INSERT INTO outbox_record (${columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    prune: db.prepare<[number, number]>(
      `DELETE FROM outbox_record WHERE id IN
         (SELECT id FROM outbox_record WHERE acked_at IS NOT NULL AND acked_at < ? LIMIT ?)`,
    ),
  };
}

export class SqliteOutbox implements Outbox {
  private readonly statements: ReturnType<typeof prepareStatements>;
  private readonly commitTx;
  /** Seqs handed out by prepare() in this process, committed or not: never handed out again. */
  private readonly handedOut: Record<OutboxStream, number> = { alarm: 0, fault: 0, report: 0 };
  private readonly recordAttemptsTx;
  private readonly ackManyTx;
  private readonly absorbTx;
  private nextPruneAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly db: Database.Database,
    readonly path: string,
    private readonly ackedRetentionMs: number,
    /** The file had no schema when opened: new, empty (0 bytes), or just replaced. */
    readonly createdSchema = false,
  ) {
    this.statements = prepareStatements(db);
    // One transaction, one fsync: the record as prepared (seq, payload, attempts) and the counter above it.
    this.commitTx = db.transaction((record: OutboxRecord, payload: string): void => {
      if (this.statements.get.get(record.id)) throw new Error(`outbox: record ${record.id} already exists`);
      this.statements.insertWhole.run(
        record.id,
        record.stream,
        record.seq,
        record.subject,
        payload,
        record.attempts,
        record.createdAt,
        record.nextAttemptAt,
        record.ackedAt,
      );
      this.statements.raiseSeq.run(record.stream, record.seq);
    });
    this.recordAttemptsTx = db.transaction((updates: readonly AttemptUpdate[]) => {
      for (const update of updates) this.recordOne(update.id, update.attempts, update.nextAttemptAt);
    });
    this.ackManyTx = db.transaction((ids: readonly string[], now: number): OutboxRecord[] => {
      const acked: OutboxRecord[] = [];
      for (const id of ids) {
        const row = this.statements.ack.get(now, id);
        if (row) acked.push(this.toRecord(row));
      }
      if (now >= this.nextPruneAt) {
        const deleted = this.pruneOnce(now);
        this.nextPruneAt = deleted === pruneBatch ? now : now + pruneIntervalMs;
      }
      return acked;
    });
    this.absorbTx = db.transaction((input: AbsorbInput) => {
      for (const r of input.records) {
        this.statements.insertWhole.run(
          r.id,
          r.stream,
          r.seq,
          r.subject,
          payloadJson(r.payload, r.id),
          r.attempts,
          r.createdAt,
          r.nextAttemptAt,
          r.ackedAt,
        );
        this.statements.raiseSeq.run(r.stream, r.seq);
      }
      for (const [stream, seq] of Object.entries(input.seqFloors)) this.statements.raiseSeq.run(stream, seq);
      for (const { id, payload } of input.payloads) this.statements.updatePayload.run(payloadJson(payload, id), id);
      for (const { id, at } of input.acks) this.statements.ack.get(at, id);
    });
  }

  /** The last seq handed out per stream (0 for a stream that has none yet). */
  lastSeqs(): Record<OutboxStream, number> {
    const seqs: Record<OutboxStream, number> = { alarm: 0, fault: 0, report: 0 };
    for (const row of this.statements.lastSeqs.all()) if (isStream(row.stream)) seqs[row.stream] = row.last_seq;
    return seqs;
  }

  /** Seqs up to these were handed out elsewhere (a lost outbox, records kept in memory): never hand them out again. */
  raiseSeqFloors(floors: Partial<Record<OutboxStream, number>>): void {
    this.absorbTx.immediate({ records: [], seqFloors: floors, payloads: [], acks: [] });
  }

  /**
   * Takes back, in one transaction, what was kept in memory while the file could not be written: records
   * with the seq they were published with, later payloads and acks of records it already held.
   */
  absorb(input: AbsorbInput): void {
    this.absorbTx.immediate(input);
  }

  append(input: AppendInput): OutboxRecord {
    return this.commit(this.prepare(input));
  }

  prepare(input: AppendInput): OutboxRecord {
    if (!knownStreams.has(input.stream)) throw new Error(`outbox: unknown stream ${String(input.stream)}`);
    if (this.statements.get.get(input.id)) throw new Error(`outbox: record ${input.id} already exists`);
    const counter = this.statements.lastSeq.get(input.stream)?.last_seq ?? 0;
    const seq = Math.max(counter, this.handedOut[input.stream]) + 1;
    const record = preparedRecord(input, seq);
    this.handedOut[input.stream] = seq;
    return record;
  }

  commit(record: OutboxRecord): OutboxRecord {
    if (!knownStreams.has(record.stream)) throw new Error(`outbox: unknown stream ${String(record.stream)}`);
    const payload = payloadJson(record.payload, record.id);
    this.commitTx.immediate(record, payload);
    return { ...record, payload: JSON.parse(payload) as JsonObject };
  }

  updatePayload(id: string, payload: JsonObject): void {
    if (this.statements.updatePayload.run(payloadJson(payload, id), id).changes === 0) {
      throw new Error(`outbox: cannot update payload of ${id}: ${this.get(id) ? 'already acked' : 'unknown record'}`);
    }
  }

  due(stream: OutboxStream, now: number, limit: number): OutboxRecord[] {
    checkLimit('due', limit);
    return this.statements.due.all(stream, now, limit).map((row) => this.toRecord(row));
  }

  recordAttempts(updates: readonly AttemptUpdate[]): void {
    this.recordAttemptsTx.immediate(updates);
  }

  rescheduleAll(now: number): void {
    this.statements.rescheduleAll.run(now, now);
  }

  ackMany(ids: readonly string[], now: number): OutboxRecord[] {
    return this.ackManyTx.immediate(ids, now);
  }

  get(id: string): OutboxRecord | undefined {
    const row = this.statements.get.get(id);
    return row && this.toRecord(row);
  }

  latestUnacked(stream: OutboxStream, subject: string): OutboxRecord | undefined {
    const row = this.statements.latestUnacked.get(stream, subject);
    return row && this.toRecord(row);
  }

  recent(stream: OutboxStream, limit: number): OutboxRecord[] {
    checkLimit('recent', limit);
    return this.statements.recent.all(stream, limit).map((row) => this.toRecord(row));
  }

  stats(): OutboxStats {
    const stats: OutboxStats = { depth: 0, oldestUnackedAt: null, byStream: { alarm: 0, fault: 0, report: 0 } };
    for (const row of this.statements.stats.all()) {
      if (!isStream(row.stream)) throw new OutboxStorageError(this.path, `unknown stream ${row.stream}`);
      stats.byStream[row.stream] = row.depth;
      stats.depth += row.depth;
      if (stats.oldestUnackedAt === null || row.oldest < stats.oldestUnackedAt) stats.oldestUnackedAt = row.oldest;
    }
    return stats;
  }

  /** Deletes every acked row older than the retention period, in bounded transactions; returns how many. */
  prune(now: number): number {
    const pruneTx = this.db.transaction(() => this.pruneOnce(now));
    let total = 0;
    let deleted: number;
    do {
      deleted = pruneTx.immediate();
      total += deleted;
    } while (deleted === pruneBatch);
    return total;
  }

  /** Idempotent; every other method throws once closed. */
  close(): void {
    if (this.db.open) this.db.close();
  }

  private recordOne(id: string, attempts: number, nextAttemptAt: number): void {
    // An acked record is left alone: the county's ack may overtake the caller's bookkeeping of the publish.
    if (this.statements.recordAttempt.run(attempts, nextAttemptAt, id).changes === 0 && !this.statements.get.get(id)) {
      throw new Error(`outbox: cannot record an attempt of ${id}: unknown record`);
    }
  }

  private pruneOnce(now: number): number {
    return this.statements.prune.run(now - this.ackedRetentionMs, pruneBatch).changes;
  }

  /**
   * Bit rot inside a row passes quick_check (it checks structure, not our JSON), so it surfaces here;
   * the error names the file and the record so an operator can find and repair it.
   */
  private toRecord(row: RecordRow): OutboxRecord {
    if (!isStream(row.stream)) throw new OutboxStorageError(this.path, `record ${row.id} has unknown stream ${row.stream}`);
    let payload: unknown;
    try {
      payload = JSON.parse(row.payload);
    } catch (error) {
      throw new OutboxStorageError(this.path, `record ${row.id} has a damaged payload`, { cause: error });
    }
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
      throw new OutboxStorageError(this.path, `record ${row.id} has a payload that is not a JSON object`);
    }
    return {
      id: row.id,
      stream: row.stream,
      seq: row.seq,
      subject: row.subject,
      payload: payload as JsonObject,
      attempts: row.attempts,
      createdAt: row.created_at,
      nextAttemptAt: row.next_attempt_at,
      ackedAt: row.acked_at,
    };
  }
}

function isStream(value: string): value is OutboxStream {
  return knownStreams.has(value);
}
