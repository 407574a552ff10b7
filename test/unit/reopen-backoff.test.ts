import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ReopenBackoff } from '../../src/drivers/device/reopen-backoff.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { waitFor } from '../support/wait.ts';

const delays = (lines: { msg: string; [key: string]: unknown }[]) =>
  lines.filter((l) => l.msg === 'reopening the port after a delay').map((l) => l['delayMs']);

describe('ReopenBackoff', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('doubles the delay per failed attempt up to the cap, and starts afresh once the port opened', () => {
    vi.useFakeTimers();
    const { logger, lines } = memoryLogger();
    const reopen = vi.fn();
    const backoff = new ReopenBackoff({ initialMs: 1000, maxMs: 3000, path: undefined, log: logger, reopen });
    for (let i = 0; i < 4; i++) backoff.failed('no such port');
    expect(delays(lines)).toEqual([1000, 2000, 3000, 3000]);
    // Each failure replaces the attempt scheduled before it: one reopen, after the last delay.
    vi.advanceTimersByTime(2999);
    expect(reopen).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(reopen).toHaveBeenCalledTimes(1);
    backoff.opened();
    backoff.failed('port closed');
    expect(delays(lines).at(-1)).toBe(1000);
    backoff.cancel();
  });

  it('reopens nothing once cancelled, and a later failure starts afresh', () => {
    vi.useFakeTimers();
    const { logger, lines } = memoryLogger();
    const reopen = vi.fn();
    const backoff = new ReopenBackoff({ initialMs: 100, maxMs: 1000, path: undefined, log: logger, reopen });
    backoff.failed('lost');
    backoff.failed('lost');
    backoff.cancel();
    vi.advanceTimersByTime(10_000);
    expect(reopen).not.toHaveBeenCalled();
    backoff.failed('lost');
    expect(delays(lines)).toEqual([100, 200, 100]);
    backoff.cancel();
  });

  it('counts a reopen that throws as a failed attempt and tries again, instead of ending the process', async () => {
    const { logger, lines } = memoryLogger();
    let calls = 0;
    const backoff = new ReopenBackoff({
      initialMs: 5,
      maxMs: 50,
      path: undefined,
      log: logger,
      reopen: () => {
        calls++;
        if (calls === 1) throw new Error('binding refused the options');
      },
    });
    backoff.failed('lost');
    await waitFor('the second attempt', () => calls === 2);
    expect(lines.find((l) => l.msg === 'reopening the port failed')).toMatchObject({ level: 50, err: 'binding refused the options' });
    expect(delays(lines)).toEqual([5, 10]);
    backoff.cancel();
  });

  it('reopens at once when a missing device node comes back, without waiting the backoff out', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reopen-'));
    try {
      const path = join(dir, 'ttyUSB0');
      const { logger, lines } = memoryLogger();
      const reopen = vi.fn();
      const backoff = new ReopenBackoff({ initialMs: 30_000, maxMs: 60_000, path, log: logger, reopen });
      backoff.failed('adapter unplugged');
      backoff.failed('adapter unplugged');
      writeFileSync(path, '');
      await waitFor('the reopen after the replug', () => reopen.mock.calls.length === 1);
      expect(lines.find((l) => l.msg === 'serial device is back: reopening now')).toMatchObject({ path });
      // The replug started the backoff afresh.
      backoff.failed('would not open');
      expect(delays(lines)).toEqual([30_000, 60_000, 30_000]);
      backoff.cancel();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('does not watch a device node that is there: the backoff is the right answer for a port that will not open', () => {
    vi.useFakeTimers();
    const { logger } = memoryLogger();
    const reopen = vi.fn();
    const backoff = new ReopenBackoff({ initialMs: 1000, maxMs: 1000, path: tmpdir(), log: logger, reopen });
    backoff.failed('EBUSY');
    vi.advanceTimersByTime(999);
    expect(reopen).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(reopen).toHaveBeenCalledTimes(1);
    backoff.cancel();
  });
});
