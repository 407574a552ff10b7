import { createRequire } from 'node:module';
import type { Logger } from 'pino';
import { contained } from './contained.ts';

export interface SdNotifier {
  /** Tells systemd start-up is complete (`Type=notify`). */
  ready(): void;
  stopping(): void;
  stop(): void;
}

/**
 * systemd notification: READY=1 after start-up, WATCHDOG=1 every half of WATCHDOG_USEC, and only while
 * `alive()` vouches that the loops that matter still turn — a wedged service then gets restarted.
 * Nothing at all happens when NOTIFY_SOCKET is unset (tests, a shell).
 */
export function createSdNotifier(options: { env: NodeJS.ProcessEnv; alive: () => boolean; logger: Logger }): SdNotifier {
  const socketPath = options.env['NOTIFY_SOCKET'];
  if (socketPath === undefined || socketPath === '') return { ready() {}, stopping() {}, stop() {} };
  // unix-dgram is CommonJS and native; Node 20 has no unix datagram sockets of its own.
  const require = createRequire(import.meta.url);
  const unix = require('unix-dgram') as typeof import('unix-dgram');
  const socket = unix.createSocket('unix_dgram');
  socket.on('error', (error: Error) => options.logger.warn({ err: error }, 'sd_notify socket error'));
  const path = socketPath.startsWith('@') ? `\0${socketPath.slice(1)}` : socketPath;
  const send = (text: string) => {
    const buf = Buffer.from(text);
    socket.send(buf, 0, buf.length, path, (error) => {
      if (error) options.logger.warn({ err: error, message: text }, 'sd_notify failed');
    });
  };
  const watchdogUsec = Number(options.env['WATCHDOG_USEC'] ?? '0');
  let timer: NodeJS.Timeout | undefined;
  return {
    ready() {
      send('READY=1');
      if (watchdogUsec > 0) {
        // A check that throws withholds the beat too (systemd then restarts us), but never ends the process itself.
        timer = setInterval(
          contained(options.logger, 'watchdog check', () => {
            if (options.alive()) send('WATCHDOG=1');
            else options.logger.error('watchdog withheld: a vital loop has stalled');
          }),
          Math.max(1, Math.floor(watchdogUsec / 2000)),
        );
      }
    },
    stopping() {
      send('STOPPING=1');
    },
    stop() {
      clearInterval(timer);
      socket.close();
    },
  };
}
