import type { Logger } from 'pino';
import type { Outbox, OutboxRecord, OutboxStream } from '../store/types.ts';
import type { PublishOptions, Uplink } from './types.ts';
import type * as z from 'zod';
import { topicKindOfStream, topicSpecs, type PayloadOf, type RecordKind } from './topics.ts';
import { StoredPayloadError, storedPayload } from '../contract/stored.ts';
import { backoffDelay, type Now } from '../platform/time.ts';
import { contained } from '../platform/contained.ts';

export interface DeliveryOptions {
  outbox: Outbox;
  uplink: Uplink;
  retry: { initialMs: number; maxMs: number };
  logger: Logger;
  /** Called with each record the county acknowledged (first ack only). */
  onAcked: (record: OutboxRecord) => void;
  /** A stored record no longer reads as its stream's payload (a damaged card): a fault for the county. */
  onUnreadable?: (error: StoredPayloadError) => void;
  /** Most records published and not yet PUBACKed at once; bounds memory during a big drain. */
  window?: number;
  now?: Now;
}

/** Each stream's payload schema, keyed so that reading a record of kind K yields PayloadOf<K>. */
const recordSchemas: { readonly [K in RecordKind]: z.ZodType<PayloadOf<K>> } = {
  alarm: topicSpecs.alarm.schema,
  fault: topicSpecs.fault.schema,
  report: topicSpecs.report.schema,
};

/** Alarms first: a backlog of faults or reports must never delay a villager's alarm. */
const streamOrder: readonly OutboxStream[] = ['alarm', 'fault', 'report'];

/** Five missed one-second passes: long enough for a slow fsync, short enough for the watchdog to matter. */
const livenessMs = 5000;

/**
 * Publishes the outbox to the county, in `seq` order per stream, and republishes each record with
 * `attempt+1` on a backoff (5 s doubling to 60 s by default) until the county acknowledges it.
 * The outbox is the only memory: a crash at any point loses nothing, at worst a duplicate goes out.
 */
export class Delivery {
  private readonly now: Now;
  private readonly window: number;
  private inFlight = 0;
  private pumping = false;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  /** Acks arrive one message at a time; they are committed together, one fsync per batch. */
  private pendingAcks: string[] = [];
  /** When a delivery pass last ran to completion. */
  private lastPassAt = 0;
  private ackFlush: NodeJS.Timeout | undefined;
  /** A refill after PUBACKs, coalesced: one pass for many freed slots, not one commit per PUBACK. */
  private refill: NodeJS.Immediate | undefined;
  /** Next attempts the outbox could not record, kept here so a failing store is not republished in a loop. */
  private readonly unrecorded = new Map<string, number>();
  /** Rows already reported unreadable, so a damaged record retried every minute is one fault, not one a minute. */
  private readonly unreadable = new Set<string>();
  private readonly onAcked: (record: OutboxRecord) => void;

  constructor(private readonly options: DeliveryOptions) {
    this.now = options.now ?? Date.now;
    this.window = options.window ?? 256;
    this.onAcked = contained(options.logger, 'handling an acknowledged record', options.onAcked);
  }

  start(): void {
    this.running = true;
    const { uplink } = this.options;
    uplink.on('connected', () => {
      // Whatever waited out a backoff while the link was down goes now, not up to a minute later.
      this.options.outbox.rescheduleAll(this.now());
      this.kick();
    });
    // Retries fall due with time; one cheap indexed query a second finds them.
    this.timer = setInterval(() => this.kick(), 1000);
    this.timer.unref?.();
    this.kick();
  }

  stop(): void {
    this.running = false;
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.refill !== undefined) clearImmediate(this.refill);
    this.refill = undefined;
    if (this.ackFlush !== undefined) {
      clearTimeout(this.ackFlush);
      this.flushAcks();
    }
  }

  /**
   * For the systemd watchdog: a pass ran to completion within the last five (the timer runs one a second),
   * so the event loop turns and the store answers. False before start() and after stop().
   */
  alive(): boolean {
    return this.running && this.now() - this.lastPassAt < livenessMs;
  }

  /** New record stored, link up, or a slot freed: publish what is due. */
  kick(): void {
    if (!this.running) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.again = false;
        this.pump();
      } while (this.again && this.running);
      this.lastPassAt = this.now();
    } catch (error) {
      // A store failure must not kill the timer that retries it; the next tick tries again.
      this.options.logger.error({ err: error }, 'delivery pass failed');
    } finally {
      this.pumping = false;
    }
  }

  /**
   * A record about to be committed: published now, so that the county has it while the card flushes,
   * when the link is up, the window has room and nothing older of its stream waits (seq order holds).
   * Returns it with this first attempt recorded, to be committed so; as given when nothing was sent.
   */
  sendEarly(record: OutboxRecord): OutboxRecord {
    const { outbox, uplink, retry } = this.options;
    if (!this.running || !uplink.connected || this.inFlight >= this.window) return record;
    const now = this.now();
    if (outbox.due(record.stream, now, 1).length > 0) return record;
    const sent = { ...record, attempts: 1, nextAttemptAt: now + backoffDelay(1, retry.initialMs, retry.maxMs) };
    this.publish(sent, { flush: true });
    return sent;
  }

  /** The county acknowledged a record (the ack's signature already checked). */
  acknowledge(id: string): void {
    this.pendingAcks.push(id);
    // Acks come one verified message at a time; a few ms gathers a drain's worth into one commit (one
    // fsync). Losing a batch in a crash only means those records are sent again; the county dedupes by id.
    this.ackFlush ??= setTimeout(() => this.flushAcks(), 5);
  }

  private flushAcks(): void {
    this.ackFlush = undefined;
    const ids = this.pendingAcks;
    this.pendingAcks = [];
    for (const id of ids) this.unrecorded.delete(id);
    let acked: OutboxRecord[];
    try {
      acked = this.options.outbox.ackMany(ids, this.now());
    } catch (error) {
      this.options.logger.error({ err: error, ids }, 'could not store acks; the records will be sent again');
      return;
    }
    if (acked.length < ids.length)
      this.options.logger.debug({ unknownOrRepeated: ids.length - acked.length }, 'acks for unknown or already acknowledged records');
    // Each on its own: a listener that throws for one record (a column that cannot be written) must neither
    // keep the others from their columns nor reach the timer this runs from.
    for (const record of acked) this.onAcked(record);
  }

  /** One copy of `record`, as its attempt number `record.attempts` says. */
  private publish(record: OutboxRecord, options?: PublishOptions): void {
    const { uplink, logger } = this.options;
    const { stream, attempts: attempt } = record;
    const payload = this.readPayload(topicKindOfStream(stream), record);
    if (payload === undefined) return;
    this.inFlight++;
    uplink
      .publish(topicKindOfStream(stream), { ...payload, attempt }, options)
      .then(
        () => logger.debug({ stream, id: record.id, seq: record.seq, attempt }, 'published'),
        (error: unknown) => logger.warn({ stream, id: record.id, seq: record.seq, attempt, err: error }, 'publish failed; will retry'),
      )
      .finally(() => {
        this.inFlight--;
        // Refill once half the window is free, so each pass (and its commit) covers many records.
        if (this.inFlight <= this.window / 2)
          this.refill ??= setImmediate(() => {
            this.refill = undefined;
            this.kick();
          });
      });
  }

  /**
   * The record's payload read through its topic's schema: what goes to the county is what the contract says,
   * even from a damaged card. An unreadable row is logged each time, and told to `onUnreadable` once a life.
   */
  private readPayload<K extends RecordKind>(kind: K, record: OutboxRecord): PayloadOf<K> | undefined {
    try {
      return storedPayload(recordSchemas[kind], record);
    } catch (error) {
      const unreadable = error instanceof StoredPayloadError ? error : new StoredPayloadError(record, [String(error)]);
      this.options.logger.error(
        { err: unreadable, stream: record.stream, id: record.id, seq: record.seq },
        'stored record unreadable; not published',
      );
      if (!this.unreadable.has(record.id)) {
        this.unreadable.add(record.id);
        this.options.onUnreadable?.(unreadable);
      }
      return undefined;
    }
  }

  private pump(): void {
    const { outbox, uplink, retry, logger } = this.options;
    for (const stream of streamOrder) {
      if (!uplink.connected) return;
      const room = this.window - this.inFlight;
      if (room <= 0) return;
      const now = this.now();
      const due = outbox.due(stream, now, room).filter((r) => (this.unrecorded.get(r.id) ?? 0) <= now);
      if (due.length === 0) continue;
      // Scheduled before they leave, in one commit: if we die mid-publish they are simply due again later.
      // Bookkeeping that cannot be written must not hold back a record that is stored: it goes out anyway.
      const updates = due.map((r) => ({
        id: r.id,
        attempts: r.attempts + 1,
        nextAttemptAt: now + backoffDelay(r.attempts + 1, retry.initialMs, retry.maxMs),
      }));
      try {
        outbox.recordAttempts(updates);
        for (const update of updates) this.unrecorded.delete(update.id);
      } catch (error) {
        logger.error({ err: error, stream, records: due.length }, 'attempts not recorded; publishing anyway');
        for (const update of updates) this.unrecorded.set(update.id, update.nextAttemptAt);
      }
      for (const record of due) this.publish({ ...record, attempts: record.attempts + 1 });
      // A stream with more waiting keeps the window to itself until it is drained, so order holds.
      if (due.length === room) return;
    }
  }
}
