/**
 * The programme schedule's ports: where its documents and its completion log are kept, and the media
 * library its programmes play from. The schedule domain sees only these; SQLite and HTTP live behind them.
 */
import type { FiringOutcome, ScheduleDocument } from '../contract/schedule.ts';

/** Where a running schedule came from. The village's own topic wins over `all`, either over the local config. */
export type ScheduleSource = 'village' | 'all' | 'local';

export interface StoredSchedule {
  source: Exclude<ScheduleSource, 'local'>;
  document: ScheduleDocument;
  /** Epoch ms it was verified and applied. */
  appliedAt: number;
}

export { firingOutcomes, type FiringOutcome } from '../contract/schedule.ts';

export interface FiringRecord {
  programme: string;
  /** Epoch ms of the cron slot: at most one record per programme and slot. */
  scheduledAt: number;
  /** The schedule version the firing belonged to. */
  version: number;
  outcome: FiringOutcome;
  reason?: string;
  /** Epoch ms the outcome was recorded. */
  at: number;
  /** The play request's id, once it was submitted to the broadcast controller. */
  requestId?: string;
}

/**
 * Every firing and its outcome, kept durably (committed and fsync'd when a call returns) for at least the
 * retention the caller prunes to: the county's monthly completion statistics are counted from it.
 */
export interface ProgrammeLog {
  /** Records a firing; false (and nothing written) when that programme's slot is already recorded. */
  open(record: FiringRecord): boolean;
  /** The final outcome of a firing that was `playing`, found by its request id; false when there is none playing. */
  settle(requestId: string, outcome: Exclude<FiringOutcome, 'playing'>, reason: string | undefined, at: number): boolean;
  has(programme: string, scheduledAt: number): boolean;
  /** Firings whose slot is in [from, to), oldest slot first. */
  between(from: number, to: number): FiringRecord[];
  /** Firings still `playing` (after a restart: cut off by it). */
  playing(): FiringRecord[];
  /** Forgets firings whose slot is before `before`; returns how many. */
  prune(before: number): number;
  /** The newest instant the scheduler has considered every slot up to (survives restarts), or undefined. */
  cursor(): number | undefined;
  setCursor(at: number): void;
  /** The last local day whose summary went to the outbox (`YYYY-MM-DD`), so each day is reported once. */
  summarizedThrough(): string | undefined;
  setSummarizedThrough(date: string): void;
}

/** The last good schedule of each county source, so a Pi that boots without network keeps playing it. */
export interface ScheduleStore {
  load(source: StoredSchedule['source']): StoredSchedule | undefined;
  /** Committed and fsync'd when it returns; replaces what that source had. */
  save(schedule: StoredSchedule): void;
  close(): void;
}

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
