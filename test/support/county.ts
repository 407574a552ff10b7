import { randomUUID } from 'node:crypto';
import { Socket } from 'node:net';
import mqtt from 'mqtt';
import { countyFilter, parseUplink, topicSpecs, upKinds, villageTopics, type DownKind, type UpKind } from '../../src/county/topics.ts';
import type { CountySigner } from './county-signer.ts';
import { performance } from 'node:perf_hooks';
import { reportPayloadSchema, type ReportPayload } from '../../src/contract/payloads.ts';

/** One message a village published, as the county received it. */
export interface CountyMessage {
  kind: UpKind;
  village: string;
  topic: string;
  /** Parsed JSON, or the raw text when it is not JSON. */
  payload: unknown;
  retain: boolean;
  qos: number;
  /** performance.now() when the client read it: what latency figures measure to. */
  receivedAt: number;
}

/** A stand-in for the county dispatch: hears every village, acks by id. */
export interface CountyClient {
  readonly messages: readonly CountyMessage[];
  /**
   * The first message, already received or still to come, that matches. Told as each message arrives, not
   * polled: a poll would add up to its interval to every latency measured with it.
   */
  waitFor(match: (message: CountyMessage) => boolean, timeoutMs?: number): Promise<CountyMessage>;
  ack(village: string, id: string): Promise<void>;
  /** Raw bytes to one of a village's county→village topics, e.g. to see what the link rejects. */
  send(village: string, kind: DownKind, payload: string | Buffer): Promise<void>;
  close(): Promise<void>;
}

export interface CountyOptions {
  url: string;
  protocolVersion: 4 | 5;
  prefix?: string;
  /** Ack every alarm and fault as it arrives, as a dispatch desk would. */
  autoAck?: boolean;
  tls?: { ca: Buffer; cert: Buffer; key: Buffer };
  /** Signs acks as the county does; a village only takes acks signed by a key in its config. */
  signer?: CountySigner;
}

/**
 * The reports a village sent, each once: delivery is at least once, so a report republished before its
 * ack arrived is the same report (same id).
 */
export function distinctReports(county: CountyClient, village: string): ReportPayload[] {
  const byId = new Map<string, ReportPayload>();
  for (const m of county.messages) {
    if (m.kind !== 'report' || m.village !== village) continue;
    const report = reportPayloadSchema.parse(m.payload);
    byId.set(report.id, report);
  }
  return [...byId.values()];
}

export async function connectCounty(options: CountyOptions): Promise<CountyClient> {
  const prefix = options.prefix ?? 'village-edge';
  const client = await mqtt.connectAsync(options.url, {
    clientId: `county-${randomUUID().slice(0, 8)}`,
    protocolVersion: options.protocolVersion,
    clean: true,
    reconnectPeriod: 0,
    ...(options.tls === undefined ? {} : { ...options.tls, rejectUnauthorized: true }),
  });
  // Nagle on loopback would hold a publish behind the previous one's delayed ACK (~40 ms, TOOLCHAIN.md).
  if (client.stream instanceof Socket) client.stream.setNoDelay(true);
  const messages: CountyMessage[] = [];
  const waiters = new Set<(message: CountyMessage) => void>();

  const ack = async (village: string, id: string): Promise<void> => {
    if (options.signer === undefined) throw new Error('county: acks must be signed; pass a signer to connectCounty');
    const token = await options.signer.ack({ aud: village, id });
    await client.publishAsync(villageTopics(prefix, village).topic('ack'), token, { qos: 1 });
  };

  client.on('message', (topic, payload, packet) => {
    const uplink = parseUplink(prefix, topic);
    if (uplink === undefined) return;
    const text = payload.toString('utf8');
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // kept as text: a test may be looking for exactly that
    }
    const message: CountyMessage = { ...uplink, topic, payload: parsed, retain: packet.retain, qos: packet.qos, receivedAt: performance.now() };
    messages.push(message);
    for (const waiter of [...waiters]) waiter(message);
    const id = typeof parsed === 'object' && parsed !== null ? (parsed as { id?: unknown }).id : undefined;
    if (options.autoAck && (uplink.kind === 'alarm' || uplink.kind === 'fault' || uplink.kind === 'report') && typeof id === 'string')
      void ack(uplink.village, id).catch(() => undefined);
  });

  await client.subscribeAsync(Object.fromEntries(upKinds.map((k) => [countyFilter(prefix, k), { qos: 1 as const }])));

  return {
    messages,
    waitFor(match, timeoutMs = 5000) {
      // A check that throws (an expect inside it) is a message that does not match yet, as with waitFor.
      const matches = (message: CountyMessage): boolean => {
        try {
          return match(message);
        } catch {
          return false;
        }
      };
      const seen = messages.find(matches);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const waiter = (message: CountyMessage): void => {
          if (!matches(message)) return;
          clearTimeout(timer);
          waiters.delete(waiter);
          resolve(message);
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          const got = messages.map((m) => `${m.topic} ${JSON.stringify(m.payload)}`).join('\n  ') || '(nothing)';
          reject(new Error(`timed out after ${timeoutMs} ms waiting for a matching county message\nreceived:\n  ${got}`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    ack,
    async send(village, kind, payload) {
      // Retained where the contract says the county retains (schedule, time): a village connecting later gets it.
      await client.publishAsync(villageTopics(prefix, village).topic(kind), payload, { qos: topicSpecs[kind].qos, retain: topicSpecs[kind].retain });
    },
    async close() {
      await client.endAsync();
    },
  };
}
