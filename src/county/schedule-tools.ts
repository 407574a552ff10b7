import { createPublicKey, randomUUID, verify as cryptoVerify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as z from 'zod';
import { scheduleCommandSchema, timeCommandSchema, type ScheduleCommand } from '../contract/payloads.ts';
import { scheduleDocumentSchema, type Programme } from '../contract/schedule.ts';
import { describeIssues, InvalidInputError } from '../platform/schema-errors.ts';
import { commandId, connectOnce, type BrokerOptions } from './county-tools.ts';
import { loadPrivateKey, signCommand, type CountySigningKey } from './keys.ts';
import { villageTopics } from './topics.ts';

/**
 * The county side of the retained `cmd/schedule` and `cmd/time` messages: `village-edge schedule` checks,
 * signs and publishes a schedule document, or shows what a village would run; `village-edge county time`
 * publishes the county's time. Problems with what the operator gave are InvalidInputError, its `source`
 * the input at fault (`document`, `village`, `key`), so the command line can name the flag.
 */

/** `county.maxScheduleBytes`' default: a bigger document is refused by every village left at it. */
export const DEFAULT_MAX_SCHEDULE_BYTES = 262_144;
/** A time message lives this long: refreshed at least every minute, its retained copy never lapses. */
const TIME_LIFETIME_SECONDS = 120;
/** How long `--show` waits for retained copies after subscribing, unless both topics have answered sooner. */
const SHOW_WAIT_MS = 2000;
/** A village id is a topic level: the config's rule for it. */
const villageIdSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "-" and "_" only (it is a topic level)');

/** Checks a schedule document, signs it for one village (or `all`) and publishes it retained, QoS 1. */
export async function publishSchedule(options: {
  broker: BrokerOptions;
  keyFile: string;
  /** A village id, or `all`. */
  audience: string;
  /** The document as read from its file: checked here, before anything is signed. */
  document: unknown;
  now?: () => number;
}): Promise<{ jti: string; topic: string; version: number; programmes: number; bytes: number }> {
  // First, so a county operator gets `programmes[3].cron: …`, not a village's rejection report.
  const parsed = scheduleDocumentSchema.safeParse(options.document);
  if (!parsed.success) throw new InvalidInputError('document', describeIssues(parsed.error, '', scheduleDocumentSchema));
  const audience = options.audience === 'all' ? 'all' : checkedVillage(options.audience);
  const signing = await signingKey(options.keyFile);
  const iat = Math.floor((options.now ?? Date.now)() / 1000);
  // No exp: a retained schedule is valid by its version, until a higher one replaces it.
  const claims = { jti: commandId('county', iat), iat, aud: audience, cmd: 'schedule', schedule: parsed.data };
  const checked = scheduleCommandSchema.safeParse(claims);
  if (!checked.success) throw new InvalidInputError('document', describeIssues(checked.error));
  const token = await signCommand(signing.key, signing.kid, claims);
  const topic = villageTopics(options.broker.prefix, audience).topic(audience === 'all' ? 'scheduleAll' : 'schedule');
  await publishRetained(options.broker, 'county-schedule', topic, token);
  return { jti: claims.jti, topic, version: parsed.data.version, programmes: parsed.data.programmes.length, bytes: Buffer.byteLength(token) };
}

/** Signs the county's time (`exp` = `iat` + 120 s) and publishes it retained on `{prefix}/all/cmd/time`. */
export async function publishTime(options: {
  broker: BrokerOptions;
  keyFile: string;
  now?: () => number;
}): Promise<{ jti: string; topic: string; iat: number }> {
  return sendTime(options.broker, await signingKey(options.keyFile), options.now ?? Date.now);
}

/**
 * `county time --every`: publishes the time every `everySeconds` until `signal` aborts, as a county service
 * would; a broker that is away is said once and tried again at the next turn, not fatal.
 */
export async function keepTime(options: {
  broker: BrokerOptions;
  keyFile: string;
  everySeconds: number;
  signal: AbortSignal;
  print: (line: string) => void;
  now?: () => number;
}): Promise<void> {
  const signing = await signingKey(options.keyFile);
  const now = options.now ?? Date.now;
  let published = false;
  let failure: string | undefined;
  while (!options.signal.aborted) {
    try {
      const { topic, iat } = await sendTime(options.broker, signing, now);
      // The first publish and the first after a failure: a line a minute would bury the journal.
      if (!published || failure !== undefined)
        options.print(`published the time (iat ${iat}) to ${topic}, retained; again every ${options.everySeconds} s until stopped`);
      published = true;
      failure = undefined;
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      if (text !== failure) options.print(`time not published: ${text}; trying again in ${options.everySeconds} s`);
      failure = text;
    }
    await sleep(options.everySeconds * 1000, undefined, { signal: options.signal }).catch(() => undefined);
  }
}

/**
 * The schedule a village runs, from the retained messages on its own topic and (if none) the one for all
 * villages: version, where from, who signed it, time zone, quiet hours and one line per programme. With a
 * public key (keygen's `.public.jwk.json`, or a `{kid, x}` entry) it also says whether the signature verifies.
 */
export async function showSchedule(options: {
  broker: BrokerOptions;
  village: string;
  publicKeyFile?: string;
  /** How long to wait for retained copies; default 2 s (less when both topics answer sooner). */
  waitMs?: number;
}): Promise<{ found: boolean; lines: string[] }> {
  const village = checkedVillage(options.village);
  const publicKey = options.publicKeyFile === undefined ? undefined : readPublicKey(options.publicKeyFile);
  const topics = villageTopics(options.broker.prefix, village);
  const own = topics.topic('schedule');
  const shared = topics.topic('scheduleAll');
  const retained = await readRetained(options.broker, [own, shared], options.waitMs ?? SHOW_WAIT_MS);
  const running = retained.get(own) ?? retained.get(shared);
  if (running === undefined) return { found: false, lines: [`no schedule retained on ${own} or ${shared}`] };
  const from = retained.has(own) ? own : shared;
  const lines = describeRetained(from, from === own ? `${village}'s own` : `every village without its own`, running, publicKey);
  const other = retained.get(shared);
  if (from === own && other !== undefined) {
    const version = decodeSchedule(other);
    lines.push(
      `also retained on ${shared}: ${typeof version === 'string' ? `not a valid schedule (${version})` : `version ${version.claims.schedule.version}`}, not used by ${village} while its own is retained`,
    );
  }
  return { found: true, lines };
}

async function sendTime(broker: BrokerOptions, signing: CountySigningKey, now: () => number): Promise<{ jti: string; topic: string; iat: number }> {
  const iat = Math.floor(now() / 1000);
  const claims = timeCommandSchema.parse({ jti: commandId('time', iat), iat, exp: iat + TIME_LIFETIME_SECONDS, aud: 'all', cmd: 'time' });
  const token = await signCommand(signing.key, signing.kid, claims);
  const topic = villageTopics(broker.prefix, 'all').topic('timeAll');
  await publishRetained(broker, 'county-time', topic, token);
  return { jti: claims.jti, topic, iat };
}

function checkedVillage(village: string): string {
  const parsed = villageIdSchema.safeParse(village);
  if (!parsed.success)
    throw new InvalidInputError('village', [`${JSON.stringify(village)}: ${parsed.error.issues.map((i) => i.message).join('; ')}`]);
  return parsed.data;
}

async function signingKey(keyFile: string): Promise<CountySigningKey> {
  try {
    return await loadPrivateKey(keyFile);
  } catch (error) {
    // The file given is the operator's to fix: named, with what is wrong with it.
    throw new InvalidInputError('key', [error instanceof Error ? error.message : String(error)]);
  }
}

async function publishRetained(broker: BrokerOptions, role: string, topic: string, token: string): Promise<void> {
  const client = await connectOnce(broker, `${role}-${randomUUID().slice(0, 8)}`);
  try {
    await client.publishAsync(topic, token, { qos: 1, retain: true });
  } finally {
    await client.endAsync();
  }
}

/** The retained payloads of `topics` (empty ones, deleted retained messages, left out). */
async function readRetained(broker: BrokerOptions, topics: string[], waitMs: number): Promise<Map<string, Buffer>> {
  const client = await connectOnce(broker, `county-show-${randomUUID().slice(0, 8)}`);
  try {
    const retained = new Map<string, Buffer>();
    let allHere = (): void => {};
    client.on('message', (topic, payload) => {
      if (payload.length === 0 || !topics.includes(topic)) return;
      retained.set(topic, payload);
      if (retained.size === topics.length) allHere();
    });
    await client.subscribeAsync(Object.fromEntries(topics.map((t) => [t, { qos: 1 as const }])));
    // MQTT says no more than that retained copies come after the subscription; a topic without one says
    // nothing at all, so the wait ends when every topic has answered or after a short while.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, waitMs);
      allHere = () => {
        clearTimeout(timer);
        resolve();
      };
      if (retained.size === topics.length) allHere();
    });
    return retained;
  } finally {
    await client.endAsync();
  }
}

interface Decoded {
  header: Record<string, unknown>;
  claims: ScheduleCommand;
  signingInput: Buffer;
  signature: Buffer;
}

/** The schedule inside a compact JWS, unverified (for display), or what is wrong with it. */
function decodeSchedule(payload: Buffer): Decoded | string {
  const token = payload.toString('latin1');
  const parts = token.split('.');
  if (parts.length !== 3) return `not a compact JWS (${parts.length - 1} dots, 2 expected)`;
  const [headerText, claimsText, signatureText] = parts as [string, string, string];
  let header: unknown;
  let claims: unknown;
  try {
    header = JSON.parse(Buffer.from(headerText, 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(claimsText, 'base64url').toString('utf8'));
  } catch (error) {
    return `not JSON inside (${error instanceof Error ? error.message : String(error)})`;
  }
  if (typeof header !== 'object' || header === null) return 'its header is not a JSON object';
  const parsed = scheduleCommandSchema.safeParse(claims);
  if (!parsed.success) return describeIssues(parsed.error).join('; ');
  return {
    header: header as Record<string, unknown>,
    claims: parsed.data,
    signingInput: Buffer.from(`${headerText}.${claimsText}`, 'latin1'),
    signature: Buffer.from(signatureText, 'base64url'),
  };
}

interface PublicKey {
  kid: string;
  x: string;
  file: string;
}

const publicKeyFileSchema = z.object({ kid: z.string().min(1), x: z.string().regex(/^[A-Za-z0-9_-]{43}$/, '32 bytes, base64url') });

function readPublicKey(path: string): PublicKey {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new InvalidInputError('public-key', [`${path}: cannot read it as JSON (${error instanceof Error ? error.message : String(error)})`]);
  }
  if (typeof json === 'object' && json !== null && 'd' in json)
    throw new InvalidInputError('public-key', [`${path} is a PRIVATE key: give the public one (.public.jwk.json)`]);
  const parsed = publicKeyFileSchema.safeParse(json);
  if (!parsed.success) throw new InvalidInputError('public-key', [`${path}: ${describeIssues(parsed.error).join('; ')}`]);
  return { ...parsed.data, file: basename(path) };
}

function describeRetained(topic: string, whose: string, payload: Buffer, publicKey: PublicKey | undefined): string[] {
  const decoded = decodeSchedule(payload);
  if (typeof decoded === 'string') return [`${topic} (${whose}) holds a message that is not a valid schedule: ${decoded}`];
  const { claims, header } = decoded;
  const { schedule } = claims;
  const kid = typeof header['kid'] === 'string' ? header['kid'] : '(none)';
  const expires = claims.exp === undefined ? '' : `, expires ${isoSeconds(claims.exp)}`;
  return [
    `schedule version ${schedule.version} from ${topic} (${whose}), for ${claims.aud}`,
    `signed by kid ${kid}, issued ${isoSeconds(claims.iat)}${expires}, jti ${claims.jti}; ${signatureVerdict(decoded, kid, publicKey)}`,
    `timezone ${schedule.timezone}, quiet hours ${schedule.quietHours.from}–${schedule.quietHours.until}`,
    `${schedule.programmes.length} programme(s)${schedule.programmes.length === 0 ? '' : ':'}`,
    ...schedule.programmes.map(programmeLine),
  ];
}

function signatureVerdict(decoded: Decoded, kid: string, publicKey: PublicKey | undefined): string {
  if (publicKey === undefined) return 'signature not checked (give --public-key FILE to check it)';
  if (publicKey.kid !== kid) return `signature NOT checked: ${publicKey.file} is kid ${publicKey.kid}, not ${kid}`;
  try {
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: publicKey.x }, format: 'jwk' });
    return decoded.header['alg'] === 'EdDSA' && cryptoVerify(null, decoded.signingInput, key, decoded.signature)
      ? `signature verified with ${publicKey.file}`
      : `signature DOES NOT VERIFY with ${publicKey.file}: villages refuse it`;
  } catch (error) {
    return `signature could not be checked with ${publicKey.file} (${error instanceof Error ? error.message : String(error)})`;
  }
}

/** `id  cron  zones  content`, then what differs from the defaults. */
function programmeLine(p: Programme): string {
  const zones = p.zones === 'all' ? 'all zones' : `zones ${p.zones.join(',')}`;
  const content =
    p.content.kind === 'tts'
      ? `tts "${p.content.text.length > 24 ? `${p.content.text.slice(0, 24)}…` : p.content.text}" (${p.content.text.length} chars)`
      : `media ${mediaName(p.content.url)} (${p.content.size} bytes, sha256 ${p.content.sha256.slice(0, 12)}…)`;
  const extras = [
    p.volume === undefined ? undefined : `volume ${p.volume}`,
    p.repeat === 1 ? undefined : `repeat ${p.repeat}`,
    p.chime ? 'chime' : undefined,
    p.validFrom === undefined ? undefined : `from ${p.validFrom}`,
    p.validUntil === undefined ? undefined : `until ${p.validUntil}`,
    p.dates === undefined || p.dates.except.length === 0 ? undefined : `except ${p.dates.except.length} day(s)`,
  ].filter((e) => e !== undefined);
  return `  ${p.id}  "${p.cron}"  ${zones}  ${content}${extras.length === 0 ? '' : `  ${extras.join(', ')}`}`;
}

function mediaName(url: string): string {
  try {
    return decodeURIComponent(new URL(url).pathname.split('/').pop() ?? url);
  } catch {
    return url;
  }
}

function isoSeconds(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}
