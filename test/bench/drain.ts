import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createVillageEdge } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { CommandKeyEntry } from '../../src/county/keys.ts';
import type { AlarmPayload } from '../../src/contract/payloads.ts';
import { isoWithOffset, uuidv7 } from '../../src/platform/time.ts';
import { openSqliteOutbox } from '../../src/store/sqlite-outbox.ts';
import type { Outbox } from '../../src/store/types.ts';
import { freePort, startBroker, type BrokerKind } from '../support/broker.ts';
import type { FromCounty, ToCounty } from './drain-county.ts';
import { BenchFailure, epochNow } from './figures.ts';
import { LogTap } from './log-tap.ts';
import { Teardown } from './teardown.ts';

export interface DrainOptions {
  alarms: number;
  progress: (text: string) => void;
}

export interface DrainResult {
  brokerKind: BrokerKind;
  alarms: number;
  /** Filling the backlog through `outbox.append`, one committed transaction each. */
  appendMs: number;
  brokerUpToLinkUpMs: number;
  brokerUpToAllReceivedMs: number;
  /** Alarms per second from the link coming up to the last first delivery. */
  rate: number;
  outOfOrder: number;
  duplicates: number;
  invalid: number;
  brokerUpToDepthZeroMs: number;
  /** First deliveries that were already a republish (attempt > 1): the county missed the first publish. */
  retriedFirsts: number;
}

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const VILLAGE = 'bench-drain';
const TERMINALS = 8;
const LINK_TIMEOUT_MS = 10_000;
const DRAIN_TIMEOUT_MS = 120_000;

/**
 * 10,000 alarms stored while the village cannot reach its broker, then the broker becomes reachable with a
 * county already subscribed: how fast, and in what order, they reach the county and are acknowledged.
 *
 * The village is configured with a loopback port where nothing listens (connection refused, exactly as a
 * broker that is down); "broker up" is the moment that port starts relaying to the real broker. A broker
 * restart would race: the broker drops QoS 1 publishes that nobody has subscribed to yet, and the village
 * often reconnects before a freshly connected county has subscribed. The service runs in this process;
 * the county (and the relay) in a child, drain-county.ts.
 */
export async function measureDrain(options: DrainOptions): Promise<DrainResult> {
  const teardown = new Teardown();
  try {
    const broker = await startBroker();
    teardown.add('broker', () => broker.stop());
    const villagePort = await freePort();

    const dataDir = mkdtempSync(join(tmpdir(), 've-bench-drain-'));
    teardown.add('data folder', () => rmSync(dataDir, { recursive: true, force: true }));
    const tap = new LogTap('info');
    let ackedAllAt = Number.NaN;
    tap.on('alarm acknowledged by county', () => {
      if (tap.count('alarm acknowledged by county') === options.alarms) ackedAllAt = epochNow();
    });
    // The county comes first: it makes its signing key, which the village must list to take its acks.
    const county = await startCounty(VILLAGE);
    teardown.add('county process', () => county.close());
    await county.subscribe({ type: 'subscribe', url: broker.url, protocolVersion: broker.protocolVersion, village: VILLAGE, expect: options.alarms });
    const config = drainConfig(`mqtt://127.0.0.1:${villagePort}`, broker.protocolVersion, dataDir, county.keyEntry);
    // The outbox the service runs on, held here to fill the backlog as AlarmService.raise would.
    const outbox = openSqliteOutbox({ path: join(dataDir, 'outbox.sqlite') });
    const app = createVillageEdge({ config, version: 'bench', logger: tap.logger, env: {}, adapters: { outbox } });
    await app.start();
    teardown.add('service', () => app.stop());
    let linkUpAt = Number.NaN;
    tap.on('county link connected', () => (linkUpAt = epochNow()));

    const appendStarted = performance.now();
    for (let i = 0; i < options.alarms; i++) {
      appendAlarm(outbox, config.village, `column-${(i % TERMINALS) + 1}`);
      if (i % 1000 === 999) {
        options.progress(`drain: ${i + 1}/${options.alarms} alarms stored while the broker is unreachable`);
        await yieldToLoop();
      }
    }
    const appendMs = performance.now() - appendStarted;
    const backlog = outbox.stats().byStream.alarm;
    if (backlog !== options.alarms) throw new BenchFailure(`outbox holds ${backlog} alarms after ${options.alarms} appends`);
    if ((await app.status()).link.connected) throw new BenchFailure('the county link is up although its broker is unreachable');

    const brokerUpAt = await county.openPath(villagePort, broker.port);
    options.progress(`drain: broker reachable, county subscribed; draining ${options.alarms} alarms`);

    const allReceivedAt = await county.allReceived(DRAIN_TIMEOUT_MS);
    await tap.until('every ack stored', () => tap.count('alarm acknowledged by county') >= options.alarms, DRAIN_TIMEOUT_MS);
    const depth = outbox.stats().depth;
    if (depth !== 0) throw new BenchFailure(`outbox depth is ${depth} after all ${options.alarms} acks were logged`);
    const report = await county.report();

    const seqs = report.firsts.map(([seq]) => seq);
    const expected = new Set(Array.from({ length: options.alarms }, (_, i) => i + 1));
    for (const seq of seqs) expected.delete(seq);
    if (expected.size > 0)
      throw new BenchFailure(`LOST: ${expected.size} alarm seqs never reached the county, e.g. ${[...expected].slice(0, 5).join(', ')}`);
    let highest = 0;
    let outOfOrder = 0;
    for (const seq of seqs) {
      if (seq < highest) outOfOrder++;
      highest = Math.max(highest, seq);
    }
    const lastFirstAt = report.firsts.at(-1)?.[1] ?? Number.NaN;
    const retried = report.firsts.filter(([, , attempt]) => attempt !== 1).length;
    if (retried > 0) options.progress(`drain: ${retried} first deliveries were retries (attempt > 1): the figures include retry waits`);
    return {
      brokerKind: broker.kind,
      alarms: options.alarms,
      appendMs,
      brokerUpToLinkUpMs: linkUpAt - brokerUpAt,
      brokerUpToAllReceivedMs: allReceivedAt - brokerUpAt,
      rate: options.alarms / ((lastFirstAt - linkUpAt) / 1000),
      outOfOrder,
      duplicates: report.total - report.firsts.length,
      invalid: report.invalid,
      brokerUpToDepthZeroMs: ackedAllAt - brokerUpAt,
      retriedFirsts: retried,
    };
  } finally {
    const problems = await teardown.run();
    for (const problem of problems) console.error(`drain: ${problem}`);
  }
}

/** An alarm as AlarmService.raise stores it. */
function appendAlarm(outbox: Outbox, village: ReturnType<typeof drainConfig>['village'], terminal: string): void {
  const at = Date.now();
  const id = uuidv7(at);
  outbox.append({
    stream: 'alarm',
    id,
    subject: `${terminal}:button`,
    now: at,
    build: (seq): AlarmPayload => ({
      id,
      seq,
      village: village.id,
      terminal,
      type: 'button',
      raisedAt: isoWithOffset(at),
      location: { village: village.name, terminal: `column ${terminal}`, lat: village.location.lat, lon: village.location.lon },
      attempt: 1,
      presses: 1,
    }),
  });
}

function drainConfig(brokerUrl: string, protocolVersion: 4 | 5, dataDir: string, commandKey: CommandKeyEntry) {
  const result = parseConfig({
    version: 2,
    village: { id: VILLAGE, name: 'Bench village', location: { lat: 25.04, lon: 102.71 } },
    // A short reconnect ceiling: the default (30 s) would make "broker up → drained" mostly backoff.
    county: { url: brokerUrl, protocolVersion, clientId: `ve-${VILLAGE}`, reconnect: { initialMs: 250, maxMs: 1000 }, commandKeys: [commandKey] },
    dataDir,
    log: { level: 'info' },
  });
  if (!result.ok) throw new BenchFailure(`bench config invalid: ${result.errors.join('; ')}`);
  return result.config;
}

interface CountyProcess {
  /** The county's public signing key, for the village's `county.commandKeys`. */
  keyEntry: CommandKeyEntry;
  subscribe(message: Extract<ToCounty, { type: 'subscribe' }>): Promise<void>;
  /** The village's port starts relaying to the broker; resolves with when (epochNow()). */
  openPath(port: number, brokerPort: number): Promise<number>;
  /** When the last expected alarm arrived (epochNow()). */
  allReceived(timeoutMs: number): Promise<number>;
  report(): Promise<Extract<FromCounty, { type: 'report' }>>;
  close(): Promise<void>;
}

async function startCounty(village: string): Promise<CountyProcess> {
  const script = fileURLToPath(new URL('./drain-county.ts', import.meta.url));
  // node --import tsx, not npx (TOOLCHAIN.md): the pid we hold is the process that runs the county.
  const child: ChildProcess = fork(script, [village], {
    cwd: repoRoot,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const inbox: FromCounty[] = [];
  const waiters = new Set<() => void>();
  const wake = (): void => {
    for (const waiter of [...waiters]) waiter();
  };
  let gone = false;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      gone = true;
      wake();
      resolve();
    }),
  );
  child.on('message', (message: FromCounty) => {
    inbox.push(message);
    wake();
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });

  const next = <T extends FromCounty['type']>(type: T, timeoutMs: number): Promise<Extract<FromCounty, { type: T }>> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const failed = inbox.find((m): m is Extract<FromCounty, { type: 'failed' }> => m.type === 'failed');
        const index = inbox.findIndex((m) => m.type === type);
        if (failed === undefined && index < 0 && !gone) return;
        clearTimeout(timer);
        waiters.delete(check);
        if (failed !== undefined) reject(new BenchFailure(`county: ${failed.reason}`));
        else if (index < 0) reject(new BenchFailure(`the county process exited (${child.exitCode ?? child.signalCode}) before "${type}"`));
        else resolve(inbox.splice(index, 1)[0] as Extract<FromCounty, { type: T }>);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new BenchFailure(`the county process sent no "${type}" within ${timeoutMs} ms`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  const tell = (message: ToCounty): void => {
    child.send(message);
  };
  // Loading takes a while under tsx; the broker must not come back before the county can subscribe.
  const { keyEntry } = await next('ready', LINK_TIMEOUT_MS);

  return {
    keyEntry,
    async subscribe(message) {
      tell(message);
      await next('subscribed', LINK_TIMEOUT_MS);
    },
    async openPath(port, brokerPort) {
      tell({ type: 'open-path', port, brokerPort });
      return (await next('path-open', LINK_TIMEOUT_MS)).at;
    },
    async allReceived(timeoutMs) {
      return (await next('all-received', timeoutMs)).at;
    },
    async report() {
      tell({ type: 'report' });
      return next('report', LINK_TIMEOUT_MS);
    },
    async close() {
      if (gone) return;
      if (child.connected) tell({ type: 'close' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
