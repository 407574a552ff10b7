import type { FiringOutcome, ScheduleDocument } from '../contract/schedule.ts';

/** Streams of records that travel to the county and wait there for its ack. */
export const outboxStreams = ['alarm', 'fault', 'report'] as const;
export type OutboxStream = (typeof outboxStreams)[number];

export type JsonObject = { [key: string]: unknown };

export interface OutboxRecord {
  id: string;
  stream: OutboxStream;
  /** Per stream and village, monotonic across restarts; the delivery order. */
  seq: number;
  /** What the record is about (a terminal id, a device id), to find the open one again. */
  subject: string;
  payload: JsonObject;
  /** How many times it has been published so far. */
  attempts: number;
  createdAt: number;
  nextAttemptAt: number;
  ackedAt: number | null;
}

export interface AttemptUpdate {
  id: string;
  attempts: number;
  nextAttemptAt: number;
}

export interface OutboxStats {
  /** Unacked records, all streams. */
  depth: number;
  /** Creation time (epoch ms) of the oldest unacked record, or null. */
  oldestUnackedAt: number | null;
  byStream: Record<OutboxStream, number>;
}

/**
 * The durable outbox. Every write has been committed and fsync'd when the call returns, so nothing may
 * claim a record exists (indicator, log line, MQTT) before `append` returned.
 */
export interface AppendInput {
  stream: OutboxStream;
  id: string;
  subject: string;
  now: number;
  build: (seq: number) => JsonObject;
}

export interface Outbox {
  /** `commit(prepare(input))`. */
  append(input: AppendInput): OutboxRecord;
  /**
   * The first half of an append: the record with its seq and payload, nothing written. Its seq is never
   * handed out again, committed or not. Nothing may say the record exists before `commit` returned, but
   * delivery may publish it meanwhile (publish and commit concurrently; the county dedupes by id).
   */
  prepare(input: AppendInput): OutboxRecord;
  /** The second half: stores a prepared record as given (attempts and next attempt included), durably. */
  commit(record: OutboxRecord): OutboxRecord;
  /** Replace the payload of an unacked record (e.g. count another press on an open alarm); throws if acked or unknown. */
  updatePayload(id: string, payload: JsonObject): void;
  /** Unacked records of a stream whose next attempt is due, oldest seq first. */
  due(stream: OutboxStream, now: number, limit: number): OutboxRecord[];
  /**
   * Attempts, all in one transaction, i.e. one fsync: per-record commits cap a drain below the rate the
   * county can take, far below on an SD card. All or nothing: throws on an unknown id. Acked ids are skipped
   * (the county's ack can overtake the bookkeeping of the publish).
   */
  recordAttempts(updates: readonly AttemptUpdate[]): void;
  /** Make every unacked record that waits for a later attempt due now (the link just came back). */
  rescheduleAll(now: number): void;
  /** Acks every listed record still unacked, in one transaction; returns those, in the order given (unknown and already acked ids left out). */
  ackMany(ids: readonly string[], now: number): OutboxRecord[];
  get(id: string): OutboxRecord | undefined;
  /** The newest unacked record of a stream about a subject, if any. */
  latestUnacked(stream: OutboxStream, subject: string): OutboxRecord | undefined;
  /** The newest records of a stream, acked or not, newest (highest seq) first, up to `limit`: for the office console's lists. */
  recent(stream: OutboxStream, limit: number): OutboxRecord[];
  stats(): OutboxStats;
  close(): void;
}

/**
 * Remembers every accepted command id (`jti`) until it expires, durably, so a recorded command replayed
 * later — even after a restart — is refused.
 */
export interface ReplayGuard {
  /** True the first time; false when this jti was already seen and has not expired. Committed before it returns. */
  remember(jti: string, expiresAt: number, now: number): boolean;
  close(): void;
}

/** A broadcast command that was accepted and had not ended when it was last written. */
export interface UnfinishedBroadcast {
  id: string;
  /** What was accepted, as the caller wrote it (a play request). */
  request: JsonObject;
  /** Epoch ms of the first acceptance. */
  acceptedAt: number;
  /** How many times it was taken up again after a restart. */
  resumes: number;
}

/**
 * Accepted broadcast commands, kept durably until they end, so one cut off by a kill -9 or a power cut is
 * played again or reported after the restart instead of vanishing.
 */
export interface BroadcastJournal {
  /** Keeps `request` under `id`, committed and fsync'd before it returns; again for a kept id counts a resume. */
  open(id: string, request: JsonObject, now: number): void;
  /** Forgets it: the item ended (finished, failed, stopped, …). No-op for an unknown id. */
  end(id: string): void;
  /** Everything kept and not ended, oldest first. */
  unfinished(): UnfinishedBroadcast[];
  close(): void;
}

/** The programme schedule's stores: the last good schedule of each source, and every firing with its outcome. */

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
