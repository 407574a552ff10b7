import { beforeAll, describe, expect, it } from 'vitest';
import { createCommandGate, type CommandGate, type GateInput, type GateResult } from '../../src/county/command-gate.ts';
import { createCountySigner, relabelKid, toPayload, withHeader, type CountySigner } from '../support/county-signer.ts';
import { memoryReplayGuard } from '../support/memory-replay-guard.ts';

// The gate's details, word for word, beside command-gate.test.ts: a refusal's detail is what the county
// reads in the report, so each check must say what it found, and the gate must say it for any input at all.
const village = 'dongcun';
const t0 = 1_800_000_000_000;
const nowS = t0 / 1000;
let a: CountySigner;

beforeAll(async () => {
  a = await createCountySigner({ villageId: village, kid: 'county-2026a', now: () => t0 });
});

function gate(): CommandGate {
  return createCommandGate({
    villageId: village,
    keys: [a.keyEntry],
    maxClockSkewSeconds: 60,
    maxBytes: 4096,
    replay: memoryReplayGuard(),
    now: () => t0,
  });
}

const b64 = (data: Uint8Array | string): string => Buffer.from(data).toString('base64url');

async function detail(result: Promise<GateResult>): Promise<[string, string]> {
  const r = await result;
  if (r.ok) throw new Error('accepted');
  return [r.reason, r.detail];
}

const check = (input: Partial<GateInput> & Record<string, unknown>) =>
  detail(gate().verify({ kind: 'ack', audienceTopic: 'village', payload: Buffer.alloc(0), ...input } as GateInput));

describe('command gate details: before the signature', () => {
  it('refuses a payload the link discarded as oversized, with its size', async () => {
    expect(await check({ discardedBytes: 300_000 })).toEqual([
      'oversized',
      "payload of 300000 bytes, over the link's packet limit, was discarded unread",
    ]);
  });

  it('refuses a payload that is not bytes, and a topic it does not know, whatever their type', async () => {
    expect(await check({ payload: 'a.b.c' as unknown as Buffer })).toEqual(['malformed', 'payload is not a byte buffer']);
    expect(await check({ kind: 10n as unknown as 'ack' })).toEqual(['malformed', 'unknown topic: kind 10, audience "village"']);
    expect(await check({ kind: ['ack'] as unknown as 'ack' })).toEqual(['malformed', 'unknown topic: kind ["ack"], audience "village"']);
  });

  it('refuses an input it cannot even read, rather than throw', async () => {
    const input = {
      kind: 'ack',
      audienceTopic: 'village',
      get payload(): Buffer {
        throw new Error('detached buffer');
      },
    };
    expect(await detail(gate().verify(input as unknown as GateInput))).toEqual(['malformed', 'could not be checked (detached buffer)']);
  });

  it('says which segment is empty, and that a header of null or of bytes that are not UTF-8 is no JSON object', async () => {
    const [h, p, s] = (await a.ack()).split('.') as [string, string, string];
    const malformed = (token: string | Buffer) => check({ payload: Buffer.isBuffer(token) ? token : toPayload(token) });
    expect(await malformed(`.${p}.${s}`)).toEqual(['malformed', 'not a compact JWS: empty header or payload segment']);
    expect(await malformed(`${h}..${s}`)).toEqual(['malformed', 'not a compact JWS: empty header or payload segment']);
    expect(await malformed(`${b64('null')}.${p}.${s}`)).toEqual(['malformed', 'protected header is not a JSON object in UTF-8']);
    const notUtf8 = Buffer.concat([Buffer.from('{"alg":"EdDSA","kid":"county-2026a'), Buffer.from([0xff]), Buffer.from('"}')]);
    expect(await malformed(`${b64(notUtf8)}.${p}.${s}`)).toEqual(['malformed', 'protected header is not a JSON object in UTF-8']);
    expect(await malformed(withHeader(await a.ack(), { alg: 'EdDSA', kid: a.kid, typ: 5 }))).toEqual([
      'malformed',
      'protected header typ 5: "JWT" or nothing expected',
    ]);
  });

  it('quotes a value of up to 60 characters whole, and cuts a longer one short', async () => {
    const token = await a.ack();
    const kid58 = 'k'.repeat(58);
    const kid59 = 'k'.repeat(59);
    expect(await check({ payload: toPayload(relabelKid(token, kid58)) })).toEqual([
      'unknown-kid',
      `protected header kid "${kid58}" is not in county.commandKeys (county-2026a)`,
    ]);
    expect(await check({ payload: toPayload(relabelKid(token, kid59)) })).toEqual([
      'unknown-kid',
      `protected header kid "${'k'.repeat(56)}… is not in county.commandKeys (county-2026a)`,
    ]);
  });
});

describe('command gate details: after the signature', () => {
  const signed = async (claims: Record<string, unknown>, kind: 'ack' | 'broadcast' | 'stop' = 'stop') =>
    detail(gate().verify({ kind, audienceTopic: 'village', payload: toPayload(await a.sign(claims)) }));

  it('says a cmd that is not a kind name is not one, whatever its type', async () => {
    expect(await signed(a.claims('ack', { cmd: ['ack'] }), 'ack')).toEqual([
      'invalid-body',
      'cmd: ["ack"] is not one of ack, broadcast, stop, schedule, time',
    ]);
  });

  it('lists every schema problem of a body, each on its own', async () => {
    const [reason, text] = await signed(a.claims('ack', { id: undefined, extra: 1 }), 'ack');
    expect(reason).toBe('invalid-body');
    expect(text.split('; ')).toHaveLength(2);
  });

  it('gives the village time in seconds when a command is not yet valid, and a hint only for an iat in milliseconds', async () => {
    expect(await signed(a.claims('stop', { iat: nowS + 61, exp: nowS + 600 }))).toEqual([
      'not-yet-valid',
      'iat: 61 s in the future, more than the 60 s allowed clock skew (iat 1800000061, now 1800000000)',
    ]);
    const [, atTheLimit] = await signed(a.claims('stop', { iat: 1e11, exp: 1e11 + 600 }));
    expect(atTheLimit).not.toContain('milliseconds');
    const [, overIt] = await signed(a.claims('stop', { iat: 1e11 + 1, exp: 1e11 + 600 }));
    expect(overIt).toContain('iat must be in seconds, not milliseconds');
  });

  it('accepts a broadcast or stop issued exactly the allowed clock skew ahead', async () => {
    // command-gate.test.ts checks this bound with an ack, which is exempt from every time check.
    const stop = a.claims('stop', { iat: nowS + 60, exp: nowS + 600 });
    expect(await gate().verify({ kind: 'stop', audienceTopic: 'village', payload: toPayload(await a.sign(stop)) })).toMatchObject({ ok: true });
  });

  it('counts seconds up to two minutes, then minutes up to two hours, then hours', async () => {
    const expiredAgo = async (s: number) => (await signed(a.claims('stop', { iat: nowS - s - 300, exp: nowS - s })))[1];
    expect(await expiredAgo(119)).toContain('expired 119 s ago');
    expect(await expiredAgo(120)).toContain('expired 2 min ago');
    expect(await expiredAgo(7199)).toContain('expired 120 min ago');
    expect(await expiredAgo(7200)).toContain('expired 2 h ago');
  });

  it('does not cap the lifetime of an ack', async () => {
    const ack = a.claims('ack', { iat: nowS, exp: nowS + 48 * 3600 });
    expect(await gate().verify({ kind: 'ack', audienceTopic: 'village', payload: toPayload(await a.sign(ack)) })).toMatchObject({ ok: true });
  });
});
