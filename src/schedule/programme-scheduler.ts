import type { Logger } from 'pino';
import type { PlaybackEvent, PlayRequest } from '../broadcast/types.ts';
import type { Clock } from '../platform/trusted-clock.ts';
import { contained } from '../platform/contained.ts';
import { errorText } from '../platform/error-text.ts';
import { dayBounds } from './daily-summary.ts';
import { mediaNeedOf, programmeRequest, type RunningProgramme, type RunningSchedule } from './running-schedule.ts';
import { firingOutcomes, type FiringOutcome, type FiringRecord, type MediaLibrary, type MediaNeed, type ProgrammeLog } from './types.ts';

/**
 * Fires the running schedule's programmes on time, and never the wrong one. Time is read on each wake, not
 * trusted to timers: every slot between the last wake and now is decided once (the completion log keeps
 * each programme's slot at most once, across restarts), so a clock that jumps forward plays at most what
 * falls inside the grace window, a clock that jumps back plays nothing twice, and a restart plays late only
 * within the grace window. Every decision is recorded: fired (then its outcome), `missed`, `skipped`,
 * `withheld`, `failed`.
 */

export interface ProgrammePlayer {
  submit(request: PlayRequest): void;
  stop(requestId: string, reason: string): void;
}

export interface ClockJump {
  /** Positive forward, negative back. */
  deltaMs: number;
  at: number;
}

export interface ProgrammeSchedulerOptions {
  clock: Pick<Clock, 'now' | 'monotonic' | 'state'>;
  log: ProgrammeLog;
  media: Pick<MediaLibrary, 'want' | 'check'>;
  player: ProgrammePlayer;
  /** The village's zones, for programmes addressed to `all`. */
  zoneIds: readonly string[];
  logger: Logger;
  /** A slot found late by up to this much still plays (after a restart, a jump, a busy moment). */
  graceMs?: number;
  /** Media of programmes due within this are fetched ahead. */
  mediaLookaheadMs?: number;
  /** Programmes due within this whose media are missing make a fault. */
  mediaAlertMs?: number;
  /** A disagreement between the wall clock and the monotonic clock over this is a jump. */
  jumpThresholdMs?: number;
  /** The longest sleep between wakes: how soon a jump with nothing due is noticed. */
  maxSleepMs?: number;
  /** After a long outage or jump, slots older than this are not enumerated one by one. */
  lookbackMs?: number;
  /** The completion log keeps firings this long; older ones are pruned once a day. */
  retentionMs?: number;
  onClockJump?: (jump: ClockJump) => void;
  /** The programmes due soon whose media are missing, each time that list changes (empty: all present). */
  onMediaMissing?: (missing: readonly { programme: string; reason: string }[]) => void;
  /** Every record written, after it was committed. */
  onRecorded?: (record: FiringRecord) => void;
  /** The completion log failed (a full or read-only card): told once until it works again. */
  onLogFailure?: (error: unknown) => void;
  setTimer?: (run: () => void, ms: number) => unknown;
  clearTimer?: (timer: unknown) => void;
}

interface Firing {
  programme: string;
  slot: number;
  cut: unknown;
}

const MINUTE = 60_000;
const LOG_RETRY_MS = 5000;
const HOUR = 60 * MINUTE;

export class ProgrammeScheduler {
  private running: RunningSchedule | undefined;
  /** Each programme's next slot not yet decided. */
  private readonly nextSlots = new Map<string, number>();
  /** Firings submitted and not ended, by request id. */
  private readonly firings = new Map<string, Firing>();
  private lastWake: { wall: number; mono: number } | undefined;
  /** Wall time every slot up to which is decided. */
  private decidedThrough: number | undefined;
  private wakeTimer: unknown;
  private mediaTimer: unknown;
  private missingMedia: readonly { programme: string; reason: string }[] = [];
  private prunedOn: string | undefined;
  private started = false;
  private logFailing = false;
  private readonly graceMs: number;
  private readonly setTimer: (run: () => void, ms: number) => unknown;
  private readonly clearTimer: (timer: unknown) => void;

  constructor(private readonly options: ProgrammeSchedulerOptions) {
    this.graceMs = options.graceMs ?? 2 * MINUTE;
    this.setTimer = options.setTimer ?? ((run, ms) => setTimeout(run, ms));
    this.clearTimer = options.clearTimer ?? ((timer) => clearTimeout(timer as NodeJS.Timeout));
  }

  get schedule(): RunningSchedule | undefined {
    return this.running;
  }

  start(): void {
    this.started = true;
    // Ended by the restart: nothing is resumed out of its moment (the controller's rule for preempted items too).
    for (const firing of this.options.log.playing())
      if (firing.requestId !== undefined)
        this.settle(firing.requestId, 'stopped', 'the service stopped while it played or waited', {
          programme: firing.programme,
          slot: firing.scheduledAt,
        });
    this.decidedThrough = this.options.log.cursor();
    this.wake();
    this.refreshMedia();
  }

  stop(): void {
    this.started = false;
    this.clearTimer(this.wakeTimer);
    this.clearTimer(this.mediaTimer);
    for (const firing of this.firings.values()) this.clearTimer(firing.cut);
    if (this.decidedThrough !== undefined) this.options.log.setCursor(this.decidedThrough);
  }

  /**
   * Runs `next` from now on, atomically: slots already decided stay decided. A firing whose programme is
   * gone or changed is stopped (the county replaced it for a reason); one the new version keeps plays on.
   */
  replace(next: RunningSchedule | undefined): void {
    const previous = this.running;
    this.running = next;
    this.nextSlots.clear();
    for (const [requestId, firing] of this.firings) {
      const before = previous?.programmes.get(firing.programme);
      const after = next?.programmes.get(firing.programme);
      // Compared whole, and only for what plays: a programme whose text changed is a different programme.
      if (after === undefined || JSON.stringify(after.programme) !== JSON.stringify(before?.programme))
        this.options.player.stop(
          requestId,
          `schedule version ${next?.version ?? '(none)'} ${after === undefined ? 'has no' : 'changed'} programme ${firing.programme}`,
        );
    }
    if (!this.started) return;
    this.wake();
    this.refreshMedia();
  }

  /** Today's firings (in the schedule's zone) by outcome, for health. */
  today(): Record<FiringOutcome, number> {
    const counts = Object.fromEntries(firingOutcomes.map((o) => [o, 0])) as Record<FiringOutcome, number>;
    const running = this.running;
    if (running === undefined) return counts;
    const now = this.options.clock.now();
    const [start, end] = dayBounds(running.calendar.date(now), running.calendar);
    for (const firing of this.options.log.between(start, end)) counts[firing.outcome]++;
    return counts;
  }

  /** Programmes due within the hour whose media are missing, as last checked. */
  mediaMissing(): readonly { programme: string; reason: string }[] {
    return this.missingMedia;
  }

  /** Every playback event of the controller: the scheduler's own firings get their outcome. */
  observe(event: PlaybackEvent): void {
    if (!this.firings.has(event.requestId)) return;
    const outcome = outcomeOf(event);
    if (outcome !== undefined) this.settle(event.requestId, outcome, event.reason);
  }

  private settle(
    requestId: string,
    outcome: Exclude<FiringOutcome, 'playing'>,
    reason: string | undefined,
    firing: Pick<Firing, 'programme' | 'slot'> | undefined = this.firings.get(requestId),
  ): void {
    const playing = this.firings.get(requestId);
    if (playing !== undefined) this.clearTimer(playing.cut);
    this.firings.delete(requestId);
    const at = this.options.clock.now();
    if (!this.options.log.settle(requestId, outcome, reason, at)) return;
    this.options.onRecorded?.({
      programme: firing?.programme ?? '',
      scheduledAt: firing?.slot ?? 0,
      version: this.running?.version ?? 0,
      outcome,
      ...(reason === undefined ? {} : { reason }),
      at,
      requestId,
    });
  }

  private wake(): void {
    this.clearTimer(this.wakeTimer);
    this.wakeTimer = undefined;
    if (!this.started) return;
    try {
      // Working again only once something was written: a wake with nothing due proves nothing.
      if (this.decide() > 0) this.logFailing = false;
    } catch (error) {
      // The log could not be written (full or read-only card): nothing is fired unrecorded; tried again at the next wake.
      this.options.logger.error({ err: error }, `programme schedule could not be decided: ${errorText(error)}`);
      if (!this.logFailing) contained(this.options.logger, 'log failure report', (e: unknown) => this.options.onLogFailure?.(e))(error);
      this.logFailing = true;
    }
    this.arm();
  }

  /** Decides every slot due by now; returns how many (each written to the log). */
  private decide(): number {
    const { clock, logger } = this.options;
    const wall = clock.now();
    const mono = clock.monotonic();
    const jump = this.detectJump(wall, mono);
    this.lastWake = { wall, mono };
    const running = this.running;
    if (running === undefined) {
      this.decidedThrough = wall;
      return 0;
    }
    const lookback = this.options.lookbackMs ?? 24 * HOUR;
    const from = Math.max(this.decidedThrough ?? wall, wall - lookback);
    if (jump !== undefined && jump.deltaMs < 0) this.nextSlots.clear();
    const due: { entry: RunningProgramme; slot: number }[] = [];
    for (const entry of running.programmes.values()) {
      let slot = this.nextSlots.get(entry.programme.id) ?? entry.slots.next(jump !== undefined && jump.deltaMs < 0 ? wall : from);
      if (slot !== undefined && slot < wall - lookback) slot = entry.slots.next(wall - lookback);
      while (slot !== undefined && slot <= wall) {
        due.push({ entry, slot });
        slot = entry.slots.next(slot);
      }
      if (slot === undefined) this.nextSlots.delete(entry.programme.id);
      else this.nextSlots.set(entry.programme.id, slot);
    }
    due.sort((a, b) => a.slot - b.slot);
    // A slot that could not be recorded is not decided: it (and whatever came after it) is taken up again at
    // the next wake, late by then, so it may be `missed` — but never fired unrecorded, nor forgotten.
    const undecided = new Map<string, number>();
    let failure: { error: unknown } | undefined;
    for (const { entry, slot } of due) {
      const id = entry.programme.id;
      if (failure === undefined) {
        try {
          this.decideSlot(running, entry, slot, wall, jump);
          continue;
        } catch (error) {
          failure = { error };
        }
      }
      if (!undecided.has(id)) undecided.set(id, slot);
    }
    for (const [id, slot] of undecided) this.nextSlots.set(id, slot);
    if (failure !== undefined) throw failure.error;
    this.decidedThrough = wall;
    if (due.length > 0) this.options.log.setCursor(wall);
    this.pruneDaily(running, wall);
    if (due.length > 0) logger.debug({ slots: due.length }, 'programme slots decided');
    return due.length;
  }

  private pruneDaily(running: RunningSchedule, wall: number): void {
    const today = running.calendar.date(wall);
    if (this.prunedOn === today) return;
    this.prunedOn = today;
    const pruned = this.options.log.prune(wall - (this.options.retentionMs ?? 90 * 24 * HOUR));
    if (pruned > 0) this.options.logger.info({ pruned }, 'old programme firings pruned from the completion log');
  }

  private detectJump(wall: number, mono: number): ClockJump | undefined {
    const last = this.lastWake;
    if (last === undefined) return undefined;
    const deltaMs = wall - (last.wall + (mono - last.mono));
    if (Math.abs(deltaMs) <= (this.options.jumpThresholdMs ?? MINUTE)) return undefined;
    const jump = { deltaMs, at: wall };
    this.options.logger.warn({ deltaMs }, `the clock jumped ${deltaMs > 0 ? 'forward' : 'back'} by ${duration(Math.abs(deltaMs))}`);
    contained(this.options.logger, 'clock jump report', (j: ClockJump) => this.options.onClockJump?.(j))(jump);
    return jump;
  }

  private decideSlot(running: RunningSchedule, entry: RunningProgramme, slot: number, wall: number, jump: ClockJump | undefined): void {
    const { programme } = entry;
    const record = (outcome: FiringOutcome, reason?: string, requestId?: string): boolean => {
      const written: FiringRecord = {
        programme: programme.id,
        scheduledAt: slot,
        version: running.version,
        outcome,
        ...(reason === undefined ? {} : { reason }),
        at: wall,
        ...(requestId === undefined ? {} : { requestId }),
      };
      if (!this.options.log.open(written)) return false;
      this.options.onRecorded?.(written);
      return true;
    };
    if (this.options.log.has(programme.id, slot)) return;
    const late = wall - slot;
    if (!this.options.clock.state().trusted) return void record('withheld', 'time is not trusted (no synchronised clock, no county time yet)');
    if (late > this.graceMs) {
      const cause =
        jump !== undefined && jump.deltaMs > 0 && slot > wall - jump.deltaMs - this.graceMs
          ? `the clock jumped forward by ${duration(jump.deltaMs)}`
          : 'the service was not running or not deciding then';
      return void record('missed', `${cause}; found ${duration(late)} late, past the ${duration(this.graceMs)} grace window`);
    }
    if (running.quiet.contains(slot)) return void record('withheld', `quiet hours ${running.quiet}`);
    const previous = [...this.firings.entries()].find(([, f]) => f.programme === programme.id);
    if (previous !== undefined) return void record('skipped', `the previous firing ${previous[0]} still plays or waits`);
    const media = mediaNeedOf(programme);
    if (media !== undefined) {
      const check = this.options.media.check(media);
      if (!check.ok) return void record('failed', `media ${media.file}: ${check.reason}`);
    }
    const request = programmeRequest({ programme, slot, zoneIds: this.options.zoneIds, expiresAt: slot + this.graceMs });
    if (!record('playing', undefined, request.id)) return;
    const cut = this.cutFor(running, entry, slot, wall);
    this.firings.set(request.id, {
      programme: programme.id,
      slot,
      cut: this.setTimer(
        contained(this.options.logger, 'programme cut', () => this.options.player.stop(request.id, cut.reason)),
        Math.max(0, cut.at - wall),
      ),
    });
    this.options.logger.info({ programme: programme.id, requestId: request.id, lateMs: late }, 'programme fired');
    this.options.player.submit(request);
  }

  /** Where a firing must end: its `maxDurationS`, or the start of quiet hours if that comes first. */
  private cutFor(running: RunningSchedule, entry: RunningProgramme, slot: number, wall: number): { at: number; reason: string } {
    const longest = slot + entry.programme.maxDurationS * 1000;
    const quiet = running.quiet.nextStart(Math.min(slot, wall));
    if (quiet !== undefined && quiet < longest) return { at: quiet, reason: `cut at the start of quiet hours ${running.quiet}` };
    return { at: longest, reason: `cut after its maxDurationS of ${entry.programme.maxDurationS} s` };
  }

  private arm(): void {
    if (!this.started) return;
    const wall = this.options.clock.now();
    let next = wall + (this.options.maxSleepMs ?? 10_000);
    for (const slot of this.nextSlots.values()) next = Math.min(next, slot);
    // A log that failed is tried again in a few seconds, not in a loop on the slot it could not record.
    const delay = Math.max(this.logFailing ? LOG_RETRY_MS : 0, next - wall);
    this.wakeTimer = this.setTimer(() => this.wake(), delay);
  }

  /** Fetch ahead what the next hours need; say so while a programme due within the hour has no media. */
  private refreshMedia(): void {
    this.clearTimer(this.mediaTimer);
    this.mediaTimer = undefined;
    if (!this.started) return;
    try {
      this.checkMedia();
    } catch (error) {
      this.options.logger.error({ err: error }, `programme media could not be checked: ${errorText(error)}`);
    }
    this.mediaTimer = this.setTimer(() => this.refreshMedia(), MINUTE);
  }

  private checkMedia(): void {
    const running = this.running;
    const now = this.options.clock.now();
    const needs = new Map<string, MediaNeed>();
    const missing: { programme: string; reason: string }[] = [];
    for (const entry of running?.programmes.values() ?? []) {
      const media = mediaNeedOf(entry.programme);
      if (media === undefined) continue;
      const next = entry.slots.next(now);
      if (next === undefined || next > now + (this.options.mediaLookaheadMs ?? 48 * HOUR)) continue;
      needs.set(media.file, media);
      if (next <= now + (this.options.mediaAlertMs ?? HOUR)) {
        const check = this.options.media.check(media);
        if (!check.ok) missing.push({ programme: entry.programme.id, reason: check.reason });
      }
    }
    this.options.media.want([...needs.values()]);
    if (JSON.stringify(missing) === JSON.stringify(this.missingMedia)) return;
    this.missingMedia = missing;
    contained(this.options.logger, 'missing media report', () => this.options.onMediaMissing?.(missing))();
  }
}

function outcomeOf(event: PlaybackEvent): Exclude<FiringOutcome, 'playing'> | undefined {
  switch (event.event) {
    case 'finished':
    case 'preempted':
    case 'stopped':
    case 'failed':
      return event.event;
    case 'rejected':
      return 'failed';
    default:
      return undefined;
  }
}

/** "45 s", "4 min 30 s", "3 h 5 min": how late, in words a county engineer reads at a glance. */
function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 180) return `${s} s`;
  if (s < 7200) return s % 60 === 0 ? `${s / 60} min` : `${Math.floor(s / 60)} min ${s % 60} s`;
  const minutes = Math.round(s / 60);
  return minutes % 60 === 0 ? `${minutes / 60} h` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}
