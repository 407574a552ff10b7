import { isoWithOffset } from '../platform/time.ts';
import { dayBounds } from './daily-summary.ts';
import type { RunningSchedule } from './running-schedule.ts';
import type { FiringRecord, ProgrammeLog, ScheduleSource } from './types.ts';
import { addDays } from './zone-calendar.ts';

/** One firing of the completion log, or a slot still to come (`due`); times in the schedule's zone. */
export interface ProgrammeFiringView {
  programme: string;
  /** The programme's title in the running document, when it has one (what an official knows it by). */
  title?: string;
  dueAt: string;
  zones: readonly string[];
  outcome: string;
  reason?: string;
}

/** What the office console shows of the programme schedule: which runs, what is due today and this week, what became of the last firings. */
export interface ProgrammeOverview {
  schedule: { version: number; source: ScheduleSource; timezone: string } | null;
  today: ProgrammeFiringView[];
  week: ProgrammeFiringView[];
  log: ProgrammeFiringView[];
}

export interface OverviewLimits {
  /** Slots listed per view, at most (a programme every minute would otherwise make thousands). */
  slots: number;
  /** Completion-log entries, newest first. */
  log: number;
}

const defaultLimits: OverviewLimits = { slots: 200, log: 50 };
/** How far back the newest log entries are looked for: a week and a day covers any retention worth showing. */
const logLookBackMs = 8 * 86_400_000;

/**
 * Today's slots of the running schedule (each with its outcome once the completion log has one), the slots
 * still to come in the next seven local days, and the newest firings of the log. Pure: time and log passed in.
 */
export function programmeOverview(options: {
  running: RunningSchedule | undefined;
  log: Pick<ProgrammeLog, 'between'>;
  zoneIds: readonly string[];
  now: number;
  limits?: Partial<OverviewLimits>;
}): ProgrammeOverview {
  const { running, log, now } = options;
  const limits = { ...defaultLimits, ...options.limits };
  const logged = log.between(now - logLookBackMs, now + 1);
  const newest = [...logged].sort((a, b) => b.scheduledAt - a.scheduledAt || b.at - a.at).slice(0, limits.log);
  if (running === undefined) {
    return { schedule: null, today: [], week: [], log: newest.map((r) => firingView(r, undefined, options.zoneIds)) };
  }
  const { calendar } = running;
  const today = calendar.date(now);
  const [dayStart, dayEnd] = dayBounds(today, calendar);
  const weekEnd = dayBounds(addDays(today, 6), calendar)[1];
  const todays = log.between(dayStart, dayEnd);
  const outcomeOf = new Map(todays.map((r) => [`${r.programme}@${r.scheduledAt}`, r]));
  const slotsIn = (from: number, to: number) =>
    [...running.programmes.values()]
      // `between` is (from, to]: one ms less on both ends makes it [from, to).
      .flatMap((entry) => entry.slots.between(from - 1, to - 1, limits.slots).map((at) => ({ entry, at })))
      .sort((a, b) => a.at - b.at || a.entry.programme.id.localeCompare(b.entry.programme.id))
      .slice(0, limits.slots);
  const zonesOf = (zones: 'all' | readonly string[]) => (zones === 'all' ? options.zoneIds : zones);
  const at = (ms: number) => isoWithOffset(ms, calendar.offsetAt(ms) / 60_000);
  return {
    schedule: { version: running.version, source: running.source, timezone: calendar.timezone },
    today: slotsIn(dayStart, dayEnd).map(({ entry, at: slot }) => {
      const record = outcomeOf.get(`${entry.programme.id}@${slot}`);
      return {
        programme: entry.programme.id,
        ...titleOf(entry.programme),
        dueAt: at(slot),
        zones: zonesOf(entry.programme.zones),
        outcome: record?.outcome ?? 'due',
        ...(record?.reason === undefined ? {} : { reason: record.reason }),
      };
    }),
    week: slotsIn(now + 1, weekEnd).map(({ entry, at: slot }) => ({
      programme: entry.programme.id,
      ...titleOf(entry.programme),
      dueAt: at(slot),
      zones: zonesOf(entry.programme.zones),
      outcome: 'due',
    })),
    log: newest.map((r) => firingView(r, running, options.zoneIds)),
  };
}

/** A log entry; its zones are the running document's for that programme (the log keeps none), or none when it left the schedule. */
function firingView(record: FiringRecord, running: RunningSchedule | undefined, zoneIds: readonly string[]): ProgrammeFiringView {
  const programme = running?.programmes.get(record.programme)?.programme;
  const zones = programme?.zones;
  const offset = running === undefined ? undefined : running.calendar.offsetAt(record.scheduledAt) / 60_000;
  return {
    programme: record.programme,
    ...(programme === undefined ? {} : titleOf(programme)),
    dueAt: isoWithOffset(record.scheduledAt, offset),
    zones: zones === undefined ? [] : zones === 'all' ? zoneIds : zones,
    outcome: record.outcome,
    ...(record.reason === undefined ? {} : { reason: record.reason }),
  };
}

function titleOf(programme: { title?: string | undefined }): { title?: string } {
  return programme.title === undefined ? {} : { title: programme.title };
}
