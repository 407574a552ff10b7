import { existsSync } from 'node:fs';

const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

/**
 * The environment that runs a real process on a clock libfaketime sets (Debian `faketime`): `{ FAKETIME:
 * '-10m' }` for a fixed shift, `{ FAKETIME_TIMESTAMP_FILE: path }` for one the test rewrites while it runs.
 * Monotonic time is left alone, as on a Pi whose wall clock alone is wrong (TOOLCHAIN.md, "Wrong clock").
 * Throws, naming the package, where libfaketime is not installed: a missing tool is never a silent skip.
 */
export function fakeClockEnv(clock: { FAKETIME: string } | { FAKETIME_TIMESTAMP_FILE: string }): Record<string, string> {
  if (!existsSync(LIBFAKETIME)) throw new Error(`${LIBFAKETIME} is missing: install the Debian package "faketime"`);
  return { LD_PRELOAD: LIBFAKETIME, ...clock, FAKETIME_DONT_FAKE_MONOTONIC: '1', FAKETIME_NO_CACHE: '1' };
}
