import type { Logger } from 'pino';
import { errorText } from './error-text.ts';

/** A part of the service that opens files, sockets or timers in `start()` and closes them in `stop()`. */
export interface Component {
  /** For the log and for health: what a technician would call it ("status socket", "county link"). */
  readonly name: string;
  start(): void | Promise<void>;
  stop(): void | Promise<void>;
  /** The health line when `start()` fails, naming the config field to look at; default `name: error`. */
  problem?(error: unknown): string;
}

/**
 * Starts components in order and stops them in reverse. One that fails to start is reported (logged, and
 * returned as a problem for health) and the rest still start: a village without its status socket or its
 * county link must still take alarm presses. Stopping is contained the same way, so one part that fails to
 * close does not leave the parts after it open.
 */
export class Lifecycle {
  private started: Component[] = [];

  constructor(
    private readonly components: readonly Component[],
    private readonly logger: Logger,
  ) {}

  /** Resolves with one problem line per component that failed to start; never rejects. */
  async start(): Promise<string[]> {
    const problems: string[] = [];
    for (const component of this.components) {
      // Stopped too when its start failed half-way: whatever it opened before failing is closed.
      this.started.push(component);
      try {
        await component.start();
      } catch (error) {
        const problem = component.problem?.(error) ?? `${component.name}: ${errorText(error)}`;
        problems.push(problem);
        this.logger.error({ component: component.name, problem }, `${component.name} did not start`);
      }
    }
    return problems;
  }

  /** Never rejects; each failure to stop is logged and the next component still stops. */
  async stop(): Promise<void> {
    const started = this.started;
    this.started = [];
    for (const component of started.reverse()) {
      try {
        await component.stop();
      } catch (error) {
        this.logger.error({ component: component.name, err: error }, `${component.name} did not stop cleanly`);
      }
    }
  }
}
