import { afterEach, describe, expect, it } from 'vitest';
import type { ReplayGuard } from '../../src/store/types.ts';

const t0 = 1_800_000_000_000;

/** What every ReplayGuard must do, run against the in-memory one and the SQLite one. */
export function describeReplayGuardContract(name: string, open: () => ReplayGuard): void {
  describe(`ReplayGuard contract: ${name}`, () => {
    const opened: ReplayGuard[] = [];
    const fresh = (): ReplayGuard => {
      const guard = open();
      opened.push(guard);
      return guard;
    };
    afterEach(() => {
      for (const guard of opened.splice(0)) guard.close();
    });

    it('takes a jti once, and refuses it again until it expires', () => {
      const guard = fresh();
      expect(guard.remember('jti-one-1', t0 + 300_000, t0)).toBe(true);
      expect(guard.remember('jti-one-1', t0 + 300_000, t0 + 1)).toBe(false);
      // A second copy claiming a later expiry changes nothing: the first one's expiry stands.
      expect(guard.remember('jti-one-1', t0 + 900_000, t0 + 299_999)).toBe(false);
      expect(guard.remember('jti-two-2', t0 + 300_000, t0)).toBe(true);
    });

    it('treats now == expiresAt as expired (the gate refuses exp <= now), and then takes the id with its new expiry', () => {
      const guard = fresh();
      expect(guard.remember('jti-reuse', t0 + 1000, t0)).toBe(true);
      expect(guard.remember('jti-reuse', t0 + 5000, t0 + 1000)).toBe(true);
      expect(guard.remember('jti-reuse', t0 + 5000, t0 + 4999)).toBe(false);
    });

    it('throws once closed rather than silently forgetting', () => {
      const guard = fresh();
      guard.close();
      expect(() => guard.remember('after-close', t0 + 1000, t0)).toThrow();
      guard.close();
    });
  });
}
