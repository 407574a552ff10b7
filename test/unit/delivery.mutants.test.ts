import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { DeliveryOptions } from '../../src/county/delivery.ts';
import type { PayloadOf } from '../../src/county/topics.ts';
import type { PublishedKind, PublishOptions, Uplink, UplinkEvents } from '../../src/county/types.ts';
import type { Outbox, OutboxRecord, OutboxStream } from '../../src/store/types.ts';
import { sampleRecordPayload } from '../support/link-fixtures.ts';
import { deliveryOver } from '../support/delivery-rig.ts';

// Delivery with an uplink whose PUBACKs the test hands out one by one: the window, its refill, the early
// send, acks that cannot be stored, and a pass that re-enters itself.

interface Sent {
  stream: PublishedKind;
  seq: unknown;
  attempt: unknown;
  options: PublishOptions | undefined;
  puback: () => void;
  fail: (error: Error) => void;
}

class ManualUplink implements Uplink {
  connected = true;
  readonly sent: Sent[] = [];
  /** Called inside publishRecord, before it returns: what a listener reached synchronously would do. */
  duringPublish: ((stream: PublishedKind, payload: Record<string, unknown>) => void) | undefined;
  private readonly events = new EventEmitter();
  start() {}
  async stop() {}
  publish<K extends PublishedKind>(stream: K, payload: PayloadOf<K>, options?: PublishOptions): Promise<void> {
    const fields: Record<string, unknown> = payload;
    return new Promise((resolve, reject) => {
      this.sent.push({ stream, seq: fields['seq'], attempt: fields['attempt'], options, puback: () => resolve(), fail: reject });
      this.duringPublish?.(stream, fields);
    });
  }
  hurry() {}
  on<E extends keyof UplinkEvents>(event: E, listener: UplinkEvents[E]) {
    this.events.on(event, listener);
  }
  /** `<stream>:<seq>` of everything published so far. */
  get labels(): string[] {
    return this.sent.map((s) => `${s.stream}:${String(s.seq)}`);
  }
}

function append(outbox: Outbox, stream: OutboxStream, n: number): OutboxRecord[] {
  return Array.from({ length: n }, () => {
    const id = `${stream}-${outbox.stats().byStream[stream] + 1}-${Math.random()}`;
    return outbox.append({ stream, id, subject: 's', now: Date.now(), build: (seq) => sampleRecordPayload(stream, seq) });
  });
}

function rig(more: Partial<DeliveryOptions> = {}, start = true) {
  return deliveryOver(new ManualUplink(), more, start);
}

const settle = () => vi.advanceTimersByTimeAsync(0);

describe('Delivery window', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('delivers reports too, after alarms and faults', () => {
    const r = rig();
    append(r.outbox, 'report', 1);
    append(r.outbox, 'fault', 1);
    append(r.outbox, 'alarm', 1);
    r.delivery.kick();
    expect(r.uplink.labels).toEqual(['alarm:1', 'fault:1', 'report:1']);
    r.delivery.stop();
  });

  it('fills the window from the next stream in the same pass when the first has fewer waiting', () => {
    const r = rig();
    append(r.outbox, 'alarm', 2);
    append(r.outbox, 'fault', 3);
    r.delivery.kick();
    expect(r.uplink.labels).toEqual(['alarm:1', 'alarm:2', 'fault:1', 'fault:2']);
    r.delivery.stop();
  });

  it('never has more than the window unacknowledged by the broker, however long it waits', async () => {
    const r = rig();
    append(r.outbox, 'alarm', 10);
    r.delivery.kick();
    await vi.advanceTimersByTimeAsync(3000);
    expect(r.uplink.labels).toEqual(['alarm:1', 'alarm:2', 'alarm:3', 'alarm:4']);
    r.delivery.stop();
  });

  it('refills once half the window is free, not at every PUBACK', async () => {
    const r = rig();
    append(r.outbox, 'alarm', 10);
    r.delivery.kick();
    r.uplink.sent[0]!.puback();
    await settle();
    expect(r.uplink.sent).toHaveLength(4);
    r.uplink.sent[1]!.puback();
    await settle();
    expect(r.uplink.labels.slice(4)).toEqual(['alarm:5', 'alarm:6']);
    r.delivery.stop();
  });

  it('commits nothing on a pass that finds nothing due', async () => {
    const r = rig();
    const recordAttempts = vi.spyOn(r.outbox, 'recordAttempts');
    await vi.advanceTimersByTimeAsync(3000);
    expect(recordAttempts).not.toHaveBeenCalled();
    r.delivery.stop();
  });

  it('runs a kick that arrives during a pass after it, so seq order holds', async () => {
    const r = rig({}, false);
    append(r.outbox, 'alarm', 2);
    let once = true;
    r.uplink.duringPublish = () => {
      if (!once) return;
      once = false;
      append(r.outbox, 'alarm', 1);
      r.delivery.kick();
    };
    r.delivery.start();
    expect(r.uplink.labels).toEqual(['alarm:1', 'alarm:2', 'alarm:3']);
    r.delivery.stop();
  });

  it('publishes nothing before start or after stop', () => {
    const r = rig({}, false);
    append(r.outbox, 'alarm', 1);
    r.delivery.kick();
    expect(r.uplink.sent).toEqual([]);
    r.delivery.start();
    expect(r.uplink.sent).toHaveLength(1);
    r.delivery.stop();
    append(r.outbox, 'alarm', 1);
    r.delivery.kick();
    expect(r.uplink.sent).toHaveLength(1);
  });

  it('logs each copy published, and each the broker did not take', async () => {
    const r = rig();
    const [record] = append(r.outbox, 'alarm', 1);
    r.delivery.kick();
    r.uplink.sent[0]!.fail(new Error('link down'));
    await settle();
    await vi.advanceTimersByTimeAsync(5000);
    r.uplink.sent[1]!.puback();
    await settle();
    expect(r.logged('publish failed; will retry')).toEqual([
      expect.objectContaining({ stream: 'alarm', id: record!.id, seq: 1, attempt: 1, err: expect.objectContaining({ message: 'link down' }) }),
    ]);
    expect(r.logged('published')).toEqual([expect.objectContaining({ stream: 'alarm', id: record!.id, seq: 1, attempt: 2 })]);
    r.delivery.stop();
  });
});

describe('Delivery when the store fails', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('logs a pass that failed', () => {
    const r = rig({}, false);
    r.outbox.due = () => {
      throw new Error('SQLITE_IOERR');
    };
    r.delivery.start();
    expect(r.logged('delivery pass failed')).toEqual([expect.objectContaining({ err: expect.objectContaining({ message: 'SQLITE_IOERR' }) })]);
    r.delivery.stop();
  });

  it('publishes a record whose attempt it could not record, then waits out its backoff all the same', async () => {
    const r = rig({}, false);
    append(r.outbox, 'alarm', 1);
    r.outbox.recordAttempts = () => {
      throw new Error('SQLITE_FULL');
    };
    r.delivery.start();
    expect(r.uplink.sent).toHaveLength(1);
    r.uplink.sent[0]!.puback();
    expect(r.logged('attempts not recorded; publishing anyway')).toEqual([
      expect.objectContaining({ stream: 'alarm', records: 1, err: expect.objectContaining({ message: 'SQLITE_FULL' }) }),
    ]);
    await vi.advanceTimersByTimeAsync(4999);
    expect(r.uplink.sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(r.uplink.sent).toHaveLength(2);
    r.delivery.stop();
  });

  it('stops vouching for the watchdog exactly five seconds after the last pass that completed', async () => {
    const r = rig();
    await vi.advanceTimersByTimeAsync(1000);
    const due = r.outbox.due.bind(r.outbox);
    r.outbox.due = () => {
      throw new Error('SQLITE_IOERR');
    };
    await vi.advanceTimersByTimeAsync(4999);
    expect(r.delivery.alive()).toBe(true);
    await vi.advanceTimersByTimeAsync(1);
    expect(r.delivery.alive()).toBe(false);
    r.outbox.due = due;
    r.delivery.stop();
  });
});

describe('Delivery acks', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('stores the acks still gathering when it stops', () => {
    const r = rig();
    const [record] = append(r.outbox, 'alarm', 1);
    r.delivery.acknowledge(record!.id);
    r.delivery.stop();
    expect(r.acked.map((a) => a.id)).toEqual([record!.id]);
    expect(r.outbox.get(record!.id)?.ackedAt).not.toBeNull();
  });

  it('says at debug level how many acks were for unknown or acknowledged records, and nothing when none were', async () => {
    const r = rig();
    const [a, b, c] = append(r.outbox, 'alarm', 3);
    r.delivery.acknowledge(a!.id);
    await vi.advanceTimersByTimeAsync(10);
    r.delivery.acknowledge(b!.id);
    await vi.advanceTimersByTimeAsync(10);
    expect(r.logged('acks for unknown or already acknowledged records')).toEqual([]);
    r.delivery.acknowledge(a!.id);
    r.delivery.acknowledge('never-sent');
    r.delivery.acknowledge(c!.id);
    await vi.advanceTimersByTimeAsync(10);
    expect(r.logged('acks for unknown or already acknowledged records')).toEqual([expect.objectContaining({ unknownOrRepeated: 2 })]);
    expect(r.acked).toHaveLength(3);
    r.delivery.stop();
  });

  it('logs acks it could not store, tells nobody they were acked, and takes the next ones', async () => {
    const r = rig();
    const [a, b] = append(r.outbox, 'alarm', 2);
    const ackMany = r.outbox.ackMany.bind(r.outbox);
    r.outbox.ackMany = () => {
      throw new Error('SQLITE_READONLY');
    };
    r.delivery.acknowledge(a!.id);
    await vi.advanceTimersByTimeAsync(10);
    expect(r.acked).toEqual([]);
    expect(r.logged('could not store acks; the records will be sent again')).toEqual([
      expect.objectContaining({ ids: [a!.id], err: expect.objectContaining({ message: 'SQLITE_READONLY' }) }),
    ]);
    r.outbox.ackMany = ackMany;
    r.delivery.acknowledge(b!.id);
    await vi.advanceTimersByTimeAsync(10);
    expect(r.acked.map((x) => x.id)).toEqual([b!.id]);
    r.delivery.stop();
  });
});

describe('Delivery early send', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  const prepared = (outbox: Outbox, stream: OutboxStream = 'alarm'): OutboxRecord => {
    const id = `early-${Math.random()}`;
    return outbox.prepare({ stream, id, subject: 's', now: Date.now(), build: (seq) => sampleRecordPayload(stream, seq) });
  };

  it('publishes a record about to be committed at once, flushed, and returns it with that first attempt', () => {
    const r = rig();
    const record = prepared(r.outbox);
    const sent = r.delivery.sendEarly(record);
    expect(sent).toEqual({ ...record, attempts: 1, nextAttemptAt: Date.now() + 5000 });
    expect(r.uplink.sent).toEqual([expect.objectContaining({ stream: 'alarm', seq: 1, attempt: 1, options: { flush: true } })]);
    r.delivery.stop();
  });

  it('sends nothing early when not started, when the link is down, or when the window is full', () => {
    const stopped = rig({}, false);
    const record = prepared(stopped.outbox);
    expect(stopped.delivery.sendEarly(record)).toBe(record);
    expect(stopped.uplink.sent).toEqual([]);

    const offline = rig();
    offline.uplink.connected = false;
    const other = prepared(offline.outbox);
    expect(offline.delivery.sendEarly(other)).toBe(other);
    expect(offline.uplink.sent).toEqual([]);
    offline.delivery.stop();

    const full = rig();
    for (let i = 0; i < 4; i++) full.delivery.sendEarly(prepared(full.outbox));
    const fifth = prepared(full.outbox);
    expect(full.delivery.sendEarly(fifth)).toBe(fifth);
    expect(full.uplink.sent).toHaveLength(4);
    full.delivery.stop();
  });

  it('sends nothing early while an older record of its stream waits, so seq order holds', () => {
    const r = rig();
    append(r.outbox, 'alarm', 1);
    const record = prepared(r.outbox);
    expect(r.delivery.sendEarly(record)).toBe(record);
    expect(r.uplink.sent).toEqual([]);
    // Another stream's backlog is no reason to wait.
    const fault = prepared(r.outbox, 'fault');
    expect(r.delivery.sendEarly(fault)).not.toBe(fault);
    r.delivery.stop();
  });
});
