import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { setTimeout as sleep } from 'node:timers/promises';
import { scheduleDocumentSchema, type ScheduleDocumentInput } from '../../src/contract/schedule.ts';
import { ScheduleRegistry } from '../../src/schedule/schedule-registry.ts';
import { ProgrammeScheduler } from '../../src/schedule/programme-scheduler.ts';
import { RunningSchedule } from '../../src/schedule/running-schedule.ts';
import { createMemoryScheduleStore } from '../../src/store/memory-schedule-store.ts';
import { openSqliteScheduleStore } from '../../src/store/sqlite-schedule-store.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { startBroker } from '../support/broker.ts';
import { connectCounty } from '../support/county.ts';
import { createCountySigner } from '../support/county-signer.ts';
import { oneZoneBroadcast, scriptedPlayer, villageConfigJson } from '../support/village.ts';
import { percentile } from '../support/stats.ts';
import { BenchFailure } from './figures.ts';
import { startBuiltService } from './footprint.ts';
import { sampleProcess } from './proc-stats.ts';
import { Teardown } from './teardown.ts';

/**
 * The programme schedule's three figures (issue 14): how late a programme's player starts after its
 * second (with its floor: a bare Node.js timer aimed at the same seconds spawning the same process), what a
 * 200-programme schedule adds to an idle village, and how long applying a 200-programme document takes.
 */

export interface ScheduleBenchOptions {
  firings: number;
  sampleS: number;
  settleS: number;
  nodeFlags: string[];
  progress: (text: string) => void;
}

export interface ScheduleBenchResult {
  /** Scheduled second → the player's first instruction, ms. */
  accuracy: { p50: number; p99: number; max: number; n: number };
  floor: { p50: number; p99: number; max: number; n: number };
  /** `again`: the same village without a schedule sampled a second time, after the one with: the noise between two identical runs. */
  idle: {
    without: { cpuPercent: number; rssMb: number };
    with: { cpuPercent: number; rssMb: number };
    again: { cpuPercent: number; rssMb: number };
    sampleS: number;
  };
  /** Verified document → running (registry and scheduler); `parse` is the schema check the gate does before it. */
  apply: { p50: number; max: number; n: number; documentBytes: number; parseP50: number; parseMax: number };
  /** In-process: CPU per scheduler wake with 200 programmes, and the heap a loaded 200-programme schedule holds. */
  inProcess: { wakeUs: number; heldHeapMb: number };
}

const MB = 1024 * 1024;

export async function measureSchedule(options: ScheduleBenchOptions): Promise<ScheduleBenchResult> {
  const teardown = new Teardown();
  try {
    const broker = await startBroker();
    teardown.add('broker', () => broker.stop());
    const dir = mkdtempSync(join(tmpdir(), 've-bench-schedule-'));
    teardown.add('temp folder', () => rmSync(dir, { recursive: true, force: true }));

    options.progress(`schedule: firing accuracy over ${options.firings} seconds-level firings`);
    const stamps = join(dir, 'stamps');
    const accuracy = await firingAccuracy(options, broker, dir, stamps);
    options.progress('schedule: the floor (a bare timer spawning the same process)');
    const floor = await timerFloor(options.firings, join(dir, 'floor-stamps'));

    options.progress(`schedule: idle village without, with 200 programmes, and without again, ${options.sampleS} s each`);
    const without = await idleSample(options, broker, join(dir, 'idle-without'), undefined);
    const withSchedule = await idleSample(options, broker, join(dir, 'idle-with'), twoHundredProgrammes(1));
    const again = await idleSample(options, broker, join(dir, 'idle-again'), undefined);

    options.progress('schedule: applying a 200-programme document');
    const apply = applyTime(join(dir, 'apply'));
    const inProcess = { wakeUs: wakeCost(), heldHeapMb: heldHeap() };
    return { accuracy, floor, idle: { without, with: withSchedule, again, sampleS: options.sampleS }, apply, inProcess };
  } finally {
    const problems = await teardown.run();
    if (problems.length > 0) options.progress(`schedule: ${problems.join('; ')}`);
  }
}

/** The built service firing a programme every second; its player writes the time it started, in ns. */
async function firingAccuracy(options: ScheduleBenchOptions, broker: { url: string; protocolVersion: 4 | 5 }, dir: string, stamps: string) {
  const config = {
    ...villageConfigJson({
      villageId: 'bench-schedule',
      brokerUrl: broker.url,
      protocolVersion: broker.protocolVersion,
      columns: 1,
      dataDir: join(dir, 'data-accuracy'),
      // No warm-up, and amplifiers left on between firings: the figure is the schedule's, not the amplifier's.
      ...oneZoneBroadcast({ idleTailMs: 600_000, ...scriptedPlayer(`date +%s%N >> ${stamps}`) }),
    }),
    clock: { systemClock: 'trusted' },
    schedule: {
      document: {
        version: 1,
        quietHours: { from: '00:00', until: '00:00' },
        programmes: [{ id: 'every-second', cron: '* * * * * *', zones: 'all', content: { kind: 'tts', text: 'x' }, maxDurationS: 5 }],
      },
    },
    log: { level: 'warn' },
  };
  const configPath = join(dir, 'accuracy.json');
  writeFileSync(configPath, JSON.stringify(config));
  const service = startBuiltService(configPath, options.nodeFlags);
  try {
    await service.waitForLog('village-edge started', 30_000).catch(() => undefined);
    const deadline = performance.now() + (options.firings + 30) * 1000;
    while (stampsIn(stamps).length < options.firings + 5) {
      if (service.exited) throw new BenchFailure(`the service exited: ${service.lastLines()}`);
      if (performance.now() > deadline) throw new BenchFailure(`only ${stampsIn(stamps).length} firings in time`);
      await sleep(500);
    }
  } finally {
    await service.stop();
  }
  // The first few include the start-up (JIT, the first relay writes): dropped.
  return lateness(stampsIn(stamps).slice(5, 5 + options.firings));
}

/** A plain Node.js timer aimed at each next whole second, spawning the same `sh -c date` the player runs. */
async function timerFloor(firings: number, stamps: string) {
  for (let i = 0; i < firings + 5; i++) {
    await sleep(1000 - (Date.now() % 1000));
    await new Promise<void>((resolve) => spawn('sh', ['-c', `date +%s%N >> ${stamps}`], { stdio: 'ignore' }).once('exit', () => resolve()));
  }
  return lateness(stampsIn(stamps).slice(5, 5 + firings));
}

function stampsIn(path: string): bigint[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => /^\d+$/.test(l))
    .map((l) => BigInt(l));
}

/** ms after the whole second each stamp belongs to (each firing is well under a second late). */
function lateness(stamps: bigint[]) {
  const late = stamps.map((ns) => Number(ns % 1_000_000_000n) / 1e6);
  return { p50: percentile(late, 50), p99: percentile(late, 99), max: Math.max(...late), n: late.length };
}

async function idleSample(
  options: ScheduleBenchOptions,
  broker: { url: string; protocolVersion: 4 | 5 },
  dir: string,
  document: ScheduleDocumentInput | undefined,
): Promise<{ cpuPercent: number; rssMb: number }> {
  // A county that acks: the village with a schedule sends its first daily summary at start, and unacked it
  // would be republished every retry (2 s in the test timing) through the whole sample, which is no idle.
  const villageId = 'bench-idle';
  const signer = await createCountySigner({ villageId });
  const county = await connectCounty({ url: broker.url, protocolVersion: broker.protocolVersion, autoAck: true, signer });
  const config = {
    ...villageConfigJson({
      villageId,
      brokerUrl: broker.url,
      protocolVersion: broker.protocolVersion,
      commandKeys: [signer.keyEntry],
      columns: 4,
      dataDir: join(dir, 'data'),
      ...oneZoneBroadcast(),
    }),
    clock: { systemClock: 'trusted' },
    ...(document === undefined ? {} : { schedule: { document } }),
    log: { level: 'warn' },
  };
  const path = `${dir}.json`;
  writeFileSync(path, JSON.stringify(config));
  const service = startBuiltService(path, options.nodeFlags);
  try {
    await sleep(options.settleS * 1000);
    if (service.exited) throw new BenchFailure(`the service exited: ${service.lastLines()}`);
    const sample = await sampleProcess(service.pid, options.sampleS);
    const sorted = [...sample.rssKb].sort((a, b) => a - b);
    return { cpuPercent: sample.cpuPercent, rssMb: (sorted[Math.floor(sorted.length / 2)]! * 1024) / MB };
  } finally {
    await service.stop();
    await county.close();
  }
}

/** 200 programmes of the kind a county runs, timed twelve hours away so none fires while sampled. */
function twoHundredProgrammes(version: number): ScheduleDocumentInput {
  const hour = (new Date(Date.now() + 8 * 3600_000).getUTCHours() + 12) % 24;
  return {
    version,
    programmes: Array.from({ length: 200 }, (_, i) => ({
      id: `programme-${i}`,
      title: `普法节目 ${i}`,
      cron: `0 ${i % 60} ${hour} * * ${i % 7}`,
      zones: 'all' as const,
      content: { kind: 'tts' as const, text: `第${i}期普法小课堂：遇到矛盾纠纷，请找村调解委员会，依法理性解决。`.repeat(4) },
      dates: { except: ['2027-01-01', '2027-02-17'] },
    })),
  };
}

/** Receipt of a verified 200-programme document → running: schema, zone checks, the fsync'd store, the scheduler's next slots. */
function applyTime(dir: string) {
  const logger = createLogger({ level: 'silent' });
  const store = openSqliteScheduleStore({ path: join(dir, 'schedule.sqlite') });
  const scheduler = new ProgrammeScheduler({
    clock: { now: Date.now, monotonic: () => performance.now(), state: () => ({ trusted: true, source: 'system', correctionMs: 0 }) },
    log: store,
    media: { want: () => undefined, check: () => ({ ok: true }) },
    player: { submit: () => undefined, stop: () => undefined },
    zoneIds: ['square'],
    logger,
  });
  const registry = new ScheduleRegistry({
    store,
    zoneIds: ['square'],
    mediaExtensions: ['.mp3'],
    onRunning: (s) => scheduler.replace(s),
    onApplied: () => undefined,
    onRejected: () => undefined,
    onStorageFailure: (error) => {
      throw error;
    },
    logger,
    now: Date.now,
  });
  scheduler.start();
  registry.start();
  const times: number[] = [];
  const parses: number[] = [];
  let bytes = 0;
  try {
    for (let version = 1; version <= 30; version++) {
      const text = JSON.stringify(twoHundredProgrammes(version));
      bytes = Buffer.byteLength(text);
      const parseStarted = performance.now();
      const document = scheduleDocumentSchema.parse(JSON.parse(text));
      const started = performance.now();
      registry.offer('village', document, `bench-${version}`);
      times.push(performance.now() - started);
      parses.push(started - parseStarted);
      if (registry.running?.version !== version) throw new BenchFailure(`version ${version} was not applied`);
    }
  } finally {
    scheduler.stop();
    store.close();
  }
  const measured = times.slice(5);
  const parsed = parses.slice(5);
  return {
    p50: percentile(measured, 50),
    max: Math.max(...measured),
    n: measured.length,
    documentBytes: bytes,
    parseP50: percentile(parsed, 50),
    parseMax: Math.max(...parsed),
  };
}

const silent = createLogger({ level: 'silent' });
const trustedClock = {
  now: Date.now,
  monotonic: () => performance.now(),
  state: () => ({ trusted: true, source: 'system' as const, correctionMs: 0 }),
};

/** CPU of one wake of the scheduler with 200 programmes loaded (timers run by hand, each wake and media check in turn). */
function wakeCost(): number {
  const timers: Array<() => void> = [];
  const scheduler = new ProgrammeScheduler({
    clock: trustedClock,
    log: createMemoryScheduleStore(),
    media: { want: () => undefined, check: () => ({ ok: true }) },
    player: { submit: () => undefined, stop: () => undefined },
    zoneIds: ['square'],
    logger: silent,
    setTimer: (run) => timers.push(run),
    clearTimer: () => undefined,
  });
  scheduler.replace(new RunningSchedule(scheduleDocumentSchema.parse(twoHundredProgrammes(1)), 'village'));
  scheduler.start();
  const wakes = 5000;
  const before = process.cpuUsage();
  for (let i = 0; i < wakes; i++) timers.shift()?.();
  const used = process.cpuUsage(before);
  scheduler.stop();
  return (used.user + used.system) / wakes;
}

/** The heap a running 200-programme schedule keeps (document, cron slots, zone rules), after full collections. */
function heldHeap(): number {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const text = JSON.stringify(twoHundredProgrammes(1));
  gc();
  const before = process.memoryUsage().heapUsed;
  const held = new RunningSchedule(scheduleDocumentSchema.parse(JSON.parse(text)), 'village');
  gc();
  const after = process.memoryUsage().heapUsed;
  if (held.programmes.size !== 200) throw new BenchFailure('the schedule did not load');
  return (after - before) / MB;
}
