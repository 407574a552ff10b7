import type { Logger } from 'pino';
import type { Outbox, OutboxRecord } from '../store/types.ts';
import type { ReportPayload } from '../contract/payloads.ts';
import type { DailySummary } from '../contract/schedule-summary.ts';
import type { PlaybackEvent } from './types.ts';
import { isoWithOffset, uuidv7, type Now } from '../platform/time.ts';
import { contained } from '../platform/contained.ts';

/** A command the gate refused: reported so the county sees every attempt to make the village speak. */
export interface RejectedCommand {
  jti: string | null;
  reason: string;
  detail: string;
  /** What the message claimed to be by its topic (`ack`, `broadcast`, `stop`). */
  kind?: string;
  topic?: string;
}

/**
 * Playback reports travel the durable, acknowledged path of alarms: the county must be able to tell from
 * reports alone what every village actually played, even across an outage or a restart.
 */
export class ReportRecorder {
  private readonly now: Now;
  /** Rejections stored individually per window; past that they are counted and summarised once. */
  private readonly rejectionBudget = 20;
  private readonly windowMs = 60_000;
  private windowStart = 0;
  private rejectionsInWindow = 0;
  /** Counted, not stored or logged one by one, since the last summary: by reason. */
  private suppressed = new Map<string, number>();
  /** Causes of rejected acks already reported in this window. */
  private ackCausesReported = new Set<string>();
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: { villageId: string; outbox: Outbox; logger: Logger; onStored: (record: OutboxRecord) => void; now?: Now }) {
    this.now = options.now ?? Date.now;
  }

  playback(event: PlaybackEvent): void {
    this.store(
      event.requestId,
      (id, seq) => ({
        id,
        seq,
        village: this.options.villageId,
        jti: event.requestId,
        event: event.event,
        ...(event.reason === undefined ? {} : { reason: event.reason }),
        priority: event.priority,
        ...(event.level === undefined ? {} : { level: event.level }),
        status: event.status,
        zones: [...event.zones],
        faultyZones: event.faultyZones.map((f) => ({ ...f })),
        at: isoWithOffset(event.at),
        attempt: 1,
      }),
      event.at,
    );
  }

  /**
   * A flood of junk on the command topics must not wear out the SD card or bury real reports: past the
   * budget, rejections are only counted, and one summary report and one log line a minute say how many.
   * A rejected ack is stored once per cause a minute: the county acks that report, and an ack the village
   * keeps rejecting would otherwise feed a report per ack, and an ack per report, without end.
   */
  rejected(command: RejectedCommand): void {
    const now = this.now();
    if (now - this.windowStart >= this.windowMs) {
      this.flushSuppressed();
      this.windowStart = now;
      this.rejectionsInWindow = 0;
      this.ackCausesReported.clear();
    }
    const repeatedAckCause = command.kind === 'ack' && this.ackCausesReported.has(command.reason);
    if (repeatedAckCause || this.rejectionsInWindow >= this.rejectionBudget) {
      this.suppressed.set(command.reason, (this.suppressed.get(command.reason) ?? 0) + 1);
      this.flushTimer ??= setTimeout(
        contained(this.options.logger, 'rejection count flush', () => {
          this.flushTimer = undefined;
          this.flushSuppressed();
        }),
        this.windowMs - (now - this.windowStart),
      );
      return;
    }
    this.rejectionsInWindow++;
    if (command.kind === 'ack') this.ackCausesReported.add(command.reason);
    this.options.logger.warn({ topic: command.topic, reason: command.reason, detail: command.detail, jti: command.jti }, 'county command rejected');
    this.storeRejection(command);
  }

  /** A county schedule document was verified and kept: the county learns which version each village runs. */
  scheduleApplied(applied: { jti: string; version: number; programmes: number; source: 'village' | 'all'; running: boolean }): void {
    const { jti, ...schedule } = applied;
    this.storeAboutNoBroadcast(jti, { event: 'schedule-applied', schedule });
  }

  /** One local day of the programme completion log, for the county's monthly statistics. */
  programmeSummary(summary: DailySummary): void {
    this.storeAboutNoBroadcast(`summary:${summary.date}`, { event: 'programme-summary', summary });
  }

  stop(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.flushSuppressed();
  }

  private flushSuppressed(): void {
    if (this.suppressed.size === 0) return;
    const byReason = Object.fromEntries(this.suppressed);
    const count = [...this.suppressed.values()].reduce((sum, n) => sum + n, 0);
    this.suppressed = new Map();
    const reasons = Object.entries(byReason)
      .map(([reason, n]) => `${reason} ${n}`)
      .join(', ');
    this.options.logger.warn({ count, byReason }, 'county commands rejected (rate-limited: counted, not logged one by one)');
    this.storeRejection({
      jti: null,
      reason: 'rate-limited',
      detail: `${count} more rejected commands in ${this.windowMs / 1000} s were counted but not reported one by one (${reasons})`,
    });
  }

  private storeRejection(command: RejectedCommand): void {
    this.storeAboutNoBroadcast(command.jti, { event: 'rejected', reason: `${command.reason}: ${command.detail}` }, command.jti ?? 'unverified');
  }

  /** A report that names no broadcast (a refused command, the schedule): no priority, status or zones. */
  private storeAboutNoBroadcast(
    jti: string | null,
    about: Pick<ReportPayload, 'event' | 'reason' | 'schedule' | 'summary'>,
    subject: string = jti ?? 'unverified',
  ): void {
    const at = this.now();
    this.store(
      subject,
      (id, seq) => ({
        id,
        seq,
        village: this.options.villageId,
        jti,
        ...about,
        priority: null,
        status: null,
        zones: [],
        faultyZones: [],
        at: isoWithOffset(at),
        attempt: 1,
      }),
      at,
    );
  }

  private store(subject: string, build: (id: string, seq: number) => ReportPayload, at: number): void {
    const id = uuidv7(at);
    const record = this.options.outbox.append({ stream: 'report', id, subject, now: this.now(), build: (seq) => build(id, seq) });
    const payload = build(id, record.seq);
    this.options.logger.info(
      { reportId: id, seq: record.seq, jti: payload.jti, event: payload.event, reason: payload.reason },
      'playback report stored',
    );
    this.options.onStored(record);
  }
}
