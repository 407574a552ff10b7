import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteScheduleStore } from '../../src/store/sqlite-schedule-store.ts';
import { startService, writeConfig, type LogRecord } from '../support/service-process.ts';
import { oneZoneBroadcast, villageConfigJson } from '../support/village.ts';

/**
 * The programme schedule in the real service (a child process on the real clock): what a kill -9 in the
 * middle of a programme leaves behind, read back from the completion log on the card.
 */

const brokerUrl = inject('brokerUrl');
const protocolVersion = inject('brokerProtocolVersion');

function scheduledVillage(villageId: string, dataDir: string) {
  return {
    ...villageConfigJson({
      villageId,
      brokerUrl,
      protocolVersion,
      columns: 1,
      dataDir,
      // A programme that plays for 20 s (the player sleeps), so the kill lands while it plays.
      ...oneZoneBroadcast({ player: { tts: ['sh', '-c', 'sleep 20 # $0', '{text}'], ttsOutput: null } }),
    }),
    clock: { systemClock: 'trusted' },
    schedule: {
      document: {
        version: 1,
        // No quiet hours: the test runs whatever the hour.
        quietHours: { from: '00:00', until: '00:00' },
        programmes: [{ id: 'every-5s', cron: '*/5 * * * * *', zones: 'all', content: { kind: 'tts', text: '普法小课堂' }, maxDurationS: 600 }],
      },
    },
  };
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
});
