import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSdNotifier } from '../../src/platform/sd-notify.ts';
import { memoryLogger } from '../support/log-sink.ts';

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
    const start = Date.now();
    notifier.ready();
    await new Promise((r) => setTimeout(r, 550));
    alive = false;
    const stalledAt = Date.now();
    await new Promise((r) => setTimeout(r, 350));
    notifier.stopping();
    notifier.stop();
    await new Promise((r) => setTimeout(r, 50));
    socket.close();

    expect(received[0]?.text).toBe('READY=1');
    const beats = received.filter((m) => m.text === 'WATCHDOG=1');
    expect(beats.length).toBeGreaterThanOrEqual(4);
    expect(beats.every((b) => b.at < stalledAt + 20)).toBe(true);
    // Beats come every 100 ms (half of 200 ms), measured from ready().
    expect(beats[0]!.at - start).toBeGreaterThanOrEqual(90);
    expect(received.at(-1)?.text).toBe('STOPPING=1');
    expect(lines.some((l) => l.msg === 'watchdog withheld: a vital loop has stalled')).toBe(true);
  });

  it('does nothing without NOTIFY_SOCKET', () => {
    const notifier = createSdNotifier({ env: {}, alive: () => true, logger: memoryLogger().logger });
    notifier.ready();
    notifier.stopping();
    notifier.stop();
  });
});
