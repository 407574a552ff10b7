import { Delivery, type DeliveryOptions } from '../../src/county/delivery.ts';
import type { Uplink } from '../../src/county/types.ts';
import { createMemoryOutbox } from '../../src/store/memory-outbox.ts';
import type { OutboxRecord } from '../../src/store/types.ts';
import { memoryLogger } from './log-sink.ts';

/**
 * Delivery over `uplink` (a test's fake) and an outbox in memory, with what it acked and logged recorded:
 * retries from 5 s to 60 s, a window of 4, the clock read at each call (so fake timers move it). `more`
 * replaces any of those; `start` false leaves starting it to the test.
 */
export function deliveryOver<U extends Uplink>(uplink: U, more: Partial<DeliveryOptions> = {}, start = true) {
  const outbox = createMemoryOutbox();
  const acked: OutboxRecord[] = [];
  const { logger, lines } = memoryLogger();
  const delivery = new Delivery({
    outbox,
    uplink,
    retry: { initialMs: 5000, maxMs: 60000 },
    logger,
    onAcked: (r) => acked.push(r),
    window: 4,
    now: () => Date.now(),
    ...more,
  });
  if (start) delivery.start();
  const logged = (msg: string) => lines.filter((l) => l.msg === msg);
  return { outbox, uplink, delivery, acked, lines, logged };
}
