import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { BrokerKind } from '../support/broker.ts';
import { waitFor } from '../support/wait.ts';
import type { BusFigures } from '../support/bus-monitor.ts';
import { BenchFailure } from './figures.ts';
import { mean } from '../support/stats.ts';
import { openRtuRig, rtuColumnsConfig } from './rtu-village.ts';
import { memoryKb, sampleProcess } from './proc-stats.ts';
import { Teardown } from './teardown.ts';

export interface FootprintOptions {
  terminals: number;
  settleS: number;
  sampleS: number;
  /** Run the service under `node --cpu-prof` and summarise where its CPU time went (inflates the figures). */
  cpuProfile: boolean;
  /** Node flags for the service: the systemd unit's (see productionNodeFlags), or others to try a fix. */
  nodeFlags: string[];
  /** Measure dist/ as it is (e.g. a variant copied there by hand) instead of running `npm run build`. */
  skipBuild?: boolean;
  progress: (text: string) => void;
}

export interface FootprintResult {
  brokerKind: BrokerKind;
  buildMs: number;
  sampleS: number;
  cpuPercent: number;
  /** The kernel's share of cpuPercent (stime). */
  systemPercent: number;
  threads: number;
  rssMeanMb: number;
  rssMaxMb: number;
  /** How fast the lows of VmRSS (after the GCs) rise over the window, per minute: a leak shows here. */
  rssGrowthMbPerMin: number;
  /** VmHWM at the end of the window: the peak since the process started. */
  hwmMb: number;
  /** At the end of the window: pages mapped from files (the node binary, libraries) and anonymous ones. */
  rssFileMb: number;
  rssAnonMb: number;
  bus: BusFigures;
  /** Warnings and errors the service logged while sampled (protocol errors, offline devices, ...). */
  complaints: number;
  /** Top functions by self time, when profiled. */
  profile: string[] | undefined;
  /** CPU % of one core per thread name (main thread, V8 workers, libuv pool, ...), busiest first. */
  threadCpu: Array<{ name: string; percent: number }>;
  /** Times per second the main thread slept and was woken. */
  wakeUpsPerS: number;
}

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const VILLAGE = 'bench-footprint';
const MB = 1024 * 1024;

/**
 * The built service (dist/) as a child process with 16 columns on one PTY bus at 9600-baud wire time and
 * a real broker, idle: CPU from /proc/<pid>/stat, memory from /proc/<pid>/status.
 */
export async function measureFootprint(options: FootprintOptions): Promise<FootprintResult> {
  const teardown = new Teardown();
  try {
    options.progress('footprint: npm run build');
    const buildStarted = performance.now();
    if (options.skipBuild !== true)
      await promisify(execFile)('npm', ['run', 'build', '--silent'], { cwd: repoRoot }).catch((error: { stdout?: string; stderr?: string }) => {
        throw new BenchFailure(`npm run build failed: ${`${error.stdout ?? ''}${error.stderr ?? ''}`.trim().slice(0, 2000)}`);
      });
    const buildMs = performance.now() - buildStarted;

    const { broker, pair, slave, bus } = await openRtuRig(options.terminals, teardown);

    const dir = mkdtempSync(join(tmpdir(), 've-bench-footprint-'));
    teardown.add('temp folder', () => rmSync(dir, { recursive: true, force: true }));
    const configPath = join(dir, 'config.json');
    writeFileSync(
      configPath,
      JSON.stringify(
        rtuColumnsConfig({
          villageId: VILLAGE,
          terminals: options.terminals,
          brokerUrl: broker.url,
          protocolVersion: broker.protocolVersion,
          dataDir: join(dir, 'data'),
          path: pair.controllerPath,
        }),
        null,
        2,
      ),
    );

    const profileDir = join(dir, 'profile');
    const service = startBuiltService(configPath, [
      ...options.nodeFlags,
      ...(options.cpuProfile ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []),
    ]);
    teardown.add('service process', () => service.stop());
    await service.waitForLog('village-edge started', 20_000);
    await waitFor(
      'every column polled',
      () => Array.from({ length: options.terminals }, (_, i) => slave.unit(i + 1).requests >= 2).every(Boolean),
      20_000,
    );
    options.progress(`footprint: service up (pid ${service.pid}); settling ${options.settleS} s, then sampling ${options.sampleS} s`);
    await sleep(options.settleS * 1000);

    const complaintsBefore = service.complaints.length;
    bus.start();
    const fromUs = Number(process.hrtime.bigint() / 1000n);
    const sample = await sampleProcess(service.pid, options.sampleS, () => {
      if (service.exited) throw new BenchFailure(`the service exited during sampling: ${service.lastLines()}`);
    });
    const toUs = Number(process.hrtime.bigint() / 1000n);
    const { hwmKb, rssFileKb, rssAnonKb } = memoryKb(service.pid);
    const busFigures = bus.stop();
    const complaints = service.complaints.slice(complaintsBefore);

    const code = await service.stop();
    if (code !== 0) throw new BenchFailure(`the service exited with ${code} on SIGTERM: ${service.lastLines()}`);
    return {
      brokerKind: broker.kind,
      buildMs,
      sampleS: sample.elapsedS,
      cpuPercent: sample.cpuPercent,
      systemPercent: sample.systemPercent,
      threads: sample.threads,
      rssMeanMb: (mean(sample.rssKb) * 1024) / MB,
      rssMaxMb: (Math.max(...sample.rssKb) * 1024) / MB,
      rssGrowthMbPerMin: lowsGrowthPerMinute(sample.rssKb, sample.elapsedS) / 1024,
      hwmMb: (hwmKb * 1024) / MB,
      rssFileMb: (rssFileKb * 1024) / MB,
      rssAnonMb: (rssAnonKb * 1024) / MB,
      bus: busFigures,
      complaints: complaints.length,
      profile: options.cpuProfile ? summariseProfile(profileDir, { fromUs, toUs }) : undefined,
      threadCpu: sample.threadCpu,
      wakeUpsPerS: sample.wakeUpsPerS,
    };
  } finally {
    const problems = await teardown.run();
    for (const problem of problems) console.error(`footprint: ${problem}`);
  }
}

/**
 * How fast the lows of a once-a-second RSS series rise: the lowest sample of its last third against the
 * lowest of its first third, per minute. Idle RSS saws up ~0.8 MB between major GCs (every 25-55 s here:
 * promoted garbage) and drops back. Comparing the window's ends measured where in a tooth they fell (-0.67
 * to +0.76 MB/min over 60 s windows of one 16-minute run that stayed within 56.5-57.5 MB); the lows are
 * what the GC keeps, and a leak lifts them.
 */
function lowsGrowthPerMinute(series: number[], elapsedS: number): number {
  const third = Math.floor(series.length / 3);
  if (third === 0) return 0;
  const firstLow = Math.min(...series.slice(0, third));
  const lastLow = Math.min(...series.slice(-third));
  // The thirds' centres are two thirds of the window apart.
  return ((lastLow - firstLow) / ((elapsedS * 2) / 3)) * 60;
}

interface BuiltService {
  readonly pid: number;
  readonly exited: boolean;
  /** Log lines at warn or above. */
  readonly complaints: string[];
  waitForLog(msg: string, timeoutMs: number): Promise<void>;
  lastLines(): string;
  /** SIGTERM, then SIGKILL after 10 s; the exit code (null when killed). */
  stop(): Promise<number | null>;
}

/** `node dist/main.js run`, started directly (not through npm), so the pid we measure is the service. */
export function startBuiltService(configPath: string, nodeFlags: string[]): BuiltService {
  const child: ChildProcess = spawn(process.execPath, [...nodeFlags, join(repoRoot, 'dist/main.js'), 'run', '--config', configPath], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new BenchFailure('could not start node dist/main.js');
  const pid = child.pid;
  const tail: string[] = [];
  const complaints: string[] = [];
  const seen = new Set<string>();
  const waiters = new Set<() => void>();
  let exited = false;
  let exitCode: number | null = null;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code) => {
      exited = true;
      exitCode = code;
      for (const waiter of [...waiters]) waiter();
      resolve();
    }),
  );
  const keep = (line: string): void => {
    tail.push(line);
    if (tail.length > 20) tail.shift();
  };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    keep(line);
    const msg = /"msg":"((?:[^"\\]|\\.)*)"/.exec(line)?.[1];
    if (msg !== undefined) seen.add(msg);
    if (/^\{"level":(40|50|60)/.test(line)) complaints.push(line);
    for (const waiter of [...waiters]) waiter();
  });
  createInterface({ input: child.stderr! }).on('line', keep);
  return {
    pid,
    get exited() {
      return exited;
    },
    complaints,
    waitForLog(msg, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (!seen.has(msg) && !exited) return;
          clearTimeout(timer);
          waiters.delete(check);
          if (seen.has(msg)) resolve();
          else reject(new BenchFailure(`the service exited before logging "${msg}": ${tail.join('\n')}`));
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new BenchFailure(`the service did not log "${msg}" within ${timeoutMs} ms: ${tail.join('\n')}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    lastLines: () => tail.join('\n'),
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exit;
        clearTimeout(timer);
      }
      return exitCode;
    },
  };
}

/**
 * Self time per function, from the .cpuprofile that `node --cpu-prof` writes at exit, over the sampling
 * window only (start-up would otherwise dominate). V8's profile clock and process.hrtime are both
 * CLOCK_MONOTONIC, so the window is given in hrtime microseconds.
 */
function summariseProfile(dir: string, window: { fromUs: number; toUs: number }): string[] {
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (file === undefined) return ['(no .cpuprofile was written)'];
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
    nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
    startTime: number;
    samples: number[];
    timeDeltas: number[];
  };
  const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<string, number>();
  let totalUs = 0;
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const node = byNode.get(id);
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (node === undefined || at < window.fromUs || at > window.toUs) return;
    totalUs += delta;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url === '' ? '' : ` ${url.replace(/^file:\/\//, '').replace(repoRoot, '')}:${lineNumber + 1}`;
    const key = `${functionName || '(anonymous)'}${where}`;
    selfUs.set(key, (selfUs.get(key) ?? 0) + delta);
  });
  const busyUs = totalUs - (selfUs.get('(idle)') ?? 0);
  const head = `${(busyUs / 1000).toFixed(0)} ms busy of ${(totalUs / 1000).toFixed(0)} ms sampled; self time:`;
  return [
    head,
    ...[...selfUs.entries()]
      .filter(([key]) => key !== '(idle)')
      .sort((a, b) => b[1] - a[1])
      .slice(0, 15)
      .map(([key, us]) => `${((us / busyUs) * 100).toFixed(1).padStart(5)} %  ${key}`),
  ];
}
