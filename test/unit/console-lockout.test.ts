import { describe, expect, it } from 'vitest';
import { Lockout } from '../../src/console/auth/lockout.ts';

describe('console lock-out', () => {
  const policy = { maxFailures: 3, baseMs: 1000, maxMs: 8000 };

  it('locks a key after maxFailures failures, for baseMs, doubling with each further failure up to maxMs', () => {
    let now = 0;
    const lockout = new Lockout(policy, () => now);
    lockout.failed('zhang');
    lockout.failed('zhang');
    expect(lockout.remainingMs('zhang')).toBe(0);
    lockout.failed('zhang');
    expect(lockout.remainingMs('zhang')).toBe(1000);
    now = 1000;
    expect(lockout.remainingMs('zhang')).toBe(0);
    lockout.failed('zhang');
    expect(lockout.remainingMs('zhang')).toBe(2000);
    for (let i = 0; i < 10; i++) lockout.failed('zhang');
    expect(lockout.remainingMs('zhang')).toBe(8000);
  });

  it('keeps keys apart, and a success clears only its own key', () => {
    const now = 0;
    const lockout = new Lockout(policy, () => now);
    for (let i = 0; i < 3; i++) lockout.failed('10.0.0.9');
    lockout.failed('li');
    expect(lockout.remainingMs('10.0.0.9')).toBe(1000);
    expect(lockout.remainingMs('li')).toBe(0);
    lockout.succeeded('li');
    expect(lockout.remainingMs('10.0.0.9')).toBe(1000);
    lockout.succeeded('10.0.0.9');
    expect(lockout.remainingMs('10.0.0.9')).toBe(0);
  });

  it('keeps at most maxKeys records, forgetting the least recently failed first', () => {
    const lockout = new Lockout({ ...policy, maxFailures: 1 }, () => 0, 3);
    for (const key of ['a', 'b', 'c', 'd']) lockout.failed(key);
    expect(lockout.remainingMs('a')).toBe(0);
    expect(lockout.remainingMs('d')).toBe(1000);
  });

  it('forgets a record idle for a day once its lock has run out', () => {
    let now = 0;
    const lockout = new Lockout(policy, () => now);
    lockout.failed('old');
    lockout.failed('old');
    now = 86_400_000;
    lockout.failed('new');
    lockout.failed('old');
    // Had the two old failures been kept, this third would lock it.
    expect(lockout.remainingMs('old')).toBe(0);
  });
});
