import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Cancellation } from '../../src/broadcast/cancellation.ts';

const never = () => new Promise<never>(() => {});

describe('Cancellation', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('ends a wait in progress as cancelled when cancelled', async () => {
    const token = new Cancellation();
    const waited = token.wait(never(), 10_000);
    token.cancel();
    await expect(waited).resolves.toEqual({ kind: 'cancelled' });
    expect(token.cancelled).toBe(true);
  });

  it('ends a wait begun after the cancel at once, as cancelled, even on a promise already settled', async () => {
    const token = new Cancellation();
    token.cancel();
    await expect(token.wait(Promise.resolve(1))).resolves.toEqual({ kind: 'cancelled' });
  });

  it('tells a settled, a rejected and a timed-out wait apart', async () => {
    const token = new Cancellation();
    await expect(token.wait(Promise.resolve(7), 100)).resolves.toEqual({ kind: 'settled', value: 7 });
    const error = new Error('no');
    await expect(token.wait(Promise.reject(error), 100)).resolves.toEqual({ kind: 'rejected', error });
    const timedOut = token.wait(never(), 100);
    await vi.advanceTimersByTimeAsync(100);
    await expect(timedOut).resolves.toEqual({ kind: 'timeout' });
  });
});
