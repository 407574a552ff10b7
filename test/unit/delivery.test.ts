import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EventEmitter } from 'node:events';
import type { DeliveryOptions } from '../../src/county/delivery.ts';
import type { StoredPayloadError } from '../../src/contract/stored.ts';
import type { PayloadOf } from '../../src/county/topics.ts';
import type { PublishedKind, Uplink, UplinkEvents } from '../../src/county/types.ts';
import type { Outbox, OutboxStream } from '../../src/store/types.ts';
import { deliveryOver } from '../support/delivery-rig.ts';
import { sampleAlarm, sampleRecordPayload } from '../support/link-fixtures.ts';

/** An uplink whose broker answers PUBACK at once while "connected". Pure-logic fake. */
class FakeUplink implements Uplink {
  connected = false;
  readonly published: Array<{ stream: PublishedKind; payload: Record<string, unknown>; at: number }> = [];
  private readonly events = new EventEmitter();
  start() {}
  async stop() {}
  async publish<K extends PublishedKind>(kind: K, payload: PayloadOf<K>) {
    if (!this.connected) throw new Error('offline');
    this.published.push({ stream: kind, payload, at: Date.now() });
  }
  hurry() {}
  on<E extends keyof UplinkEvents>(event: E, listener: UplinkEvents[E]) {
    this.events.on(event, listener);
  }
  setConnected(connected: boolean) {
    this.connected = connected;
    this.events.emit(connected ? 'connected' : 'disconnected', 'test');
  }
}

function append(outbox: Outbox, stream: OutboxStream, n: number): void {
  for (let i = 0; i < n; i++) {
    const id = `${stream}-${i}`;
    outbox.append({ stream, id, subject: 's', now: Date.now(), build: (seq) => sampleRecordPayload(stream, seq) });
  }
}

function setup(more: Partial<DeliveryOptions> = {}, start = true) {
  const rig = deliveryOver(new FakeUplink(), more, start);
  return { ...rig, ack: (id: string) => rig.delivery.acknowledge(id) };
}

describe('Delivery', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('publishes nothing while the link is down, then everything in seq order, alarms before faults', async () => {
    const { outbox, uplink, delivery } = setup();
    append(outbox, 'fault', 3);
    append(outbox, 'alarm', 10);
    delivery.kick();
    await vi.advanceTimersByTimeAsync(0);
    expect(uplink.published).toEqual([]);
    uplink.setConnected(true);
    // Refills after PUBACKs are coalesced on setImmediate: a few turns of the loop drain the window.
    await vi.advanceTimersByTimeAsync(10);
    expect(uplink.published.map((p) => `${p.stream}:${p.payload['seq']}`)).toEqual([
      ...Array.from({ length: 10 }, (_, i) => `alarm:${i + 1}`),
      'fault:1',
      'fault:2',
      'fault:3',
    ]);
    expect(uplink.published.every((p) => p.payload['attempt'] === 1)).toBe(true);
    delivery.stop();
  });

  it('republishes unacked records with attempt+1 on 5 s doubling to 60 s, until acked', async () => {
    const { outbox, uplink, delivery, acked, ack } = setup();
    uplink.setConnected(true);
    append(outbox, 'alarm', 1);
    delivery.kick();
    await vi.advanceTimersByTimeAsync(200_000);
    const times = uplink.published.map((p) => p.at);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    // The 1 s tick finds due records, so each gap is the backoff rounded up to the tick.
    expect(gaps.slice(0, 6)).toEqual([5000, 10000, 20000, 40000, 60000, 60000]);
    expect(uplink.published.map((p) => p.payload['attempt'])).toEqual(uplink.published.map((_, i) => i + 1));
    ack('alarm-0');
    await vi.advanceTimersByTimeAsync(0);
    const count = uplink.published.length;
    await vi.advanceTimersByTimeAsync(120_000);
    expect(uplink.published.length).toBe(count);
    expect(acked.map((r) => r.id)).toEqual(['alarm-0']);
    ack('alarm-0');
    await vi.advanceTimersByTimeAsync(0);
    expect(acked).toHaveLength(1);
    delivery.stop();
  });

  it('hands every acked record on, though handling one of them throws, and logs that one', async () => {
    const handled: string[] = [];
    const { outbox, uplink, delivery, lines } = setup({
      onAcked: (r) => {
        if (r.id === 'alarm-0') throw new Error('column-1 cannot be written');
        handled.push(r.id);
      },
    });
    uplink.setConnected(true);
    append(outbox, 'alarm', 3);
    delivery.kick();
    await vi.advanceTimersByTimeAsync(10);
    for (const id of ['alarm-0', 'alarm-1', 'alarm-2']) delivery.acknowledge(id);
    // Uncontained, the throw ended the timer's callback (and the process) before alarm-1 and alarm-2.
    await vi.advanceTimersByTimeAsync(10);
    expect(handled).toEqual(['alarm-1', 'alarm-2']);
    expect(outbox.stats().depth).toBe(0);
    expect(lines.find((l) => l.msg === 'handling an acknowledged record failed')).toMatchObject({
      level: 50,
      err: { message: 'column-1 cannot be written' },
    });
    delivery.stop();
  });

  it('sends at once when the link comes back, not after the backoff', async () => {
    const { outbox, uplink, delivery } = setup();
    uplink.setConnected(true);
    append(outbox, 'alarm', 1);
    delivery.kick();
    await vi.advanceTimersByTimeAsync(0);
    uplink.setConnected(false);
    await vi.advanceTimersByTimeAsync(30_000);
    const before = uplink.published.length;
    uplink.setConnected(true);
    await vi.advanceTimersByTimeAsync(0);
    expect(uplink.published.length).toBe(before + 1);
    delivery.stop();
  });

  it('vouches for the watchdog only while its once-a-second pass runs: not before start, not after a stall, not after stop', async () => {
    const { outbox, uplink, delivery } = setup({ window: 256, onAcked: () => undefined }, false);
    expect(delivery.alive()).toBe(false);
    uplink.setConnected(true);
    delivery.start();
    expect(delivery.alive()).toBe(true);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(delivery.alive()).toBe(true);
    // A pass that cannot complete (the store throws) for five seconds: the watchdog is withheld.
    const stats = outbox.due.bind(outbox);
    outbox.due = () => {
      throw new Error('SQLITE_IOERR');
    };
    await vi.advanceTimersByTimeAsync(4000);
    expect(delivery.alive()).toBe(true);
    await vi.advanceTimersByTimeAsync(1500);
    expect(delivery.alive()).toBe(false);
    outbox.due = stats;
    await vi.advanceTimersByTimeAsync(1000);
    expect(delivery.alive()).toBe(true);
    delivery.stop();
    expect(delivery.alive()).toBe(false);
  });

  it("publishes nothing that does not read as its stream's payload, names the row, tells once, and sends the rest", async () => {
    const unreadable: StoredPayloadError[] = [];
    const retry = { initialMs: 1000, maxMs: 1000 };
    const { outbox, uplink, delivery, lines } = setup(
      { retry, window: 256, onAcked: () => undefined, onUnreadable: (e) => unreadable.push(e) },
      false,
    );
    outbox.append({ stream: 'alarm', id: 'torn', subject: 's', now: Date.now(), build: (seq) => ({ ...sampleAlarm('v1'), seq, presses: 'many' }) });
    append(outbox, 'alarm', 1);
    uplink.setConnected(true);
    delivery.start();
    await vi.advanceTimersByTimeAsync(3500);
    expect([...new Set(uplink.published.map((p) => p.payload['seq']))]).toEqual([2]);
    expect(unreadable.map((e) => e.message)).toEqual([
      'outbox alarm record torn (seq 1) is unreadable: payload.presses: Invalid input: expected number, received string',
    ]);
    const logged = lines.filter((l) => l.msg === 'stored record unreadable; not published');
    expect(logged.length).toBeGreaterThan(1);
    expect(logged[0]).toMatchObject({ level: 50, stream: 'alarm', id: 'torn', seq: 1, err: { message: unreadable[0]!.message } });
    delivery.stop();
  });

  it('skips an unreadable record without a listener for it, and its pass goes on', async () => {
    const retry = { initialMs: 1000, maxMs: 1000 };
    const { outbox, uplink, delivery, lines } = setup({ retry, window: 256, onAcked: () => undefined }, false);
    outbox.append({ stream: 'alarm', id: 'torn', subject: 's', now: Date.now(), build: (seq) => ({ ...sampleAlarm('v1'), seq, presses: 'many' }) });
    append(outbox, 'alarm', 1);
    uplink.setConnected(true);
    delivery.start();
    await vi.advanceTimersByTimeAsync(10);
    expect(uplink.published.map((p) => p.payload['seq'])).toEqual([2]);
    expect(lines.filter((l) => l.msg === 'delivery pass failed')).toEqual([]);
    delivery.stop();
  });
});
