import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createMemoryScheduleStore } from '../../src/store/memory-schedule-store.ts';
import { schedulerRig, spoken } from '../support/scheduler-rig.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
/** 08:00 Beijing on Monday 2026-12-07. */
const MONDAY_8AM = '2026-12-07T00:00:00Z';

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
});
afterEach(() => {
  vi.useRealTimers();
  delete process.env['TZ'];
});

describe('programme scheduler: firing', () => {
  for (const zone of ['UTC', 'America/New_York']) {
    it(`fires at the right second in Asia/Shanghai over a simulated week with the machine in ${zone}`, () => {
      process.env['TZ'] = zone;
      const rig = schedulerRig({ startAt: MONDAY_8AM });
      rig.scheduler.start();
      rig.run({ version: 1, programmes: [spoken('morning', '15 30 7 * * 1-5'), spoken('evening', '0 0 19 * * *')] });
      for (let i = 0; i < 7 * 24 * 60; i++) {
        vi.advanceTimersByTime(MINUTE);
        for (const request of rig.submitted.splice(0)) rig.event(request.id, 'finished');
      }
      // Fired on the second: each decision is taken at its slot itself (0 ms late), not at the next poll.
      const fired = rig.records
        .filter((r) => r.outcome === 'playing')
        .map(
          (r) =>
            `${r.programme} ${new Date(r.scheduledAt + 8 * HOUR).toISOString().slice(0, 19)}${r.at === r.scheduledAt ? '' : ` late ${r.at - r.scheduledAt} ms`}`,
        );
      expect(fired).toEqual([
        'evening 2026-12-07T19:00:00',
        'morning 2026-12-08T07:30:15',
        'evening 2026-12-08T19:00:00',
        'morning 2026-12-09T07:30:15',
        'evening 2026-12-09T19:00:00',
        'morning 2026-12-10T07:30:15',
        'evening 2026-12-10T19:00:00',
        'morning 2026-12-11T07:30:15',
        'evening 2026-12-11T19:00:00',
        'evening 2026-12-12T19:00:00',
        'evening 2026-12-13T19:00:00',
        'morning 2026-12-14T07:30:15',
      ]);
      expect(Object.values(rig.outcomes()).every((o) => o === 'finished')).toBe(true);
      rig.scheduler.stop();
    });
  }

  it('wakes on the slot to the millisecond, and the request carries zones, volume, chime, repeat and the grace expiry', () => {
    const rig = schedulerRig({ startAt: '2026-12-07T00:59:59.700Z' });
    rig.scheduler.start();
    rig.run({ version: 1, programmes: [spoken('nine', '0 0 9 * * *', { zones: ['z2'], volume: 45, chime: true, repeat: 2 })] });
    vi.advanceTimersByTime(299);
    expect(rig.submitted).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(rig.submitted).toEqual([
      {
        id: `schedule:nine:${Date.parse('2026-12-07T01:00:00Z') / 1000}`,
        priority: 'scheduled',
        status: 'actual',
        zones: ['z2'],
        content: { kind: 'tts', text: 'nine 普法节目' },
        chime: true,
        repeat: 2,
        volume: 45,
        expiresAt: Date.parse('2026-12-07T01:02:00Z'),
        origin: 'schedule',
      },
    ]);
  });

  it('records what the controller did: preempted by an emergency, finished, failed', () => {
    const rig = schedulerRig({ startAt: MONDAY_8AM });
    rig.scheduler.start();
    rig.run({ version: 1, programmes: [spoken('a', '0 5 8 * * *'), spoken('b', '0 10 8 * * *'), spoken('c', '0 15 8 * * *')] });
    vi.advanceTimersByTime(5 * MINUTE);
    rig.event(rig.submitted[0]!.id, 'preempted', 'preempted by emergency county-1');
    vi.advanceTimersByTime(5 * MINUTE);
    rig.event(rig.submitted[1]!.id, 'finished');
    vi.advanceTimersByTime(5 * MINUTE);
    rig.event(rig.submitted[2]!.id, 'failed', 'player error');
    expect(rig.outcomes()).toEqual({ 'a@08:05:00': 'preempted', 'b@08:10:00': 'finished', 'c@08:15:00': 'failed' });
    expect(rig.log.between(0, Number.MAX_SAFE_INTEGER)[0]).toMatchObject({ reason: 'preempted by emergency county-1', version: 1 });
  });

  it('skips a firing that would overlap its own previous run', () => {
    const rig = schedulerRig({ startAt: MONDAY_8AM });
    rig.scheduler.start();
    rig.run({ version: 1, programmes: [spoken('often', '0 */1 * * * *')] });
    vi.advanceTimersByTime(2 * MINUTE);
    expect(rig.outcomes()).toEqual({ 'often@08:01:00': 'playing', 'often@08:02:00': 'skipped' });
    expect(rig.records.at(-1)?.reason).toMatch(/previous firing schedule:often:\d+ still plays/);
  });

  it('cuts a firing at maxDurationS', () => {
    const rig = schedulerRig({ startAt: MONDAY_8AM });
    rig.scheduler.start();
    rig.run({ version: 1, programmes: [spoken('long', '0 1 8 * * *', { maxDurationS: 300 })] });
    vi.advanceTimersByTime(MINUTE);
    vi.advanceTimersByTime(5 * MINUTE - 1);
    expect(rig.stops).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(rig.stops).toEqual([{ requestId: rig.submitted[0]!.id, reason: 'cut after its maxDurationS of 300 s' }]);
    expect(rig.outcomes()).toEqual({ 'long@08:01:00': 'stopped' });
  });
});

describe('programme scheduler: quiet hours', () => {
  it('cuts a programme that runs into quiet hours at their start, and withholds one inside them', () => {
    // 21:50 Beijing.
    const rig = schedulerRig({ startAt: '2026-12-07T13:50:00Z' });
    rig.scheduler.start();
    rig.run({
      version: 1,
      programmes: [spoken('late', '0 55 21 * * *', { maxDurationS: 1800 }), spoken('night', '0 30 22 * * *'), spoken('dawn', '0 0 6 * * *')],
    });
    vi.advanceTimersByTime(5 * MINUTE);
    expect(rig.submitted.map((r) => r.id.split(':')[1])).toEqual(['late']);
    vi.advanceTimersByTime(5 * MINUTE);
    expect(rig.stops).toEqual([{ requestId: rig.submitted[0]!.id, reason: 'cut at the start of quiet hours 22:00–06:30' }]);
    vi.advanceTimersByTime(9 * HOUR);
    expect(rig.submitted).toHaveLength(1);
    expect(rig.outcomes()).toEqual({ 'late@21:55:00': 'stopped', 'night@22:30:00': 'withheld', 'dawn@06:00:00': 'withheld' });
    expect(rig.records.find((r) => r.programme === 'night')?.reason).toBe('quiet hours 22:00–06:30');
  });
});

describe('programme scheduler: restarts and clock jumps', () => {
  it('plays a slot the service was down for only within the grace window after a restart', () => {
    const log = createMemoryScheduleStore();
    const before = schedulerRig({ log, startAt: MONDAY_8AM });
    before.scheduler.start();
    const doc = { version: 1, programmes: [spoken('early', '0 1 8 * * *'), spoken('recent', '0 4 8 * * *')] };
    before.run(doc);
    before.scheduler.stop();
    // Down from 08:00 to 08:05:30: 'early' is 4.5 min late (missed), 'recent' 1.5 min (plays now).
    vi.setSystemTime(Date.parse(MONDAY_8AM) + 5.5 * MINUTE);
    const after = schedulerRig({ log });
    // As the service does: the registry hands over the kept schedule, then the scheduler starts.
    after.run(doc);
    after.scheduler.start();
    expect(after.outcomes()).toEqual({ 'early@08:01:00': 'missed', 'recent@08:04:00': 'playing' });
    expect(log.between(0, Number.MAX_SAFE_INTEGER)[0]?.reason).toBe(
      'the service was not running or not deciding then; found 4 min 30 s late, past the 120 s grace window',
    );
    expect(after.submitted.map((r) => r.id.split(':')[1])).toEqual(['recent']);
  });

  it('marks a firing that a restart cut off as stopped, and never plays a slot twice across restarts', () => {
    const log = createMemoryScheduleStore();
    const before = schedulerRig({ log, startAt: MONDAY_8AM });
    before.scheduler.start();
    const doc = { version: 1, programmes: [spoken('p', '0 1 8 * * *')] };
    before.run(doc);
    vi.advanceTimersByTime(MINUTE + 10_000);
    expect(before.submitted).toHaveLength(1);
    // kill -9: no stop(); the next process finds the row playing.
    const after = schedulerRig({ log });
    after.run(doc);
    after.scheduler.start();
    expect(after.submitted).toEqual([]);
    expect(log.between(0, Number.MAX_SAFE_INTEGER)).toMatchObject([{ outcome: 'stopped', reason: 'the service stopped while it played or waited' }]);
  });

  it('after a clock jump forward plays only the firings inside the grace window, each once, and reports the jump', () => {
    const rig = schedulerRig({ startAt: MONDAY_8AM });
    rig.scheduler.start();
    rig.run({ version: 1, programmes: [spoken('tick', '0 */10 * * * *'), spoken('tock', '30 */10 * * * *')] });
    vi.advanceTimersByTime(1000);
    rig.clock.offset = HOUR;
    vi.advanceTimersByTime(30_000); // the wake meant for 08:00:30 finds 09:00:30
    expect(rig.jumps).toHaveLength(1);
    expect(rig.jumps[0]!.deltaMs).toBe(HOUR);
    // Only 09:00:00 and 09:00:30 fall within two minutes; the other 11 slots since 08:00 are missed, once each.
    expect(rig.submitted.map((r) => r.id.split(':')[1])).toEqual(['tick', 'tock']);
    const outcomes = rig.outcomes();
    expect(Object.entries(outcomes).filter(([, o]) => o === 'missed')).toHaveLength(11);
    expect(rig.records.find((r) => r.outcome === 'missed')?.reason).toMatch(/^the clock jumped forward by 60 min/);
    for (const request of rig.submitted) rig.event(request.id, 'finished');
    vi.advanceTimersByTime(10 * MINUTE);
    expect(rig.submitted.map((r) => r.id.split(':')[1])).toEqual(['tick', 'tock', 'tick', 'tock']);
  });

  it('after a clock jump back plays nothing twice and goes on with the slots after', () => {
    const rig = schedulerRig({ startAt: MONDAY_8AM });
    rig.scheduler.start();
    rig.run({ version: 1, programmes: [spoken('tick', '0 */10 * * * *')] });
    for (let i = 0; i < 3; i++) {
      vi.advanceTimersByTime(10 * MINUTE);
      rig.event(rig.submitted.at(-1)!.id, 'finished');
    }
    expect(rig.submitted).toHaveLength(3); // 08:10, 08:20, 08:30
    rig.clock.offset = -25 * MINUTE; // 08:30 → 08:05
    vi.advanceTimersByTime(31_000);
    expect(rig.jumps.map((j) => Math.round(j.deltaMs / MINUTE))).toEqual([-25]);
    vi.advanceTimersByTime(25 * MINUTE); // wall back to 08:30:31, through 08:10, 08:20, 08:30 again
    expect(rig.submitted).toHaveLength(3);
    vi.advanceTimersByTime(10 * MINUTE); // 08:40
    expect(rig.submitted).toHaveLength(4);
    expect(Object.keys(rig.outcomes())).toEqual(['tick@08:10:00', 'tick@08:20:00', 'tick@08:30:00', 'tick@08:40:00']);
  });

  it('withholds every firing while time is not trusted, then fires once it is', () => {
    const rig = schedulerRig({ startAt: MONDAY_8AM });
    rig.clock.trusted = false;
    rig.scheduler.start();
    rig.run({ version: 1, programmes: [spoken('tick', '0 */10 * * * *')] });
    vi.advanceTimersByTime(20 * MINUTE);
    expect(rig.submitted).toEqual([]);
    rig.clock.trusted = true;
    vi.advanceTimersByTime(10 * MINUTE);
    expect(rig.outcomes()).toEqual({ 'tick@08:10:00': 'withheld', 'tick@08:20:00': 'withheld', 'tick@08:30:00': 'playing' });
    expect(rig.records[0]?.reason).toBe('time is not trusted (no synchronised clock, no county time yet)');
  });
});

describe('programme scheduler: a completion log that cannot be written', () => {
  it('fires nothing it could not record, says so once, and goes on when the card takes writes again', () => {
    const rig = schedulerRig({ startAt: MONDAY_8AM });
    rig.scheduler.start();
    rig.run({ version: 1, programmes: [spoken('tick', '0 */1 * * * *')] });
    const open = rig.log.open.bind(rig.log);
    rig.log.open = () => {
      throw new Error('SQLITE_READONLY: attempt to write a readonly database');
    };
    vi.advanceTimersByTime(3 * MINUTE);
    expect(rig.submitted).toEqual([]);
    expect(rig.logFailures.map(String)).toEqual(['Error: SQLITE_READONLY: attempt to write a readonly database']);
    rig.log.open = open;
    vi.advanceTimersByTime(MINUTE);
    // The slots it could not record are taken up again, late: past the grace window missed, within it played.
    expect(rig.outcomes()).toEqual({ 'tick@08:01:00': 'missed', 'tick@08:02:00': 'playing', 'tick@08:03:00': 'skipped', 'tick@08:04:00': 'skipped' });
    expect(rig.submitted).toHaveLength(1);
  });
});

describe('programme scheduler: schedule versions and media', () => {
  it('a new version while an item plays: an unchanged programme plays on, a changed or removed one is stopped', () => {
    const rig = schedulerRig({ startAt: MONDAY_8AM });
    rig.scheduler.start();
    rig.run({ version: 1, programmes: [spoken('same', '0 1 8 * * *'), spoken('edited', '0 1 8 * * *'), spoken('gone', '0 1 8 * * *')] });
    vi.advanceTimersByTime(MINUTE);
    expect(rig.submitted).toHaveLength(3);
    rig.run({ version: 2, programmes: [spoken('same', '0 1 8 * * *'), spoken('edited', '0 1 8 * * *', { repeat: 3 })] });
    expect(rig.stops.map((s) => [s.requestId.split(':')[1], s.reason])).toEqual([
      ['edited', 'schedule version 2 changed programme edited'],
      ['gone', 'schedule version 2 has no programme gone'],
    ]);
    expect(rig.outcomes()).toEqual({ 'same@08:01:00': 'playing', 'edited@08:01:00': 'stopped', 'gone@08:01:00': 'stopped' });
    // The slot already decided is not fired again under the new version.
    vi.advanceTimersByTime(30_000);
    expect(rig.submitted).toHaveLength(3);
  });

  it('does not play a programme whose media is missing, and says so while one is due within the hour', () => {
    const rig = schedulerRig({ startAt: MONDAY_8AM });
    rig.scheduler.start();
    const sha256 = 'b'.repeat(64);
    const media = { kind: 'media', sha256, url: 'https://county.example/pufa/week49.mp3', size: 1000 };
    rig.run({
      version: 1,
      programmes: [
        spoken('pufa', '0 30 8 * * *', { content: media }),
        spoken('far', '0 0 8 * * *', { content: { ...media, sha256: 'c'.repeat(64) } }),
      ],
    });
    // Both are due within 48 h: both fetched ahead; only the 08:30 one is due within the hour.
    expect(
      rig.wanted
        .at(-1)
        ?.map((n) => n.file)
        .sort(),
    ).toEqual([`programmes/${sha256}.mp3`, `programmes/${'c'.repeat(64)}.mp3`]);
    expect(rig.missingMedia.at(-1)).toEqual([{ programme: 'pufa', reason: 'not fetched yet' }]);
    vi.advanceTimersByTime(30 * MINUTE);
    expect(rig.submitted).toEqual([]);
    expect(rig.records.at(-1)).toMatchObject({ programme: 'pufa', outcome: 'failed', reason: `media programmes/${sha256}.mp3: not fetched yet` });
    rig.media.set(sha256, { ok: true });
    vi.advanceTimersByTime(MINUTE);
    expect(rig.missingMedia.at(-1)).toEqual([]);
  });
});
