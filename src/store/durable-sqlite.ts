import Database from 'better-sqlite3';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../platform/logger.ts';

/** A durable SQLite file cannot be opened, is corrupt, or is newer than this build; the message names the path. */
export class DurableStorageError extends Error {
  constructor(
    /** "outbox", "replay guard": which store, as the message says it. */
    label: string,
    readonly path: string,
    problem: string,
    options?: { cause?: unknown },
  ) {
    super(`${label} database ${path}: ${problem}`, options);
    this.name = 'DurableStorageError';
  }
}

/**
 * Opens (creating if missing) a SQLite file for records that must survive a power cut: WAL with
 * synchronous=FULL, read back and refused if either did not take, so every commit is fsync'd before the
 * call that made it returns. The whole file is checked (quick_check) on open, so a damaged card is
 * reported at start-up rather than at the first unlucky read. Throws plain errors; callers name the file.
 */
export function openDurableSqlite(options: {
  /** Absolute path. */
  path: string;
  /** Forward migrations; entry i takes the schema from user_version i to i + 1. Never edit a shipped entry. */
  migrations: readonly string[];
  /** For log lines: "outbox", "replay guard". */
  label: string;
  logger?: Logger;
  /** Cap on the WAL file after a big transaction (bytes). */
  journalSizeLimit?: number;
}): { db: Database.Database; schemaVersion: number; createdSchema: boolean } {
  const dir = dirname(options.path);
  const firstCreatedDir = mkdirSync(dir, { recursive: true });
  const isNew = !existsSync(options.path);
  const db = new Database(options.path);
  try {
    const journalMode = db.pragma('journal_mode = WAL', { simple: true });
    if (journalMode !== 'wal') throw new Error(`journal_mode is ${String(journalMode)}, WAL is required`);
    db.pragma('synchronous = FULL');
    if (options.journalSizeLimit !== undefined) db.pragma(`journal_size_limit = ${options.journalSizeLimit}`);
    const synchronous = db.pragma('synchronous', { simple: true });
    if (synchronous !== 2) throw new Error(`synchronous is ${String(synchronous)}, FULL (2) is required`);
    const problems = db.prepare<[], string>('PRAGMA quick_check(5)').pluck().all();
    if (problems.join() !== 'ok') throw new Error(`integrity check failed: ${problems.join('\n').replaceAll('\n', '; ')}`);
    const createdSchema = Number(db.pragma('user_version', { simple: true })) === 0;
    const schemaVersion = migrate(db, options.migrations, options.label, options.logger);
    // SQLite syncs the directory for its WAL file, not for a new main file: without this a power cut right
    // after the first start could lose the file's directory entry, and with it everything in it.
    if (isNew) syncDirectoriesUpTo(dir, firstCreatedDir);
    return { db, schemaVersion, createdSchema };
  } catch (error) {
    db.close();
    throw error;
  }
}

function migrate(db: Database.Database, migrations: readonly string[], label: string, logger: Logger | undefined): number {
  const current = Number(db.pragma('user_version', { simple: true }));
  if (current > migrations.length) {
    throw new Error(`schema version ${current} is newer than this build understands (${migrations.length}); refusing to touch it`);
  }
  for (let version = current; version < migrations.length; version++) {
    db.transaction(() => {
      db.exec(migrations[version] ?? '');
      db.pragma(`user_version = ${version + 1}`);
    }).immediate();
    logger?.info({ from: version, to: version + 1 }, `${label} schema migrated`);
  }
  return migrations.length;
}

/** fsyncs `dir` and, when mkdir created a chain of directories, each of their parents too. */
function syncDirectoriesUpTo(dir: string, firstCreated: string | undefined): void {
  const dirs = [dir];
  if (firstCreated !== undefined) {
    for (let d = dir; d !== firstCreated && dirname(d) !== d; d = dirname(d)) dirs.push(dirname(d));
    dirs.push(dirname(firstCreated));
  }
  for (const d of dirs) {
    const fd = openSync(d, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}
