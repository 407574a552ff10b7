import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { faultPayloadSchema } from '../../src/contract/payloads.ts';
import { openSqliteScheduleStore } from '../../src/store/sqlite-schedule-store.ts';
import { connectCounty } from '../support/county.ts';
import { fakeClockEnv } from '../support/faketime.ts';
import { fromBuild, startService, writeConfig, type LogRecord } from '../support/service-process.ts';
import { productionNodeFlags } from '../support/systemd-unit.ts';
import { oneZoneBroadcast, scriptedPlayer, villageConfigJson, withSchedule } from '../support/village.ts';

/**
 * The built service on a clock libfaketime sets (Debian `faketime`), read from a file the test rewrites
 * while the service runs: the evening before quiet hours, then a jump of nine hours to the next morning.
 * Monotonic time is left real, as on a Pi whose wall clock is set under it. The Pi's own zone is New York:
 * the schedule is read in Beijing time whatever the machine says.
 */

const brokerUrl = inject('brokerUrl');
const protocolVersion = inject('brokerProtocolVersion');
const SECOND = 1000;
const MINUTE = 60 * SECOND;

/** Beijing wall time → epoch ms (UTC+8 all year). */
const beijing = (iso: string) => Date.parse(`${iso}+08:00`);

describe('the built service under faketime: quiet hours and a clock jump', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 've-faketime-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('cuts a programme at the start of quiet hours, withholds the ones inside them, and after a jump forward plays nothing in between', async () => {
    const villageId = 'faketime-schedule';
    const offsetFile = join(dir, 'faketime');
    /** From now on the service's wall clock reads `target` (then runs on from there). */
    const setClock = (target: number) => {
      const seconds = (target - Date.now()) / SECOND;
      // libfaketime reads a signed offset in seconds; without its sign it is taken for a date and refused.
      writeFileSync(offsetFile, `${seconds < 0 ? '-' : '+'}${Math.abs(seconds).toFixed(3)}\n`);
    };
    setClock(beijing('2026-12-07T21:59:48'));
    const dataDir = join(dir, 'data');
    const config = withSchedule(
      villageConfigJson({ villageId, brokerUrl, protocolVersion, columns: 1, dataDir, ...oneZoneBroadcast(scriptedPlayer('sleep 30')) }),
      {
        version: 1,
        quietHours: { from: '22:00', until: '06:30' },
        programmes: [
          // Starts five seconds before quiet hours and would play for 30 s: cut at 22:00.
          { id: 'evening', cron: '55 59 21 * * *', zones: 'all', content: { kind: 'tts', text: '晚间普法' }, maxDurationS: 1800 },
          { id: 'every-10-min', cron: '0 */10 * * * *', zones: 'all', content: { kind: 'tts', text: '整点提醒' }, maxDurationS: 5 },
        ],
      },
    );
    const county = await connectCounty({ url: brokerUrl, protocolVersion, autoAck: false });
    const env = { ...fakeClockEnv({ FAKETIME_TIMESTAMP_FILE: offsetFile }), TZ: 'America/New_York' };
    const service = startService(writeConfig(mkdtempSync(join(dir, 'cfg-')), config), undefined, fromBuild(productionNodeFlags(), env));
    const fired = (programme: string) => (l: LogRecord) => l.msg === 'programme fired' && l['programme'] === programme;
    try {
      const evening = await service.waitForLog(fired('evening'), 30 * SECOND);
      const requestId = String(evening['requestId']);
      const cut = await service.waitForLog((l) => l.msg === 'broadcast stopped' && l['requestId'] === requestId, 30 * SECOND);
      expect(cut['reason']).toBe('cut at the start of quiet hours 22:00–06:30');
      // The 22:00 slot of the other programme is decided at the same moment: withheld.
      await service.waitForLog((l) => l.msg === 'programme slots decided' || fired('every-10-min')(l), 10 * SECOND).catch(() => undefined);

      // Nine hours later in one step, 20 s before the 07:00 slot.
      const jumpAt = service.logs.length;
      setClock(beijing('2026-12-08T06:59:40'));
      const jump = await service.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('the clock jumped forward by'), 20 * SECOND);
      expect(Number(jump['deltaMs'])).toBeGreaterThan(8.9 * 60 * MINUTE);
      const fault = await county.waitFor(
        (m) => m.kind === 'fault' && m.village === villageId && (m.payload as { kind?: string }).kind === 'clock-jump',
        10 * SECOND,
      );
      expect(faultPayloadSchema.parse(fault.payload).detail).toMatch(/^the clock jumped forward by \d+ s$/);
      const seven = await service.waitForLog(fired('every-10-min'), 40 * SECOND);
      expect(seven['requestId']).toBe(`schedule:every-10-min:${beijing('2026-12-08T07:00:00') / SECOND}`);
      // Nothing fired between the jump and 07:00: no burst of the night's slots.
      expect(service.logs.slice(jumpAt).filter((l) => l.msg === 'programme fired')).toHaveLength(1);
      // On its slot, not swept up late by the jump (the grace window would allow 120 s).
      expect(Number(seven['lateMs'])).toBeLessThan(10 * SECOND);
    } finally {
      expect(await service.terminate()).toBe(0);
      await county.close();
    }

    const store = openSqliteScheduleStore({ path: join(dataDir, 'schedule.sqlite') });
    try {
      const firings = store.between(0, Number.MAX_SAFE_INTEGER);
      const of = (programme: string, at: string) => firings.find((f) => f.programme === programme && f.scheduledAt === beijing(at));
      expect(of('evening', '2026-12-07T21:59:55')).toMatchObject({ outcome: 'stopped', reason: 'cut at the start of quiet hours 22:00–06:30' });
      expect(of('every-10-min', '2026-12-07T22:00:00')).toMatchObject({ outcome: 'withheld', reason: 'quiet hours 22:00–06:30' });
      // 22:10 to 06:50: 53 slots the jump went over, each recorded missed once; none played.
      const night = firings.filter((f) => f.scheduledAt > beijing('2026-12-07T22:00:00') && f.scheduledAt < beijing('2026-12-08T07:00:00'));
      expect(night).toHaveLength(53);
      expect(night.every((f) => f.outcome === 'missed' && f.reason?.startsWith('the clock jumped forward by'))).toBe(true);
      expect(of('every-10-min', '2026-12-08T07:00:00')?.requestId).toBeDefined();
    } finally {
      store.close();
    }
  }, 150_000);
});
