import type Database from 'better-sqlite3';
import { resolve } from 'node:path';
import { DurableStorageError, openDurableSqlite } from './durable-sqlite.ts';
import type { Logger } from '../platform/logger.ts';
import type { ReplayGuard } from './types.ts';

/**
 * The ids of accepted county commands, in their own small database (`commands.sqlite` next to the outbox),
 * so a recorded command replayed over the radio link or the broker — even after a restart or a power cut —
 * is refused. Times are epoch milliseconds, as everywhere else in the service.
 *
 * Expired ids are dropped by `remember` itself, at most once an hour of the injected clock and a bounded
 * batch at a time, inside the same transaction (no extra fsync): the table then holds about one expiry
 * window of commands, without anyone having to schedule `prune`.
 */
const pruneIntervalMs = 3600_000;
const pruneBatch = 1000;

/** The replay guard file cannot be opened, is corrupt, or is newer than this build. */
export class ReplayGuardStorageError extends DurableStorageError {
  constructor(path: string, problem: string, options?: { cause?: unknown }) {
    super('replay guard', path, problem, options);
    this.name = 'ReplayGuardStorageError';
  }
}

/** Forward migrations; entry i takes the schema from user_version i to i + 1. Never edit a shipped entry. */
const migrations: readonly string[] = [
  `CREATE TABLE seen_command (jti TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID;
   CREATE INDEX seen_command_by_expiry ON seen_command (expires_at);`,
];

/**
 * Opens (creating if missing) the guard at `path`, WAL with synchronous=FULL, so `remember` has been
 * fsync'd when it returns. Checked (quick_check) on open: a damaged card is reported at start-up.
 */
export function openSqliteReplayGuard(options: { path: string; logger?: Logger }): SqliteReplayGuard {
  const path = resolve(options.path);
  let db: Database.Database | undefined;
  try {
    const opened = openDurableSqlite({ path, migrations, label: 'replay guard', ...(options.logger ? { logger: options.logger } : {}) });
    db = opened.db;
    const schemaVersion = opened.schemaVersion;
    const journalMode = 'wal';
    const remembered = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM seen_command').get()?.n ?? 0;
    options.logger?.info({ path, journalMode, synchronous: 'full', schemaVersion, remembered }, 'replay guard opened');
    return new SqliteReplayGuard(db, path, options.logger);
  } catch (error) {
    db?.close();
    if (error instanceof ReplayGuardStorageError) throw error;
    throw new ReplayGuardStorageError(path, error instanceof Error ? error.message : String(error), { cause: error });
  }
}

export class SqliteReplayGuard implements ReplayGuard {
  private readonly rememberTx: (jti: string, expiresAt: number, now: number) => boolean;
  private readonly pruneTx: (now: number, limit: number) => number;
  private nextPruneAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly db: Database.Database,
    readonly path: string,
    private readonly logger: Logger | undefined,
  ) {
    // An id whose row has expired may be taken again (the county reused it for a new command): the upsert
    // then refreshes the expiry; a live row is left alone and nothing changes.
    const upsert = db.prepare<[string, number, number]>(
      `INSERT INTO seen_command (jti, expires_at) VALUES (?, ?)
       ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at WHERE seen_command.expires_at <= ?`,
    );
    const prune = db.prepare<[number, number]>(`DELETE FROM seen_command WHERE jti IN (SELECT jti FROM seen_command WHERE expires_at <= ? LIMIT ?)`);
    this.pruneTx = (now, limit) => db.transaction(() => prune.run(now, limit).changes).immediate();
    const remember = db.transaction((jti: string, expiresAt: number, now: number): boolean => {
      const fresh = upsert.run(jti, expiresAt, now).changes === 1;
      if (now >= this.nextPruneAt) {
        const deleted = prune.run(now, pruneBatch).changes;
        // A full batch means a backlog (first start after a long time off): prune again on the next call.
        this.nextPruneAt = deleted === pruneBatch ? now : now + pruneIntervalMs;
        if (deleted > 0) this.logger?.debug({ deleted }, 'replay guard forgot expired command ids');
      }
      return fresh;
    });
    this.rememberTx = (jti, expiresAt, now) => remember.immediate(jti, expiresAt, now);
  }

  remember(jti: string, expiresAt: number, now: number): boolean {
    if (typeof jti !== 'string' || jti === '') throw new TypeError('replay guard: jti must be a non-empty string');
    if (!Number.isFinite(expiresAt) || !Number.isFinite(now))
      throw new RangeError(`replay guard: times must be finite (expiresAt ${expiresAt}, now ${now})`);
    return this.rememberTx(jti, Math.ceil(expiresAt), Math.floor(now));
  }

  /** Forgets every expired id, in bounded transactions; returns how many. */
  prune(now: number): number {
    let total = 0;
    let deleted: number;
    do {
      deleted = this.pruneTx(Math.floor(now), pruneBatch);
      total += deleted;
    } while (deleted === pruneBatch);
    return total;
  }

  /** Idempotent; every other method throws once closed. */
  close(): void {
    if (this.db.open) this.db.close();
  }
}
