import mqtt from 'mqtt';
import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { createCommandGate } from '../../src/county/command-gate.ts';
import { createCommandRouter, type CommandRejection, type CommandSource } from '../../src/county/command-router.ts';
import { scheduleCommandSchema, type ScheduleCommand } from '../../src/contract/payloads.ts';
import { villageTopics } from '../../src/county/topics.ts';
import { createCountySigner, sampleSchedule, type CountySigner } from '../support/county-signer.ts';
import { nextEvent, testLink, uniqueVillage } from '../support/link-fixtures.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { memoryReplayGuard } from '../support/memory-replay-guard.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';
import { waitFor } from '../support/wait.ts';

/**
 * The retained schedule through the real link and broker: the schedule's topics take a signed document far
 * bigger than the general packet cap (64 KiB), whole, while every other topic keeps that cap; a document over
 * county.maxScheduleBytes is refused `oversized`. With MQTT 5 the broker is told the largest cap (one figure
 * for all topics), so it sends the oversized broadcast too, and the village discards and reports it itself.
 */

const brokerUrl = inject('brokerUrl');
const protocolVersion = inject('brokerProtocolVersion');
const versions = protocolVersion === 5 ? ([4, 5] as const) : ([4] as const);
/** A prefix of its own: a retained message on `{prefix}/all/…` would otherwise reach other files' villages. */
const prefix = 'schedule-inbound';
const MAX_SCHEDULE_BYTES = 262_144;
const WAIT_MS = 20_000;

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

let signer: CountySigner;
let bigToken: string;
let bigAllToken: string;

beforeAll(async () => {
  signer = await createCountySigner({ villageId: 'unused' });
  // 200 programmes with long Chinese texts: ~125 KB signed, twice the general 64 KiB packet cap.
  bigAllToken = await signer.schedule({ aud: 'all', schedule: sampleSchedule(200, { version: 5, textChars: 120 }) });
  bigToken = await signer.schedule({ aud: 'all', schedule: sampleSchedule(200, { version: 9, textChars: 120 }) });
  expect(bigToken.length).toBeGreaterThan(2 * 65_536 - 10_000);
  expect(bigToken.length).toBeLessThan(MAX_SCHEDULE_BYTES);
});

/** A signed schedule just over `limit` bytes, yet within its topic's packet cap (limit + 1024), so it reaches the gate. */
async function scheduleJustOver(limit: number): Promise<string> {
  for (let programmes = 500; programmes > 0; programmes--) {
    const token = await signer.schedule({ aud: 'all', schedule: sampleSchedule(programmes, { version: 11, textChars: 120 }) });
    if (token.length <= limit) throw new Error(`no schedule between ${limit} and ${limit + 900} bytes`);
    if (token.length <= limit + 900) return token;
  }
  throw new Error('unreachable');
}

async function village(version: 4 | 5) {
  const id = uniqueVillage();
  // Through a proxy, so a test can cut the connection as a network would.
  const target = new URL(brokerUrl);
  const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port) });
  cleanups.push(() => proxy.close());
  const { link, lines } = testLink({ url: proxy.url, protocolVersion: version, village: id, county: { topicPrefix: prefix } });
  const schedules: Array<{ claims: ScheduleCommand; source: CommandSource }> = [];
  const rejected: CommandRejection[] = [];
  const gate = createCommandGate({
    villageId: id,
    keys: [signer.keyEntry],
    maxClockSkewSeconds: 60,
    maxBytes: 32_768,
    maxScheduleBytes: MAX_SCHEDULE_BYTES,
    replay: memoryReplayGuard(),
  });
  link.on(
    'command',
    createCommandRouter({
      gate,
      handlers: {
        ack: () => undefined,
        broadcast: () => undefined,
        stop: () => undefined,
        time: () => undefined,
        schedule: (claims, source) => schedules.push({ claims, source }),
      },
      onRejected: (rejection) => rejected.push(rejection),
      onIssuedAt: () => undefined,
      logger: memoryLogger().logger,
    }),
  );
  const start = async () => {
    const connected = nextEvent(link, 'connected', WAIT_MS);
    link.start();
    await connected;
  };
  cleanups.push(() => link.stop());
  return { id, link, lines, schedules, rejected, start, cut: () => proxy.cutAll(), topics: villageTopics(prefix, id) };
}

async function county(version: 4 | 5) {
  const client = await mqtt.connectAsync(brokerUrl, { protocolVersion: version, clean: true, reconnectPeriod: 0 });
  const retained = new Set<string>();
  cleanups.push(async () => {
    // Runs after the village's link has stopped (cleanups run last first): it must not read the clearing.
    for (const topic of retained) await client.publishAsync(topic, '', { qos: 1, retain: true });
    await client.endAsync();
  });
  return {
    publish: async (topic: string, payload: string, retain = false) => {
      if (retain) retained.add(topic);
      await client.publishAsync(topic, payload, { qos: 1, retain });
    },
  };
}

describe('a retained schedule through the real link and broker', () => {
  for (const version of versions) {
    const label = version === 4 ? 'MQTT 3.1.1' : 'MQTT 5';

    it(`${label}: a 200-programme schedule (~125 KB) arrives whole on its own and on the all-villages topic, again after a reconnect`, async () => {
      const desk = await county(version);
      const v = await village(version);
      await desk.publish(v.topics.topic('scheduleAll'), bigAllToken, true);
      await desk.publish(v.topics.topic('schedule'), bigToken, true);
      // Retained before the village connected: handed over when it subscribes.
      await v.start();
      const seen = (from: number) => new Set(v.schedules.slice(from).map((s) => `${s.source.topic} v${s.claims.schedule.version}`));
      const both = [`${v.topics.topic('schedule')} v9`, `${v.topics.topic('scheduleAll')} v5`];
      await waitFor('both retained schedules', () => both.every((b) => seen(0).has(b)), WAIT_MS);
      const own = v.schedules.find((s) => s.source.audienceTopic === 'village');
      expect(own?.claims.schedule.programmes).toHaveLength(200);
      expect(own?.claims).toEqual(scheduleCommandSchema.parse(JSON.parse(Buffer.from(bigToken.split('.')[1]!, 'base64url').toString('utf8'))));
      expect(v.rejected).toEqual([]);

      // Every reconnect subscribes again and gets the retained copies again (QoS 1 is at least once: a copy
      // whose PUBACK the cut lost comes once more too): accepted every time, never `replayed`.
      const before = v.schedules.length;
      const dropped = nextEvent(v.link, 'disconnected', WAIT_MS);
      const reconnected = nextEvent(v.link, 'connected', WAIT_MS);
      v.cut();
      await dropped;
      await reconnected;
      await waitFor('the retained schedules again', () => both.every((b) => seen(before).has(b)), WAIT_MS);
      expect(v.rejected).toEqual([]);
    });

    it(`${label}: the same size on cmd/broadcast is discarded unread and refused oversized, and so is a schedule over maxScheduleBytes`, async () => {
      const desk = await county(version);
      const v = await village(version);
      await v.start();
      const bigBroadcast = await signer.broadcast({ aud: v.id, content: { kind: 'tts', text: '通知'.repeat(1000) } });
      await desk.publish(v.topics.topic('broadcast'), `${bigBroadcast}${'.'.repeat(bigToken.length - bigBroadcast.length)}`);
      const justOver = await scheduleJustOver(MAX_SCHEDULE_BYTES);
      await desk.publish(v.topics.topic('schedule'), justOver);
      await waitFor('two refusals', () => v.rejected.length >= 2, WAIT_MS);
      expect(v.rejected.map((r) => [r.kind, r.topic, r.reason, r.detail])).toEqual([
        [
          'broadcast',
          v.topics.topic('broadcast'),
          'oversized',
          `payload of ${bigToken.length} bytes, over the link's packet limit, was discarded unread`,
        ],
        ['schedule', v.topics.topic('schedule'), 'oversized', `payload is ${justOver.length} bytes, over the ${MAX_SCHEDULE_BYTES}-byte limit`],
      ]);
      if (version === 4) {
        // Over its topic's packet cap too: read up to the topic, its body dropped as it streams by.
        const huge = `${justOver}${'.'.repeat(4096)}`;
        await desk.publish(v.topics.topic('scheduleAll'), huge);
        await waitFor('the third refusal', () => v.rejected.length >= 3, WAIT_MS);
        expect(v.rejected[2]).toMatchObject({
          kind: 'schedule',
          topic: v.topics.topic('scheduleAll'),
          reason: 'oversized',
          detail: `payload of ${huge.length} bytes, over the link's packet limit, was discarded unread`,
        });
      }
      expect(v.schedules).toEqual([]);
      expect(v.lines.filter((l) => l.msg === 'county link down')).toEqual([]);
    });
  }
});
