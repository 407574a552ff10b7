import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import type { IClientOptions, MqttClient } from 'mqtt';
import mqttClientModule from 'mqtt/lib/client';
import type { CountyConfig } from '../config/schema.ts';
import type { Logger } from '../platform/logger.ts';
import { errorText } from '../platform/error-text.ts';
import { InvalidInputError } from '../platform/schema-errors.ts';
import { isSocketUrl, socketBuilder, wholeMqttJs, type TlsMaterial } from './broker-socket.ts';
import type { OversizedPublish } from './inbound-guard.ts';
import type { StatePayload } from '../contract/payloads.ts';
import { commandKindOf, downKinds, topicSpecs, villageTopics, type PayloadOf, type TopicSpec, type VillageTopics } from './topics.ts';
import type { PublishedKind, PublishOptions, Uplink, UplinkEvents } from './types.ts';

export interface Backoff {
  initialMs: number;
  maxMs: number;
}

export interface MqttLinkOptions {
  config: CountyConfig;
  villageId: string;
  /** Software version, reported in the state messages. */
  version: string;
  logger: Logger;
  /** Relative TLS paths are resolved against this (the config file's folder); default: the working directory. */
  configDir?: string;
  /** Reconnect delay: doubles per failed attempt up to maxMs, jittered so villages don't reconnect in lockstep. */
  reconnect?: Backoff;
  /** Whether an alarm waits for the link: the reconnect delay is then capped at `urgentReconnectMaxMs`. */
  urgent?: () => boolean;
  now?: () => Date;
  random?: () => number;
}

/** publishRecord/publishHealth failed because the link is (or went) down; the caller retries from its outbox. */
export class LinkDownError extends Error {
  override name = 'LinkDownError';
}

const defaultReconnect: Backoff = { initialMs: 1000, maxMs: 30_000 };
/**
 * While an alarm waits, a reconnect comes within this (jittered over its second half): broker back → alarm
 * delivered stays within a few seconds, and only villages with an alarm waiting try that often.
 */
const URGENT_RECONNECT_MAX_MS = 2000;
/**
 * MQTT 5 ends a session at disconnect unless it has an expiry. A week outlasts any outage in which a queued
 * ack still matters; past that, the outbox republishes and the county acks again.
 */
const SESSION_EXPIRY_SECONDS = 7 * 24 * 3600;
/** Room for a TLS handshake over a weak cellular link, yet half mqtt.js' 30 s before a black-holed attempt is retried. */
const CONNECT_TIMEOUT_MS = 15_000;
/** Each step of stop() waits at most this long, so a dead broker cannot hang a shutdown. */
const STOP_STEP_TIMEOUT_MS = 2000;
const SUBACK_FAILURE = 0x80;
/** Room for the topic, packet id and properties around a payload (as `maxInboundPacketBytes` ≥ `maxInboundBytes` + 1024). */
const PACKET_HEADROOM_BYTES = 1024;

export function createMqttLink(options: MqttLinkOptions): Uplink {
  return new MqttLink(options);
}

type Listeners = { [E in keyof UplinkEvents]: UplinkEvents[E][] };

class MqttLink implements Uplink {
  private readonly topics: VillageTopics;
  private readonly log: Logger;
  private readonly backoff: Backoff;
  private readonly now: () => Date;
  private readonly random: () => number;
  /** As long as the keepalive takes to declare a silent connection dead. */
  private readonly pubackTimeoutMs: number;
  /** The schedule's topics take packets up to `maxScheduleBytes` + headroom, every other topic `maxInboundPacketBytes`. */
  private readonly topicCaps: ReadonlyMap<string, number>;
  /** The biggest packet any topic takes: what a broker (MQTT 5) or WebSocket, with one figure for all topics, is told. */
  private readonly largestPacketBytes: number;
  private listeners: Listeners = { connected: [], disconnected: [], command: [] };
  /** Rejecters of publishes waiting for their PUBACK, failed together when the connection drops. */
  private readonly inFlight = new Set<(error: Error) => void>();
  private client: MqttClient | undefined;
  private up = false;
  private stopped = false;
  private attempt = 0;
  /** The next reconnect attempt, scheduled by us (mqtt.js' own reconnect is off), and when it is due. */
  private reconnectTimer: { timer: NodeJS.Timeout; dueAt: number } | undefined;
  /**
   * Oversized PUBLISHes whose body the inbound guard discarded, in arrival order: mqtt.js delivers each as
   * an empty message on the same topic, which is then reported as what it stands for.
   */
  private readonly standIns: OversizedPublish[] = [];
  /** The last error of the current outage, so a broker that stays down is logged once, not every retry. */
  private lastError: string | undefined;

  constructor(private readonly options: MqttLinkOptions) {
    this.topics = villageTopics(options.config.topicPrefix, options.villageId);
    this.log = options.logger.child({ component: 'county-link' });
    this.backoff = options.reconnect ?? options.config.reconnect ?? defaultReconnect;
    this.now = options.now ?? (() => new Date());
    this.random = options.random ?? Math.random;
    this.pubackTimeoutMs = options.config.keepaliveSeconds * 1500;
    const scheduleCap = options.config.maxScheduleBytes + PACKET_HEADROOM_BYTES;
    this.topicCaps = new Map(downKinds.filter((k) => commandKindOf(k).command === 'schedule').map((k) => [this.topics.topic(k), scheduleCap]));
    this.largestPacketBytes = Math.max(options.config.maxInboundPacketBytes, ...this.topicCaps.values());
  }

  get connected(): boolean {
    return this.up;
  }

  on<E extends keyof UplinkEvents>(event: E, listener: UplinkEvents[E]): void {
    (this.listeners[event] as UplinkEvents[E][]).push(listener);
  }

  start(): void {
    if (this.client !== undefined || this.stopped) throw new Error('county link: start() may be called once, before stop()');
    const url = new URL(this.options.config.url);
    const tls = this.options.config.tls === undefined ? undefined : this.tlsMaterial(url, this.options.config.tls);
    const options = this.clientOptions(url);
    const guard = {
      maxPacketBytes: this.options.config.maxInboundPacketBytes,
      topicCaps: this.topicCaps,
      protocolVersion: this.options.config.protocolVersion,
      onOversized: (publish: OversizedPublish) => this.standIns.push(publish),
    };
    const client = isSocketUrl(url)
      ? new mqttClientModule.default(socketBuilder(url, tls, guard), options)
      : // ws(s): the WebSocket refuses a frame over the cap and closes; only MQTT 5's limit keeps the broker from sending one.
        // One cap for every topic there, so the schedule's: the gate still holds every other kind to county.maxInboundBytes.
        wholeMqttJs().connect(url.href, { ...options, ...tls, rejectUnauthorized: true, wsOptions: { maxPayload: this.largestPacketBytes } });
    this.client = client;
    // mqtt.js builds a fresh socket for every (re)connect and then writes CONNECT: a new connection starts here.
    client.on('packetsend', (packet) => {
      if (packet.cmd !== 'connect') return;
      // Stand-ins are handed on in order; any of a dropped connection's are gone with it.
      this.standIns.length = 0;
    });
    client.on('connect', (connack) => this.onConnect(client, connack.sessionPresent));
    client.on('close', () => this.onClose(client));
    client.on('error', (error) => this.onError(error));
    client.on('disconnect', (packet) => this.onError(new Error(`broker sent DISCONNECT, reason code ${packet.reasonCode ?? 0}`)));
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
    // Host only: a url may carry `user:password@`, which must not end up in the journal.
    this.log.info({ broker: `${url.protocol}//${url.host}`, clientId: client.options.clientId }, 'county link starting');
    client.connect();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.reconnectTimer?.timer);
    this.reconnectTimer = undefined;
    const client = this.client;
    if (client !== undefined) {
      const offlineAcked = this.up && (await this.publishOfflineState(client));
      this.failInFlight(new LinkDownError('county link stopped before PUBACK'));
      const wasUp = this.up;
      this.up = false;
      // A graceful DISCONNECT waits for every in-flight message, forever if the broker has stopped
      // answering; a forced close is safe because the broker then publishes our `offline` will.
      const graceful = offlineAcked && Object.keys(client.outgoing).length === 0;
      const ending = client.endAsync(!graceful).then(
        () => true,
        (error: unknown) => {
          this.log.warn({ err: errorText(error) }, 'closing the MQTT client failed');
          return true;
        },
      );
      // The broker should close its side after DISCONNECT; one that does not must not hang our shutdown.
      if (!(await settleWithin(ending, STOP_STEP_TIMEOUT_MS, false))) {
        client.stream.destroy();
        await ending;
      }
      if (wasUp) this.emit('disconnected', 'stopped');
      this.log.info({ graceful }, 'county link stopped');
    }
    this.listeners = { connected: [], disconnected: [], command: [] };
  }

  publish<K extends PublishedKind>(kind: K, payload: PayloadOf<K>, options: PublishOptions = {}): Promise<void> {
    const sent = this.send(this.topics.topic(kind), topicSpecs[kind], JSON.stringify(payload));
    // mqtt-packet corks the socket and uncorks it on the next tick, to batch a drain's packets into one
    // write; a caller about to block the loop (an fsync) wants this one on the wire now.
    const socket = this.client?.stream;
    if (options.flush === true && socket !== undefined && socket.writableCorked > 0) socket.uncork();
    return sent;
  }

  private send(topic: string, spec: TopicSpec, body: string): Promise<void> {
    const client = this.client;
    // Rejecting at once (instead of letting mqtt.js queue in memory) leaves retries to the durable outbox.
    if (!this.up || client === undefined) return Promise.reject(new LinkDownError('county link is down'));
    return new Promise((resolve, reject) => {
      const fail = (error: Error): void => {
        clearTimeout(timer);
        reject(error);
      };
      // A broker that keeps answering pings but never acks would otherwise hold the caller's delivery loop.
      const timer = setTimeout(() => {
        if (this.inFlight.delete(fail)) fail(new LinkDownError(`no PUBACK within ${this.pubackTimeoutMs} ms`));
      }, this.pubackTimeoutMs);
      this.inFlight.add(fail);
      client.publish(topic, body, { qos: spec.qos, retain: spec.retain }, (error) => {
        if (!this.inFlight.delete(fail)) return;
        clearTimeout(timer);
        if (error) reject(error);
        else resolve();
      });
    });
  }

  private clientOptions(url: URL): IClientOptions {
    const { config, villageId } = this.options;
    // Credentials in the url (`mqtt://user:secret@host`) count when the config names none.
    const username = config.username ?? (url.username === '' ? undefined : decodeURIComponent(url.username));
    const password = config.password ?? (url.password === '' ? undefined : decodeURIComponent(url.password));
    return {
      manualConnect: true,
      clientId: config.clientId ?? `village-edge-${villageId}`,
      clean: false,
      protocolVersion: config.protocolVersion,
      keepalive: config.keepaliveSeconds,
      username,
      password,
      connectTimeout: CONNECT_TIMEOUT_MS,
      // Ours, not mqtt.js': we shorten the wait while an alarm waits (hurry), and each attempt starts with an
      // empty outgoing store (client.reconnect()), so copies mqtt.js queued before an outage are not sent
      // again: the outbox republishes what is still unacked, in its freshest form.
      reconnectPeriod: 0,
      // A refused CONNECT (bad credentials, server busy) may be fixed on the county side: keep trying.
      reconnectOnConnackError: true,
      // We subscribe on every connect ourselves, after which `connected` is announced.
      resubscribe: false,
      queueQoSZero: false,
      // mqtt-packet otherwise fills a table of 65,536 two-byte Buffers at the first publish: megabytes of heap
      // for packet ids, a large share of the Pi's memory budget for this service, to save one tiny allocation.
      writeCache: false,
      will: { topic: this.topics.topic('state'), payload: Buffer.from(this.stateBody(false)), qos: 1, retain: true },
      // MQTT 5 lets the broker know our limit, so it drops an oversized message instead of sending it at all. It
      // takes one figure for every topic: the schedule's, the largest; the guard holds the other topics to theirs.
      ...(config.protocolVersion === 5
        ? { properties: { sessionExpiryInterval: SESSION_EXPIRY_SECONDS, maximumPacketSize: this.largestPacketBytes } }
        : {}),
    };
  }

  /** Read once at start: a missing file is a configuration error, reported with the field that names it. */
  private tlsMaterial(url: URL, tls: NonNullable<CountyConfig['tls']>): TlsMaterial {
    const scheme = url.protocol;
    if (!['mqtts:', 'ssl:', 'wss:'].includes(scheme))
      throw new InvalidInputError('county.tls', [`is set, but county.url uses ${scheme}// which does not use TLS (use mqtts://)`]);
    const read = (field: 'ca' | 'cert' | 'key', path: string): Buffer => {
      const full = resolvePath(this.options.configDir ?? process.cwd(), path);
      try {
        return readFileSync(full);
      } catch (error) {
        throw new InvalidInputError(`county.tls.${field}`, [`cannot read ${full} (${errorText(error)})`]);
      }
    };
    return {
      ca: read('ca', tls.ca),
      ...(tls.cert === undefined ? {} : { cert: read('cert', tls.cert) }),
      ...(tls.key === undefined ? {} : { key: read('key', tls.key) }),
    };
  }

  private onConnect(client: MqttClient, sessionPresent: boolean): void {
    this.attempt = 0;
    this.lastError = undefined;
    this.log.info({ sessionPresent }, 'county link connected');
    const stateSpec = topicSpecs.state;
    client.publish(this.topics.topic('state'), this.stateBody(true, this.now()), { qos: stateSpec.qos, retain: stateSpec.retain }, (error) => {
      if (error) this.log.warn({ err: error.message }, 'online state not delivered');
    });
    const wanted = Object.fromEntries(this.topics.subscriptions.map((s) => [s.topic, { qos: s.qos }]));
    client.subscribe(wanted, (error, granted) => {
      // A drop before SUBACK lands here too; the next connect starts over.
      if (client !== this.client || !client.connected || this.stopped) return;
      if (error) this.log.error({ err: error.message }, 'subscribing to county topics failed');
      for (const grant of granted ?? [])
        if (grant.qos >= SUBACK_FAILURE)
          this.log.error({ topic: grant.topic }, `county broker refused subscription to ${grant.topic}: nothing sent there will arrive`);
      this.up = true;
      this.emit('connected');
    });
  }

  private onClose(client: MqttClient): void {
    const reason = this.lastError ?? 'connection closed';
    this.failInFlight(new LinkDownError(`county link dropped before PUBACK (${reason})`));
    if (!this.stopped && client === this.client) this.scheduleReconnect(client);
    if (!this.up) return;
    this.up = false;
    this.log.warn({ reason }, 'county link down');
    this.emit('disconnected', reason);
  }

  /** An alarm is waiting: a reconnect already scheduled for later comes within the urgent delay instead. */
  hurry(): void {
    const client = this.client;
    const scheduled = this.reconnectTimer;
    if (client === undefined || scheduled === undefined || this.stopped) return;
    const delayMs = this.reconnectDelay(this.attempt, true);
    if (scheduled.dueAt - Date.now() <= delayMs) return;
    this.scheduleReconnect(client, delayMs);
  }

  private scheduleReconnect(client: MqttClient, delayMs = this.reconnectDelay(this.attempt, this.options.urgent?.() ?? false)): void {
    clearTimeout(this.reconnectTimer?.timer);
    const timer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.stopped || client !== this.client) return;
      this.attempt += 1;
      this.log.debug({ attempt: this.attempt }, 'county link reconnecting');
      client.reconnect();
    }, delayMs);
    this.reconnectTimer = { timer, dueAt: Date.now() + delayMs };
    this.log.debug({ attempt: this.attempt, delayMs }, 'county link reconnect scheduled');
  }

  private onError(error: Error): void {
    const text = errorText(error);
    if (text === this.lastError) this.log.debug({ attempt: this.attempt }, `county link error: ${text}`);
    else this.log.warn({ attempt: this.attempt }, `county link error: ${text}`);
    this.lastError = text;
  }

  private onMessage(topic: string, payload: Buffer): void {
    const standIn = this.standIns[0];
    const discarded = standIn !== undefined && standIn.topic === topic && payload.length === 0 ? this.standIns.shift() : undefined;
    if (this.stopped) return;
    const inbound = this.topics.parseInbound(topic);
    if (inbound === undefined) {
      this.log.debug({ topic }, 'ignored a message on a topic the link does not handle');
      return;
    }
    // Signature, size, claims and replay are judged by the command gate, which also reports rejections.
    this.emit('command', {
      ...commandKindOf(inbound.kind),
      topic,
      payload,
      ...(discarded === undefined ? {} : { discardedBytes: discarded.payloadBytes }),
    });
  }

  private publishOfflineState(client: MqttClient): Promise<boolean> {
    const spec = topicSpecs.state;
    const published = client.publishAsync(this.topics.topic('state'), this.stateBody(false, this.now()), { qos: spec.qos, retain: spec.retain }).then(
      () => true,
      (error: unknown) => {
        this.log.warn({ err: errorText(error) }, 'offline state not delivered; the broker will publish the will');
        return false;
      },
    );
    return settleWithin(published, STOP_STEP_TIMEOUT_MS, false);
  }

  private stateBody(online: boolean, since?: Date): string {
    const state: StatePayload = {
      online,
      village: this.options.villageId,
      version: this.options.version,
      // The will is fixed when the client is built, so it carries no time rather than a wrong one.
      ...(since === undefined ? {} : { since: since.toISOString() }),
    };
    return JSON.stringify(state);
  }

  private reconnectDelay(attempt: number, urgent = false): number {
    const cap = urgent ? Math.min(this.backoff.maxMs, URGENT_RECONNECT_MAX_MS) : this.backoff.maxMs;
    const ceiling = Math.min(cap, this.backoff.initialMs * 2 ** Math.min(attempt, 20));
    return Math.max(1, Math.round(ceiling / 2 + (this.random() * ceiling) / 2));
  }

  private failInFlight(error: Error): void {
    const rejecters = [...this.inFlight];
    this.inFlight.clear();
    for (const reject of rejecters) reject(error);
  }

  private emit<E extends keyof UplinkEvents>(event: E, ...args: Parameters<UplinkEvents[E]>): void {
    for (const listener of [...this.listeners[event]]) {
      try {
        const result: unknown = (listener as (...a: Parameters<UplinkEvents[E]>) => unknown)(...args);
        if (result instanceof Promise) result.catch((error: unknown) => this.listenerFailed(event, error));
      } catch (error) {
        this.listenerFailed(event, error);
      }
    }
  }

  private listenerFailed(event: keyof UplinkEvents, error: unknown): void {
    this.log.error({ event, err: error instanceof Error ? error : String(error) }, `a county link "${event}" listener failed`);
  }
}

/** The promise's value, or `fallback` if it takes longer than `ms`; leaves no timer behind either way. */
async function settleWithin<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
