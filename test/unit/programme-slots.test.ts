import { describe, expect, it } from 'vitest';
import { ProgrammeSlots } from '../../src/schedule/programme-slots.ts';
import { QuietHours } from '../../src/schedule/quiet-hours.ts';
import { ZoneCalendar } from '../../src/schedule/zone-calendar.ts';

const shanghai = new ZoneCalendar('Asia/Shanghai');
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

describe('programme slots', () => {
  it('reads the cron in the schedule zone, not the machine zone', () => {
    const slots = new ProgrammeSlots({ cron: '0 30 7 * * 1-5' }, shanghai);
    // Saturday 2026-12-05 12:00 Beijing: the next weekday 07:30 is Monday 07:30 Beijing = Sunday 23:30 UTC.
    expect(iso(slots.next(Date.parse('2026-12-05T04:00:00Z')))).toBe('2026-12-06T23:30:00.000Z');
    const berlin = new ProgrammeSlots({ cron: '0 30 7 * * 1-5' }, new ZoneCalendar('Europe/Berlin'));
    expect(iso(berlin.next(Date.parse('2026-12-05T04:00:00Z')))).toBe('2026-12-07T06:30:00.000Z');
  });

  it('takes five fields as minutes and seconds-level six-field expressions', () => {
    const everyTwenty = new ProgrammeSlots({ cron: '*/20 * * * *' }, shanghai);
    expect(everyTwenty.between(Date.parse('2026-12-06T00:00:00Z'), Date.parse('2026-12-06T01:00:00Z'), 10).map(iso)).toEqual([
      '2026-12-06T00:20:00.000Z',
      '2026-12-06T00:40:00.000Z',
      '2026-12-06T01:00:00.000Z',
    ]);
    const everyFive = new ProgrammeSlots({ cron: '*/5 * * * * *' }, shanghai);
    expect(iso(everyFive.next(Date.parse('2026-12-06T00:00:03.500Z')))).toBe('2026-12-06T00:00:05.000Z');
    expect(iso(everyFive.next(Date.parse('2026-12-06T00:00:05.000Z')))).toBe('2026-12-06T00:00:10.000Z');
  });

  it('keeps to validFrom, validUntil and the exception dates, as local days', () => {
    const slots = new ProgrammeSlots(
      { cron: '0 0 8 * * *', validFrom: '2026-12-07', validUntil: '2026-12-10', dates: { except: ['2026-12-08'] } },
      shanghai,
    );
    expect(slots.between(Date.parse('2026-12-01T00:00:00Z'), Date.parse('2026-12-31T00:00:00Z'), 10).map(iso)).toEqual([
      '2026-12-07T00:00:00.000Z',
      '2026-12-09T00:00:00.000Z',
      '2026-12-10T00:00:00.000Z',
    ]);
    expect(slots.next(Date.parse('2026-12-10T00:00:00Z'))).toBeUndefined();
  });

  it('skips a time a daylight-saving change removes and plays the repeated hour once', () => {
    const berlin = new ZoneCalendar('Europe/Berlin');
    const spring = new ProgrammeSlots({ cron: '0 30 2 * * *' }, berlin);
    // 2026-03-29 02:30 does not exist in Berlin: the next is on the 30th.
    expect(iso(spring.next(Date.parse('2026-03-28T12:00:00Z')))).toBe('2026-03-30T00:30:00.000Z');
    const autumn = new ProgrammeSlots({ cron: '0 30 2 * * *' }, berlin);
    expect(autumn.between(Date.parse('2026-10-24T12:00:00Z'), Date.parse('2026-10-26T12:00:00Z'), 10).map(iso)).toEqual([
      '2026-10-25T00:30:00.000Z',
      '2026-10-26T01:30:00.000Z',
    ]);
  });
});

describe('quiet hours', () => {
  const quiet = new QuietHours({ from: '22:00', until: '06:30' }, shanghai);

  it('crosses midnight in the schedule zone', () => {
    expect(quiet.contains(Date.parse('2026-12-06T13:59:59Z'))).toBe(false); // 21:59:59 Beijing
    expect(quiet.contains(Date.parse('2026-12-06T14:00:00Z'))).toBe(true); // 22:00
    expect(quiet.contains(Date.parse('2026-12-06T19:00:00Z'))).toBe(true); // 03:00
    expect(quiet.contains(Date.parse('2026-12-06T22:30:00Z'))).toBe(false); // 06:30
  });

  it('says when the next quiet hours begin', () => {
    expect(iso(quiet.nextStart(Date.parse('2026-12-06T13:30:00Z')))).toBe('2026-12-06T14:00:00.000Z');
    expect(iso(quiet.nextStart(Date.parse('2026-12-06T14:00:00Z')))).toBe('2026-12-07T14:00:00.000Z');
  });

  it('is empty when from equals until', () => {
    const none = new QuietHours({ from: '00:00', until: '00:00' }, shanghai);
    expect(none.contains(Date.parse('2026-12-06T16:00:00Z'))).toBe(false);
    expect(none.nextStart(0)).toBeUndefined();
  });
});
