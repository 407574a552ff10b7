import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AlarmService } from '../../src/alarm/alarm-service.ts';
import { shippedConsoleAssetsDir } from '../../src/app.ts';
import { BroadcastController } from '../../src/broadcast/controller.ts';
import { ReportRecorder } from '../../src/broadcast/report-recorder.ts';
import { consoleConfigSchema } from '../../src/config/schema.ts';
import { accountWith, hashPassword, writeAccounts } from '../../src/console/auth/accounts.ts';
import { ConsoleVillageAdapter } from '../../src/console/console-village.ts';
import { deviceDiagnostics } from '../../src/console/device-diagnostics.ts';
import { ConsoleServer } from '../../src/console/http/console-server.ts';
import { SpeakerTest } from '../../src/console/speaker-test.ts';
import { reportPayloadSchema } from '../../src/contract/payloads.ts';
import { MemoryOutbox } from '../../src/store/memory-outbox.ts';
import { relayRig, settings } from '../support/broadcast-rig.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { RecordingPlayer } from '../support/recording-player.ts';
import { scratchFolder } from '../support/scratch-folder.ts';
import { simulatedPort } from '../support/simulated-port.ts';
import { waitFor } from '../support/wait.ts';
import { freePort } from '../support/broker.ts';
import { ConsolePagesClient } from '../support/console-pages-client.ts';

// The installer page over HTTP, on the real console server, adapter, alarm service (simulated columns,
// in-memory outbox), broadcast controller (simulated relay boards, recording player) and report recorder.
const scratch = scratchFolder('installer-page-');

async function rig() {
  const dir = scratch.fresh('village');
  mkdirSync(join(dir, 'library'), { recursive: true });
  const usersFile = join(dir, 'users.json');
  writeAccounts(usersFile, {
    format: 1,
    users: [
      accountWith('li.installer', 'installer', await hashPassword('install-pw')),
      accountWith('wang', 'official', await hashPassword('official-pw')),
    ],
  });
  const { logger } = memoryLogger('info');
  const outbox = new MemoryOutbox();
  const reports = new ReportRecorder({ villageId: 'v1', outbox, logger, onStored: () => {} });
  const columns = simulatedPort(['col-1', 'col-2'], logger);
  const alarms = new AlarmService({
    village: { id: 'v1', name: 'Village One', location: { lat: 25, lon: 102 } },
    terminals: [
      { id: 'col-1', label: 'East square', testMode: false },
      { id: 'col-2', label: 'School <gate>', testMode: false },
    ],
    devices: columns.port,
    outbox,
    timing: { debounceMs: 30, ackTimeoutMs: 60_000, indicatorHoldMs: 60_000 },
    logger,
    onStored: () => {},
  });
  alarms.start();
  const relays = relayRig(['rb1', 'rb2', 'rb3'], logger);
  const player = new RecordingPlayer(50);
  let adapter: ConsoleVillageAdapter | undefined;
  const controller = new BroadcastController({
    config: settings,
    devices: relays.port,
    player,
    logger,
    onEvent: (event) => {
      reports.playback(event);
      adapter?.observe(event);
    },
  });
  controller.start();
  const speakerTest = new SpeakerTest({
    library: join(dir, 'library'),
    zones: settings.zones.map((z) => z.id),
    submit: (r) => controller.submit(r),
    refusal: () => undefined,
    report: (entry) => adapter?.audit(entry),
    logger,
    now: Date.now,
  });
  adapter = new ConsoleVillageAdapter({
    villageName: 'Village One',
    zones: settings.zones.map((z) => ({ id: z.id, label: z.label })),
    terminals: [
      { id: 'col-1', label: 'East square' },
      { id: 'col-2', label: 'School <gate>' },
    ],
    library: join(dir, 'library'),
    status: () => Promise.reject(new Error('not used')),
    broadcast: { submit: (r) => controller.submit(r), stopPlayback: (t, reason) => controller.stopPlayback(t, reason) },
    recentAlarms: () => [],
    programmes: () => ({ schedule: null, today: [], week: [], log: [] }),
    diagnostics: () =>
      deviceDiagnostics(
        [...columns.port.health(), ...relays.port.health()],
        [
          { id: 'col-1', label: 'East square', role: 'alarm-column' },
          { id: 'col-2', label: 'School <gate>', role: 'alarm-column' },
        ],
      ),
    testAlarm: (terminal) => alarms.raiseTest(terminal),
    speakerTest: async (zone, user) => speakerTest.run(zone, user),
    report: (entry) => reports.console(entry),
    logger,
    now: Date.now,
  });
  const port = await freePort();
  const server = new ConsoleServer({
    config: consoleConfigSchema.parse({ enabled: true, host: '127.0.0.1', port, usersFile }),
    village: adapter,
    assetsDir: shippedConsoleAssetsDir,
    logger,
  });
  await server.start();
  const reported = () =>
    outbox
      .recent('report', 100)
      .reverse()
      .map((r) => reportPayloadSchema.parse(r.payload));
  return {
    client: () => new ConsolePagesClient(`http://127.0.0.1:${port}`),
    outbox,
    player,
    reported,
    async close() {
      await server.stop();
      await controller.stop();
      alarms.stop();
      reports.stop();
    },
  };
}

describe('installer page', () => {
  let open: Awaited<ReturnType<typeof rig>> | undefined;
  afterEach(async () => {
    await open?.close();
    open = undefined;
  });

  it('shows each device with its last raw reply and errors, a test alarm button per column and a loudspeaker test per zone', async () => {
    open = await rig();
    const client = open.client();
    await client.signIn('li.installer', 'install-pw');
    const { status, text } = await client.page('/installer');
    expect(status).toBe(200);
    expect(text).toContain('<html lang="zh-CN">');
    expect(text).toContain('设备诊断');
    expect(text).toMatch(/<li class="card installer-device" data-device="col-1" data-online="true">/);
    expect(text).toMatch(/data-device="rb1"/);
    expect(text).toContain('<code data-field="raw">simulated ');
    expect(text).toMatch(
      /<button type="submit" class="installer-action" data-test-alarm="col-1" aria-label="测试报警: East square">East square<\/button>/,
    );
    // A label from the config is text, never markup.
    expect(text).toContain('School &#60;gate&#62;');
    for (const zone of ['z1', 'z2', 'z3']) expect(text).toContain(`data-speaker-test="${zone}"`);
    expect(text).toMatch(/<p id="installer-result" role="status"/);
    expect(text).toContain('<script src="/assets/installer.js" defer></script>');
    expect((await client.fetch('/assets/installer.js')).status).toBe(200);

    const diagnostics = (await (await client.fetch('/api/diagnostics')).json()) as {
      devices: Array<{ id: string; shown: { online: string; raw: string } }>;
    };
    expect(diagnostics.devices.find((d) => d.id === 'col-1')?.shown).toMatchObject({ online: '在线', raw: expect.stringMatching(/^simulated /) });
  });

  it('raises a test alarm from a column and plays a loudspeaker test, each reported in the installer name', async () => {
    open = await rig();
    const client = open.client();
    await client.signIn('li.installer', 'install-pw');
    const { token } = await client.page('/installer');

    const alarm = await client.postJson('/api/test-alarm', { terminal: 'col-2' }, token);
    expect(alarm).toMatchObject({ status: 200, json: { ok: true, id: expect.any(String), message: expect.stringContaining('测试报警已发出') } });
    expect(open.outbox.get(String(alarm.json['id']))?.payload).toMatchObject({ terminal: 'col-2', type: 'test' });

    const speaker = await client.postJson('/api/speaker-test', { zone: 'z3' }, token);
    expect(speaker).toMatchObject({ status: 200, json: { ok: true, id: expect.stringMatching(/^speaker-test:/) } });
    await waitFor('the tone played', () => open!.player.started.length === 1, 5000);
    expect(open.player.started[0]?.content).toMatchObject({ kind: 'media', file: 'console/tone-1khz.wav' });

    const refused = await client.postJson('/api/test-alarm', { terminal: 'col-9' }, token);
    expect(refused).toMatchObject({ status: 409, json: { ok: false, reason: 'no alarm column "col-9"' } });

    const audit = open
      .reported()
      .filter((r) => r.event === 'console')
      .map((r) => [r.console?.action, r.console?.user, r.console?.role, r.console?.subject]);
    expect(audit).toEqual([
      ['login', 'li.installer', 'installer', undefined],
      ['test-alarm', 'li.installer', 'installer', alarm.json['id']],
      ['speaker-test', 'li.installer', 'installer', speaker.json['id']],
      ['test-alarm', 'li.installer', 'installer', 'col-9'],
    ]);
  });

  it('refuses bad bodies naming the field, posts without a CSRF token, and officials', async () => {
    open = await rig();
    const client = open.client();
    await client.signIn('li.installer', 'install-pw');
    const { token } = await client.page('/installer');
    expect(await client.postJson('/api/test-alarm', { terminal: '<script>' }, token)).toMatchObject({
      status: 400,
      json: { field: 'terminal', error: expect.stringMatching(/^terminal: /) },
    });
    expect(await client.postJson('/api/speaker-test', {}, token)).toMatchObject({ status: 400, json: { field: 'zone' } });
    expect(await client.postJson('/api/speaker-test', { zone: 'z1', extra: 1 }, token)).toMatchObject({ status: 400 });
    expect((await client.postJson('/api/test-alarm', { terminal: 'col-1' }, 'not-the-token')).status).toBe(403);
    expect(open.player.started).toHaveLength(0);

    const official = open.client();
    await official.signIn('wang', 'official-pw');
    const page = await official.page('/status');
    expect((await official.page('/installer')).status).toBe(403);
    expect((await official.fetch('/api/diagnostics')).status).toBe(403);
    expect((await official.postJson('/api/test-alarm', { terminal: 'col-1' }, page.token)).status).toBe(403);
    expect((await open.client().fetch('/api/diagnostics')).status).toBe(401);
    expect(open.outbox.recent('alarm', 10)).toEqual([]);
  });
});
