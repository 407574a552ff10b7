import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { OutputWatch } from '../../src/broadcast/output-watch.ts';
import type { AudioState } from '../../src/broadcast/types.ts';
import { memoryLogger } from '../support/log-sink.ts';

describe('OutputWatch', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('survives a busy() check that throws, and checks again on the next tick', async () => {
    const { logger, lines } = memoryLogger();
    let checks = 0;
    let busyThrows = true;
    const changes: AudioState[] = [];
    const watch = new OutputWatch({
      output: {
        device: 'default',
        check: async () => {
          checks++;
          return checks === 1 ? { ok: true } : { ok: false, reason: 'unplugged' };
        },
      },
      intervalMs: 1000,
      busy: () => {
        if (busyThrows) throw new Error('controller state unreadable');
        return false;
      },
      onChange: (state) => changes.push(state),
      logger,
      now: Date.now,
    });
    watch.start();
    // Before the tick was contained, this threw out of the interval: the process ended.
    await vi.advanceTimersByTimeAsync(2000);
    expect(checks).toBe(1);
    expect(lines.filter((l) => l.msg === 'audio output check failed')).toHaveLength(2);
    busyThrows = false;
    await vi.advanceTimersByTimeAsync(1000);
    expect(checks).toBe(2);
    expect(changes.map((c) => c.ok)).toEqual([false]);
    watch.stop();
  });
});
