import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker, type TestBroker } from '../support/broker.ts';
import { connectCounty } from '../support/county.ts';
import { createCountySigner } from '../support/county-signer.ts';
import { fromBuild, startService, writeConfig } from '../support/service-process.ts';
import { productionNodeFlags } from '../support/systemd-unit.ts';
import { villageConfigJson } from '../support/village.ts';
import { waitFor } from '../support/wait.ts';

/**
 * Production runs dist/main.js, one esbuild bundle, not src/. Built here and run as the systemd unit runs
 * it (its node flags, a NOTIFY_SOCKET), so a dependency that breaks when bundled, or a native module that
 * cannot be found from dist/, fails a test instead of a village.
 */

const unix = createRequire(import.meta.url)('unix-dgram') as typeof import('unix-dgram');
const repoRoot = new URL('../../', import.meta.url).pathname;
const bundle = join(repoRoot, 'dist/main.js');

describe('the built service (dist/main.js)', () => {
  let dir: string;

  // dist/ is built by the global setup, once per run.
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 've-built-'));
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [...productionNodeFlags(), bundle, ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 20_000 });

  it('checks configs: the shipped example passes, a broken one fails naming each field', () => {
    const good = cli('check-config', 'config/example.json');
    expect(good.stderr).toBe('');
    expect(good.status).toBe(0);

    const broken = join(dir, 'broken.json');
    writeFileSync(broken, JSON.stringify({ version: 2, village: { id: '' }, county: { url: 'http://x' } }));
    const bad = cli('check-config', broken);
    expect(bad.status).toBe(1);
    const output = `${bad.stdout}${bad.stderr}`;
    expect(output).toMatch(/village\.id/);
    expect(output).toMatch(/county\.url/);
  });

  it('logs lines for a person with --pretty (pino-pretty from node_modules), JSON otherwise', async () => {
    const config = villageConfigJson({
      villageId: 'pretty',
      brokerUrl: 'mqtt://127.0.0.1:1',
      protocolVersion: 4,
      columns: 1,
      dataDir: join(dir, 'pretty-data'),
    });
    const configPath = writeConfig(mkdtempSync(join(dir, 'pretty-')), config);
    for (const [args, env] of [
      [['--pretty'], {}],
      [[], { LOG_FORMAT: 'pretty' }],
    ] as const) {
      const service = startService(configPath, undefined, { nodeArgs: [...productionNodeFlags(), bundle], runArgs: [...args], env: { ...env } });
      await service.waitForLog((l) => /INFO.*village-edge started/.test(l.msg), 20_000);
      expect(service.logs.every((l) => !l.msg.startsWith('{'))).toBe(true);
      expect(await service.terminate()).toBe(0);
    }
  });

  it('carries the MQTT client but not the transports an mqtt:// or mqtts:// link never runs', () => {
    const source = readFileSync(bundle, 'utf8');
    expect(source).toContain('node_modules/mqtt/build/lib/client.js');
    // mqtt.connect's WebSocket and SOCKS transports load http, https, zlib and dns: ~3 MB of a Pi's RSS.
    for (const unused of ['node_modules/mqtt/build/lib/connect/', 'node_modules/ws/', 'node_modules/socks/']) expect(source).not.toContain(unused);
  });

  it('starts under systemd notify, relays a press to the county and stops cleanly on SIGTERM', async () => {
    const broker: TestBroker = await startBroker();
    const signer = await createCountySigner({ villageId: 'built-village' });
    const notifyPath = join(dir, 'notify.sock');
    const notes: string[] = [];
    const socket = unix.createSocket('unix_dgram', (msg) => notes.push(msg.toString()));
    socket.bind(notifyPath);
    const county = await connectCounty({ url: broker.url, protocolVersion: broker.protocolVersion, autoAck: true, signer });
    const configPath = writeConfig(
      dir,
      villageConfigJson({
        villageId: 'built-village',
        brokerUrl: broker.url,
        protocolVersion: broker.protocolVersion,
        commandKeys: [signer.keyEntry],
        columns: 1,
        dataDir: join(dir, 'data'),
      }),
    );
    const service = startService(configPath, undefined, fromBuild(productionNodeFlags(), { NOTIFY_SOCKET: notifyPath, WATCHDOG_USEC: '2000000' }));
    try {
      await service.waitForLog((l) => l.msg === 'village-edge started', 20_000);
      await waitFor('READY=1 from the service', () => notes.includes('READY=1'), 5_000);
      await county.waitFor((m) => m.kind === 'state' && m.village === 'built-village' && (m.payload as { online: boolean }).online, 10_000);

      service.send('press column-1');
      const alarm = await county.waitFor((m) => m.kind === 'alarm' && m.village === 'built-village', 10_000);
      expect(alarm.payload).toMatchObject({ terminal: 'column-1', type: 'button', seq: 1 });
      await service.waitForLog((l) => l.msg === 'alarm acknowledged by county', 10_000);

      expect(await service.terminate()).toBe(0);
      expect(notes).toContain('STOPPING=1');
      expect(service.logs.filter((l) => typeof l['level'] === 'number' && (l['level'] as number) >= 50)).toEqual([]);
    } finally {
      await service.terminate().catch(() => undefined);
      socket.close();
      await county.close();
      await broker.stop();
    }
  }, 60_000);
});
