import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AlarmService, type AlarmServiceOptions, type Terminal } from '../../src/alarm/alarm-service.ts';
import { alarmPayloadSchema, type AlarmPayload } from '../../src/contract/payloads.ts';
import type { Device, DeviceEvent, DevicePort, InputName } from '../../src/drivers/device/types.ts';
import { createMemoryOutbox } from '../../src/store/memory-outbox.ts';
import type { Outbox, OutboxRecord } from '../../src/store/types.ts';
import { memoryLogger } from '../support/log-sink.ts';

// The alarm service driven by device events given directly (times included), on columns that record what
// they are told and can be made to fail: edges, debounce, restarts, acks and failing columns, to the log line.

const timing = { debounceMs: 30, ackTimeoutMs: 10_000, indicatorHoldMs: 60_000 };
const village = { id: 'v1', name: 'Village One', location: { lat: 25.04, lon: 102.71 } };
const gate: Terminal = { id: 'c1', label: 'gate', testMode: false };

/**
 * Columns that record every command as `<id> indicator <state>` / `<id> reset <input>`; `fail` makes them
 * reject, and `fail.port` makes the port itself throw when asked for a device.
 */
function recordingColumns(ids: readonly string[]) {
  const commands: string[] = [];
  const fail = { indicator: false, latch: false, port: false };
  const column = (id: string): Device => ({
    id,
    busId: 'sim',
    start: () => undefined,
    stop: async () => undefined,
    setIndicator: (state) => {
      commands.push(`${id} indicator ${state}`);
      return fail.indicator ? Promise.reject(new Error('column did not answer')) : Promise.resolve();
    },
    resetLatch: (input) => {
      commands.push(`${id} reset ${input}`);
      return fail.latch ? Promise.reject(new Error('latch write failed')) : Promise.resolve();
    },
    setRelay: async () => undefined,
    health: () => ({
      id,
      bus: 'sim',
      model: 'test',
      online: true,
      latching: true,
      pollIntervalMs: null,
      worstPollGapMs: null,
      lastReplyAt: null,
      errors: {},
    }),
  });
  const byId = new Map(ids.map((id) => [id, column(id)]));
  const port: DevicePort = {
    start: () => undefined,
    stop: async () => undefined,
    device: (id) => {
      if (fail.port) throw new Error('device port closed');
      return byId.get(id);
    },
    devices: () => [...byId.values()],
    health: () => [],
  };
  return { port, commands, fail };
}

function rig(options: { terminals?: Terminal[]; columns?: string[]; outbox?: Outbox; more?: Partial<AlarmServiceOptions> } = {}) {
  const terminals = options.terminals ?? [gate];
  const columns = recordingColumns(options.columns ?? terminals.map((t) => t.id));
  const outbox = options.outbox ?? createMemoryOutbox();
  const { logger, lines } = memoryLogger();
  const stored: OutboxRecord[] = [];
  const overdue: AlarmPayload[] = [];
  const service = new AlarmService({
    village,
    terminals,
    devices: columns.port,
    outbox,
    timing,
    logger,
    onStored: (r) => stored.push(r),
    onAckOverdue: (a) => overdue.push(a),
    ...options.more,
  });
  service.start();
  const edge = (input: InputName, active: boolean, at = Date.now(), deviceId = 'c1'): void =>
    service.handleDeviceEvent({ type: 'input', deviceId, input, active, at });
  const payload = (i: number): AlarmPayload => alarmPayloadSchema.parse(outbox.get(stored[i]!.id)!.payload);
  const logged = (msg: string) => lines.filter((l) => l.msg === msg);
  return { service, outbox, stored, overdue, commands: columns.commands, fail: columns.fail, lines, edge, payload, logged };
}

const flush = () => vi.advanceTimersByTimeAsync(0);

describe('AlarmService edges', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-11-29T05:00:00Z'));
  });
  afterEach(() => vi.useRealTimers());

  it('counts a press only on the rising edge: a release, or a level reported twice, is no press', async () => {
    const r = rig();
    const t0 = Date.now();
    r.edge('button', true, t0);
    r.edge('button', true, t0 + 1000);
    r.edge('button', false, t0 + 2000);
    await flush();
    expect(r.stored).toHaveLength(1);
    expect(r.payload(0).presses).toBe(1);
    r.edge('button', true, t0 + 3000);
    await flush();
    expect(r.payload(0).presses).toBe(2);
  });

  it('ignores an edge inside the debounce time, with a debug line, and takes one exactly at its end', async () => {
    const r = rig();
    const t0 = Date.now();
    r.edge('button', true, t0);
    r.edge('button', false, t0 + 100);
    r.edge('button', true, t0 + 100 + timing.debounceMs - 1);
    await flush();
    expect(r.payload(0).presses).toBe(1);
    expect(r.logged('edge ignored: within debounce time')).toEqual([expect.objectContaining({ terminal: 'c1', input: 'button' })]);
    r.edge('button', false, t0 + 1000);
    r.edge('button', true, t0 + 1000 + timing.debounceMs);
    await flush();
    expect(r.payload(0).presses).toBe(2);
  });

  it('raises nothing for a stop input on a column, or for an input of a device that is no terminal', async () => {
    const r = rig();
    r.edge('stop', true);
    expect(() => r.edge('button', true, Date.now(), 'rb1')).not.toThrow();
    await flush();
    expect(r.stored).toEqual([]);
  });

  it('logs each alarm it stores, each press it counts, and each follow-up, with what they are about', async () => {
    const r = rig();
    const t0 = Date.now();
    r.edge('button', true, t0);
    r.edge('button', false, t0 + 100);
    r.edge('button', true, t0 + 200);
    r.outbox.recordAttempts([{ id: r.stored[0]!.id, attempts: 1, nextAttemptAt: t0 + 5000 }]);
    r.edge('button', false, t0 + 300);
    r.edge('button', true, t0 + 400);
    await flush();
    const first = r.payload(0);
    const followUp = r.payload(1);
    const raised = r.logged('alarm raised and stored');
    expect(raised).toEqual([expect.objectContaining({ alarmId: first.id, seq: 1, terminal: 'c1', type: 'button' })]);
    // Stored on a card that takes writes: no `durable` field at all.
    expect(raised[0]).not.toHaveProperty('durable');
    expect(r.logged('press counted on open alarm')).toEqual([
      expect.objectContaining({ alarmId: first.id, terminal: 'c1', type: 'button', presses: 2 }),
    ]);
    expect(r.logged('press counted in a follow-up alarm')).toEqual([
      expect.objectContaining({ alarmId: followUp.id, seq: 2, followUpOf: first.id, terminal: 'c1', type: 'button', presses: 3 }),
    ]);
  });

  it('says so in the log when an alarm lives in memory only (the card takes no writes)', async () => {
    const outbox = createMemoryOutbox();
    const commit = outbox.commit.bind(outbox);
    outbox.commit = (record) => commit({ ...record, payload: { ...record.payload, durable: false } });
    const r = rig({ outbox });
    r.edge('button', true);
    await flush();
    expect(r.logged('alarm raised and stored')[0]).toMatchObject({ durable: false });
  });

  it('puts the village address in the alarm location when the config has one, and no address key when not', async () => {
    const withAddress = rig({ more: { village: { ...village, location: { ...village.location, address: '1 Temple Road' } } } });
    const without = rig();
    withAddress.edge('button', true);
    without.edge('button', true);
    await flush();
    expect(withAddress.payload(0).location.address).toBe('1 Temple Road');
    expect(without.payload(0).location).not.toHaveProperty('address');
  });
});

describe('AlarmService lamp', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-11-29T05:00:00Z'));
  });
  afterEach(() => vi.useRealTimers());

  it('shows the lamp again when the column recovers, but writes nothing to a dark column or for other events', async () => {
    const r = rig({ terminals: [gate, { id: 'c2', label: 'school', testMode: false }] });
    r.edge('button', true);
    await flush();
    r.commands.length = 0;
    const at = Date.now();
    const events: DeviceEvent[] = [
      { type: 'offline', deviceId: 'c1', at, reason: 'timeout' },
      { type: 'status', deviceId: 'c1', condition: 'power', active: true, at },
      { type: 'recovered', deviceId: 'c2', at, offlineForMs: 5000 },
      { type: 'recovered', deviceId: 'ghost', at, offlineForMs: 5000 },
    ];
    for (const event of events) expect(() => r.service.handleDeviceEvent(event)).not.toThrow();
    expect(r.commands).toEqual([]);
    r.service.handleDeviceEvent({ type: 'recovered', deviceId: 'c1', at, offlineForMs: 5000 });
    expect(r.commands).toEqual(['c1 indicator sent']);
  });

  it('logs the ack with the time it took, leaves the lamp of a tamper alarm alone, and ignores other streams', async () => {
    const r = rig();
    r.edge('tamper', true);
    await vi.advanceTimersByTimeAsync(1500);
    r.commands.length = 0;
    const record = r.outbox.ackMany([r.stored[0]!.id], Date.now())[0]!;
    r.service.acknowledged(record);
    await flush();
    expect(r.commands).toEqual([]);
    expect(r.logged('alarm acknowledged by county')).toEqual([
      expect.objectContaining({ alarmId: record.id, seq: 1, terminal: 'c1', type: 'tamper', ackAfterMs: 1500 }),
    ]);
    const fault = r.outbox.append({
      stream: 'fault',
      id: 'f1',
      subject: 'c1',
      now: Date.now(),
      build: (seq) => ({ id: 'f1', seq, terminal: 'c1', type: 'button' }),
    });
    r.service.acknowledged(r.outbox.ackMany([fault.id], Date.now())[0]!);
    await flush();
    expect(r.commands).toEqual([]);
    expect(r.logged('alarm acknowledged by county')).toHaveLength(1);
  });

  it('logs a lamp it could not put out after the hold time, and does not fail for it', async () => {
    const r = rig();
    r.edge('button', true);
    await flush();
    r.service.acknowledged(r.outbox.ackMany([r.stored[0]!.id], Date.now())[0]!);
    r.fail.port = true;
    await vi.advanceTimersByTimeAsync(timing.indicatorHoldMs);
    expect(r.logged('indicator hold timer failed')).toEqual([
      expect.objectContaining({ err: expect.objectContaining({ message: 'device port closed' }) }),
    ]);
  });

  it('takes an ack of an alarm from a terminal it does not have (any more) without failing', () => {
    const r = rig();
    const record = r.outbox.append({
      stream: 'alarm',
      id: 'a-old',
      subject: 'c9:button',
      now: Date.now(),
      build: (seq) => ({ id: 'a-old', seq, terminal: 'c9', type: 'button' }),
    });
    expect(() => r.service.acknowledged(r.outbox.ackMany([record.id], Date.now())[0]!)).not.toThrow();
  });

  it('logs the overdue ack with the alarm and the timeout, and needs no local-autonomy hook to do so', async () => {
    const r = rig({ more: { onAckOverdue: undefined } });
    r.edge('button', true);
    await vi.advanceTimersByTimeAsync(timing.ackTimeoutMs);
    expect(r.logged('no ack from county within the ack timeout')).toEqual([
      expect.objectContaining({ alarmId: r.stored[0]!.id, terminal: 'c1', ackTimeoutMs: timing.ackTimeoutMs }),
    ]);
    expect(r.logged('ack timer failed')).toEqual([]);
    expect(r.commands.at(-1)).toBe('c1 indicator not-received');
  });

  it('logs a lamp or latch write the column refused, and stores the alarm all the same', async () => {
    const r = rig();
    r.fail.indicator = true;
    r.fail.latch = true;
    r.edge('button', true);
    await flush();
    expect(r.stored).toHaveLength(1);
    expect(r.logged('could not set indicator')).toContainEqual(
      expect.objectContaining({ terminal: 'c1', indicator: 'sent', err: expect.objectContaining({ message: 'column did not answer' }) }),
    );
    expect(r.logged('could not reset latch')).toEqual([
      expect.objectContaining({ terminal: 'c1', input: 'button', err: expect.objectContaining({ message: 'latch write failed' }) }),
    ]);
  });

  it('stores alarms of a terminal whose column is missing from the device port, with no lamp to light', async () => {
    const r = rig({ columns: [] });
    r.edge('button', true);
    await vi.advanceTimersByTimeAsync(timing.ackTimeoutMs);
    expect(r.stored).toHaveLength(1);
    expect(r.overdue).toHaveLength(1);
    expect(r.lines.filter((l) => l.level >= 50)).toEqual([]);
  });

  it('stops: no ack timer fires and no press is taken after stop()', async () => {
    const r = rig();
    r.edge('button', true);
    await flush();
    r.service.stop();
    r.commands.length = 0;
    await vi.advanceTimersByTimeAsync(timing.ackTimeoutMs * 2);
    r.edge('button', false, Date.now());
    r.edge('button', true, Date.now() + 100);
    expect(r.overdue).toEqual([]);
    expect(r.commands).toEqual([]);
    expect(r.stored).toHaveLength(1);
  });
});

describe('AlarmService and an alarm row that no longer reads as an alarm', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-11-29T05:00:00Z'));
  });
  afterEach(() => vi.useRealTimers());

  const untrusted = { state: () => ({ trusted: false, source: 'none' as const, correctionMs: 0 }), monotonic: () => Date.now() };

  /** A column raised an alarm (on a clock not yet trusted), then its stored row was damaged: presses no longer a number. */
  async function damaged(options: { restart?: boolean } = {}) {
    const unreadable: string[] = [];
    const more = { clock: untrusted, onUnreadable: (e: { message: string }) => unreadable.push(e.message) };
    const first = rig({ more });
    first.edge('button', true);
    await flush();
    const record = first.stored[0]!;
    first.outbox.updatePayload(record.id, { ...record.payload, presses: 'many' });
    if (!options.restart) return { r: first, record, unreadable };
    first.service.stop();
    return { r: rig({ outbox: first.outbox, more }), record, unreadable };
  }

  it('on its ack: names the row and what cannot be done, tells onUnreadable, and throws nothing', async () => {
    const { r, record, unreadable } = await damaged();
    expect(() => r.service.acknowledged(r.outbox.ackMany([record.id], Date.now())[0]!)).not.toThrow();
    expect(unreadable).toEqual([
      expect.stringMatching(new RegExp(`^outbox alarm record ${record.id} \\(seq 1\\) is unreadable: payload\\.presses: `)),
    ]);
    expect(r.logged('stored alarm unreadable; acknowledged, but its column cannot be told')).toEqual([
      expect.objectContaining({ level: 50, alarmId: record.id, seq: 1, err: expect.objectContaining({ message: unreadable[0] }) }),
    ]);
  });

  it('ignores the ack of a fault, and of an alarm of a column it does not have', async () => {
    const r = rig();
    const fault = r.outbox.append({ stream: 'fault', id: 'f1', subject: 'c1:offline', now: Date.now(), build: () => ({ anything: true }) });
    r.service.acknowledged(r.outbox.ackMany([fault.id], Date.now())[0]!);
    const other = rig({ terminals: [{ id: 'c9', label: 'elsewhere', testMode: false }], columns: ['c9'] });
    other.edge('button', true, Date.now(), 'c9');
    await flush();
    expect(() => r.service.acknowledged({ ...other.stored[0]!, ackedAt: Date.now() })).not.toThrow();
    expect(r.lines.filter((l) => l.level >= 50)).toEqual([]);
    expect(r.commands).toEqual(['c1 indicator off']);
  });

  it('on a clock correction: logs that its time cannot be corrected, and leaves the row as it is', async () => {
    const { r, record } = await damaged();
    expect(() => r.service.clockCorrected()).not.toThrow();
    expect(r.logged('stored alarm unreadable; its time cannot be corrected')).toEqual([expect.objectContaining({ alarmId: record.id })]);
    expect(r.outbox.get(record.id)!.payload['presses']).toBe('many');
  });

  it('after a restart inside the ack timeout: shows sent, arms no ack timer, and says there will be no local alarm', async () => {
    const { r, record, unreadable } = await damaged({ restart: true });
    expect(r.commands).toEqual(['c1 indicator sent']);
    await vi.advanceTimersByTimeAsync(timing.ackTimeoutMs * 2);
    expect(r.overdue).toEqual([]);
    expect(r.logged('ack timer failed')).toEqual([]);
    expect(r.logged('stored alarm unreadable; no local alarm if the county does not ack it')).toEqual([
      expect.objectContaining({ alarmId: record.id }),
    ]);
    expect(unreadable).toHaveLength(1);
  });
});

describe('AlarmService restart and clock', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-11-29T05:00:00Z'));
  });
  afterEach(() => vi.useRealTimers());

  it('after a restart inside the ack timeout shows sent, and turns not-received when the rest of the timeout passes', async () => {
    const first = rig();
    first.edge('button', true);
    await flush();
    first.service.stop();
    await vi.advanceTimersByTimeAsync(4000);
    const second = rig({ outbox: first.outbox });
    expect(second.commands).toEqual(['c1 indicator sent']);
    await vi.advanceTimersByTimeAsync(timing.ackTimeoutMs - 4000 - 1);
    expect(second.overdue).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(second.overdue.map((a) => a.id)).toEqual([first.stored[0]!.id]);
    expect(second.commands.at(-1)).toBe('c1 indicator not-received');
  });

  it('after a restart exactly at the ack timeout shows not-received', async () => {
    const first = rig();
    first.edge('button', true);
    await flush();
    first.service.stop();
    await vi.advanceTimersByTimeAsync(timing.ackTimeoutMs);
    const second = rig({ outbox: first.outbox });
    expect(second.commands).toEqual(['c1 indicator not-received']);
  });

  it('after a restart at or past the ack timeout does not sound the local alarm again: the red lamp says it', async () => {
    // Decided (issue 13): the local alarm sounded, or was due, before the restart. A restart can come days
    // later (a county down for long), and an old alarm sounding again at every restart, at any hour, would
    // teach the village to ignore the loudspeakers; the column's red lamp tells the villager it is not received.
    const first = rig();
    first.edge('button', true);
    await flush();
    first.service.stop();
    for (const pastMs of [0, 1, 3 * 24 * 3600_000]) {
      await vi.advanceTimersByTimeAsync(timing.ackTimeoutMs + pastMs);
      const again = rig({ outbox: first.outbox });
      await vi.advanceTimersByTimeAsync(timing.ackTimeoutMs);
      expect(again.overdue).toEqual([]);
      expect(again.commands).toEqual(['c1 indicator not-received']);
      again.service.stop();
    }
  });

  it('corrects the time of an alarm raised on an untrusted clock from the monotonic time of the press, and logs it', async () => {
    let trusted = false;
    let offsetMs = 0;
    // The monotonic clock counts from boot, not from the epoch, and the press is seen 300 ms after it happened.
    const bootMs = 7_000_000;
    const mono0 = Date.now();
    const clock = {
      state: () => ({ trusted, source: trusted ? ('county' as const) : ('none' as const), correctionMs: offsetMs }),
      monotonic: () => bootMs + (Date.now() - mono0),
    };
    const r = rig({ more: { clock, now: () => Date.now() + offsetMs } });
    const pressedAt = Date.now() - 300;
    r.edge('button', true, pressedAt);
    await vi.advanceTimersByTimeAsync(2000);
    const raised = r.payload(0);
    trusted = true;
    offsetMs = 10 * 60_000;
    r.service.clockCorrected();
    const corrected = r.payload(0);
    expect(Date.parse(corrected.raisedAt)).toBe(pressedAt + offsetMs);
    expect(r.logged('alarm time corrected: the clock is trusted now')).toEqual([
      expect.objectContaining({ alarmId: raised.id, was: raised.raisedAt, raisedAt: corrected.raisedAt }),
    ]);
  });

  it('leaves alarms alone on a clock correction when it has no clock, when they were acked, or when they are gone', async () => {
    expect(() => rig().service.clockCorrected()).not.toThrow();
    const clock = { state: () => ({ trusted: false, source: 'none' as const, correctionMs: 0 }), monotonic: () => Date.now() };
    const outbox = createMemoryOutbox();
    const get = outbox.get.bind(outbox);
    let hidden: string | undefined;
    outbox.get = (id) => (id === hidden ? undefined : get(id));
    const r = rig({ terminals: [gate, { id: 'c2', label: 'school', testMode: false }], outbox, more: { clock } });
    r.edge('button', true);
    r.edge('button', true, Date.now(), 'c2');
    await flush();
    const before = [r.payload(0), r.payload(1)];
    r.outbox.ackMany([r.stored[0]!.id], Date.now());
    hidden = r.stored[1]!.id;
    expect(() => r.service.clockCorrected()).not.toThrow();
    hidden = undefined;
    expect([r.payload(0), r.payload(1)]).toEqual(before);
    expect(r.logged('alarm time corrected: the clock is trusted now')).toEqual([]);
  });
});
