import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { scheduleDocumentSchema } from '../../src/contract/schedule.ts';
import { ProgrammeSchedule } from '../../src/schedule/programme-schedule.ts';
import type { PlayRequest } from '../../src/broadcast/types.ts';
import { createMemoryScheduleStore } from '../../src/store/memory-schedule-store.ts';
import { memoryLogger } from '../support/log-sink.ts';

// The office console's programme view, from the real ProgrammeSchedule over the in-memory store and log.
const MONDAY_0630_BEIJING = '2026-12-07T06:30:00+08:00';

function schedule(now: () => number) {
  const { logger } = memoryLogger();
  const store = createMemoryScheduleStore();
  const submitted: PlayRequest[] = [];
  const programmes = new ProgrammeSchedule({
    store,
    media: { want: () => {}, check: () => ({ ok: true }), start: () => {}, stop: async () => {} },
    local: scheduleDocumentSchema.parse({
      version: 3,
      programmes: [
        { id: 'morning', cron: '0 0 7 * * 1-5', zones: ['east'], content: { kind: 'tts', text: '早上好' } },
        { id: 'noon', cron: '0 30 12 * * *', zones: 'all', content: { kind: 'tts', text: '中午' } },
      ],
    }),
    zoneIds: ['east', 'west'],
    mediaExtensions: ['.mp3'],
    clock: { now, monotonic: now, state: () => ({ trusted: true, source: 'system', correctionMs: 0 }) },
    player: { submit: (r) => submitted.push(r), stop: () => {} },
    settings: { graceMs: 120_000, mediaLookaheadMs: 3_600_000, retentionMs: 30 * 86_400_000 },
    tell: { applied: () => {}, rejected: () => {}, clockJump: () => {}, mediaMissing: () => {}, storageFailure: () => {}, dailySummary: () => {} },
    logger,
  });
  return { programmes, store, submitted };
}

describe('ProgrammeSchedule.overview', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(Date.parse(MONDAY_0630_BEIJING));
  });
  afterEach(() => vi.useRealTimers());

  it('names the running schedule and lists today’s slots, in its zone, with their zones', () => {
    const { programmes } = schedule(Date.now);
    programmes.start();
    const view = programmes.overview();
    expect(view.schedule).toEqual({ version: 3, source: 'local', timezone: 'Asia/Shanghai' });
    expect(view.today).toEqual([
      { programme: 'morning', dueAt: '2026-12-07T07:00:00.000+08:00', zones: ['east'], outcome: 'due' },
      { programme: 'noon', dueAt: '2026-12-07T12:30:00.000+08:00', zones: ['east', 'west'], outcome: 'due' },
    ]);
    // Monday 06:30 to the end of Sunday: five weekday mornings, seven noons.
    expect(view.week.filter((s) => s.programme === 'morning')).toHaveLength(5);
    expect(view.week.filter((s) => s.programme === 'noon')).toHaveLength(7);
    expect(view.week.at(-1)?.dueAt).toBe('2026-12-13T12:30:00.000+08:00');
    expect(view.log).toEqual([]);
    void programmes.stop();
  });

  it('shows today’s outcomes from the completion log, and its newest entries first', async () => {
    const { programmes, submitted } = schedule(Date.now);
    programmes.start();
    await vi.advanceTimersByTimeAsync(30 * 60_000);
    const fired = submitted.find((r) => r.id.startsWith('schedule:morning:'));
    expect(fired).toBeDefined();
    programmes.observe({
      event: 'started',
      requestId: fired!.id,
      priority: 'scheduled',
      status: 'actual',
      zones: ['east'],
      faultyZones: [],
      at: Date.now(),
    });
    programmes.observe({
      event: 'preempted',
      requestId: fired!.id,
      priority: 'scheduled',
      status: 'actual',
      zones: ['east'],
      faultyZones: [],
      reason: 'preempted by emergency c-1',
      at: Date.now(),
    });
    await vi.advanceTimersByTimeAsync(6 * 3_600_000);
    const view = programmes.overview();
    expect(view.today.map((s) => [s.programme, s.outcome, s.reason])).toEqual([
      ['morning', 'preempted', 'preempted by emergency c-1'],
      ['noon', 'playing', undefined],
    ]);
    expect(view.log.map((l) => [l.programme, l.outcome, l.dueAt])).toEqual([
      ['noon', 'playing', '2026-12-07T12:30:00.000+08:00'],
      ['morning', 'preempted', '2026-12-07T07:00:00.000+08:00'],
    ]);
    expect(view.week[0]?.dueAt).toBe('2026-12-08T07:00:00.000+08:00');
    void programmes.stop();
  });
});
