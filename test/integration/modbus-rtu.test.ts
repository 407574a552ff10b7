import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SerialPort } from 'serialport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TimingConfig } from '../../src/config/schema.ts';
import { withCrc } from '../../src/drivers/modbus/crc16.ts';
import { createRtuTransport } from '../../src/drivers/modbus/modbus-transport.ts';
import type { ModbusProfile } from '../../src/drivers/device/profile-schema.ts';
import type { DeviceEvent, ProtocolErrorKind } from '../../src/drivers/device/types.ts';
import { inputEvents, modbusProfile, rtuRig, testTiming as fastTiming, type RtuRig as Rig } from '../support/modbus-rig.ts';
import { waitFor } from '../support/wait.ts';
import { latchedButton, ModbusRtuSlave, type RequestRecord, type RtuSlaveOptions, type SlaveFault } from '../support/modbus-rtu-slave.ts';
import { openPtyPair, type PtyPair } from '../support/pty.ts';
import { watchBus, type BusFigures } from '../support/bus-monitor.ts';

const AC100 = modbusProfile('ve-ac100-rtu');
const RB8 = modbusProfile('ve-rb8-rtu');
const BUS_ID = 'rs485-1';

/** Alarm columns unless a profile is given. */
function rig(options: {
  devices: Array<{ id: string; unitId: number; profile?: ModbusProfile }>;
  timing?: TimingConfig;
  slave?: Omit<RtuSlaveOptions, 'path'>;
  path?: (pair: PtyPair) => string;
}): Promise<Rig> {
  return rtuRig({ ...options, busId: BUS_ID, devices: options.devices.map((d) => ({ ...d, profile: d.profile ?? AC100 })) });
}

describe('Modbus RTU alarm column over a PTY', () => {
  let r: Rig;
  let button: { press(): void; release(): void };
  beforeAll(async () => {
    // 1 s, not the rig's 150 ms: the slave shares this process's event loop, and with both cores busy a stall
    // of 150 ms made a real timeout of a neighbour, taken for the fault a test had injected.
    r = await rig({
      devices: [
        { id: 'col-1', unitId: 1 },
        { id: 'relays', unitId: 2, profile: RB8 },
      ],
      timing: fastTiming({ requestTimeoutMs: 1000 }),
    });
    const unit = r.slave.unit(1);
    unit.set('discrete-inputs', 1, true); // tamper loop closed: the door is shut
    button = latchedButton(unit, 0, 0);
    r.slave.unit(2);
    r.bus.start();
    await waitFor('first poll', () => r.device('col-1').health().online && r.device('relays').health().online);
  });
  afterAll(() => r.close());

  it('reports a press as one input event and nothing for the idle state at start', async () => {
    expect(inputEvents(r.events, 'col-1')).toEqual([]);
    const before = Date.now();
    button.press();
    const event = await waitFor('button event', () => inputEvents(r.events, 'col-1').find((e) => e.input === 'button'));
    expect(event).toMatchObject({ type: 'input', deviceId: 'col-1', input: 'button', active: true });
    expect(event.at).toBeGreaterThanOrEqual(before);
    button.release();
    // Still latched: the release alone changes nothing on the wire. One request at a time: once the third
    // request after the release arrives, the replies to the two before it have been read.
    const requests = r.slave.unit(1).requests;
    await waitFor('two polls of col-1 after the release', () => r.slave.unit(1).requests >= requests + 3);
    expect(inputEvents(r.events, 'col-1')).toHaveLength(1);
    await r.device('col-1').resetLatch('button');
    await waitFor('release after latch reset', () => inputEvents(r.events, 'col-1').find((e) => !e.active));
    expect(r.slave.unit(1).writes.at(-1)).toMatchObject({ table: 'coils', address: 0, value: 1 });
  });

  it('reads the normally-closed tamper loop as active when it opens', async () => {
    r.slave.unit(1).set('discrete-inputs', 1, false);
    await waitFor('tamper', () => inputEvents(r.events, 'col-1').find((e) => e.input === 'tamper' && e.active));
    r.slave.unit(1).set('discrete-inputs', 1, true);
    await waitFor('tamper ok', () => inputEvents(r.events, 'col-1').find((e) => e.input === 'tamper' && !e.active));
  });

  it('writes the indicator in profile order, and relays by channel', async () => {
    const unit = r.slave.unit(1);
    const from = unit.writes.length;
    await r.device('col-1').setIndicator('not-received');
    expect(unit.get('holding-registers', 0)).toBe(3);
    expect(unit.get('coils', 1)).toBe(1);
    await r.device('col-1').setIndicator('received');
    expect(unit.writes.slice(from).map((w) => `${w.table}:${w.address}=${w.value}`)).toEqual([
      'holding-registers:0=3',
      'coils:1=1',
      'holding-registers:0=2',
      'coils:1=0',
    ]);
    await r.device('col-1').resetLatch('tamper'); // no latch on the tamper loop: nothing to write
    expect(unit.writes).toHaveLength(from + 4);

    await r.device('relays').setRelay(3, true);
    expect(r.slave.unit(2).get('coils', 3)).toBe(1);
    await r.device('relays').setRelay(3, false);
    expect(r.slave.unit(2).get('coils', 3)).toBe(0);
    await expect(r.device('relays').setRelay(8, true)).rejects.toThrow(RangeError);
    await expect(r.device('col-1').setRelay(0, true)).rejects.toThrow(/no relays/);
    expect(r.device('col-1').health().latching).toBe(true);
    expect(r.device('relays').health().latching).toBeNull();
  });

  const faults: Array<[SlaveFault, ProtocolErrorKind]> = [
    ['short-reply', 'short-reply'],
    ['bad-crc', 'crc'],
    ['wrong-unit', 'wrong-unit'],
    ['exception', 'exception'],
    ['timeout', 'timeout'],
    ['garbage', 'garbage'],
  ];
  it.each(faults)('counts, logs and emits a %s reply as "%s", and keeps polling', async (fault, kind) => {
    const unit = r.slave.unit(1);
    const device = r.device('col-1');
    const errorsBefore = { ...device.health().errors };
    const seen = r.events.length;
    unit.setFault(fault, { count: 1 });
    const event = await waitFor(`${kind} event`, () =>
      r.events.slice(seen).find((e): e is Extract<DeviceEvent, { type: 'protocol-error' }> => e.type === 'protocol-error' && e.deviceId === 'col-1'),
    );
    expect(event).toMatchObject({ busId: BUS_ID, deviceId: 'col-1', kind });
    expect(event.detail).toMatch(/unit 1 read discrete inputs 0\+2/);
    expect(device.health().errors).toEqual({ ...errorsBefore, [kind]: (errorsBefore[kind] ?? 0) + 1 });
    const line = r.lines.findLast((l) => l.msg === 'protocol error');
    expect(line).toMatchObject({ bus: BUS_ID, device: 'col-1', kind, reason: event.detail });

    const requests = unit.requests;
    await waitFor('two more polls', () => unit.requests >= requests + 2);
    expect(device.health().online).toBe(true);
    expect(r.events.slice(seen).filter((e) => e.type === 'protocol-error' && e.deviceId === 'col-1')).toHaveLength(1);
  });

  it('does not take bytes that arrive between exchanges for the next reply', async () => {
    // A late "button pressed" reply from unit 1 right behind its real reply: after unit 1 answered and
    // before its next poll (possibly inside the relay board's exchange, which must resync past it).
    const stale = withCrc(Buffer.from([1, 2, 1, 0x01]));
    const seen = r.events.length;
    let injected = 0;
    const off = r.slave.onReply((unit) => {
      if (unit === 1 && injected < 10) void r.slave.inject(stale).then(() => injected++);
    });
    await waitFor('ten injections', () => injected >= 10);
    off();
    // Read by now: one request at a time, so a later request means the line before it was read through.
    const requests = r.slave.unit(1).requests;
    await waitFor('two more polls of unit 1', () => r.slave.unit(1).requests >= requests + 2);
    expect(r.events.slice(seen).filter((e) => e.type === 'input' || e.type === 'protocol-error')).toEqual([]);
  });

  it('stamps every good reply in health, and no failed one', async () => {
    const device = r.device('col-1');
    const before = Date.now();
    // Counted back from the monotonic clock: the wall-clock time is right to within a millisecond.
    const replied = await waitFor('a reply after now', () => {
      const at = device.health().lastReplyAt;
      return at !== null && at >= before - 1 && at;
    });
    expect(replied).toBeLessThanOrEqual(Date.now() + 1);
    await waitFor('lastReplyAt to advance with the polls', () => (device.health().lastReplyAt ?? 0) > replied + 1);

    // Two polls in a row get no answer: the last reply stays where the last answered poll left it.
    const seen = r.events.length;
    r.slave.unit(1).setFault('timeout', { count: 2 });
    const timeouts = () => r.events.slice(seen).filter((e) => e.type === 'protocol-error' && e.deviceId === 'col-1' && e.kind === 'timeout');
    await waitFor('first timeout', () => timeouts().length >= 1);
    const lastGood = device.health().lastReplyAt ?? 0;
    await waitFor('second timeout', () => timeouts().length >= 2);
    expect(Math.abs((device.health().lastReplyAt ?? 0) - lastGood)).toBeLessThanOrEqual(1);
    await waitFor('a reply after the timeouts', () => (device.health().lastReplyAt ?? 0) > lastGood + 1);
  });
});

describe('latched and unlatched presses shorter than the poll interval', () => {
  let r: Rig;
  const unlatched: ModbusProfile = { ...AC100, inputs: { button: { table: 'discrete-inputs', address: 0, activeLow: false } } };
  beforeAll(async () => {
    r = await rig({
      devices: [
        { id: 'latched', unitId: 1 },
        { id: 'plain', unitId: 2, profile: unlatched },
      ],
      timing: fastTiming({ pollIntervalMs: 150 }),
    });
    for (const id of [1, 2]) r.slave.unit(id).set('discrete-inputs', 1, true);
    r.bus.start();
    await waitFor('first poll', () => r.device('latched').health().online && r.device('plain').health().online);
  });
  afterAll(() => r.close());

  it('sees a 5 ms press on a latching column, and can miss it on one without a latch', async () => {
    const latched = latchedButton(r.slave.unit(1), 0, 0);
    const plain = r.slave.unit(2);
    // Press right after each unit was polled, so the press is over long before the next poll.
    const pressAfterPoll = (unit: number, press: () => void, release: () => void) =>
      new Promise<void>((resolve) => {
        const off = r.slave.onRequest((req: RequestRecord) => {
          if (req.unit !== unit) return;
          off();
          setTimeout(() => {
            press();
            setTimeout(() => {
              release();
              resolve();
            }, 5);
          }, 10);
        });
      });
    await Promise.all([
      pressAfterPoll(1, latched.press, latched.release),
      pressAfterPoll(
        2,
        () => plain.set('discrete-inputs', 0, true),
        () => plain.set('discrete-inputs', 0, false),
      ),
    ]);
    await waitFor('latched press', () => inputEvents(r.events, 'latched').find((e) => e.active), 1000);
    // Polled twice since the press was over (the third request is sent once the second reply was read): unseen.
    const requests = r.slave.unit(2).requests;
    await waitFor('two more polls of the plain column', () => r.slave.unit(2).requests >= requests + 3);
    expect(inputEvents(r.events, 'plain')).toEqual([]);
    expect(r.device('latched').health().latching).toBe(true);
    expect(r.device('plain').health().latching).toBe(false);
  });
});

describe('replies that arrive in pieces', () => {
  let r: Rig;
  beforeAll(async () => {
    // 2-byte pieces 3 ms apart: what a USB adapter with its latency timer hands the OS. The test counts every
    // protocol error: a generous timeout, so that a slave slowed by a loaded machine is not one of them.
    r = await rig({
      devices: [
        { id: 'col-1', unitId: 1 },
        { id: 'relays', unitId: 2, profile: RB8 },
      ],
      timing: fastTiming({ requestTimeoutMs: 1000 }),
      slave: { splitReplies: { bytes: 2, gapMs: 3 } },
    });
    r.slave.unit(1).set('discrete-inputs', 1, true);
    r.slave.unit(2);
    r.bus.start();
    await waitFor('first poll', () => r.device('col-1').health().online && r.device('relays').health().online);
  });
  afterAll(() => r.close());

  it('reassembles them into whole replies, for reads, writes and exceptions alike', async () => {
    r.slave.unit(1).set('discrete-inputs', 0, true);
    await waitFor('press', () => inputEvents(r.events, 'col-1').find((e) => e.active));
    await r.device('col-1').setIndicator('sent');
    await r.device('relays').setRelay(7, true);
    expect(r.slave.unit(2).get('coils', 7)).toBe(1);
    const seen = r.events.length;
    r.slave.unit(1).setFault('exception', { count: 1, exceptionCode: 2 });
    const event = await waitFor('exception', () => r.events.slice(seen).find((e) => e.type === 'protocol-error'));
    expect(event).toMatchObject({ kind: 'exception', detail: expect.stringMatching(/exception 2: Illegal data address/) });
    const requests = r.slave.unit(1).requests;
    await waitFor('more polls', () => r.slave.unit(1).requests >= requests + 5);
    expect(r.events.filter((e) => e.type === 'protocol-error')).toHaveLength(1);
  });
});

describe('a reply that arrives while the event loop is held up', () => {
  /** Waits, without reading, until the serial port at argv[1] has bytes to read. */
  const waitReadable =
    'import os, select, sys\nfd = os.open(sys.argv[1], os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)\nsys.exit(0 if select.select([fd], [], [], 10)[0] else 1)';

  it('is read when the deadline passes, not reported as a timeout', async () => {
    const pair = await openPtyPair();
    const transport = createRtuTransport({ path: pair.controllerPath, baudRate: 9600, parity: 'none', dataBits: 8, stopBits: 1 });
    const column = openSync(pair.devicePath, constants.O_RDWR | constants.O_NOCTTY);
    try {
      await transport.open(() => undefined);
      const timeoutMs = 50;
      const reply = transport.readDiscreteInputs({ unitId: 1, timeoutMs }, 0, 2);
      const sentBy = performance.now();
      // The column answers at once, while the service is busy with a long synchronous job (a GC pause, a
      // slow write to the card) until the reply has reached its port and the deadline has passed.
      writeSync(column, withCrc(Buffer.from([1, 2, 1, 0b10])));
      execFileSync('/usr/bin/python3', ['-c', waitReadable, pair.controllerPath]);
      while (performance.now() <= sentBy + timeoutMs + 1);
      // Timers run before the event loop polls for input: the deadline comes first, the reply is there.
      await expect(reply).resolves.toEqual([false, true]);
    } finally {
      closeSync(column);
      await transport.close();
      await pair.close();
    }
  });
});

describe('a request written to a port that is gone', () => {
  it('reports the port lost, not a failed request of the device asked', async () => {
    const pair = await openPtyPair();
    const transport = createRtuTransport({ path: pair.controllerPath, baudRate: 9600, parity: 'none', dataBits: 8, stopBits: 1 });
    const lost: string[] = [];
    try {
      await transport.open((reason) => lost.push(reason));
      // The adapter is pulled out between two polls, and the next request is written before the event loop
      // has heard the port hang up: socat is killed and seen dead (a zombie, its PTYs closed) without yielding.
      process.kill(pair.socatPid, 'SIGKILL');
      while (!readFileSync(`/proc/${pair.socatPid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z'));
      const failed = await transport.readDiscreteInputs({ unitId: 1, timeoutMs: 100 }, 0, 2).then(
        () => null,
        (error: unknown) => error,
      );
      expect(failed).toMatchObject({ kind: 'port' });
      // Lost at once, so the bus stops and says so (bus-lost) before the device counts a failed poll.
      expect(lost).toEqual([expect.stringMatching(/^write failed: /)]);
    } finally {
      await transport.close();
      await pair.close();
    }
  });
});

describe('offline and recovery', () => {
  let r: Rig;
  beforeAll(async () => {
    r = await rig({
      devices: [
        { id: 'col-1', unitId: 1 },
        { id: 'col-2', unitId: 2 },
      ],
      timing: fastTiming({ requestTimeoutMs: 100, offlinePollIntervalMs: 500 }),
    });
    r.slave.unit(1).set('discrete-inputs', 1, true);
    r.slave.unit(2).set('discrete-inputs', 1, true);
    r.bus.start();
    await waitFor('first poll', () => r.device('col-1').health().online && r.device('col-2').health().online);
  });
  afterAll(() => r.close());

  it('goes offline after N failed polls, is polled slowly while its neighbour is not, then recovers', async () => {
    const unit = r.slave.unit(1);
    unit.setFault('timeout');
    const offline = await waitFor('offline', () => r.events.find((e) => e.type === 'offline'));
    const offlineSeenAt = performance.now();
    expect(offline).toMatchObject({ deviceId: 'col-1' });
    expect(offline.type === 'offline' && offline.reason).toMatch(/3 polls in a row failed; last: unit 1 .*no reply within 100 ms/);
    expect(r.device('col-1').health()).toMatchObject({ online: false, errors: { timeout: 3 } });
    expect(r.lines.find((l) => l.msg === 'device offline')).toMatchObject({ bus: BUS_ID, device: 'col-1' });
    // Kept while offline: when it was last heard, three timeouts before the offline event.
    const lastHeard = r.device('col-1').health().lastReplyAt ?? Infinity;
    expect(lastHeard).toBeLessThanOrEqual(offline.at - 3 * 100);
    const neighbourHeard = r.device('col-2').health().lastReplyAt ?? 0;

    // The offline unit is tried once per offline poll interval, its neighbour whenever the bus is free: counted
    // as the slave sees the requests, over three tries of the offline unit rather than a fixed time, which a
    // busy machine fills with fewer polls.
    const tries: number[] = [];
    let neighbourPolls = 0;
    const off = r.slave.onRequest((q) => {
      if (q.unit === 1) tries.push(q.at);
      else neighbourPolls++;
    });
    await waitFor('three tries of the offline unit', () => tries.length >= 3, 5000);
    off();
    // 500 ms apart, less what a request may wait for the bus and the PTY on a loaded machine.
    for (let i = 1; i < tries.length; i++) expect(tries[i]! - tries[i - 1]!).toBeGreaterThan(250);
    // At the offline unit's pace the neighbour would have been asked about as often, three or four times.
    expect(neighbourPolls).toBeGreaterThan(2 * tries.length);
    expect(r.device('col-2').health().online).toBe(true);
    expect(Math.abs((r.device('col-1').health().lastReplyAt ?? 0) - lastHeard)).toBeLessThanOrEqual(1);
    expect(r.device('col-2').health().lastReplyAt).toBeGreaterThan(neighbourHeard + 1);

    unit.setFault('working');
    // It answers from now on: offline at least since the test saw it go offline.
    const offlineAtLeastMs = Math.floor(performance.now() - offlineSeenAt);
    const recovered = await waitFor('recovered', () => r.events.find((e) => e.type === 'recovered'));
    expect(recovered).toMatchObject({ deviceId: 'col-1' });
    expect(recovered.type === 'recovered' && recovered.offlineForMs).toBeGreaterThanOrEqual(offlineAtLeastMs);
    expect(r.device('col-1').health().online).toBe(true);
    expect(r.device('col-1').health().lastReplyAt).toBeGreaterThan(lastHeard + 1);
    expect(r.events.filter((e) => e.type === 'offline' || e.type === 'recovered')).toHaveLength(2);
    // Measured by the driver: well below the offline unit's 500 ms.
    expect(r.device('col-2').health().pollIntervalMs).toBeLessThan(250);
  });

  it('counts a reply that comes too late against the device that was late, not the one asked next', async () => {
    const seen = r.events.length;
    const errors = () => r.events.slice(seen).filter((e): e is Extract<DeviceEvent, { type: 'protocol-error' }> => e.type === 'protocol-error');
    // Unit 2's answer comes after the master gave up on it, ahead of unit 1's answer to the next request.
    r.slave.answerLate(2);
    await waitFor('the late unit to time out', () => errors().length > 0);
    const [one, two] = [r.slave.unit(1).requests, r.slave.unit(2).requests];
    await waitFor('both units polled again', () => r.slave.unit(1).requests >= one + 3 && r.slave.unit(2).requests >= two + 3);
    expect(errors().map((e) => `${e.deviceId} ${e.kind}`)).toEqual(['col-2 timeout']);
  });
});

describe('losing the serial port', () => {
  let r: Rig;
  let dir: string;
  let link: string;
  const extra: Array<{ close(): Promise<void> }> = [];
  beforeAll(async () => {
    // The bus opens a stable name, as /dev/serial/by-id/... is for a USB adapter that is replugged.
    dir = mkdtempSync(join(tmpdir(), 've-modbus-'));
    link = join(dir, 'ttyVE0');
    r = await rig({
      devices: [{ id: 'col-1', unitId: 1 }],
      path: (pair) => {
        symlinkSync(pair.controllerPath, link);
        return link;
      },
    });
    r.slave.unit(1).set('discrete-inputs', 1, true);
    expect(r.device('col-1').health().lastReplyAt).toBeNull();
  });
  afterAll(async () => {
    await r.close();
    for (const thing of extra) await thing.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports bus-lost, reopens with doubling delays, reports bus-restored and polls again', async () => {
    r.bus.start();
    await waitFor('first poll', () => r.device('col-1').health().online);
    await r.pair.close(); // socat killed: the adapter is unplugged
    const lost = await waitFor('bus-lost', () => r.events.find((e) => e.type === 'bus-lost'));
    expect(lost).toMatchObject({ busId: BUS_ID });
    expect(r.device('col-1').health().online).toBe(false);
    const delays = () => r.lines.filter((l) => l.msg === 'reopening the port after a delay').map((l) => l.delayMs);
    await waitFor('three reopen attempts', () => delays().length >= 3);
    expect(delays().slice(0, 3)).toEqual([50, 100, 200]);

    const pair = await openPtyPair();
    const slave = await ModbusRtuSlave.open({ path: pair.devicePath });
    extra.push(slave, pair);
    slave.unit(1).set('discrete-inputs', 1, true);
    // A stale "pressed" reply waiting on the line must not be read after the reopen.
    await slave.inject(withCrc(Buffer.from([1, 2, 1, 0x01])));
    unlinkSync(link);
    symlinkSync(pair.controllerPath, link);

    await waitFor('bus-restored', () => r.events.find((e) => e.type === 'bus-restored'), 2000);
    await waitFor('polls on the new port', () => slave.unit(1).requests >= 2 && r.device('col-1').health().online);
    expect(r.events.filter((e) => e.type === 'input')).toEqual([]);
    slave.unit(1).set('discrete-inputs', 0, true);
    await waitFor('press after restore', () => inputEvents(r.events, 'col-1').find((e) => e.active));
    // One outage, told once by the bus; the device itself was never declared offline.
    expect(r.events.filter((e) => e.type === 'bus-lost' || e.type === 'bus-restored').map((e) => e.type)).toEqual(['bus-lost', 'bus-restored']);
    expect(r.events.filter((e) => e.type === 'offline' || e.type === 'protocol-error')).toEqual([]);
  });
});

describe('one request at a time, a write before the polls but never two in a poll cycle', () => {
  let r: Rig;
  const ids = ['col-1', 'col-2', 'col-3', 'col-4', 'col-5'];
  beforeAll(async () => {
    r = await rig({
      devices: [...ids.map((id, i) => ({ id, unitId: i + 1 })), { id: 'relays', unitId: 9, profile: RB8 }],
      // 10 ms per device cannot be met by six devices at 9600 baud: the poll queue never runs dry.
      // A generous timeout: on a loaded CI machine a late slave timer must not turn into a master timeout,
      // after which the next request legitimately overlaps the late reply.
      timing: fastTiming({ pollIntervalMs: 10, requestTimeoutMs: 1000 }),
      slave: { wireBaud: 9600 },
    });
    for (let unit = 1; unit <= 5; unit++) r.slave.unit(unit).set('discrete-inputs', 1, true);
    r.slave.unit(9);
    r.bus.start();
    await waitFor('first polls', () => r.bus.devices.every((d) => d.health().online));
  });
  afterAll(() => r.close());

  it('has a slave that does notice overlapping requests', async () => {
    const pair = await openPtyPair();
    const slave = await ModbusRtuSlave.open({ path: pair.devicePath, wireBaud: 9600 });
    slave.unit(1);
    const port = new SerialPort({ path: pair.controllerPath, baudRate: 9600 });
    await new Promise((resolve) => port.once('open', resolve));
    const request = withCrc(Buffer.from([1, 2, 0, 0, 0, 2]));
    port.write(Buffer.concat([request, request]));
    await waitFor('two requests', () => slave.stats.requests === 2);
    expect(slave.stats.overlaps).toBe(1);
    await new Promise((resolve) => port.close(resolve));
    await slave.close();
    await pair.close();
  });

  it('never overlaps on the wire; a write waits for at most the request in flight, a poll for at most one write', async () => {
    const log: RequestRecord[] = [];
    const off = r.slave.onRequest((req) => log.push(req));
    const overlapsBefore = r.slave.stats.overlaps;
    const isWrite = (q: RequestRecord) => q.fc === 5 || q.fc === 6;
    const units = [1, 2, 3, 4, 5, 9].map((id) => r.slave.unit(id));
    for (let round = 0; round < 4; round++) {
      // Once every device was read after the last write, no poll is owed a turn: a write goes next.
      const counts = units.map((u) => u.requests);
      await waitFor('a poll cycle', () => units.every((u, i) => u.requests > counts[i]!));
      const at = performance.now();
      const from = log.length;
      await Promise.all([r.device('col-3').setIndicator(round % 2 ? 'sent' : 'not-received'), r.device('relays').setRelay(round, true)]);
      const after = log.slice(from).filter((q) => q.at >= at);
      expect(after.findIndex(isWrite)).toBeLessThanOrEqual(1);
      // The relay (a write that cannot wait) first, then the indicator's two writes, each after the polls
      // that waited through the write before it.
      expect(after.filter(isWrite).map((q) => `${q.unit}:${q.fc}`)).toEqual(['9:5', '3:6', '3:5']);
    }
    off();
    // Between two reads of one device, at most one write.
    for (const unit of [1, 2, 3, 4, 5, 9]) {
      let writes = 0;
      let seen = false;
      for (const q of log) {
        if (isWrite(q)) writes++;
        else if (q.unit === unit) {
          if (seen) expect(writes, `writes between two reads of unit ${unit}`).toBeLessThanOrEqual(1);
          seen = true;
          writes = 0;
        }
      }
    }
    expect(log.length).toBeGreaterThan(15);
    expect(r.slave.stats.overlaps - overlapsBefore, JSON.stringify(r.events.filter((e) => e.type === 'protocol-error'))).toBe(0);
    expect(r.slave.stats.badRequests).toBe(0);
    expect(r.slave.unit(3).get('holding-registers', 0)).toBe(1);
    expect(r.events.filter((e) => e.type === 'protocol-error')).toEqual([]);
    // Six devices share one 9600-baud line: each is read far less often than asked, and health says so.
    expect(r.device('col-1').health().pollIntervalMs).toBeGreaterThan(60);
  });
});

describe('the 3.5-character gap between frames', () => {
  let r: Rig;

  /**
   * What the slave saw of the line while `during` ran (the monitor the bench uses too). It stamps a reply when it writes
   * it and a request when it reads it, so a measured silence is never shorter than the one on the line.
   */
  async function lineWhile(during: () => Promise<void>): Promise<BusFigures> {
    const monitor = watchBus(r.slave, { baud: 9600 });
    monitor.start();
    try {
      await during();
      return monitor.stop();
    } finally {
      monitor.close();
    }
  }

  beforeAll(async () => {
    r = await rig({
      devices: [
        { id: 'col-1', unitId: 1 },
        { id: 'col-2', unitId: 2 },
      ],
      timing: fastTiming({ pollIntervalMs: 200, requestTimeoutMs: 1000 }),
      slave: { wireBaud: 9600 },
    });
    for (const unit of [1, 2]) r.slave.unit(unit).set('discrete-inputs', 1, true);
    r.bus.start();
    await waitFor('first polls', () => r.bus.devices.every((d) => d.health().online));
  });
  afterAll(() => r.close());

  it('keeps it before a write asked for just after a reply, when the bus had nothing queued', async () => {
    // With time to spare between polls the bus sets no timer after a reply (it would wake the service for
    // nothing); a request that comes during the gap must still wait it out.
    let writes = 0;
    let unsettled = 0;
    const line = await lineWhile(async () => {
      const off = r.slave.onReply((unit, reply) => {
        if (reply[1] !== 2) return;
        const delayMs = [0.5, 1.5, 2.5, 3][writes % 4]!;
        writes++;
        unsettled++;
        setTimeout(
          () =>
            void r
              .device(unit === 1 ? 'col-1' : 'col-2')
              .setIndicator(writes % 2 ? 'sent' : 'received')
              .finally(() => unsettled--),
          delayMs,
        );
      });
      // A window of traffic to measure, not a wait for anything.
      await sleep(1500);
      off();
      await waitFor('every indicator asked for to be shown', () => unsettled === 0);
    });
    expect(writes).toBeGreaterThan(5);
    expect(line.requests).toBeGreaterThan(11);
    expect(line.shortSilences, `shortest silence ${line.minSilenceMs.toFixed(2)} ms`).toBe(0);
    expect(r.events.filter((e) => e.type === 'protocol-error')).toEqual([]);
  });

  it('keeps it on a saturated bus', async () => {
    const line = await lineWhile(async () => {
      // Two columns asked for a new state (two writes each) as soon as they show the last: the queue never runs dry.
      for (let i = 0; i < 15; i++) {
        const [a, b] = i % 2 ? (['sent', 'not-received'] as const) : (['not-received', 'sent'] as const);
        await Promise.all([r.device('col-1').setIndicator(a), r.device('col-2').setIndicator(b)]);
      }
    });
    expect(line.requests).toBeGreaterThan(41);
    expect(line.shortSilences, `shortest silence ${line.minSilenceMs.toFixed(2)} ms`).toBe(0);
  });
});
