import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createVillageEdge } from '../../src/app.ts';
import { faultPayloadSchema, type ReportPayload } from '../../src/contract/payloads.ts';
import { openSqliteBroadcastJournal } from '../../src/store/sqlite-broadcast-journal.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { connectCounty, distinctReports, type CountyClient } from '../support/county.ts';
import { createCountySigner, type CountySigner } from '../support/county-signer.ts';
import { fromBuild, startService, writeConfig, type ServiceProcess } from '../support/service-process.ts';
import { productionNodeFlags } from '../support/systemd-unit.ts';
import { villageConfig, villageConfigJson, oneZoneBroadcast, countyLinkUp } from '../support/village.ts';
import { waitFor } from '../support/wait.ts';

// The built service, as production runs it, killed with SIGKILL in the middle of an emergency and started
// again on the same data directory: what it had accepted is played again or reported, never dropped.
const brokerUrl = inject('brokerUrl');
const protocolVersion = inject('brokerProtocolVersion');
const villageId = 'br-restart';

let dir = '';
let signer: CountySigner;
let county: CountyClient;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 've-restart-'));
  signer = await createCountySigner({ villageId });
  county = await connectCounty({ url: brokerUrl, protocolVersion, autoAck: true, signer });
});
afterAll(async () => {
  await county.close();
  rmSync(dir, { recursive: true, force: true });
});

function config(tts: string[] | undefined, id = villageId) {
  return villageConfigJson({
    villageId: id,
    brokerUrl,
    protocolVersion,
    columns: 0,
    commandKeys: [signer.keyEntry],
    dataDir: join(dir, 'data'),
    ...oneZoneBroadcast({
      idleTailMs: 500,
      // First life: a player that runs until it is killed. Second life: the shipped espeak-ng | aplay pipeline.
      player: tts === undefined ? { killTimeoutMs: 500 } : { tts, ttsOutput: null, killTimeoutMs: 500 },
    }),
  });
}

const reports = (jti: string, village = villageId): ReportPayload[] => distinctReports(county, village).filter((r) => r.jti === jti);
const events = (jti: string, village = villageId): string[] => reports(jti, village).map((r) => r.event);

describe('a broadcast cut off by kill -9', () => {
  it('plays an unexpired emergency again after the restart (reported resumed); the rest is reported failed, interrupted', async () => {
    const production = fromBuild(productionNodeFlags());
    const configPath = writeConfig(dir, config(['sh', '-c', 'exec sleep 60', 'sh', '{text}']));
    const orphans: number[] = [];
    let service: ServiceProcess | undefined;
    try {
      service = startService(configPath, undefined, production);
      await service.waitForLog((l) => l.msg === 'village-edge started');
      await county.waitFor((m) => m.kind === 'state' && m.village === villageId && (m.payload as { online?: boolean }).online === true, 10_000);

      const nowS = Math.floor(Date.now() / 1000);
      const emergency = await signer.broadcast({
        jti: 'br-emergency-1',
        aud: villageId,
        priority: 'emergency',
        level: 1,
        exp: nowS + 600,
        content: { kind: 'tts', text: '山洪预警：请沿河村民立即向高处转移。' },
      });
      await county.send(villageId, 'broadcast', emergency);
      await county.send(villageId, 'broadcast', await signer.broadcast({ jti: 'br-announcement-1', aud: villageId, exp: nowS + 600 }));
      // Expires while the village is down: not played again, however serious.
      const shortExp = nowS + 5;
      await county.send(
        villageId,
        'broadcast',
        await signer.broadcast({ jti: 'br-emergency-short', aud: villageId, priority: 'emergency', level: 2, exp: shortExp }),
      );
      await waitFor(
        'the emergency started and both others queued',
        () =>
          events('br-emergency-1').includes('started') &&
          events('br-announcement-1').includes('queued') &&
          events('br-emergency-short').includes('queued'),
        10_000,
      );
      const player = await service.waitForLog((l) => l.msg === 'player started');
      orphans.push(player['pid'] as number);

      await service.kill9();
      // The player it started lingers in its own process group; under systemd (KillMode=control-group, the
      // default) the unit's cgroup is killed before the restart, so it is killed here the same way.
      for (const pid of orphans.splice(0)) killGroup(pid);
      await waitFor('the short emergency to expire', () => Date.now() > shortExp * 1000, 10_000);

      writeConfig(dir, config(undefined));
      const restartedAt = Date.now();
      service = startService(configPath, undefined, production);
      const up = await service.waitForLog((l) => l.msg === 'village-edge started');
      await waitFor('the emergency to finish', () => events('br-emergency-1').includes('finished'), 15_000);
      await waitFor(
        'the announcement and the short emergency reported failed',
        () => events('br-announcement-1').includes('failed') && events('br-emergency-short').includes('failed'),
        10_000,
      );

      const resumed = reports('br-emergency-1');
      expect(resumed.map((r) => r.event)).toEqual(['accepted', 'started', 'accepted', 'started', 'finished']);
      for (const r of resumed.slice(2)) expect(r.reason).toMatch(/^resumed after a restart \(first accepted \d{4}-\d\d-\d\dT[\d:.]+Z\)$/);
      const startedAgain = Date.parse(resumed[3]!.at);
      console.info(
        `restart: spawn -> 'village-edge started' ${Date.parse(String(up['time'] ?? new Date().toISOString())) - restartedAt} ms, spawn -> resumed emergency started ${startedAgain - restartedAt} ms`,
      );

      expect(events('br-announcement-1')).toEqual(['accepted', 'queued', 'failed']);
      expect(reports('br-announcement-1')[2]?.reason).toBe('interrupted: the village restarted before it ended; only emergencies are played again');
      expect(events('br-emergency-short')).toEqual(['accepted', 'queued', 'failed']);
      expect(reports('br-emergency-short')[2]?.reason).toMatch(/^interrupted: the village restarted before it ended, and it expired at /);

      // Its jti stays used: the same signed command again is refused as a replay, and nothing else plays.
      await county.send(villageId, 'broadcast', emergency);
      await waitFor('the emergency rejected', () => events('br-emergency-1').includes('rejected'), 10_000);
      expect(reports('br-emergency-1').at(-1)?.reason).toMatch(/^replayed/);

      // A clean restart now finds nothing to resume.
      expect(await service.terminate()).toBe(0);
      service = startService(configPath, undefined, production);
      await service.waitForLog((l) => l.msg === 'broadcast journal opened');
      expect(service.logs.find((l) => l.msg === 'broadcast journal opened')).toMatchObject({ unfinished: 0 });
    } finally {
      for (const pid of orphans) killGroup(pid);
      await service?.kill9();
    }
  }, 90_000);
});

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

describe('a broadcast journal that fails', () => {
  it('one that cannot be opened at start: a problem and a storage fault, and broadcasts still play', async () => {
    const id = 'br-journal-bad';
    const dataDir = join(dir, id, 'data');
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, 'broadcasts.sqlite'), 'not a database, whatever the card wrote here'.repeat(40));
    const json = config(undefined, id);
    const parsed = villageConfig({
      villageId: id,
      brokerUrl,
      protocolVersion,
      columns: 0,
      commandKeys: [signer.keyEntry],
      dataDir,
      extraDevices: json.devices,
      broadcast: json.broadcast,
    });
    const app = createVillageEdge({ config: parsed, version: '0.0.0-test', logger: memoryLogger('info').logger });
    await app.start();
    try {
      expect((await app.status()).health.problems).toEqual([expect.stringMatching(/^broadcast journal database .*broadcasts\.sqlite: /)]);
      await waitFor('the county link up', countyLinkUp(app));
      await county.send(id, 'broadcast', await signer.broadcast({ jti: 'br-journal-bad-1', aud: id, priority: 'emergency', level: 1 }));
      await waitFor('the broadcast to finish', () => events('br-journal-bad-1', id).includes('finished'), 10_000);
      expect(events('br-journal-bad-1', id)).toEqual(['accepted', 'started', 'finished']);
      const fault = faultPayloadSchema.parse((await county.waitFor((m) => m.kind === 'fault' && m.village === id)).payload);
      expect(fault).toMatchObject({ kind: 'storage', subject: 'broadcasts.sqlite' });
    } finally {
      await app.stop();
    }
  });

  it('never holds a broadcast back: it plays, and one storage fault goes to the county', async () => {
    const id = 'br-journal-fail';
    const journal = openSqliteBroadcastJournal({ path: join(dir, id, 'broadcasts.sqlite') });
    const json = config(undefined, id);
    const parsed = villageConfig({
      villageId: id,
      brokerUrl,
      protocolVersion,
      columns: 0,
      commandKeys: [signer.keyEntry],
      dataDir: join(dir, id, 'data'),
      extraDevices: json.devices,
      broadcast: json.broadcast,
    });
    const { logger, lines } = memoryLogger('info');
    const app = createVillageEdge({ config: parsed, version: '0.0.0-test', logger, adapters: { journal } });
    await app.start();
    try {
      await waitFor('the county link up', countyLinkUp(app));
      // A real SQLite journal whose every write now throws, as on a card that went away.
      journal.close();
      for (const jti of ['br-journal-fail-1', 'br-journal-fail-2']) {
        await county.send(id, 'broadcast', await signer.broadcast({ jti, aud: id, priority: 'emergency', level: 1 }));
        await waitFor(`${jti} to finish`, () => events(jti, id).includes('finished'), 10_000);
        expect(events(jti, id)).toEqual(['accepted', 'started', 'finished']);
      }
      const faults = () => county.messages.filter((m) => m.kind === 'fault' && m.village === id).map((m) => faultPayloadSchema.parse(m.payload));
      await waitFor('a fault at the county', () => faults().length > 0);
      expect(lines.filter((l) => l.msg === 'broadcast journal write failed; the broadcast goes on').length).toBeGreaterThanOrEqual(2);
      expect(faults()).toEqual([
        expect.objectContaining({
          kind: 'storage',
          subject: 'broadcasts.sqlite',
          detail: expect.stringMatching(/^broadcast journal: .*broadcasts play/),
        }),
      ]);
    } finally {
      await app.stop();
    }
  });
});
