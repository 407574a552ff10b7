import type { Logger } from 'pino';
import { contained } from '../platform/contained.ts';
import type { Now } from '../platform/time.ts';
import type { AudioOutput, AudioState, OutputCheck } from './types.ts';

export interface OutputWatchOptions {
  output: AudioOutput;
  /** Between checks while nothing plays. */
  intervalMs: number;
  /** True while a player may hold the device: a check then is skipped (a `hw:` device opens only once). */
  busy: () => boolean;
  /** Each change of `ok`, and a first check that fails; may throw (logged). */
  onChange: (state: AudioState) => void;
  logger: Logger;
  now: Now;
}

/**
 * What is known about the sound output: checked at start, before each item (by the controller) and every
 * `intervalMs` while idle. Checks asked for while one runs share it, so a burst of items opens the device once.
 */
export class OutputWatch {
  private state: AudioState;
  private inFlight: Promise<OutputCheck> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: OutputWatchOptions) {
    this.state = { device: options.output.device, ok: null, checkedAt: null };
  }

  get device(): string {
    return this.options.output.device;
  }

  start(): void {
    this.stop();
    const check = contained(this.options.logger, 'audio output check', (skipWhileBusy: boolean) =>
      skipWhileBusy && this.options.busy() ? undefined : this.check(),
    );
    this.timer = setInterval(() => check(true), this.options.intervalMs);
    check(false);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  current(): AudioState {
    return { ...this.state };
  }

  check(): Promise<OutputCheck> {
    this.inFlight ??= this.options.output
      .check()
      .catch((error: unknown): OutputCheck => ({ ok: false, reason: `check failed: ${error instanceof Error ? error.message : String(error)}` }))
      .then((result) => {
        this.inFlight = undefined;
        this.record(result);
        return result;
      });
    return this.inFlight;
  }

  private record(result: OutputCheck): void {
    const was = this.state.ok;
    this.state = { device: this.device, ok: result.ok, ...(result.ok ? {} : { reason: result.reason }), checkedAt: this.options.now() };
    if (was === result.ok || (was === null && result.ok)) return;
    if (result.ok) this.options.logger.warn({ device: this.device }, 'audio output opens again');
    else this.options.logger.error({ device: this.device, reason: result.reason }, 'audio output cannot be opened');
    try {
      this.options.onChange(this.current());
    } catch (error) {
      this.options.logger.error({ err: error, device: this.device }, 'audio output change could not be recorded');
    }
  }
}
