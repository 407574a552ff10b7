import { afterAll, describe, expect, inject, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createVillageEdge, type VillageEdge } from '../../src/app.ts';
import { reportPayloadSchema } from '../../src/county/payloads.ts';
import { connectCounty, type CountyClient } from '../support/county.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { RecordingPlayer } from '../support/recording-player.ts';
import { villageConfig, oneZoneBroadcast } from '../support/village.ts';
import { waitUntil as waitFor } from '../support/wait.ts';

const brokerUrl = inject('brokerUrl');
const protocolVersion = inject('brokerProtocolVersion');
const repoRoot = new URL('../../', import.meta.url).pathname;
const cliArgs = (...args: string[]) => ['--import', 'tsx', join(repoRoot, 'src/main.ts'), ...args];

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});


/** The waits here include child processes of the CLI, which start slowly under tsx: a longer default. */
const waitUntil = (condition: () => boolean, timeoutMs = 10_000) => waitFor(condition, timeoutMs, 20);

describe('county tooling on the command line: keygen, announce, county watch', () => {
  const keyDir = mkdtempSync(join(tmpdir(), 've-keys-'));
  let app: VillageEdge;
  let player: RecordingPlayer;
  let listener: CountyClient;
  let entry: { kid: string; x: string };

  it('keygen writes a private key only its owner can read, and prints the entry villages trust', () => {
    const result = spawnSync(process.execPath, cliArgs('keygen', '--kid', 'county-test', '--out', keyDir), { encoding: 'utf8', cwd: repoRoot });
    expect(result.status).toBe(0);
    expect(statSync(join(keyDir, 'county-test.private.jwk.json')).mode & 0o777).toBe(0o600);
    entry = JSON.parse(/county\.commandKeys: (\{.*\})/.exec(result.stdout)?.[1] ?? 'null') as { kid: string; x: string };
    expect(entry.kid).toBe('county-test');
  });

  it('announce signs and publishes a broadcast that the village plays, and a stop that ends it', async () => {
    player = new RecordingPlayer(10_000);
    const config = villageConfig({
      villageId: 'cli-village',
      brokerUrl,
      protocolVersion,
      columns: 1,
      commandKeys: [entry],
      ...oneZoneBroadcast(),
    });
    app = createVillageEdge({ config, version: '0.0.0-test', logger: memoryLogger('info').logger, adapters: { player } });
    await app.start();
    cleanups.push(() => app.stop());
    listener = await connectCounty({ url: brokerUrl, protocolVersion });
    cleanups.push(() => listener.close());
    await waitUntil(() => app.uplink.connected);

    const key = join(keyDir, 'county-test.private.jwk.json');
    const common = ['--key', key, '--broker', brokerUrl, '--protocol', String(protocolVersion), '--village', 'cli-village'];
    const announced = spawnSync(process.execPath, cliArgs('announce', ...common, '--emergency', '1', '--zones', 'square', '--text', '山洪预警，请立即转移。'), { encoding: 'utf8', cwd: repoRoot });
    expect(announced.stderr).toBe('');
    const jti = /published broadcast (\S+) to village-edge\/cli-village\/cmd\/broadcast/.exec(announced.stdout)?.[1];
    expect(jti).toBeDefined();
    const reports = () => listener.messages.filter((m) => m.kind === 'report' && m.village === 'cli-village').map((m) => reportPayloadSchema.parse(m.payload));
    await waitUntil(() => reports().some((r) => r.jti === jti && r.event === 'started'));
    expect(player.started[0]?.content).toEqual({ kind: 'tts', text: '山洪预警，请立即转移。' });

    const stopped = spawnSync(process.execPath, cliArgs('announce', ...common, '--stop', jti!), { encoding: 'utf8', cwd: repoRoot });
    expect(stopped.status).toBe(0);
    await waitUntil(() => reports().some((r) => r.jti === jti && r.event === 'stopped'));

    // A bad command is refused by the tool itself, naming the field, before anything is signed.
    const bad = spawnSync(process.execPath, cliArgs('announce', ...common, '--announcement', '--zones', 'a b', '--text', 'x'), { encoding: 'utf8', cwd: repoRoot });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/zones/);
  });

  it('county watch prints what villages report and acks it with a signed ack', async () => {
    const key = join(keyDir, 'county-test.private.jwk.json');
    const watcher = spawn(process.execPath, cliArgs('county', 'watch', '--key', key, '--ack', '--broker', brokerUrl, '--protocol', String(protocolVersion)), { cwd: repoRoot });
    cleanups.push(async () => {
      watcher.kill('SIGTERM');
    });
    const lines: string[] = [];
    createInterface({ input: watcher.stdout }).on('line', (line) => lines.push(line));
    await waitUntil(() => lines.some((l) => l.startsWith('watching ')));
    app.devices.simulated('column-1')!.press();
    await waitUntil(() => lines.some((l) => / cli-village alarm \{/.test(l)));
    await waitUntil(() => lines.some((l) => / cli-village acked /.test(l)));
    await waitUntil(() => app.devices.simulated('column-1')!.indicator === 'received');
  });
});
