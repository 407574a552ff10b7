import { zoneOffsets, type ZoneOffsets } from '../platform/zone-offsets.ts';

/**
 * Wall-clock arithmetic in one IANA time zone, whatever zone the Pi itself is set to: a county's series is
 * set in Beijing time, and a Pi left in UTC by its image must still play the 07:30 programme at 07:30 there.
 */

export interface LocalTime {
  year: number;
  /** 1–12 */
  month: number;
  /** 1–31 */
  day: number;
  hour: number;
  minute: number;
  second: number;
}

export class ZoneCalendar {
  private readonly offsets: ZoneOffsets;

  constructor(
    readonly timezone: string,
    offsets?: ZoneOffsets,
  ) {
    this.offsets = offsets ?? zoneOffsets(timezone);
  }

  /** The local date and time of an instant (seconds truncated). */
  local(epochMs: number): LocalTime {
    const shifted = new Date(Math.floor(epochMs / 1000) * 1000 + this.offsets.offsetAt(epochMs));
    return {
      year: shifted.getUTCFullYear(),
      month: shifted.getUTCMonth() + 1,
      day: shifted.getUTCDate(),
      hour: shifted.getUTCHours(),
      minute: shifted.getUTCMinutes(),
      second: shifted.getUTCSeconds(),
    };
  }

  /** The zone's offset from UTC at an instant, in ms. */
  offsetAt(epochMs: number): number {
    return this.offsets.offsetAt(epochMs);
  }

  /**
   * The instant a local time names, or undefined when it does not exist (skipped by a daylight-saving change).
   * In the repeated hour of a change back, the first of the two instants.
   */
  instant(t: LocalTime): number | undefined {
    const asUtc = Date.UTC(t.year, t.month - 1, t.day, t.hour, t.minute, t.second);
    // The offsets a day either side cover both readings of a time around one change.
    const before = asUtc - this.offsetAt(asUtc - 86_400_000);
    const after = asUtc - this.offsetAt(asUtc + 86_400_000);
    for (const candidate of [Math.min(before, after), Math.max(before, after)]) {
      if (sameLocal(this.local(candidate), t)) return candidate;
    }
    return undefined;
  }

  /** `YYYY-MM-DD` of an instant in this zone. */
  date(epochMs: number): string {
    return dateText(this.local(epochMs));
  }
}

export function dateText(t: Pick<LocalTime, 'year' | 'month' | 'day'>): string {
  return `${String(t.year).padStart(4, '0')}-${String(t.month).padStart(2, '0')}-${String(t.day).padStart(2, '0')}`;
}

/** `YYYY-MM-DD` that names a real day (2026-02-30 does not: Date.UTC would roll it into March). */
export function isCalendarDate(text: string): boolean {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (match === null) return false;
  const ms = Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3]));
  return new Date(ms).toISOString().slice(0, 10) === text;
}

/** The `YYYY-MM-DD` `days` after (or before) `date`: dates only, no zone involved. */
export function addDays(date: string, days: number): string {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

/** The calendar day after `t` (no zone involved: dates only). */
export function nextDate(t: Pick<LocalTime, 'year' | 'month' | 'day'>): { year: number; month: number; day: number } {
  const d = new Date(Date.UTC(t.year, t.month - 1, t.day + 1));
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
}

/** 0 = Sunday, as cron counts. */
export function weekday(t: Pick<LocalTime, 'year' | 'month' | 'day'>): number {
  return new Date(Date.UTC(t.year, t.month - 1, t.day)).getUTCDay();
}

function sameLocal(a: LocalTime, b: LocalTime): boolean {
  return a.year === b.year && a.month === b.month && a.day === b.day && a.hour === b.hour && a.minute === b.minute && a.second === b.second;
}
