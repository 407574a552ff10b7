import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createVillageEdge, type VillageEdge } from '../../src/app.ts';
import type { ReportPayload } from '../../src/contract/payloads.ts';
import type { DownKind } from '../../src/county/topics.ts';
import { connectCounty, distinctReports, type CountyClient } from '../support/county.ts';
import { algNone, createCountySigner, flipSignatureByte, hs256WithPublicKey, relabelKid, type CountySigner } from '../support/county-signer.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { RecordingPlayer } from '../support/recording-player.ts';
import { villageConfig, startOnline } from '../support/village.ts';
import { waitFor } from '../support/wait.ts';

const brokerUrl = inject('brokerUrl');
const protocolVersion = inject('brokerProtocolVersion');

const broadcastLayout = {
  amplifiers: [{ id: 'amp-1', power: { device: 'relays-1', channel: 0 } }],
  zones: [
    { id: 'east', label: 'east', relay: { device: 'relays-1', channel: 1 }, amplifier: 'amp-1' },
    { id: 'school', label: 'school', relay: { device: 'relays-1', channel: 2 }, amplifier: 'amp-1' },
  ],
  powerOnGapMs: 0,
  warmUpMs: 0,
  idleTailMs: 200,
};
const relayBoard = { id: 'relays-1', bus: 'sim', unitId: 20, profile: 've-rb8-rtu', role: 'relay-board', label: 'relays' };

interface Village {
  app: VillageEdge;
  player: RecordingPlayer;
  reports: () => ReportPayload[];
}

let county: CountyClient;
let signer: CountySigner;
const apps: VillageEdge[] = [];

async function startVillage(villageId: string, playMs = 50): Promise<Village> {
  const player = new RecordingPlayer(playMs);
  const config = villageConfig({
    villageId,
    brokerUrl,
    protocolVersion,
    columns: 1,
    commandKeys: [signer.keyEntry],
    extraDevices: [relayBoard],
    broadcast: broadcastLayout,
  });
  const app = createVillageEdge({ config, version: '0.0.0-test', logger: memoryLogger('info').logger, adapters: { player } });
  apps.push(app);
  await startOnline(app);
  return {
    app,
    player,
    reports: () => distinctReports(county, villageId),
  };
}

beforeAll(async () => {
  signer = await createCountySigner({ villageId: 'cmd-a' });
  county = await connectCounty({ url: brokerUrl, protocolVersion, autoAck: true, signer });
});

afterAll(async () => {
  for (const app of apps) await app.stop();
  await county.close();
});

describe('signed county commands through a real broker', () => {
  it('plays a signed broadcast in its zones and reports accepted, started, finished', async () => {
    const v = await startVillage('cmd-a');
    const token = await signer.broadcast({ jti: 'cmd-a-ok-1', aud: 'cmd-a', priority: 'emergency', level: 1, zones: ['east'] });
    await county.send('cmd-a', 'broadcast', token);
    await waitFor('cmd-a-ok-1 finished', () => v.reports().some((r) => r.jti === 'cmd-a-ok-1' && r.event === 'finished'));
    expect(
      v
        .reports()
        .filter((r) => r.jti === 'cmd-a-ok-1')
        .map((r) => r.event),
    ).toEqual(['accepted', 'started', 'finished']);
    expect(v.player.started).toHaveLength(1);
    expect(v.player.started[0]!.volume).toBe(100);
    expect(v.app.devices.simulated('relays-1')!.commands).toContain('relay 1 on');
  });

  it('plays a broadcast with the full 2,000 Chinese characters a tts text may have, in UTF-8 or \\u-escaped JSON', async () => {
    const v = await startVillage('cmd-e');
    const text = '山洪预警：请沿河村民立即向高处转移。'.repeat(112).slice(0, 2000);
    expect(text).toHaveLength(2000);
    const utf8 = await signer.broadcast({ jti: 'cmd-e-utf8', aud: 'cmd-e', content: { kind: 'tts', text } });
    // A county whose JSON encoder escapes everything outside ASCII sends each character as 6 bytes.
    const claims = signer.claims('broadcast', { jti: 'cmd-e-escaped', aud: 'cmd-e', content: { kind: 'tts', text } });
    const escapedJson = JSON.stringify(claims).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    const escaped = await signer.signRaw(new TextEncoder().encode(escapedJson), { kid: signer.kid, typ: 'JWT' });
    console.log(`2,000-character broadcast: ${utf8.length} bytes as UTF-8, ${escaped.length} bytes \\u-escaped`);
    for (const token of [utf8, escaped]) await county.send('cmd-e', 'broadcast', token);
    await waitFor(
      'both encodings finished',
      () => ['cmd-e-utf8', 'cmd-e-escaped'].every((jti) => v.reports().some((r) => r.jti === jti && r.event === 'finished')),
      10_000,
    );
    expect(v.player.started.map((p) => p.content)).toEqual([
      { kind: 'tts', text },
      { kind: 'tts', text },
    ]);
  });

  it('refuses every kind of bad command: nothing plays, and each is reported rejected with its reason', async () => {
    const v = await startVillage('cmd-b');
    const other = await createCountySigner({ villageId: 'cmd-b' });
    const valid = (jti: string, overrides: Record<string, unknown> = {}) => signer.broadcast({ jti, aud: 'cmd-b', ...overrides });
    const now = Math.floor(Date.now() / 1000);
    const replayed = await valid('cmd-b-replay');
    const cases: Array<{ reason: string; kind: DownKind; payload: string | Buffer }> = [
      { reason: 'oversized', kind: 'broadcast', payload: Buffer.alloc(40_000, 0x41) },
      { reason: 'malformed', kind: 'broadcast', payload: '{"cmd":"broadcast"}' },
      { reason: 'unsupported-alg', kind: 'broadcast', payload: algNone(await valid('cmd-b-none')) },
      { reason: 'unsupported-alg', kind: 'broadcast', payload: hs256WithPublicKey(await valid('cmd-b-hs'), signer.publicKeyBytes) },
      { reason: 'unknown-kid', kind: 'broadcast', payload: await other.broadcast({ jti: 'cmd-b-kid', aud: 'cmd-b' }) },
      { reason: 'bad-signature', kind: 'broadcast', payload: flipSignatureByte(await valid('cmd-b-sig')) },
      { reason: 'bad-signature', kind: 'broadcast', payload: relabelKid(await other.broadcast({ jti: 'cmd-b-relabel', aud: 'cmd-b' }), signer.kid) },
      { reason: 'invalid-body', kind: 'broadcast', payload: await valid('cmd-b-body', { priority: 'emergency' }) },
      { reason: 'expired', kind: 'broadcast', payload: await valid('cmd-b-exp', { iat: now - 600, exp: now - 1 }) },
      { reason: 'not-yet-valid', kind: 'broadcast', payload: await valid('cmd-b-future', { iat: now + 3600, exp: now + 7200 }) },
      { reason: 'wrong-audience', kind: 'broadcast', payload: await valid('cmd-b-aud', { aud: 'another-village' }) },
      { reason: 'wrong-audience', kind: 'broadcastAll', payload: await valid('cmd-b-all') },
      { reason: 'wrong-audience', kind: 'stop', payload: await valid('cmd-b-topic') },
      { reason: 'replayed', kind: 'broadcast', payload: replayed },
    ];
    // The genuine first copy of the replayed command plays once; its second copy is the `replayed` case.
    await county.send('cmd-b', 'broadcast', replayed);
    await waitFor('cmd-b-replay finished', () => v.reports().some((r) => r.jti === 'cmd-b-replay' && r.event === 'finished'));
    for (const c of cases) await county.send('cmd-b', c.kind, c.payload);
    await waitFor('a rejection of every case', () => v.reports().filter((r) => r.event === 'rejected').length >= cases.length, 10_000);
    const rejected = v.reports().filter((r) => r.event === 'rejected');
    expect(rejected.map((r) => r.reason?.split(':')[0])).toEqual(cases.map((c) => c.reason));
    // Only the replay's signature was genuine for this village, so only its jti may be echoed.
    expect(rejected.filter((r) => r.jti !== null).map((r) => r.jti)).toEqual(expect.arrayContaining(['cmd-b-replay']));
    expect(v.player.started).toHaveLength(1);
    expect(
      v
        .reports()
        .filter((r) => r.event === 'started')
        .map((r) => r.jti),
    ).toEqual(['cmd-b-replay']);
  });

  it('stops a broadcast by jti, and drops one that expires while it waits', async () => {
    const v = await startVillage('cmd-c', 300);
    const now = Math.floor(Date.now() / 1000);
    await county.send('cmd-c', 'broadcast', await signer.broadcast({ jti: 'cmd-c-long', aud: 'cmd-c', priority: 'emergency', level: 2, repeat: 10 }));
    await waitFor('cmd-c-long started', () => v.reports().some((r) => r.jti === 'cmd-c-long' && r.event === 'started'));
    // Waits behind the emergency (10 × 300 ms), and expires 1–2 s later, before the emergency is over.
    await county.send('cmd-c', 'broadcast', await signer.broadcast({ jti: 'cmd-c-brief', aud: 'cmd-c', iat: now, exp: now + 2 }));
    await waitFor('cmd-c-brief stopped', () => v.reports().some((r) => r.jti === 'cmd-c-brief' && r.event === 'stopped'), 3000);
    expect(v.reports().find((r) => r.jti === 'cmd-c-brief' && r.event === 'stopped')?.reason).toMatch(/expired/);
    await county.send('cmd-c', 'stop', await signer.stop({ aud: 'cmd-c', target: { jti: 'cmd-c-long' } }));
    await waitFor('cmd-c-long stopped', () => v.reports().some((r) => r.jti === 'cmd-c-long' && r.event === 'stopped'));
    expect(v.reports().find((r) => r.jti === 'cmd-c-long' && r.event === 'stopped')?.reason).toMatch(/stopped by the county/);
    expect(
      v
        .reports()
        .filter((r) => r.jti === 'cmd-c-brief')
        .map((r) => r.event),
    ).toEqual(['accepted', 'queued', 'stopped']);
  });

  it(`throws ≥ 10,000 random and mutated payloads at the command topics: nothing plays, the service lives on`, async () => {
    const v = await startVillage('cmd-d');
    const kinds: DownKind[] = ['ack', 'broadcast', 'broadcastAll', 'stop', 'stopAll'];
    const seeds = await Promise.all([
      signer.broadcast({ aud: 'cmd-d', priority: 'emergency', level: 1 }),
      signer.stop({ aud: 'cmd-d' }),
      signer.ack({ aud: 'cmd-d' }),
    ]);
    let sent = 0;
    const started = Date.now();
    for (let i = 0; i < 10_000; i++) {
      const kind = kinds[i % kinds.length]!;
      let payload: Buffer;
      if (i % 3 === 0) payload = randomBytes(1 + (i % 700));
      else {
        // A genuine token with 1–3 bytes changed: structure survives, the signature must not.
        payload = Buffer.from(seeds[i % seeds.length]!, 'latin1');
        for (let f = 0; f <= i % 3; f++) payload[(i * 7919 + f * 104729) % payload.length]! ^= 1 << ((i + f) % 8);
      }
      await county.send('cmd-d', kind, payload);
      sent++;
    }
    const sendMs = Date.now() - started;
    // A valid command after the flood is still heard: the gate and the queue are alive.
    await county.send('cmd-d', 'broadcast', await signer.broadcast({ jti: 'cmd-d-after', aud: 'cmd-d' }));
    await waitFor('cmd-d-after finished', () => v.reports().some((r) => r.jti === 'cmd-d-after' && r.event === 'finished'), 60_000);
    console.log(`command-topic fuzz: ${sent} payloads in ${sendMs} ms; ${v.player.started.length} played (the control only)`);
    expect(v.player.started).toHaveLength(1);
    expect(
      v
        .reports()
        .filter((r) => r.event === 'started')
        .map((r) => r.jti),
    ).toEqual(['cmd-d-after']);
    expect((await v.app.status()).link.connected).toBe(true);
    // Rejections are rate-limited in reports so a flood cannot wear out the SD card: at most 20 reported one by one
    // and one count per minute's window. A busy machine stretches the flood over more than one window.
    const windows = Math.floor((Date.now() - started) / 60_000) + 1;
    expect(v.reports().filter((r) => r.event === 'rejected').length).toBeLessThanOrEqual(21 * windows);
  }, 120_000);
});
