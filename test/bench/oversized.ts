import { execFile, spawn } from 'node:child_process';
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { villageTopics } from '../../src/county/topics.ts';
import { startBroker } from '../support/broker.ts';
import { connectCounty } from '../support/county.ts';
import { createCountySigner } from '../support/county-signer.ts';
import { fromBuild, startService, writeConfig } from '../support/service-process.ts';
import { villageConfigJson } from '../support/village.ts';
import { BenchFailure, epochNow } from './figures.ts';
import { memoryKb } from './proc-stats.ts';
import { Teardown } from './teardown.ts';

/**
 * Resident memory of the built service while one huge QoS 1 message is thrown at its cmd/broadcast topic by
 * Mosquitto's own client, with a button pressed while it streams in. RSS is sampled every 20 ms; VmHWM is the
 * kernel's peak over the process' whole life, so nothing between two samples is missed.
 */

export interface OversizedOptions {
  megabytes: number;
  protocolVersion: 4 | 5;
  nodeFlags: string[];
  skipBuild?: boolean;
  progress: (text: string) => void;
}

export interface OversizedResult {
  protocolVersion: 4 | 5;
  megabytes: number;
  /** RSS once started and connected, before the message. */
  beforeMb: number;
  /** VmHWM at the end: the peak of the whole run. */
  peakMb: number;
  /** Highest 20 ms sample between the publish and the end. */
  sampledMaxMb: number;
  /** mosquitto_pub start → the press relayed to the county. */
  alarmMs: number;
  /** mosquitto_pub start → the `oversized` report at the county (3.1.1 only; MQTT 5 brokers drop the message). */
  reportMs: number | undefined;
}

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

export async function measureOversized(options: OversizedOptions): Promise<OversizedResult> {
  const teardown = new Teardown();
  try {
    if (options.skipBuild !== true) {
      options.progress('oversized: npm run build');
      await promisify(execFile)('npm', ['run', 'build', '--silent'], { cwd: repoRoot });
    }
    const dir = mkdtempSync(join(tmpdir(), 've-bench-oversized-'));
    teardown.add('temp folder', () => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'huge.bin');
    const fd = openSync(file, 'w');
    ftruncateSync(fd, options.megabytes * 1024 * 1024);
    closeSync(fd);

    const broker = await startBroker({ prefer: 'mosquitto' });
    teardown.add('broker', () => broker.stop());
    if (broker.kind !== 'mosquitto') throw new BenchFailure('oversized: needs Mosquitto (and mosquitto_pub, Debian mosquitto-clients)');
    const villageId = `oversized-v${options.protocolVersion}`;
    const signer = await createCountySigner({ villageId });
    const county = await connectCounty({ url: broker.url, protocolVersion: options.protocolVersion, autoAck: true, signer });
    teardown.add('county', () => county.close());
    const config = villageConfigJson({
      villageId,
      brokerUrl: broker.url,
      protocolVersion: options.protocolVersion,
      commandKeys: [signer.keyEntry],
      columns: 1,
      dataDir: join(dir, 'data'),
    });
    const service = startService(writeConfig(dir, config), undefined, fromBuild(options.nodeFlags));
    teardown.add('service', () => service.terminate());
    await service.waitForLog((l) => l.msg === 'county link connected', 20_000);
    const pid = service.child.pid!;
    const beforeMb = memoryKb(pid).rssKb / 1024;

    let sampledMaxKb = 0;
    const sampler = setInterval(() => {
      sampledMaxKb = Math.max(sampledMaxKb, memoryKb(pid).rssKb);
    }, 20);
    teardown.add('sampler', () => clearInterval(sampler));
    options.progress(`oversized: ${options.megabytes} MB to cmd/broadcast over MQTT ${options.protocolVersion === 4 ? '3.1.1' : '5'}`);
    const started = epochNow();
    const { hostname, port } = new URL(broker.url);
    const publisher = spawn(
      'mosquitto_pub',
      ['-h', hostname, '-p', port, '-q', '1', '-t', villageTopics('village-edge', villageId).topic('broadcast'), '-f', file],
      { stdio: 'ignore' },
    );
    const published = new Promise<void>((resolve, reject) => {
      publisher.once('error', (error) => reject(new BenchFailure(`mosquitto_pub: ${error.message}`)));
      publisher.once('exit', (code) => (code === 0 ? resolve() : reject(new BenchFailure(`mosquitto_pub exited ${code}`))));
    });
    service.send('press column-1');
    await county.waitFor((m) => m.kind === 'alarm' && m.village === villageId, 30_000);
    const alarmMs = epochNow() - started;
    await published;
    let reportMs: number | undefined;
    if (options.protocolVersion === 4) {
      await county.waitFor((m) => m.kind === 'report' && m.village === villageId, 30_000);
      reportMs = epochNow() - started;
    }
    // Until the county's ack of the press has come back: the message has been dealt with on the connection by then.
    await service.waitForLog((l) => l.msg === 'alarm acknowledged by county', 30_000);
    clearInterval(sampler);
    if (service.child.exitCode !== null || service.child.signalCode !== null)
      throw new BenchFailure(`oversized: the service died (${service.child.signalCode ?? service.child.exitCode})`);
    const peakMb = memoryKb(pid).hwmKb / 1024;
    return {
      protocolVersion: options.protocolVersion,
      megabytes: options.megabytes,
      beforeMb,
      peakMb,
      sampledMaxMb: sampledMaxKb / 1024,
      alarmMs,
      reportMs,
    };
  } finally {
    const problems = await teardown.run();
    for (const problem of problems) options.progress(`oversized: ${problem}`);
  }
}
