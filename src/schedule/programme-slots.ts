import cron from 'node-cron';
import type { Programme } from '../contract/schedule.ts';
import { dateText, nextDate, weekday, type LocalTime, type ZoneCalendar } from './zone-calendar.ts';

/**
 * When a programme is due: its cron expression (parsed by node-cron, so the syntax is node-cron's, with
 * its rule that day of month AND day of week must both match), read in the schedule's zone, within its
 * valid days and outside its exception dates. Pure: the scheduler asks, nothing here keeps time.
 */
export class ProgrammeSlots {
  private readonly seconds: number[];
  private readonly minutes: number[];
  private readonly hours: number[];
  private readonly daysOfMonth: ReadonlySet<number>;
  private readonly months: ReadonlySet<number>;
  private readonly weekdays: ReadonlySet<number>;
  private readonly except: ReadonlySet<string>;

  constructor(
    private readonly programme: Pick<Programme, 'cron' | 'validFrom' | 'validUntil' | 'dates'>,
    private readonly calendar: ZoneCalendar,
    /** How far ahead `next` looks before it says "never" (a 29 February programme looks up to 8 years). */
    private readonly horizonDays = 366 * 8,
  ) {
    // The schema refused L/W/# tokens, so every day field is numbers.
    const fields = cron.parse(programme.cron);
    const ascending = (values: readonly (number | string)[]) => values.filter((v): v is number => typeof v === 'number').sort((a, b) => a - b);
    this.seconds = ascending(fields.second);
    this.minutes = ascending(fields.minute);
    this.hours = ascending(fields.hour);
    this.daysOfMonth = new Set(ascending(fields.dayOfMonth));
    this.months = new Set(ascending(fields.month));
    this.weekdays = new Set(ascending(fields.dayOfWeek).map((d) => d % 7));
    this.except = new Set(programme.dates?.except ?? []);
  }

  /** The first slot strictly after `afterMs`, or undefined when there is none within the horizon. */
  next(afterMs: number): number | undefined {
    const start = this.calendar.local(afterMs);
    let day: Pick<LocalTime, 'year' | 'month' | 'day'> = start;
    for (let i = 0; i < this.horizonDays; i++) {
      const date = dateText(day);
      if (this.programme.validUntil !== undefined && date > this.programme.validUntil) return undefined;
      if (this.runsOn(day, date)) {
        const found = this.firstOnDay(day, i === 0 ? start : undefined, afterMs);
        if (found !== undefined) return found;
      }
      day = nextDate(day);
    }
    return undefined;
  }

  /** Every slot in (fromMs, toMs], oldest first, at most `limit`. */
  between(fromMs: number, toMs: number, limit: number): number[] {
    const slots: number[] = [];
    let at = fromMs;
    while (slots.length < limit) {
      const slot = this.next(at);
      if (slot === undefined || slot > toMs) break;
      slots.push(slot);
      at = slot;
    }
    return slots;
  }

  private runsOn(day: Pick<LocalTime, 'year' | 'month' | 'day'>, date: string): boolean {
    if (!this.months.has(day.month) || !this.daysOfMonth.has(day.day) || !this.weekdays.has(weekday(day))) return false;
    if (this.programme.validFrom !== undefined && date < this.programme.validFrom) return false;
    return !this.except.has(date);
  }

  /** The first time of the day after `afterMs`; only times not before `lower` are tried on the first day. */
  private firstOnDay(day: Pick<LocalTime, 'year' | 'month' | 'day'>, lower: LocalTime | undefined, afterMs: number): number | undefined {
    for (const hour of this.hours) {
      if (lower !== undefined && hour < lower.hour) continue;
      const sameHour = lower !== undefined && hour === lower.hour;
      for (const minute of this.minutes) {
        if (sameHour && minute < lower.minute) continue;
        const sameMinute = sameHour && minute === lower.minute;
        for (const second of this.seconds) {
          if (sameMinute && second < lower.second) continue;
          const at = this.calendar.instant({ ...day, hour, minute, second });
          if (at !== undefined && at > afterMs) return at;
        }
      }
    }
    return undefined;
  }
}
