import { describe, expect, it } from 'vitest';
import type { DailySummary } from '../../src/contract/schedule-summary.ts';
import { DailyReports } from '../../src/schedule/daily-reports.ts';
import { ZoneCalendar } from '../../src/schedule/zone-calendar.ts';
import { createMemoryScheduleStore } from '../../src/store/memory-schedule-store.ts';
import { memoryLogger } from '../support/log-sink.ts';

const beijing = (iso: string) => Date.parse(`${iso}+08:00`);

const shanghai = new ZoneCalendar('Asia/Shanghai');

function reports(start: string) {
  const log = createMemoryScheduleStore();
  const sent: DailySummary[] = [];
  let now = beijing(start);
  let trusted = true;
  const daily = new DailyReports({
    log,
    now: () => now,
    trusted: () => trusted,
    calendar: () => shanghai,
    send: (summary) => sent.push(summary),
    logger: memoryLogger().logger,
  });
  return {
    log,
    sent,
    daily,
    at: (iso: string) => {
      now = beijing(iso);
    },
    distrust: () => {
      trusted = false;
    },
  };
}

describe('daily programme reports', () => {
  it("sends yesterday's summary once, counted in Beijing days whatever the machine's zone", () => {
    const r = reports('2026-12-08T00:00:30');
    // 23:30 Beijing on the 7th is still the 7th (15:30 UTC), 00:10 on the 8th is not.
    r.log.open({
      programme: 'pufa',
      scheduledAt: beijing('2026-12-07T23:30:00'),
      version: 1,
      outcome: 'withheld',
      reason: 'quiet hours 22:00–06:30',
      at: 0,
    });
    r.log.open({ programme: 'pufa', scheduledAt: beijing('2026-12-07T07:00:00'), version: 1, outcome: 'finished', at: 0 });
    r.log.open({ programme: 'pufa', scheduledAt: beijing('2026-12-08T00:10:00'), version: 1, outcome: 'missed', at: 0 });
    r.daily.catchUp();
    r.daily.catchUp();
    expect(r.sent).toHaveLength(1);
    expect(r.sent[0]).toMatchObject({
      date: '2026-12-07',
      timezone: 'Asia/Shanghai',
      totals: { due: 2, played: 1, finished: 1, withheld: 1, missed: 0 },
    });
    expect(r.sent[0]!.programmes[0]!.reasons).toEqual({ 'quiet hours 22:00–06:30': 1 });
    expect(r.log.summarizedThrough()).toBe('2026-12-07');
  });

  it('after days off catches up day by day, at most a week back; sends nothing while time is not trusted', () => {
    const r = reports('2026-12-01T12:00:00');
    r.daily.catchUp();
    expect(r.sent.map((s) => s.date)).toEqual(['2026-11-30']);
    r.at('2026-12-04T08:00:00');
    r.daily.catchUp();
    expect(r.sent.map((s) => s.date)).toEqual(['2026-11-30', '2026-12-01', '2026-12-02', '2026-12-03']);
    r.at('2026-12-20T08:00:00');
    r.distrust();
    r.daily.catchUp();
    expect(r.sent).toHaveLength(4);
  });

  it('after a long outage summarises only the last week', () => {
    const r = reports('2026-12-01T12:00:00');
    r.daily.catchUp();
    r.at('2026-12-20T08:00:00');
    r.daily.catchUp();
    expect(r.sent.map((s) => s.date)).toEqual([
      '2026-11-30',
      '2026-12-13',
      '2026-12-14',
      '2026-12-15',
      '2026-12-16',
      '2026-12-17',
      '2026-12-18',
      '2026-12-19',
    ]);
  });
});
