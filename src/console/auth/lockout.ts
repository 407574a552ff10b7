import type { Now } from '../../platform/time.ts';

export interface LockoutPolicy {
  /** Failures allowed before a lock-out. */
  maxFailures: number;
  /** The first lock-out; each failure past the limit doubles it, up to `maxMs`. */
  baseMs: number;
  maxMs: number;
}

interface Record {
  failures: number;
  lockedUntil: number;
  lastFailureAt: number;
}

/**
 * Failed logins counted per key (an account name, a client address), with a lock-out that doubles with each
 * further failure. A lock-out refuses before the password is even checked, so guessing costs the guesser
 * time and the Pi nothing. A success clears its key. Records idle for a day are forgotten, and at most
 * `maxKeys` are kept, so a flood of made-up names cannot grow memory without end.
 */
export class Lockout {
  private readonly records = new Map<string, Record>();

  constructor(
    private readonly policy: LockoutPolicy,
    private readonly now: Now,
    private readonly maxKeys = 10_000,
  ) {}

  /** Milliseconds the key is still locked out for, or 0. */
  remainingMs(key: string): number {
    const record = this.records.get(key);
    return record === undefined ? 0 : Math.max(0, record.lockedUntil - this.now());
  }

  failed(key: string): void {
    const now = this.now();
    this.forgetIdle(now);
    const record = this.records.get(key) ?? { failures: 0, lockedUntil: 0, lastFailureAt: now };
    record.failures++;
    record.lastFailureAt = now;
    const over = record.failures - this.policy.maxFailures;
    if (over >= 0) record.lockedUntil = now + Math.min(this.policy.baseMs * 2 ** Math.min(over, 30), this.policy.maxMs);
    // Re-inserted so the Map's order is least recently failed first.
    this.records.delete(key);
    this.records.set(key, record);
    if (this.records.size > this.maxKeys) this.records.delete(this.records.keys().next().value!);
  }

  succeeded(key: string): void {
    this.records.delete(key);
  }

  private forgetIdle(now: number): void {
    for (const [key, record] of this.records) {
      if (now - record.lastFailureAt < 86_400_000 || record.lockedUntil > now) break;
      this.records.delete(key);
    }
  }
}
