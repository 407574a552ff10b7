import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

export interface WaitOptions {
  /** Default 5000. */
  timeoutMs?: number;
  /** How often `check` is asked; default 5. Make it longer when asking is costly (a connect, a file read). */
  intervalMs?: number;
  /** What there was to see, added to the error when time runs out (the lines printed so far, say). */
  context?: () => string;
}

/**
 * The one way tests wait for something: asks `check` until it returns a value other than undefined, null or
 * false, and resolves with that value. `check` may be async, and may throw (an `expect` inside it): a throw
 * counts as "not yet", and the last one is quoted if time runs out. The error names `what` was awaited.
 */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  options: number | WaitOptions = {},
): Promise<T> {
  const { timeoutMs = 5000, intervalMs = 5, context } = typeof options === 'number' ? { timeoutMs: options } : options;
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== null && value !== false) return value;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (performance.now() > deadline) {
      const why = lastError === undefined ? '' : `; last check failed with: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
      const seen = context === undefined ? '' : `\n${context()}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}${seen}`, lastError === undefined ? {} : { cause: lastError });
    }
    await sleep(intervalMs);
  }
}
