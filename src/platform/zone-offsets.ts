import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A time zone's UTC offset at any instant. Read from the system's tz database (`/usr/share/zoneinfo`, Debian
 * `tzdata`, in TZif format, RFC 8536) where it can be: V8's Intl answers the same, but the first zone it
 * formats maps ~8 MB of ICU data into the process (+1.7 MB of its own heap), five times what the whole
 * programme schedule may add to a Pi's memory, and each answer costs a formatToParts. Intl remains the
 * fallback for a zone the file system lacks and for instants past a file's last transition in a zone with
 * daylight saving (a "slim" file, or beyond 2037).
 */
export interface ZoneOffsets {
  /** ms to add to UTC for local wall time at `epochMs`. */
  offsetAt(epochMs: number): number;
  /** Where the rules came from, for the log. */
  readonly source: 'tzif' | 'intl';
}

export function zoneOffsets(timezone: string, options: { zoneinfo?: string; read?: (path: string) => Buffer } = {}): ZoneOffsets {
  const read = options.read ?? readFileSync;
  let file: Buffer | undefined;
  // Only plain zone names: a name is a path under zoneinfo, and "../" must not walk out of it.
  if (/^[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*$/.test(timezone)) {
    try {
      file = read(join(options.zoneinfo ?? '/usr/share/zoneinfo', timezone));
    } catch {
      file = undefined;
    }
  }
  const rules = file === undefined ? undefined : parseTzif(file);
  if (rules === undefined) return intlOffsets(timezone);
  let fallback: ZoneOffsets | undefined;
  return {
    source: 'tzif',
    offsetAt(epochMs) {
      const s = Math.floor(epochMs / 1000);
      const { times, offsets, beforeFirst, lastIsFinal } = rules;
      if (times.length === 0 || s < times[0]!) return beforeFirst * 1000;
      if (s >= times[times.length - 1]! && !lastIsFinal) {
        fallback ??= intlOffsets(timezone);
        return fallback.offsetAt(epochMs);
      }
      let lo = 0;
      let hi = times.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (times[mid]! <= s) lo = mid;
        else hi = mid - 1;
      }
      return offsets[lo]! * 1000;
    },
  };
}

interface TzifRules {
  /** Transition instants (epoch s), ascending, and the UTC offset (s) from each on. */
  times: number[];
  offsets: number[];
  /** Offset before the first transition (local time type 0). */
  beforeFirst: number;
  /** The footer names no daylight-saving rule: the last offset holds for ever after. */
  lastIsFinal: boolean;
}

const HEADER = 44;

/** The 64-bit data block of a version 2+ TZif file; undefined for anything else (the caller falls back to Intl). */
function parseTzif(file: Buffer): TzifRules | undefined {
  try {
    if (file.toString('latin1', 0, 4) !== 'TZif' || file[4] === 0) return undefined;
    const v1 = counts(file, 0);
    const second = HEADER + v1.timecnt * 4 + v1.timecnt + v1.typecnt * 6 + v1.charcnt + v1.leapcnt * 8 + v1.isstdcnt + v1.isutcnt;
    if (file.toString('latin1', second, second + 4) !== 'TZif') return undefined;
    const c = counts(file, second);
    let at = second + HEADER;
    const times: number[] = [];
    for (let i = 0; i < c.timecnt; i++, at += 8) times.push(Number(file.readBigInt64BE(at)));
    const indices = [...file.subarray(at, at + c.timecnt)];
    at += c.timecnt;
    const typeOffsets: number[] = [];
    for (let i = 0; i < c.typecnt; i++, at += 6) typeOffsets.push(file.readInt32BE(at));
    at += c.charcnt + c.leapcnt * 12 + c.isstdcnt + c.isutcnt;
    const footer = file.toString('latin1', at).trim();
    if (c.typecnt === 0 || indices.some((i) => i >= c.typecnt)) return undefined;
    return {
      times,
      offsets: indices.map((i) => typeOffsets[i]!),
      beforeFirst: typeOffsets[0]!,
      // "CST-8": a fixed offset; "CET-1CEST,M3.5.0,M10.5.0/3": rules the file's transitions end before.
      lastIsFinal: footer !== '' && !footer.includes(','),
    };
  } catch {
    return undefined;
  }
}

function counts(file: Buffer, at: number) {
  const n = (i: number) => file.readUInt32BE(at + 20 + i * 4);
  return { isutcnt: n(0), isstdcnt: n(1), leapcnt: n(2), timecnt: n(3), typecnt: n(4), charcnt: n(5) };
}

function intlOffsets(timezone: string): ZoneOffsets {
  const format = new Intl.DateTimeFormat('en-US', {
    timeZone: timezone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  });
  return {
    source: 'intl',
    offsetAt(epochMs) {
      const p: Record<string, number> = {};
      for (const part of format.formatToParts(new Date(epochMs))) if (part.type !== 'literal') p[part.type] = Number(part.value);
      const asUtc = Date.UTC(p['year']!, p['month']! - 1, p['day']!, p['hour']!, p['minute']!, p['second']!);
      return asUtc - Math.floor(epochMs / 1000) * 1000;
    },
  };
}
