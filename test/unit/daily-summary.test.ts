import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dailySummarySchema } from '../../src/contract/schedule-summary.ts';
import { dayBounds, summarizeDay } from '../../src/schedule/daily-summary.ts';
import { ZoneCalendar } from '../../src/schedule/zone-calendar.ts';

const zone = (timezone: string) => new ZoneCalendar(timezone);
import type { FiringRecord } from '../../src/schedule/types.ts';

const hour = 3600_000;
const utc = (iso: string) => Date.parse(`${iso}Z`);

function firing(programme: string, scheduledAt: number, outcome: FiringRecord['outcome'], reason?: string): FiringRecord {
  return { programme, scheduledAt, version: 1, outcome, at: scheduledAt + 1000, ...(reason === undefined ? {} : { reason }) };
}

// Days are the schedule's, never the Pi's: the same answers whatever zone the machine is set to.
for (const machineZone of ['UTC', 'America/New_York']) {
  describe(`daily summary, with the machine in ${machineZone}`, () => {
    const before = process.env['TZ'];
    beforeAll(() => {
      process.env['TZ'] = machineZone;
    });
    afterAll(() => {
      if (before === undefined) delete process.env['TZ'];
      else process.env['TZ'] = before;
    });

    it('is running in that zone (the test would prove nothing otherwise)', () => {
      expect(new Date(utc('2026-12-01T00:00:00')).getTimezoneOffset()).toBe(machineZone === 'UTC' ? 0 : 300);
    });

    describe('local days', () => {
      it('Asia/Shanghai: a day runs from 16:00 UTC the day before, 24 h', () => {
        expect(dayBounds('2026-12-01', zone('Asia/Shanghai'))).toEqual([utc('2026-11-30T16:00:00'), utc('2026-12-01T16:00:00')]);
        expect(zone('Asia/Shanghai').date(utc('2026-11-30T15:59:59.999'))).toBe('2026-11-30');
        expect(zone('Asia/Shanghai').date(utc('2026-11-30T16:00:00'))).toBe('2026-12-01');
        // The turn of a year and a leap day, where a hand-rolled date would slip.
        expect(dayBounds('2027-01-01', zone('Asia/Shanghai'))).toEqual([utc('2026-12-31T16:00:00'), utc('2027-01-01T16:00:00')]);
        expect(dayBounds('2028-02-29', zone('Asia/Shanghai'))).toEqual([utc('2028-02-28T16:00:00'), utc('2028-02-29T16:00:00')]);
      });

      it('Europe/Berlin: the spring change day is 23 h long and the autumn one 25 h', () => {
        const [springStart, springEnd] = dayBounds('2026-03-29', zone('Europe/Berlin'));
        expect([springStart, springEnd]).toEqual([utc('2026-03-28T23:00:00'), utc('2026-03-29T22:00:00')]);
        expect(springEnd - springStart).toBe(23 * hour);
        const [autumnStart, autumnEnd] = dayBounds('2026-10-25', zone('Europe/Berlin'));
        expect([autumnStart, autumnEnd]).toEqual([utc('2026-10-24T22:00:00'), utc('2026-10-25T23:00:00')]);
        expect(autumnEnd - autumnStart).toBe(25 * hour);
        const [ordinaryStart, ordinaryEnd] = dayBounds('2026-10-26', zone('Europe/Berlin'));
        expect(ordinaryEnd - ordinaryStart).toBe(24 * hour);
        expect(ordinaryStart).toBe(autumnEnd);
      });

      it('a change that skips midnight itself starts the day when the clock jumps (America/Santiago, 2022-09-11)', () => {
        expect(dayBounds('2022-09-11', zone('America/Santiago'))).toEqual([utc('2022-09-11T04:00:00'), utc('2022-09-12T03:00:00')]);
        expect(zone('America/Santiago').date(utc('2022-09-11T03:59:59.999'))).toBe('2022-09-10');
      });

      it('refuses what is not a calendar date or a zone', () => {
        expect(() => dayBounds('2026-02-30', zone('Asia/Shanghai'))).toThrow(RangeError);
        expect(() => dayBounds('2026-2-3', zone('Asia/Shanghai'))).toThrow('not a calendar date');
        expect(() => dayBounds('2026-12-01', zone('Mars/Olympus_Mons'))).toThrow(RangeError);
      });
    });

    describe('summarizeDay', () => {
      it('counts each programme of the local day: due is every firing, played those that started', () => {
        const day = { date: '2026-12-01', calendar: zone('Asia/Shanghai') };
        const records = [
          // 2026-11-30 23:59 in Shanghai: the day before, though the same UTC date as the next ones.
          firing('pufa-morning', utc('2026-11-30T15:59:00'), 'missed', 'no network'),
          // 00:00 and 07:30 in Shanghai, on 2026-11-30 by UTC: this day.
          firing('pufa-morning', utc('2026-11-30T16:00:00'), 'finished'),
          firing('pufa-morning', utc('2026-11-30T23:30:00'), 'preempted', 'emergency broadcast'),
          firing('pufa-morning', utc('2026-12-01T01:00:00'), 'stopped', 'stopped by the county'),
          firing('pufa-morning', utc('2026-12-01T02:00:00'), 'playing'),
          firing('news-evening', utc('2026-12-01T10:30:00'), 'missed', 'quiet hours'),
          firing('news-evening', utc('2026-12-01T11:30:00'), 'missed', 'quiet hours'),
          firing('news-evening', utc('2026-12-01T12:30:00'), 'failed', 'amplifier off'),
          firing('news-evening', utc('2026-12-01T13:30:00'), 'skipped', 'media missing'),
          firing('news-evening', utc('2026-12-01T14:30:00'), 'withheld', 'exercise'),
          // 00:00 of the next day in Shanghai.
          firing('news-evening', utc('2026-12-01T16:00:00'), 'finished'),
        ];
        const summary = summarizeDay(records, day);
        expect(summary).toEqual({
          date: '2026-12-01',
          timezone: 'Asia/Shanghai',
          programmes: [
            {
              programme: 'news-evening',
              ...{ due: 5, played: 0, playing: 0, finished: 0, preempted: 0, stopped: 0, failed: 1, missed: 2, skipped: 1, withheld: 1 },
              reasons: { 'quiet hours': 2, 'amplifier off': 1, exercise: 1, 'media missing': 1 },
            },
            {
              programme: 'pufa-morning',
              ...{ due: 4, played: 4, playing: 1, finished: 1, preempted: 1, stopped: 1, failed: 0, missed: 0, skipped: 0, withheld: 0 },
              reasons: { 'emergency broadcast': 1, 'stopped by the county': 1 },
            },
          ],
          totals: { due: 9, played: 4, playing: 1, finished: 1, preempted: 1, stopped: 1, failed: 1, missed: 2, skipped: 1, withheld: 1 },
        });
        // Most frequent first, ties by text: the same log always makes the same report.
        expect(Object.keys(summary.programmes[0]!.reasons)).toEqual(['quiet hours', 'amplifier off', 'exercise', 'media missing']);
        expect(dailySummarySchema.parse(summary)).toEqual(summary);
      });

      it('counts a DST change day whole: both 02:30s of a 25 h day, and none of the next day', () => {
        const day = { date: '2026-10-25', calendar: zone('Europe/Berlin') };
        const records = [
          firing('p', utc('2026-10-24T21:59:00'), 'finished'),
          firing('p', utc('2026-10-25T00:30:00'), 'finished'), // 02:30 CEST
          firing('p', utc('2026-10-25T01:30:00'), 'finished'), // 02:30 CET
          firing('p', utc('2026-10-25T22:59:00'), 'missed', 'quiet hours'), // 23:59 CET
          firing('p', utc('2026-10-25T23:00:00'), 'finished'), // 00:00 on the 26th
        ];
        expect(summarizeDay(records, day).totals).toMatchObject({ due: 3, played: 2, finished: 2, missed: 1 });
        expect(summarizeDay(records, { date: '2026-03-29', calendar: zone('Europe/Berlin') }).totals.due).toBe(0);
      });

      it('keeps the report bounded: the ten most frequent reasons, each cut to 120 characters', () => {
        const at = utc('2026-12-01T02:00:00');
        const records = Array.from({ length: 14 }, (_, i) => firing('p', at + i * 60_000, 'failed', `reason ${String(i % 12).padStart(2, '0')}`));
        records.push(firing('p', at + 20 * 60_000, 'failed', 'x'.repeat(500)), firing('p', at + 21 * 60_000, 'failed', 'x'.repeat(600)));
        const summary = summarizeDay(records, { date: '2026-12-01', calendar: zone('Asia/Shanghai') });
        const reasons = summary.programmes[0]!.reasons;
        expect(Object.keys(reasons)).toEqual([
          'reason 00',
          'reason 01',
          `${'x'.repeat(119)}…`,
          ...Array.from({ length: 7 }, (_, i) => `reason 0${i + 2}`),
        ]);
        expect(reasons[`${'x'.repeat(119)}…`]).toBe(2);
        expect(summary.programmes[0]!.due).toBe(16);
        expect(dailySummarySchema.safeParse(summary).success).toBe(true);
      });

      it('a day without firings is all zeros, and still a valid report', () => {
        const summary = summarizeDay([], { date: '2026-12-01', calendar: zone('Asia/Shanghai') });
        expect(summary.programmes).toEqual([]);
        expect(Object.values(summary.totals).every((n) => n === 0)).toBe(true);
        expect(dailySummarySchema.parse(summary)).toEqual(summary);
      });
    });
  });
}
