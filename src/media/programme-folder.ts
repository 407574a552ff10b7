import { statSync, utimesSync } from 'node:fs';
import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errorText } from '../platform/error-text.ts';
import type { Logger } from '../platform/logger.ts';
import type { Now } from '../platform/time.ts';
import type { MediaNeed } from '../schedule/types.ts';
import type { LibraryFile } from './eviction.ts';
import { sha256OfFile } from '../platform/file-hash.ts';

/** The one folder of the library this code manages; chimes and local media beside it are never touched. */
export const managedFolder = 'programmes';

/**
 * The files of `<root>/programmes/` on disk: what they weigh, when each was last used (its mtime, which
 * check-for-play moves forward, so the order survives a restart), and deleting them.
 */
export class ProgrammeFolder {
  /** Last uses the disk could not record (a read-only remount): they count until the next restart. */
  private readonly lastUsed = new Map<string, number>();

  constructor(private readonly options: { root: string; logger: Logger; now: Now }) {}

  /** Every regular file in the folder, part files included; none when the folder is not there yet. */
  async files(): Promise<LibraryFile[]> {
    const folder = join(this.options.root, managedFolder);
    let names: string[];
    try {
      names = (await readdir(folder, { withFileTypes: true })).filter((entry) => entry.isFile()).map((entry) => entry.name);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const files: LibraryFile[] = [];
    for (const name of names) {
      const file = `${managedFolder}/${name}`;
      const stats = await stat(join(folder, name)).catch(() => undefined);
      if (stats !== undefined) files.push({ file, bytes: stats.size, lastUsedAt: Math.max(stats.mtimeMs, this.lastUsed.get(file) ?? 0) });
    }
    return files;
  }

  /** The files actually deleted (one already gone counts as deleted). */
  async evict(files: readonly LibraryFile[]): Promise<LibraryFile[]> {
    const evicted: LibraryFile[] = [];
    for (const evictee of files) {
      const { file, bytes, lastUsedAt } = evictee;
      try {
        await unlink(join(this.options.root, file));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
          this.options.logger.warn({ file, err: errorText(error) }, 'cannot delete media file to keep the quota');
          continue;
        }
      }
      this.lastUsed.delete(file);
      evicted.push(evictee);
      const at = new Date(lastUsedAt).toISOString();
      this.options.logger.info({ file, bytes, lastUsedAt: at }, 'media file evicted: least recently used, no programme needs it');
    }
    return evicted;
  }

  /** Whether the need's file is there and is what its name says; one that is not is deleted (it can never become right). */
  async holds(need: MediaNeed, signal: AbortSignal): Promise<boolean> {
    const path = join(this.options.root, need.file);
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    }
    const actual = size === need.size ? await sha256OfFile(path, signal) : undefined;
    if (actual === need.sha256) return true;
    const reason = actual === undefined ? `size ${size} bytes, ${need.size} expected` : `sha256 mismatch: expected ${need.sha256}, got ${actual}`;
    this.options.logger.warn({ file: need.file, reason }, 'media file in the library is not what its name says: deleted, fetching it again');
    await unlink(path);
    return false;
  }

  /** Its size now, synchronously and cheaply (for check-for-play); undefined when it cannot be read. */
  sizeOf(file: string): number | undefined {
    try {
      return statSync(join(this.options.root, file)).size;
    } catch {
      return undefined;
    }
  }

  touch(file: string): void {
    const now = this.options.now();
    this.lastUsed.set(file, now);
    try {
      utimesSync(join(this.options.root, file), now / 1000, now / 1000);
    } catch {
      // Kept in memory instead; see lastUsed.
    }
  }
}
