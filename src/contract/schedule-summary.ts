import * as z from 'zod';
import { programmeSchema, scheduleDateSchema } from './schedule.ts';

/**
 * A village's programme completion for one local calendar day, as it reports it to the county once a day:
 * what the county counts its monthly 普法 completion statistics from. Counted from the completion log.
 */

/** Reasons are free text from the scheduler and the player; kept short so one summary stays a small message. */
export const SUMMARY_REASON_MAX = 120;
/** Per programme, the most frequent reasons only: a broken media file must not make the report unbounded. */
export const SUMMARY_REASONS_MAX = 10;

const count = z.number().int().min(0);

/** Every outcome counted; `due` is the sum of all outcomes and `played` of those that started. */
export const firingCountsSchema = z
  .object({
    /** Every firing recorded for the day, whatever became of it. */
    due: count,
    /** Firings that started to sound: finished + preempted + stopped + playing. */
    played: count,
    /** Started and not ended yet (the summary was made while it played, or a restart cut it off unrecorded). */
    playing: count,
    finished: count,
    preempted: count,
    stopped: count,
    failed: count,
    missed: count,
    skipped: count,
    withheld: count,
  })
  .strict();
export type FiringCounts = z.infer<typeof firingCountsSchema>;

export const programmeDaySchema = firingCountsSchema
  .extend({
    programme: programmeSchema.shape.id,
    /** Reason → how many firings of the day gave it; the SUMMARY_REASONS_MAX most frequent. */
    reasons: z
      .record(z.string().min(1).max(SUMMARY_REASON_MAX), count)
      .refine((reasons) => Object.keys(reasons).length <= SUMMARY_REASONS_MAX, `at most ${SUMMARY_REASONS_MAX} reasons`),
  })
  .strict();
export type ProgrammeDay = z.infer<typeof programmeDaySchema>;

export const dailySummarySchema = z
  .object({
    /** The local calendar day, in `timezone`. */
    date: scheduleDateSchema,
    /** The IANA zone the day was counted in: the schedule's. */
    timezone: z.string().min(1).max(64),
    /** By programme id. Programmes of every schedule version that fired that day, so more than one document's worth. */
    programmes: z.array(programmeDaySchema).max(1000),
    totals: firingCountsSchema,
  })
  .strict();
export type DailySummary = z.infer<typeof dailySummarySchema>;
