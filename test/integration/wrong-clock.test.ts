import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectCounty } from '../support/county.ts';
import { alarmPayloadSchema, healthPayloadSchema, reportPayloadSchema } from '../../src/contract/payloads.ts';
import { createCountySigner } from '../support/county-signer.ts';
import { fakeClockEnv } from '../support/faketime.ts';
import { fromBuild, startService, writeConfig } from '../support/service-process.ts';
import { productionNodeFlags } from '../support/systemd-unit.ts';
import { villageConfigJson } from '../support/village.ts';

/**
 * A village Pi without a working RTC or NTP can be minutes off. The built service runs here on a clock
 * 10 minutes behind the county's (libfaketime, Debian `faketime`), so every ack the county signs is
 * "issued" 10 minutes in the village's future.
 */

const brokerUrl = inject('brokerUrl');
const protocolVersion = inject('brokerProtocolVersion');

describe('a village clock 10 minutes behind the county', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 've-clock-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("takes the county's acks: the alarm is closed, no local alarm, nothing rejected or reported", async () => {
    const villageId = 'clock-behind';
    const signer = await createCountySigner({ villageId });
    const county = await connectCounty({ url: brokerUrl, protocolVersion, autoAck: true, signer });
    const config = villageConfigJson({
      villageId,
      brokerUrl,
      protocolVersion,
      commandKeys: [signer.keyEntry],
      columns: 1,
      dataDir: join(dir, 'data'),
    });
    // Monotonic time left alone: only the wall clock is wrong on such a Pi (TOOLCHAIN.md, "Wrong clock").
    const env = fakeClockEnv({ FAKETIME: '-10m' });
    const service = startService(writeConfig(dir, config), undefined, fromBuild(productionNodeFlags(), env));
    try {
      const started = await service.waitForLog((l) => l.msg === 'village-edge started', 20_000);
      expect(Date.now() - Date.parse(String(started['time']))).toBeGreaterThan(9 * 60_000);
      await service.waitForLog((l) => l.msg === 'county link connected');
      service.send('press column-1');
      await county.waitFor((m) => m.kind === 'alarm' && m.village === villageId, 10_000);
      await service.waitForLog((l) => l.msg === 'alarm acknowledged by county', 10_000);
      expect(service.logs.filter((l) => l.msg === 'county command rejected')).toEqual([]);
      expect(county.messages.filter((m) => m.kind === 'report' && m.village === villageId)).toEqual([]);
      expect(await service.terminate()).toBe(0);
    } finally {
      await service.terminate().catch(() => undefined);
      await county.close();
    }
  }, 60_000);

  it('takes its time from the county: an alarm raised before says clockTrusted false and is corrected, and commands issued now pass', async () => {
    const villageId = 'clock-corrected';
    const signer = await createCountySigner({ villageId });
    const county = await connectCounty({ url: brokerUrl, protocolVersion, autoAck: false, signer });
    const config = villageConfigJson({
      villageId,
      brokerUrl,
      protocolVersion,
      commandKeys: [signer.keyEntry],
      columns: 1,
      dataDir: join(dir, 'data-corrected'),
    });
    const env = fakeClockEnv({ FAKETIME: '-10m' });
    const service = startService(writeConfig(mkdtempSync(join(dir, 'cfg-')), config), undefined, fromBuild(productionNodeFlags(), env));
    const alarms = () => county.messages.filter((m) => m.kind === 'alarm' && m.village === villageId).map((m) => alarmPayloadSchema.parse(m.payload));
    try {
      // Health goes out once the village has subscribed: from then on what the county sends arrives.
      await county.waitFor((m) => m.kind === 'health' && m.village === villageId, 20_000);
      // Before the county has said anything, a stop issued now is 10 minutes in the village's future.
      await county.send(villageId, 'stop', await signer.stop({ aud: villageId }));
      const early = await county.waitFor((m) => m.kind === 'report' && m.village === villageId, 10_000);
      expect(reportPayloadSchema.parse(early.payload).reason).toMatch(/^not-yet-valid/);

      service.send('press column-1');
      await county.waitFor((m) => m.kind === 'alarm' && m.village === villageId, 10_000);
      const first = alarms()[0]!;
      expect(first.clockTrusted).toBe(false);
      expect(Date.now() - Date.parse(first.raisedAt)).toBeGreaterThan(9 * 60_000);

      // Any verified county message carries the county's time: an ack (of nothing this village has) will do.
      await county.send(villageId, 'ack', await signer.ack({ aud: villageId }));
      await service.waitForLog((l) => l.msg === 'time is trusted now', 10_000);
      await county.waitFor(
        (m) => m.kind === 'alarm' && m.village === villageId && alarmPayloadSchema.parse(m.payload).clockTrusted === undefined,
        10_000,
      );
      const corrected = alarms().find((a) => a.clockTrusted === undefined)!;
      expect(corrected.id).toBe(first.id);
      expect(Math.abs(Date.now() - Date.parse(corrected.raisedAt))).toBeLessThan(30_000);

      // Now a command issued now is within the skew of the village's (trusted) time.
      await county.send(villageId, 'stop', await signer.stop({ aud: villageId }));
      await service.waitForLog((l) => l.msg === 'stop asked for nothing that plays or waits', 10_000);
      await county.ack(villageId, first.id);
      await service.waitForLog((l) => l.msg === 'alarm acknowledged by county', 10_000);
      // One rejection only (the early stop; republished until acked, so counted by id).
      expect(
        new Set(county.messages.filter((m) => m.kind === 'report' && m.village === villageId).map((m) => (m.payload as { id: string }).id)).size,
      ).toBe(1);
      expect(await service.terminate()).toBe(0);
    } finally {
      await service.terminate().catch(() => undefined);
      await county.close();
    }
  }, 60_000);

  it("takes the county's retained time message when it connects: trusted within a minute of the county's time, never refused as from the future", async () => {
    const villageId = 'clock-from-time-message';
    // A prefix of its own: the time message is for every village, and other files' villages must not get it.
    const prefix = `time-message-${process.pid}`;
    const signer = await createCountySigner({ villageId });
    const county = await connectCounty({ url: brokerUrl, protocolVersion, autoAck: true, signer, prefix });
    const base = villageConfigJson({
      villageId,
      brokerUrl,
      protocolVersion,
      commandKeys: [signer.keyEntry],
      columns: 1,
      dataDir: join(dir, 'data-time'),
      timing: { healthIntervalMs: 1000 },
    });
    const config = { ...base, county: { ...base.county, topicPrefix: prefix } };
    // Published (retained) before the village starts, as `village-edge county time --every 30` keeps it.
    await county.send(villageId, 'timeAll', await signer.time());
    const env = fakeClockEnv({ FAKETIME: '-10m' });
    const service = startService(writeConfig(mkdtempSync(join(dir, 'cfg-')), config), undefined, fromBuild(productionNodeFlags(), env));
    try {
      await service.waitForLog((l) => l.msg === 'time is trusted now', 20_000);
      const health = await county.waitFor(
        (m) => m.kind === 'health' && m.village === villageId && healthPayloadSchema.parse(m.payload).clock?.source === 'county',
        20_000,
      );
      const clock = healthPayloadSchema.parse(health.payload).clock!;
      expect(clock.trusted).toBe(true);
      // Ten minutes ahead of the Pi's own (wrong) clock, give or take the message's age.
      expect(clock.correctionMs).toBeGreaterThan(9 * 60_000);
      expect(Math.abs(Date.now() - Date.parse(healthPayloadSchema.parse(health.payload).at))).toBeLessThan(60_000);
      expect(service.logs.filter((l) => l.msg === 'county command rejected')).toEqual([]);
      expect(await service.terminate()).toBe(0);
    } finally {
      await service.terminate().catch(() => undefined);
      await county.close();
    }
  }, 60_000);
});
