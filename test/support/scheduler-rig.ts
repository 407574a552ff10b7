import { vi } from 'vitest';
import type { PlaybackEvent, PlayRequest } from '../../src/broadcast/types.ts';
import { scheduleDocumentSchema, type ScheduleDocumentInput } from '../../src/contract/schedule.ts';
import { ProgrammeScheduler, type ClockJump } from '../../src/schedule/programme-scheduler.ts';
import { RunningSchedule } from '../../src/schedule/running-schedule.ts';
import type { FiringRecord, MediaCheck, MediaNeed } from '../../src/schedule/types.ts';
import { createMemoryScheduleStore, type MemoryScheduleStore } from '../../src/store/memory-schedule-store.ts';
import { memoryLogger } from './log-sink.ts';

/**
 * A scheduler over fake time: vitest's fake timers drive `Date` and `setTimeout`; the rig's clock reads the
 * wall as `Date.now() + offset` and the monotonic clock as `Date.now()`, so moving `offset` is a clock jump.
 * The player records requests and answers stops with `stopped`, as the controller does.
 */
export interface SchedulerRig {
  scheduler: ProgrammeScheduler;
  log: MemoryScheduleStore;
  submitted: PlayRequest[];
  stops: { requestId: string; reason: string }[];
  jumps: ClockJump[];
  missingMedia: (readonly { programme: string; reason: string }[])[];
  records: FiringRecord[];
  logFailures: unknown[];
  clock: { offset: number; trusted: boolean };
  media: Map<string, MediaCheck>;
  wanted: MediaNeed[][];
  /** Tells the scheduler what the controller did with a request. */
  event(requestId: string, event: PlaybackEvent['event'], reason?: string): void;
  run(document: ScheduleDocumentInput): RunningSchedule;
  /** Outcome of each recorded slot, as `programme@HH:MM:SS local` → outcome. */
  outcomes(): Record<string, string>;
}

export function schedulerRig(options: { log?: MemoryScheduleStore; graceMs?: number; startAt?: string } = {}): SchedulerRig {
  if (options.startAt !== undefined) vi.setSystemTime(Date.parse(options.startAt));
  const clock = { offset: 0, trusted: true };
  const log = options.log ?? createMemoryScheduleStore();
  const rig: Omit<SchedulerRig, 'scheduler'> & { scheduler?: ProgrammeScheduler } = {
    log,
    submitted: [],
    stops: [],
    jumps: [],
    missingMedia: [],
    records: [],
    logFailures: [],
    clock,
    media: new Map(),
    wanted: [],
    event(requestId, event, reason) {
      const request = rig.submitted.find((r) => r.id === requestId);
      scheduler.observe({
        event,
        requestId,
        priority: 'scheduled',
        status: 'actual',
        zones: request?.zones ?? [],
        faultyZones: [],
        ...(reason === undefined ? {} : { reason }),
        at: Date.now() + clock.offset,
      });
    },
    run(document) {
      const running = new RunningSchedule(scheduleDocumentSchema.parse(document), 'village');
      scheduler.replace(running);
      return running;
    },
    outcomes() {
      const local = (ms: number) => new Date(ms + 8 * 3600_000).toISOString().slice(11, 19);
      return Object.fromEntries(log.between(0, Number.MAX_SAFE_INTEGER).map((r) => [`${r.programme}@${local(r.scheduledAt)}`, r.outcome]));
    },
  };
  const scheduler = new ProgrammeScheduler({
    clock: {
      now: () => Date.now() + clock.offset,
      monotonic: () => Date.now(),
      state: () => ({ trusted: clock.trusted, source: clock.trusted ? 'system' : 'none', correctionMs: 0 }),
    },
    log,
    media: {
      want: (needs) => rig.wanted.push([...needs]),
      check: (need) => rig.media.get(need.sha256) ?? { ok: false, reason: 'not fetched yet' },
    },
    player: {
      submit: (request) => rig.submitted.push(request),
      stop: (requestId, reason) => {
        rig.stops.push({ requestId, reason });
        rig.event(requestId, 'stopped', reason);
      },
    },
    zoneIds: ['z1', 'z2'],
    logger: memoryLogger().logger,
    ...(options.graceMs === undefined ? {} : { graceMs: options.graceMs }),
    onClockJump: (jump) => rig.jumps.push(jump),
    onMediaMissing: (missing) => rig.missingMedia.push(missing),
    onRecorded: (record) => rig.records.push(record),
    onLogFailure: (error) => rig.logFailures.push(error),
  });
  rig.scheduler = scheduler;
  return rig as SchedulerRig;
}

/** A programme every `cron`, spoken, in all zones. */
export function spoken(id: string, cron: string, extra: Record<string, unknown> = {}) {
  return { id, cron, zones: 'all' as const, content: { kind: 'tts' as const, text: `${id} 普法节目` }, ...extra };
}
