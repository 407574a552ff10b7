import { closeSync, existsSync, fsyncSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { freeBytes } from './storage-files.ts';
import { syncDirectory } from '../platform/durable-file.ts';

/**
 * A file of zeros the outbox keeps beside itself. When the card fills up (journald, media, anything), the
 * outbox deletes it and so still has room to store alarms durably; it is made again once there is room.
 * Written, not sparse, so the blocks really are held.
 */
export class StorageReserve {
  constructor(
    private readonly path: string,
    readonly bytes: number,
  ) {}

  get held(): boolean {
    try {
      return statSync(this.path).size >= this.bytes;
    } catch {
      return false;
    }
  }

  /**
   * Makes the reserve if it is missing and the folder has room for it and as much again (a reserve that
   * takes the last free bytes would only move the problem). Returns whether it is held now.
   */
  ensure(): boolean {
    if (this.bytes === 0 || this.held) return true;
    const free = freeBytes(dirname(this.path));
    if (free === null || free < 2 * this.bytes) return false;
    const chunk = Buffer.alloc(Math.min(this.bytes, 64 * 1024));
    let fd: number | undefined;
    try {
      fd = openSync(this.path, 'w', 0o600);
      for (let written = 0; written < this.bytes; ) written += writeSync(fd, chunk, 0, Math.min(chunk.length, this.bytes - written));
      fsyncSync(fd);
      closeSync(fd);
      fd = undefined;
      syncDirectory(dirname(this.path));
      return true;
    } catch {
      if (fd !== undefined) closeSync(fd);
      rmSync(this.path, { force: true });
      return false;
    }
  }

  /** Gives the reserve's blocks back to the file system; returns whether there was one to give. */
  release(): boolean {
    if (!existsSync(this.path)) return false;
    try {
      rmSync(this.path, { force: true });
      return true;
    } catch {
      return false;
    }
  }
}
