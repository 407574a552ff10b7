import { mkdtempSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { createVillageEdge, type VillageEdge } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import { buildHealth } from '../../src/county/health-reporter.ts';
import type { ModbusProfile } from '../../src/drivers/device/profile-schema.ts';
import type { DeviceEvent } from '../../src/drivers/device/types.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { modbusProfile, rtuRig, testTiming, type RtuRig } from '../support/modbus-rig.ts';
import { waitFor } from '../support/wait.ts';
import { latchedButton, ModbusRtuSlave, type RequestRecord } from '../support/modbus-rtu-slave.ts';
import { startPymodbusColumn } from '../support/pymodbus-column.ts';
import { openPtyPair } from '../support/pty.ts';
import { villageConfigJson } from '../support/village.ts';

/** Issue 11, "the column and the bus": points 14 (indicator after a restart), 15 (writes and poll gaps), 16 (replug). */

const AC100 = modbusProfile('ve-ac100-rtu');
/** The AC100 with a button that does not latch: a press shorter than the poll gap can go unseen. */
const UNLATCHED: ModbusProfile = { ...AC100, inputs: { ...AC100.inputs, button: { table: 'discrete-inputs', address: 0, activeLow: false } } };
const BAUD = 9600;
/** What one write holds the line for, in characters: 8-byte request, 8-byte echo, 3.5 characters of silence. */
const WRITE_CHARS = 8 + 8 + 3.5;
/** And one poll of a column (two discrete inputs): 8-byte request, 6-byte reply, 3.5 characters of silence. */
const READ_CHARS = 8 + 6 + 3.5;

const brokerUrl = inject('brokerUrl');
const protocolVersion = inject('brokerProtocolVersion');

describe('14: an open alarm shows on its column after a restart', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** A village of one RTU column (unit 1) on `path`, the alarm data in `dataDir`. */
  async function village(villageId: string, path: string, dataDir: string, ackTimeoutMs: number): Promise<VillageEdge> {
    const json = villageConfigJson({ villageId, brokerUrl, protocolVersion, columns: 1, dataDir, timing: { ackTimeoutMs } });
    json.buses = [{ id: 'rs485-1', kind: 'modbus-rtu', path, baudRate: BAUD } as never];
    json.devices = [{ id: 'column-1', bus: 'rs485-1', unitId: 1, profile: 've-ac100-rtu', role: 'alarm-column', label: 'column 1' }];
    Object.assign(json.timing, { pollIntervalMs: 20, requestTimeoutMs: 150, reopen: { initialMs: 100, maxMs: 400 } });
    const parsed = parseConfig(json);
    if (!parsed.ok) throw new Error(parsed.errors.join('\n'));
    const app = createVillageEdge({ config: parsed.config, version: '0.0.0-test', logger: memoryLogger('info').logger });
    await app.start();
    return app;
  }

  async function line(dir: string) {
    const pair = await openPtyPair();
    const slave = await ModbusRtuSlave.open({ path: pair.devicePath });
    const unit = slave.unit(1);
    unit.set('discrete-inputs', 1, true); // tamper loop closed
    const link = join(dir, 'ttyVE0');
    cleanups.push(async () => {
      await slave.close();
      await pair.close();
    });
    return { pair, slave, unit, link, button: latchedButton(unit, 0, 0) };
  }

  const led = (unit: ReturnType<ModbusRtuSlave['unit']>) => `${unit.get('holding-registers', 0)}/${unit.get('coils', 1)}`;

  it.each([
    ['sent', 60_000, '1/0'],
    ['not-received', 1500, '3/1'],
  ] as const)('shows %s once the bus is up, though the bus was not there when the service started', async (state, ackTimeoutMs, shown) => {
    const dir = mkdtempSync(join(tmpdir(), 've-restart-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const dataDir = join(dir, 'data');
    const { pair, unit, link, button } = await line(dir);
    symlinkSync(pair.controllerPath, link);

    // Before the restart: a press nobody at the county acknowledges.
    const first = await village(`restart-${state}`, link, dataDir, ackTimeoutMs);
    button.press();
    await waitFor('latch reset', () => unit.writes.some((w) => w.table === 'coils' && w.address === 0));
    button.release();
    await waitFor(`column shows ${state}`, () => led(unit) === shown, 10_000);
    await first.stop();

    // The column lost power with the Pi, and the adapter is not there yet when the service starts.
    unit.set('holding-registers', 0, 0);
    unit.set('coils', 1, 0);
    unlinkSync(link);
    const second = await village(`restart-${state}`, link, dataDir, ackTimeoutMs);
    cleanups.push(() => second.stop());
    const writesBefore = unit.writes.length;
    symlinkSync(pair.controllerPath, link);
    const expected = state === 'sent' ? ['holding-registers:0=1', 'coils:1=0'] : ['holding-registers:0=3', 'coils:1=1'];
    const written = () => unit.writes.slice(writesBefore).map((w) => `${w.table}:${w.address}=${w.value}`);
    await waitFor(`column shows ${state} again`, () => written().length >= expected.length, 5000);
    expect(led(unit)).toBe(shown);
    expect(written()).toEqual(expected);
  });
  it('does the same on a column served by pymodbus, a slave we did not write', async () => {
    const dir = mkdtempSync(join(tmpdir(), 've-restart-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const dataDir = join(dir, 'data');
    const pair = await openPtyPair();
    const column = await startPymodbusColumn(pair.devicePath, 1);
    cleanups.push(async () => {
      await column.close();
      await pair.close();
    });
    const link = join(dir, 'ttyVE0');
    symlinkSync(pair.controllerPath, link);
    const written = (from: number) => column.writes.slice(from).map((w) => `${w.table}:${w.address}=${w.value}`);

    const first = await village('restart-pymodbus', link, dataDir, 60_000);
    column.setInput(0, true); // pressed; the column latches it until coil 0 is written
    await waitFor('sent shown', () => written(0).includes('holding-registers:0=1') && written(0).includes('coils:1=0'), 10_000);
    expect(written(0)).toContain('coils:0=1');
    await first.stop();

    unlinkSync(link);
    const second = await village('restart-pymodbus', link, dataDir, 60_000);
    cleanups.push(() => second.stop());
    const from = column.writes.length;
    symlinkSync(pair.controllerPath, link);
    await waitFor('sent shown again', () => written(from).length >= 2, 10_000);
    expect(written(from)).toEqual(['holding-registers:0=1', 'coils:1=0']);
  });
});

describe('15: indicator writes do not blind polling', () => {
  const ids = Array.from({ length: 16 }, (_, i) => `col-${i + 1}`);
  let r: RtuRig;
  beforeAll(async () => {
    r = await rtuRig({
      busId: 'rs485-1',
      devices: ids.map((id, i) => ({ id, unitId: i + 1, profile: UNLATCHED })),
      // The bench's set-up: 16 columns asked for every 100 ms at 9600 baud, more than the line carries.
      timing: testTiming({ pollIntervalMs: 100, requestTimeoutMs: 1000 }),
      slave: { wireBaud: BAUD },
    });
    for (let unit = 1; unit <= 16; unit++) r.slave.unit(unit).set('discrete-inputs', 1, true);
    r.bus.start();
    await waitFor('first polls', () => r.bus.devices.every((d) => d.health().online), 10_000);
  });
  afterAll(() => r.close());

  /**
   * Per unit, the worst gap between two reads the slave saw that ended while `during` ran (the read before
   * may be older): by the clock (ms), and as the time the exchanges in it hold a 9600-baud line, in
   * characters; and the most writes between two reads of one unit.
   */
  async function gapsWhile(during: () => Promise<void>) {
    const log: RequestRecord[] = [];
    const lastRead = new Map<number, number>();
    const writesSince = new Map<number, number>();
    const lineSince = new Map<number, number>();
    let worst = 0;
    let worstLine = 0;
    let mostWrites = 0;
    let recording = false;
    const off = r.slave.onRequest((q) => {
      if (recording) log.push(q);
      const write = q.fc === 5 || q.fc === 6;
      if (!write) {
        const previous = lastRead.get(q.unit);
        if (recording && previous !== undefined) {
          worst = Math.max(worst, q.at - previous);
          worstLine = Math.max(worstLine, lineSince.get(q.unit) ?? 0);
          mostWrites = Math.max(mostWrites, writesSince.get(q.unit) ?? 0);
        }
        lastRead.set(q.unit, q.at);
        writesSince.set(q.unit, 0);
        lineSince.set(q.unit, 0);
      }
      for (const [unit, chars] of lineSince) lineSince.set(unit, chars + (write ? WRITE_CHARS : READ_CHARS));
      if (write) for (const [unit, n] of writesSince) writesSince.set(unit, n + 1);
    });
    try {
      await cycles(1); // every unit's last read is known
      recording = true;
      await during();
      await cycles(1); // the reads that waited for the last write
    } finally {
      off();
    }
    return { log, worst, worstLine, writesBetweenReads: mostWrites };
  }

  /** Waits until every column has been read `n` more times. */
  async function cycles(n: number): Promise<void> {
    const start = Array.from({ length: 16 }, (_, i) => r.slave.unit(i + 1).requests);
    await waitFor(`${n} poll cycles`, () => start.every((count, i) => r.slave.unit(i + 1).requests >= count + n), 20_000);
  }

  it('interleaves an ack burst of 16 columns with the polls: no poll gap grows by more than one write', async () => {
    const normal = await gapsWhile(() => cycles(8));
    const shown = (value: number) => ids.every((_, i) => r.slave.unit(i + 1).get('holding-registers', 0) === value);
    // Alarms sent on every column, then the county's acks arrive together.
    const sent = await gapsWhile(async () => {
      await Promise.all(r.bus.devices.map((d) => d.setIndicator('sent')));
      await cycles(1);
    });
    expect(shown(1)).toBe(true);
    const burst = await gapsWhile(async () => {
      await Promise.all(r.bus.devices.map((d) => d.setIndicator('received')));
      await cycles(1);
    });
    expect(shown(2)).toBe(true);
    const onLine = (chars: number) => `${((chars * 10 * 1000) / BAUD).toFixed(0)} ms`;
    const detail =
      `worst poll gap: normal ${normal.worst.toFixed(0)} ms, sent ${sent.worst.toFixed(0)} ms, acks ${burst.worst.toFixed(0)} ms; ` +
      `on the line: normal ${onLine(normal.worstLine)}, sent ${onLine(sent.worstLine)}, acks ${onLine(burst.worstLine)}`;
    console.log(detail);
    // Between two reads of one column, at most one write went out: the rule itself, free of timing.
    expect(sent.writesBetweenReads, detail).toBeLessThanOrEqual(1);
    expect(burst.writesBetweenReads, detail).toBeLessThanOrEqual(1);
    // And in time: the normal cycle plus one write, counted in the line's time rather than the clock's, which
    // a machine whose cores are busy stretches by hiccups of its own (100-200 ms seen). The 32 writes that
    // once went before any poll stretched the gap by ~650 ms.
    expect(burst.worstLine, detail).toBeLessThanOrEqual(normal.worstLine + WRITE_CHARS);
    expect(sent.worstLine, detail).toBeLessThanOrEqual(normal.worstLine + WRITE_CHARS);
    // sent → received changes the LED register only: the buzzer coil stays off and is not written again.
    expect(burst.log.filter((q) => q.fc === 5)).toEqual([]);
    expect(burst.log.filter((q) => q.fc === 6)).toHaveLength(16);
  }, 90_000);

  it('skips writes of a state the column already shows', async () => {
    const writes = r.slave.unit(5).writes.length;
    await Promise.all(r.bus.devices.map((d) => d.setIndicator('received')));
    await cycles(2);
    expect(r.slave.unit(5).writes).toHaveLength(writes);
  });

  it('reports the measured worst poll gap as missablePressMs in health', async () => {
    const device = r.device('col-3');
    const gap = device.health().worstPollGapMs;
    expect(gap).not.toBeNull();
    // At least the mean interval, at most what the slave saw (plus the reply's way back).
    expect(gap!).toBeGreaterThanOrEqual(device.health().pollIntervalMs! - 1);
    const health = buildHealth(
      {
        villageId: 'v',
        version: '0',
        startedAt: 0,
        pollIntervalMs: 100,
        devices: () => r.bus.devices.map((d) => d.health()),
        outbox: () => ({ depth: 0, oldestUnackedAt: null, byStream: { alarm: 0, fault: 0, report: 0 } }) as never,
        problems: () => [],
        audio: () => ({ device: 'null', ok: true, checkedAt: null }),
      },
      Date.now(),
    );
    const reported = health.devices.find((d) => d.id === 'col-3')!;
    expect(reported.missablePressMs).toBe(device.health().worstPollGapMs);
    expect(reported.missablePressMs).toBeGreaterThan(100);
  });
});

describe('15: a noisy bus that stretches the poll gap past maxMissablePressMs raises a fault', () => {
  let r: RtuRig;
  beforeAll(async () => {
    r = await rtuRig({
      busId: 'rs485-1',
      devices: [
        { id: 'plain', unitId: 1, profile: UNLATCHED },
        { id: 'latched', unitId: 2, profile: AC100 },
      ],
      timing: testTiming({ pollIntervalMs: 50, requestTimeoutMs: 200, offlineAfterFailures: 5, maxMissablePressMs: 300 }),
    });
    for (const unit of [1, 2]) r.slave.unit(unit).set('discrete-inputs', 1, true);
    r.bus.start();
    await waitFor('first polls', () => r.bus.devices.every((d) => d.health().online));
  });
  afterAll(() => r.close());

  it('emits poll-gap for the unlatched column only, with the gap it measured', async () => {
    const gapEvents = () => r.events.filter((e): e is Extract<DeviceEvent, { type: 'poll-gap' }> => e.type === 'poll-gap');
    expect(gapEvents()).toEqual([]);
    // Two replies lost to noise on each column: 2 × 200 ms of timeout inside one gap, not yet offline.
    r.slave.unit(1).setFault('timeout', { count: 2 });
    r.slave.unit(2).setFault('timeout', { count: 2 });
    const event = await waitFor('poll-gap', () => gapEvents()[0], 5000);
    expect(event).toMatchObject({ type: 'poll-gap', busId: 'rs485-1', deviceId: 'plain', active: true, thresholdMs: 300 });
    expect(event.gapMs).toBeGreaterThan(400);
    const requests = r.slave.unit(2).requests;
    await waitFor('latched column read again', () => r.slave.unit(2).requests >= requests + 3);
    expect(gapEvents().map((e) => e.deviceId)).toEqual(['plain']);
    expect(r.device('plain').health().worstPollGapMs).toBeGreaterThan(400);
    expect(r.events.filter((e) => e.type === 'offline')).toEqual([]);
  });
});

describe('16: a replugged bus is polled again within 2 s', () => {
  let r: RtuRig;
  let dir: string;
  let link: string;
  const extra: Array<{ close(): Promise<void> }> = [];
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 've-replug-'));
    link = join(dir, 'ttyVE0');
    r = await rtuRig({
      busId: 'rs485-1',
      devices: [{ id: 'col-1', unitId: 1, profile: AC100 }],
      // The shipped reopen backoff: 1 s doubling to 30 s.
      timing: testTiming({ reopen: { initialMs: 1000, maxMs: 30_000 } }),
      path: (pair) => {
        symlinkSync(pair.controllerPath, link);
        return link;
      },
    });
    r.slave.unit(1).set('discrete-inputs', 1, true);
  });
  afterAll(async () => {
    await r.close();
    for (const thing of extra) await thing.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reopens as soon as the device node is back, whatever the backoff had reached', async () => {
    r.bus.start();
    await waitFor('first poll', () => r.device('col-1').health().online);
    await r.pair.close(); // unplugged: the PTY and its link are gone
    await waitFor('bus-lost', () => r.events.find((e) => e.type === 'bus-lost'));
    // Out long enough for the backoff to have grown to 4 s.
    const delays = () => r.lines.filter((l) => l.msg === 'reopening the port after a delay').map((l) => l.delayMs);
    await waitFor('three reopen attempts', () => delays().length >= 3, 10_000);
    expect(delays().slice(0, 3)).toEqual([1000, 2000, 4000]);

    const pair = await openPtyPair();
    const slave = await ModbusRtuSlave.open({ path: pair.devicePath });
    extra.push(slave, pair);
    slave.unit(1).set('discrete-inputs', 1, true);
    let firstPollAt: number | undefined;
    slave.onRequest((q) => (firstPollAt ??= q.at));
    unlinkSync(link);
    symlinkSync(pair.controllerPath, link);
    const pluggedAt = performance.now();
    await waitFor('polled on the new port', () => firstPollAt, 10_000);
    const replugToPollMs = firstPollAt! - pluggedAt;
    expect(replugToPollMs).toBeLessThan(2000);
    await waitFor('online again', () => r.device('col-1').health().online);
    expect(r.events.filter((e) => e.type === 'bus-lost' || e.type === 'bus-restored').map((e) => e.type)).toEqual(['bus-lost', 'bus-restored']);
    console.log(`replug → first poll: ${replugToPollMs.toFixed(0)} ms`);
  });
});
