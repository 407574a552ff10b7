import type { ScheduleDocument } from '../contract/schedule.ts';
import { nextDate, type ZoneCalendar } from './zone-calendar.ts';

/**
 * The nightly quiet window, read in the schedule's zone: `from` 22:00 `until` 06:30 crosses midnight; a
 * window with `from` equal to `until` is empty. Only an emergency or the village's own alarm sounds in it.
 */
export class QuietHours {
  private readonly from: number;
  private readonly until: number;

  constructor(
    readonly window: ScheduleDocument['quietHours'],
    private readonly calendar: ZoneCalendar,
  ) {
    this.from = minutesOf(window.from);
    this.until = minutesOf(window.until);
  }

  contains(epochMs: number): boolean {
    const t = this.calendar.local(epochMs);
    const minute = t.hour * 60 + t.minute;
    if (this.from === this.until) return false;
    return this.from < this.until ? minute >= this.from && minute < this.until : minute >= this.from || minute < this.until;
  }

  /** The next instant quiet hours begin, strictly after `afterMs` (undefined for an empty window). */
  nextStart(afterMs: number): number | undefined {
    if (this.from === this.until) return undefined;
    let day = this.calendar.local(afterMs);
    for (let i = 0; i < 3; i++) {
      const start = this.calendar.instant({ ...day, hour: Math.floor(this.from / 60), minute: this.from % 60, second: 0 });
      if (start !== undefined && start > afterMs) return start;
      day = { ...day, ...nextDate(day) };
    }
    return undefined;
  }

  toString(): string {
    return `${this.window.from}–${this.window.until}`;
  }
}

function minutesOf(hhmm: string): number {
  const [h, m] = hhmm.split(':').map(Number) as [number, number];
  return h * 60 + m;
}
