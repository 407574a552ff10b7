import type { Logger } from 'pino';
import type { PlaybackEvent, PlayRequest } from '../broadcast/types.ts';
import type { ScheduleDocument } from '../contract/schedule.ts';
import type { Clock } from '../platform/trusted-clock.ts';
import type { DailySummary } from '../contract/schedule-summary.ts';
import { contained } from '../platform/contained.ts';
import { DailyReports } from './daily-reports.ts';
import { programmeOverview, type ProgrammeOverview } from './programme-overview.ts';
import { ProgrammeScheduler, type ClockJump, type ProgrammePlayer } from './programme-scheduler.ts';
import { ScheduleRegistry, type ScheduleRejection } from './schedule-registry.ts';
import type { FiringOutcome, MediaLibrary, ProgrammeLog, ScheduleSource, ScheduleStore, StoredSchedule } from './types.ts';

/**
 * The programme schedule as one part of the service: which document runs (registry), when its programmes
 * fire (scheduler), the media they need (library), and the quiet-hours rule the rest of the village obeys.
 */

export interface ProgrammeScheduleOptions {
  store: ScheduleStore & ProgrammeLog;
  media: MediaLibrary;
  local: ScheduleDocument | undefined;
  zoneIds: readonly string[];
  mediaExtensions: readonly string[];
  clock: Pick<Clock, 'now' | 'monotonic' | 'state'>;
  player: ProgrammePlayer;
  settings: { graceMs: number; mediaLookaheadMs: number; retentionMs: number };
  /** What the county must hear of, each through the village's durable reports and faults. */
  tell: {
    applied: (applied: { jti: string; version: number; programmes: number; source: StoredSchedule['source']; running: boolean }) => void;
    rejected: (rejection: ScheduleRejection) => void;
    clockJump: (jump: ClockJump) => void;
    mediaMissing: (missing: readonly { programme: string; reason: string }[]) => void;
    storageFailure: (error: unknown) => void;
    dailySummary: (summary: DailySummary) => void;
  };
  logger: Logger;
}

export interface ScheduleHealth {
  version: number | null;
  source: ScheduleSource | null;
  programmes: number;
  today: Record<FiringOutcome, number>;
  mediaMissing: { programme: string; reason: string }[];
}

export class ProgrammeSchedule {
  private readonly registry: ScheduleRegistry;
  private readonly scheduler: ProgrammeScheduler;
  private readonly daily: DailyReports;
  private dailyTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ProgrammeScheduleOptions) {
    const { tell, logger } = options;
    this.scheduler = new ProgrammeScheduler({
      clock: options.clock,
      log: options.store,
      media: options.media,
      player: options.player,
      zoneIds: options.zoneIds,
      logger,
      graceMs: options.settings.graceMs,
      mediaLookaheadMs: options.settings.mediaLookaheadMs,
      retentionMs: options.settings.retentionMs,
      onClockJump: tell.clockJump,
      onMediaMissing: tell.mediaMissing,
      onLogFailure: tell.storageFailure,
    });
    this.registry = new ScheduleRegistry({
      store: options.store,
      local: options.local,
      zoneIds: options.zoneIds,
      mediaExtensions: options.mediaExtensions,
      onRunning: (schedule) => this.scheduler.replace(schedule),
      onApplied: ({ jti, version, programmes, source, running }) => tell.applied({ jti, version, programmes, source, running }),
      onRejected: tell.rejected,
      onStorageFailure: tell.storageFailure,
      logger,
      now: () => options.clock.now(),
    });
    this.daily = new DailyReports({
      log: options.store,
      now: () => options.clock.now(),
      trusted: () => options.clock.state().trusted,
      calendar: () => this.registry.running?.calendar,
      send: tell.dailySummary,
      logger,
    });
  }

  start(): void {
    this.options.media.start();
    this.registry.start();
    this.scheduler.start();
    const catchUp = contained(this.options.logger, 'daily programme summary', () => this.daily.catchUp());
    catchUp();
    this.dailyTimer = setInterval(catchUp, 60_000);
  }

  async stop(): Promise<void> {
    clearInterval(this.dailyTimer);
    this.scheduler.stop();
    await this.options.media.stop();
  }

  /** A verified county schedule from the village's own topic or the one for all villages. */
  offer(source: StoredSchedule['source'], document: ScheduleDocument, jti: string): void {
    this.registry.offer(source, document, jti);
  }

  /** Every playback event: the scheduler's own firings get their outcome. */
  observe(event: PlaybackEvent): void {
    this.scheduler.observe(event);
  }

  /**
   * Quiet hours, the running schedule's (a village with no schedule has none yet): only an emergency or the
   * village's own alarm sounds; an announcement is refused with the reason.
   */
  refusal(request: PlayRequest): string | undefined {
    const quiet = this.registry.running?.quiet;
    if (request.priority !== 'announcement' || quiet === undefined) return undefined;
    if (!quiet.contains(this.options.clock.now())) return undefined;
    return `quiet hours ${quiet}: only an emergency may sound`;
  }

  /** The running schedule, today's and this week's slots, and the newest firings: for the office console. */
  overview(): ProgrammeOverview {
    return programmeOverview({
      running: this.registry.running,
      log: this.options.store,
      zoneIds: this.options.zoneIds,
      now: this.options.clock.now(),
    });
  }

  health(): ScheduleHealth {
    const running = this.registry.running;
    return {
      version: running?.version ?? null,
      source: running?.source ?? null,
      programmes: running?.document.programmes.length ?? 0,
      today: this.scheduler.today(),
      mediaMissing: this.scheduler.mediaMissing().map((m) => ({ ...m })),
    };
  }
}
