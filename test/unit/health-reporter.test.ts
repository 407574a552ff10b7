import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HealthReporter, type HealthSources } from '../../src/county/health-reporter.ts';
import type { HealthPayload } from '../../src/contract/payloads.ts';
import type { Uplink, UplinkEvents } from '../../src/county/types.ts';
import { createMemoryOutbox } from '../../src/store/memory-outbox.ts';
import { memoryLogger } from '../support/log-sink.ts';

/** A connected uplink that keeps what it is given: pure-logic fake. */
function connectedUplink(): Uplink & { health: HealthPayload[] } {
  const events = new EventEmitter();
  const health: HealthPayload[] = [];
  return {
    health,
    connected: true,
    start: () => undefined,
    stop: async () => undefined,
    publish: async (kind, payload) => {
      if (kind === 'health') health.push(payload as HealthPayload);
    },
    hurry: () => undefined,
    on<E extends keyof UplinkEvents>(event: E, listener: UplinkEvents[E]) {
      events.on(event, listener);
    },
  };
}

describe('HealthReporter', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('survives a health source that throws, says so, and publishes again once the source answers', async () => {
    const outbox = createMemoryOutbox();
    let broken = true;
    const sources: HealthSources = {
      villageId: 'v1',
      version: '0.1.0',
      startedAt: Date.now(),
      pollIntervalMs: 200,
      devices: () => {
        if (broken) throw new Error('device table locked');
        return [];
      },
      outbox: () => outbox.stats(),
      problems: () => [],
      clock: () => ({ trusted: true, source: 'system', correctionMs: 0 }),
      audio: () => ({ device: 'default', ok: null, checkedAt: null }),
    };
    const uplink = connectedUplink();
    const { logger, lines } = memoryLogger();
    const reporter = new HealthReporter({ sources, uplink, intervalMs: 1000, logger });
    reporter.start();
    // Before the beat was contained, this threw out of the timer: the process ended.
    await vi.advanceTimersByTimeAsync(2000);
    expect(uplink.health).toEqual([]);
    expect(lines.filter((l) => l.msg === 'health could not be built; not published')).toHaveLength(2);
    broken = false;
    await vi.advanceTimersByTimeAsync(1000);
    expect(uplink.health).toHaveLength(1);
    reporter.stop();
  });
});
