import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createVillageEdge, type VillageEdge } from '../../src/app.ts';
import { createProcessPlayer } from '../../src/broadcast/process-player.ts';
import type { PlayJob, Player, PlayerRun } from '../../src/broadcast/types.ts';
import { reportPayloadSchema } from '../../src/contract/payloads.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { startBroker } from '../support/broker.ts';
import { connectCounty } from '../support/county.ts';
import { createCountySigner } from '../support/county-signer.ts';
import { villageConfig, countyLinkUp } from '../support/village.ts';
import { BenchFailure } from './figures.ts';
import { mean, percentile } from '../support/stats.ts';

/** Wraps the real process player and notes when each job's process is started. */
class TimedPlayer implements Player {
  readonly startedAt: number[] = [];
  constructor(private readonly inner: Player) {}
  start(job: PlayJob): PlayerRun {
    this.startedAt.push(performance.now());
    return this.inner.start(job);
  }
}

const layout = {
  amplifiers: [{ id: 'amp-1', power: { device: 'relays-1', channel: 0 } }],
  zones: [{ id: 'square', label: 'square', relay: { device: 'relays-1', channel: 1 }, amplifier: 'amp-1' }],
  powerOnGapMs: 0,
  // Excluded by the figure's definition: the warm-up is configured time, not processing.
  warmUpMs: 0,
  idleTailMs: 60_000,
};
const relayBoard = { id: 'relays-1', bus: 'sim', unitId: 20, profile: 've-rb8-rtu', role: 'relay-board', label: 'relays' };

export interface CommandLatencyResult {
  count: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
  broker: string;
}

/**
 * Signed command published by the county → the player process spawned in the village: broker hop, JWS
 * verification, replay-guard commit (fsync), controller, relay writes (simulated board), spawn. Sequential
 * commands; the real process player runs `true` so each item ends at once.
 */
export async function measureCommandLatency(options: { commands: number; progress: (text: string) => void }): Promise<CommandLatencyResult> {
  const broker = await startBroker();
  const signer = await createCountySigner({ villageId: 'bench-cmd' });
  const dataDir = mkdtempSync(join(tmpdir(), 've-bench-cmd-'));
  const logger = createLogger({ level: 'silent' });
  const config = villageConfig({
    villageId: 'bench-cmd',
    brokerUrl: broker.url,
    protocolVersion: broker.protocolVersion,
    columns: 0,
    commandKeys: [signer.keyEntry],
    extraDevices: [relayBoard],
    broadcast: layout,
    dataDir,
  });
  const player = new TimedPlayer(
    createProcessPlayer({
      templates: { ...config.broadcast.player, tts: ['true', '{text}'], ttsOutput: null },
      library: config.broadcast.library,
      device: config.broadcast.output.device,
      logger,
    }),
  );
  const app = createVillageEdge({ config, version: 'bench', logger, adapters: { player } });
  const county = await connectCounty({ url: broker.url, protocolVersion: broker.protocolVersion, autoAck: true, signer });
  try {
    await app.start();
    await until(countyLinkUp(app), 10_000);
    const samples: number[] = [];
    for (let i = 0; i < options.commands + 5; i++) {
      const jti = `bench-cmd-${i.toString().padStart(5, '0')}`;
      const token = await signer.broadcast({
        jti,
        aud: 'bench-cmd',
        priority: i % 2 === 0 ? 'emergency' : 'announcement',
        ...(i % 2 === 0 ? { level: 2 } : {}),
      });
      const before = player.startedAt.length;
      const sentAt = performance.now();
      await county.send('bench-cmd', 'broadcast', token);
      await until(() => player.startedAt.length > before, 5000);
      // The first few warm the JIT and open files; they are not the steady state a village lives in.
      if (i >= 5) samples.push(player.startedAt[before]! - sentAt);
      await until(
        () =>
          county.messages.some(
            (m) =>
              m.kind === 'report' &&
              reportPayloadSchema.safeParse(m.payload).data?.jti === jti &&
              ['finished', 'failed'].includes(reportPayloadSchema.parse(m.payload).event),
          ),
        5000,
      );
      if (i % 50 === 0) options.progress(`command latency: ${i}/${options.commands}`);
    }
    return {
      count: samples.length,
      p50: percentile(samples, 50),
      p99: percentile(samples, 99),
      max: Math.max(...samples),
      mean: mean(samples),
      broker: broker.kind,
    };
  } finally {
    await app.stop();
    await county.close();
    await broker.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export interface CountyWideResult {
  villages: number;
  rounds: number;
  p50: number;
  p99: number;
  max: number;
  started: number;
  expected: number;
  broker: string;
  rssMb: number;
}

/**
 * One publish on `all/cmd/broadcast` → every village's controller starts its player. 150 village
 * instances in this one process (each with its own MQTT session, SQLite files and simulated relay board)
 * on one broker; the player records the start instead of spawning 150 processes at once, which would
 * measure fork() on a 2-core machine rather than the command path.
 */
export async function measureCountyWide(options: {
  villages: number;
  rounds: number;
  /** Where the villages' SQLite files go: a disk, or tmpfs to take 150 villages' fsyncs off this one thread. */
  dataRoot: string;
  progress: (text: string) => void;
}): Promise<CountyWideResult> {
  const broker = await startBroker();
  const signer = await createCountySigner({ villageId: 'all' });
  const logger = createLogger({ level: 'silent' });
  const root = mkdtempSync(join(options.dataRoot, 've-bench-county-'));
  const apps: VillageEdge[] = [];
  const starts: Array<number[]> = [];
  const county = await connectCounty({ url: broker.url, protocolVersion: broker.protocolVersion, autoAck: true, signer });
  try {
    for (let v = 0; v < options.villages; v++) {
      const villageId = `v${v.toString().padStart(3, '0')}`;
      const config = villageConfig({
        villageId,
        brokerUrl: broker.url,
        protocolVersion: broker.protocolVersion,
        columns: 0,
        commandKeys: [signer.keyEntry],
        extraDevices: [relayBoard],
        broadcast: layout,
        dataDir: join(root, villageId),
        timing: { healthIntervalMs: 600_000 },
      });
      const startedAt: number[] = [];
      starts.push(startedAt);
      const player: Player = {
        start: () => {
          startedAt.push(performance.now());
          return {
            started: Promise.resolve(true),
            done: new Promise((resolve) => setTimeout(() => resolve({ outcome: 'finished' }), 50)),
            stop: async () => {},
          };
        },
      };
      const app = createVillageEdge({ config, version: 'bench', logger, adapters: { player } });
      await app.start();
      apps.push(app);
    }
    await until(async () => (await Promise.all(apps.map((a) => a.status()))).every((s) => s.link.connected), 30_000);
    options.progress(`county-wide: ${apps.length} villages connected`);
    const samples: number[] = [];
    let started = 0;
    for (let round = 0; round < options.rounds; round++) {
      const token = await signer.broadcast({ jti: `bench-all-${round}`, aud: 'all', priority: 'emergency', level: 1 });
      const before = starts.map((s) => s.length);
      const sentAt = performance.now();
      await county.send('all', 'broadcastAll', token);
      await until(() => starts.every((s, i) => s.length > before[i]!), 10_000).catch(() => undefined);
      for (const [i, s] of starts.entries()) {
        if (s.length > before[i]!) {
          samples.push(s[before[i]!]! - sentAt);
          started++;
        }
      }
      await new Promise((r) => setTimeout(r, 300));
    }
    const expected = options.villages * options.rounds;
    if (started < expected) throw new BenchFailure(`county-wide: only ${started} of ${expected} village starts`);
    return {
      villages: options.villages,
      rounds: options.rounds,
      p50: percentile(samples, 50),
      p99: percentile(samples, 99),
      max: Math.max(...samples),
      started,
      expected,
      broker: broker.kind,
      rssMb: process.memoryUsage().rss / 1048576,
    };
  } finally {
    for (const app of apps) await app.stop();
    await county.close();
    await broker.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new BenchFailure('condition not met in time');
    await new Promise((r) => setTimeout(r, 1));
  }
}
