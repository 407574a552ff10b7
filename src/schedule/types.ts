/**
 * The programme schedule's ports: where its documents and its completion log are kept, and the media
 * library its programmes play from. The schedule domain sees only these; SQLite and HTTP live behind them.
 */

// The stores' ports live with the stores (src/store/types.ts), as the outbox's do; the domain names them from here.
export {
  firingOutcomes,
  type FiringOutcome,
  type FiringRecord,
  type ProgrammeLog,
  type ScheduleSource,
  type ScheduleStore,
  type StoredSchedule,
} from '../store/types.ts';

/** One media file a programme needs: by hash, from a URL, of a size; `file` is its path inside the library. */
export interface MediaNeed {
  sha256: string;
  url: string;
  size: number;
  file: string;
}

export type MediaCheck = { ok: true } | { ok: false; reason: string };

/**
 * The media library as the schedule sees it: files fetched ahead of time, checked (size, sha256) before they
 * enter it, and evicted least recently used when over quota — but never one a programme still needs.
 */
export interface MediaLibrary {
  /**
   * Everything the schedule will need soon, replacing the previous list: what is missing is fetched (bounded
   * concurrency, retried with backoff), and only files outside the list may be evicted. Never throws.
   */
  want(needs: readonly MediaNeed[]): void;
  /** Whether the file is in the library now, complete and checked, or why not; marks it used (LRU). */
  check(need: MediaNeed): MediaCheck;
  start(): void;
  stop(): Promise<void>;
}
