import { randomUUID } from 'node:crypto';
import { countySchema } from '../../src/config/schema.ts';
import { createMqttLink, type Backoff } from '../../src/county/mqtt-link.ts';
import type { AlarmPayload } from '../../src/contract/payloads.ts';
import type { Uplink, UplinkEvents } from '../../src/county/types.ts';
import type { JsonObject, OutboxStream } from '../../src/store/types.ts';
import { memoryLogger, type LogLine } from './log-sink.ts';

/** A village id no other test uses, so tests can share one broker (its topics, sessions, retained state). */
export function uniqueVillage(): string {
  return `v-${randomUUID().slice(0, 8)}`;
}

export interface TestLink {
  link: Uplink;
  lines: LogLine[];
  village: string;
}

/** A real link with test-speed reconnects; `county` is the raw config object, parsed as the app would. */
export function testLink(options: {
  url: string;
  protocolVersion: 4 | 5;
  village?: string;
  county?: Record<string, unknown>;
  configDir?: string;
  reconnect?: Backoff;
  /** The reconnect jitter's randomness; 1 makes every delay the top of its range. */
  random?: () => number;
}): TestLink {
  const { logger, lines } = memoryLogger();
  const village = options.village ?? uniqueVillage();
  const config = countySchema.parse({ url: options.url, protocolVersion: options.protocolVersion, ...options.county });
  const link = createMqttLink({
    config,
    villageId: village,
    version: '0.0.0-test',
    logger,
    ...(options.configDir === undefined ? {} : { configDir: options.configDir }),
    reconnect: options.reconnect ?? { initialMs: 50, maxMs: 250 },
    ...(options.random === undefined ? {} : { random: options.random }),
  });
  return { link, lines, village };
}

/** The next `event` of the link, with its arguments. */
export function nextEvent<E extends keyof UplinkEvents>(link: Uplink, event: E, timeoutMs = 5000): Promise<Parameters<UplinkEvents[E]>> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      reject(new Error(`no "${event}" event within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (...args: Parameters<UplinkEvents[E]>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(args);
    };
    link.on(event, listener as UplinkEvents[E]);
  });
}

export function sampleAlarm(village: string, overrides: Partial<AlarmPayload> = {}): AlarmPayload {
  return {
    id: randomUUID(),
    seq: 1,
    village,
    terminal: 'column-1',
    type: 'button',
    raisedAt: new Date().toISOString(),
    location: { village, terminal: 'column-1', lat: 30.1, lon: 120.2 },
    attempt: 1,
    presses: 1,
    ...overrides,
  };
}

/**
 * A stored payload that its stream's schema accepts, with a fresh uuid: delivery reads every record through
 * that schema before it publishes, so a test's records must be real ones.
 */
export function sampleRecordPayload(stream: OutboxStream, seq: number): JsonObject {
  const id = randomUUID();
  const at = new Date().toISOString();
  switch (stream) {
    case 'alarm':
      return { ...sampleAlarm('v1'), id, seq };
    case 'fault':
      return { id, seq, village: 'v1', kind: 'device-offline', subject: 'column-1', detail: 'no reply', raisedAt: at, attempt: 1 };
    case 'report':
      return { id, seq, village: 'v1', jti: null, event: 'rejected', priority: null, status: null, zones: [], faultyZones: [], at, attempt: 1 };
  }
}

export function messagesOf(lines: readonly LogLine[]): string[] {
  return lines.map((line) => line.msg);
}
