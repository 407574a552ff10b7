import { randomBytes } from 'node:crypto';

/** Epoch milliseconds; injected everywhere so tests can use fake timers or a fixed clock. */
export type Now = () => number;

/**
 * ISO 8601 with the local UTC offset (`2026-11-29T13:05:00.123+08:00`): dispatchers read local time,
 * machines still get an unambiguous instant.
 */
export function isoWithOffset(epochMs: number, offsetMinutes = -new Date(epochMs).getTimezoneOffset()): string {
  const local = new Date(epochMs + offsetMinutes * 60_000).toISOString().slice(0, -1);
  if (offsetMinutes === 0) return `${local}Z`;
  const sign = offsetMinutes > 0 ? '+' : '-';
  const abs = Math.abs(offsetMinutes);
  const hh = String(Math.floor(abs / 60)).padStart(2, '0');
  const mm = String(abs % 60).padStart(2, '0');
  return `${local}${sign}${hh}:${mm}`;
}

/**
 * The wall-clock time of a moment stamped with performance.now(), counted back from `now()` on the
 * monotonic clock: right even if NTP moved the wall clock since the stamp.
 */
export function wallClockOf(monotonicAt: number, now: Now): number {
  return Math.round(now() - (performance.now() - monotonicAt));
}

/**
 * UUID version 7 (RFC 9562): 48 bits of milliseconds then random bits, so ids sort by creation time and
 * stay unique across villages without coordination.
 */
export function uuidv7(epochMs: number, random: (size: number) => Buffer = randomBytes): string {
  const bytes = random(16);
  const ms = BigInt(Math.max(0, Math.floor(epochMs)));
  for (let i = 0; i < 6; i++) bytes[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn);
  bytes[6] = 0x70 | (bytes[6]! & 0x0f);
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Exponential backoff: `initial`, doubling per attempt, capped at `max`. `attempt` counts from 1. */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number): number {
  const factor = 2 ** Math.min(Math.max(attempt - 1, 0), 30);
  return Math.min(initialMs * factor, maxMs);
}
