import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { createVillageEdge } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { CommandKeyEntry } from '../../src/county/keys.ts';
import { alarmPayloadSchema, type AlarmPayload } from '../../src/contract/payloads.ts';
import type { BrokerKind } from '../support/broker.ts';
import { connectCounty, type CountyClient } from '../support/county.ts';
import { createCountySigner } from '../support/county-signer.ts';
import { waitFor } from '../support/wait.ts';
import { latchedButton } from '../support/modbus-rtu-slave.ts';
import type { BusFigures } from '../support/bus-monitor.ts';
import { BenchFailure } from './figures.ts';
import { percentile } from '../support/stats.ts';
import { LogTap } from './log-tap.ts';
import { openRtuRig, rtuColumnsConfig } from './rtu-village.ts';
import { Teardown } from './teardown.ts';

export interface LatencyOptions {
  presses: number;
  terminals: number;
  holdMs: number;
  /** A terminal waits a random time in this range (ms) after it is free again before its next press. */
  gapMs: readonly [number, number];
  seed: number;
  progress: (text: string) => void;
}

export interface LatencyResult {
  brokerKind: BrokerKind;
  presses: number;
  latencies: number[];
  p50: number;
  p99: number;
  max: number;
  bus: BusFigures;
  breakdown: LatencyBreakdown;
  /** Alarms whose "alarm raised and stored" line was written before the county received them (publish and commit run at once: not required). */
  storedBeforeReceive: number;
  /** Alarms committed (logged stored) before the slave saw the column told `sent`: required of every one. */
  storedBeforeSent: number;
  /** Alarms whose row a second, read-only SQLite connection saw at the moment the county received them. */
  committedAtReceive: number;
  duplicates: number;
  overlaps: number;
  badRequests: number;
  protocolErrors: number;
  elapsedMs: number;
}

interface Arrival {
  alarm: AlarmPayload;
  receivedAt: number;
  committed: boolean;
}

/** Where the time of one press went (ms, each p50/p99 over all presses). */
export interface LatencyBreakdown {
  /** Flip → the slave received the read that sampled it: waiting for this column's turn on the bus. */
  waitForRead: { p50: number; p99: number };
  /** That read → "alarm raised and stored" logged: read + reply wire time, parsing, edge, SQLite commit + fsync. */
  readToStored: { p50: number; p99: number };
  /** Stored → the county received it: delivery, MQTT publish, broker, subscriber. */
  storedToReceived: { p50: number; p99: number };
}

const VILLAGE = 'bench-latency';
const ARRIVAL_TIMEOUT_MS = 10_000;

/**
 * Button flip → county receive over a real PTY Modbus line with 9600-baud wire time: the slave, the
 * service (createVillageEdge) and the county all run in this process, on one performance.now() clock.
 */
export async function measureLatency(options: LatencyOptions): Promise<LatencyResult> {
  const teardown = new Teardown();
  const abort = new AbortController();
  try {
    const { broker, pair, slave, bus } = await openRtuRig(options.terminals, teardown);
    const buttons = Array.from({ length: options.terminals }, (_, i) => latchedButton(slave.unit(i + 1), 0, 0));
    // When each column was told `sent` (holding register 0 = 1 in ve-ac100-rtu), as the slave saw the write.
    const sentWrites = new Map<number, number[]>();
    for (let unit = 1; unit <= options.terminals; unit++) {
      slave.unit(unit).onWrite((w) => {
        if (w.table === 'holding-registers' && w.address === 0 && w.value === 1)
          sentWrites.set(unit, [...(sentWrites.get(unit) ?? []), performance.now()]);
      });
    }

    const dataDir = mkdtempSync(join(tmpdir(), 've-bench-latency-'));
    teardown.add('data folder', () => rmSync(dataDir, { recursive: true, force: true }));
    const tap = new LogTap('info');
    const stored = new Map<string, number>();
    const acked = new Set<string>();
    const button = new Map<string, { active: boolean; at: number }>();
    tap.on('alarm raised and stored', (line) => stored.set(String(line.fields['alarmId']), line.at));
    tap.on('alarm acknowledged by county', (line) => acked.add(String(line.fields['alarmId'])));
    tap.on('input', (line) => {
      if (line.fields['input'] === 'button') button.set(String(line.fields['device']), { active: line.fields['active'] === true, at: line.at });
    });

    // Acks are signed as the county signs them; the village takes them only from a key it lists.
    const signer = await createCountySigner({ villageId: VILLAGE });
    const county = await connectCounty({ url: broker.url, protocolVersion: broker.protocolVersion, autoAck: true, signer });
    teardown.add('county client', () => county.close());
    const config = latencyConfig({
      terminals: options.terminals,
      brokerUrl: broker.url,
      protocolVersion: broker.protocolVersion,
      dataDir,
      path: pair.controllerPath,
      commandKey: signer.keyEntry,
    });
    const app = createVillageEdge({ config, version: 'bench', logger: tap.logger, env: {} });
    await app.start();
    const { problems } = (await app.status()).health;
    if (problems.length > 0) throw new BenchFailure(`service configuration problems: ${problems.join('; ')}`);
    teardown.add('service', () => app.stop());

    await waitFor(
      'the county link and a first poll of every column',
      async () => (await app.status()).link.connected && buttons.every((_, i) => slave.unit(i + 1).requests >= 3),
      10_000,
    );
    const reader = new Database(join(dataDir, 'outbox.sqlite'), { readonly: true, fileMustExist: true });
    teardown.add('read-only outbox connection', () => reader.close());
    const committed = reader.prepare<[string], { id: string }>('SELECT id FROM outbox_record WHERE id = ?');

    const received = new Set<string>();
    const arrival = (device: string): Promise<Arrival> => awaitArrival(county, device, received, (id) => committed.get(id) !== undefined);

    const random = mulberry32(options.seed);
    const latencies: number[] = [];
    const arrivals: Array<Arrival & { unit: number; flippedAt: number }> = [];
    const overlapsBefore = slave.stats.overlaps;
    const badBefore = slave.stats.badRequests;
    let claimed = 0;

    const terminal = async (index: number): Promise<void> => {
      const device = `column-${index + 1}`;
      const press = buttons[index]!;
      const [low, high] = options.gapMs;
      while (claimed < options.presses) {
        claimed++;
        await sleep(low + random() * (high - low), undefined, { signal: abort.signal });
        const flippedAt = performance.now();
        press.press();
        const released = sleep(options.holdMs, undefined, { signal: abort.signal }).then(() => press.release());
        released.catch(() => undefined);
        const got = await arrival(device);
        if (got.receivedAt < flippedAt) throw new BenchFailure(`an alarm from ${device} arrived before its button was pressed`);
        latencies.push(got.receivedAt - flippedAt);
        arrivals.push({ ...got, unit: index + 1, flippedAt });
        if (latencies.length % 50 === 0) options.progress(`latency: ${latencies.length}/${options.presses} presses`);
        // The next press must raise a new alarm: the county's ack stored, and the release seen by a poll.
        await tap.until(`the ack of alarm ${got.alarm.id} (${device})`, () => acked.has(got.alarm.id), ARRIVAL_TIMEOUT_MS, abort.signal);
        await released;
        await tap.until(
          `${device}'s button to read released`,
          () => {
            const state = button.get(device);
            return state !== undefined && !state.active && state.at > flippedAt;
          },
          ARRIVAL_TIMEOUT_MS,
          abort.signal,
        );
      }
    };

    bus.start();
    const startedAt = performance.now();
    const runs = buttons.map((_, i) =>
      terminal(i).catch((error: unknown) => {
        abort.abort();
        throw error;
      }),
    );
    const outcomes = await Promise.allSettled(runs);
    const failed = outcomes.find(
      (o): o is PromiseRejectedResult => o.status === 'rejected' && !(o.reason instanceof Error && o.reason.name === 'AbortError'),
    );
    if (failed !== undefined) throw failed.reason;
    const elapsedMs = performance.now() - startedAt;
    const busFigures = bus.stop();

    const alarms = county.messages.filter((m) => m.kind === 'alarm' && m.village === VILLAGE);
    const firsts = new Map<string, AlarmPayload>();
    for (const message of alarms) {
      const alarm = alarmPayloadSchema.parse(message.payload);
      if (!firsts.has(alarm.id)) firsts.set(alarm.id, alarm);
    }
    if (firsts.size !== latencies.length)
      throw new BenchFailure(
        `${latencies.length} presses but ${firsts.size} distinct alarms reached the county (an unexpected alarm, e.g. tamper, or a lost one)`,
      );
    const seqs = [...firsts.values()].map((a) => a.seq);
    const outOfOrder = seqs.filter((seq, i) => i > 0 && seq <= seqs[i - 1]!).length;
    if (outOfOrder > 0) throw new BenchFailure(`${outOfOrder} alarms reached the county out of seq order (first deliveries)`);
    const wrong = [...firsts.values()].filter((a) => a.type !== 'button' || a.presses !== 1);
    if (wrong.length > 0) throw new BenchFailure(`${wrong.length} alarms were not single button presses, e.g. ${JSON.stringify(wrong[0])}`);
    const split = (part: (a: (typeof arrivals)[number]) => number) => {
      const values = arrivals.map(part).filter(Number.isFinite);
      return { p50: percentile(values, 50), p99: percentile(values, 99) };
    };
    const readAt = (a: (typeof arrivals)[number]) => bus.firstReadAfter(a.unit, a.flippedAt) ?? Number.NaN;
    const storedAt = (a: (typeof arrivals)[number]) => stored.get(a.alarm.id) ?? Number.NaN;
    const breakdown: LatencyBreakdown = {
      waitForRead: split((a) => readAt(a) - a.flippedAt),
      readToStored: split((a) => storedAt(a) - readAt(a)),
      storedToReceived: split((a) => a.receivedAt - storedAt(a)),
    };

    return {
      brokerKind: broker.kind,
      breakdown,
      presses: latencies.length,
      latencies,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: Math.max(...latencies),
      bus: busFigures,
      storedBeforeReceive: arrivals.filter((a) => (stored.get(a.alarm.id) ?? Infinity) < a.receivedAt).length,
      committedAtReceive: arrivals.filter((a) => a.committed).length,
      storedBeforeSent: arrivals.filter((a) => {
        const sentAt = sentWrites.get(a.unit)?.find((at) => at > a.flippedAt);
        return sentAt !== undefined && (stored.get(a.alarm.id) ?? Infinity) < sentAt;
      }).length,
      duplicates: alarms.length - firsts.size,
      overlaps: slave.stats.overlaps - overlapsBefore,
      badRequests: slave.stats.badRequests - badBefore,
      protocolErrors: tap.count('protocol error'),
      elapsedMs,
    };
  } finally {
    abort.abort();
    const problems = await teardown.run();
    for (const problem of problems) console.error(`latency: ${problem}`);
  }
}

/**
 * The next alarm from `device` not seen before. The stamp is taken inside `match`, which the county client
 * calls synchronously from its MQTT message handler, so it is the receive time, not a later promise turn.
 */
async function awaitArrival(county: CountyClient, device: string, received: Set<string>, isCommitted: (id: string) => boolean): Promise<Arrival> {
  let receivedAt = 0;
  let committed = false;
  try {
    const message = await county.waitFor((m) => {
      if (m.kind !== 'alarm' || m.village !== VILLAGE) return false;
      const alarm = m.payload as Partial<AlarmPayload>;
      if (alarm.terminal !== device || typeof alarm.id !== 'string' || received.has(alarm.id)) return false;
      receivedAt = m.receivedAt;
      committed = isCommitted(alarm.id);
      received.add(alarm.id);
      return true;
    }, ARRIVAL_TIMEOUT_MS);
    return { alarm: message.payload as AlarmPayload, receivedAt, committed };
  } catch {
    throw new BenchFailure(`LOST: a press on ${device} raised no alarm at the county within ${ARRIVAL_TIMEOUT_MS} ms`);
  }
}

function latencyConfig(o: {
  terminals: number;
  brokerUrl: string;
  protocolVersion: 4 | 5;
  dataDir: string;
  path: string;
  commandKey: CommandKeyEntry;
}) {
  const result = parseConfig(rtuColumnsConfig({ villageId: VILLAGE, ...o, commandKeys: [o.commandKey] }));
  if (!result.ok) throw new BenchFailure(`bench config invalid: ${result.errors.join('; ')}`);
  return result.config;
}

/** A small seeded generator, so a run's press times can be replayed with the same seed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
