import type { Logger } from 'pino';
import type { Outbox, OutboxRecord } from '../store/types.ts';
import type { ConsoleAudit, ReportPayload } from '../contract/payloads.ts';
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
  /** Refused console logins stored individually per window (its own budget: a guesser must not use up the county's). */
  private readonly refusalBudget = 20;
  private refusalWindowStart = 0;
  private refusalsInWindow = 0;
  private suppressedRefusals = { count: 0, users: new Set<string>(), addresses: new Set<string>() };
  private refusalFlushTimer: NodeJS.Timeout | undefined;

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

  /**
   * What was done in the office console, in the user's name. Refused logins from a guesser (or a botnet, one
   * address each) must not fill the outbox: past the budget they are counted, and one `login-refused` report a
   * minute says how many, with how many names and addresses.
   */
  console(entry: ConsoleAudit): void {
    const audit: ConsoleAudit = {
      action: entry.action,
      user: entry.user.slice(0, 64),
      ...(entry.role === undefined ? {} : { role: entry.role }),
      address: entry.address.slice(0, 64),
      ...(entry.subject === undefined ? {} : { subject: entry.subject.slice(0, 128) }),
      ...(entry.detail === undefined ? {} : { detail: entry.detail.slice(0, 500) }),
    };
    if (audit.action === 'login-refused' && !this.refusalWithinBudget(audit)) return;
    this.storeConsole(audit);
  }

  stop(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.flushSuppressed();
    clearTimeout(this.refusalFlushTimer);
    this.refusalFlushTimer = undefined;
    this.flushRefusals();
  }

  private refusalWithinBudget(audit: ConsoleAudit): boolean {
    const now = this.now();
    if (now - this.refusalWindowStart >= this.windowMs) {
      this.flushRefusals();
      this.refusalWindowStart = now;
      this.refusalsInWindow = 0;
    }
    if (this.refusalsInWindow < this.refusalBudget) {
      this.refusalsInWindow++;
      return true;
    }
    const suppressed = this.suppressedRefusals;
    suppressed.count++;
    // Bounded: a flood from a million addresses is counted, not remembered address by address.
    if (suppressed.users.size < 1000) suppressed.users.add(audit.user);
    if (suppressed.addresses.size < 1000) suppressed.addresses.add(audit.address);
    this.refusalFlushTimer ??= setTimeout(
      contained(this.options.logger, 'refused login count flush', () => {
        this.refusalFlushTimer = undefined;
        this.flushRefusals();
      }),
      this.windowMs - (now - this.refusalWindowStart),
    );
    return false;
  }

  private flushRefusals(): void {
    const { count, users, addresses } = this.suppressedRefusals;
    if (count === 0) return;
    this.suppressedRefusals = { count: 0, users: new Set(), addresses: new Set() };
    const few = (set: Set<string>) => (set.size === 1 ? [...set][0]! : `(${set.size >= 1000 ? '1000 or more' : set.size} different)`);
    this.options.logger.warn(
      { count, users: users.size, addresses: addresses.size },
      'console logins refused (rate-limited: counted, not reported one by one)',
    );
    this.storeConsole({
      action: 'login-refused',
      user: few(users),
      address: few(addresses),
      detail: `rate-limited: ${count} more refused logins in ${this.windowMs / 1000} s were counted but not reported one by one (${users.size} names, ${addresses.size} addresses)`,
    });
  }

  /** `jti` names the broadcast an action was about (an announcement, a stop, a loudspeaker test), so its playback reports line up. */
  private storeConsole(audit: ConsoleAudit): void {
    const aboutBroadcast = audit.action === 'announce' || audit.action === 'stop' || audit.action === 'speaker-test';
    const jti = aboutBroadcast ? (audit.subject ?? null) : null;
    this.storeAboutNoBroadcast(jti, { event: 'console', console: audit }, `console:${audit.action}`);
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
    about: Pick<ReportPayload, 'event' | 'reason' | 'schedule' | 'summary' | 'console'>,
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
