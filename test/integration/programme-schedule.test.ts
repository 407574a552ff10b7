import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { healthPayloadSchema, reportPayloadSchema, type ReportPayload } from '../../src/contract/payloads.ts';
import { openSqliteScheduleStore } from '../../src/store/sqlite-schedule-store.ts';
import { freePort } from '../support/broker.ts';
import { connectCounty, distinctReports } from '../support/county.ts';
import { createCountySigner, sampleSchedule } from '../support/county-signer.ts';
import { startService, writeConfig, type LogRecord } from '../support/service-process.ts';
import { oneZoneBroadcast, scriptedPlayer, villageConfigJson, withSchedule } from '../support/village.ts';

/**
 * The programme schedule in the real service (a child process on the real clock): what a kill -9 in the
 * middle of a programme leaves behind, read back from the completion log on the card.
 */

const brokerUrl = inject('brokerUrl');
const protocolVersion = inject('brokerProtocolVersion');

function scheduledVillage(villageId: string, dataDir: string) {
  return withSchedule(
    villageConfigJson({
      villageId,
      brokerUrl,
      protocolVersion,
      columns: 1,
      dataDir,
      // A programme that plays for 20 s (the player sleeps), so the kill lands while it plays.
      ...oneZoneBroadcast(scriptedPlayer('sleep 20')),
    }),
    {
      version: 1,
      // No quiet hours: the test runs whatever the hour.
      quietHours: { from: '00:00', until: '00:00' },
      programmes: [{ id: 'every-5s', cron: '*/5 * * * * *', zones: 'all', content: { kind: 'tts', text: '普法小课堂' }, maxDurationS: 600 }],
    },
  );
}

const fired = (line: LogRecord) => line.msg === 'programme fired';

describe('programme schedule in the running service', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 've-programmes-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('after a kill -9 while a programme plays: the firing is recorded stopped, its slot never plays twice, the next slots go on', async () => {
    const dataDir = join(dir, 'data-kill');
    const configPath = writeConfig(mkdtempSync(join(dir, 'cfg-')), scheduledVillage('programmes-kill', dataDir));
    const first = startService(configPath);
    let cutOff: string;
    try {
      const firing = await first.waitForLog(fired, 20_000);
      cutOff = String(firing['requestId']);
      await first.waitForLog((l) => l.msg === 'broadcast started' && l['requestId'] === cutOff, 10_000);
    } finally {
      await first.kill9();
    }

    const second = startService(configPath);
    try {
      // The slot after the restart: a different request, and the cut-off one is not fired again.
      const next = await second.waitForLog((l) => fired(l) && l['requestId'] !== cutOff, 20_000);
      expect(second.logs.filter((l) => fired(l) && l['requestId'] === cutOff)).toEqual([]);
      expect(Number(String(next['requestId']).split(':')[2])).toBeGreaterThan(Number(cutOff.split(':')[2]));
    } finally {
      expect(await second.terminate()).toBe(0);
    }

    const store = openSqliteScheduleStore({ path: join(dataDir, 'schedule.sqlite') });
    try {
      const firings = store.between(0, Number.MAX_SAFE_INTEGER);
      expect(firings.find((f) => f.requestId === cutOff)).toMatchObject({
        programme: 'every-5s',
        outcome: 'stopped',
        reason: 'the service stopped while it played or waited',
      });
      // One record per slot, each decided once: played, skipped behind a running one, or stopped by a restart.
      const slots = firings.map((f) => f.scheduledAt);
      expect(new Set(slots).size).toBe(slots.length);
      expect(firings.filter((f) => f.requestId !== undefined).length).toBeGreaterThanOrEqual(2);
    } finally {
      store.close();
    }
  }, 90_000);

  it('takes the retained county schedule when it connects later, keeps it on the card across a kill -9 without network, and judges each copy by its version', async () => {
    const villageId = `programmes-retained-${process.pid}`;
    const signer = await createCountySigner({ villageId });
    const county = await connectCounty({ url: brokerUrl, protocolVersion, autoAck: true, signer });
    // Each once: a report republished before the county's ack reached the village (a loaded machine) is the same report.
    const reports = (): ReportPayload[] => distinctReports(county, villageId);
    const dataDir = join(dir, 'data-retained');
    const config = (url: string) => ({
      ...villageConfigJson({
        villageId,
        brokerUrl: url,
        protocolVersion,
        commandKeys: [signer.keyEntry],
        columns: 1,
        dataDir,
        // Health every second, so the one that shows the applied schedule comes soon.
        timing: { healthIntervalMs: 1000 },
        ...oneZoneBroadcast(),
      }),
      clock: { systemClock: 'trusted' },
    });
    const configDir = mkdtempSync(join(dir, 'cfg-'));
    const schedule = (version: number, zone = 'square') => ({
      ...sampleSchedule(3, { version }),
      programmes: (sampleSchedule(3).programmes as object[]).map((p) => ({ ...p, zones: [zone] })),
    });
    try {
      // Published (retained) before the village exists.
      await county.send(villageId, 'schedule', await signer.schedule({ aud: villageId, schedule: schedule(3) }));
      let service = startService(writeConfig(configDir, config(brokerUrl)));
      try {
        const applied = await county.waitFor(
          (m) => m.kind === 'report' && m.village === villageId && (m.payload as ReportPayload).event === 'schedule-applied',
          20_000,
        );
        expect(reportPayloadSchema.parse(applied.payload).schedule).toEqual({ version: 3, programmes: 3, source: 'village', running: true });
        const health = await county.waitFor(
          (m) => m.kind === 'health' && m.village === villageId && healthPayloadSchema.parse(m.payload).schedule?.version === 3,
          20_000,
        );
        expect(healthPayloadSchema.parse(health.payload).schedule).toMatchObject({ version: 3, source: 'village', programmes: 3, mediaMissing: [] });
      } finally {
        await service.kill9();
      }

      // No network after the power cut: the schedule comes from the card.
      const deadBroker = `mqtt://127.0.0.1:${await freePort()}`;
      service = startService(writeConfig(configDir, config(deadBroker)));
      try {
        const running = await service.waitForLog((l) => l.msg === 'programme schedule running', 20_000);
        expect(running).toMatchObject({ source: 'village', version: 3, programmes: 3 });
      } finally {
        expect(await service.terminate()).toBe(0);
      }

      // Back online: the retained copy of version 3 comes again and is nothing; older and wrong-zone ones are refused whole.
      service = startService(writeConfig(configDir, config(brokerUrl)));
      try {
        await service.waitForLog((l) => l.msg === 'county link connected', 20_000);
        const stranger = await createCountySigner({ villageId, kid: signer.kid });
        await county.send(villageId, 'schedule', await stranger.schedule({ aud: villageId, schedule: schedule(7) }));
        await county.send(
          villageId,
          'schedule',
          await signer.schedule({ aud: villageId, schedule: { ...schedule(8), quietHours: { from: '25:00', until: '06:30' } } }),
        );
        await county.send(villageId, 'schedule', await signer.schedule({ aud: villageId, schedule: schedule(2) }));
        await county.send(villageId, 'schedule', await signer.schedule({ aud: villageId, schedule: schedule(4, 'nowhere') }));
        await county.send(villageId, 'schedule', await signer.schedule({ aud: villageId, schedule: schedule(5) }));
        await county.waitFor((m) => m.kind === 'report' && m.village === villageId && (m.payload as ReportPayload).schedule?.version === 5, 20_000);
        // Each command judged once: QoS 1 is at least once, so a copy the broker delivers again (a village slow to
        // acknowledge on a loaded machine) is judged and reported again, the same command for the same reason.
        const rejected = [
          ...new Map(
            reports()
              .filter((r) => r.event === 'rejected')
              .map((r) => [`${r.jti}|${r.reason}`, r]),
          ).values(),
        ];
        // A key the village does not trust, a document off its schema, an older version, a zone it lacks: each refused whole.
        expect(rejected.map((r) => r.reason?.split(':')[0])).toEqual(['bad-signature', 'invalid-body', 'older-version', 'unknown-zone']);
        expect(rejected[1]!.reason).toMatch(/schedule\.quietHours\.from/);
        expect(rejected.slice(2).map((r) => r.reason)).toEqual([
          'older-version: version: 2 is older than the kept version 3',
          `unknown-zone: programmes[0].zones: "nowhere" not among this village's zones (square)`,
        ]);
        // Version 3 was applied once, in the first life, though its retained copy came on every connect.
        expect(
          new Set(
            reports()
              .filter((r) => r.event === 'schedule-applied')
              .map((r) => `${r.schedule?.version}:${r.id}`),
          ).size,
        ).toBe(2);
      } finally {
        expect(await service.terminate()).toBe(0);
      }
    } finally {
      await county.close();
    }
  }, 120_000);
});
