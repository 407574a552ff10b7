import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import type { AlarmPayload } from '../../src/contract/payloads.ts';
import type { BrokerKind } from '../support/broker.ts';
import { launchConsoleBrowser } from '../support/console-browser.ts';
import { ConsoleHttpClient } from '../support/console-http.ts';
import { addAccount, defaultAccounts } from '../support/console-village.ts';
import { freePort } from '../support/broker.ts';
import { connectCounty } from '../support/county.ts';
import { createCountySigner } from '../support/county-signer.ts';
import { watchBus } from '../support/bus-monitor.ts';
import { latchedButton } from '../support/modbus-rtu-slave.ts';
import { fromBuild, startService, writeConfig, type LogRecord, type ServiceProcess } from '../support/service-process.ts';
import { percentile } from '../support/stats.ts';
import { waitFor } from '../support/wait.ts';
import { BenchFailure } from './figures.ts';
import { sampleProcess } from './proc-stats.ts';
import { openRtuRig, rtuColumnsConfig } from './rtu-village.ts';
import { Teardown } from './teardown.ts';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const VILLAGE = 'bench-console';
const MB = 1024;
// As rtu-village.ts wires the line.
const BENCH_BAUD = 9600;

export interface ConsoleBenchOptions {
  /** Alarm columns on the 9600-baud RTU bus, polled every 100 ms. */
  columns: number;
  /** Length of each measured window. */
  phaseS: number;
  /** After start-up, before anything is measured. */
  settleS: number;
  /** Clients refreshing the status page once a second. */
  clients: number;
  /** Page loads before the "after page loads" RSS figure. */
  pageLoads: number;
  nodeFlags: string[];
  /** Measure dist/ as it is instead of running `npm run build` first. */
  skipBuild: boolean;
  progress: (text: string) => void;
}

export interface Spread {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

/** One measured window: the alarm path and the bus while the console was in some state. */
export interface ConsolePhase {
  label: string;
  /** Button flip → the county received the alarm (includes waiting for the column's next poll, 0–100 ms). */
  flipToCounty: Spread;
  /** The poll that sampled the press → the county received it: the part the service's event loop decides. */
  sampleToCounty: Spread;
  /** Gaps between two reads of one column, every column pooled (configured: 100 ms). */
  pollGap: Spread;
  /** The service's CPU over the window, % of one core. */
  serviceCpuPercent: number;
  /** The whole machine's busy time over the window, % of all cores (Chromium, broker, bench included). */
  machineBusyPercent: number;
  /** The bench process's own CPU (slave, county, browser driver), % of one core. */
  benchCpuPercent: number;
  /** What the load saw, when there was one. */
  load?: string;
}

export interface ConsoleRss {
  /** Median VmRSS over 10 s after settling, console off and on. */
  offSettledMb: number;
  onSettledMb: number;
  /** Console off: the same, again at about the uptime of `onAfterLoadsMb`. */
  offLaterMb: number;
  /** Console on, after `pageLoads` page loads (page and both assets each, one signed-in client). */
  onAfterLoadsMb: number;
  /** Console off, a second service run: how far two runs of the same thing differ. */
  offAgainSettledMb: number;
  pageLoads: number;
}

export interface ConsoleBenchResult {
  brokerKind: BrokerKind;
  columns: number;
  phases: ConsolePhase[];
  rss: ConsoleRss;
}

/**
 * The console's cost to the alarm path: the built service on a 9600-baud PTY bus (as the latency rows), run
 * with the console off, on but idle, on while `clients` Chromium pages reload the status page every second, on
 * while as many plain HTTP clients in a process of their own fetch it and /api/status every second, and off
 * again (the noise between two runs of the same thing). Each run of the service has a broker, line and slave
 * of its own, so one run's leftovers cannot reach the next.
 */
export async function measureConsole(options: ConsoleBenchOptions): Promise<ConsoleBenchResult> {
  if (!options.skipBuild) {
    options.progress('console: npm run build');
    await promisify(execFile)('npm', ['run', 'build', '--silent'], { cwd: repoRoot }).catch((error: { stdout?: string; stderr?: string }) => {
      throw new BenchFailure(`npm run build failed: ${`${error.stdout ?? ''}${error.stderr ?? ''}`.trim().slice(0, 2000)}`);
    });
  }
  const phases: ConsolePhase[] = [];
  let brokerKind: BrokerKind = 'mosquitto';

  options.progress('console: console off');
  const off = await withService(false, options, async (run) => {
    brokerKind = run.brokerKind;
    const settled = await run.rssMedian();
    phases.push(await run.phase('console off'));
    // At about the uptime at which the console-on run takes its after-page-loads figure.
    await sleep(5000);
    return { settled, later: await run.rssMedian() };
  });

  options.progress('console: console on');
  const on = await withService(true, options, async (run) => {
    const settled = await run.rssMedian();
    phases.push(await run.phase('console on, idle'));
    await run.pageLoads(options.pageLoads);
    await sleep(5000);
    const afterLoads = await run.rssMedian();

    // Twice: as this machine runs them (Chromium and the service compete for its two cores), and with Chromium
    // in a cgroup of its own with a small CPU share, as when the browsers are on the officials' phones and PC
    // and the Pi only serves the pages.
    for (const shares of [undefined, chromiumShares]) {
      const group = shares === undefined ? undefined : lowShareCgroup(shares);
      if (shares !== undefined && group === undefined) {
        options.progress('console: no cgroup v1 cpu controller writable here (root is needed): the low-share Chromium row is left out');
        continue;
      }
      const where =
        group === undefined ? 'one headless Chromium' : `one headless Chromium in a cgroup of cpu.shares ${shares} (the service has 1024)`;
      options.progress(`console: ${options.clients} Chromium pages reloading /status every second (${where})`);
      const browsers = await chromiumClients(run.url, options.clients, group?.path);
      try {
        await sleep(5000);
        const phase = await run.phase(`console on, ${options.clients} Chromium pages reloading /status every 1 s (${where})`);
        phases.push({ ...phase, load: browsers.summary() });
      } finally {
        await browsers.stop();
        await group?.remove();
      }
    }

    options.progress(`console: ${options.clients} HTTP clients in a process of their own`);
    const http = await httpClients(run.url, options.clients);
    try {
      await sleep(5000);
      const phase = await run.phase(`console on, ${options.clients} HTTP clients fetching /status + /api/status every 1 s (separate Node process)`);
      phases.push({ ...phase, load: await http.stop() });
    } finally {
      await http.stop();
    }
    return { settled, afterLoads };
  });

  options.progress('console: console off again');
  const again = await withService(false, options, async (run) => {
    const settled = await run.rssMedian();
    phases.push(await run.phase('console off again (noise)'));
    return settled;
  });

  return {
    brokerKind,
    columns: options.columns,
    phases,
    rss: {
      offSettledMb: off.settled,
      onSettledMb: on.settled,
      offLaterMb: off.later,
      onAfterLoadsMb: on.afterLoads,
      offAgainSettledMb: again,
      pageLoads: options.pageLoads,
    },
  };
}

interface ServiceRun {
  brokerKind: BrokerKind;
  url: string;
  phase(label: string): Promise<ConsolePhase>;
  rssMedian(): Promise<number>;
  pageLoads(count: number): Promise<void>;
}

/** One service run on a rig of its own, settled; `body` measures it, then everything is taken down. */
async function withService<T>(enabled: boolean, options: ConsoleBenchOptions, body: (run: ServiceRun) => Promise<T>): Promise<T> {
  const teardown = new Teardown();
  try {
    const { broker, pair, slave } = await openRtuRig(options.columns, teardown);
    const buttons = Array.from({ length: options.columns }, (_, i) => latchedButton(slave.unit(i + 1), 0, 0));
    const signer = await createCountySigner({ villageId: VILLAGE });
    const county = await connectCounty({ url: broker.url, protocolVersion: broker.protocolVersion, autoAck: true, signer });
    teardown.add('county client', () => county.close());

    const dir = mkdtempSync(join(tmpdir(), 've-bench-console-'));
    teardown.add('temp folder', () => rmSync(dir, { recursive: true, force: true }));
    const port = await freePort();
    const config = {
      ...rtuColumnsConfig({
        villageId: VILLAGE,
        terminals: options.columns,
        brokerUrl: broker.url,
        protocolVersion: broker.protocolVersion,
        dataDir: join(dir, 'data'),
        path: pair.controllerPath,
        commandKeys: [signer.keyEntry],
      }),
      console: { enabled, host: '127.0.0.1', port, usersFile: 'console-users.json' },
    };
    const configPath = writeConfig(dir, config);
    const account = defaultAccounts.official;
    await addAccount(configPath, account);

    const acked = new Set<string>();
    const onLog = (line: LogRecord): void => {
      if (line.msg === 'alarm acknowledged by county') acked.add(String(line['alarmId']));
    };
    const service: ServiceProcess = startService(configPath, onLog, fromBuild(options.nodeFlags));
    teardown.add('service', async () => void (await service.terminate()));
    const stderr: string[] = [];
    service.child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
    let death: string | undefined;
    service.child.once('exit', (code, signal) => {
      const lines = service.logs.slice(-8).map((l) => JSON.stringify(l));
      death = `exit code ${code}, signal ${signal}; stderr: ${stderr.join('').slice(-1500)}; its last log lines: ${lines.join(' ')}`;
    });
    const alive = (): void => {
      if (death !== undefined) throw new BenchFailure(`the service died: ${death}`);
    };
    await service.waitForLog((l) => l.msg === 'village-edge started', 20_000);
    if (enabled) await service.waitForLog((l) => l.msg === 'console listening', 5000);
    await county.waitFor((m) => m.kind === 'state' && m.village === VILLAGE, 20_000);
    await waitFor('every column polled', () => buttons.every((_, i) => slave.unit(i + 1).requests >= 3), 10_000);
    const pid = service.child.pid;
    if (pid === undefined) throw new BenchFailure('the service has no pid');
    await sleep(options.settleS * 1000);

    const seen = new Set<string>();
    let pressNo = 0;
    const url = `http://127.0.0.1:${port}`;
    const run: ServiceRun = {
      brokerKind: broker.kind,
      url,
      async phase(label) {
        const flip: number[] = [];
        const sample: number[] = [];
        const machineBefore = machineTicks();
        const benchBefore = process.cpuUsage();
        const startedAt = performance.now();
        // A monitor per window: one keeps every read it saw, so a second window would count the gap between the two.
        const bus = watchBus(slave, { baud: BENCH_BAUD });
        bus.start();
        const serviceCpu = sampleProcess(pid, options.phaseS, alive).catch((error: unknown) => {
          alive();
          throw error;
        });
        // Read after the presses; a rejection before then must not go unhandled meanwhile.
        serviceCpu.catch(() => undefined);
        while (performance.now() - startedAt < options.phaseS * 1000 - 1500) {
          const unit = (pressNo++ % options.columns) + 1;
          const button = buttons[unit - 1]!;
          const flippedAt = performance.now();
          button.press();
          let receivedAt = 0;
          const message = await county
            .waitFor((m) => {
              const alarm = m.payload as Partial<AlarmPayload>;
              if (m.kind !== 'alarm' || alarm.terminal !== `column-${unit}` || typeof alarm.id !== 'string' || seen.has(alarm.id)) return false;
              seen.add(alarm.id);
              receivedAt = m.receivedAt;
              return true;
            }, 10_000)
            .catch(() => {
              alive();
              throw new BenchFailure(`LOST: a press on column-${unit} (${label}) raised no alarm at the county within 10 s`);
            });
          const sampledAt = bus.firstReadAfter(unit, flippedAt);
          flip.push(receivedAt - flippedAt);
          if (sampledAt !== undefined) sample.push(receivedAt - sampledAt);
          const id = (message.payload as AlarmPayload).id;
          await waitFor(`alarm ${id} acked`, () => acked.has(id), 10_000);
          button.release();
          // The next press of this column comes a whole round later; a random gap keeps presses off the poll's beat.
          await sleep(250 + Math.random() * 500);
        }
        const cpu = await serviceCpu;
        const figures = bus.stop();
        bus.close();
        const elapsedS = (performance.now() - startedAt) / 1000;
        const bench = process.cpuUsage(benchBefore);
        return {
          label,
          flipToCounty: spread(flip),
          sampleToCounty: spread(sample),
          pollGap: spread(figures.pollIntervals),
          serviceCpuPercent: cpu.cpuPercent,
          machineBusyPercent: machineBusy(machineBefore, machineTicks()),
          benchCpuPercent: ((bench.user + bench.system) / 1e6 / elapsedS) * 100,
        };
      },
      async rssMedian() {
        alive();
        const sample = await sampleProcess(pid, 10, alive);
        return percentile(sample.rssKb, 50) / MB;
      },
      async pageLoads(count) {
        const client = new ConsoleHttpClient(url);
        const signedIn = await client.login(account.name, account.password);
        if (signedIn.status !== 303) throw new BenchFailure(`the bench could not sign in to the console: ${signedIn.status}`);
        for (let n = 0; n < count; n++) {
          for (const path of ['/status', '/assets/console.css', '/assets/console.js']) {
            const answer = await client.get(path);
            if (answer.status !== 200) throw new BenchFailure(`GET ${path} answered ${answer.status}`);
          }
        }
      },
    };
    const result = await body(run);
    const code = await service.terminate();
    if (code !== 0) throw new BenchFailure(`the service exited with ${code} on SIGTERM`);
    return result;
  } finally {
    for (const problem of await teardown.run()) console.error(`console: ${problem}`);
  }
}

/** `clients` pages in one headless Chromium, each signed in (a session each) and reloading /status every second. */
async function chromiumClients(url: string, clients: number, cpuCgroup?: string) {
  const browser = await launchConsoleBrowser(cpuCgroup === undefined ? {} : { cpuCgroup });
  const reloadMs: number[] = [];
  let failures = 0;
  let running = true;
  const pages: Page[] = [];
  try {
    for (let i = 0; i < clients; i++) {
      const page = await browser.newPage('desktop');
      await page.goto(`${url}/login`);
      await page.locator('#name').fill(defaultAccounts.official.name);
      await page.locator('#password').fill(defaultAccounts.official.password);
      await Promise.all([page.waitForURL(`${url}/status`), page.locator('form.login button[type=submit]').click()]);
      pages.push(page);
    }
  } catch (error) {
    await browser.close();
    throw error;
  }
  const loops = pages.map(async (page, i) => {
    await sleep((i * 1000) / pages.length);
    let next = performance.now();
    while (running) {
      const startedAt = performance.now();
      try {
        await page.reload({ waitUntil: 'load', timeout: 10_000 });
        reloadMs.push(performance.now() - startedAt);
      } catch {
        if (running) failures++;
      }
      next += 1000;
      await sleep(Math.max(0, next - performance.now()));
    }
  });
  let stopped: Promise<void> | undefined;
  return {
    summary: () =>
      `${reloadMs.length} reloads, ${failures} failed; reload → load event p50 ${percentile(reloadMs, 50).toFixed(0)} ms, p99 ${percentile(reloadMs, 99).toFixed(0)} ms. Chromium's renderers share the machine's cores with the service, the RTU slave and the county (these two in the bench process, with the browser driver): read this row against the machine-busy figure, and the HTTP clients' row for what the console itself costs`,
    stop: () => {
      stopped ??= (async () => {
        running = false;
        await Promise.allSettled(loops);
        await browser.close();
      })();
      return stopped;
    },
  };
}

/** console-clients.ts in a Node process of its own; stop() gives its one-line summary. */
async function httpClients(url: string, clients: number) {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(repoRoot, 'test/bench/console-clients.ts'),
      url,
      defaultAccounts.official.name,
      defaultAccounts.official.password,
      String(clients),
      '1000',
    ],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const lines: string[] = [];
  const stderr: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => lines.push(line));
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitFor('the HTTP clients signed in', () => lines.includes('ready') || child.exitCode !== null, 30_000);
  if (!lines.includes('ready')) throw new BenchFailure(`console-clients did not start: ${stderr.join('')}`);
  let summary: Promise<string> | undefined;
  return {
    stop: () => {
      summary ??= (async () => {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
        const figures = lines.at(-1);
        if (figures === undefined || !figures.startsWith('{')) return `no figures from the clients: ${stderr.join('').slice(0, 300)}`;
        const f = JSON.parse(figures) as {
          requests: number;
          errors: number;
          byStatus: Record<string, number>;
          p50Ms: number;
          p99Ms: number;
          cpuS: number;
        };
        const statuses = Object.entries(f.byStatus)
          .map(([k, n]) => `${k}: ${n}`)
          .join(', ');
        return `${f.requests} requests (${statuses}), ${f.errors} failed; answer p50 ${f.p50Ms.toFixed(1)} ms, p99 ${f.p99Ms.toFixed(1)} ms; the clients' own CPU ${f.cpuS.toFixed(1)} s`;
      })();
      return summary;
    },
  };
}

function spread(values: readonly number[]): Spread {
  return { n: values.length, p50: percentile(values, 50), p99: percentile(values, 99), max: values.length === 0 ? Number.NaN : Math.max(...values) };
}

/** Busy and total jiffies of all cores, from the first line of /proc/stat. */
function machineTicks(): { busy: number; total: number } {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
  const total = fields.slice(0, 8).reduce((sum, v) => sum + v, 0);
  return { busy: total - (fields[3] ?? 0) - (fields[4] ?? 0), total };
}

function machineBusy(before: { busy: number; total: number }, after: { busy: number; total: number }): number {
  return ((after.busy - before.busy) / Math.max(1, after.total - before.total)) * 100;
}

/** Chromium's share in its own cgroup against the default 1024 of every other process (the service among them). */
const chromiumShares = 16;

/** A cgroup v1 `cpu` folder with `cpu.shares`; undefined where there is none to write (not root, cgroup v2 only). */
function lowShareCgroup(shares: number): { path: string; remove(): Promise<void> } | undefined {
  const path = `/sys/fs/cgroup/cpu/ve-bench-chromium-${process.pid}`;
  try {
    mkdirSync(path);
    writeFileSync(join(path, 'cpu.shares'), String(shares));
  } catch {
    return undefined;
  }
  return {
    path,
    async remove() {
      // The browser's processes leave the group as they exit; rmdir fails until the last has gone.
      for (let i = 0; i < 100; i++) {
        try {
          rmdirSync(path);
          return;
        } catch {
          await sleep(100);
        }
      }
    },
  };
}
