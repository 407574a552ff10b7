import Database from 'better-sqlite3';
import { resolve } from 'node:path';
import { DurableStorageError, openDurableSqlite } from './durable-sqlite.ts';
import type { Logger } from '../platform/logger.ts';
import { firingOutcomes, type FiringOutcome, type FiringRecord, type ProgrammeLog, type ScheduleStore, type StoredSchedule } from './types.ts';
import { checkDate, checkedCap, checkedFiring, checkedSchedule, checkedSettle, checkSource, readDocument } from './schedule-rows.ts';

/** The schedule database cannot be opened, is corrupt, or is newer than this build; the message names the path. */
export class ScheduleStorageError extends DurableStorageError {
  constructor(path: string, problem: string, options?: { cause?: unknown }) {
    super('schedule store', path, problem, options);
    this.name = 'ScheduleStorageError';
  }
}

/** A stored document that no longer passes its schema (a damaged card, or a newer build's document): `problems` name the fields. */
export class StoredScheduleError extends ScheduleStorageError {
  constructor(
    path: string,
    readonly source: StoredSchedule['source'],
    readonly problems: readonly string[],
  ) {
    super(path, `the stored ${source} schedule no longer reads: ${problems.join('; ')}`);
    this.name = 'StoredScheduleError';
  }
}

/** Forward migrations; entry i takes the schema from user_version i to i + 1. Never edit a shipped entry. */
const migrations: readonly string[] = [
  `CREATE TABLE schedule (
     source TEXT PRIMARY KEY,
     version INTEGER NOT NULL,
     document TEXT NOT NULL,
     applied_at INTEGER NOT NULL
   ) WITHOUT ROWID;
   CREATE TABLE firing (
     programme TEXT NOT NULL,
     scheduled_at INTEGER NOT NULL,
     version INTEGER NOT NULL,
     outcome TEXT NOT NULL,
     reason TEXT,
     at INTEGER NOT NULL,
     request_id TEXT,
     PRIMARY KEY (programme, scheduled_at)
   ) WITHOUT ROWID;
   CREATE INDEX firing_by_slot ON firing (scheduled_at);
   CREATE INDEX firing_playing ON firing (request_id) WHERE outcome = 'playing';
   CREATE TABLE schedule_cursor (id INTEGER PRIMARY KEY CHECK (id = 1), at INTEGER NOT NULL);
   CREATE TABLE summary_sent (id INTEGER PRIMARY KEY CHECK (id = 1), date TEXT NOT NULL);`,
];

/** Rows deleted per transaction by prune and the cap: a year's backlog must not become one huge WAL. */
const deleteBatch = 5000;
const knownOutcomes: ReadonlySet<string> = new Set(firingOutcomes);

/** What `village-edge log` reads while the service may be writing: nothing here can change the file. */
export interface ScheduleLogReader extends Pick<ScheduleStore, 'load'>, Pick<ProgrammeLog, 'between'> {
  readonly path: string;
  close(): void;
}

/**
 * Opens (creating if missing) `schedule.sqlite`: the last good document of each county source and the
 * completion log, in one file, WAL with synchronous=FULL, so `save`, `open`, `settle` and `setCursor` have
 * been fsync'd when they return. Checked (quick_check) on open: a damaged card is reported at start-up.
 * The log holds at most `maxFirings` rows (default 200,000); past that the oldest slots are dropped.
 */
export function openSqliteScheduleStore(options: { path: string; logger?: Logger; maxFirings?: number }): SqliteScheduleStore {
  const path = resolve(options.path);
  const maxFirings = checkedCap(options.maxFirings);
  let db: Database.Database | undefined;
  try {
    const opened = openDurableSqlite({
      path,
      migrations,
      label: 'schedule store',
      journalSizeLimit: 4194304,
      ...(options.logger ? { logger: options.logger } : {}),
    });
    db = opened.db;
    const firings = db.prepare<[], number>('SELECT count(*) FROM firing').pluck().get() ?? 0;
    const schedules = db.prepare<[], string>('SELECT source FROM schedule ORDER BY source').pluck().all();
    options.logger?.info(
      { path, journalMode: 'wal', synchronous: 'full', schemaVersion: opened.schemaVersion, firings, maxFirings, schedules },
      'schedule store opened',
    );
    return new SqliteScheduleStore(db, path, { maxFirings, firings, logger: options.logger });
  } catch (error) {
    db?.close();
    throw new ScheduleStorageError(path, error instanceof Error ? error.message : String(error), { cause: error });
  }
}

/**
 * Opens an existing schedule database read-only, for the command line while the service runs (WAL lets a
 * reader in beside the writer). No check or migration: a reader must not write, and the service did both.
 */
export function openScheduleLogReader(options: { path: string }): ScheduleLogReader {
  const path = resolve(options.path);
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const version = Number(db.pragma('user_version', { simple: true }));
    if (version === 0) throw new Error('holds no schedule tables (not written by village-edge?)');
    if (version > migrations.length)
      throw new Error(`schema version ${version} is newer than this build understands (${migrations.length}); use the service's own village-edge`);
    return new SqliteScheduleStore(db, path, { maxFirings: checkedCap(undefined), firings: 0, logger: undefined });
  } catch (error) {
    db?.close();
    throw new ScheduleStorageError(path, error instanceof Error ? error.message : String(error), { cause: error });
  }
}

interface FiringRow {
  programme: string;
  scheduledAt: number;
  version: number;
  outcome: string;
  reason: string | null;
  at: number;
  requestId: string | null;
}

const firingColumns = 'programme, scheduled_at AS scheduledAt, version, outcome, reason, at, request_id AS requestId';

function prepareStatements(db: Database.Database) {
  return {
    load: db.prepare<[string], { document: string; appliedAt: number }>('SELECT document, applied_at AS appliedAt FROM schedule WHERE source = ?'),
    save: db.prepare<[string, number, string, number]>(
      `INSERT INTO schedule (source, version, document, applied_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (source) DO UPDATE SET version = excluded.version, document = excluded.document, applied_at = excluded.applied_at`,
    ),
    open: db.prepare<[string, number, number, string, string | null, number, string | null]>(
      `INSERT INTO firing (programme, scheduled_at, version, outcome, reason, at, request_id) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (programme, scheduled_at) DO NOTHING`,
    ),
    // The row just opened is spared: a late firing of an old slot must not be recorded and dropped in one call.
    trim: db.prepare<[string, number, number]>(
      `DELETE FROM firing WHERE (programme, scheduled_at) IN (
         SELECT programme, scheduled_at FROM firing WHERE NOT (programme = ? AND scheduled_at = ?) ORDER BY scheduled_at, programme LIMIT ?)`,
    ),
    settle: db.prepare<[string, string | null, number, string]>(
      `UPDATE firing INDEXED BY firing_playing SET outcome = ?, reason = ?, at = ? WHERE request_id = ? AND outcome = 'playing'`,
    ),
    has: db.prepare<[string, number], number>('SELECT 1 FROM firing WHERE programme = ? AND scheduled_at = ?').pluck(),
    between: db.prepare<[number, number], FiringRow>(
      `SELECT ${firingColumns} FROM firing INDEXED BY firing_by_slot
       WHERE scheduled_at >= ? AND scheduled_at < ? ORDER BY scheduled_at, programme`,
    ),
    // INDEXED BY: the few rows still playing, never a scan of the whole log at every start.
    playing: db.prepare<[], FiringRow>(
      `SELECT ${firingColumns} FROM firing INDEXED BY firing_playing WHERE outcome = 'playing' ORDER BY scheduled_at, programme`,
    ),
    prune: db.prepare<[number, number]>(
      `DELETE FROM firing WHERE (programme, scheduled_at) IN (
         SELECT programme, scheduled_at FROM firing WHERE scheduled_at < ? ORDER BY scheduled_at LIMIT ?)`,
    ),
    cursor: db.prepare<[], number>('SELECT at FROM schedule_cursor WHERE id = 1').pluck(),
    setCursor: db.prepare<[number]>('INSERT INTO schedule_cursor (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at'),
    summarizedThrough: db.prepare<[], string>('SELECT date FROM summary_sent WHERE id = 1').pluck(),
    setSummarizedThrough: db.prepare<[string]>(
      'INSERT INTO summary_sent (id, date) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET date = excluded.date',
    ),
  };
}

export class SqliteScheduleStore implements ScheduleStore, ProgrammeLog {
  private readonly statements: ReturnType<typeof prepareStatements>;
  private readonly openTx: (record: FiringRecord) => { opened: boolean; dropped: number };
  private readonly maxFirings: number;
  private readonly logger: Logger | undefined;
  /** Rows in the log, counted once on open and kept here: a count(*) per firing would scan the index. */
  private firings: number;
  private warnedAtCap = false;

  constructor(
    private readonly db: Database.Database,
    readonly path: string,
    options: { maxFirings: number; firings: number; logger: Logger | undefined },
  ) {
    this.maxFirings = options.maxFirings;
    this.firings = options.firings;
    this.logger = options.logger;
    const s = prepareStatements(db);
    this.statements = s;
    // The cap is kept in the same transaction, so it costs no extra fsync; the count changes only once it committed.
    const open = db.transaction((r: FiringRecord): { opened: boolean; dropped: number } => {
      if (s.open.run(r.programme, r.scheduledAt, r.version, r.outcome, r.reason ?? null, r.at, r.requestId ?? null).changes === 0)
        return { opened: false, dropped: 0 };
      const excess = this.firings + 1 - this.maxFirings;
      return { opened: true, dropped: excess > 0 ? s.trim.run(r.programme, r.scheduledAt, excess).changes : 0 };
    });
    this.openTx = (record) => open.immediate(record);
  }

  /** Throws StoredScheduleError, naming the file, the source and the fields, for a row that no longer reads. */
  load(source: StoredSchedule['source']): StoredSchedule | undefined {
    checkSource(source);
    const row = this.statements.load.get(source);
    if (row === undefined) return undefined;
    const read = readDocument(row.document);
    if (!read.ok) throw new StoredScheduleError(this.path, source, read.problems);
    return { source, document: read.document, appliedAt: row.appliedAt };
  }

  save(schedule: StoredSchedule): void {
    const checked = checkedSchedule(schedule);
    this.statements.save.run(checked.source, checked.version, checked.json, checked.appliedAt);
  }

  open(record: FiringRecord): boolean {
    const { opened, dropped } = this.openTx(checkedFiring(record));
    if (!opened) return false;
    this.firings += 1 - dropped;
    if (dropped > 0) this.noteCap(dropped);
    return true;
  }

  settle(requestId: string, outcome: Exclude<FiringOutcome, 'playing'>, reason: string | undefined, at: number): boolean {
    const settled = checkedSettle(requestId, outcome, reason, at);
    return this.statements.settle.run(settled.outcome, settled.reason ?? null, settled.at, requestId).changes > 0;
  }

  has(programme: string, scheduledAt: number): boolean {
    return this.statements.has.get(programme, scheduledAt) !== undefined;
  }

  between(from: number, to: number): FiringRecord[] {
    return this.statements.between.all(from, to).map((row) => this.toRecord(row));
  }

  playing(): FiringRecord[] {
    return this.statements.playing.all().map((row) => this.toRecord(row));
  }

  /** In bounded transactions, so a long-overdue prune does not grow the WAL by the whole backlog. */
  prune(before: number): number {
    if (!Number.isFinite(before)) throw new RangeError(`schedule store: prune before must be a finite epoch ms, got ${before}`);
    let total = 0;
    let deleted: number;
    do {
      deleted = this.statements.prune.run(before, deleteBatch).changes;
      total += deleted;
    } while (deleted === deleteBatch);
    this.firings = Math.max(0, this.firings - total);
    return total;
  }

  cursor(): number | undefined {
    return this.statements.cursor.get();
  }

  setCursor(at: number): void {
    if (!Number.isFinite(at)) throw new RangeError(`schedule store: cursor must be a finite epoch ms, got ${at}`);
    this.statements.setCursor.run(Math.floor(at));
  }

  summarizedThrough(): string | undefined {
    return this.statements.summarizedThrough.get();
  }

  setSummarizedThrough(date: string): void {
    this.statements.setSummarizedThrough.run(checkDate(date));
  }

  /** Idempotent; every other method throws once closed. */
  close(): void {
    if (this.db.open) this.db.close();
  }

  private noteCap(dropped: number): void {
    // Once per process: a cron firing every second would otherwise log a warning every second.
    if (this.warnedAtCap) return void this.logger?.debug({ dropped }, 'firing log at its cap: oldest firings dropped');
    this.warnedAtCap = true;
    this.logger?.warn(
      { path: this.path, maxFirings: this.maxFirings, dropped },
      'firing log reached its cap: the oldest firings are being dropped (is a programme firing far too often?)',
    );
  }

  /** A row this build cannot read is named, not guessed at: the caller raises a fault with the message. */
  private toRecord(row: FiringRow): FiringRecord {
    if (!knownOutcomes.has(row.outcome))
      throw new ScheduleStorageError(
        this.path,
        `firing of ${row.programme} at slot ${row.scheduledAt}: outcome ${JSON.stringify(row.outcome)} is none of ${firingOutcomes.join(', ')}`,
      );
    return {
      programme: row.programme,
      scheduledAt: row.scheduledAt,
      version: row.version,
      outcome: row.outcome as FiringOutcome,
      ...(row.reason === null ? {} : { reason: row.reason }),
      at: row.at,
      ...(row.requestId === null ? {} : { requestId: row.requestId }),
    };
  }
}
