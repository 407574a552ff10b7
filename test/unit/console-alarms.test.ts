import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AlarmService, type Terminal } from '../../src/alarm/alarm-service.ts';
import { alarmPayloadSchema } from '../../src/contract/payloads.ts';
import { recentAlarms } from '../../src/console/recent-alarms.ts';
import { MemoryOutbox } from '../../src/store/memory-outbox.ts';
import type { OutboxRecord } from '../../src/store/types.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { simulatedPort } from '../support/simulated-port.ts';

// The alarms page's list and the installer's test alarm, on the real AlarmService with the in-memory outbox.
const timing = { debounceMs: 30, ackTimeoutMs: 10_000, indicatorHoldMs: 60_000 };
const village = { id: 'v1', name: 'Village One', location: { lat: 25.04, lon: 102.71 } };

function setup(
  terminals: Terminal[] = [
    { id: 'c1', label: 'gate', testMode: false },
    { id: 'c2', label: 'school', testMode: true },
  ],
) {
  const { logger, lines } = memoryLogger();
  const sim = simulatedPort(
    terminals.map((t) => t.id),
    logger,
  );
  const outbox = new MemoryOutbox();
  const stored: OutboxRecord[] = [];
  const overdue: string[] = [];
  const service = new AlarmService({
    village,
    terminals,
    devices: sim.port,
    outbox,
    timing,
    logger,
    onStored: (r) => stored.push(r),
    onAckOverdue: (a) => overdue.push(a.id),
  });
  sim.listen((e) => service.handleDeviceEvent(e));
  service.start();
  const list = (limit = 10) => recentAlarms({ outbox, limit, ackTimeoutMs: timing.ackTimeoutMs, now: Date.now, logger });
  /** The county acks, as delivery tells the service. */
  const ack = (id: string) => {
    for (const record of outbox.ackMany([id], Date.now())) service.acknowledged(record);
  };
  /** Delivery published it: later presses become a follow-up. */
  const published = (id: string) => outbox.recordAttempts([{ id, attempts: 1, nextAttemptAt: Date.now() + 5000 }]);
  return { service, sim, outbox, stored, overdue, list, ack, published, lines };
}

const flush = () => vi.advanceTimersByTimeAsync(0);

describe('recent alarms for the console', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-12-08T02:00:00Z'));
  });
  afterEach(() => vi.useRealTimers());

  it('lists alarms newest first: sent, received once acked, not-received once the ack is overdue', async () => {
    const r = setup();
    r.sim.device('c1').press();
    await vi.advanceTimersByTimeAsync(4000);
    r.sim.device('c2').press();
    await flush();
    const [first, second] = r.stored.map((s) => s.id);
    expect(r.list().map((a) => [a.id, a.state])).toEqual([
      [second, 'sent'],
      [first, 'sent'],
    ]);
    r.ack(second!);
    await vi.advanceTimersByTimeAsync(6500);
    const [newest, oldest] = r.list();
    expect(newest).toMatchObject({ id: second, terminal: 'c2', terminalLabel: 'school', type: 'test', presses: 1, state: 'received' });
    expect(newest?.ackedAt).toMatch(/^2026-12-08T\d\d:00:04\.000/);
    expect(oldest).toMatchObject({ id: first, terminal: 'c1', terminalLabel: 'gate', type: 'button', state: 'not-received', ackedAt: null });
    expect(oldest?.raisedAt).toMatch(/^2026-12-08T\d\d:00:00\.000/);
    expect(r.list(1).map((a) => a.id)).toEqual([second]);
  });

  it('folds follow-ups into the alarm they continue, with the highest count, received when any copy was acked', async () => {
    const r = setup();
    r.sim.device('c1').press();
    await vi.advanceTimersByTimeAsync(500);
    const firstId = r.stored[0]!.id;
    r.published(firstId);
    for (let i = 0; i < 3; i++) {
      r.sim.device('c1').press();
      await vi.advanceTimersByTimeAsync(500);
    }
    expect(r.stored.length).toBeGreaterThan(1);
    const listed = r.list();
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ id: firstId, presses: 4, state: 'sent' });
    r.ack(r.stored.at(-1)!.id);
    expect(r.list()[0]).toMatchObject({ id: firstId, presses: 4, state: 'received' });
  });

  it('leaves a damaged row out and says so in the log, listing the rest', async () => {
    const r = setup();
    r.sim.device('c1').press();
    await flush();
    r.outbox.append({ stream: 'alarm', id: 'broken', subject: 'c9:button', now: Date.now(), build: (seq) => ({ seq, nonsense: true }) });
    expect(r.list().map((a) => a.terminal)).toEqual(['c1']);
    expect(r.lines.some((l) => l.msg === 'stored alarm unreadable: left out of the console list')).toBe(true);
  });
});

describe('AlarmService.raiseTest (installer test alarm)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-12-08T02:00:00Z'));
  });
  afterEach(() => vi.useRealTimers());

  it('stores a test alarm as a press in test mode would, tells delivery, shows sent, and resets no latch', async () => {
    const r = setup();
    await flush();
    r.sim.device('c1').commands.length = 0;
    const result = r.service.raiseTest('c1');
    expect(result.ok).toBe(true);
    const id = result.ok ? result.id : '';
    expect(r.stored.map((s) => s.id)).toEqual([id]);
    const alarm = alarmPayloadSchema.parse(r.outbox.get(id)!.payload);
    expect(alarm).toMatchObject({ terminal: 'c1', type: 'test', presses: 1, village: 'v1', location: { terminal: 'gate' } });
    await flush();
    expect(r.sim.device('c1').commands).toEqual(['indicator sent']);
    r.ack(id);
    await flush();
    expect(r.sim.device('c1').commands).toEqual(['indicator sent', 'indicator received']);
    expect(r.overdue).toEqual([]);
  });

  it('counts a second test on the open one, as a second press would be', () => {
    const r = setup();
    const first = r.service.raiseTest('c1');
    const second = r.service.raiseTest('c1');
    expect(second).toEqual(first);
    expect(r.stored).toHaveLength(1);
    expect(alarmPayloadSchema.parse(r.outbox.get(r.stored[0]!.id)!.payload).presses).toBe(2);
  });

  it('refuses an unknown column, and a column whose real alarm waits for the county', async () => {
    const r = setup();
    expect(r.service.raiseTest('nope')).toEqual({ ok: false, reason: 'no alarm column "nope"' });
    r.sim.device('c1').press();
    await flush();
    expect(r.service.raiseTest('c1')).toMatchObject({ ok: false, reason: expect.stringMatching(/real alarm .* waiting for the county/) });
    expect(r.stored).toHaveLength(1);
    r.service.stop();
    expect(r.service.raiseTest('c1')).toEqual({ ok: false, reason: 'the alarm service is not running' });
  });

  it('does not let the ack of a test silence a real alarm raised after it: its ack timer still fires', async () => {
    const r = setup();
    const test = r.service.raiseTest('c1');
    await vi.advanceTimersByTimeAsync(1000);
    r.sim.device('c1').press();
    await flush();
    const real = r.stored.at(-1)!.id;
    r.ack(test.ok ? test.id : '');
    await vi.advanceTimersByTimeAsync(timing.ackTimeoutMs);
    expect(r.overdue).toEqual([real]);
    expect(r.sim.device('c1').commands.at(-1)).toBe('indicator not-received');
  });
});
