import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createVillageEdge, type VillageEdge } from '../../src/app.ts';
import { faultPayloadSchema, healthPayloadSchema, type FaultPayload, type HealthPayload, type ReportPayload } from '../../src/contract/payloads.ts';
import { connectCounty, distinctReports, type CountyClient } from '../support/county.ts';
import { createCountySigner, type CountySigner } from '../support/county-signer.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { villageConfig, oneZoneBroadcast, startOnline } from '../support/village.ts';
import { waitFor } from '../support/wait.ts';

// A village with the real process player, real media files and the real broker; sound goes to ALSA's null
// device (this machine has no sound card, so `default` is the real "no sound card" case).
const brokerUrl = inject('brokerUrl');
const protocolVersion = inject('brokerProtocolVersion');

let signer: CountySigner;
let dir = '';
let library = '';
const clients: CountyClient[] = [];
const apps: VillageEdge[] = [];

beforeAll(async () => {
  signer = await createCountySigner({ villageId: 'unused' });
  dir = mkdtempSync(join(tmpdir(), 've-sound-'));
  library = join(dir, 'media');
  mkdirSync(library);
  expect(spawnSync('espeak-ng', ['-v', 'cmn', '-w', join(library, 'flood.wav'), '山洪预警']).status).toBe(0);
  // ALSA reads $XDG_CONFIG_HOME/alsa/asoundrc in every process it starts: a device of our own, `ve_sound`,
  // that a test can make fail (a card that is not there) and come back, for the players this file spawns.
  process.env['XDG_CONFIG_HOME'] = join(dir, 'xdg');
  mkdirSync(join(dir, 'xdg', 'alsa'), { recursive: true });
  setVeSound('works');
});

function setVeSound(state: 'works' | 'gone'): void {
  writeFileSync(join(dir, 'xdg', 'alsa', 'asoundrc'), state === 'works' ? 'pcm.ve_sound { type null }\n' : 'pcm.ve_sound { type hw card 7 }\n');
}
afterEach(async () => {
  for (const app of apps.splice(0)) await app.stop();
  for (const client of clients.splice(0)) await client.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

async function start(villageId: string, broadcast: Record<string, unknown> = {}, timing: Record<string, unknown> = {}) {
  const county = await connectCounty({ url: brokerUrl, protocolVersion, autoAck: true, signer });
  clients.push(county);
  const config = villageConfig({
    villageId,
    brokerUrl,
    protocolVersion,
    columns: 0,
    commandKeys: [signer.keyEntry],
    timing,
    ...oneZoneBroadcast({
      idleTailMs: 200,
      library,
      player: { media: { '.wav': ['aplay', '-q', '-D', '{device}', '{file}'] }, killTimeoutMs: 500 },
      ...broadcast,
    }),
  });
  const { logger, lines } = memoryLogger('info');
  const app = createVillageEdge({ config, version: '0.0.0-test', logger });
  apps.push(app);
  await startOnline(app);
  const reports = (jti?: string): ReportPayload[] => distinctReports(county, villageId).filter((r) => jti === undefined || r.jti === jti);
  const ended = (jti: string) =>
    waitFor(`${jti} to end`, () => reports(jti).some((r) => ['finished', 'failed', 'rejected'].includes(r.event)), 10_000);
  const faults = (kind?: string): FaultPayload[] =>
    county.messages
      .filter((m) => m.kind === 'fault' && m.village === villageId)
      .map((m) => faultPayloadSchema.parse(m.payload))
      .filter((f) => kind === undefined || f.kind === kind);
  const health = async (match: (h: HealthPayload) => boolean): Promise<HealthPayload> =>
    healthPayloadSchema.parse(
      (await county.waitFor((m) => m.kind === 'health' && m.village === villageId && match(healthPayloadSchema.parse(m.payload)), 10_000)).payload,
    );
  const speak = async (jti: string): Promise<ReportPayload[]> => {
    await county.send(
      villageId,
      'broadcast',
      await signer.broadcast({
        jti,
        aud: villageId,
        priority: 'emergency',
        level: 1,
        content: { kind: 'tts', text: '山洪预警：请沿河村民立即向高处转移。' },
      }),
    );
    await ended(jti);
    return reports(jti);
  };
  return { app, county, reports, ended, lines, faults, health, speak };
}

describe('a broadcast reports finished only when sound went out', () => {
  it('with no sound card ("default" does not open): an audio fault at start, health says so, and an emergency fails with the reason', async () => {
    const v = await start('bs-nocard', { output: { device: 'default' } }, { healthIntervalMs: 1000 });
    await waitFor('an audio fault', () => v.faults('audio').length > 0, 10_000);
    expect(v.faults('audio')[0]).toMatchObject({
      subject: 'default',
      detail: expect.stringMatching(/^the sound output "default" cannot be opened: aplay exited with code 1: .*audio open error/),
    });
    const reports = await v.speak('bs-nocard-1');
    expect(reports.map((r) => r.event)).toEqual(['accepted', 'failed']);
    expect(reports[1]?.reason).toMatch(/^audio output default: aplay exited with code 1: aplay: main:\d+: audio open error/);
    expect(v.lines.filter((l) => l.msg === 'player started')).toEqual([]);
    const health = await v.health((h) => h.audio.ok === false);
    expect(health.audio).toMatchObject({
      device: 'default',
      ok: false,
      reason: expect.stringMatching(/audio open error/),
      checkedAt: expect.any(String),
    });
    // One fault for the state, not one per item.
    expect(v.faults('audio')).toHaveLength(1);
  });

  it('a device that fails while idle is found by the periodic check, fails the next item, and its recovery is reported', async () => {
    setVeSound('works');
    const v = await start('bs-flaky', { output: { device: 've_sound', checkIntervalMs: 1000 } }, { healthIntervalMs: 1000 });
    // The shipped tts pipeline (espeak-ng --stdout | aplay -D ve_sound), for real.
    expect((await v.speak('bs-flaky-1')).map((r) => r.event)).toEqual(['accepted', 'started', 'finished']);
    expect((await v.health((h) => h.audio.ok === true)).audio).toMatchObject({ device: 've_sound', ok: true });
    expect(v.faults()).toEqual([]);

    setVeSound('gone');
    const lostAt = Date.now();
    await waitFor('one audio fault', () => v.faults('audio').length === 1, 10_000);
    console.info(`audio fault raised ${Date.now() - lostAt} ms after the device went away (checkIntervalMs 1000)`);
    const failed = await v.speak('bs-flaky-2');
    expect(failed.map((r) => r.event)).toEqual(['accepted', 'failed']);
    expect(failed[1]?.reason).toMatch(/^audio output ve_sound: aplay exited with code 1: /);

    setVeSound('works');
    await waitFor('one audio-recovered fault', () => v.faults('audio-recovered').length === 1, 10_000);
    expect(v.faults('audio-recovered')[0]).toMatchObject({ subject: 've_sound', detail: 'the sound output "ve_sound" opens again' });
    expect((await v.speak('bs-flaky-3')).map((r) => r.event)).toEqual(['accepted', 'started', 'finished']);
  });
});

describe('a broadcast reports started only when sound really started', () => {
  it('plays a media file whose sha256 matches; refuses a mismatch and a missing file without ever reporting started', async () => {
    const v = await start('bs-media');
    const good = sha256(join(library, 'flood.wav'));
    const send = async (jti: string, file: string, digest: string) => {
      await v.county.send(
        'bs-media',
        'broadcast',
        await signer.broadcast({ jti, aud: 'bs-media', priority: 'emergency', level: 2, content: { kind: 'media', file, sha256: digest } }),
      );
      await v.ended(jti);
      return v.reports(jti);
    };
    expect((await send('bs-media-ok', 'flood.wav', good)).map((r) => r.event)).toEqual(['accepted', 'started', 'finished']);
    const mismatch = await send('bs-media-sha', 'flood.wav', 'f'.repeat(64));
    expect(mismatch.map((r) => r.event)).toEqual(['accepted', 'failed']);
    expect(mismatch[1]?.reason).toBe(`play 1 of 1: sha256 mismatch for flood.wav: expected ${'f'.repeat(64)}, got ${good}`);
    const missing = await send('bs-media-gone', 'alarm/gone.wav', good);
    expect(missing.map((r) => r.event)).toEqual(['accepted', 'failed']);
    expect(missing[1]?.reason).toBe('play 1 of 1: media file not found: alarm/gone.wav');
  });

  it('refuses a media path with ".." at the gate (invalid-body): nothing is accepted, nothing plays', async () => {
    const v = await start('bs-escape');
    await v.county.send(
      'bs-escape',
      'broadcast',
      await signer.broadcast({
        jti: 'bs-escape-1',
        aud: 'bs-escape',
        content: { kind: 'media', file: '../media/flood.wav', sha256: sha256(join(library, 'flood.wav')) },
      }),
    );
    await v.ended('bs-escape-1');
    const reports = v.reports('bs-escape-1');
    expect(reports.map((r) => r.event)).toEqual(['rejected']);
    expect(reports[0]?.reason).toMatch(/^invalid-body: content\.file: no "\." or "\.\." path segment/);
    expect(v.lines.filter((l) => l.msg === 'player started')).toEqual([]);
  });
});
