import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Socket } from 'node:net';
import mqtt from 'mqtt';
import { NODE_RED_TOPIC, startNodeRed } from './node-red.ts';
import type { AlarmPayload } from '../../src/contract/payloads.ts';
import { connectCounty } from '../support/county.ts';
import { createCountySigner } from '../support/county-signer.ts';
import { waitFor } from '../support/wait.ts';
import { latchedButton } from '../support/modbus-rtu-slave.ts';
import { fromBuild, startService, writeConfig, type LogRecord } from '../support/service-process.ts';
import { productionNodeFlags } from '../support/systemd-unit.ts';
import { BenchFailure } from './figures.ts';
import { percentile } from '../support/stats.ts';
import { openRtuRig, rtuColumnsConfig } from './rtu-village.ts';
import { Teardown } from './teardown.ts';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const VILLAGE = 'bench-durable';

export interface DurableLatencyResult {
  /** Milliseconds added to every fsync/fdatasync of the service (test/bench/slow-fsync.c); null for Node-RED. */
  fsyncDelayMs: number | null;
  presses: number;
  /** The poll that sampled the press → the county received the alarm. */
  sampleToCounty: { p50: number; p99: number };
  /** The poll that sampled the press → the service logged it stored (committed, fsync'd); null for Node-RED, which stores nothing. */
  sampleToStored: { p50: number; p99: number } | null;
  /** Alarms the county had before the service had committed them (publish and commit ran at once). */
  receivedBeforeStored: number;
}

/**
 * Poll sample → county for one column on a 9600-baud PTY bus, the built service as a child process with a
 * slow SD card made by preloading test/bench/slow-fsync.c (every fsync delayed): the service's own store
 * must not stand between the sample and the county. Each delay runs in a service, broker and line of its own.
 */
export async function measureDurableLatency(options: {
  presses: number;
  delaysMs: readonly number[];
  progress: (text: string) => void;
}): Promise<DurableLatencyResult[]> {
  const teardown = new Teardown();
  try {
    const dir = mkdtempSync(join(tmpdir(), 've-bench-durable-'));
    teardown.add('temp folder', () => rmSync(dir, { recursive: true, force: true }));
    const shim = join(dir, 'slow-fsync.so');
    await promisify(execFile)('cc', ['-O2', '-shared', '-fPIC', '-o', shim, join(repoRoot, 'test/bench/slow-fsync.c'), '-ldl']).catch(
      (error: { message?: string; stderr?: string }) => {
        throw new BenchFailure(`cc could not build test/bench/slow-fsync.c: ${(error.stderr ?? error.message ?? '').trim().slice(0, 500)}`);
      },
    );
    const results: DurableLatencyResult[] = [];
    for (const delayMs of options.delaysMs) results.push(await measureOne(delayMs, shim, join(dir, `delay-${delayMs}`), options));
    results.push(await measureNodeRed(options));
    return results;
  } finally {
    for (const problem of await teardown.run()) console.error(`durable latency: ${problem}`);
  }
}

async function measureOne(
  delayMs: number,
  shim: string,
  dir: string,
  options: { presses: number; progress: (text: string) => void },
): Promise<DurableLatencyResult> {
  const teardown = new Teardown();
  try {
    const { broker, pair, slave, bus } = await openRtuRig(1, teardown);
    const button = latchedButton(slave.unit(1), 0, 0);
    const signer = await createCountySigner({ villageId: VILLAGE });
    const county = await connectCounty({ url: broker.url, protocolVersion: broker.protocolVersion, autoAck: true, signer });
    teardown.add('county client', () => county.close());

    const storedAt = new Map<string, number>();
    const acked = new Set<string>();
    const onLog = (line: LogRecord): void => {
      const id = String(line['alarmId']);
      if (line.msg === 'alarm raised and stored') storedAt.set(id, performance.now());
      else if (line.msg === 'alarm acknowledged by county') acked.add(id);
    };
    const config = rtuColumnsConfig({
      villageId: VILLAGE,
      terminals: 1,
      brokerUrl: broker.url,
      protocolVersion: broker.protocolVersion,
      dataDir: join(dir, 'data'),
      path: pair.controllerPath,
      commandKeys: [signer.keyEntry],
    });
    const service = startService(
      writeConfig(mkdtempSync(`${dir}-`), config),
      onLog,
      fromBuild(productionNodeFlags(), { LD_PRELOAD: shim, SLOW_FSYNC_MS: String(delayMs) }),
    );
    teardown.add('service', async () => void (await service.terminate()));
    await service.waitForLog((l) => l.msg === 'village-edge started', 20_000);
    await county.waitFor((m) => m.kind === 'state' && m.village === VILLAGE, 20_000);
    await waitFor('the column polled', () => slave.unit(1).requests >= 3, 10_000);
    bus.start();

    const sampleToCounty: number[] = [];
    const sampleToStored: number[] = [];
    let receivedBeforeStored = 0;
    const seen = new Set<string>();
    for (let n = 1; n <= options.presses; n++) {
      const flippedAt = performance.now();
      button.press();
      let receivedAt = 0;
      const message = await county
        .waitFor((m) => {
          const id = (m.payload as Partial<AlarmPayload>).id;
          if (m.kind !== 'alarm' || m.village !== VILLAGE || typeof id !== 'string' || seen.has(id)) return false;
          receivedAt = m.receivedAt;
          seen.add(id);
          return true;
        }, 10_000)
        .catch(() => {
          throw new BenchFailure(`LOST: press ${n} (fsync +${delayMs} ms) raised no alarm at the county within 10 s`);
        });
      const id = (message.payload as AlarmPayload).id;
      const sampledAt = bus.firstReadAfter(1, flippedAt);
      if (sampledAt === undefined) throw new BenchFailure('the bus monitor saw no read after a press');
      await waitFor(`alarm ${id} stored and acked`, () => storedAt.has(id) && acked.has(id), 10_000);
      sampleToCounty.push(receivedAt - sampledAt);
      sampleToStored.push(storedAt.get(id)! - sampledAt);
      if (receivedAt < storedAt.get(id)!) receivedBeforeStored++;
      button.release();
      // A poll must read the release before the next press is a new edge.
      await sleep(350);
      if (n % 25 === 0) options.progress(`durable latency: fsync +${delayMs} ms: ${n}/${options.presses} presses`);
    }
    bus.stop();
    return {
      fsyncDelayMs: delayMs,
      presses: sampleToCounty.length,
      sampleToCounty: { p50: percentile(sampleToCounty, 50), p99: percentile(sampleToCounty, 99) },
      sampleToStored: { p50: percentile(sampleToStored, 50), p99: percentile(sampleToStored, 99) },
      receivedBeforeStored,
    };
  } finally {
    for (const problem of await teardown.run()) console.error(`durable latency: ${problem}`);
  }
}

/** The same press → county path through Node-RED on the same line (test/bench/node-red.ts): the reference. */
async function measureNodeRed(options: { presses: number; progress: (text: string) => void }): Promise<DurableLatencyResult> {
  const teardown = new Teardown();
  try {
    const { broker, pair, slave, bus } = await openRtuRig(1, teardown);
    const county = await mqtt.connectAsync(broker.url, { protocolVersion: 4, clean: true, reconnectPeriod: 0 });
    teardown.add('county client', () => county.endAsync());
    if (county.stream instanceof Socket) county.stream.setNoDelay(true);
    const arrivals: Array<{ n: number; at: number }> = [];
    county.on('message', (_topic, payload) => arrivals.push({ n: (JSON.parse(payload.toString()) as { n: number }).n, at: performance.now() }));
    await county.subscribeAsync(NODE_RED_TOPIC, { qos: 1 });
    const nodeRed = await startNodeRed({ path: pair.controllerPath, brokerPort: broker.port, teardown, progress: options.progress });
    await waitFor('Node-RED polling the column', () => slave.unit(1).requests >= 3, 30_000);
    bus.start();
    const sampleToCounty: number[] = [];
    for (let n = 1; n <= options.presses; n++) {
      const flippedAt = performance.now();
      // Node-RED's flow has no latch reset: the column's button reads as it is, held over three polls.
      slave.unit(1).set('discrete-inputs', 0, true);
      await waitFor(`Node-RED's alarm ${n}`, () => arrivals.some((a) => a.n === n), 10_000).catch(() => {
        throw new BenchFailure(`LOST: Node-RED relayed no alarm for press ${n} within 10 s; its log: ${nodeRed.output().slice(-1500)}`);
      });
      const sampledAt = bus.firstReadAfter(1, flippedAt);
      if (sampledAt === undefined) throw new BenchFailure('the bus monitor saw no read after a press');
      sampleToCounty.push(arrivals.find((a) => a.n === n)!.at - sampledAt);
      await sleep(300);
      slave.unit(1).set('discrete-inputs', 0, false);
      await sleep(350);
      if (n % 25 === 0) options.progress(`durable latency: Node-RED: ${n}/${options.presses} presses`);
    }
    bus.stop();
    return {
      fsyncDelayMs: null,
      presses: sampleToCounty.length,
      sampleToCounty: { p50: percentile(sampleToCounty, 50), p99: percentile(sampleToCounty, 99) },
      sampleToStored: null,
      receivedBeforeStored: 0,
    };
  } finally {
    for (const problem of await teardown.run()) console.error(`durable latency (Node-RED): ${problem}`);
  }
}
