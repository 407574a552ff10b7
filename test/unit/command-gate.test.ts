import { verify as cryptoVerify, createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createCommandGate,
  rejectReasons,
  type AudienceTopic,
  type CommandGate,
  type GateResult,
  type RejectReason,
} from '../../src/county/command-gate.ts';
import type { CommandKind } from '../../src/county/topics.ts';
import { InvalidInputError } from '../../src/platform/schema-errors.ts';
import { openSqliteReplayGuard } from '../../src/store/sqlite-replay-guard.ts';
import type { ReplayGuard } from '../../src/store/types.ts';
import {
  algNone,
  createCountySigner,
  flipSignatureByte,
  hs256WithPublicKey,
  relabelKid,
  sampleSchedule,
  splitToken,
  toPayload,
  withHeader,
  type CountySigner,
} from '../support/county-signer.ts';
import { memoryReplayGuard } from '../support/memory-replay-guard.ts';

const village = 'dongcun';
const t0 = 1_800_000_000_000;
const nowS = t0 / 1000;
const skew = 60;
const maxBytes = 4096;
const now = () => t0;

let a: CountySigner;
let b: CountySigner;
/** Holds kid `a`'s name with a key the village does not trust: a forger who learnt the kid. */
let forger: CountySigner;

beforeAll(async () => {
  [a, b] = await Promise.all([
    createCountySigner({ villageId: village, kid: 'county-2026a', now }),
    createCountySigner({ villageId: village, kid: 'county-2026b', now }),
  ]);
  forger = await createCountySigner({ villageId: village, kid: 'county-2026a', now });
});

function gate(options: { keys?: CountySigner[]; replay?: ReplayGuard; maxBytes?: number; maxScheduleBytes?: number } = {}): CommandGate {
  return createCommandGate({
    villageId: village,
    keys: (options.keys ?? [a, b]).map((s) => s.keyEntry),
    maxClockSkewSeconds: skew,
    maxBytes: options.maxBytes ?? maxBytes,
    ...(options.maxScheduleBytes === undefined ? {} : { maxScheduleBytes: options.maxScheduleBytes }),
    replay: options.replay ?? memoryReplayGuard(),
    now,
  });
}

const verify = (g: CommandGate, token: string, kind: CommandKind = 'broadcast', audienceTopic: AudienceTopic = 'village'): Promise<GateResult> =>
  g.verify({ kind, audienceTopic, payload: toPayload(token) });

function expectRejected(result: GateResult, reason: RejectReason, detail: RegExp | string, jti: string | null = null): void {
  expect(result).toMatchObject({ ok: false, reason, jti });
  if (result.ok) return;
  if (typeof detail === 'string') expect(result.detail).toContain(detail);
  else expect(result.detail).toMatch(detail);
}

describe('command gate: accepted commands', () => {
  it('accepts each kind, signed for this village, with schema defaults applied', async () => {
    const g = gate();
    const ackClaims = a.claims('ack');
    const ack = await verify(g, await a.sign(ackClaims), 'ack');
    expect(ack).toEqual({ ok: true, command: { kind: 'ack', claims: ackClaims } });

    const broadcast = await verify(g, await a.broadcast({ priority: 'emergency', level: 2 }), 'broadcast');
    expect(broadcast.ok && broadcast.command.kind === 'broadcast' && broadcast.command.claims).toMatchObject({
      priority: 'emergency',
      level: 2,
      chime: false,
      repeat: 1,
    });

    const stopClaims = a.claims('stop', { target: { jti: 'broadcast-0001' } });
    expect(await verify(g, await a.sign(stopClaims), 'stop')).toEqual({ ok: true, command: { kind: 'stop', claims: stopClaims } });
  });

  it('accepts aud "all" on this village\'s topic and on the topic for all villages', async () => {
    const g = gate();
    expect((await verify(g, await a.stop({ aud: 'all' }), 'stop', 'village')).ok).toBe(true);
    expect((await verify(g, await a.stop({ aud: 'all' }), 'stop', 'all')).ok).toBe(true);
  });

  it('accepts an iat up to maxClockSkewSeconds ahead, a typ of "jwt" or none, and a payload of exactly maxBytes', async () => {
    const g = gate();
    expect((await verify(g, await a.ack({ iat: nowS + skew, exp: nowS + skew + 300 }), 'ack')).ok).toBe(true);
    const claims = new TextEncoder().encode(JSON.stringify(a.claims('ack')));
    expect((await verify(g, await a.signRaw(claims, { kid: a.kid }), 'ack')).ok).toBe(true);
    expect((await verify(g, await a.signRaw(new TextEncoder().encode(JSON.stringify(a.claims('ack'))), { kid: a.kid, typ: 'jwt' }), 'ack')).ok).toBe(
      true,
    );
    const exact = await a.broadcast();
    expect((await verify(gate({ maxBytes: exact.length }), exact)).ok).toBe(true);
  });
});

describe('command gate: one test per rejection reason', () => {
  it('lists its reasons in check order', () => {
    expect(rejectReasons).toEqual([
      'oversized',
      'malformed',
      'unsupported-alg',
      'unknown-kid',
      'bad-signature',
      'invalid-body',
      'expired',
      'not-yet-valid',
      'wrong-audience',
      'replayed',
      'replay-guard-failed',
    ]);
  });

  it('oversized: refused unread, whatever it holds', async () => {
    const token = await a.broadcast({ content: { kind: 'tts', text: '通知'.repeat(900) } });
    expectRejected(await verify(gate(), token), 'oversized', new RegExp(`^payload is ${token.length} bytes, over the 4096-byte limit$`));
    expectRejected(await verify(gate(), `${'x'.repeat(5000)}`), 'oversized', 'over the 4096-byte limit');
  });

  it('malformed: not a compact JWS, not canonical base64url, not UTF-8, not a JSON object, unknown header members', async () => {
    const g = gate();
    const good = await a.ack();
    const [h, p, s] = good.split('.') as [string, string, string];
    const cases: Array<[string, string | Buffer, string]> = [
      ['empty', '', '0 dots, 2 expected'],
      ['plain JSON', JSON.stringify(a.claims('ack')), '0 dots'],
      ['four segments', `${good}.AAAA`, '3 dots'],
      ['padding', `${h}.${p}.${s}==`, 'the signature segment is not canonical base64url'],
      ['a character outside base64url', `${h}.${p}+.${s}`, 'payload segment is not canonical'],
      ['non-canonical last character', `${h}.${p}.${s.slice(0, -1)}${nonCanonicalTwin(s)}`, 'signature segment is not canonical'],
      ['a byte that is not ASCII', Buffer.concat([Buffer.from(good), Buffer.from([0xff])]), 'signature segment is not canonical'],
      ['header not JSON', `${b64('{"alg":"EdDSA"')}.${p}.${s}`, 'protected header is not a JSON object in UTF-8'],
      ['header an array', `${b64('["EdDSA"]')}.${p}.${s}`, 'protected header is not a JSON object'],
      ['payload not UTF-8', `${h}.${Buffer.from([0x7b, 0xff, 0x7d]).toString('base64url')}.${s}`, 'payload is not a JSON object in UTF-8'],
      ['payload a JSON array', `${h}.${b64('[1,2]')}.${s}`, 'payload is not a JSON object'],
      ['crit header', withHeader(good, { alg: 'EdDSA', kid: a.kid, crit: ['b64'], b64: false }), 'protected header member "crit" is not supported'],
      [
        'embedded jwk header',
        withHeader(good, { alg: 'EdDSA', kid: a.kid, jwk: { kty: 'OKP', crv: 'Ed25519', x: forger.keyEntry.x } }),
        'member "jwk"',
      ],
      ['typ of another protocol', withHeader(good, { alg: 'EdDSA', kid: a.kid, typ: 'dpop+jwt' }), 'protected header typ "dpop+jwt"'],
    ];
    for (const [name, payload, detail] of cases) {
      const result = await g.verify({ kind: 'ack', audienceTopic: 'village', payload: Buffer.isBuffer(payload) ? payload : toPayload(payload) });
      expect(result, name).toMatchObject({ ok: false, reason: 'malformed', jti: null });
      expect(!result.ok && result.detail, name).toContain(detail);
    }
    // Validly signed, but not claims: still malformed, and no jti to report.
    expectRejected(
      await verify(g, await a.signRaw(new TextEncoder().encode('"just a string"'), { kid: a.kid }), 'ack'),
      'malformed',
      'payload is not a JSON object',
    );
  });

  it('unsupported-alg: none, HS256 keyed with the public key (raw, x, PEM), other algorithms, no alg', async () => {
    const g = gate();
    const good = await a.broadcast();
    const attacks = [
      algNone(good),
      algNone(good, { alg: 'None' }),
      hs256WithPublicKey(good, a.publicKeyBytes, 'raw'),
      hs256WithPublicKey(good, a.publicKeyBytes, 'x'),
      hs256WithPublicKey(good, a.publicKeyBytes, 'pem'),
      withHeader(good, { alg: 'ES256', kid: a.kid }),
      withHeader(good, { alg: 'eddsa', kid: a.kid }),
      withHeader(good, { kid: a.kid }),
    ];
    for (const token of attacks)
      expectRejected(await verify(g, token), 'unsupported-alg', /^protected header alg .*: only EdDSA \(Ed25519\) is accepted$/);
    expectRejected(await verify(g, algNone(good)), 'unsupported-alg', 'protected header alg "none"');
    expectRejected(await verify(g, hs256WithPublicKey(good, a.publicKeyBytes)), 'unsupported-alg', 'protected header alg "HS256"');
  });

  it('unknown-kid: a kid not configured, none at all, or one that names an Object property', async () => {
    const g = gate();
    const good = await a.ack();
    expectRejected(
      await verify(g, relabelKid(good, 'county-2019'), 'ack'),
      'unknown-kid',
      'kid "county-2019" is not in county.commandKeys (county-2026a, county-2026b)',
    );
    expectRejected(await verify(g, withHeader(good, { alg: 'EdDSA' }), 'ack'), 'unknown-kid', 'kid (missing): a key id is required');
    expectRejected(await verify(g, withHeader(good, { alg: 'EdDSA', kid: 7 }), 'ack'), 'unknown-kid', 'kid 7: a key id is required');
    for (const kid of ['__proto__', 'constructor', 'toString'])
      expectRejected(await verify(g, relabelKid(good, kid), 'ack'), 'unknown-kid', 'is not in county.commandKeys');
    expectRejected(await verify(gate({ keys: [] }), good, 'ack'), 'unknown-kid', '(none configured)');
  });

  it('bad-signature: a flipped bit, a foreign key under a trusted kid, claims spliced onto another signature', async () => {
    const g = gate();
    const good = await a.broadcast();
    for (const index of [0, 31, 32, 63])
      expectRejected(await verify(g, flipSignatureByte(good, index)), 'bad-signature', 'signature does not verify with the key of this kid');
    expectRejected(await verify(g, await forger.broadcast()), 'bad-signature', 'does not verify');
    const other = await a.broadcast({ content: { kind: 'tts', text: '紧急撤离' } });
    const spliced = `${good.split('.')[0]}.${splitToken(other).payloadSegment}.${splitToken(good).signatureSegment}`;
    expectRejected(await verify(g, spliced), 'bad-signature', 'does not verify');
    // Signed by b, labelled a: the kid picks the key, and it is the wrong one.
    expectRejected(await verify(g, relabelKid(await b.broadcast(), a.kid)), 'bad-signature', 'does not verify');
  });

  it('invalid-body: schema problems name their field, and the (signed) jti is reported', async () => {
    const g = gate();
    const claims = a.claims('broadcast', { content: { kind: 'media', file: 'alarm/flood.mp3', sha256: 'ABC' } });
    expectRejected(await verify(g, await a.sign(claims)), 'invalid-body', 'content.sha256: 64 lower-case hex digits', String(claims['jti']));
    const emergency = a.claims('broadcast', { priority: 'emergency' });
    expectRejected(await verify(g, await a.sign(emergency)), 'invalid-body', 'level: level is required for an emergency', String(emergency['jti']));
    expectRejected(
      await verify(g, await a.ack({ cmd: 'reboot', jti: 'cmd-00000001' }), 'ack'),
      'invalid-body',
      'cmd: "reboot" is not one of ack, broadcast, stop',
      'cmd-00000001',
    );
    expectRejected(await verify(g, await a.ack({ extra: 1, jti: 'cmd-00000002' }), 'ack'), 'invalid-body', /extra/, 'cmd-00000002');
    expectRejected(
      await verify(g, await a.ack({ exp: nowS + 10, iat: nowS + 10, jti: 'cmd-00000003' }), 'ack'),
      'invalid-body',
      'exp: 1800000010 is not after iat 1800000010',
      'cmd-00000003',
    );
    // A media path that would leave the library is refused at the gate, before any player sees it.
    const sha256 = 'e'.repeat(64);
    for (const file of ['../etc/shadow.wav', 'alarm/../../x.mp3', 'alarm/./flood.mp3', '/etc/x.wav', '..']) {
      const outside = a.claims('broadcast', { content: { kind: 'media', file, sha256 } });
      expectRejected(await verify(g, await a.sign(outside)), 'invalid-body', /^content\.file: /, String(outside['jti']));
    }
    // No usable jti in the claims: nothing to report.
    expectRejected(await verify(g, await a.ack({ jti: undefined }), 'ack'), 'invalid-body', 'jti:', null);
    expectRejected(await verify(g, await a.ack({ jti: 'bad jti with spaces' }), 'ack'), 'invalid-body', 'jti:', null);
  });

  it('expired: exp <= now', async () => {
    const g = gate();
    expectRejected(
      await verify(g, await a.stop({ jti: 'cmd-expired-1', iat: nowS - 300, exp: nowS }), 'stop'),
      'expired',
      'exp: expired 0 s ago (exp 1800000000, now 1800000000)',
      'cmd-expired-1',
    );
    expectRejected(
      await verify(g, await a.broadcast({ jti: 'cmd-expired-2', iat: nowS - 7200, exp: nowS - 3600 })),
      'expired',
      'expired 60 min ago',
      'cmd-expired-2',
    );
  });

  it('not-yet-valid: iat more than maxClockSkewSeconds ahead, with a hint for milliseconds', async () => {
    const g = gate();
    expectRejected(
      await verify(g, await a.stop({ jti: 'cmd-future-1', iat: nowS + skew + 1, exp: nowS + 600 }), 'stop'),
      'not-yet-valid',
      'iat: 61 s in the future, more than the 60 s allowed clock skew',
      'cmd-future-1',
    );
    expectRejected(
      await verify(g, await a.broadcast({ jti: 'cmd-future-2', iat: t0, exp: t0 + 300_000 })),
      'not-yet-valid',
      'iat must be in seconds, not milliseconds',
      'cmd-future-2',
    );
  });

  it('invalid-body: a broadcast or stop that would live longer than the command lifetime cap (24 h by default)', async () => {
    const g = gate();
    expectRejected(
      await verify(g, await a.broadcast({ jti: 'cmd-forever-1', iat: nowS, exp: nowS + 24 * 3600 + 1 })),
      'invalid-body',
      'exp: 24 h after iat, longer than the 24 h a command may live',
      'cmd-forever-1',
    );
    expect(await verify(g, await a.stop({ jti: 'cmd-day-1', iat: nowS, exp: nowS + 24 * 3600 }), 'stop')).toMatchObject({ ok: true });
  });

  it('acks are never refused for time: issued an hour "ahead" of a village clock that is behind, or long expired', async () => {
    const g = gate();
    expect(await verify(g, await a.ack({ iat: nowS + 3600, exp: nowS + 3900 }), 'ack')).toMatchObject({ ok: true });
    expect(await verify(g, await a.ack({ iat: nowS - 7200, exp: nowS - 3600 }), 'ack')).toMatchObject({ ok: true });
    // Claims that contradict themselves are still a bad body, whatever the village's clock says.
    expectRejected(
      await verify(g, await a.ack({ jti: 'ack-backwards', iat: nowS + 10, exp: nowS + 10 }), 'ack'),
      'invalid-body',
      'is not after iat',
      'ack-backwards',
    );
  });

  it("wrong-audience: another village, a single village on the all-villages topic, a cmd on another kind's topic", async () => {
    const g = gate();
    expectRejected(
      await verify(g, await a.broadcast({ aud: 'xicun', jti: 'cmd-aud-0001' })),
      'wrong-audience',
      'aud: "xicun" is neither this village ("dongcun") nor "all"',
      'cmd-aud-0001',
    );
    expectRejected(
      await verify(g, await a.broadcast({ jti: 'cmd-aud-0002' }), 'broadcast', 'all'),
      'wrong-audience',
      'aud: "dongcun" on the topic for all villages, where only "all" is accepted',
      'cmd-aud-0002',
    );
    expectRejected(
      await verify(g, await a.broadcast({ jti: 'cmd-aud-0003' }), 'stop'),
      'wrong-audience',
      'cmd: a "broadcast" command arrived on the stop topic',
      'cmd-aud-0003',
    );
    expectRejected(
      await verify(g, await a.ack({ jti: 'cmd-aud-0004' }), 'broadcast'),
      'wrong-audience',
      'arrived on the broadcast topic',
      'cmd-aud-0004',
    );
  });

  it('accepts a replayed ack again: acks are idempotent and cost no replay-guard write', async () => {
    const g = gate();
    const token = await a.ack({ jti: 'ack-replay-1' });
    expect((await verify(g, token, 'ack', 'village')).ok).toBe(true);
    expect((await verify(g, token, 'ack', 'village')).ok).toBe(true);
  });

  it('replayed: the same command a second time', async () => {
    const g = gate();
    const token = await a.broadcast({ jti: 'cmd-replay-1' });
    expect((await verify(g, token)).ok).toBe(true);
    expectRejected(await verify(g, token), 'replayed', 'jti: "cmd-replay-1" was already accepted and has not expired', 'cmd-replay-1');
    expectRejected(await verify(g, token, 'broadcast', 'village'), 'replayed', 'already accepted', 'cmd-replay-1');
  });

  it('replay-guard-failed: a command that cannot be recorded is refused (fail closed)', async () => {
    const broken: ReplayGuard = {
      remember: () => {
        throw new Error('disk I/O error');
      },
      close: () => undefined,
    };
    expectRejected(
      await verify(gate({ replay: broken }), await a.stop({ jti: 'cmd-io-0001' }), 'stop'),
      'replay-guard-failed',
      'jti could not be recorded, so the command is refused: disk I/O error',
      'cmd-io-0001',
    );
  });
});

describe('command gate: order of the checks', () => {
  it('reports the first failing check: size, then structure, alg, kid, signature, body, time, audience', async () => {
    const g = gate({ maxBytes: 600 });
    const expiredElsewhere = await a.broadcast({ aud: 'xicun', iat: nowS - 900, exp: nowS - 600 });
    expect(await reasonOf(g, `${expiredElsewhere}${'.'.repeat(600)}`)).toBe('oversized');
    expect(await reasonOf(g, withHeader(expiredElsewhere, { alg: 'none', kid: 'nobody', crit: ['exp'] }))).toBe('malformed');
    expect(await reasonOf(g, relabelKid(algNone(expiredElsewhere), 'nobody'))).toBe('unsupported-alg');
    expect(await reasonOf(g, relabelKid(expiredElsewhere, 'nobody'))).toBe('unknown-kid');
    // Unverified claims decide nothing: a forgery is "bad-signature", never "expired" or "wrong-audience".
    expect(await reasonOf(g, flipSignatureByte(expiredElsewhere))).toBe('bad-signature');
    expect(await reasonOf(g, await a.broadcast({ aud: 'xicun', iat: nowS - 900, exp: nowS - 600, zones: [] }))).toBe('invalid-body');
    expect(await reasonOf(g, expiredElsewhere)).toBe('expired');
    expect(await reasonOf(g, await a.broadcast({ aud: 'xicun', iat: nowS + 3600, exp: nowS + 3900 }))).toBe('not-yet-valid');
  });

  it('remembers a jti only once everything else passed, so no refused copy can burn a real command', async () => {
    const replay = memoryReplayGuard();
    const g = gate({ replay });
    const jti = 'cmd-burn-0001';
    const refusedCopies = [
      flipSignatureByte(await a.broadcast({ jti })),
      await forger.broadcast({ jti }),
      await a.broadcast({ jti, aud: 'xicun' }),
      await a.broadcast({ jti, iat: nowS - 900, exp: nowS - 1 }),
      await a.broadcast({ jti, zones: [] }),
    ];
    for (const token of refusedCopies) expect((await verify(g, token)).ok).toBe(false);
    expect(await verify(g, await a.stop({ jti }), 'stop', 'all')).toMatchObject({ ok: false, reason: 'wrong-audience' });
    expect(replay.size).toBe(0);
    expect((await verify(g, await a.broadcast({ jti }))).ok).toBe(true);
    expect(replay.size).toBe(1);
  });

  it('settles a broadcast and its stop in the order of the calls; junk that needs no crypto is refused at once', async () => {
    const g = gate();
    const broadcastToken = await a.broadcast({ jti: 'cmd-order-0001' });
    const stopToken = await a.stop({ jti: 'cmd-order-0002', target: { jti: 'cmd-order-0001' } });
    const settled: string[] = [];
    const calls = [
      verify(g, broadcastToken).then((r) => settled.push(`broadcast ${r.ok}`)),
      verify(g, 'x'.repeat(5000), 'stop').then((r) => settled.push(`junk ${r.ok}`)),
      verify(g, stopToken, 'stop').then((r) => settled.push(`stop ${r.ok}`)),
    ];
    await Promise.all(calls);
    expect(settled).toEqual(['junk false', 'broadcast true', 'stop true']);
  });

  it('verifies an ack ahead of broadcasts still waiting for their signature check', async () => {
    const g = gate();
    const junk = await Promise.all(Array.from({ length: 50 }, () => forger.broadcast()));
    const ackToken = await a.ack();
    const settled: string[] = [];
    const calls = junk.map((token) => verify(g, token).then((r) => settled.push(`junk ${r.ok ? 'accepted' : r.reason}`)));
    calls.push(verify(g, ackToken, 'ack').then((r) => settled.push(`ack ${r.ok}`)));
    await Promise.all(calls);
    expect(settled.indexOf('ack true')).toBeGreaterThanOrEqual(0);
    expect(settled.indexOf('ack true')).toBeLessThan(10);
    expect(settled.filter((s) => s === 'junk bad-signature')).toHaveLength(50);
  });

  it('never throws, whatever it is handed', async () => {
    const g = gate();
    const junk: unknown[] = ['a.b.c', null, undefined, 42, {}, [], new Uint8Array([46, 46]), new ArrayBuffer(4)];
    for (const payload of junk) {
      const result = await g.verify({ kind: 'ack', audienceTopic: 'village', payload: payload as Buffer });
      expect(result).toMatchObject({ ok: false, reason: 'malformed', jti: null });
    }
    const token = toPayload(await a.ack());
    for (const [kind, audienceTopic] of [
      ['reboot', 'village'],
      ['ack', 'everyone'],
      [undefined, undefined],
    ] as const) {
      const result = await g.verify({
        kind: kind as unknown as CommandKind,
        audienceTopic: audienceTopic as unknown as AudienceTopic,
        payload: token,
      });
      expect(result).toMatchObject({ ok: false, reason: 'malformed' });
    }
  });
});

describe('command gate: schedule and time messages', () => {
  it('a schedule needs no exp, may be issued ahead of the village clock, and may live longer than a command', async () => {
    const replay = memoryReplayGuard();
    const g = gate({ replay });
    const claims = a.claims('schedule', { jti: 'sched-0001' });
    expect(claims['exp']).toBeUndefined();
    expect(await verify(g, await a.sign(claims), 'schedule')).toMatchObject({
      ok: true,
      command: { kind: 'schedule', claims: { jti: 'sched-0001' } },
    });
    // A Pi booted with a clock a year behind still takes its schedule.
    expect(await verify(g, await a.schedule({ iat: nowS + 365 * 24 * 3600 }), 'schedule')).toMatchObject({ ok: true });
    // An exp a year after iat: no lifetime cap.
    expect(await verify(g, await a.schedule({ iat: nowS - 3600, exp: nowS + 365 * 24 * 3600 }), 'schedule')).toMatchObject({ ok: true });
    expect(replay.size).toBe(0);
  });

  it('a schedule delivered again (the retained copy, on every reconnect) is accepted again, and the replay guard is not written', async () => {
    const replay = memoryReplayGuard();
    const g = gate({ replay });
    const token = await a.schedule({ jti: 'sched-retained', aud: 'all' });
    for (let i = 0; i < 3; i++) expect(await verify(g, token, 'schedule', 'all')).toMatchObject({ ok: true });
    expect(replay.size).toBe(0);
  });

  it('a schedule that comes again is judged again for time and audience, and a tampered copy of it for its signature', async () => {
    let at = t0;
    const g = createCommandGate({
      villageId: village,
      keys: [a.keyEntry],
      maxClockSkewSeconds: skew,
      maxBytes,
      replay: memoryReplayGuard(),
      now: () => at,
    });
    const token = await a.schedule({ jti: 'sched-lapsing', exp: nowS + 600 });
    expect(await verify(g, token, 'schedule')).toMatchObject({ ok: true });
    expectRejected(await verify(g, flipSignatureByte(token), 'schedule'), 'bad-signature', 'does not verify');
    expectRejected(await verify(g, token, 'schedule', 'all'), 'wrong-audience', 'on the topic for all villages', 'sched-lapsing');
    expect(await verify(g, token, 'schedule')).toMatchObject({ ok: true, command: { claims: { jti: 'sched-lapsing' } } });
    at = t0 + 601_000;
    expectRejected(await verify(g, token, 'schedule'), 'expired', 'expired 1 s ago', 'sched-lapsing');
  });

  it('a schedule that carries an exp is refused once it has passed, and an exp not after iat is a bad body', async () => {
    const g = gate();
    expectRejected(
      await verify(g, await a.schedule({ jti: 'sched-expired', iat: nowS - 7200, exp: nowS - 3600 }), 'schedule'),
      'expired',
      'expired 60 min ago',
      'sched-expired',
    );
    expectRejected(
      await verify(g, await a.schedule({ jti: 'sched-backwards', iat: nowS, exp: nowS }), 'schedule'),
      'invalid-body',
      'exp: 1800000000 is not after iat 1800000000',
      'sched-backwards',
    );
  });

  it('a schedule document is checked by its schema, naming the field in it', async () => {
    const document = { version: 3, programmes: [{ id: 'p1', cron: '0 25 * * *', zones: 'all', content: { kind: 'tts', text: '通知' } }] };
    const [reason, text] = await reasonAndDetail(gate(), await a.schedule({ jti: 'sched-badcron', schedule: document }), 'schedule');
    expect(reason).toBe('invalid-body');
    expect(text).toMatch(/^schedule\.programmes\[0\]\.cron: /);
    expectRejected(
      await verify(gate(), await a.schedule({ jti: 'sched-nodoc', schedule: undefined }), 'schedule'),
      'invalid-body',
      'schedule:',
      'sched-nodoc',
    );
  });

  it('a schedule keeps the audience rules: aud "all" on the topic for all villages, never another village', async () => {
    const g = gate();
    expectRejected(
      await verify(g, await a.schedule({ jti: 'sched-aud-1' }), 'schedule', 'all'),
      'wrong-audience',
      'on the topic for all villages',
      'sched-aud-1',
    );
    expectRejected(
      await verify(g, await a.schedule({ jti: 'sched-aud-2', aud: 'xicun' }), 'schedule'),
      'wrong-audience',
      'neither this village',
      'sched-aud-2',
    );
    expectRejected(
      await verify(g, await a.schedule({ jti: 'sched-aud-3' }), 'broadcast'),
      'wrong-audience',
      'a "schedule" command arrived on the broadcast topic',
      'sched-aud-3',
    );
  });

  it('a schedule may be up to maxScheduleBytes, every other kind still maxBytes', async () => {
    const token = await a.schedule({ schedule: sampleSchedule(20, { textChars: 100 }) });
    expect(token.length).toBeGreaterThan(maxBytes);
    expect(await verify(gate({ maxScheduleBytes: token.length }), token, 'schedule')).toMatchObject({ ok: true });
    expectRejected(
      await verify(gate({ maxScheduleBytes: token.length - 1 }), token, 'schedule'),
      'oversized',
      `payload is ${token.length} bytes, over the ${token.length - 1}-byte limit`,
    );
    // Its default is 256 KiB, and it does not raise the limit of the other kinds.
    expect(await verify(gate(), token, 'schedule')).toMatchObject({ ok: true });
    const broadcast = await a.broadcast({ content: { kind: 'tts', text: '通知'.repeat(900) } });
    expectRejected(await verify(gate({ maxScheduleBytes: 1 << 20 }), broadcast), 'oversized', `over the ${maxBytes}-byte limit`);
  });

  it('a time message may be issued ahead of the village clock (that is what it corrects) and is accepted again, unrecorded', async () => {
    const replay = memoryReplayGuard();
    const g = gate({ replay });
    const token = await a.time({ jti: 'time-0001', iat: nowS + 3 * 3600, exp: nowS + 3 * 3600 + 120 });
    expect(await verify(g, token, 'time', 'all')).toMatchObject({ ok: true, command: { kind: 'time', claims: { iat: nowS + 3 * 3600 } } });
    expect(await verify(g, token, 'time', 'all')).toMatchObject({ ok: true });
    expect(replay.size).toBe(0);
  });

  it('a time message must carry an exp, is refused once it has passed, and is held to the command lifetime cap', async () => {
    const g = gate();
    expectRejected(await verify(g, await a.time({ jti: 'time-noexp', exp: undefined }), 'time', 'all'), 'invalid-body', 'exp:', 'time-noexp');
    expectRejected(
      await verify(g, await a.time({ jti: 'time-stale', iat: nowS - 600, exp: nowS - 480 }), 'time', 'all'),
      'expired',
      'expired 8 min ago',
      'time-stale',
    );
    expectRejected(
      await verify(g, await a.time({ jti: 'time-forever', iat: nowS, exp: nowS + 48 * 3600 }), 'time', 'all'),
      'invalid-body',
      'longer than the 24 h a command may live',
      'time-forever',
    );
  });

  it('broadcasts and stops keep every check the exemptions above skip', async () => {
    const replay = memoryReplayGuard();
    const g = gate({ replay, maxScheduleBytes: 1 << 20 });
    expectRejected(
      await verify(g, await a.broadcast({ jti: 'b-future', iat: nowS + 3600, exp: nowS + 3900 })),
      'not-yet-valid',
      'in the future',
      'b-future',
    );
    expectRejected(
      await verify(g, await a.stop({ jti: 's-future', iat: nowS + 3600, exp: nowS + 3900 }), 'stop'),
      'not-yet-valid',
      'in the future',
      's-future',
    );
    expectRejected(await verify(g, await a.broadcast({ jti: 'bcast-no-exp', exp: undefined })), 'invalid-body', 'exp:', 'bcast-no-exp');
    expectRejected(
      await verify(g, await a.stop({ jti: 'stop-long', exp: nowS + 48 * 3600 }), 'stop'),
      'invalid-body',
      'a command may live',
      'stop-long',
    );
    const token = await a.stop({ jti: 'stop-once' });
    expect(await verify(g, token, 'stop')).toMatchObject({ ok: true });
    expectRejected(await verify(g, token, 'stop'), 'replayed', 'already accepted', 'stop-once');
    expect(replay.size).toBe(1);
  });
});

describe('command gate: keys', () => {
  it('accepts both kids during a rotation, and refuses a kid once it is removed from the config', async () => {
    const both = gate({ keys: [a, b] });
    expect((await verify(both, await a.ack(), 'ack')).ok).toBe(true);
    expect((await verify(both, await b.ack(), 'ack')).ok).toBe(true);
    const afterRotation = gate({ keys: [b] });
    expectRejected(
      await verify(afterRotation, await a.ack(), 'ack'),
      'unknown-kid',
      'kid "county-2026a" is not in county.commandKeys (county-2026b)',
    );
    expect((await verify(afterRotation, await b.ack(), 'ack')).ok).toBe(true);
  });

  it('refuses to start with a key that cannot work or must not be trusted, naming county.commandKeys[i]', () => {
    const build =
      (x: string, kid = 'k2') =>
      () =>
        createCommandGate({
          villageId: village,
          keys: [a.keyEntry, { kid, x }],
          maxClockSkewSeconds: skew,
          maxBytes,
          replay: memoryReplayGuard(),
          now,
        });
    const identity = Buffer.alloc(32);
    identity[0] = 1;
    const minusOne = Buffer.alloc(32, 0xff);
    minusOne[0] = 0xec;
    minusOne[31] = 0x7f;
    const cases: Array<[string, RegExp]> = [
      [
        'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
        /^county\.commandKeys\[1\]\.x: is a small-order point, with which anyone could forge signatures \(kid "k2"\)$/,
      ],
      [identity.toString('base64url'), /small-order point/],
      [minusOne.toString('base64url'), /small-order point/],
      [Buffer.alloc(32, 0xff).toString('base64url'), /is not a canonical Ed25519 point encoding/],
      // y = 2 has no x on the curve (checked once against the curve equation).
      [Buffer.concat([Buffer.from([2]), Buffer.alloc(31)]).toString('base64url'), /is not a point on the Ed25519 curve/],
      ['not base64url!', /county\.commandKeys\[1\]\.x: is not canonical base64url/],
      [a.keyEntry.x.slice(0, -1), /is 31 bytes|not canonical/],
    ];
    for (const [x, message] of cases) {
      expect(build(x), x).toThrow(InvalidInputError);
      expect(build(x), x).toThrow(message);
    }
    expect(build(b.keyEntry.x, a.kid)).toThrow('county.commandKeys[1].kid: duplicate kid "county-2026a"');
  });

  it('(why the small-order check exists) with the identity point as the key, one fixed signature verifies for any message', () => {
    const identity = Buffer.alloc(32);
    identity[0] = 1;
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: identity.toString('base64url') }, format: 'jwk' });
    const forged = Buffer.concat([identity, Buffer.alloc(32)]);
    expect(cryptoVerify(null, Buffer.from('any header.any claims'), key, forged)).toBe(true);
  });
});

describe('command gate: replay guard on disk', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 've-gate-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a replay after the guard (and the gate) were restarted', async () => {
    const path = join(dir, 'commands.sqlite');
    const token = await a.broadcast({ priority: 'emergency', level: 1, jti: 'cmd-restart-01' });
    let replay = openSqliteReplayGuard({ path });
    expect((await verify(gate({ replay }), token)).ok).toBe(true);
    replay.close();

    replay = openSqliteReplayGuard({ path });
    try {
      expectRejected(await verify(gate({ replay }), token), 'replayed', 'already accepted', 'cmd-restart-01');
    } finally {
      replay.close();
    }
  });
});

async function reasonAndDetail(g: CommandGate, token: string, kind: CommandKind): Promise<[RejectReason | 'accepted', string]> {
  const result = await verify(g, token, kind);
  return result.ok ? ['accepted', ''] : [result.reason, result.detail];
}

async function reasonOf(g: CommandGate, token: string): Promise<RejectReason | 'accepted'> {
  const result = await verify(g, token);
  return result.ok ? 'accepted' : result.reason;
}

function b64(text: string): string {
  return Buffer.from(text).toString('base64url');
}

/** A base64url character that decodes to the same bytes as the last one of `segment` (unused low bits set). */
function nonCanonicalTwin(segment: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const index = alphabet.indexOf(segment.slice(-1));
  // 64 signature bytes → 86 characters; the last carries 2 data bits and 4 unused ones.
  return alphabet[index ^ 0x01] ?? 'A';
}
