import Database from 'better-sqlite3';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { createVillageEdge } from '../../src/app.ts';
import { alarmPayloadSchema, faultPayloadSchema, healthPayloadSchema, reportPayloadSchema } from '../../src/contract/payloads.ts';
import { connectCounty, type CountyClient, type CountyMessage } from '../support/county.ts';
import { createCountySigner, type CountySigner } from '../support/county-signer.ts';
import { mountLoopExt4, mountSkipReason, mountTmpfs } from '../support/filesystems.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { fromBuild, startService, writeConfig } from '../support/service-process.ts';
import { productionNodeFlags } from '../support/systemd-unit.ts';
import { villageConfig, villageConfigJson, type VillageOptions, countyLinkUp } from '../support/village.ts';
import { waitFor } from '../support/wait.ts';

const brokerUrl = inject('brokerUrl');
const protocolVersion = inject('brokerProtocolVersion');
const skipMounts = mountSkipReason();

let signer: CountySigner;
beforeAll(async () => {
  signer = await createCountySigner({ villageId: 'unused' });
});

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function county(autoAck: boolean): Promise<CountyClient> {
  const client = await connectCounty({ url: brokerUrl, protocolVersion, autoAck, signer });
  cleanups.push(() => client.close());
  return client;
}

function villageOptions(villageId: string, dataDir: string, columns: number): VillageOptions {
  return {
    villageId,
    brokerUrl,
    protocolVersion,
    columns,
    dataDir,
    commandKeys: [signer.keyEntry],
    timing: { retry: { initialMs: 200, maxMs: 1000 }, healthIntervalMs: 1000, ackTimeoutMs: 60_000 },
    storage: { reserveBytes: 128 * 1024, retryMs: 200 },
  };
}

async function startVillage(options: VillageOptions) {
  const { logger, lines } = memoryLogger('info');
  const app = createVillageEdge({ config: villageConfig(options), version: '0.0.0-test', logger });
  await app.start();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await app.stop();
  };
  cleanups.push(stop);
  await waitFor('the county link up', countyLinkUp(app), 10_000);
  return { app, lines, stop, column: (n: number) => app.devices.simulated(`column-${n}`)! };
}

function alarmsFrom(dispatch: CountyClient, village: string) {
  return dispatch.messages.filter((m) => m.kind === 'alarm' && m.village === village).map((m) => alarmPayloadSchema.parse(m.payload));
}

const isFault = (village: string, kind: string) => (m: CountyMessage) =>
  m.kind === 'fault' && m.village === village && (m.payload as { kind?: unknown }).kind === kind;

function storedAlarmRows(dataDir: string): number {
  const db = new Database(join(dataDir, 'outbox.sqlite'), { readonly: true });
  try {
    return (db.prepare("SELECT count(*) AS n FROM outbox_record WHERE stream = 'alarm'").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

describe.skipIf(skipMounts !== undefined)(`storage that fails under a running village${skipMounts ? ` (skipped: ${skipMounts})` : ''}`, () => {
  it('with the data directory on a full tmpfs, 100 presses → 100 alarms at the county, a storage fault, and the card takes them back', async () => {
    const mount = mountTmpfs(4 * 1024 * 1024);
    cleanups.push(() => mount.unmount());
    const dataDir = join(mount.dir, 'data');
    const dispatch = await county(true);
    const { app, column, stop } = await startVillage(villageOptions('full-card', dataDir, 100));
    expect(existsSync(join(dataDir, 'outbox.reserve'))).toBe(true);

    mount.fill();
    for (let n = 1; n <= 100; n++) column(n).press();
    await waitFor('100 distinct alarms from full-card', () => new Set(alarmsFrom(dispatch, 'full-card').map((a) => a.id)).size === 100, 30_000);
    const alarms = alarmsFrom(dispatch, 'full-card');
    expect(new Set(alarms.map((a) => a.terminal)).size).toBe(100);
    // Unique seqs: the ones from memory continue above the ones on the card.
    expect(new Set(alarms.map((a) => `${a.id}:${a.seq}`)).size).toBe(new Set(alarms.map((a) => a.seq)).size);
    const kept = alarms.filter((a) => a.durable === false).length;
    console.log(`  full tmpfs: ${100 - kept} alarms stored on the reserve, ${kept} kept in memory`);
    expect(kept).toBeGreaterThan(0);

    const fault = faultPayloadSchema.parse((await dispatch.waitFor(isFault('full-card', 'storage'), 10_000)).payload);
    expect(fault.detail).toMatch(/full|memory/);
    const health = healthPayloadSchema.parse(
      (
        await dispatch.waitFor(
          (m) => m.kind === 'health' && m.village === 'full-card' && (m.payload as { storage?: { state: string } }).storage?.state === 'memory',
          10_000,
        )
      ).payload,
    );
    expect(health.problems.some((p) => p.startsWith('storage: '))).toBe(true);
    await waitFor('an empty outbox', async () => (await app.status()).health.outbox.depth === 0, 10_000);

    mount.unfill();
    await dispatch.waitFor(isFault('full-card', 'storage-recovered'), 15_000);
    await waitFor('an empty outbox', async () => (await app.status()).health.outbox.depth === 0, 10_000);
    await stop();
    // Everything that lived in memory is on the card now, with the seq it was published with.
    expect(storedAlarmRows(dataDir)).toBe(100);
  }, 90_000);

  it('with the file system turned read-only while running: stored alarms go on being republished, and 100 new presses all arrive', async () => {
    const mount = mountLoopExt4(16);
    cleanups.push(() => mount.unmount());
    const dataDir = join(mount.dir, 'data');
    const dispatch = await county(false);
    const { app, column, stop } = await startVillage(villageOptions('ro-card', dataDir, 103));

    for (const n of [101, 102, 103]) column(n).press();
    await waitFor('three alarms from ro-card', () => alarmsFrom(dispatch, 'ro-card').length >= 3, 10_000);
    mount.turnReadOnly();
    // Delivery must not stop because the next attempt cannot be recorded: each is published again.
    await waitFor(
      'each of the three alarms published three times',
      () => {
        const attempts = new Map<string, number>();
        for (const a of alarmsFrom(dispatch, 'ro-card')) attempts.set(a.id, Math.max(a.attempt, attempts.get(a.id) ?? 0));
        return attempts.size === 3 && [...attempts.values()].every((n) => n >= 3);
      },
      15_000,
    );

    // A county command still passes the gate: its id is remembered in memory, not refused as `replay-guard-failed`.
    const jti = `ro-card-${Date.now()}`;
    await dispatch.send('ro-card', 'broadcast', await signer.broadcast({ aud: 'ro-card', jti, status: 'test' }));
    const report = reportPayloadSchema.parse(
      (await dispatch.waitFor((m) => m.kind === 'report' && (m.payload as { jti?: unknown }).jti === jti, 10_000)).payload,
    );
    expect(report.reason ?? '').not.toMatch(/replay-guard-failed/);

    // Now the county acks whatever arrives, and 100 more presses come in on the read-only card.
    const acked = new Set<string>();
    const ackAll = async () => {
      for (const a of alarmsFrom(dispatch, 'ro-card'))
        if (!acked.has(a.id)) {
          acked.add(a.id);
          await dispatch.ack('ro-card', a.id);
        }
    };
    for (let n = 1; n <= 100; n++) column(n).press();
    await waitFor('103 distinct alarms from ro-card', () => new Set(alarmsFrom(dispatch, 'ro-card').map((a) => a.id)).size === 103, 30_000);
    await ackAll();
    const fresh = alarmsFrom(dispatch, 'ro-card').filter(
      (a) => a.terminal !== 'column-101' && a.terminal !== 'column-102' && a.terminal !== 'column-103',
    );
    expect(new Set(fresh.map((a) => a.id)).size).toBe(100);
    expect(fresh.every((a) => a.durable === false)).toBe(true);
    const fault = faultPayloadSchema.parse((await dispatch.waitFor(isFault('ro-card', 'storage'), 10_000)).payload);
    expect(fault.durable).toBe(false);
    await waitFor('no alarm left in the outbox', async () => (await app.status()).health.outbox.alarm === 0, {
      timeoutMs: 15_000,
      intervalMs: 50,
    }).catch(async () => {
      await ackAll();
      await waitFor('no alarm left in the outbox', async () => (await app.status()).health.outbox.alarm === 0, { timeoutMs: 15_000, intervalMs: 50 });
    });
    await stop();
  }, 90_000);
});

describe('a lost outbox is never taken for a fresh install', () => {
  for (const how of ['deleted', 'emptied'] as const) {
    it(`an outbox ${how} between two runs: seq continues above the old ones and the county hears what may be lost`, async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 've-lost-'));
      cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
      const village = `lost-${how}`;
      const dispatch = await county(false);
      const first = await startVillage(villageOptions(village, dataDir, 3));
      for (const n of [1, 2, 3]) first.column(n).press();
      await waitFor('three alarms from the village', () => alarmsFrom(dispatch, village).length >= 3, 10_000);
      await first.stop();
      const oldSeqs = alarmsFrom(dispatch, village).map((a) => a.seq);

      const path = join(dataDir, 'outbox.sqlite');
      if (how === 'deleted') rmSync(path);
      else truncateSync(path, 0);
      rmSync(`${path}-wal`, { force: true });
      rmSync(`${path}-shm`, { force: true });

      const second = await startVillage(villageOptions(village, dataDir, 3));
      const fault = faultPayloadSchema.parse((await dispatch.waitFor(isFault(village, 'storage'), 10_000)).payload);
      expect(fault.detail).toMatch(/may be lost/);
      expect(fault.detail).toMatch(/alarm 6[4-9]|alarm [0-9]{2,}/);
      second.column(1).press();
      const next = alarmPayloadSchema.parse(
        (
          await dispatch.waitFor(
            (m) => m.kind === 'alarm' && m.village === village && alarmPayloadSchema.parse(m.payload).seq > Math.max(...oldSeqs),
            10_000,
          )
        ).payload,
      );
      expect(next.seq).toBeGreaterThan(Math.max(...oldSeqs));
      console.log(`  ${how}: old seqs ${oldSeqs.join(',')}, next seq ${next.seq}; fault: ${fault.detail}`);
    });
  }
});

describe('an unusable outbox at start never takes the village off the air (the built service)', () => {
  const production = fromBuild(productionNodeFlags());

  async function runService(village: string, dataDir: string) {
    const dir = mkdtempSync(join(tmpdir(), 've-badstore-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const config = villageConfigJson({ ...villageOptions(village, dataDir, 2), timing: { retry: { initialMs: 200, maxMs: 1000 } } });
    const service = startService(writeConfig(dir, config), undefined, production);
    cleanups.push(async () => void (await service.terminate()));
    await service.waitForLog((l) => l.msg === 'village-edge started');
    return service;
  }

  function expectNoStackTrace(stderr: string) {
    expect(stderr).not.toMatch(/\n\s+at /);
  }

  it('a corrupt outbox is moved aside, a new one started, the columns relayed and the fault reported', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 've-corrupt-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    writeFileSync(join(dataDir, 'outbox.sqlite'), Buffer.alloc(64 * 1024, 'this is not a database '));
    const dispatch = await county(true);
    const service = await runService('corrupt-box', dataDir);
    const movedLine = service.logs.find((l) => l.msg === 'outbox unreadable: moved aside, starting a new one');
    expect(movedLine?.['movedTo']).toMatch(/outbox\.sqlite\.corrupt-/);
    expect(readdirSync(dataDir).some((f) => f.startsWith('outbox.sqlite.corrupt-'))).toBe(true);
    service.send('press column-1');
    await dispatch.waitFor((m) => m.kind === 'alarm' && m.village === 'corrupt-box', 10_000);
    const fault = faultPayloadSchema.parse((await dispatch.waitFor(isFault('corrupt-box', 'storage'), 10_000)).payload);
    expect(fault.detail).toMatch(/moved aside/);
    let stderr = '';
    service.child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    expect(await service.terminate()).toBe(0);
    expectNoStackTrace(stderr);
  });

  it.skipIf(skipMounts !== undefined)(
    'a read-only data directory at start runs from memory: the alarm goes out, marked not durable, with a storage fault',
    async () => {
      const mount = mountTmpfs(1024 * 1024, { readOnly: true });
      cleanups.push(() => mount.unmount());
      const dispatch = await county(true);
      const service = await runService('ro-start', mount.dir);
      service.send('press column-2');
      const alarm = alarmPayloadSchema.parse((await dispatch.waitFor((m) => m.kind === 'alarm' && m.village === 'ro-start', 10_000)).payload);
      expect(alarm).toMatchObject({ terminal: 'column-2', durable: false });
      // The outbox's own fault (the broadcast journal and the replay guard report theirs too).
      const fault = faultPayloadSchema.parse(
        (
          await dispatch.waitFor(
            (m) => isFault('ro-start', 'storage')(m) && /the outbox cannot be opened/.test(String((m.payload as { detail?: unknown }).detail)),
            10_000,
          )
        ).payload,
      );
      expect(fault.durable).toBe(false);
      const storageLines = service.logs.filter((l) => l.msg === 'storage problem');
      expect(storageLines.length).toBeGreaterThan(0);
      expect(await service.terminate()).toBe(0);
    },
  );
});

// A folder that exists but cannot hold the outbox's directory: the same memory fallback, without mounts.
describe('a data directory that cannot be created', () => {
  it('runs from memory and still relays', async () => {
    const parent = mkdtempSync(join(tmpdir(), 've-nodir-'));
    cleanups.push(() => rmSync(parent, { recursive: true, force: true }));
    const blocker = join(parent, 'data');
    writeFileSync(blocker, 'a file where the data folder should be');
    mkdirSync(join(parent, 'other'));
    const dispatch = await county(true);
    const { column } = await startVillage(villageOptions('nodir', blocker, 1));
    column(1).press();
    const alarm = alarmPayloadSchema.parse((await dispatch.waitFor((m) => m.kind === 'alarm' && m.village === 'nodir', 10_000)).payload);
    expect(alarm.durable).toBe(false);
    await dispatch.waitFor(isFault('nodir', 'storage'), 10_000);
  });
});
