import type Database from 'better-sqlite3';
import { resolve } from 'node:path';
import { DurableStorageError, openDurableSqlite } from './durable-sqlite.ts';
import type { Logger } from '../platform/logger.ts';
import type { BroadcastJournal, JsonObject, UnfinishedBroadcast } from './types.ts';

/** The broadcast journal file cannot be opened, is corrupt, or is newer than this build. */
export class BroadcastJournalStorageError extends DurableStorageError {
  constructor(path: string, problem: string, options?: { cause?: unknown }) {
    super('broadcast journal', path, problem, options);
    this.name = 'BroadcastJournalStorageError';
  }
}

/** Forward migrations; entry i takes the schema from user_version i to i + 1. Never edit a shipped entry. */
const migrations: readonly string[] = [
  `CREATE TABLE open_broadcast (
     id TEXT PRIMARY KEY,
     request TEXT NOT NULL,
     accepted_at INTEGER NOT NULL,
     resumes INTEGER NOT NULL DEFAULT 0
   ) WITHOUT ROWID;`,
];

/**
 * Accepted broadcast commands until they end, in their own small database (`broadcasts.sqlite` next to the
 * outbox), WAL with synchronous=FULL: `open` has been fsync'd when it returns. An ended item's row is
 * deleted, so the table holds only what is playing or waiting (a handful of rows).
 */
export function openSqliteBroadcastJournal(options: { path: string; logger?: Logger }): SqliteBroadcastJournal {
  const path = resolve(options.path);
  let db: Database.Database | undefined;
  try {
    const opened = openDurableSqlite({ path, migrations, label: 'broadcast journal', ...(options.logger ? { logger: options.logger } : {}) });
    db = opened.db;
    const unfinished = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM open_broadcast').get()?.n ?? 0;
    options.logger?.info(
      { path, journalMode: 'wal', synchronous: 'full', schemaVersion: opened.schemaVersion, unfinished },
      'broadcast journal opened',
    );
    return new SqliteBroadcastJournal(db, path);
  } catch (error) {
    db?.close();
    throw new BroadcastJournalStorageError(path, error instanceof Error ? error.message : String(error), { cause: error });
  }
}

export class SqliteBroadcastJournal implements BroadcastJournal {
  private readonly upsert: Database.Statement<[string, string, number]>;
  private readonly remove: Database.Statement<[string]>;
  private readonly all: Database.Statement<[], { id: string; request: string; acceptedAt: number; resumes: number }>;

  constructor(
    private readonly db: Database.Database,
    readonly path: string,
  ) {
    // A second open of a kept id is the same command taken up again after a restart: count it, keep the rest.
    this.upsert = db.prepare(
      `INSERT INTO open_broadcast (id, request, accepted_at) VALUES (?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET resumes = resumes + 1`,
    );
    this.remove = db.prepare('DELETE FROM open_broadcast WHERE id = ?');
    this.all = db.prepare('SELECT id, request, accepted_at AS acceptedAt, resumes FROM open_broadcast ORDER BY accepted_at, id');
  }

  open(id: string, request: JsonObject, now: number): void {
    if (typeof id !== 'string' || id === '') throw new TypeError('broadcast journal: id must be a non-empty string');
    this.upsert.run(id, JSON.stringify(request), Math.floor(now));
  }

  end(id: string): void {
    this.remove.run(id);
  }

  /** A row whose request is not a JSON object comes back with an empty request; the caller decides. */
  unfinished(): UnfinishedBroadcast[] {
    return this.all.all().map((row) => ({ id: row.id, request: parseObject(row.request), acceptedAt: row.acceptedAt, resumes: row.resumes }));
  }

  /** Idempotent; every other method throws once closed. */
  close(): void {
    if (this.db.open) this.db.close();
  }
}

function parseObject(text: string): JsonObject {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as JsonObject) : {};
  } catch {
    return {};
  }
}
