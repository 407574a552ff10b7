import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVillageEdge, type VillageEdge } from '../../src/app.ts';
import { alarmPayloadSchema } from '../../src/contract/payloads.ts';
import { startBroker, type TestBroker } from '../support/broker.ts';
import { connectCounty, distinctReports, type CountyClient } from '../support/county.ts';
import { createCountySigner, type CountySigner } from '../support/county-signer.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { RecordingPlayer } from '../support/recording-player.ts';
import { villageConfig, oneZoneBroadcast, countyLinkUp } from '../support/village.ts';
import { waitFor } from '../support/wait.ts';

/**
 * A junk flood must not delay real acks or wear the card: thousands of commands signed with a wrong key
 * under the county's kid (each needs a real signature check to refuse) arrive on cmd/broadcast, then a
 * genuine broadcast, then the ack of a waiting alarm. The ack must not wait behind the junk, and the
 * rejections must be logged as a count, not a line each.
 */

const JUNK = 5000;

let broker: TestBroker;
let brokerUrl: string;
let protocolVersion: 4 | 5;
let county: CountyClient;
let signer: CountySigner;
let app: VillageEdge | undefined;

beforeAll(async () => {
  // Mosquitto keeps at most 1000 messages queued for a client by default and drops the rest, the ack among
  // them when the village falls behind a flood; this test is about the village, so the broker keeps them all.
  broker = await startBroker({ mosquittoConfig: ['max_queued_messages 0'] });
  brokerUrl = broker.url;
  protocolVersion = broker.protocolVersion;
  signer = await createCountySigner({ villageId: 'flood' });
  county = await connectCounty({ url: brokerUrl, protocolVersion, autoAck: false, signer });
});

afterAll(async () => {
  await app?.stop();
  await county.close();
  await broker.stop();
});

describe('a flood of wrong-key commands', () => {
  it(`(${JUNK} of them) does not hold back an ack sent after it, and is logged as a count`, async () => {
    const villageId = 'flood';
    const { logger, lines } = memoryLogger('info');
    const config = villageConfig({
      villageId,
      brokerUrl,
      protocolVersion,
      columns: 1,
      commandKeys: [signer.keyEntry],
      ...oneZoneBroadcast({ idleTailMs: 200 }, 'east'),
    });
    app = createVillageEdge({ config, version: '0.0.0-test', logger, adapters: { player: new RecordingPlayer(20) } });
    await app.start();
    await waitFor('the county link up', countyLinkUp(app!));
    const column = app.devices.simulated('column-1')!;
    column.press();
    const alarm = alarmPayloadSchema.parse((await county.waitFor((m) => m.kind === 'alarm' && m.village === villageId)).payload);

    // Signed beforehand, so the flood arrives as fast as the broker passes it on.
    const forger = await createCountySigner({ villageId, kid: signer.kid });
    const junk = await Promise.all(Array.from({ length: JUNK }, (_, i) => forger.broadcast({ aud: villageId, jti: `junk-${i}-0000` })));
    const control = await signer.broadcast({ aud: villageId, jti: 'flood-control' });
    const ack = await signer.ack({ aud: villageId, id: alarm.id });
    const floodStarted = Date.now();
    const sends = junk.map((token) => county.send(villageId, 'broadcast', token));
    sends.push(county.send(villageId, 'broadcast', control));
    await Promise.all(sends);
    const ackSentAt = Date.now();
    await county.send(villageId, 'ack', ack);

    const accepted = (l: { msg: string; jti?: unknown }) => l.msg === 'county broadcast accepted by the gate' && l.jti === 'flood-control';
    await waitFor("the column showing 'received' and the command accepted", () => column.indicator === 'received' && lines.some(accepted), 60_000);
    const ackLine = lines.findIndex((l) => l.msg === 'alarm acknowledged by county');
    const controlLine = lines.findIndex(accepted);
    const at = (i: number) => Date.parse(String(lines[i]!['time']));
    const rejectionLines = lines.filter((l) => l.msg === 'county command rejected').length;
    console.log(
      `flood of ${JUNK} wrong-key commands, sent in ${ackSentAt - floodStarted} ms: ack handled ${at(ackLine) - ackSentAt} ms after it was sent; ` +
        `the broadcast sent before it was accepted ${at(controlLine) - ackSentAt} ms after; ${rejectionLines} "county command rejected" lines`,
    );
    // Sent after the whole flood and the genuine broadcast, the ack is handled before the broadcast lane is through.
    expect(ackLine).toBeLessThan(controlLine);
    // The junk is logged within the reports' budget: the first 20 of the minute, the rest counted.
    expect(rejectionLines).toBeLessThanOrEqual(20);
    expect(distinctReports(county, villageId).filter((r) => r.event === 'rejected').length).toBeLessThanOrEqual(21);
    await app.stop();
    app = undefined;
    const summary = lines.find((l) => l.msg.startsWith('county commands rejected (rate-limited'));
    expect(Object.keys(summary?.['byReason'] as object)).toEqual(['bad-signature']);
    expect(summary?.['count']).toBeGreaterThan(0);
    expect(summary?.['count']).toBe(JUNK - rejectionLines);
  }, 120_000);
});
