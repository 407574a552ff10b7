import { createHmac, createPublicKey, randomUUID } from 'node:crypto';
import { CompactSign, importJWK } from 'jose';
import { generateCountyKeyPair, signCommand, type CommandKeyEntry } from '../../src/county/keys.ts';

/**
 * Signs county commands the way the county does, with sensible defaults (fresh jti, iat now, exp now+300,
 * aud this village; a schedule has no exp, a time message exp now+120 and aud "all") that each test
 * overrides; an override of `undefined` removes the claim. The tamper helpers build the attacks the gate
 * must refuse.
 */

export type Claims = Record<string, unknown>;
export type Overrides = Record<string, unknown>;
export type SignedKind = 'ack' | 'broadcast' | 'stop' | 'schedule' | 'time';

export interface CountySigner {
  readonly kid: string;
  /** What a village puts in `county.commandKeys`. */
  readonly keyEntry: CommandKeyEntry;
  /** The raw 32-byte public key. */
  readonly publicKeyBytes: Buffer;
  ack(overrides?: Overrides): Promise<string>;
  broadcast(overrides?: Overrides): Promise<string>;
  stop(overrides?: Overrides): Promise<string>;
  schedule(overrides?: Overrides): Promise<string>;
  time(overrides?: Overrides): Promise<string>;
  /** The default claims of a command kind with overrides applied, unsigned (to sign later or compare). */
  claims(cmd: SignedKind, overrides?: Overrides): Claims;
  /** Any claims (valid or not), signed as the county signs. */
  sign(claims: Claims): Promise<string>;
  /** Any payload bytes under any protected header, signed with this key: for header and payload attacks. */
  signRaw(payload: Uint8Array, header: Record<string, unknown>): Promise<string>;
}

export async function createCountySigner(options: { villageId: string; kid?: string; now?: () => number }): Promise<CountySigner> {
  const kid = options.kid ?? `county-${randomUUID().slice(0, 8)}`;
  const { privateJwk, publicJwk } = await generateCountyKeyPair(kid);
  const key = await importJWK({ kty: privateJwk.kty, crv: privateJwk.crv, x: privateJwk.x, d: privateJwk.d }, 'EdDSA');
  const now = options.now ?? Date.now;
  const defaults = (cmd: SignedKind): Claims => {
    const iat = Math.floor(now() / 1000);
    const common = { jti: randomUUID(), iat, exp: iat + 300, aud: options.villageId, cmd };
    switch (cmd) {
      case 'ack':
        return { ...common, id: randomUUID() };
      case 'broadcast':
        return {
          ...common,
          priority: 'announcement',
          status: 'actual',
          zones: 'all',
          content: { kind: 'tts', text: '村委会通知：今晚七点在村部开会。' },
        };
      case 'stop':
        return { ...common, target: 'all' };
      case 'schedule':
        return applyOverrides({ ...common, schedule: sampleSchedule(1) }, { exp: undefined });
      case 'time':
        return { ...common, exp: iat + 120, aud: 'all' };
    }
  };
  const claims = (cmd: SignedKind, overrides: Overrides = {}): Claims => applyOverrides(defaults(cmd), overrides);
  const sign = (c: Claims): Promise<string> => signCommand(key, kid, c);
  return {
    kid,
    keyEntry: { kid, x: publicJwk.x },
    publicKeyBytes: Buffer.from(publicJwk.x, 'base64url'),
    ack: (overrides) => sign(claims('ack', overrides)),
    broadcast: (overrides) => sign(claims('broadcast', overrides)),
    stop: (overrides) => sign(claims('stop', overrides)),
    schedule: (overrides) => sign(claims('schedule', overrides)),
    time: (overrides) => sign(claims('time', overrides)),
    claims,
    sign,
    signRaw: (payload, header) => new CompactSign(payload).setProtectedHeader({ alg: 'EdDSA', ...header }).sign(key),
  };
}

/**
 * A schedule document of `programmes` programmes, each with a tts text of `textChars` Chinese characters: 200
 * programmes of 120 characters come to ~100 KB signed, over the general 64 KiB packet cap and well within 256 KiB.
 */
export function sampleSchedule(programmes: number, options: { version?: number; textChars?: number } = {}): Record<string, unknown> {
  const text = '各位村民请注意，今天下午村部组织防汛演练，请大家积极参加，注意安全。'.repeat(60).slice(0, options.textChars ?? 30);
  return {
    version: options.version ?? 1,
    timezone: 'Asia/Shanghai',
    quietHours: { from: '22:00', until: '06:30' },
    programmes: Array.from({ length: programmes }, (_, i) => ({
      id: `programme-${i + 1}`,
      cron: `${i % 60} ${7 + (i % 12)} * * *`,
      zones: i % 3 === 0 ? 'all' : ['square', 'school'],
      content: { kind: 'tts', text: `${i + 1}：${text}` },
    })),
  };
}

function applyOverrides(base: Claims, overrides: Overrides): Claims {
  const out: Claims = { ...base };
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) delete out[name];
    else out[name] = value;
  }
  return out;
}

const b64 = (data: Uint8Array | string): string => Buffer.from(data).toString('base64url');
const json64 = (value: unknown): string => b64(JSON.stringify(value));

/** Splits a compact JWS; throws on anything else (tests only feed it tokens they made). */
export function splitToken(token: string): { header: Record<string, unknown>; payloadSegment: string; signatureSegment: string } {
  const [h, p, s] = token.split('.');
  if (h === undefined || p === undefined || s === undefined) throw new Error(`not a compact JWS: ${token}`);
  return { header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as Record<string, unknown>, payloadSegment: p, signatureSegment: s };
}

/** The same token with one bit of one signature byte flipped (default: the first byte). */
export function flipSignatureByte(token: string, index = 0): string {
  const { signatureSegment } = splitToken(token);
  const sig = Buffer.from(signatureSegment, 'base64url');
  sig[index % sig.length]! ^= 0x01;
  return `${token.slice(0, token.lastIndexOf('.'))}.${b64(sig)}`;
}

/** The token's claims under `alg: none` and an empty signature — "unsecured JWS", the classic bypass. */
export function algNone(token: string, header: Record<string, unknown> = {}): string {
  const { header: original, payloadSegment } = splitToken(token);
  return `${json64({ ...original, alg: 'none', ...header })}.${payloadSegment}.`;
}

/**
 * Alg confusion: the token's claims re-signed with HS256, using the *public* key as the HMAC secret. A
 * verifier that picks the algorithm from the header and hands it "the key" would accept this.
 */
export function hs256WithPublicKey(token: string, publicKeyBytes: Buffer, as: 'raw' | 'x' | 'pem' = 'raw'): string {
  const { header, payloadSegment } = splitToken(token);
  const secret =
    as === 'raw'
      ? publicKeyBytes
      : as === 'x'
        ? Buffer.from(b64(publicKeyBytes))
        : Buffer.from(
            createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64(publicKeyBytes) }, format: 'jwk' }).export({ type: 'spki', format: 'pem' }),
          );
  const signingInput = `${json64({ ...header, alg: 'HS256' })}.${payloadSegment}`;
  return `${signingInput}.${createHmac('sha256', secret).update(signingInput).digest('base64url')}`;
}

/** The token with its protected header replaced (so its signature no longer covers what it carries). */
export function withHeader(token: string, header: Record<string, unknown>): string {
  const { payloadSegment, signatureSegment } = splitToken(token);
  return `${json64(header)}.${payloadSegment}.${signatureSegment}`;
}

/** The token relabelled with another kid: unknown to the village, or a trusted kid over a foreign key. */
export function relabelKid(token: string, kid: string): string {
  return withHeader(token, { ...splitToken(token).header, kid });
}

export const toPayload = (token: string): Buffer => Buffer.from(token, 'latin1');
