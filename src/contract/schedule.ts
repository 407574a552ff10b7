import cron from 'node-cron';
import * as z from 'zod';
import { contentSchema } from './vocabulary.ts';
import { zoneOffsets } from '../platform/zone-offsets.ts';

/**
 * The programme schedule: which programme plays when, where and how, as the county signs it (retained on
 * `cmd/schedule`) or as a village's own config holds it. One document, replaced whole by a higher `version`.
 */

export const DEFAULT_TIMEZONE = 'Asia/Shanghai';
export const DEFAULT_QUIET_HOURS = { from: '22:00', until: '06:30' } as const;

const localTime = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'a local time "HH:MM" (00:00–23:59)');
/** A calendar day in the schedule's time zone. */
export const scheduleDateSchema = z.iso.date();

/**
 * An IANA zone this machine knows: from the tz database where it has one (no ICU data mapped in for it, see
 * platform/zone-offsets.ts), else as Intl knows it.
 */
const timezone = z
  .string()
  .min(1)
  .max(64)
  .refine((zone) => {
    try {
      zoneOffsets(zone).offsetAt(0);
      return true;
    } catch {
      return false;
    }
  }, 'an IANA time zone such as "Asia/Shanghai"');

/**
 * node-cron syntax: five fields, or six with seconds first. Its last-day and weekday tokens (`L`, `15W`,
 * `5#2`) are refused: a programme series is set by plain days and times, and every token accepted here must
 * be one the village evaluates exactly as the county's tooling does.
 */
export const cronExpressionSchema = z
  .string()
  .max(200)
  .superRefine((expression, ctx) => {
    const fields = expression.trim().split(/\s+/);
    if (fields.length !== 5 && fields.length !== 6) {
      ctx.addIssue({ code: 'custom', message: `${fields.length} fields; 5 (minute hour day month weekday) or 6 (with seconds first) expected` });
      return;
    }
    const checked = cron.validateDetailed(expression);
    if (!checked.valid || checked.fields === undefined) {
      for (const error of checked.errors) ctx.addIssue({ code: 'custom', message: `${error.field}: ${error.message}` });
      return;
    }
    const { dayOfMonth, dayOfWeek } = checked.fields;
    if ([...dayOfMonth, ...dayOfWeek].some((value) => typeof value !== 'number'))
      ctx.addIssue({ code: 'custom', message: 'the L, W and # day tokens are not supported in programme schedules' });
  });

/** A media file the village fetches ahead of time and checks by size and sha256 before it may play. */
export const scheduleMediaSchema = z
  .object({
    kind: z.literal('media'),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, '64 lower-case hex digits'),
    url: z
      .url({ protocol: /^https?$/, error: 'an http:// or https:// URL' })
      .max(2048)
      .refine((url) => mediaExtension(url) !== undefined, 'the URL path must end in a file extension the player knows by (".mp3", ".wav")'),
    /** Bytes; checked before the file enters the library. */
    size: z
      .number()
      .int()
      .min(1)
      .max(1024 * 1024 * 1024),
  })
  .strict();
export type ScheduleMedia = z.infer<typeof scheduleMediaSchema>;

const ttsContent = contentSchema.options[0];
export const programmeContentSchema = z.discriminatedUnion('kind', [ttsContent, scheduleMediaSchema]);
export type ProgrammeContent = z.infer<typeof programmeContentSchema>;

export const programmeSchema = z
  .object({
    id: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, "_", "." and "-" only'),
    title: z.string().min(1).max(200).optional(),
    cron: cronExpressionSchema,
    zones: z.union([
      z.literal('all'),
      z
        .array(z.string().regex(/^[A-Za-z0-9_-]+$/))
        .min(1)
        .max(64),
    ]),
    content: programmeContentSchema,
    /** 0–100; the village's `broadcast.volume.scheduled` when absent. */
    volume: z.number().int().min(0).max(100).optional(),
    repeat: z.number().int().min(1).max(10).default(1),
    chime: z.boolean().default(false),
    /** First and last day (inclusive, in the schedule's zone) the programme runs. */
    validFrom: scheduleDateSchema.optional(),
    validUntil: scheduleDateSchema.optional(),
    /** Cut off after this long, wherever it is; quiet hours cut it earlier. */
    maxDurationS: z
      .number()
      .int()
      .min(1)
      .max(4 * 3600)
      .default(1800),
    /** Exceptions to the cron: days it does not run (holidays). */
    dates: z
      .object({ except: z.array(scheduleDateSchema).max(400) })
      .strict()
      .optional(),
  })
  .strict()
  .refine((p) => p.validFrom === undefined || p.validUntil === undefined || p.validFrom <= p.validUntil, {
    message: 'validUntil is before validFrom',
    path: ['validUntil'],
  });
export type Programme = z.infer<typeof programmeSchema>;

export const scheduleDocumentSchema = z
  .object({
    /** Grows with every new document; a village runs the highest it has verified. */
    version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    timezone: timezone.default(DEFAULT_TIMEZONE),
    /** Nothing but an emergency (or the village's own alarm) sounds from `from` until `until`, local time. */
    quietHours: z
      .object({ from: localTime, until: localTime })
      .strict()
      .default({ ...DEFAULT_QUIET_HOURS }),
    programmes: z.array(programmeSchema).max(500),
  })
  .strict()
  .superRefine((doc, ctx) => {
    const seen = new Set<string>();
    doc.programmes.forEach((p, i) => {
      if (seen.has(p.id)) ctx.addIssue({ code: 'custom', path: ['programmes', i, 'id'], message: `duplicate programme id "${p.id}"` });
      seen.add(p.id);
    });
  });
export type ScheduleDocument = z.infer<typeof scheduleDocumentSchema>;
export type ScheduleDocumentInput = z.input<typeof scheduleDocumentSchema>;

/** What happened to one firing of a programme (one cron slot). `playing` until the broadcast ends. */
export const firingOutcomes = ['playing', 'finished', 'preempted', 'stopped', 'failed', 'missed', 'skipped', 'withheld'] as const;
export type FiringOutcome = (typeof firingOutcomes)[number];

/** ".mp3" from `https://county/fa/2026-12.mp3?x=1`, lower-cased; undefined without one. */
export function mediaExtension(url: string): string | undefined {
  let path: string;
  try {
    path = new URL(url).pathname;
  } catch {
    return undefined;
  }
  return /(\.[A-Za-z0-9]{1,5})$/.exec(path)?.[1]?.toLowerCase();
}

/** Of one programme, what a village cannot play: zones it lacks, and the media type it has no player for. */
export interface UnplayableProgramme {
  /** Index in `programmes`. */
  index: number;
  missingZones: string[];
  /** The URL's extension (`(none)` without one) when no player plays it; null when it plays. */
  unplayableMedia: string | null;
}

/**
 * The programmes of a document a village could not play, in order: the one check of the config's own schedule
 * and of every county document, each caller saying it in its own words.
 */
export function unplayableProgrammes(
  document: Pick<ScheduleDocument, 'programmes'>,
  village: { zoneIds: ReadonlySet<string>; mediaExtensions: ReadonlySet<string> },
): UnplayableProgramme[] {
  const found: UnplayableProgramme[] = [];
  document.programmes.forEach((programme, index) => {
    const missingZones = programme.zones === 'all' ? [] : programme.zones.filter((zone) => !village.zoneIds.has(zone));
    const extension = programme.content.kind === 'media' ? mediaExtension(programme.content.url) : undefined;
    const unplayableMedia =
      programme.content.kind !== 'media' || (extension !== undefined && village.mediaExtensions.has(extension)) ? null : (extension ?? '(none)');
    if (missingZones.length > 0 || unplayableMedia !== null) found.push({ index, missingZones, unplayableMedia });
  });
  return found;
}

/** Where a programme's media lives inside the village's media library: named by its hash, so a new URL of the same file fetches nothing. */
export function mediaLibraryFile(media: Pick<ScheduleMedia, 'sha256' | 'url'>): string {
  return `programmes/${media.sha256}${mediaExtension(media.url) ?? ''}`;
}
