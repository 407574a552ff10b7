import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { scheduleDocumentSchema } from '../../src/contract/schedule.ts';
import { ProgrammeSchedule } from '../../src/schedule/programme-schedule.ts';
import { createMemoryScheduleStore } from '../../src/store/memory-schedule-store.ts';
import { flush, request, setup } from '../support/broadcast-rig.ts';
import { memoryLogger } from '../support/log-sink.ts';

/** Quiet hours as the rest of the village meets them: the running schedule's window, read in its zone. */
function programmes(document: unknown | undefined) {
  return new ProgrammeSchedule({
    store: createMemoryScheduleStore(),
    media: { want: () => undefined, check: () => ({ ok: true }), start: () => undefined, stop: async () => undefined },
    local: document === undefined ? undefined : scheduleDocumentSchema.parse(document),
    zoneIds: ['z1'],
    mediaExtensions: ['.mp3'],
    clock: { now: Date.now, monotonic: () => Date.now(), state: () => ({ trusted: true, source: 'system', correctionMs: 0 }) },
    player: { submit: () => undefined, stop: () => undefined },
    settings: { graceMs: 120_000, mediaLookaheadMs: 48 * 3_600_000, retentionMs: 90 * 86_400_000 },
    tell: {
      applied: () => undefined,
      rejected: () => undefined,
      clockJump: () => undefined,
      mediaMissing: () => undefined,
      storageFailure: () => undefined,
      dailySummary: () => undefined,
    },
    logger: memoryLogger().logger,
  });
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('quiet hours refuse announcements', () => {
  it('refuses an announcement at 23:00 Beijing, whatever the machine zone, and lets an emergency, the local alarm and a test through', async () => {
    vi.setSystemTime(Date.parse('2026-12-07T15:00:00Z')); // 23:00 in Beijing
    const schedule = programmes({ version: 1, programmes: [] });
    schedule.start();
    const { controller, story, last } = await setup({}, undefined, { refusal: (r) => schedule.refusal(r) });
    controller.submit(request('announce-1', 'announcement'));
    controller.submit(request('announce-test', 'announcement', { status: 'test' }));
    controller.submit(request('alarm-1', 'local-alarm'));
    controller.submit(request('emergency-1', 'emergency', { level: 2 }));
    await flush();
    expect(last('announce-1', 'rejected').reason).toBe('quiet hours 22:00–06:30: only an emergency may sound');
    expect(story('announce-test')).toEqual(['announce-test accepted', 'announce-test tested']);
    expect(story('alarm-1')[0]).toBe('alarm-1 accepted');
    expect(story('emergency-1')[0]).toBe('emergency-1 accepted');
    await schedule.stop();
  });

  it('takes announcements in the day, and at night where no schedule (so no quiet window) runs yet', async () => {
    vi.setSystemTime(Date.parse('2026-12-07T02:00:00Z')); // 10:00 in Beijing
    const withSchedule = programmes({ version: 1, programmes: [] });
    const without = programmes(undefined);
    withSchedule.start();
    without.start();
    expect(withSchedule.refusal(request('a', 'announcement'))).toBeUndefined();
    vi.setSystemTime(Date.parse('2026-12-07T15:00:00Z'));
    expect(withSchedule.refusal(request('b', 'announcement'))).toMatch(/^quiet hours/);
    expect(without.refusal(request('c', 'announcement'))).toBeUndefined();
    await withSchedule.stop();
    await without.stop();
  });
});
