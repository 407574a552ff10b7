/** How a bounded wait ended. */
export type Waited<T> = { kind: 'settled'; value: T } | { kind: 'rejected'; error: unknown } | { kind: 'timeout' } | { kind: 'cancelled' };

/**
 * A switch that ends every wait made through it, and clears their timers. Each playing item owns one, so
 * a preemption wakes whatever that item was waiting on (a warm-up, a gap, a player) at once instead of
 * leaving a coroutine to act on a world that has moved on; the controller owns one for its lifetime so
 * `stop()` leaves no timer behind.
 */
export class Cancellation {
  private cancelledFlag = false;
  private readonly wakers = new Set<() => void>();

  get cancelled(): boolean {
    return this.cancelledFlag;
  }

  cancel(): void {
    if (this.cancelledFlag) return;
    this.cancelledFlag = true;
    for (const wake of [...this.wakers]) wake();
    this.wakers.clear();
  }

  /** Waits for `promise`, at most `timeoutMs` (none: no limit), and no longer than until cancelled. */
  wait<T>(promise: Promise<T>, timeoutMs?: number): Promise<Waited<T>> {
    if (this.cancelledFlag) return Promise.resolve({ kind: 'cancelled' });
    return new Promise<Waited<T>>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (result: Waited<T>): void => {
        if (!this.wakers.delete(wake)) return;
        clearTimeout(timer);
        resolve(result);
      };
      const wake = (): void => finish({ kind: 'cancelled' });
      this.wakers.add(wake);
      if (timeoutMs !== undefined) timer = setTimeout(() => finish({ kind: 'timeout' }), Math.max(0, timeoutMs));
      promise.then(
        (value) => finish({ kind: 'settled', value }),
        (error: unknown) => finish({ kind: 'rejected', error }),
      );
    });
  }

  /** Resolves after `ms`, or as soon as cancelled. */
  async sleep(ms: number): Promise<void> {
    if (ms <= 0 || this.cancelledFlag) return;
    await this.wait(new Promise<never>(() => {}), ms);
  }
}
