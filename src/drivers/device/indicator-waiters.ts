/**
 * Callers of `setIndicator` waiting for the column to show what they asked for: all answered at once, when
 * it shows (or a later state does) or when the write fails. The state itself is kept by the driver.
 */
export class IndicatorWaiters {
  private waiters: Array<{ resolve(): void; reject(error: Error): void }> = [];

  wait(): Promise<void> {
    return new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** `null`: shown. */
  settle(error: Error | null): void {
    const waiters = this.waiters;
    if (waiters.length === 0) return;
    this.waiters = [];
    for (const waiter of waiters) {
      if (error === null) waiter.resolve();
      else waiter.reject(error);
    }
  }
}
