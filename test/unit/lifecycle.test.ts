import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { contained, fanOut } from '../../src/platform/contained.ts';
import { Lifecycle, type Component } from '../../src/platform/lifecycle.ts';
import { memoryLogger } from '../support/log-sink.ts';

function recording(calls: string[], name: string, fail: { start?: boolean; stop?: boolean } = {}): Component {
  return {
    name,
    async start() {
      calls.push(`start ${name}`);
      if (fail.start) throw new Error(`${name} cannot open`);
    },
    stop() {
      calls.push(`stop ${name}`);
      if (fail.stop) throw new Error(`${name} cannot close`);
    },
  };
}

describe('Lifecycle', () => {
  it('starts in order and stops in reverse', async () => {
    const calls: string[] = [];
    const lifecycle = new Lifecycle(
      ['store', 'link', 'devices'].map((n) => recording(calls, n)),
      memoryLogger().logger,
    );
    expect(await lifecycle.start()).toEqual([]);
    await lifecycle.stop();
    expect(calls).toEqual(['start store', 'start link', 'start devices', 'stop devices', 'stop link', 'stop store']);
  });

  it('reports a component that fails to start, starts the rest, and still stops it', async () => {
    const calls: string[] = [];
    const { logger, lines } = memoryLogger();
    const link = { ...recording(calls, 'county link', { start: true }), problem: (e: unknown) => `county: ${(e as Error).message}` };
    const lifecycle = new Lifecycle(
      [recording(calls, 'store'), link, recording(calls, 'status socket', { start: true }), recording(calls, 'devices')],
      logger,
    );
    expect(await lifecycle.start()).toEqual(['county: county link cannot open', 'status socket: status socket cannot open']);
    expect(calls).toEqual(['start store', 'start county link', 'start status socket', 'start devices']);
    expect(lines.filter((l) => l.level === 50).map((l) => l.msg)).toEqual(['county link did not start', 'status socket did not start']);
    await lifecycle.stop();
    expect(calls.slice(4)).toEqual(['stop devices', 'stop status socket', 'stop county link', 'stop store']);
  });

  it('stops every component even when one fails to stop, and stops each only once', async () => {
    const calls: string[] = [];
    const { logger, lines } = memoryLogger();
    const lifecycle = new Lifecycle([recording(calls, 'store'), recording(calls, 'link', { stop: true }), recording(calls, 'devices')], logger);
    await lifecycle.start();
    await lifecycle.stop();
    await lifecycle.stop();
    expect(calls.slice(3)).toEqual(['stop devices', 'stop link', 'stop store']);
    expect(lines.find((l) => l.level === 50)?.msg).toBe('link did not stop cleanly');
  });
});

describe('contained callbacks', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('keeps a timer that throws, or rejects, from ending the process; the next tick runs again', async () => {
    const { logger, lines } = memoryLogger();
    let ticks = 0;
    setInterval(
      contained(logger, 'health beat', () => {
        ticks++;
        if (ticks === 1) throw new Error('source broken');
        if (ticks === 2) return Promise.reject(new Error('async source broken'));
        return undefined;
      }),
      1000,
    );
    await vi.advanceTimersByTimeAsync(3000);
    expect(ticks).toBe(3);
    expect(lines.filter((l) => l.msg === 'health beat failed').map((l) => (l['err'] as { message: string }).message)).toEqual([
      'source broken',
      'async source broken',
    ]);
    vi.clearAllTimers();
  });

  it('fans an event out to every listener, whichever throws', () => {
    const { logger, lines } = memoryLogger();
    const seen: string[] = [];
    const sink = fanOut<number>(logger, 'device event', {
      alarm: (n) => seen.push(`alarm ${n}`),
      fault: () => {
        throw new Error('SQLITE_FULL');
      },
      status: (n) => seen.push(`status ${n}`),
    });
    sink(1);
    sink(2);
    expect(seen).toEqual(['alarm 1', 'status 1', 'alarm 2', 'status 2']);
    expect(lines.filter((l) => l.msg === 'device event → fault failed')).toHaveLength(2);
  });
});
