import { randomUUID } from 'node:crypto';
import { Socket } from 'node:net';
import type { MqttClient } from 'mqtt';
import { wholeMqttJs } from './broker-socket.ts';
import { loadPrivateKey, signCommand } from './keys.ts';
import { countyFilter, parseUplink, topicSpecs, upKinds, villageTopics } from './topics.ts';
import { broadcastCommandSchema, reportPayloadSchema, statePayloadSchema, stopCommandSchema } from '../contract/payloads.ts';
import { AnnounceTracker, type AnnounceOutcome } from './announce-outcome.ts';
import { Desk, parseDeskMessage } from './desk.ts';
import { describeIssues } from '../platform/schema-errors.ts';

/**
 * What a county needs to run villages with no other software: sign and publish broadcasts and stops,
 * and watch (and acknowledge) what the villages report. Used by `village-edge announce` and
 * `village-edge county watch`.
 */

export interface BrokerOptions {
  url: string;
  protocolVersion: 4 | 5;
  prefix: string;
  username?: string;
  password?: string;
}

export type AnnounceBody =
  | {
      cmd: 'broadcast';
      priority: 'emergency' | 'announcement';
      level?: 1 | 2 | 3 | 4;
      status: 'actual' | 'exercise' | 'test';
      zones: 'all' | string[];
      content: { kind: 'tts'; text: string } | { kind: 'media'; file: string; sha256: string };
      chime: boolean;
      repeat: number;
    }
  | { cmd: 'stop'; target: 'all' | { jti: string } };

/** Signs one command for one village (or `all`) and publishes it; with `wait`, waits for the villages' reports on it. */
export async function announce(options: {
  broker: BrokerOptions;
  keyFile: string;
  /** A village id, or `all`. */
  audience: string;
  body: AnnounceBody;
  expiresInSeconds: number;
  now?: () => number;
  /** Print each village's reports as they come, until all addressed have settled or `timeoutMs` passed. */
  wait?: { timeoutMs: number; print: (line: string) => void };
}): Promise<{ jti: string; topic: string; outcome?: AnnounceOutcome }> {
  const { key, kid } = await loadPrivateKey(options.keyFile);
  const iat = Math.floor((options.now ?? Date.now)() / 1000);
  const jti = commandId('county', iat);
  const claims = { jti, iat, exp: iat + options.expiresInSeconds, aud: options.audience, ...options.body };
  // Check before signing: a county operator gets the field and the reason, not a village's silent rejection.
  const parsed = (options.body.cmd === 'broadcast' ? broadcastCommandSchema : stopCommandSchema).safeParse(claims);
  if (!parsed.success) throw new Error(`invalid command: ${describeIssues(parsed.error).join('; ')}`);
  const token = await signCommand(key, kid, claims);
  const all = options.audience === 'all';
  const kind = options.body.cmd === 'broadcast' ? (all ? 'broadcastAll' : 'broadcast') : all ? 'stopAll' : 'stop';
  const topic = villageTopics(options.broker.prefix, options.audience).topic(kind);
  const client = await connectOnce(options.broker, `county-announce-${randomUUID().slice(0, 8)}`);
  try {
    const wait = options.wait;
    const tracker = wait === undefined ? undefined : new AnnounceTracker({ jti, kid, audience: options.audience });
    let settled = (): void => {};
    if (tracker !== undefined && wait !== undefined) {
      client.on('message', (messageTopic, payload) => {
        const uplink = parseUplink(options.broker.prefix, messageTopic);
        if (uplink === undefined) return;
        const parsedPayload = parseJson(payload);
        if (uplink.kind === 'state') {
          const state = statePayloadSchema.safeParse(parsedPayload);
          if (state.success) tracker.state(state.data);
        } else if (uplink.kind === 'report') {
          const report = reportPayloadSchema.safeParse(parsedPayload);
          const line = report.success ? tracker.report(report.data) : undefined;
          if (line !== undefined) wait.print(line);
        }
        if (tracker.settled()) settled();
      });
      // Subscribed before publishing, so no report can come before we listen; retained states say who is online.
      const village = all ? '+' : options.audience;
      await client.subscribeAsync({
        [`${options.broker.prefix}/${village}/report`]: { qos: 1 },
        [`${options.broker.prefix}/${village}/state`]: { qos: 1 },
      });
    }
    await client.publishAsync(topic, token, { qos: topicSpecs[kind].qos, retain: false });
    if (tracker === undefined || wait === undefined) return { jti, topic };
    wait.print(
      `published ${options.body.cmd} ${jti} to ${topic}; waiting up to ${Math.round(wait.timeoutMs / 1000)} s for the village${all ? 's' : ''}' reports`,
    );
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, wait.timeoutMs);
      settled = () => {
        clearTimeout(timer);
        resolve();
      };
      if (tracker.settled()) settled();
    });
    return { jti, topic, outcome: tracker.finish() };
  } finally {
    await client.endAsync();
  }
}

function parseJson(payload: Buffer): unknown {
  try {
    return JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Prints every alarm, fault, report and state change as one line (`json`: one JSON object a line), and with
 * `ack` acknowledges each alarm, fault and report by its id, as a dispatch desk would (see desk.ts for the
 * refused acks). Reconnects by itself, every second, for as long as it runs; runs until `signal` aborts.
 */
export async function watch(options: {
  broker: BrokerOptions;
  keyFile?: string;
  ack: boolean;
  json?: boolean;
  print: (line: string) => void;
  signal: AbortSignal;
  now?: () => number;
}): Promise<void> {
  const signing = options.keyFile === undefined ? undefined : await loadPrivateKey(options.keyFile);
  if (options.ack && signing === undefined) throw new Error('--ack needs --key: villages take only signed acks');
  const now = options.now ?? Date.now;
  const desk = new Desk({ ack: options.ack, ...(signing === undefined ? {} : { kid: signing.kid }) });
  const stamp = () => new Date(now()).toISOString();
  const say = (village: string, kind: string, line: string, json: Record<string, unknown>) =>
    options.print(options.json === true ? JSON.stringify({ at: stamp(), village, kind, ...json }) : `${stamp()} ${line}`);
  const client = connectRetrying(options.broker, `county-watch-${randomUUID().slice(0, 8)}`);
  const filters = Object.fromEntries(upKinds.filter((k) => k !== 'health').map((k) => [countyFilter(options.broker.prefix, k), { qos: 1 as const }]));
  let down = false;
  client.on('connect', () => {
    // A clean session forgets subscriptions: every connect subscribes again.
    const reconnected = down;
    down = false;
    lastError = '';
    client.subscribe(filters, (error) => {
      if (error !== null && error !== undefined) return options.print(`${stamp()} subscribe failed: ${error.message}`);
      // Said once the broker has granted the subscriptions: from this line on, nothing a village sends is missed.
      if (options.json !== true)
        options.print(
          `${stamp()} ${reconnected ? 'reconnected to' : 'watching'} ${options.broker.url} under ${options.broker.prefix}/+/…${options.ack ? ', acknowledging' : ''}; Ctrl-C to stop`,
        );
    });
  });
  client.on('close', () => {
    if (down || options.signal.aborted) return;
    down = true;
    if (options.json !== true) options.print(`${stamp()} connection to ${options.broker.url} lost or refused; retrying every second`);
  });
  let lastError = '';
  client.on('error', (error) => {
    // Refused connections and logins: each said once until the next connect, while the retries go on.
    if (options.json === true || error.message === lastError) return;
    lastError = error.message;
    options.print(`${stamp()} broker: ${error.message}`);
  });
  client.on('message', (topic, payload) => {
    const uplink = parseUplink(options.broker.prefix, topic);
    if (uplink === undefined || uplink.kind === 'health') return;
    const message = parseDeskMessage(uplink.kind, uplink.village, payload);
    const decision = desk.take(message);
    if (options.json === true)
      say(uplink.village, uplink.kind, '', message.valid ? { payload: message.payload } : { raw: message.raw, problem: message.problem });
    else for (const line of decision.lines) options.print(`${stamp()} ${line}`);
    const ack = decision.ack;
    if (ack === undefined || signing === undefined) return;
    const iat = Math.floor(now() / 1000);
    const ackJti = `ack-${randomUUID()}`;
    desk.sent(ackJti, uplink.village, ack);
    void signCommand(signing.key, signing.kid, { jti: ackJti, iat, exp: iat + 600, aud: uplink.village, cmd: 'ack', id: ack.id })
      .then((token) => client.publishAsync(villageTopics(options.broker.prefix, uplink.village).topic('ack'), token, { qos: 1 }))
      // Sent, not taken: a village that refuses it says so in a rejected report, shown as ACK REJECTED.
      .then(() => say(uplink.village, 'ack-sent', `${uplink.village} ack sent for ${ack.what} (${ackJti})`, { id: ack.id, jti: ackJti }))
      .catch((error: unknown) =>
        say(
          uplink.village,
          'ack-failed',
          `${uplink.village} ack of ${ack.what} not sent: ${error instanceof Error ? error.message : String(error)}`,
          { id: ack.id },
        ),
      );
  });
  await new Promise<void>((resolve) => {
    if (options.signal.aborted) resolve();
    options.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await client.endAsync();
}

/** The county tools' MQTT options; `reconnectPeriod` 0 for a one-shot client. */
function clientOptions(broker: BrokerOptions, clientId: string, reconnectPeriod: number) {
  return {
    clientId,
    protocolVersion: broker.protocolVersion,
    clean: true,
    reconnectPeriod,
    connectTimeout: 10_000,
    ...(broker.username === undefined ? {} : { username: broker.username }),
    ...(broker.password === undefined ? {} : { password: broker.password }),
  };
}

/** Nagle would hold an ack behind the previous one's delayed ACK: dispatch acks must not wait 40 ms. */
function noDelay(client: MqttClient): void {
  if (client.stream instanceof Socket) client.stream.setNoDelay(true);
}

/** A client that connects in the background and again after every drop, a second apart, until ended. */
function connectRetrying(broker: BrokerOptions, clientId: string) {
  const client = wholeMqttJs().connect(broker.url, clientOptions(broker, clientId, 1000));
  client.on('connect', () => noDelay(client));
  return client;
}

/** A client for one job (publish, read retained): connects once, no reconnects; Nagle off. */
/** A command's jti as the county tools make them: what it is, the day, and 8 random hex digits (`county-20261207-3fa9c2d1`). */
export function commandId(prefix: string, iat: number): string {
  return `${prefix}-${new Date(iat * 1000).toISOString().slice(0, 10).replaceAll('-', '')}-${randomUUID().slice(0, 8)}`;
}

export async function connectOnce(broker: BrokerOptions, clientId: string) {
  const client = await wholeMqttJs().connectAsync(broker.url, clientOptions(broker, clientId, 0));
  noDelay(client);
  return client;
}
