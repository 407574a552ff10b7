import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { OutputWatch } from '../../src/broadcast/output-watch.ts';
import type { AudioOutput, AudioState, OutputCheck } from '../../src/broadcast/types.ts';
import { memoryLogger } from '../support/log-sink.ts';

// The output watch on its own: what it logs and tells on a change, and a check or a listener that fails.
function rig(results: Array<OutputCheck | Error>, onChange: (state: AudioState) => void = () => undefined) {
  const { logger, lines } = memoryLogger();
  let checks = 0;
  const output: AudioOutput = {
    device: 'hw:0',
    check: () => {
      const result = results[Math.min(checks++, results.length - 1)]!;
      return result instanceof Error ? Promise.reject(result) : Promise.resolve(result);
    },
  };
  const changes: AudioState[] = [];
  const watch = new OutputWatch({
    output,
    intervalMs: 1000,
    busy: () => false,
    onChange: (state) => {
      changes.push(state);
      onChange(state);
    },
    logger,
    now: () => Date.now(),
  });
  const logged = (msg: string) => lines.filter((l) => l.msg === msg);
  return { watch, changes, logged, checks: () => checks };
}

describe('OutputWatch', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('logs the output failing, with the reason, and opening again, and tells each change', async () => {
    const r = rig([{ ok: true }, { ok: false, reason: 'no such card' }, { ok: false, reason: 'no such card' }, { ok: true }]);
    for (let i = 0; i < 4; i++) await r.watch.check();
    expect(r.changes.map((c) => [c.ok, c.reason])).toEqual([
      [false, 'no such card'],
      [true, undefined],
    ]);
    expect(r.logged('audio output cannot be opened')).toEqual([expect.objectContaining({ device: 'hw:0', reason: 'no such card' })]);
    expect(r.logged('audio output opens again')).toEqual([expect.objectContaining({ device: 'hw:0' })]);
  });

  it('takes a check that rejects for a failing output, with the error as the reason', async () => {
    const r = rig([new Error('spawn EACCES')]);
    await expect(r.watch.check()).resolves.toEqual({ ok: false, reason: 'check failed: spawn EACCES' });
    expect(r.watch.current()).toMatchObject({ ok: false, reason: 'check failed: spawn EACCES' });
  });

  it('logs a listener that throws, and keeps the state it checked', async () => {
    const r = rig([{ ok: false, reason: 'busy' }], () => {
      throw new Error('outbox closed');
    });
    await r.watch.check();
    expect(r.watch.current()).toMatchObject({ ok: false, reason: 'busy' });
    expect(r.logged('audio output change could not be recorded')).toEqual([
      expect.objectContaining({ device: 'hw:0', err: expect.objectContaining({ message: 'outbox closed' }) }),
    ]);
  });

  it('checks no more once stopped', async () => {
    const r = rig([{ ok: true }]);
    r.watch.start();
    await vi.advanceTimersByTimeAsync(2000);
    const checks = r.checks();
    expect(checks).toBe(3);
    r.watch.stop();
    await vi.advanceTimersByTimeAsync(5000);
    expect(r.checks()).toBe(checks);
  });

  it('logs a periodic check that throws at once, and checks again at the next tick', async () => {
    const { logger, lines } = memoryLogger();
    let calls = 0;
    const output: AudioOutput = {
      device: 'hw:0',
      check: () => {
        calls++;
        throw new Error('not a function of this card');
      },
    };
    const watch = new OutputWatch({ output, intervalMs: 1000, busy: () => false, onChange: () => undefined, logger, now: () => Date.now() });
    watch.start();
    await vi.advanceTimersByTimeAsync(1000);
    watch.stop();
    expect(calls).toBe(2);
    expect(lines.filter((l) => l.msg === 'audio output check failed')).toHaveLength(2);
  });
});
