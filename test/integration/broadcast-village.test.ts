import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { createVillageEdge, type VillageEdge } from '../../src/app.ts';
import { alarmPayloadSchema, faultPayloadSchema, type ReportPayload } from '../../src/contract/payloads.ts';
import { connectCounty, distinctReports, type CountyClient } from '../support/county.ts';
import { createCountySigner, type CountySigner } from '../support/county-signer.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { RecordingPlayer } from '../support/recording-player.ts';
import { villageConfig, startOnline } from '../support/village.ts';
import { waitFor } from '../support/wait.ts';

const brokerUrl = inject('brokerUrl');
const protocolVersion = inject('brokerProtocolVersion');

let signer: CountySigner;
const clients: CountyClient[] = [];
const apps: VillageEdge[] = [];

beforeAll(async () => {
  signer = await createCountySigner({ villageId: 'unused' });
});
// Each test's county would otherwise ack the next test's alarms (it hears every village).
afterEach(async () => {
  for (const app of apps.splice(0)) await app.stop();
  for (const client of clients.splice(0)) await client.close();
});

async function start(villageId: string, options: { autoAck: boolean; ackTimeoutMs?: number; realPlayer?: string[] }) {
  const county = await connectCounty({ url: brokerUrl, protocolVersion, autoAck: options.autoAck, signer });
  clients.push(county);
  const player = new RecordingPlayer(100);
  const config = villageConfig({
    villageId,
    brokerUrl,
    protocolVersion,
    columns: 0,
    commandKeys: [signer.keyEntry],
    timing: { ackTimeoutMs: options.ackTimeoutMs ?? 10_000 },
    extraDevices: [
      { id: 'column-1', bus: 'sim', unitId: 1, profile: 've-ac100-rtu', role: 'alarm-column', label: 'gate', zone: 'east' },
      { id: 'relays-1', bus: 'sim', unitId: 20, profile: 've-rb8-rtu', role: 'relay-board', label: 'relays' },
      { id: 'amp-status-1', bus: 'sim', unitId: 30, profile: 've-amp60-rtu', role: 'amplifier', label: 'amp 1' },
    ],
    broadcast: {
      amplifiers: [{ id: 'amp-1', power: { device: 'relays-1', channel: 0 }, statusDevice: 'amp-status-1' }],
      zones: [
        { id: 'east', label: 'east', relay: { device: 'relays-1', channel: 1 }, amplifier: 'amp-1' },
        { id: 'school', label: 'school', relay: { device: 'relays-1', channel: 2 }, amplifier: 'amp-1' },
      ],
      powerOnGapMs: 0,
      warmUpMs: 50,
      idleTailMs: 200,
      localAlarm: { content: { kind: 'tts', text: '报警柱求助，请附近村民前往查看。' }, repeat: 20 },
      ...(options.realPlayer === undefined ? {} : { player: { tts: options.realPlayer, killTimeoutMs: 500 } }),
    },
  });
  const { logger, lines } = memoryLogger('info');
  const app = createVillageEdge({ config, version: '0.0.0-test', logger, adapters: options.realPlayer === undefined ? { player } : {} });
  apps.push(app);
  await startOnline(app);
  const reports = (): ReportPayload[] => distinctReports(county, villageId);
  return { app, county, player, reports, lines };
}

describe('broadcasts in a running village', () => {
  it('raises an overheating amplifier to the county and names it in every report covering its zones', async () => {
    const v = await start('bv-amp', { autoAck: true });
    v.app.devices.simulated('amp-status-1')!.setStatus('overheat', true);
    const fault = faultPayloadSchema.parse((await v.county.waitFor((m) => m.kind === 'fault' && m.village === 'bv-amp')).payload);
    expect(fault).toMatchObject({ kind: 'amplifier-overheat', subject: 'amp-status-1' });
    await v.county.send('bv-amp', 'broadcast', await signer.broadcast({ jti: 'bv-amp-0001', aud: 'bv-amp', zones: ['school'] }));
    await waitFor('bv-amp-0001 finished', () => v.reports().some((r) => r.jti === 'bv-amp-0001' && r.event === 'finished'));
    for (const report of v.reports().filter((r) => r.jti === 'bv-amp-0001'))
      expect(report.faultyZones).toEqual([{ zone: 'school', amplifier: 'amp-1', fault: 'amplifier amp-1: overheat' }]);
  });

  it("sounds the local alarm in the terminal's zone when the county does not ack in time, and stops it on the ack", async () => {
    const v = await start('bv-local', { autoAck: false, ackTimeoutMs: 300 });
    v.app.devices.simulated('column-1')!.press();
    const alarm = alarmPayloadSchema.parse((await v.county.waitFor((m) => m.kind === 'alarm' && m.village === 'bv-local')).payload);
    await waitFor('the local alarm to start', () => v.reports().some((r) => r.event === 'started' && r.priority === 'local-alarm'), 5000);
    const started = v.reports().find((r) => r.event === 'started' && r.priority === 'local-alarm')!;
    expect(started).toMatchObject({ jti: `local-alarm-${alarm.id}`, zones: ['east'], status: 'actual' });
    expect(v.app.devices.simulated('column-1')!.indicator).toBe('not-received');
    expect(v.player.started.at(-1)?.volume).toBe(90);
    await v.county.ack('bv-local', alarm.id);
    await waitFor(`local-alarm-${alarm.id} stopped`, () => v.reports().some((r) => r.jti === `local-alarm-${alarm.id}` && r.event === 'stopped'));
    expect(v.reports().find((r) => r.jti === `local-alarm-${alarm.id}` && r.event === 'stopped')?.reason).toMatch(/acknowledged/);
    await waitFor("column 1 to show 'received'", () => v.app.devices.simulated('column-1')!.indicator === 'received');
  });

  it('obeys the local stop input over an emergency, until it is released', async () => {
    const v = await start('bv-stop', { autoAck: true });
    await v.county.send(
      'bv-stop',
      'broadcast',
      await signer.broadcast({ jti: 'bv-stop-001', aud: 'bv-stop', priority: 'emergency', level: 1, repeat: 10 }),
    );
    await waitFor('bv-stop-001 started', () => v.reports().some((r) => r.jti === 'bv-stop-001' && r.event === 'started'));
    v.app.devices.simulated('column-1')!.setInput('stop', true);
    await waitFor('bv-stop-001 stopped', () => v.reports().some((r) => r.jti === 'bv-stop-001' && r.event === 'stopped'));
    await v.county.send('bv-stop', 'broadcast', await signer.broadcast({ jti: 'bv-stop-002', aud: 'bv-stop', priority: 'emergency', level: 1 }));
    await waitFor('bv-stop-002 stopped', () => v.reports().some((r) => r.jti === 'bv-stop-002' && r.event === 'stopped'));
    expect(
      v
        .reports()
        .filter((r) => r.jti === 'bv-stop-002')
        .map((r) => r.event),
    ).toEqual(['accepted', 'stopped']);
    v.app.devices.simulated('column-1')!.setInput('stop', false);
    await v.county.send('bv-stop', 'broadcast', await signer.broadcast({ jti: 'bv-stop-003', aud: 'bv-stop' }));
    await waitFor('bv-stop-003 finished', () => v.reports().some((r) => r.jti === 'bv-stop-003' && r.event === 'finished'));
  });

  it('drives the whole path for a test command but the loudspeakers, and reports tested', async () => {
    const v = await start('bv-test', { autoAck: true });
    const relaysBefore = v.app.devices.simulated('relays-1')!.commands.length;
    await v.county.send('bv-test', 'broadcastAll', await signer.broadcast({ jti: 'bv-test-001', aud: 'all', status: 'test' }));
    await waitFor('bv-test-001 tested', () => v.reports().some((r) => r.jti === 'bv-test-001' && r.event === 'tested'));
    expect(
      v
        .reports()
        .filter((r) => r.jti === 'bv-test-001')
        .map((r) => [r.event, r.status]),
    ).toEqual([
      ['accepted', 'test'],
      ['tested', 'test'],
    ]);
    expect(v.player.started).toHaveLength(0);
    expect(v.app.devices.simulated('relays-1')!.commands.slice(relaysBefore)).toEqual([]);
  });

  it('kills the real player process of an announcement when an emergency preempts it', async () => {
    // The real process player; `sleep` stands in for a long programme.
    const v = await start('bv-kill', { autoAck: true, realPlayer: ['sh', '-c', 'sleep 30', '{text}'] });
    const pids = () => v.lines.filter((l) => l.msg === 'player started').map((l) => l['pid'] as number);
    await v.county.send('bv-kill', 'broadcast', await signer.broadcast({ jti: 'bv-kill-ann', aud: 'bv-kill' }));
    await waitFor('one player process', () => pids().length === 1);
    const first = pids()[0]!;
    expect(() => process.kill(first, 0)).not.toThrow();
    await v.county.send('bv-kill', 'broadcast', await signer.broadcast({ jti: 'bv-kill-emg', aud: 'bv-kill', priority: 'emergency', level: 1 }));
    await waitFor('bv-kill-ann preempted', () => v.reports().some((r) => r.jti === 'bv-kill-ann' && r.event === 'preempted'));
    await waitFor('two player processes', () => pids().length === 2, 3000);
    expect(() => process.kill(first, 0)).toThrow();
    await waitFor('bv-kill-emg started', () => v.reports().some((r) => r.jti === 'bv-kill-emg' && r.event === 'started'));
  });
});
