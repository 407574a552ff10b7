import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { createCountySigner, type CountySigner } from '../support/county-signer.ts';
import { createVillageEdge } from '../../src/app.ts';
import { alarmPayloadSchema, faultPayloadSchema, healthPayloadSchema, reportPayloadSchema, statePayloadSchema } from '../../src/contract/payloads.ts';
import { connectCounty, type CountyClient, type CountyMessage } from '../support/county.ts';
import { startBroker, type TestBroker } from '../support/broker.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { villageConfig, countyLinkUp } from '../support/village.ts';
import { waitFor } from '../support/wait.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';

const brokerUrl = inject('brokerUrl');
const protocolVersion = inject('brokerProtocolVersion');

let signer: CountySigner;
beforeAll(async () => {
  signer = await createCountySigner({ villageId: 'unused' });
});

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function village(villageId: string, url = brokerUrl, timing: Record<string, unknown> = {}, now?: () => number) {
  const { logger, lines } = memoryLogger('info');
  const app = createVillageEdge({
    config: villageConfig({ villageId, brokerUrl: url, protocolVersion, columns: 3, timing, commandKeys: [signer.keyEntry] }),
    version: '0.0.0-test',
    logger,
    ...(now === undefined ? {} : { adapters: { now } }),
  });
  await app.start();
  cleanups.push(() => app.stop());
  return { app, lines, column: (n: number) => app.devices.simulated(`column-${n}`)! };
}

async function county(url = brokerUrl, autoAck = true): Promise<CountyClient> {
  const client = await connectCounty({ url, protocolVersion, autoAck, signer });
  cleanups.push(() => client.close());
  return client;
}

describe('alarm relay, end to end through a real broker', () => {
  it('announces itself, relays a press, and shows the villager the county received it', async () => {
    const dispatch = await county();
    const { app, column } = await village('e2e-a');
    const birth = await dispatch.waitFor((m) => m.kind === 'state' && m.village === 'e2e-a');
    expect(statePayloadSchema.parse(birth.payload).online).toBe(true);
    await waitFor('the county link up', countyLinkUp(app));

    const pressedAt = Date.now();
    column(1).press();
    const message = await dispatch.waitFor((m) => m.kind === 'alarm' && m.village === 'e2e-a');
    const latencyMs = Date.now() - pressedAt;
    const alarm = alarmPayloadSchema.parse(message.payload);
    expect(alarm).toMatchObject({ terminal: 'column-1', type: 'button', seq: 1, attempt: 1 });
    expect(message.qos).toBe(1);
    expect(latencyMs).toBeLessThan(1000);
    await waitFor("column 1 to show 'received'", () => column(1).indicator === 'received');
    // `off` at start: nothing is open, and the column must not keep what it showed before a restart.
    expect(column(1).commands.slice(0, 4)).toEqual(['indicator off', 'reset button', 'indicator sent', 'indicator received']);
    await waitFor('an empty outbox', async () => (await app.status()).health.outbox.depth === 0);
  });

  it('runs two villages in one process without either seeing the other', async () => {
    const dispatch = await county();
    const a = await village('e2e-b1');
    const b = await village('e2e-b2');
    await waitFor('both county links up', async () => (await a.app.status()).link.connected && (await b.app.status()).link.connected);
    a.column(2).press();
    b.column(3).press('tamper');
    const fromA = alarmPayloadSchema.parse((await dispatch.waitFor((m) => m.kind === 'alarm' && m.village === 'e2e-b1')).payload);
    const fromB = alarmPayloadSchema.parse((await dispatch.waitFor((m) => m.kind === 'alarm' && m.village === 'e2e-b2')).payload);
    expect([fromA.terminal, fromA.type, fromB.terminal, fromB.type]).toEqual(['column-2', 'button', 'column-3', 'tamper']);
    expect(fromA.seq).toBe(1);
    expect(fromB.seq).toBe(1);
  });

  it('reports a device that stops answering as a fault, and its recovery', async () => {
    const dispatch = await county();
    const { app, column } = await village('e2e-c');
    await waitFor('the county link up', countyLinkUp(app));
    column(2).setOnline(false);
    const offline = faultPayloadSchema.parse((await dispatch.waitFor((m) => m.kind === 'fault' && m.village === 'e2e-c')).payload);
    expect(offline).toMatchObject({ kind: 'device-offline', subject: 'column-2', seq: 1 });
    column(2).setOnline(true);
    const recovered = await dispatch.waitFor(
      (m) => m.kind === 'fault' && m.village === 'e2e-c' && (m.payload as { kind: string }).kind === 'device-recovered',
    );
    expect(faultPayloadSchema.parse(recovered.payload).seq).toBe(2);
    await waitFor('an empty outbox', async () => (await app.status()).health.outbox.depth === 0);
  });

  it('publishes health with devices, outbox depth and memory', async () => {
    const dispatch = await county();
    await village('e2e-d', brokerUrl, { healthIntervalMs: 1000 });
    const health = healthPayloadSchema.parse((await dispatch.waitFor((m) => m.kind === 'health' && m.village === 'e2e-d')).payload);
    expect(health.devices.map((d) => [d.id, d.online, d.latching])).toEqual([
      ['column-1', true, true],
      ['column-2', true, true],
      ['column-3', true, true],
    ]);
    expect(health.outbox.depth).toBe(0);
    expect(health.memory.rssBytes).toBeGreaterThan(0);
    expect(health.problems).toEqual([]);
  });

  it('runs the good devices when one is misconfigured, and tells the county in health', async () => {
    const dispatch = await county();
    const { logger } = memoryLogger('info');
    const config = villageConfig({
      villageId: 'e2e-h',
      brokerUrl,
      protocolVersion,
      columns: 1,
      timing: { healthIntervalMs: 1000 },
      extraDevices: [{ id: 'ghost', bus: 'sim', unitId: 9, profile: 'no-such-model', role: 'alarm-column', label: 'ghost' }],
      commandKeys: [signer.keyEntry],
    });
    const app = createVillageEdge({ config, version: '0.0.0-test', logger });
    await app.start();
    cleanups.push(() => app.stop());
    const health = healthPayloadSchema.parse((await dispatch.waitFor((m) => m.kind === 'health' && m.village === 'e2e-h')).payload);
    expect(health.problems).toEqual([
      expect.stringMatching(/^devices\[1\] \(ghost\): no device profile named "no-such-model" \(known: .*ve-ac100-rtu/),
    ]);
    app.devices.simulated('column-1')!.press();
    await dispatch.waitFor((m) => m.kind === 'alarm' && m.village === 'e2e-h');
  });

  it('keeps alarms raised while the broker is down and delivers them, in order, when it is back', async () => {
    const broker: TestBroker = await startBroker();
    cleanups.push(() => broker.stop());
    const { app, column } = await village('e2e-e', broker.url);
    await waitFor('the county link up', countyLinkUp(app));
    await broker.stop();
    await waitFor('the county link down', async () => !(await app.status()).link.connected);
    for (const n of [1, 2, 3]) column(n).press();
    await waitFor(
      "three alarms stored and column 1 showing 'sent'",
      async () => (await app.status()).health.outbox.alarm === 3 && column(1).indicator === 'sent',
    );

    await broker.restart();
    const dispatch = await county(broker.url);
    await waitFor('three alarms at the county', () => dispatch.messages.filter((m) => m.kind === 'alarm').length >= 3, 10_000);
    const seqs = dispatch.messages.filter((m) => m.kind === 'alarm').map((m) => alarmPayloadSchema.parse(m.payload).seq);
    expect(seqs.slice(0, 3)).toEqual([1, 2, 3]);
    await waitFor(
      "an empty outbox and column 3 showing 'received'",
      async () => (await app.status()).health.outbox.depth === 0 && column(3).indicator === 'received',
      10_000,
    );
  });

  it('takes only signed acks: junk, unsigned and forged acks are rejected and reported, a signed one works', async () => {
    const dispatch = await county(brokerUrl, false);
    const { app, column, lines } = await village('e2e-f');
    await waitFor('the county link up', countyLinkUp(app));
    column(1).press();
    const alarm = alarmPayloadSchema.parse((await dispatch.waitFor((m) => m.kind === 'alarm' && m.village === 'e2e-f')).payload);
    const forger = await createCountySigner({ villageId: 'e2e-f', kid: signer.kid });
    await dispatch.send('e2e-f', 'ack', 'not json');
    await dispatch.send('e2e-f', 'ack', JSON.stringify({ id: alarm.id }));
    // Over county.maxInboundBytes (32 KiB), under the packet cap: a broker passes it on under MQTT 5 too.
    await dispatch.send('e2e-f', 'ack', Buffer.alloc(40_000, 1));
    await dispatch.send('e2e-f', 'ack', await forger.ack({ id: alarm.id }));
    // Commands are judged in arrival order: once the forged ack is rejected, every bad ack before it was judged.
    await waitFor('the forged ack rejected', () => lines.some((l) => l.msg === 'county command rejected' && l['reason'] === 'bad-signature'));
    expect(column(1).indicator).toBe('sent');
    await dispatch.ack('e2e-f', alarm.id);
    await waitFor("column 1 to show 'received'", () => column(1).indicator === 'received');
    // A rejected ack is logged and reported once per cause a minute (the second malformed one is counted).
    const rejected = lines.filter((l) => l.msg === 'county command rejected').map((l) => l['reason']);
    expect(rejected).toEqual(['malformed', 'oversized', 'bad-signature']);
    const reports = await waitFor(
      'three reports from e2e-f',
      () => dispatch.messages.filter((m) => m.kind === 'report' && m.village === 'e2e-f').length >= 3,
      5000,
    ).then(() => dispatch.messages.filter((m) => m.kind === 'report' && m.village === 'e2e-f').map((m) => reportPayloadSchema.parse(m.payload)));
    expect(reports.map((r) => [r.event, r.reason?.split(':')[0], r.jti])).toEqual([
      ['rejected', 'malformed', null],
      ['rejected', 'oversized', null],
      ['rejected', 'bad-signature', null],
    ]);
  });

  it('says so in health when the embedded broker cannot take its port, instead of quietly using whatever listens there', async () => {
    const dispatch = await county();
    const { logger } = memoryLogger('info');
    const config = villageConfig({
      villageId: 'e2e-port',
      brokerUrl,
      protocolVersion: 4,
      columns: 1,
      timing: { healthIntervalMs: 1000 },
      commandKeys: [signer.keyEntry],
    });
    // The shared test broker already listens on the url's port.
    const app = createVillageEdge({ config: { ...config, county: { ...config.county, embeddedBroker: true } }, version: '0.0.0-test', logger });
    await app.start();
    cleanups.push(() => app.stop());
    const health = healthPayloadSchema.parse((await dispatch.waitFor((m) => m.kind === 'health' && m.village === 'e2e-port')).payload);
    expect(health.problems).toEqual([expect.stringMatching(/^county\.url: the embedded broker cannot listen on 127\.0\.0\.1:\d+ \(.*EADDRINUSE/)]);
  });

  it('tells the county every press: presses after a copy went out travel in follow-ups, through a stalled link', async () => {
    const broker: TestBroker = await startBroker();
    cleanups.push(() => broker.stop());
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: broker.port });
    cleanups.push(() => proxy.close());
    // A county that handles each id once and ignores later copies, as the contract tells it to.
    const dispatch = await county(broker.url);
    const { app, column } = await village('e2e-k', proxy.url, { debounceMs: 0 });
    await waitFor('the county link up', countyLinkUp(app));
    // Publishes still reach the broker; PUBACKs and the county's acks do not come back.
    proxy.freeze();
    const resets = () => column(1).commands.filter((c) => c === 'reset button').length;
    for (let n = 1; n <= 50; n++) {
      column(1).press();
      await waitFor('`n` latch resets', () => resets() === n);
    }
    proxy.thaw();
    proxy.cutAll();
    const firstCopies = () => {
      const byId = new Map<string, { presses: number; chain: string }>();
      for (const m of dispatch.messages) {
        if (m.kind !== 'alarm' || m.village !== 'e2e-k') continue;
        const alarm = alarmPayloadSchema.parse(m.payload);
        if (!byId.has(alarm.id)) byId.set(alarm.id, { presses: alarm.presses, chain: alarm.followUpOf ?? alarm.id });
      }
      return [...byId.values()];
    };
    await waitFor('a copy counting 50 presses', () => firstCopies().some((c) => c.presses === 50), 20_000);
    const chains = new Set(firstCopies().map((c) => c.chain));
    expect(chains.size).toBe(1);
    await waitFor('an empty outbox', async () => (await app.status()).health.outbox.depth === 0, 20_000);
    console.log(`  50 presses through a stalled link: ${firstCopies().length} records (the alarm and its follow-ups), highest count 50`);
  });

  it('takes acks with the village clock 10 minutes behind: the column shows received and nothing is rejected', async () => {
    const dispatch = await county();
    const behind = () => Date.now() - 10 * 60_000;
    const { app, column, lines } = await village('e2e-i', brokerUrl, {}, behind);
    await waitFor('the county link up', countyLinkUp(app));
    column(1).press();
    await dispatch.waitFor((m) => m.kind === 'alarm' && m.village === 'e2e-i');
    await waitFor("column 1 to show 'received'", () => column(1).indicator === 'received');
    await waitFor('an empty outbox', async () => (await app.status()).health.outbox.depth === 0);
    expect(lines.filter((l) => l.msg === 'county command rejected')).toEqual([]);
    expect(dispatch.messages.filter((m) => m.kind === 'report' && m.village === 'e2e-i')).toEqual([]);
  });

  it('reports rejected acks once per cause a minute, so an ack the village refuses cannot feed a report loop', async () => {
    const dispatch = await county(brokerUrl, false);
    const { app, lines } = await village('e2e-j');
    await waitFor('the county link up', countyLinkUp(app));
    const forger = await createCountySigner({ villageId: 'e2e-j', kid: signer.kid });
    const stranger = await createCountySigner({ villageId: 'e2e-j' });
    for (let i = 0; i < 5; i++) {
      await dispatch.send('e2e-j', 'ack', await forger.ack({ aud: 'e2e-j' }));
      await dispatch.send('e2e-j', 'ack', `not a jws ${i}`);
    }
    // Rejections on other topics are not limited per cause: this one's report closes the sequence.
    await dispatch.send('e2e-j', 'stop', await stranger.stop({ aud: 'e2e-j' }));
    await dispatch.waitFor(
      (m) => m.kind === 'report' && m.village === 'e2e-j' && String((m.payload as { reason?: string }).reason).startsWith('unknown-kid'),
    );
    const reasons = dispatch.messages
      .filter((m) => m.kind === 'report' && m.village === 'e2e-j')
      .map((m) => reportPayloadSchema.parse(m.payload).reason?.split(':')[0]);
    // Junk that needs no signature check is refused at once, so the order of the first two is not fixed.
    expect(reasons.slice(0, 2).sort()).toEqual(['bad-signature', 'malformed']);
    expect(reasons.slice(2)).toEqual(['unknown-kid']);
    expect(
      lines
        .filter((l) => l.msg === 'county command rejected')
        .map((l) => l['reason'])
        .sort(),
    ).toEqual(['bad-signature', 'malformed', 'unknown-kid']);
    // The other eight are counted, and said in one summary report and one log line when the window ends.
    await app.stop();
    cleanups.pop();
    const summary = lines.find((l) => l.msg.startsWith('county commands rejected (rate-limited'));
    expect(summary?.['byReason']).toEqual({ 'bad-signature': 4, malformed: 4 });
  });

  it("is back at the county within seconds of the broker's return while an alarm waits, whatever its backoff had grown to", async () => {
    const broker: TestBroker = await startBroker();
    cleanups.push(() => broker.stop());
    const { logger } = memoryLogger('info');
    const config = villageConfig({ villageId: 'e2e-l', brokerUrl: broker.url, protocolVersion, columns: 1, commandKeys: [signer.keyEntry] });
    // A backoff that had grown long: without an alarm waiting the next attempt would come 10-20 s after the drop.
    const app = createVillageEdge({
      config: { ...config, county: { ...config.county, reconnect: { initialMs: 20_000, maxMs: 60_000 } } },
      version: '0.0.0-test',
      logger,
    });
    await app.start();
    cleanups.push(() => app.stop());
    await waitFor('the county link up', countyLinkUp(app));
    await broker.stop();
    await waitFor('the county link down', async () => !(await app.status()).link.connected);
    app.devices.simulated('column-1')!.press();
    await waitFor('one alarm in the outbox', async () => (await app.status()).health.outbox.alarm === 1);
    // The outage goes on a while (a duration, not a wait for anything): the village keeps trying within 2 s, not 10-20.
    await sleep(3000);
    await broker.restart();
    const backAt = Date.now();
    const dispatch = await county(broker.url);
    await dispatch.waitFor((m) => m.kind === 'alarm' && m.village === 'e2e-l', 10_000);
    const elapsedMs = Date.now() - backAt;
    console.log(`  broker back → pending alarm at the county: ${elapsedMs} ms`);
    expect(elapsedMs).toBeLessThan(5000);
  });

  it('does not send again the copies its MQTT client had queued before a drop: the outbox republishes what is unacked', async () => {
    const broker: TestBroker = await startBroker();
    cleanups.push(() => broker.stop());
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: broker.port });
    cleanups.push(() => proxy.close());
    const dispatch = await county(broker.url, false);
    const { app, column } = await village('e2e-m', proxy.url);
    await waitFor('the county link up', countyLinkUp(app));
    // The copy reaches the broker, its PUBACK never comes back: it sits in the client's queue.
    proxy.freeze();
    column(1).press();
    await dispatch.waitFor((m) => m.kind === 'alarm' && m.village === 'e2e-m');
    proxy.thaw();
    proxy.cutAll();
    await dispatch.waitFor((m) => m.kind === 'alarm' && m.village === 'e2e-m' && alarmPayloadSchema.parse(m.payload).attempt >= 2, 10_000);
    const attempts = dispatch.messages
      .filter((m) => m.kind === 'alarm' && m.village === 'e2e-m')
      .map((m) => alarmPayloadSchema.parse(m.payload).attempt);
    // Attempt 1 once (not resent by the client after the reconnect), then the outbox's own copies.
    expect(attempts.filter((a) => a === 1)).toEqual([1]);
  });

  it('names a player program that is not installed in health, at start rather than at the first announcement', async () => {
    const dispatch = await county();
    const { logger } = memoryLogger('info');
    const config = villageConfig({
      villageId: 'e2e-n',
      brokerUrl,
      protocolVersion,
      columns: 1,
      timing: { healthIntervalMs: 1000 },
      commandKeys: [signer.keyEntry],
      broadcast: { output: { device: 'null' }, player: { tts: ['no-such-speaker', '--', '{text}'] } },
    });
    const app = createVillageEdge({ config, version: '0.0.0-test', logger });
    await app.start();
    cleanups.push(() => app.stop());
    const health = healthPayloadSchema.parse((await dispatch.waitFor((m) => m.kind === 'health' && m.village === 'e2e-n')).payload);
    expect(health.problems).toEqual(['broadcast.player.tts: "no-such-speaker" is not installed or not on the PATH; what it plays will fail']);
  });

  it('says offline itself on a clean stop', async () => {
    const dispatch = await county();
    const { app } = await village('e2e-g');
    await waitFor('the county link up', countyLinkUp(app));
    cleanups.pop();
    await app.stop();
    const offline = (m: CountyMessage) => m.kind === 'state' && m.village === 'e2e-g' && (m.payload as { online: boolean }).online === false;
    const goodbye = await dispatch.waitFor(offline);
    // `since` tells the village's own goodbye from the will the broker publishes for a link that died without
    // one (fixed before any connect, the will carries no time): a stop that skipped the goodbye would pass else.
    expect(statePayloadSchema.parse(goodbye.payload)).toEqual({ online: false, village: 'e2e-g', version: '0.0.0-test', since: expect.any(String) });
    expect(goodbye.qos).toBe(1);
    // Retained, so a county desk that connects later still learns the village went away cleanly.
    const late = await county();
    const kept = await late.waitFor(offline);
    expect(kept.retain).toBe(true);
    expect(statePayloadSchema.parse(kept.payload).since).toBeDefined();
  });
});
