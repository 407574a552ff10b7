import { closeSync, fchmodSync, fchownSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** Who may read the file written: the mode, and (for root rewriting a file it does not own) its owner. */
export interface FileAccess {
  mode: number;
  uid?: number;
  gid?: number;
}

/**
 * Writes `text` to `path` through a temporary file, fsync'd and renamed, and fsyncs the folder: a power cut
 * leaves the old file or the new one, never half of either.
 */
export function writeFileDurably(path: string, text: string | Uint8Array, access: FileAccess = { mode: 0o600 }): void {
  const temp = join(dirname(path), `.${basename(path)}.tmp`);
  const fd = openSync(temp, 'w', 0o600);
  try {
    // Owner before mode, and both before the content: the secret is never readable by more than it should be.
    if (access.uid !== undefined && access.gid !== undefined) fchownSync(fd, access.uid, access.gid);
    fchmodSync(fd, access.mode);
    if (typeof text === 'string') writeSync(fd, text);
    else writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, path);
  syncDirectory(dirname(path));
}

export function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
