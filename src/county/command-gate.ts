import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import type * as z from 'zod';
import { describeIssues, InvalidInputError } from '../platform/schema-errors.ts';
import type { ReplayGuard } from '../store/types.ts';
import { ed25519PublicKeyProblem } from '../platform/ed25519-public-key.ts';
import {
  ackCommandSchema,
  broadcastCommandSchema,
  scheduleCommandSchema,
  stopCommandSchema,
  timeCommandSchema,
  type AckCommand,
  type BroadcastCommand,
  type ScheduleCommand,
  type StopCommand,
  type TimeCommand,
} from '../contract/payloads.ts';
import type { CommandKind } from './topics.ts';

/**
 * The only way a county command gets into the village: every county→village message (broadcast, stop,
 * ack, schedule, time) is a compact JWS signed with EdDSA (Ed25519) by a key in `county.commandKeys`. The checks run in
 * a fixed order, cheapest and least trusting first, and the jti is remembered only after everything else
 * passed, so a forged or misaddressed copy can never burn the id of a real command:
 *
 *   size → structure → alg → kid → signature → claims/schema → time → audience → replay
 *
 * Each kind takes the time and replay checks its `checksOf` row says, each exemption with its reason.
 * The checks up to the kid cost no crypto and run at arrival, so junk that cannot be verified is refused
 * at once and never waits in (or lengthens) a queue. What needs the signature check waits in one of two
 * queues, and acks go first, so a flood on the command topics cannot hold back the acks that close alarms.
 */

/** In check order; `replay-guard-failed`: the command was good but could not be recorded, so it is refused. */
export const rejectReasons = [
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
] as const;
export type RejectReason = (typeof rejectReasons)[number];

/** Which of the checks after the signature a kind takes (size, structure, signature, body and audience: every kind). */
interface KindChecks {
  /** Refused once `exp` has passed (a schedule only when it carries an `exp`). */
  expiry: boolean;
  /** Refused for an `iat` more than the allowed clock skew ahead of the village's clock. */
  notBefore: boolean;
  /** Refused for an `exp` further after `iat` than `maxLifetimeSeconds`. */
  lifetimeCap: boolean;
  /** Its jti accepted once: remembered (an fsync) until `exp`. */
  replayGuard: boolean;
}

/** Keyed by CommandKind, so a kind added in topics.ts fails to compile here until the gate knows its checks. */
const checksOf: Record<CommandKind, KindChecks> = {
  // An ack can only close an alarm this village raised (ids are unique), so its times add nothing, and judging them
  // would let a village clock minutes behind refuse every ack; a replay can only re-ack, and remembering each would
  // cost an fsync per ack: ~280/s here, far below what draining an outage backlog needs.
  ack: { expiry: false, notBefore: false, lifetimeCap: false, replayGuard: false },
  broadcast: { expiry: true, notBefore: true, lifetimeCap: true, replayGuard: true },
  stop: { expiry: true, notBefore: true, lifetimeCap: true, replayGuard: true },
  schedule: {
    expiry: true,
    // A Pi that booted with a stale clock must still take its schedule, which is signed long before it arrives.
    notBefore: false,
    // A retained document lives until the next version replaces it, not for a command's short lifetime.
    lifetimeCap: false,
    // The broker hands the retained copy again on every reconnect: version order (the schedule registry) is the replay defence.
    replayGuard: false,
  },
  time: {
    expiry: true,
    // An iat ahead of the village's clock is exactly what a time message is there to correct.
    notBefore: false,
    lifetimeCap: true,
    // Idempotent: the trusted clock's floor only moves forward, so a replay changes nothing (and costs no fsync).
    replayGuard: false,
  },
};
export const commandKinds = Object.keys(checksOf) as readonly CommandKind[];

/** `village`: the topic of this village; `all`: the topic the county uses to reach every village at once. */
export type AudienceTopic = 'village' | 'all';

/** The claims of each command kind once verified; keyed by CommandKind, so a new kind fails to compile until it has claims. */
export interface CommandClaims {
  ack: AckCommand;
  broadcast: BroadcastCommand;
  stop: StopCommand;
  schedule: ScheduleCommand;
  time: TimeCommand;
}

export type VerifiedCommand = { [K in CommandKind]: { kind: K; claims: CommandClaims[K] } }[CommandKind];

export type GateResult =
  | { ok: true; command: VerifiedCommand }
  /** `jti` only when the signature checked out: unverified claims are never echoed as if they were real. */
  | { ok: false; reason: RejectReason; detail: string; jti: string | null };

export interface GateInput {
  kind: CommandKind;
  audienceTopic: AudienceTopic;
  payload: Buffer;
  /** Set when the link discarded a payload this big unread (over its packet cap); `payload` is then empty. */
  discardedBytes?: number;
}

export interface CommandGate {
  /**
   * Never throws and never rejects, whatever the bytes. Broadcasts and stops that pass the checks before
   * the signature settle in the order of the calls, so a `stop` that arrives just after its broadcast is
   * never handled before it; a rejection before the signature check settles at once, and acks settle in
   * their own order, ahead of broadcasts and stops still waiting.
   */
  verify(input: GateInput): Promise<GateResult>;
}

export interface CommandGateOptions {
  villageId: string;
  /** `county.commandKeys`: raw Ed25519 public keys (`x`, base64url) by `kid`; several during a rotation. */
  keys: ReadonlyArray<{ kid: string; x: string }>;
  maxClockSkewSeconds: number;
  /** Longest `exp - iat` of a broadcast, stop or time message (default 24 h). */
  maxLifetimeSeconds?: number;
  /** Largest payload of every kind but `schedule`. */
  maxBytes: number;
  /** Largest `schedule` payload (default 256 KiB, `county.maxScheduleBytes`): a document of a few hundred programmes. */
  maxScheduleBytes?: number;
  replay: ReplayGuard;
  /** Epoch milliseconds. */
  now?: () => number;
}

const ALL_VILLAGES = 'all';
const DEFAULT_MAX_SCHEDULE_BYTES = 256 * 1024;
/** Signature checks per turn of the event loop: a few on a Pi (~0.5 ms each), so polls and acks are not kept waiting. */
const SLICE_MS = 4;
const ALGORITHM = 'EdDSA';
/** Anything else (`crit`, `b64`, `jwk`, `jku`, `x5u`…) changes how a JWS is read; our county never sends it. */
const allowedHeaderMembers: ReadonlySet<string> = new Set(['alg', 'kid', 'typ']);
const base64urlSegment = /^[A-Za-z0-9_-]*$/;
const jtiSchema = ackCommandSchema.shape.jti;
const utf8 = new TextDecoder('utf-8', { fatal: true });

type Rejection = Extract<GateResult, { ok: false }>;
type JsonRecord = Record<string, unknown>;

/** Throws InvalidInputError naming `county.commandKeys[i]…` for a key that must not be trusted or cannot work. */
export function createCommandGate(options: CommandGateOptions): CommandGate {
  const keys = importKeys(options.keys);
  const now = options.now ?? Date.now;
  const skewMs = options.maxClockSkewSeconds * 1000;
  const maxLifetimeSeconds = options.maxLifetimeSeconds ?? 24 * 3600;
  const maxScheduleBytes = options.maxScheduleBytes ?? DEFAULT_MAX_SCHEDULE_BYTES;
  // Signature checks wait in two queues and run in slices between turns of the event loop, so the socket is
  // read between slices and an ack that arrives in the middle of a flood is checked next. Acks close alarms,
  // and one can only close an alarm this village raised, so they need no order against commands; broadcasts
  // and stops keep theirs (a stop is never handled before the broadcast it stops).
  const waiting: Record<'ack' | 'command', Fifo<Waiting>> = { ack: new Fifo(), command: new Fifo() };
  // The retained schedule comes again on every reconnect, byte for byte: its signature and schema (node-cron
  // parses each programme: ~35 ms for 200 here, several times that on a Pi) are not checked again for the
  // last accepted copy of each topic; its time and audience are.
  const lastSchedule: Partial<Record<AudienceTopic, { token: string; command: VerifiedCommand }>> = {};
  let turnScheduled = false;
  return {
    verify(input) {
      const early = safely(() => precheck(input));
      if (!('token' in early)) return Promise.resolve(early);
      return new Promise((settle) => {
        waiting[input.kind === 'ack' ? 'ack' : 'command'].push({ input, signable: early, settle });
        scheduleTurn();
      });
    },
  };

  function scheduleTurn(): void {
    if (turnScheduled) return;
    turnScheduled = true;
    setImmediate(turn);
  }

  function turn(): void {
    turnScheduled = false;
    const until = performance.now() + SLICE_MS;
    do {
      const next = waiting.ack.shift() ?? waiting.command.shift();
      if (next === undefined) return;
      next.settle(safely(() => check(next.input, next.signable)));
    } while (performance.now() < until);
    scheduleTurn();
  }

  function safely<T>(run: () => T | Rejection): T | Rejection {
    try {
      return run();
    } catch (error) {
      // Every step below is meant to return, not throw; this is the seatbelt for "never throws".
      return reject('malformed', `could not be checked (${error instanceof Error ? error.message : String(error)})`);
    }
  }

  /** Everything before the signature: no crypto, no await, so it can run the moment a message arrives. */
  function precheck(input: GateInput): Signable | Rejection {
    const { kind, audienceTopic, payload, discardedBytes } = input;
    if (discardedBytes !== undefined)
      return reject('oversized', `payload of ${discardedBytes} bytes, over the link's packet limit, was discarded unread`);
    if (!(payload instanceof Uint8Array)) return reject('malformed', 'payload is not a byte buffer');
    if (!isKind(kind) || (audienceTopic !== 'village' && audienceTopic !== ALL_VILLAGES))
      return reject('malformed', `unknown topic: kind ${quote(kind)}, audience ${quote(audienceTopic)}`);

    const maxBytes = kind === 'schedule' ? maxScheduleBytes : options.maxBytes;
    if (payload.length > maxBytes) return reject('oversized', `payload is ${payload.length} bytes, over the ${maxBytes}-byte limit`);

    const parts = splitCompact(payload);
    if (typeof parts === 'string') return reject('malformed', parts);

    if (parts.header['alg'] !== ALGORITHM)
      return reject('unsupported-alg', `protected header alg ${quote(parts.header['alg'])}: only ${ALGORITHM} (Ed25519) is accepted`);

    const kid = parts.header['kid'];
    if (typeof kid !== 'string') return reject('unknown-kid', `protected header kid ${quote(kid)}: a key id is required`);
    const key = keys.get(kid);
    if (key === undefined)
      return reject(
        'unknown-kid',
        `protected header kid ${quote(kid)} is not in county.commandKeys (${[...keys.keys()].join(', ') || 'none configured'})`,
      );
    return { token: parts.token, key };
  }

  function check(input: GateInput, signable: Signable): GateResult {
    const cached = input.kind === 'schedule' ? lastSchedule[input.audienceTopic] : undefined;
    const command = cached?.token === signable.token ? cached.command : verifiedBody(signable);
    if ('ok' in command) return command;
    const result = judge(input, command);
    if (result.ok && input.kind === 'schedule') lastSchedule[input.audienceTopic] = { token: signable.token, command };
    return result;
  }

  /** Signature, then claims and schema: the same for the same bytes, whenever they come. */
  function verifiedBody({ token, key }: Signable): VerifiedCommand | Rejection {
    const signed = verifySignature(token, key);
    if (typeof signed === 'string') return reject('bad-signature', signed);
    const claims = parseObject(signed);
    if (claims === undefined) return reject('malformed', 'signed payload is not a JSON object');

    // From here on the claims are the county's own words, so the jti may be reported back.
    const jti = jtiSchema.safeParse(claims['jti']).success ? String(claims['jti']) : null;
    const refuse = (reason: RejectReason, detail: string): Rejection => ({ ok: false, reason, detail, jti });

    const cmd = claims['cmd'];
    if (!isKind(cmd)) return refuse('invalid-body', `cmd: ${quote(cmd)} is not one of ${commandKinds.join(', ')}`);
    const command = parseCommand(cmd, claims);
    return typeof command === 'string' ? refuse('invalid-body', command) : command;
  }

  /** Time, audience and replay: what depends on the moment and the topic it came by. */
  function judge({ kind, audienceTopic }: GateInput, command: VerifiedCommand): GateResult {
    const refuse = (reason: RejectReason, detail: string): Rejection => ({ ok: false, reason, detail, jti: command.claims.jti });
    const cmd = command.kind;
    const { iat, exp, aud } = command.claims;
    if (exp !== undefined && exp <= iat) return refuse('invalid-body', `exp: ${exp} is not after iat ${iat}`);

    const at = now();
    const checks = checksOf[command.kind];
    if (checks.expiry && exp !== undefined && exp * 1000 <= at)
      return refuse('expired', `exp: expired ${ago(at - exp * 1000)} ago (exp ${exp}, now ${Math.floor(at / 1000)})`);
    if (checks.notBefore && iat * 1000 - at > skewMs)
      return refuse(
        'not-yet-valid',
        `iat: ${ago(iat * 1000 - at)} in the future, more than the ${options.maxClockSkewSeconds} s allowed clock skew (iat ${iat}, now ${Math.floor(at / 1000)}${iat > 1e11 ? '; iat must be in seconds, not milliseconds' : ''})`,
      );
    // A long-lived capture is a long-lived replay: with trusted time resting on the newest iat seen, the cap
    // bounds how old a command may be and still play.
    if (checks.lifetimeCap && exp !== undefined && exp - iat > maxLifetimeSeconds)
      return refuse(
        'invalid-body',
        `exp: ${ago((exp - iat) * 1000)} after iat, longer than the ${ago(maxLifetimeSeconds * 1000)} a command may live (county.maxCommandLifetimeSeconds)`,
      );

    if (cmd !== kind) return refuse('wrong-audience', `cmd: a ${quote(cmd)} command arrived on the ${kind} topic`);
    if (audienceTopic === ALL_VILLAGES && aud !== ALL_VILLAGES)
      return refuse('wrong-audience', `aud: ${quote(aud)} on the topic for all villages, where only "all" is accepted`);
    if (aud !== options.villageId && aud !== ALL_VILLAGES)
      return refuse('wrong-audience', `aud: ${quote(aud)} is neither this village (${quote(options.villageId)}) nor "all"`);

    if (!checks.replayGuard) return { ok: true, command };
    // Last, and only now: a copy refused for any other reason must not burn the real command's jti.
    let fresh: boolean;
    try {
      // Every kind the guard covers requires exp; without one, a jti would be remembered for good.
      fresh = options.replay.remember(command.claims.jti, exp === undefined ? Number.MAX_SAFE_INTEGER : exp * 1000, at);
    } catch (error) {
      return refuse(
        'replay-guard-failed',
        `jti could not be recorded, so the command is refused: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    if (!fresh) return refuse('replayed', `jti: ${quote(command.claims.jti)} was already accepted and has not expired`);
    return { ok: true, command };
  }
}

function reject(reason: RejectReason, detail: string): Rejection {
  return { ok: false, reason, detail, jti: null };
}

function importKeys(entries: CommandGateOptions['keys']): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>();
  entries.forEach((entry, i) => {
    const field = `county.commandKeys[${i}]`;
    if (keys.has(entry.kid)) throw new InvalidInputError(`${field}.kid`, [`duplicate kid ${quote(entry.kid)}`]);
    const problem = keyProblem(entry.x);
    if (problem !== undefined) throw new InvalidInputError(`${field}.x`, [`${problem} (kid ${quote(entry.kid)})`]);
    // node:crypto imports synchronously, so a bad key stops construction; jose verifies with a KeyObject as it would with importJWK's CryptoKey.
    keys.set(entry.kid, createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: entry.x }, format: 'jwk' }));
  });
  return keys;
}

function keyProblem(x: string): string | undefined {
  const bytes = decodeSegment(x);
  if (bytes === undefined) return 'is not canonical base64url';
  return ed25519PublicKeyProblem(bytes);
}

interface Waiting {
  input: GateInput;
  signable: Signable;
  settle: (result: GateResult) => void;
}

/** A queue that stays O(1) per message however long a flood makes it (Array#shift copies the rest). */
class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head === this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    }
    return item;
  }
}

interface Signable {
  token: string;
  key: KeyObject;
}

interface CompactParts {
  token: string;
  header: JsonRecord;
}

/**
 * Structure only, nothing trusted yet: three canonical base64url segments, a header of known members and a
 * payload that is a JSON object in UTF-8. Canonical encodings leave no second spelling of a signed token.
 */
function splitCompact(payload: Uint8Array): CompactParts | string {
  const token = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('latin1');
  const segments = token.split('.');
  if (segments.length !== 3) return `not a compact JWS: ${segments.length - 1} dots, 2 expected`;
  const [headerText, payloadText, signatureText] = segments as [string, string, string];
  for (const [name, text] of [
    ['header', headerText],
    ['payload', payloadText],
    ['signature', signatureText],
  ] as const) {
    if (decodeSegment(text) === undefined) return `not a compact JWS: the ${name} segment is not canonical base64url`;
  }
  if (headerText === '' || payloadText === '') return 'not a compact JWS: empty header or payload segment';
  const header = parseObject(decodeSegment(headerText));
  if (header === undefined) return 'protected header is not a JSON object in UTF-8';
  const extra = Object.keys(header).find((name) => !allowedHeaderMembers.has(name));
  if (extra !== undefined) return `protected header member ${quote(extra)} is not supported (only alg, kid, typ)`;
  const typ = header['typ'];
  if (typ !== undefined && (typeof typ !== 'string' || typ.toUpperCase() !== 'JWT'))
    return `protected header typ ${quote(typ)}: "JWT" or nothing expected`;
  if (parseObject(decodeSegment(payloadText)) === undefined) return 'payload is not a JSON object in UTF-8';
  return { token, header };
}

/**
 * JWS EdDSA verification (RFC 8037) done here rather than by jose: the header has already been checked
 * (alg, no `crit`/`b64`), so what is left is one Ed25519 verify of `header.payload`. Synchronous, it costs
 * less CPU per message than jose's asynchronous path (most of whose work runs on the main thread too), and
 * that cost is what a flood of wrong-key junk spends (`npm run bench` measures it).
 */
function verifySignature(token: string, key: KeyObject): Uint8Array | string {
  const firstDot = token.indexOf('.');
  const lastDot = token.lastIndexOf('.');
  try {
    const signature = Buffer.from(token.slice(lastDot + 1), 'base64url');
    if (!cryptoVerify(null, Buffer.from(token.slice(0, lastDot), 'latin1'), key, signature))
      return 'signature does not verify with the key of this kid';
  } catch (error) {
    return `signature could not be checked (${error instanceof Error ? error.message : String(error)})`;
  }
  return Buffer.from(token.slice(firstDot + 1, lastDot), 'base64url');
}

function parseCommand(cmd: CommandKind, claims: JsonRecord): VerifiedCommand | string {
  switch (cmd) {
    case 'ack':
      return parsed(ackCommandSchema.safeParse(claims), (c) => ({ kind: 'ack', claims: c }));
    case 'broadcast':
      return parsed(broadcastCommandSchema.safeParse(claims), (c) => ({ kind: 'broadcast', claims: c }));
    case 'stop':
      return parsed(stopCommandSchema.safeParse(claims), (c) => ({ kind: 'stop', claims: c }));
    case 'schedule':
      return parsed(scheduleCommandSchema.safeParse(claims), (c) => ({ kind: 'schedule', claims: c }));
    case 'time':
      return parsed(timeCommandSchema.safeParse(claims), (c) => ({ kind: 'time', claims: c }));
    default: {
      const unhandled: never = cmd;
      return `cmd: no schema for ${quote(unhandled)}`;
    }
  }
}

function parsed<T>(result: z.ZodSafeParseResult<T>, wrap: (claims: T) => VerifiedCommand): VerifiedCommand | string {
  return result.success ? wrap(result.data) : describeIssues(result.error).join('; ');
}

/** Bytes of a canonical, unpadded base64url string, or undefined (Buffer's own decoder skips bad characters). */
function decodeSegment(text: string): Buffer | undefined {
  if (!base64urlSegment.test(text) || text.length % 4 === 1) return undefined;
  const bytes = Buffer.from(text, 'base64url');
  return bytes.toString('base64url') === text ? bytes : undefined;
}

function parseObject(bytes: Uint8Array | undefined): JsonRecord | undefined {
  if (bytes === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(bytes));
  } catch {
    return undefined;
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as JsonRecord) : undefined;
}

function isKind(value: unknown): value is CommandKind {
  return typeof value === 'string' && Object.hasOwn(checksOf, value);
}

/** Values from the network, quoted and cut short so a detail line stays one readable line. */
function quote(value: unknown): string {
  if (value === undefined) return '(missing)';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

function ago(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`;
}
