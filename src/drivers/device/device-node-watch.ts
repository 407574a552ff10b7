import { existsSync } from 'node:fs';

/** How often a lost serial bus looks whether its device node is back (one stat, no open). */
const LOOK_EVERY_MS = 250;

/**
 * While a serial device node is missing (an unplugged USB adapter), looks for it every 250 ms and calls
 * `back` once when it is there again. The reopen backoff spares a port that exists but will not open; a
 * replugged adapter must not wait it out (up to `timing.reopen.maxMs`). Returns null, watching nothing,
 * when the node is there now: then the backoff is the right answer.
 */
export function watchForDeviceNode(path: string, back: () => void): { cancel(): void } | null {
  if (existsSync(path)) return null;
  let timer: NodeJS.Timeout | undefined;
  const look = (): void => {
    if (existsSync(path)) {
      timer = undefined;
      back();
    } else timer = setTimeout(look, LOOK_EVERY_MS);
  };
  timer = setTimeout(look, LOOK_EVERY_MS);
  return {
    cancel() {
      clearTimeout(timer);
      timer = undefined;
    },
  };
}
