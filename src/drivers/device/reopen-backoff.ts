import type { Logger } from '../../platform/logger.ts';
import { errorText } from '../../platform/error-text.ts';
import { backoffDelay } from '../../platform/time.ts';
import { watchForDeviceNode } from './device-node-watch.ts';

export interface ReopenBackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
  /** The serial device node, watched while the port is down so that a replug is noticed at once; none for TCP. */
  readonly path: string | undefined;
  readonly log: Logger;
  /**
   * Opens the port again, if the bus still wants it open. Called once per attempt; what it throws counts as
   * a failed attempt, so a bug in opening delays the bus instead of ending the process.
   */
  readonly reopen: () => void;
}

/**
 * When a lost port is opened again: after a delay that doubles per failed attempt up to `maxMs` (a port that
 * exists but will not open is not hammered), or at once when its missing device node comes back (a
 * replugged adapter does not wait the backoff out). One for every kind of bus, so they recover alike.
 */
export class ReopenBackoff {
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private nodeWatch: { cancel(): void } | null = null;

  constructor(private readonly options: ReopenBackoffOptions) {}

  /** The port failed (or would not open): the next attempt is scheduled. */
  failed(reason: string): void {
    clearTimeout(this.timer);
    this.attempt++;
    const { initialMs, maxMs } = this.options;
    const delayMs = backoffDelay(this.attempt, initialMs, maxMs);
    this.options.log.info({ delayMs, attempt: this.attempt, reason }, 'reopening the port after a delay');
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.reopenNow();
    }, delayMs);
    this.watchForReplug();
  }

  /** The port is open: the next failure starts the backoff afresh. */
  opened(): void {
    this.attempt = 0;
    this.stopWatching();
  }

  /** The bus stopped: nothing is reopened, and the next start begins afresh. */
  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.attempt = 0;
    this.stopWatching();
  }

  private reopenNow(): void {
    try {
      this.options.reopen();
    } catch (error) {
      this.options.log.error({ err: errorText(error) }, 'reopening the port failed');
      this.failed(errorText(error));
    }
  }

  private watchForReplug(): void {
    const path = this.options.path;
    if (path === undefined || this.nodeWatch !== null) return;
    this.nodeWatch = watchForDeviceNode(path, () => {
      this.nodeWatch = null;
      clearTimeout(this.timer);
      this.timer = undefined;
      this.attempt = 0;
      this.options.log.info({ path }, 'serial device is back: reopening now');
      this.reopenNow();
    });
  }

  private stopWatching(): void {
    this.nodeWatch?.cancel();
    this.nodeWatch = null;
  }
}
