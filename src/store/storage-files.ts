import Database from 'better-sqlite3';
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, statfsSync, unlinkSync, writeSync } from 'node:fs';
import { syncDirectory } from '../platform/durable-file.ts';
import { dirname, join } from 'node:path';
import { DurableStorageError } from './durable-sqlite.ts';
import type { Logger } from '../platform/logger.ts';
import { errorText } from '../platform/error-text.ts';

/**
 * The small file-system steps the stores take when the SD card misbehaves: telling a storage failure from
 * a bug, writing a file so that a power cut leaves the old or the new one, probing whether a folder takes
 * writes again, moving an unreadable database aside.
 */

/**
 * A failure of the medium (full, read-only, I/O error, unreadable file) as opposed to a mistake in the
 * caller (an unknown id): only these make a store fall back to memory.
 */
export function isStorageFailure(error: unknown): boolean {
  if (error instanceof Database.SqliteError || error instanceof DurableStorageError) return true;
  // better-sqlite3 throws a TypeError once its connection is closed (e.g. after a failed reopen).
  if (error instanceof TypeError && /database connection is not open/.test(error.message)) return true;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && ['ENOSPC', 'EROFS', 'EIO', 'EACCES', 'EPERM', 'EDQUOT', 'ENOENT'].includes(code);
}

/** The file is not a database any more (bit rot, a torn write, garbage): it can only be moved aside. */
export function isCorruption(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB')) return true;
    if (/integrity check failed|file is not a database|database disk image is malformed/.test(e.message)) return true;
  }
  return false;
}

/** Whether a small file can be written, fsync'd and removed in `dir` right now. */
export function probeWritable(dir: string): boolean {
  const probe = join(dir, '.write-probe');
  try {
    const fd = openSync(probe, 'w', 0o600);
    try {
      writeSync(fd, Buffer.alloc(512));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    unlinkSync(probe);
    return true;
  } catch {
    try {
      rmSync(probe, { force: true });
    } catch {
      // not even that: the folder is gone or is no folder
    }
    return false;
  }
}

/** Bytes an unprivileged writer may still use in `dir`, or null when the folder cannot be asked. */
export function freeBytes(dir: string): number | null {
  try {
    const stats = statfsSync(dir);
    return stats.bavail * stats.bsize;
  } catch {
    return null;
  }
}

/**
 * Renames a database and its WAL to `<name>.<reason>-<time>` so it can be inspected (or recovered with
 * `sqlite3 .recover`), and removes its shared-memory index, which belongs to no file any more. Returns the
 * new name of the database file.
 */
export function moveAside(path: string, reason: string, at: number): string {
  const stamp = new Date(at).toISOString().replaceAll(':', '-');
  const aside = `${path}.${reason}-${stamp}`;
  renameSync(path, aside);
  if (existsSync(`${path}-wal`)) renameSync(`${path}-wal`, `${aside}-wal`);
  rmSync(`${path}-shm`, { force: true });
  syncDirectory(dirname(path));
  return aside;
}

/** Becomes a `storage` / `storage-recovered` fault to the county. */
export type StorageNotice = { kind: 'problem' | 'recovered'; detail: string };

/**
 * Later, not now: the listener stores a fault, i.e. calls back into the store that noticed, maybe in the
 * middle of one of its writes. A listener that throws is logged, never passed up into the store.
 */
export function notifyLater(listener: (notice: StorageNotice) => void, notice: StorageNotice, logger: Logger): void {
  queueMicrotask(() => {
    try {
      listener(notice);
    } catch (error) {
      logger.error({ err: errorText(error), notice }, 'storage notice listener failed');
    }
  });
}
