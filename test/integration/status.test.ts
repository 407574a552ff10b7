import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { spawn } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromBuild, startService, writeConfig, type ServiceProcess } from '../support/service-process.ts';
import { productionNodeFlags } from '../support/systemd-unit.ts';
import { villageConfigJson } from '../support/village.ts';
import { statusDocumentSchema } from '../../src/status/status-document.ts';
import { waitFor } from '../support/wait.ts';
import { ModbusRtuSlave } from '../support/modbus-rtu-slave.ts';
import { openPtyPair, type PtyPair } from '../support/pty.ts';

/**
 * `village-edge status` against the built service as production runs it: the CLI as a child process of
 * its own, talking to the service's real unix socket.
 */

const brokerUrl = inject('brokerUrl');
const protocolVersion = inject('brokerProtocolVersion');
const repoRoot = new URL('../../', import.meta.url).pathname;
const bundle = join(repoRoot, 'dist/main.js');

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Async, so the test's own event loop keeps reading the service's log while the CLI runs. */
function cli(...args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bundle, ...args], { cwd: repoRoot });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** How long before `at` the device last replied (ms); NaN when it never did. */
function ageMs(at: string, lastReplyAt: string | null | undefined): number {
  return lastReplyAt === null || lastReplyAt === undefined ? NaN : Date.parse(at) - Date.parse(lastReplyAt);
}

describe('village-edge status', () => {
  let dir: string;
  let dataDir: string;
  let socketPath: string;
  let configPath: string;
  let service: ServiceProcess | undefined;

  const start = async () => {
    const started = startService(configPath, undefined, fromBuild(productionNodeFlags()));
    service = started;
    await started.waitForLog((l) => l.msg === 'village-edge started', 20_000);
    return started;
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 've-status-'));
    dataDir = join(dir, 'data');
    socketPath = join(dataDir, 'status.sock');
    // A thermal folder of the test's own, shaped like /sys/class/thermal: one zone that reads, one whose
    // sensor has no temp file, and a cooling device that is not a zone at all.
    const thermal = join(dir, 'thermal');
    mkdirSync(join(thermal, 'thermal_zone0'), { recursive: true });
    writeFileSync(join(thermal, 'thermal_zone0', 'temp'), '48312\n');
    writeFileSync(join(thermal, 'thermal_zone0', 'type'), 'cpu-thermal\n');
    mkdirSync(join(thermal, 'thermal_zone1'));
    writeFileSync(join(thermal, 'thermal_zone1', 'type'), 'broken-sensor\n');
    mkdirSync(join(thermal, 'cooling_device0'));
    configPath = writeConfig(dir, {
      ...villageConfigJson({ villageId: 'status-village', brokerUrl, protocolVersion, columns: 2, dataDir }),
      status: { thermalDir: thermal },
    });
  });

  afterAll(async () => {
    await service?.terminate();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers on an owner-only socket, in words and as JSON the schema reads', async () => {
    await start();
    const stats = lstatSync(socketPath);
    expect(stats.isSocket()).toBe(true);
    expect(stats.mode & 0o777).toBe(0o600);

    const json = await cli('status', '--config', configPath, '--json');
    expect(json.stderr).toBe('');
    expect(json.code).toBe(0);
    const document = statusDocumentSchema.parse(JSON.parse(json.stdout));
    expect(document.health.village).toBe('status-village');
    expect(document.system.temperatures).toEqual([{ zone: 'thermal_zone0', type: 'cpu-thermal', celsius: 48.3 }]);
    expect(document.system.dataDir).toMatchObject({ path: dataDir });
    expect(document.system.dataDir.freeBytes).toBeGreaterThan(0);
    expect(document.health.devices.map((d) => [d.id, d.online])).toEqual([
      ['column-1', true],
      ['column-2', true],
    ]);
    expect(document.devices.map((d) => d.label)).toEqual(['column 1', 'column 2']);
    // A simulated column answers every poll at once: its last reply is the moment the status was taken.
    for (const device of document.devices) {
      expect(ageMs(document.health.at, device.lastReplyAt)).toBeGreaterThanOrEqual(0);
      expect(ageMs(document.health.at, device.lastReplyAt)).toBeLessThan(1000);
    }
    expect(document.health.outbox).toMatchObject({
      depth: expect.any(Number),
      oldestUnackedAgeSeconds: expect.toSatisfy((v) => v === null || typeof v === 'number'),
    });
    expect(document.health.clock).toBeDefined();
    expect(document.health.audio.device).toBe('null');

    const human = await cli('status', '--socket', socketPath);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('status-village');
    expect(human.stdout).toContain('48.3 °C (cpu-thermal)');
    expect(human.stdout).toMatch(/^devices +2 of 2 online$/m);
    expect(human.stdout).toMatch(/^ +column-1 \(column 1\), ve-ac100-rtu on sim: online; last reply \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(0 s ago\)$/m);
    expect(human.stdout).toMatch(/^outbox /m);
    expect(human.stdout).toMatch(/^clock /m);
    expect(human.stdout).toMatch(/^storage .* free in /m);
  });

  it('shows the county link and a device that went offline, with when', async () => {
    const running = service!;
    // Connected before `started` is not promised: the link comes up on its own time.
    await running.waitForLog((l) => l.msg === 'county link connected', 15_000);
    running.send('offline column-2');
    await running.waitForLog((l) => l.msg === 'fault stored' && l['kind'] === 'device-offline' && l['subject'] === 'column-2', 15_000);

    const json = await cli('status', '--config', configPath, '--json');
    expect(json.code).toBe(0);
    const document = statusDocumentSchema.parse(JSON.parse(json.stdout));
    expect(document.link.connected).toBe(true);
    expect(document.link.url).toBe(new URL(brokerUrl).toString());
    expect(document.link.lastConnectedAt).not.toBeNull();
    const column2 = document.devices.find((d) => d.id === 'column-2');
    expect(column2?.lastChange).toMatchObject({ online: false });
    // Kept while it does not answer: it was last heard as it went offline.
    expect(column2?.lastReplyAt).toBe(column2?.lastChange?.at);
    expect(document.health.devices.find((d) => d.id === 'column-2')?.online).toBe(false);

    const human = await cli('status', '--config', configPath);
    expect(human.stdout).toMatch(/^county +connected to .*last connected/m);
    expect(human.stdout).toMatch(/^ +column-2 \(column 2\).*OFFLINE since .*; last reply \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(\d+ s ago\)$/m);
    expect(human.stdout).toMatch(/^devices +1 of 2 online$/m);
    running.send('online column-2');
  });

  it('says in one line that the service is not running, and a new start replaces the socket a kill -9 left', async () => {
    await service!.kill9();
    service = undefined;
    // A kill -9 runs no clean-up: the socket file is still there, but nothing listens on it.
    expect(lstatSync(socketPath).isSocket()).toBe(true);
    const refused = await cli('status', '--config', configPath);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toBe(`village-edge is not running (nothing listens on ${socketPath})\n`);

    const missing = await cli('status', '--socket', join(dir, 'no-such.sock'));
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);

    const restarted = await start();
    expect(restarted.logs.some((l) => l.msg === 'status socket did not start')).toBe(false);
    expect(lstatSync(socketPath).mode & 0o777).toBe(0o600);
    const answered = await cli('status', '--config', configPath, '--json');
    expect(answered.code).toBe(0);
    expect(statusDocumentSchema.parse(JSON.parse(answered.stdout)).health.problems).toEqual([]);
  });

  it('leaves a second copy of the service running without a socket of its own, and says so', async () => {
    // Same data directory, so the same socket: the first copy keeps it (a second one on a card is a
    // mistake, but it must not take the first one's socket away).
    const second = startService(configPath, undefined, fromBuild(productionNodeFlags()));
    try {
      const line = await second.waitForLog((l) => l.msg === 'status socket did not start', 20_000);
      expect(String(line['problem'])).toContain('another process answers');
      const answered = await cli('status', '--config', configPath, '--json');
      expect(answered.code).toBe(0);
      expect(statusDocumentSchema.parse(JSON.parse(answered.stdout)).health.problems).toEqual([]);
    } finally {
      await second.kill9();
    }
  });

  it('refuses a mistake on the command line without a stack trace', async () => {
    const unknown = await cli('status', '--verbose');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^status: unknown flag --verbose \(see status --help\)/);
    expect(unknown.stderr).not.toMatch(/\n +at /);
    const both = await cli('status', '--config', configPath, '--socket', socketPath);
    expect(both.code).toBe(2);
    const noConfig = await cli('status', '--config', join(dir, 'missing.json'));
    expect(noConfig.code).toBe(1);
    expect(noConfig.stderr.trim().split('\n')).toHaveLength(1);
    expect(noConfig.stderr).not.toMatch(/\n +at /);
  });
});

describe('village-edge status: last replies on a real RS-485 bus', () => {
  let dir: string;
  let pair: PtyPair;
  let slave: ModbusRtuSlave;
  let service: ServiceProcess | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 've-status-rtu-'));
    pair = await openPtyPair();
    // Unit 1 answers; unit 9 is configured but nothing on the line answers for it.
    slave = await ModbusRtuSlave.open({ path: pair.devicePath });
    slave.unit(1).set('discrete-inputs', 1, true);
  });

  afterAll(async () => {
    await service?.terminate();
    await slave.close();
    await pair.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows when an answering column last replied, and that a silent one never has', async () => {
    const json = villageConfigJson({ villageId: 'status-rtu', brokerUrl, protocolVersion, columns: 0, dataDir: join(dir, 'data') });
    const column = (id: string, unitId: number) => ({ id, bus: 'rs485-1', unitId, profile: 've-ac100-rtu', role: 'alarm-column', label: id });
    const configPath = writeConfig(dir, {
      ...json,
      buses: [{ id: 'rs485-1', kind: 'modbus-rtu', path: pair.controllerPath, baudRate: 9600 }],
      devices: [column('answering', 1), column('silent', 9)],
    });
    const startedAt = Date.now();
    const running = startService(configPath, undefined, fromBuild(productionNodeFlags()));
    service = running;
    await running.waitForLog((l) => l.msg === 'device offline' && l['device'] === 'silent', 20_000);
    // One request at a time on the bus: a second request to unit 1 went out after its first reply was read.
    await waitFor('two polls of unit 1', () => slave.unit(1).requests >= 2, 10_000);

    const json1 = await cli('status', '--config', configPath, '--json');
    expect(json1.code).toBe(0);
    const document = statusDocumentSchema.parse(JSON.parse(json1.stdout));
    const answering = document.devices.find((d) => d.id === 'answering');
    expect(Date.parse(answering?.lastReplyAt ?? '')).toBeGreaterThanOrEqual(startedAt);
    expect(ageMs(document.health.at, answering?.lastReplyAt)).toBeGreaterThanOrEqual(0);
    expect(ageMs(document.health.at, answering?.lastReplyAt)).toBeLessThan(5000);
    expect(document.devices.find((d) => d.id === 'silent')?.lastReplyAt).toBeNull();
    expect(document.health.devices.map((d) => [d.id, d.online])).toEqual([
      ['answering', true],
      ['silent', false],
    ]);

    const human = await cli('status', '--config', configPath);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(
      /^ +answering \(answering\), ve-ac100-rtu on rs485-1: online; last reply \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(\d+ s ago\)$/m,
    );
    expect(human.stdout).toMatch(
      /^ +silent \(silent\), ve-ac100-rtu on rs485-1: OFFLINE since .*; NO REPLY since start; errors timeout \d+; last error timeout /m,
    );
  });
});
