import type { Logger } from 'pino';
import type { DailySummary } from '../contract/schedule-summary.ts';
import { dayBounds, summarizeDay } from './daily-summary.ts';
import { addDays, type ZoneCalendar } from './zone-calendar.ts';
import type { ProgrammeLog } from './types.ts';

/**
 * Once a day, the day before as the county counts it for its monthly 普法 statistics: per programme, how many
 * firings were due, played, missed and why. Each local day is summarised once (the log remembers the last),
 * through the durable outbox; a village that was off for a few days catches up on the next start.
 */
export interface DailyReportsOptions {
  log: ProgrammeLog;
  now: () => number;
  /** Dates written under an untrusted clock would name the wrong day. */
  trusted: () => boolean;
  /** The running schedule's calendar, or undefined while no schedule runs (nothing to count). */
  calendar: () => ZoneCalendar | undefined;
  send: (summary: DailySummary) => void;
  logger: Logger;
  /** Days further back than this are not summarised after a long outage (their firings stay in the log). */
  backfillDays?: number;
}

export class DailyReports {
  constructor(private readonly options: DailyReportsOptions) {}

  /** Summarises every finished local day not yet summarised, oldest first. */
  catchUp(): void {
    const { log, logger } = this.options;
    const calendar = this.options.calendar();
    if (calendar === undefined || !this.options.trusted()) return;
    const today = calendar.date(this.options.now());
    const yesterday = addDays(today, -1);
    const last = log.summarizedThrough();
    if (last !== undefined && last >= yesterday) return;
    const earliest = addDays(today, -(this.options.backfillDays ?? 7));
    // A first start sends yesterday's only: before it, nothing of this village's schedule was counted.
    let day = last === undefined ? yesterday : maxDate(addDays(last, 1), earliest);
    while (day <= yesterday) {
      const [start, end] = dayBounds(day, calendar);
      const summary = summarizeDay(log.between(start, end), { date: day, calendar });
      this.options.send(summary);
      log.setSummarizedThrough(day);
      logger.info(
        { date: day, due: summary.totals.due, played: summary.totals.played, missed: summary.totals.missed },
        'daily programme summary stored',
      );
      day = addDays(day, 1);
    }
  }
}

function maxDate(a: string, b: string): string {
  return a > b ? a : b;
}
