import { SUMMARY_REASON_MAX, SUMMARY_REASONS_MAX, type DailySummary, type FiringCounts, type ProgrammeDay } from '../contract/schedule-summary.ts';
import type { FiringRecord } from './types.ts';
import { addDays, isCalendarDate, type ZoneCalendar } from './zone-calendar.ts';

/**
 * A day of the completion log, counted per programme: the daily report to the county, today's counts in
 * health, and the totals of `village-edge log`. Days are calendar days of the schedule's zone, not the Pi's.
 */

/** UTC offsets run from -12:00 to +14:00: the start of a local day lies within this of its wall-clock midnight read as UTC. */
const searchBeforeMs = 15 * 3600_000;
const searchAfterMs = 13 * 3600_000;

/**
 * [start, end) in epoch ms of a local calendar day: 24 h, or 23 h and 25 h on the days a DST zone changes
 * its clocks, and correct where a change skips midnight itself (the day then starts at 01:00).
 */
export function dayBounds(date: string, calendar: ZoneCalendar): [number, number] {
  return [startOf(date, calendar), startOf(addDays(utcDate(date), 1), calendar)];
}

/** Counts every firing of the day (by slot, in the day's zone); records of other days are left out. */
export function summarizeDay(records: readonly FiringRecord[], day: { date: string; calendar: ZoneCalendar }): DailySummary {
  const [start, end] = dayBounds(day.date, day.calendar);
  const byProgramme = new Map<string, { counts: FiringCounts; reasons: Map<string, number> }>();
  const totals = noFirings();
  for (const record of records) {
    if (record.scheduledAt < start || record.scheduledAt >= end) continue;
    let entry = byProgramme.get(record.programme);
    if (entry === undefined) {
      entry = { counts: noFirings(), reasons: new Map() };
      byProgramme.set(record.programme, entry);
    }
    count(entry.counts, record);
    count(totals, record);
    if (record.reason !== undefined && record.reason !== '') {
      const reason = shortReason(record.reason);
      entry.reasons.set(reason, (entry.reasons.get(reason) ?? 0) + 1);
    }
  }
  const programmes: ProgrammeDay[] = [...byProgramme]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([programme, { counts, reasons }]) => ({ programme, ...counts, reasons: topReasons(reasons) }));
  return { date: day.date, timezone: day.calendar.timezone, programmes, totals };
}

function noFirings(): FiringCounts {
  return { due: 0, played: 0, playing: 0, finished: 0, preempted: 0, stopped: 0, failed: 0, missed: 0, skipped: 0, withheld: 0 };
}

function count(counts: FiringCounts, record: FiringRecord): void {
  counts.due += 1;
  counts[record.outcome] += 1;
  switch (record.outcome) {
    case 'playing':
    case 'finished':
    case 'preempted':
    case 'stopped':
      counts.played += 1;
      return;
    case 'failed':
    case 'missed':
    case 'skipped':
    case 'withheld':
      return;
  }
}

function shortReason(reason: string): string {
  return reason.length <= SUMMARY_REASON_MAX ? reason : `${reason.slice(0, SUMMARY_REASON_MAX - 1)}…`;
}

/** The most frequent first; ties by text, so the same log always gives the same report. */
function topReasons(reasons: Map<string, number>): Record<string, number> {
  const top = [...reasons].sort(([ra, na], [rb, nb]) => nb - na || (ra < rb ? -1 : ra > rb ? 1 : 0)).slice(0, SUMMARY_REASONS_MAX);
  return Object.fromEntries(top);
}

/**
 * The first millisecond whose local date is `date` or later, by bisection: no offset arithmetic to get wrong
 * around a change, and a day whose midnight a change skips starts when the clock jumps past it.
 */
function startOf(date: string, calendar: ZoneCalendar): number {
  const wallMidnight = Date.parse(`${utcDate(date)}T00:00:00Z`);
  let before = wallMidnight - searchBeforeMs;
  let after = wallMidnight + searchAfterMs;
  while (after - before > 1) {
    const middle = Math.floor((before + after) / 2);
    if (calendar.date(middle) >= date) after = middle;
    else before = middle;
  }
  return after;
}

/** `date` itself, or a RangeError: Date.UTC would roll 2026-02-30 over into March. */
function utcDate(date: string): string {
  if (!isCalendarDate(date)) throw new RangeError(`not a calendar date "YYYY-MM-DD": ${JSON.stringify(date)}`);
  return date;
}
