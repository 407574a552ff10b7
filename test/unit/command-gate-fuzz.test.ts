import { beforeAll, describe, expect, it } from 'vitest';
import { createCommandGate, commandKinds, type AudienceTopic, type CommandGate, type GateResult } from '../../src/county/command-gate.ts';
import type { CommandKind } from '../../src/county/topics.ts';
import {
  ackCommandSchema,
  broadcastCommandSchema,
  scheduleCommandSchema,
  stopCommandSchema,
  timeCommandSchema,
} from '../../src/contract/payloads.ts';
import {
  algNone,
  createCountySigner,
  flipSignatureByte,
  hs256WithPublicKey,
  relabelKid,
  withHeader,
  type Claims,
  type CountySigner,
} from '../support/county-signer.ts';
import { memoryReplayGuard } from '../support/memory-replay-guard.ts';

/**
 * Property: for any bytes on any command topic, the gate returns (never throws), and accepts only a
 * command genuinely signed by a configured key, for this village, in time, on the right topic, once.
 * Inputs come from a seeded generator (FUZZ_SEED=n to reproduce a run); each case knows whether it was
 * genuinely signed, and signed claims are judged by a small reference model written independently of
 * the gate (the payload schemas plus the audience and time rules, read from the brief).
 */

const village = 'dongcun';
const t0 = 1_800_000_000_000;
const nowS = t0 / 1000;
const skew = 60;
const maxBytes = 4096;
const seed = Number(process.env['FUZZ_SEED'] ?? 20_260_611);

interface Case {
  category: string;
  kind: CommandKind;
  audienceTopic: AudienceTopic;
  payload: unknown;
  /** Claims signed by a trusted key under a well-formed header, or null for anything else. */
  signedClaims: Claims | null;
}

/** mulberry32: small, fast and good enough to spread inputs; seeded so a failure can be replayed. */
function prng(s: number): () => number {
  let state = s >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('command gate: fuzz / property', () => {
  let a: CountySigner;
  let b: CountySigner;
  let forger: CountySigner;
  beforeAll(async () => {
    a = await createCountySigner({ villageId: village, kid: 'county-a', now: () => t0 });
    b = await createCountySigner({ villageId: village, kid: 'county-b', now: () => t0 });
    forger = await createCountySigner({ villageId: village, kid: 'county-a', now: () => t0 });
  });

  it('accepts nothing that is not genuinely valid, throws for nothing, over ≥ 10,000 inputs', { timeout: 60_000 }, async () => {
    const random = prng(seed);
    const int = (n: number) => Math.floor(random() * n);
    const pick = <T>(items: readonly T[]): T => items[int(items.length)] as T;
    const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
    let serial = 0;
    const jti = () => `fuzz-${seed}-${++serial}`;
    const kinds = commandKinds;
    const topics: readonly AudienceTopic[] = ['village', 'all'];

    const randomValue = (depth = 0): unknown => {
      switch (int(depth > 2 ? 6 : 9)) {
        case 0:
          return null;
        case 1:
          return random() < 0.5;
        case 2:
          return pick([0, -1, 1, 1.5, 2 ** 53, -(2 ** 60), 1e308, nowS, nowS + skew + 1, nowS - 1, t0]);
        case 3:
          return pick(['', 'all', village, 'xicun', 'ack', 'broadcast', 'stop', 'emergency', '\u0000', '紧急', 'x'.repeat(300), '__proto__']);
        case 4:
          return bytes(int(12)).toString('latin1');
        case 5:
          return int(1000);
        case 6:
          return Array.from({ length: int(4) }, () => randomValue(depth + 1));
        case 7:
          return Object.fromEntries(
            Array.from({ length: int(4) }, () => [pick(['kind', 'text', 'jti', 'file', 'sha256', 'x']), randomValue(depth + 1)]),
          );
        default:
          return { kind: 'tts', text: pick(['', '通知', 'x'.repeat(2001)]) };
      }
    };
    const fields = [
      'jti',
      'iat',
      'exp',
      'aud',
      'cmd',
      'id',
      'priority',
      'level',
      'status',
      'zones',
      'content',
      'chime',
      'repeat',
      'target',
      'schedule',
      'extra',
    ];
    const mutatedClaims = (): Claims => {
      const cmd = pick(kinds);
      const claims = (random() < 0.5 ? a : b).claims(cmd, { jti: jti(), aud: pick([village, 'all', 'all', 'xicun', 'DongCun']) });
      for (let i = int(4); i > 0; i--) {
        const field = pick(fields);
        if (random() < 0.15) delete claims[field];
        else claims[field] = randomValue();
      }
      if (random() < 0.2) claims['iat'] = nowS + pick([-3600, 0, skew, skew + 1]);
      if (random() < 0.2) claims['exp'] = nowS + pick([-1, 0, 1, 300]);
      return claims;
    };

    // Genuinely valid commands, the "controls"; their mutations must all be refused.
    const controls: Array<{ token: string; kind: CommandKind; audienceTopic: AudienceTopic; claims: Claims }> = [];
    for (let i = 0; i < 300; i++) {
      const kind = pick(kinds);
      const audienceTopic = pick(topics);
      const signer = i % 2 === 0 ? a : b;
      const claims = signer.claims(kind, { jti: jti(), aud: audienceTopic === 'all' ? 'all' : pick([village, 'all']) });
      controls.push({ token: await signer.sign(claims), kind, audienceTopic, claims });
    }

    const cases: Case[] = [];
    const add = (
      category: string,
      payload: unknown,
      kind: CommandKind = pick(kinds),
      audienceTopic: AudienceTopic = pick(topics),
      signedClaims: Claims | null = null,
    ) => cases.push({ category, kind, audienceTopic, payload, signedClaims });
    /** 1–3 bits flipped at distinct positions (two flips of one bit would hand back the genuine token). */
    const mutate = (token: string, flips: number): Buffer => {
      const out = Buffer.from(token, 'latin1');
      const positions = new Set<number>();
      while (positions.size < flips) positions.add(int(out.length));
      for (const position of positions) out[position]! ^= 1 << int(8);
      return out;
    };
    const controlTokens = new Set(controls.map((c) => c.token));

    for (let i = 0; i < 1500; i++) add('random bytes', bytes(random() < 0.9 ? int(400) : int(maxBytes)));
    const b64chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.';
    for (let i = 0; i < 1000; i++)
      add('random base64url and dots', Buffer.from(Array.from({ length: int(300) }, () => pick([...b64chars])).join('')));
    for (let i = 0; i < 1000; i++) {
      const c = pick(controls);
      add('truncated token', Buffer.from(c.token.slice(0, int(c.token.length)), 'latin1'), c.kind, c.audienceTopic);
    }
    for (let i = 0; i < 2000; i++) {
      const c = pick(controls);
      add('bit-flipped token', mutate(c.token, 1 + int(3)), c.kind, c.audienceTopic);
    }
    for (let i = 0; i < 500; i++) {
      const [x, y, z] = [pick(controls), pick(controls), pick(controls)];
      const seg = (t: string, n: number) => t.split('.')[n] ?? '';
      const spliced = `${seg(x.token, 0)}.${seg(y.token, 1)}.${seg(z.token, 2)}`;
      // Every token of one signer has the same header, so a splice can reassemble a genuine token: not an attack.
      if (!controlTokens.has(spliced)) add('spliced segments', Buffer.from(spliced), y.kind, y.audienceTopic);
    }
    for (let i = 0; i < 600; i++) {
      const c = pick(controls);
      const attack = pick(['none', 'hs256', 'kid', 'foreign', 'header', 'sigflip'] as const);
      const token =
        attack === 'none'
          ? algNone(c.token)
          : attack === 'hs256'
            ? hs256WithPublicKey(c.token, a.publicKeyBytes, pick(['raw', 'x', 'pem'] as const))
            : attack === 'kid'
              ? relabelKid(c.token, pick(['county-c', '', '__proto__', 'county-a ', 'COUNTY-A']))
              : attack === 'foreign'
                ? await forger.sign({ ...c.claims, jti: jti() })
                : attack === 'header'
                  ? withHeader(
                      c.token,
                      pick([
                        { alg: 'EdDSA', kid: 'county-a', crit: ['b64'], b64: false },
                        { alg: 'Ed25519', kid: 'county-a' },
                        { alg: ['EdDSA'], kid: 'county-a' },
                        { alg: 'EdDSA', kid: 7 },
                        { alg: 'EdDSA', kid: 'county-a', jku: 'https://evil.example/jwks' },
                      ]),
                    )
                  : flipSignatureByte(c.token, int(64));
      add(`attack: ${attack}`, Buffer.from(token, 'latin1'), c.kind, c.audienceTopic);
    }
    for (let i = 0; i < 2500; i++) {
      const claims = mutatedClaims();
      const kind = random() < 0.8 && kinds.includes(claims['cmd'] as CommandKind) ? (claims['cmd'] as CommandKind) : pick(kinds);
      add('signed mutated claims', Buffer.from(await a.sign(claims)), kind, pick(topics), claims);
    }
    for (let i = 0; i < 200; i++) {
      const body = pick([
        () => '[]',
        () => '"claims"',
        () => '123',
        () => 'null',
        () => '{'.repeat(int(2000)),
        () => `${'['.repeat(1500)}${']'.repeat(1500)}`,
        () => bytes(int(200)).toString('latin1'),
      ])();
      add('signed non-claims', Buffer.from(await a.signRaw(Buffer.from(body, 'latin1'), { kid: a.kid, typ: 'JWT' })));
    }
    for (let i = 0; i < 60; i++) {
      const c = pick(controls);
      const size = pick([maxBytes + 1, maxBytes * 4, 65_536, 1_048_576]);
      add('huge', random() < 0.5 ? Buffer.concat([Buffer.from(c.token), Buffer.alloc(size, 0x41)]) : bytes(size), c.kind, c.audienceTopic);
    }
    for (let i = 0; i < 200; i++) {
      const payload = pick<unknown>([
        null,
        undefined,
        0,
        'a.b.c',
        pick(controls).token,
        {},
        [],
        new ArrayBuffer(8),
        new Uint16Array(4),
        { length: 3 },
      ]);
      add('wrong types', payload);
      add(
        'wrong topic values',
        Buffer.from(pick(controls).token),
        pick(['', 'Ack', 'cmd', '__proto__']) as CommandKind,
        pick(['', 'both', 'ALL']) as AudienceTopic,
      );
    }
    // The controls themselves, each then sent a second time: accepted once, refused as replayed (acks, time
    // messages and schedules, which the replay guard does not cover, are accepted again).
    for (const c of controls) add('control', Buffer.from(c.token), c.kind, c.audienceTopic, c.claims);
    for (const c of controls) add('control replayed', Buffer.from(c.token), c.kind, c.audienceTopic, c.claims);

    const replay = memoryReplayGuard();
    const gate: CommandGate = createCommandGate({
      villageId: village,
      keys: [a.keyEntry, b.keyEntry],
      maxClockSkewSeconds: skew,
      maxBytes,
      replay,
      now: () => t0,
    });
    const accepted = new Set<string>();
    const wrongVerdicts: string[] = [];
    const byCategory = new Map<string, { n: number; accepted: number; reasons: Map<string, number> }>();
    let throws = 0;

    const started = performance.now();
    for (const c of cases) {
      let result: GateResult;
      try {
        result = await gate.verify({ kind: c.kind, audienceTopic: c.audienceTopic, payload: c.payload as Buffer });
      } catch (error) {
        throws++;
        wrongVerdicts.push(`${c.category}: threw ${String(error)}`);
        continue;
      }
      const expected = c.signedClaims !== null && referenceAccepts(c.signedClaims, c.kind, c.audienceTopic, accepted);
      if (result.ok !== expected)
        wrongVerdicts.push(
          `${c.category}: ${result.ok ? 'accepted' : `refused (${result.reason}: ${result.detail})`}, expected ${expected ? 'accepted' : 'refused'} — ${JSON.stringify(c.signedClaims)?.slice(0, 300)}`,
        );
      // Only broadcasts and stops are remembered: acks, schedules and time messages may come again.
      if (result.ok) {
        if (result.command.kind === 'broadcast' || result.command.kind === 'stop') accepted.add(result.command.claims.jti);
      }
      // Claims whose signature did not check out are never reported back as if they were the county's.
      else if (c.signedClaims === null && !c.category.startsWith('signed') && result.jti !== null)
        wrongVerdicts.push(`${c.category}: echoed unverified jti ${result.jti}`);
      const stats = byCategory.get(c.category) ?? { n: 0, accepted: 0, reasons: new Map<string, number>() };
      stats.n++;
      const verdict = result.ok ? 'accepted' : result.reason;
      stats.reasons.set(verdict, (stats.reasons.get(verdict) ?? 0) + 1);
      if (result.ok) stats.accepted++;
      byCategory.set(c.category, stats);
    }
    const elapsedMs = performance.now() - started;

    console.log(`  fuzz seed ${seed}: ${cases.length} inputs in ${elapsedMs.toFixed(0)} ms, ${accepted.size} accepted, ${throws} threw`);
    for (const [category, s] of byCategory)
      console.log(`    ${category.padEnd(22)} ${String(s.n).padStart(5)}: ${[...s.reasons].map(([r, n]) => `${r} ${n}`).join(', ')}`);
    expect(wrongVerdicts.slice(0, 10)).toEqual([]);
    expect(throws).toBe(0);
    expect(cases.length).toBeGreaterThanOrEqual(10_000);
    // Everything accepted was a control or a signed claim set the reference model accepts; all controls got in, once.
    expect(byCategory.get('control')?.accepted).toBe(controls.length);
    expect(byCategory.get('control replayed')?.accepted).toBe(controls.filter((c) => c.kind !== 'broadcast' && c.kind !== 'stop').length);
    expect(byCategory.get('signed mutated claims')?.accepted).toBeGreaterThan(50);
    expect(elapsedMs).toBeLessThan(10_000);
  });
});

/** The rules as the brief states them (plus: exp after iat), written without reference to the gate's code. */
function referenceAccepts(claims: Claims, kind: CommandKind, audienceTopic: AudienceTopic, accepted: Set<string>): boolean {
  const schemas = new Map<unknown, { safeParse(value: unknown): { success: boolean } }>([
    ['ack', ackCommandSchema],
    ['broadcast', broadcastCommandSchema],
    ['stop', stopCommandSchema],
    ['schedule', scheduleCommandSchema],
    ['time', timeCommandSchema],
  ]);
  const schema = schemas.get(claims['cmd']);
  if (schema === undefined || !schema.safeParse(JSON.parse(JSON.stringify(claims))).success) return false;
  const { jti, iat, exp, aud, cmd } = claims as { jti: string; iat: number; exp?: number; aud: string; cmd: string };
  // A schedule alone may come without exp.
  if (exp !== undefined && exp <= iat) return false;
  // Acks are never refused for time: one can only close an alarm this village raised.
  if (cmd !== 'ack' && exp !== undefined && exp <= nowS) return false;
  // Time messages and schedules may be issued ahead of the village's clock: a stale clock is what they meet.
  if ((cmd === 'broadcast' || cmd === 'stop') && iat > nowS + skew) return false;
  // Everything but acks and schedules lives at most a day (county.maxCommandLifetimeSeconds' default).
  if (cmd !== 'ack' && cmd !== 'schedule' && exp !== undefined && exp - iat > 24 * 3600) return false;
  if (cmd !== kind) return false;
  if (audienceTopic === 'all' ? aud !== 'all' : aud !== village && aud !== 'all') return false;
  // Broadcasts and stops are accepted once per jti; the rest are idempotent and exempt from the replay guard.
  return (cmd !== 'broadcast' && cmd !== 'stop') || !accepted.has(jti);
}
