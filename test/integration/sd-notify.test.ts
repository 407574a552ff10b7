import { describe, expect, it, vi } from 'vitest';
import { createRequire } from 'node:module';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createSdNotifier } from '../../src/platform/sd-notify.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { waitFor } from '../support/wait.ts';

const unix = createRequire(import.meta.url)('unix-dgram') as typeof import('unix-dgram');

describe('sd_notify', () => {
  it('sends READY=1, then WATCHDOG=1 at half of WATCHDOG_USEC only while the loops are alive', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 've-notify-')), 'notify.sock');
    const received: Array<{ at: number; text: string }> = [];
    const socket = unix.createSocket('unix_dgram', (msg) => received.push({ at: Date.now(), text: msg.toString() }));
    socket.bind(path);
    let alive = true;
    const { logger, lines } = memoryLogger();
    const notifier = createSdNotifier({ env: { NOTIFY_SOCKET: path, WATCHDOG_USEC: '200000' }, alive: () => alive, logger });
    const beats = () => received.filter((m) => m.text === 'WATCHDOG=1');
    const withheld = () => lines.filter((l) => l.msg === 'watchdog withheld: a vital loop has stalled');
    const start = Date.now();
    notifier.ready();
    await waitFor('four watchdog beats', () => beats().length >= 4);
    alive = false;
    const stalledAt = Date.now();
    // Two periods without a beat, each said in the log, rather than a guess at how long that takes.
    await waitFor('the watchdog withheld twice', () => withheld().length >= 2);
    notifier.stopping();
    await waitFor('STOPPING=1', () => received.some((m) => m.text === 'STOPPING=1'));
    notifier.stop();
    socket.close();

    expect(received[0]?.text).toBe('READY=1');
    expect(beats().every((b) => b.at < stalledAt + 20)).toBe(true);
    // Beats come every 100 ms (half of 200 ms), measured from ready().
    expect(beats()[0]!.at - start).toBeGreaterThanOrEqual(90);
    expect(received.at(-1)?.text).toBe('STOPPING=1');
  });

  it.each([
    ['unset', {}],
    ['empty', { NOTIFY_SOCKET: '' }],
  ])('does nothing when NOTIFY_SOCKET is %s: no watchdog timer, nothing sent or logged', async (_, env) => {
    const alive = vi.fn(() => true);
    const { logger, lines } = memoryLogger('debug');
    // A watchdog of 20 ms would ask `alive` every 10 ms, were one started.
    const notifier = createSdNotifier({ env: { ...env, WATCHDOG_USEC: '20000' }, alive, logger });
    notifier.ready();
    notifier.stopping();
    // Proving that nothing happens: ten watchdog periods, and time for a failed send to be logged.
    await sleep(100);
    notifier.stop();
    expect(alive).not.toHaveBeenCalled();
    expect(lines).toEqual([]);
  });
});
