import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AlarmService, type AlarmServiceOptions, type Terminal } from '../../src/alarm/alarm-service.ts';
import { alarmPayloadSchema, type AlarmPayload } from '../../src/contract/payloads.ts';
import type { OutboxRecord } from '../../src/store/types.ts';
import { createMemoryOutbox } from '../../src/store/memory-outbox.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { simulatedPort } from '../support/simulated-port.ts';

const timing = { debounceMs: 30, ackTimeoutMs: 10_000, indicatorHoldMs: 60_000 };
const village = { id: 'v1', name: 'Village One', location: { lat: 25.04, lon: 102.71 } };

function setup(
  terminals: Terminal[] = [{ id: 'c1', label: 'gate', testMode: false }],
  outbox = createMemoryOutbox(),
  clock?: AlarmServiceOptions['clock'],
  now?: () => number,
) {
  const { logger, lines } = memoryLogger();
  const sim = simulatedPort(
    terminals.map((t) => t.id),
    logger,
  );
  const stored: OutboxRecord[] = [];
  const overdue: AlarmPayload[] = [];
  const service = new AlarmService({
    village,
    terminals,
    devices: sim.port,
    outbox,
    timing,
    logger,
    onStored: (r) => stored.push(r),
    onAckOverdue: (a) => overdue.push(a),
    ...(clock === undefined ? {} : { clock }),
    ...(now === undefined ? {} : { now }),
  });
  sim.listen((e) => service.handleDeviceEvent(e));
  service.start();
  return { service, sim, outbox, stored, overdue, lines };
}

const flush = () => vi.advanceTimersByTimeAsync(0);

describe('AlarmService', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-11-29T05:00:00Z'));
  });
  afterEach(() => vi.useRealTimers());

  it('stores one alarm per press, with every contract field, then shows sent and resets the latch', async () => {
    const { sim, outbox, stored } = setup();
    sim.device('c1').press();
    await flush();
    expect(stored).toHaveLength(1);
    const alarm = alarmPayloadSchema.parse(stored[0]!.payload);
    expect(alarm).toMatchObject({ seq: 1, village: 'v1', terminal: 'c1', type: 'button', attempt: 1, presses: 1 });
    expect(alarm.location).toMatchObject({ village: 'Village One', terminal: 'gate', lat: 25.04 });
    expect(alarm.raisedAt).toMatch(/^2026-11-29T\d\d:00:00\.000([+-]\d\d:\d\d|Z)$/);
    expect(outbox.get(alarm.id)).toBeDefined();
    // `off` at start (nothing open); then stored first, and only then is the column told: reset of the latch and the `sent` lamp.
    expect(sim.device('c1').commands).toEqual(['indicator off', 'reset button', 'indicator sent']);
  });

  it('counts presses during an open alarm on it instead of raising more', async () => {
    const { sim, outbox, stored } = setup();
    for (let i = 0; i < 5; i++) {
      sim.device('c1').press();
      await vi.advanceTimersByTimeAsync(500);
    }
    expect(stored).toHaveLength(1);
    expect((outbox.get(stored[0]!.id)!.payload as AlarmPayload).presses).toBe(5);
  });

  it('raises a new alarm for a press when the open one no longer reads as an alarm, and names the row', async () => {
    const { logger, lines } = memoryLogger();
    const sim = simulatedPort(['c1'], logger);
    const outbox = createMemoryOutbox();
    const unreadable: string[] = [];
    const stored: OutboxRecord[] = [];
    const service = new AlarmService({
      village,
      terminals: [{ id: 'c1', label: 'gate', testMode: false }],
      devices: sim.port,
      outbox,
      timing,
      logger,
      onStored: (r) => stored.push(r),
      onUnreadable: (error) => unreadable.push(error.message),
    });
    sim.listen((e) => service.handleDeviceEvent(e));
    service.start();
    sim.device('c1').press();
    await vi.advanceTimersByTimeAsync(500);
    const first = stored[0]!;
    outbox.updatePayload(first.id, { ...first.payload, presses: 'many' });
    sim.device('c1').press();
    await vi.advanceTimersByTimeAsync(500);
    expect(stored).toHaveLength(2);
    expect(alarmPayloadSchema.parse(stored[1]!.payload).presses).toBe(1);
    expect(unreadable).toEqual([
      `outbox alarm record ${first.id} (seq 1) is unreadable: payload.presses: Invalid input: expected number, received string`,
    ]);
    expect(lines.some((l) => l.msg === 'stored alarm unreadable; a new alarm is raised for this press instead')).toBe(true);
  });

  it('counts presses after a copy went out in follow-up alarms, so the county can never ack away a count', async () => {
    const { sim, outbox, stored } = setup();
    const press = async () => {
      sim.device('c1').press();
      await vi.advanceTimersByTimeAsync(500);
    };
    await press();
    await press();
    expect(stored).toHaveLength(1);
    // Delivery publishes it (the attempt is recorded before the publish): from now on a count travels anew.
    outbox.recordAttempts([{ id: stored[0]!.id, attempts: 1, nextAttemptAt: Date.now() + 5000 }]);
    await press();
    await press();
    expect(stored).toHaveLength(2);
    const original = alarmPayloadSchema.parse(outbox.get(stored[0]!.id)!.payload);
    const followUp = alarmPayloadSchema.parse(outbox.get(stored[1]!.id)!.payload);
    expect(original.presses).toBe(2);
    expect(followUp).toMatchObject({ followUpOf: original.id, presses: 4, terminal: 'c1', type: 'button', seq: 2 });
    // The follow-up published too: the next press is a second follow-up of the same alarm.
    outbox.recordAttempts([{ id: stored[1]!.id, attempts: 1, nextAttemptAt: Date.now() + 5000 }]);
    await press();
    expect(alarmPayloadSchema.parse(stored[2]!.payload)).toMatchObject({ followUpOf: original.id, presses: 5 });
    // The lamp and the ack timer belong to the alarm, not to each follow-up.
    expect(sim.device('c1').commands.filter((c) => c.startsWith('indicator'))).toEqual(['indicator off', 'indicator sent']);
  });

  it('says an alarm was raised on an untrusted clock, and corrects its time when the clock is trusted', async () => {
    let trusted = false;
    let offsetMs = 0;
    const clock = {
      state: () => ({ trusted, source: trusted ? ('county' as const) : ('none' as const), correctionMs: offsetMs }),
      monotonic: () => performance.now(),
    };
    // The app's `now` is trusted time: the wall clock plus whatever the county's time corrected it by.
    const { sim, outbox, stored, service } = setup(undefined, undefined, clock, () => Date.now() + offsetMs);
    sim.device('c1').press();
    await vi.advanceTimersByTimeAsync(2000);
    const raised = alarmPayloadSchema.parse(outbox.get(stored[0]!.id)!.payload);
    expect(raised.clockTrusted).toBe(false);
    // A verified county command shows the clock was 10 minutes behind.
    trusted = true;
    offsetMs = 10 * 60_000;
    service.clockCorrected();
    const corrected = alarmPayloadSchema.parse(outbox.get(stored[0]!.id)!.payload);
    expect(corrected.clockTrusted).toBeUndefined();
    const shiftMs = Date.parse(corrected.raisedAt) - Date.parse(raised.raisedAt);
    expect(Math.abs(shiftMs - offsetMs)).toBeLessThan(50);
    // Raised on a trusted clock: no flag.
    service.acknowledged(outbox.ackMany([stored[0]!.id], Date.now())[0]!);
    sim.device('c1').press();
    await vi.advanceTimersByTimeAsync(500);
    expect(alarmPayloadSchema.parse(stored[1]!.payload).clockTrusted).toBeUndefined();
  });

  it('ignores a bounce inside the debounce time', async () => {
    const { sim, stored, outbox, service } = setup();
    const device = sim.device('c1');
    device.setInput('button', true);
    await vi.advanceTimersByTimeAsync(5);
    // The latch reset released it; a chattering contact now re-closes within 30 ms.
    device.setInput('button', true);
    await flush();
    expect(stored).toHaveLength(1);
    expect((outbox.get(stored[0]!.id)!.payload as AlarmPayload).presses).toBe(1);
    service.stop();
  });

  it('shows received on ack, then goes dark after the hold time', async () => {
    const { sim, outbox, stored, service } = setup();
    sim.device('c1').press();
    await flush();
    service.acknowledged(outbox.ackMany([stored[0]!.id], Date.now())[0]!);
    await flush();
    expect(sim.device('c1').indicator).toBe('received');
    await vi.advanceTimersByTimeAsync(timing.indicatorHoldMs);
    expect(sim.device('c1').indicator).toBe('off');
  });

  it('shows not-received when no ack comes within the ack timeout, and says so', async () => {
    const { sim, overdue, lines } = setup();
    sim.device('c1').press();
    await vi.advanceTimersByTimeAsync(timing.ackTimeoutMs - 1);
    expect(sim.device('c1').indicator).toBe('sent');
    await vi.advanceTimersByTimeAsync(1);
    expect(sim.device('c1').indicator).toBe('not-received');
    expect(overdue).toHaveLength(1);
    expect(lines.some((l) => l.msg === 'no ack from county within the ack timeout')).toBe(true);
  });

  it('keeps an ack timer whose local alarm throws from ending the process; the column still shows not-received', async () => {
    const { logger, lines } = memoryLogger();
    const sim = simulatedPort(['c1', 'c2'], logger);
    const service = new AlarmService({
      village,
      terminals: [
        { id: 'c1', label: 'gate', testMode: false },
        { id: 'c2', label: 'school', testMode: false },
      ],
      devices: sim.port,
      outbox: createMemoryOutbox(),
      timing,
      logger,
      onStored: () => undefined,
      onAckOverdue: () => {
        throw new Error('broadcast controller gone');
      },
    });
    sim.listen((e) => service.handleDeviceEvent(e));
    service.start();
    sim.device('c1').press();
    sim.device('c2').press();
    // Before the ack timer was contained, the throw escaped the timer here (and ended the service).
    await vi.advanceTimersByTimeAsync(timing.ackTimeoutMs);
    expect([sim.device('c1').indicator, sim.device('c2').indicator]).toEqual(['not-received', 'not-received']);
    expect(lines.filter((l) => l.msg === 'ack timer failed')).toHaveLength(2);
  });

  it('raises a new alarm for a press after the previous one was acknowledged', async () => {
    const { sim, outbox, stored, service } = setup();
    sim.device('c1').press();
    await vi.advanceTimersByTimeAsync(1000);
    service.acknowledged(outbox.ackMany([stored[0]!.id], Date.now())[0]!);
    sim.device('c1').press();
    await vi.advanceTimersByTimeAsync(1000);
    expect(stored.map((r) => r.seq)).toEqual([1, 2]);
    expect(sim.device('c1').indicator).toBe('sent');
  });

  it('raises tamper as its own type without touching the lamp, and test alarms in test mode', async () => {
    const { sim, stored } = setup([
      { id: 'c1', label: 'gate', testMode: false },
      { id: 'c2', label: 'school', testMode: true },
    ]);
    sim.device('c1').press('tamper');
    sim.device('c2').press();
    await flush();
    expect(stored.map((r) => (r.payload as AlarmPayload).type)).toEqual(['tamper', 'test']);
    expect(sim.device('c1').indicator).toBe('off');
    expect(sim.device('c2').indicator).toBe('sent');
  });

  it('restores the lamp of an open alarm after a restart', async () => {
    const first = setup();
    first.sim.device('c1').press();
    await flush();
    first.service.stop();
    await vi.advanceTimersByTimeAsync(timing.ackTimeoutMs + 1);
    const second = setup(undefined, first.outbox);
    await flush();
    expect(second.sim.device('c1').indicator).toBe('not-received');
    second.sim.device('c1').press();
    await flush();
    expect(second.stored).toHaveLength(0);
  });

  it('shows the lamp again when a column that lost power comes back', async () => {
    const { sim } = setup();
    sim.device('c1').press();
    await flush();
    sim.device('c1').setOnline(false);
    sim.device('c1').setOnline(true);
    await flush();
    expect(sim.device('c1').commands.filter((c) => c === 'indicator sent')).toHaveLength(2);
  });
});
