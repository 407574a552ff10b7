/** A file in the library's managed folder, as the quota sees it. */
export interface LibraryFile {
  /** Its path inside the library, as a need names it (`programmes/<sha256>.mp3`). */
  file: string;
  bytes: number;
  /** Epoch ms it was last checked for play, or written. */
  lastUsedAt: number;
}

/**
 * Which files to delete to free `excessBytes`: least recently used first (ties by name, so the choice is
 * the same on every run), never one in `keep`. `freed` falls short of `excessBytes` when all that may go is
 * not enough; nothing is chosen when there is no excess.
 */
export function chooseEvictions(
  files: readonly LibraryFile[],
  keep: ReadonlySet<string>,
  excessBytes: number,
): { evict: LibraryFile[]; freed: number } {
  const evict: LibraryFile[] = [];
  let freed = 0;
  if (excessBytes <= 0) return { evict, freed };
  const candidates = files.filter((f) => !keep.has(f.file)).sort((a, b) => a.lastUsedAt - b.lastUsedAt || (a.file < b.file ? -1 : 1));
  for (const candidate of candidates) {
    if (freed >= excessBytes) break;
    evict.push(candidate);
    freed += candidate.bytes;
  }
  return { evict, freed };
}

/**
 * Which files to delete so that the folder, plus what downloads in flight still have to write (`pendingBytes`),
 * plus a new file's missing bytes (`ownBytes`), is within `quotaBytes`. When the new file cannot fit even so,
 * nothing is deleted for it: only what the quota itself demands goes.
 */
export function evictionsFor(
  files: readonly LibraryFile[],
  keep: ReadonlySet<string>,
  { pendingBytes, ownBytes, quotaBytes }: { pendingBytes: number; ownBytes: number; quotaBytes: number },
): LibraryFile[] {
  const over = files.reduce((sum, f) => sum + f.bytes, 0) + pendingBytes - quotaBytes;
  const withOwn = chooseEvictions(files, keep, over + ownBytes);
  return withOwn.freed >= over + ownBytes ? withOwn.evict : chooseEvictions(files, keep, over).evict;
}
