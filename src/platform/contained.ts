import type { Logger } from 'pino';

/**
 * `work`, wrapped so that what it throws (or the promise it returns rejects with) is logged as an error
 * instead of ending the process: for timer callbacks and event listeners, which have no caller to catch
 * it. The next tick or event runs `work` again, so a passing failure recovers by itself.
 */
export function contained<A extends unknown[]>(logger: Logger, what: string, work: (...args: A) => unknown): (...args: A) => void {
  const report = (error: unknown) => logger.error({ err: error, failed: what }, `${what} failed`);
  return (...args: A) => {
    try {
      const result = work(...args);
      if (result instanceof Promise) result.catch(report);
    } catch (error) {
      report(error);
    }
  };
}

/**
 * One listener made of several, each contained on its own: one that throws (a store that cannot write)
 * neither silences the others nor reaches the emitter (a serial bus, the MQTT client).
 */
export function fanOut<E>(logger: Logger, what: string, listeners: Readonly<Record<string, (event: E) => unknown>>): (event: E) => void {
  const each = Object.entries(listeners).map(([name, listener]) => contained(logger, `${what} → ${name}`, listener));
  return (event: E) => {
    for (const listener of each) listener(event);
  };
}
