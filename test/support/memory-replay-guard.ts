import type { ReplayGuard } from '../../src/store/types.ts';

/** The replay guard's contract without a disk, for tests that are not about durability (and the fuzz run). */
export function memoryReplayGuard(): ReplayGuard & { readonly size: number } {
  const seen = new Map<string, number>();
  let closed = false;
  const open = (): void => {
    if (closed) throw new Error('replay guard is closed');
  };
  return {
    get size() {
      return seen.size;
    },
    remember(jti, expiresAt, now) {
      open();
      const expiry = seen.get(jti);
      if (expiry !== undefined && expiry > now) return false;
      seen.set(jti, expiresAt);
      return true;
    },
    close() {
      closed = true;
    },
  };
}
