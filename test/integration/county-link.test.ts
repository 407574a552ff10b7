import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, Socket, type AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt from 'mqtt';
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import { LinkDownError } from '../../src/county/mqtt-link.ts';
import type { InboundCommand } from '../../src/county/types.ts';
import { createCountySigner } from '../support/county-signer.ts';
import { alarmPayloadSchema, healthPayloadSchema, statePayloadSchema, type HealthPayload } from '../../src/contract/payloads.ts';
import { startEmbeddedBroker } from '../../src/county/embedded-broker.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { startBroker } from '../support/broker.ts';
import { connectCounty, type CountyClient, type CountyMessage } from '../support/county.ts';
import { messagesOf, nextEvent, sampleAlarm, testLink, uniqueVillage, type TestLink } from '../support/link-fixtures.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';
import { waitFor } from '../support/wait.ts';

const brokerUrl = inject('brokerUrl');
const brokerKind = inject('brokerKind');
const protocolVersion = inject('brokerProtocolVersion');
const brokerPort = Number(new URL(brokerUrl).port);

/** Undone after each test, last first, whatever happened in it. */
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  vi.restoreAllMocks();
});

function link(options: Partial<Parameters<typeof testLink>[0]> = {}): TestLink {
  const made = testLink({ url: brokerUrl, protocolVersion, ...options });
  cleanups.push(() => made.link.stop());
  return made;
}

async function county(options: Partial<Parameters<typeof connectCounty>[0]> = {}): Promise<CountyClient> {
  const made = await connectCounty({ url: brokerUrl, protocolVersion, ...options });
  cleanups.push(() => made.close());
  return made;
}

async function started(made: TestLink): Promise<TestLink> {
  const connected = nextEvent(made.link, 'connected');
  made.link.start();
  await connected;
  return made;
}

/** Version-sensitive behaviour (will, session expiry) is checked with every version the broker speaks. */
const versions = protocolVersion === 5 ? ([4, 5] as const) : ([4] as const);

const stateOf = (village: string, online: boolean) => (m: CountyMessage) =>
  m.kind === 'state' && m.village === village && (m.payload as { online?: unknown }).online === online;

describe(`county link on the shared ${brokerKind} broker (MQTT ${protocolVersion === 5 ? '5' : '3.1.1'})`, () => {
  it('announces itself online with a retained state message on every connect', async () => {
    const { link: uplink, village } = await started(link());
    expect(uplink.connected).toBe(true);
    // A county that subscribes later still learns the village is up: the state is retained.
    const late = await county();
    const birth = await late.waitFor(stateOf(village, true));
    expect(birth.retain).toBe(true);
    const state = statePayloadSchema.parse(birth.payload);
    expect(state).toMatchObject({ online: true, village, version: '0.0.0-test' });
    expect(state.since).toBeDefined();
  });

  it('publish resolves on PUBACK, and the county gets the alarm under the configured prefix', async () => {
    const prefix = `county-${randomUUID().slice(0, 6)}/edge`;
    const desk = await county({ prefix });
    const { link: uplink, village } = await started(link({ county: { topicPrefix: prefix } }));
    const alarm = sampleAlarm(village);
    await uplink.publish('alarm', alarm);
    const got = await desk.waitFor((m) => m.kind === 'alarm' && m.village === village);
    expect(got.topic).toBe(`${prefix}/${village}/alarm`);
    expect(got.retain).toBe(false);
    expect(got.qos).toBe(1);
    expect(alarmPayloadSchema.parse(got.payload)).toEqual(alarm);
  });

  it('publish of health sends QoS 0, not retained, on the health topic', async () => {
    const desk = await county();
    const { link: uplink, village } = await started(link());
    const health: HealthPayload = {
      village,
      at: new Date().toISOString(),
      version: '0.0.0-test',
      uptimeSeconds: 12,
      outbox: { depth: 0, oldestUnackedAgeSeconds: null, alarm: 0, fault: 0, report: 0 },
      audio: { device: 'null', ok: true, checkedAt: new Date().toISOString() },
      devices: [],
      memory: { rssBytes: 1, heapUsedBytes: 1 },
      problems: [],
    };
    await uplink.publish('health', health);
    const got = await desk.waitFor((m) => m.kind === 'health' && m.village === village);
    expect({ topic: got.topic, qos: got.qos, retain: got.retain }).toEqual({ topic: `village-edge/${village}/health`, qos: 0, retain: false });
    expect(healthPayloadSchema.parse(got.payload)).toEqual(health);
  });

  it('publishes a retained offline state on a clean stop, and stays stopped', async () => {
    const desk = await county();
    const { link: uplink, village } = await started(link());
    await desk.waitFor(stateOf(village, true));
    const disconnected = nextEvent(uplink, 'disconnected');
    await uplink.stop();
    expect(await disconnected).toEqual(['stopped']);
    expect(uplink.connected).toBe(false);
    const live = await desk.waitFor(stateOf(village, false));
    // `since` tells the clean goodbye from the will, which is fixed before any connect and carries no time.
    expect(statePayloadSchema.parse(live.payload).since).toBeDefined();
    const late = await county();
    expect((await late.waitFor(stateOf(village, false))).retain).toBe(true);
    await expect(uplink.publish('alarm', sampleAlarm(village))).rejects.toBeInstanceOf(LinkDownError);
  });

  it.each(versions)('leaves a retained offline will when its connection dies without a DISCONNECT (MQTT version %i)', async (version) => {
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: brokerPort });
    cleanups.push(() => proxy.close());
    const desk = await county();
    const { link: uplink, village } = await started(link({ url: proxy.url, protocolVersion: version }));
    await desk.waitFor(stateOf(village, true));
    const disconnected = nextEvent(uplink, 'disconnected');
    // As when the village loses power or its uplink: the TCP connection ends, no MQTT goodbye is sent.
    await proxy.close();
    await disconnected;
    const will = await desk.waitFor(stateOf(village, false));
    expect(statePayloadSchema.parse(will.payload)).toEqual({ online: false, village, version: '0.0.0-test' });
    const late = await county();
    expect((await late.waitFor(stateOf(village, false))).retain).toBe(true);
  });

  it('hands every county message, unparsed, to every command listener, even when one of them throws', async () => {
    const desk = await county();
    const { link: uplink, village, lines } = link();
    const seen: InboundCommand[] = [];
    uplink.on('command', () => {
      throw new Error('listener bug');
    });
    uplink.on('command', (message) => void seen.push(message));
    await started({ link: uplink, village, lines });
    // Judging the bytes (signature, size, claims) is the command gate's job, not the link's.
    await desk.send(village, 'ack', 'eyJhbGciOiJFZERTQSJ9.e30.c2ln');
    await desk.send(village, 'broadcastAll', Buffer.from([0xff, 0x00, 0x7b]));
    await desk.send(village, 'stop', '');
    await waitFor('three commands handed on', () => seen.length === 3);
    expect(seen.map((m) => [m.command, m.audienceTopic, m.topic, m.payload.toString('latin1')])).toEqual([
      ['ack', 'village', `village-edge/${village}/ack`, 'eyJhbGciOiJFZERTQSJ9.e30.c2ln'],
      ['broadcast', 'all', 'village-edge/all/cmd/broadcast', '\xff\x00{'],
      ['stop', 'village', `village-edge/${village}/cmd/stop`, ''],
    ]);
    expect(messagesOf(lines)).toContain('a county link "command" listener failed');
    expect(uplink.connected).toBe(true);
  });

  it.each(versions)('keeps its session (MQTT version %i): an ack sent while the village was away arrives on reconnect', async (version) => {
    const desk = await county();
    const village = uniqueVillage();
    const first = await started(link({ village, protocolVersion: version }));
    await first.link.stop();
    const token = `token-${randomUUID()}`;
    await desk.send(village, 'ack', token);
    const second = link({ village, protocolVersion: version });
    const command = nextEvent(second.link, 'command');
    second.link.start();
    expect((await command)[0].payload.toString()).toBe(token);
  });

  it('ignores, with a debug line, messages on topics it does not handle (a subscription left in its session)', async () => {
    const village = uniqueVillage();
    const stale = `village-edge/${village}/retired-topic`;
    // An older version of the village, same client id, subscribed to a topic this one no longer knows.
    const old = await mqtt.connectAsync(brokerUrl, { clientId: `village-edge-${village}`, clean: false, protocolVersion: 4 });
    await old.subscribeAsync(stale, { qos: 1 });
    await old.endAsync();
    const made = link({ village, protocolVersion: 4 });
    const { lines } = await started(made);
    const publisher = await mqtt.connectAsync(brokerUrl, { protocolVersion: 4 });
    cleanups.push(() => publisher.endAsync());
    await publisher.publishAsync(stale, '{"id":"x"}', { qos: 1 });
    await waitFor('the debug line of the ignored message', () => lines.some((l) => l.msg.startsWith('ignored a message') && l['topic'] === stale));
    expect(lines.filter((l) => l.msg.startsWith('rejected county message'))).toEqual([]);
    expect(made.link.connected).toBe(true);
  });

  it('rejects a publish whose connection drops before the PUBACK, and reconnects', async () => {
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: brokerPort });
    cleanups.push(() => proxy.close());
    const { link: uplink, village } = await started(link({ url: proxy.url }));
    proxy.freeze();
    const publishing = uplink.publish('alarm', sampleAlarm(village));
    let settled = false;
    void publishing.then(
      () => (settled = true),
      () => (settled = true),
    );
    // Proving that nothing happens: no PUBACK can come through the frozen relay, so the publish stays open.
    await sleep(100);
    expect(settled).toBe(false);
    const reconnected = nextEvent(uplink, 'connected');
    proxy.thaw();
    proxy.cutAll();
    await expect(publishing).rejects.toThrow(/dropped before PUBACK/);
    await reconnected;
    await uplink.publish('alarm', sampleAlarm(village));
  });

  it('stops within seconds when the broker has stopped answering, leaving nothing that keeps the process alive', async () => {
    // In a child process, because "nothing left" is best proved by the process exiting by itself.
    const support = (name: string): string => JSON.stringify(new URL(`../support/${name}`, import.meta.url).href);
    const script = `
      import { LinkDownError } from ${JSON.stringify(new URL('../../src/county/mqtt-link.ts', import.meta.url).href)};
      import { nextEvent, sampleAlarm, testLink } from ${support('link-fixtures.ts')};
      import { startTcpProxy } from ${support('tcp-proxy.ts')};
      const proxy = await startTcpProxy({ host: '127.0.0.1', port: ${brokerPort} });
      const { link, village } = testLink({ url: proxy.url, protocolVersion: ${protocolVersion} });
      const connected = nextEvent(link, 'connected');
      link.start();
      await connected;
      proxy.freeze();
      const unacked = link.publish('alarm', sampleAlarm(village)).catch((error) => error);
      const t0 = performance.now();
      await link.stop();
      const stopMs = Math.round(performance.now() - t0);
      const rejected = (await unacked) instanceof LinkDownError;
      await proxy.close();
      console.log(JSON.stringify({ stopMs, rejected, village }));
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    cleanups.push(() => child.kill('SIGKILL'));
    const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
    const { stopMs, rejected, village } = JSON.parse(line) as { stopMs: number; rejected: boolean; village: string };
    expect(stopMs).toBeLessThan(4500);
    expect(rejected).toBe(true);
    // A leaked timer or socket would keep it running; a few hundred ms covers Node's own exit.
    await waitFor('the child to exit by itself', () => child.exitCode !== null, { timeoutMs: 1500, intervalMs: 20 });
    expect(child.exitCode).toBe(0);
    // Its offline state never got through, so the broker published the will instead.
    const desk = await county();
    expect((await desk.waitFor(stateOf(village, false))).retain).toBe(true);
  });

  it('sets TCP no-delay on the socket of every connection, reconnects included', async () => {
    // Without it a QoS 1 publish can wait ~40 ms for a delayed ACK (TOOLCHAIN.md, "Nagle on loopback").
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: brokerPort });
    cleanups.push(() => proxy.close());
    const proxyPort = Number(new URL(proxy.url).port);
    const noDelay = vi.spyOn(Socket.prototype, 'setNoDelay');
    const linkSockets = (): Socket[] => noDelay.mock.contexts.filter((s): s is Socket => s instanceof Socket && s.remotePort === proxyPort);
    const { link: uplink } = await started(link({ url: proxy.url }));
    expect(linkSockets()).toHaveLength(1);
    expect(noDelay.mock.calls[noDelay.mock.contexts.indexOf(linkSockets()[0])]).toEqual([true]);
    const reconnected = nextEvent(uplink, 'connected');
    proxy.cutAll();
    await reconnected;
    expect(new Set(linkSockets()).size).toBe(2);
  });
});

describe(`county link when its broker (${brokerKind}) goes down`, () => {
  it('rejects publishes at once while the broker is down and reconnects by itself when it returns on the same port', async () => {
    const broker = await startBroker();
    cleanups.push(() => broker.stop());
    const made = testLink({ url: broker.url, protocolVersion: broker.protocolVersion });
    cleanups.push(() => made.link.stop());
    const { link: uplink, village } = await started(made);

    const disconnected = nextEvent(uplink, 'disconnected');
    await broker.stop();
    await disconnected;
    expect(uplink.connected).toBe(false);
    const t0 = performance.now();
    await expect(uplink.publish('alarm', sampleAlarm(village))).rejects.toBeInstanceOf(LinkDownError);
    expect(performance.now() - t0).toBeLessThan(50);

    const reconnected = nextEvent(uplink, 'connected', 10_000);
    await broker.restart();
    await reconnected;
    await uplink.publish('alarm', sampleAlarm(village));
    // The restarted broker lost its retained messages; the link announced itself again on reconnect.
    const desk = await connectCounty({ url: broker.url, protocolVersion: broker.protocolVersion });
    cleanups.push(() => desk.close());
    expect((await desk.waitFor(stateOf(village, true))).retain).toBe(true);
    expect(messagesOf(made.lines)).toContain('county link down');
  });
});

describe('county link reconnect backoff (mqtt.js reconnects only when the link tells it to)', () => {
  /** Each measured delay at least the configured one (less a timer's early millisecond), and not far past it. */
  function expectDelays(measured: readonly number[], configured: readonly number[]): void {
    const seen = `measured ${JSON.stringify(measured.map(Math.round))}, configured ${JSON.stringify(configured)}`;
    expect(measured.length, seen).toBe(configured.length);
    configured.forEach((delay, i) => {
      expect(measured[i], seen).toBeGreaterThanOrEqual(delay - 5);
      expect(measured[i], seen).toBeLessThan(delay * 1.5 + 50);
    });
  }
  const gaps = (stamps: readonly number[]): number[] => stamps.slice(1).map((at, i) => at - stamps[i]!);

  it('waits initialMs, doubling up to maxMs, between refused attempts, and initialMs again after a good connection', async () => {
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: brokerPort });
    cleanups.push(() => proxy.close());
    proxy.refuse();
    // The top of each jittered range: every delay is then exactly initialMs doubled per failed attempt, capped.
    const made = link({ url: proxy.url, reconnect: { initialMs: 100, maxMs: 800 }, random: () => 1 });
    made.link.start();
    await waitFor('six refused connection attempts', () => proxy.refused.length >= 6, 10_000);
    expectDelays(gaps(proxy.refused.slice(0, 6)), [100, 200, 400, 800, 800]);

    const connected = nextEvent(made.link, 'connected');
    proxy.relay();
    await connected;

    // A good connection resets the backoff: the next outage starts from initialMs.
    proxy.refuse();
    const from = proxy.refused.length;
    const cutAt = performance.now();
    proxy.cutAll();
    await waitFor('two refused attempts after the cut', () => proxy.refused.length >= from + 2);
    expectDelays(gaps([cutAt, ...proxy.refused.slice(from, from + 2)]), [100, 200]);
  });
});

describe('county link on the embedded aedes broker (MQTT 3.1.1)', () => {
  it('connects, publishes an alarm and receives its ack', async () => {
    const embedded = await startEmbeddedBroker({ host: '127.0.0.1', port: 0, logger: createLogger({ level: 'silent' }) });
    cleanups.push(() => embedded.close());
    const signer = await createCountySigner({ villageId: 'unused' });
    const desk = await connectCounty({ url: embedded.url, protocolVersion: 4, autoAck: true, signer });
    cleanups.push(() => desk.close());
    const made = testLink({ url: embedded.url, protocolVersion: 4 });
    cleanups.push(() => made.link.stop());
    const { link: uplink, village } = await started(made);
    const alarm = sampleAlarm(village);
    const acked = nextEvent(uplink, 'command');
    await uplink.publish('alarm', alarm);
    const [ack] = await acked;
    expect(ack.command).toBe('ack');
    await desk.waitFor(stateOf(village, true));
  });
});

describe('county link credentials', () => {
  it('sends the credentials of the url when the config names none, and the config’s when it does', async () => {
    const { Aedes } = await import('aedes');
    const seen: Array<{ username: string | undefined; password: string | undefined }> = [];
    const aedes = await Aedes.createBroker({
      authenticate: (_client, username, password, done) => {
        seen.push({ username, password: password?.toString('utf8') });
        done(null, true);
      },
    });
    const server = createServer((socket) => aedes.handle(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(async () => {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const { port } = server.address() as AddressInfo;

    // Percent-encoded in the url, as a url must carry `@` and `:`.
    await started(link({ url: `mqtt://vil%40lage:s%3Acret@127.0.0.1:${port}`, protocolVersion: 4 }));
    expect(seen.at(-1)).toEqual({ username: 'vil@lage', password: 's:cret' });

    await started(link({ url: `mqtt://other:wrong@127.0.0.1:${port}`, protocolVersion: 4, county: { username: 'village-7', password: 'right' } }));
    expect(seen.at(-1)).toEqual({ username: 'village-7', password: 'right' });
  });
});
