import type { Logger } from 'pino';
import type { DailySummary } from '../contract/schedule-summary.ts';
import { dayBounds, localDate, summarizeDay } from './daily-summary.ts';
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
  /** The running schedule's zone, or undefined while no schedule runs (nothing to count). */
  timezone: () => string | undefined;
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
    const timezone = this.options.timezone();
    if (timezone === undefined || !this.options.trusted()) return;
    const today = localDate(this.options.now(), timezone);
    const yesterday = addDays(today, -1);
    const last = log.summarizedThrough();
    if (last !== undefined && last >= yesterday) return;
    const earliest = addDays(today, -(this.options.backfillDays ?? 7));
    // A first start sends yesterday's only: before it, nothing of this village's schedule was counted.
    let day = last === undefined ? yesterday : maxDate(addDays(last, 1), earliest);
    while (day <= yesterday) {
      const [start, end] = dayBounds(day, timezone);
      const summary = summarizeDay(log.between(start, end), { date: day, timezone });
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

function addDays(date: string, days: number): string {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

function maxDate(a: string, b: string): string {
  return a > b ? a : b;
}
