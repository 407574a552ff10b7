import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createVillageEdge, type VillageEdge } from '../../src/app.ts';
import type { ReportPayload } from '../../src/county/payloads.ts';
import { connectCounty, distinctReports, type CountyClient } from '../support/county.ts';
import { createCountySigner, type CountySigner } from '../support/county-signer.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { villageConfig } from '../support/village.ts';
import { waitUntil } from '../support/wait.ts';

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
});
afterEach(async () => {
  for (const app of apps.splice(0)) await app.stop();
  for (const client of clients.splice(0)) await client.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

async function start(villageId: string, broadcast: Record<string, unknown> = {}) {
  const county = await connectCounty({ url: brokerUrl, protocolVersion, autoAck: true, signer });
  clients.push(county);
  const config = villageConfig({
    villageId,
    brokerUrl,
    protocolVersion,
    columns: 0,
    commandKeys: [signer.keyEntry],
    extraDevices: [{ id: 'relays-1', bus: 'sim', unitId: 20, profile: 've-rb8-rtu', role: 'relay-board', label: 'relays' }],
    broadcast: {
      amplifiers: [{ id: 'amp-1', power: { device: 'relays-1', channel: 0 } }],
      zones: [{ id: 'square', label: 'square', relay: { device: 'relays-1', channel: 1 }, amplifier: 'amp-1' }],
      powerOnGapMs: 0,
      warmUpMs: 0,
      idleTailMs: 200,
      library,
      player: { media: { '.wav': ['aplay', '-q', '-D', 'null', '{file}'] }, killTimeoutMs: 500 },
      ...broadcast,
    },
  });
  const { logger, lines } = memoryLogger('info');
  const app = createVillageEdge({ config, version: '0.0.0-test', logger });
  await app.start();
  apps.push(app);
  await waitUntil(() => app.uplink.connected);
  const reports = (jti?: string): ReportPayload[] => distinctReports(county, villageId).filter((r) => jti === undefined || r.jti === jti);
  const ended = (jti: string) => waitUntil(() => reports(jti).some((r) => ['finished', 'failed', 'rejected'].includes(r.event)), 10_000);
  return { app, county, reports, ended, lines };
}

describe('a broadcast reports started only when sound really started', () => {
  it('plays a media file whose sha256 matches; refuses a mismatch and a missing file without ever reporting started', async () => {
    const v = await start('bs-media');
    const good = sha256(join(library, 'flood.wav'));
    const send = async (jti: string, file: string, digest: string) => {
      await v.county.send('bs-media', 'broadcast', await signer.broadcast({ jti, aud: 'bs-media', priority: 'emergency', level: 2, content: { kind: 'media', file, sha256: digest } }));
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
    await v.county.send('bs-escape', 'broadcast', await signer.broadcast({ jti: 'bs-escape-1', aud: 'bs-escape', content: { kind: 'media', file: '../media/flood.wav', sha256: sha256(join(library, 'flood.wav')) } }));
    await v.ended('bs-escape-1');
    const reports = v.reports('bs-escape-1');
    expect(reports.map((r) => r.event)).toEqual(['rejected']);
    expect(reports[0]?.reason).toMatch(/^invalid-body: content\.file: no "\." or "\.\." path segment/);
    expect(v.lines.filter((l) => l.msg === 'player started')).toEqual([]);
  });
});
