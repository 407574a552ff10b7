import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { deviceSchema, timingSchema } from '../../src/config/schema.ts';
import { createLineBus, type LineBus, type LineBusConfig } from '../../src/drivers/line/line-bus.ts';
import { deviceProfileSchema, indicatorStates, type LineProfile } from '../../src/drivers/device/profile-schema.ts';
import type { Device, DeviceEvent } from '../../src/drivers/device/types.ts';
import { memoryLogger, type LogLine } from '../support/log-sink.ts';
import { openLineDevice, hasValidChecksum, type SimulatedLineDevice } from '../support/line-device.ts';
import { openPtyPair } from '../support/pty.ts';
import { waitFor } from '../support/wait.ts';

/** Every test talks to a real PTY through socat; nothing in the bus is mocked. */

const shipped = ((): LineProfile => {
  const profile = deviceProfileSchema.parse(JSON.parse(readFileSync(new URL('../../devices/ve-ac200-line.json', import.meta.url), 'utf8')));
  if (profile.protocol !== 'line') throw new Error('ve-ac200-line must be a line profile');
  return profile;
})();

const timing = timingSchema.parse({ requestTimeoutMs: 200, reopen: { initialMs: 100, maxMs: 400 } });
const WARN = 40;

type EventOf<T extends DeviceEvent['type']> = Extract<DeviceEvent, { type: T }>;

interface Rig {
  bus: LineBus;
  sim: SimulatedLineDevice;
  events: DeviceEvent[];
  logs: LogLine[];
  col1: Device;
  col2: Device;
  controllerPath: string;
  devicePath: string;
  /** Kills socat, as pulling the USB adapter would remove /dev/ttyUSB0. */
  unplug(): Promise<void>;
  /** Resolves with the first recorded event of that type that matches, waiting for it if need be. */
  waitForEvent<T extends DeviceEvent['type']>(type: T, match?: (event: EventOf<T>) => boolean, timeoutMs?: number): Promise<EventOf<T>>;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function rig(
  options: { silenceTimeoutMs?: number; reopen?: { initialMs: number; maxMs: number }; failingLog?: (line: LogLine) => boolean } = {},
): Promise<Rig> {
  const pair = await openPtyPair();
  cleanups.push(() => pair.close());
  const profile: LineProfile = { ...shipped, line: { ...shipped.line, silenceTimeoutMs: options.silenceTimeoutMs ?? 5000 } };
  const busConfig: LineBusConfig = { id: 'line0', kind: 'line', path: pair.controllerPath, baudRate: 9600, parity: 'none', dataBits: 8, stopBits: 1 };
  const column = (id: string, unitId: number) =>
    deviceSchema.parse({ id, bus: 'line0', unitId, profile: profile.model, role: 'alarm-column', label: `Column ${unitId}` });
  const events: DeviceEvent[] = [];
  const { logger, lines: logs } = memoryLogger('debug', options.failingLog);
  const bus = createLineBus({
    bus: busConfig,
    devices: [
      { config: column('col-1', 1), profile },
      { config: column('col-2', 2), profile },
    ],
    timing: options.reopen === undefined ? timing : { ...timing, reopen: options.reopen },
    sink: (event) => events.push(event),
    logger,
  });
  bus.start();
  cleanups.push(() => bus.stop());
  await waitFor('the port open', () => logs.some((l) => l.msg === 'serial port open'), 2000);
  const sim = await openLineDevice({ path: pair.devicePath, talker: 'VE' });
  cleanups.push(() => sim.close());
  const [col1, col2] = bus.devices;
  if (col1 === undefined || col2 === undefined) throw new Error('expected two devices');
  return {
    bus,
    sim,
    events,
    logs,
    col1,
    col2,
    controllerPath: pair.controllerPath,
    devicePath: pair.devicePath,
    unplug: () => pair.close(),
    waitForEvent: (type, match = () => true, timeoutMs = 2000) =>
      waitFor(`a matching ${type} event`, () => events.find((e): e is EventOf<typeof type> => e.type === type && match(e as EventOf<typeof type>)), {
        timeoutMs,
        context: () => `events so far: ${JSON.stringify(events)}`,
      }),
  };
}

/** socat again at the same paths, as when the USB adapter comes back under the same udev name. */
async function ptyPairAt(controllerPath: string, devicePath: string): Promise<() => Promise<void>> {
  mkdirSync(dirname(controllerPath), { recursive: true });
  const socat = spawn('socat', [`pty,raw,echo=0,link=${controllerPath}`, `pty,raw,echo=0,link=${devicePath}`], { stdio: 'ignore' });
  await waitFor("socat's PTY links", () => existsSync(controllerPath) && existsSync(devicePath), { timeoutMs: 5000, intervalMs: 10 });
  return async () => {
    if (socat.exitCode === null) {
      const exited = new Promise((resolve) => socat.once('exit', resolve));
      socat.kill('SIGTERM');
      await exited;
    }
    rmSync(dirname(controllerPath), { recursive: true, force: true });
  };
}

const inputs = (events: DeviceEvent[], deviceId: string, input: string) =>
  events.filter((e): e is EventOf<'input'> => e.type === 'input' && e.deviceId === deviceId && e.input === input);

/** Every input event told, of any column, as `<device> <input> <active>`: a line must reach its own column only. */
const told = (events: DeviceEvent[]) =>
  events.filter((e): e is EventOf<'input'> => e.type === 'input').map((e) => `${e.deviceId} ${e.input} ${e.active}`);

describe('line bus on a real PTY', () => {
  it('turns a press into one input event, however often the latched column repeats it, until the latch is reset', async () => {
    const { sim, events, col1, waitForEvent } = await rig();
    const before = Date.now();
    for (let i = 0; i < 3; i++) await sim.send(1, 'BTN');
    // Lines are handled in order, so once the tamper event is here every BTN repeat has been read.
    await sim.send(1, 'TAMP');
    await waitForEvent('input', (e) => e.input === 'tamper');
    expect(inputs(events, 'col-1', 'button')).toEqual([{ type: 'input', deviceId: 'col-1', input: 'button', active: true, at: expect.any(Number) }]);
    expect(told(events)).toEqual(['col-1 button true', 'col-1 tamper true']);
    expect(inputs(events, 'col-1', 'button')[0]?.at).toBeGreaterThanOrEqual(before);
    expect(col1.health()).toMatchObject({ online: true, latching: true, pollIntervalMs: null, errors: {} });

    await col1.resetLatch('button');
    const reset = await sim.waitForWritten((line) => line.startsWith('$VE,1,RST*'));
    expect(reset).toMatch(/\r\n$/);
    expect(hasValidChecksum(reset)).toBe(true);

    // A repeat the column sent before it read the reset is not a new press; the release ends the latch.
    await sim.send(1, 'BTN');
    await sim.send(1, 'BTNUP');
    await waitForEvent('input', (e) => e.input === 'button' && !e.active);
    await sim.send(1, 'BTN');
    await waitFor('a second press of col-1', () => inputs(events, 'col-1', 'button').length === 3, 2000);
    expect(told(events)).toEqual(['col-1 button true', 'col-1 tamper true', 'col-1 button false', 'col-1 button true']);
  });

  it('hears the press again when the column did not get its reset and goes on repeating it', async () => {
    const { sim, events, col1, waitForEvent } = await rig();
    await sim.send(1, 'BTN');
    await waitForEvent('input', (e) => e.input === 'button');
    await col1.resetLatch('button');
    await sim.waitForWritten((line) => line.startsWith('$VE,1,RST*'));
    // The first repeat may have been on the wire as the reset was written; the second says the column is
    // still latched, and is told again so that the domain resets it again.
    await sim.send(1, 'BTN');
    await sim.send(1, 'BTN');
    await waitFor('the press told again', () => inputs(events, 'col-1', 'button').length === 2, 2000);
    await sim.send(1, 'TAMP');
    await waitForEvent('input', (e) => e.input === 'tamper');
    expect(told(events)).toEqual(['col-1 button true', 'col-1 button true', 'col-1 tamper true']);
  });

  it('tells the columns sharing the port apart by unit number', async () => {
    const { sim, events, waitForEvent } = await rig();
    await sim.send(2, 'TAMP');
    await sim.send(1, 'BTN');
    await sim.send(2, 'TAMPOK');
    // Lines are handled in order: once the last one is told, each line has been told to its column, and only to it.
    await waitForEvent('input', (e) => e.deviceId === 'col-2' && e.input === 'tamper' && !e.active);
    expect(told(events)).toEqual(['col-2 tamper true', 'col-1 button true', 'col-2 tamper false']);
  });

  it("stamps each column with the time of its last valid line; a bad line or another column's does not move it", async () => {
    const { sim, col1, col2 } = await rig();
    expect(col1.health().lastReplyAt).toBeNull();
    const before = Date.now();
    await sim.heartbeat(1);
    await waitFor('col-1 heard', () => col1.health().lastReplyAt !== null, 2000);
    const first = col1.health().lastReplyAt ?? 0;
    // Counted back from the monotonic clock: the wall-clock time is right to within a millisecond.
    expect(first).toBeGreaterThanOrEqual(before - 1);
    expect(first).toBeLessThanOrEqual(Date.now() + 1);
    expect(col2.health().lastReplyAt).toBeNull();

    // Lines are read in order: once column 2 is heard, column 1's bad line before it has been read too.
    await sim.sendBadChecksum(1, 'HB');
    await sim.heartbeat(2);
    await waitFor('col-2 heard', () => col2.health().lastReplyAt !== null, 2000);
    expect(Math.abs((col1.health().lastReplyAt ?? 0) - first)).toBeLessThanOrEqual(1);

    // The clock must have moved on for a later line to show a later time.
    await waitFor('the clock past the first stamp', () => Date.now() > first + 2, { timeoutMs: 2000, intervalMs: 1 });
    await sim.heartbeat(1);
    await waitFor('a later stamp of col-1', () => (col1.health().lastReplyAt ?? 0) > first + 1, 2000);
  });

  it('writes indicator and latch-reset lines whole, with valid checksums; the newest state wins, a state shown is not written again', async () => {
    const { sim, col1, col2 } = await rig();
    // Four states asked for at once on two columns: the first goes out at once, then the newest; the two
    // between them were never worth showing.
    await Promise.all(indicatorStates.flatMap((state) => [col1.setIndicator(state), col2.setIndicator(state)]));
    await col2.resetLatch('button');
    await col2.resetLatch('tamper'); // not latched: nothing is written
    await sim.waitForWritten((line) => line.startsWith('$VE,2,RST'));
    await col1.setIndicator('not-received'); // shown already: nothing is written
    const expected = ['LED,OFF', 'LED,FAST'].flatMap((body) => [`$VE,1,${body}*`, `$VE,2,${body}*`]);
    expect(sim.written).toHaveLength(5);
    for (const line of sim.written) {
      expect(line).toMatch(/^\$VE,[12],[A-Z,]+\*[0-9A-F]{2}\r\n$/);
      expect(hasValidChecksum(line)).toBe(true);
    }
    expect(sim.written.slice(0, 4).map((line) => line.slice(0, line.indexOf('*') + 1))).toEqual(expected);
    await expect(col1.setRelay(0, true)).rejects.toThrow('device "col-1" (ve-ac200-line) is a line-protocol column and has no relays');
  });

  it('counts, logs and skips bad checksums, garbage and over-long lines; the next good line is heard', async () => {
    const { sim, events, logs, col1, col2, waitForEvent } = await rig();
    await sim.sendBadChecksum(1, 'BTN');
    await sim.sendRaw('hello\r\n');
    await sim.send(1, 'XYZ');
    await sim.send(9, 'BTN');
    await sim.sendRaw('$VE,1,BT'); // cut short by the next line's "$"
    await sim.send(1, 'TAMP');
    await sim.sendRaw(`$VE,2,HB,${'A'.repeat(100)}*00\r\n`);
    await sim.sendRaw(`$VE,2,${'A'.repeat(4000)}`); // no delimiter at all: memory must stay bounded
    await sim.send(2, 'BTN');

    await waitForEvent('input', (e) => e.deviceId === 'col-2' && e.input === 'button');
    expect(await waitForEvent('input', (e) => e.deviceId === 'col-1' && e.input === 'tamper')).toBeDefined();
    expect(inputs(events, 'col-1', 'button')).toEqual([]); // the BTN with a bad checksum was not acted on

    const errors = events
      .filter((e): e is EventOf<'protocol-error'> => e.type === 'protocol-error')
      .map(({ deviceId, kind, detail }) => ({ deviceId, kind, detail }));
    expect(errors).toEqual([
      { deviceId: 'col-1', kind: 'checksum', detail: 'checksum: got 7B, computed 7A' },
      { deviceId: undefined, kind: 'garbage', detail: 'does not start with "$": "hello"' },
      { deviceId: 'col-1', kind: 'garbage', detail: 'unknown verb "XYZ"' },
      { deviceId: undefined, kind: 'wrong-unit', detail: 'unit 9 is not configured on this bus: "$VE,9,BTN*72"' },
      { deviceId: 'col-1', kind: 'garbage', detail: 'cut short by the next "$": no "*" before the checksum: "$VE,1,BT"' },
      {
        deviceId: 'col-2',
        kind: 'overlong',
        detail: expect.stringMatching(/^line longer than 96 bytes \(no delimiter after 98\): "\$VE,2,HB,AAAAAAA"/),
      },
      {
        deviceId: 'col-2',
        kind: 'overlong',
        detail: expect.stringMatching(/^line longer than 96 bytes \(no delimiter after 98\): "\$VE,2,AAAAAAAAAA"/),
      },
    ]);
    expect(col1.health().errors).toEqual({ checksum: 1, garbage: 2 });
    expect(col2.health().errors).toEqual({ overlong: 2 });
    const warned = logs.filter((l) => l.level === WARN && l.msg === 'protocol error');
    expect(warned.map((l) => l['reason'])).toEqual(errors.map((e) => e.detail));
    expect(warned[0]).toMatchObject({ bus: 'line0', device: 'col-1', kind: 'checksum' });
  });

  it('contains a fault in its silence timer and in reading the port: logged, and the bus goes on hearing presses', async () => {
    // Writing these lines throws, as writing to a stdout that is gone does: uncontained, either ended the process.
    const failingLog = (line: LogLine) => line.msg === 'device offline' || line.msg === 'protocol error';
    const { sim, logs, waitForEvent } = await rig({ silenceTimeoutMs: 300, failingLog });
    const failed = (msg: string) => waitFor(msg, () => logs.find((l) => l.msg === msg && l.level === 50));
    expect(await failed('the silence timer of device "col-1" failed')).toMatchObject({
      err: { message: 'cannot write the log line "device offline"' },
    });
    await sim.sendBadChecksum(1, 'HB');
    expect(await failed('reading the serial port failed')).toMatchObject({ err: { message: 'cannot write the log line "protocol error"' } });
    await sim.send(1, 'BTN');
    expect(await waitForEvent('input', (e) => e.deviceId === 'col-1')).toMatchObject({ input: 'button', active: true });
  });

  it('reports a silent column offline, not kept alive by bad lines, and recovered on its next valid line', async () => {
    const { sim, events, col1, waitForEvent } = await rig({ silenceTimeoutMs: 300 });
    await sim.send(1, 'BTN');
    // Stamped by the bus as it heard the line: the silence is counted from there, not from when the test
    // got round to seeing the event (later, on a busy machine).
    const lastGood = (await waitForEvent('input', (e) => e.deviceId === 'col-1')).at;
    // Bad lines keep coming until well past the timeout; they must not count as a sign of life.
    let lastBadAt = 0;
    for (let i = 0; i < 7; i++) {
      // Pacing, not waiting: the bad lines are spread over 700 ms, past the 300 ms silence timeout.
      await sleep(100);
      await sim.sendBadChecksum(1, 'HB');
      lastBadAt = Date.now();
    }

    const offline = await waitForEvent('offline', (e) => e.deviceId === 'col-1');
    expect(offline.reason).toBe('no valid line for 300 ms');
    expect(offline.at - lastGood).toBeGreaterThanOrEqual(290);
    // Offline while the bad lines still came: kept alive by them, it would have gone 300 ms after the last.
    expect(offline.at).toBeLessThan(lastBadAt);
    expect(col1.health().online).toBe(false);
    const never = await waitForEvent('offline', (e) => e.deviceId === 'col-2');
    expect(never.reason).toBe('no valid line for 300 ms since start');

    await waitFor('col-1 offline for 50 ms', () => Date.now() >= offline.at + 50);
    await sim.heartbeat(1);
    const recovered = await waitForEvent('recovered', (e) => e.deviceId === 'col-1');
    expect(recovered.offlineForMs).toBeGreaterThanOrEqual(40);
    expect(col1.health().online).toBe(true);
    // A column that went silent may have restarted: its next press is a new one, latch or not.
    await sim.send(1, 'BTN');
    await waitFor('a second press of col-1', () => inputs(events, 'col-1', 'button').length === 2, 2000);
    expect(told(events)).toEqual(['col-1 button true', 'col-1 button true']);
  });

  it('after a restart on the same PTY, a line the column was cut off in is neither heard nor counted', async () => {
    const { bus, sim, events, logs, waitForEvent } = await rig();
    await bus.stop();
    // serialport flushes the OS buffer on open, so this tail is either gone or the first bytes read: both
    // must end the same way.
    await sim.sendRaw('$VE,2,TA');
    bus.start();
    await waitFor('the port open again', () => logs.filter((l) => l.msg === 'serial port open').length === 2, 2000);
    await sim.send(2, 'TAMP');
    await waitForEvent('input', (e) => e.deviceId === 'col-2' && e.input === 'tamper');
    expect(events.filter((e) => e.type !== 'input')).toEqual([]);
    expect(told(events)).toEqual(['col-2 tamper true']);
  });

  it('reopens a port that disappeared, with backoff, drops stale bytes, and hears the columns again', async () => {
    const { sim, events, logs, col1, controllerPath, devicePath, unplug, waitForEvent } = await rig();
    await sim.heartbeat(1);
    await waitFor('col-1 online', () => col1.health().online, 2000);

    // Unplugging: the PTY pair vanishes under the open port.
    await sim.close();
    await unplug();
    const lost = await waitForEvent('bus-lost');
    expect(lost).toMatchObject({ busId: 'line0', reason: expect.stringContaining('port closed') });
    // Said at once, and kept: written when the port is back, without being asked again.
    await expect(col1.setIndicator('sent')).rejects.toThrow(/bus "line0" is lost/);

    const delays = () => logs.filter((l) => l.msg === 'reopening the port after a delay').map((l) => l['delayMs']);
    await waitFor('three reopen delays', () => delays().length >= 3, 2000);
    expect(delays().slice(0, 3)).toEqual([100, 200, 400]);

    cleanups.unshift(await ptyPairAt(controllerPath, devicePath)); // first in, so closed after the bus stops
    const sim2 = await openLineDevice({ path: devicePath, talker: 'VE' });
    cleanups.push(() => sim2.close());
    const restored = await waitForEvent('bus-restored', () => true, 3000);
    expect(restored.at).toBeGreaterThanOrEqual(lost.at);

    // The first bytes after an open may be the tail of an older line. (socat drops what is written before
    // the controller side opens, so the tail is sent just after; to the bus the two are the same.)
    const errorsBefore = events.filter((e) => e.type === 'protocol-error').length;
    await sim2.sendRaw('1,HB*2A');
    await sim2.send(1, 'BTN');
    await waitForEvent('input', (e) => e.deviceId === 'col-1' && e.input === 'button');
    expect(told(events)).toEqual(['col-1 button true']);
    expect(events.filter((e) => e.type === 'protocol-error')).toHaveLength(errorsBefore);
    expect(logs.some((l) => l.msg === 'dropped bytes left over from before the port opened' && l['text'] === '"1,HB*2A"')).toBe(true);
    expect(hasValidChecksum(await sim2.waitForWritten((line) => line.startsWith('$VE,1,LED,BLINK*')))).toBe(true);
    await col1.setIndicator('sent');
    expect(sim2.written.filter((line) => line.startsWith('$VE,1,LED,'))).toHaveLength(1);
    expect(events.map((e) => e.type).filter((t) => t.startsWith('bus-'))).toEqual(['bus-lost', 'bus-restored']);
  });
  it('reopens as soon as the device node is back, whatever the backoff had reached', async () => {
    // The shipped reopen backoff: 1 s doubling to 30 s.
    const { sim, events, logs, controllerPath, devicePath, unplug, waitForEvent } = await rig({ reopen: { initialMs: 1000, maxMs: 30_000 } });
    await sim.close();
    await unplug();
    await waitForEvent('bus-lost');
    const delays = () => logs.filter((l) => l.msg === 'reopening the port after a delay').map((l) => l['delayMs']);
    await waitFor('three reopen delays', () => delays().length >= 3, { timeoutMs: 10_000, intervalMs: 10 });
    expect(delays().slice(0, 3)).toEqual([1000, 2000, 4000]);
    const pluggedAt = Date.now();
    cleanups.unshift(await ptyPairAt(controllerPath, devicePath));
    const restored = await waitForEvent('bus-restored', () => true, 10_000);
    expect(restored.at - pluggedAt).toBeLessThan(2000);
    expect(events.map((e) => e.type).filter((t) => t.startsWith('bus-'))).toEqual(['bus-lost', 'bus-restored']);
  });
});
