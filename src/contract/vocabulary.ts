import * as z from 'zod';

/**
 * The words village and county share, one list each: what kind of alarm, how urgent a broadcast, what
 * happened to it, what to play, which fault. The payload schemas (payloads.ts), the broadcast domain and the
 * config all take them from here, so a word added once is known everywhere and a word missing fails to compile.
 */

/** A villager's press, the column's tamper loop, or a commissioning press (a column in test mode). */
export const alarmTypeSchema = z.enum(['button', 'tamper', 'test']);
export type AlarmType = z.infer<typeof alarmTypeSchema>;

/** Highest first. A higher priority preempts a lower one at once; equal ones queue in order. */
export const prioritySchema = z.enum(['emergency', 'local-alarm', 'announcement', 'scheduled']);
export type Priority = z.infer<typeof prioritySchema>;
export const priorities = prioritySchema.options;

/** What the county may order; `local-alarm` and `scheduled` are the village's own. */
export const countyPrioritySchema = prioritySchema.extract(['emergency', 'announcement']);

/** `actual` plays publicly; `exercise` plays with the drill chime and says so; `test` drives everything but the loudspeakers. */
export const broadcastStatusSchema = z.enum(['actual', 'exercise', 'test']);
export type BroadcastStatus = z.infer<typeof broadcastStatusSchema>;
export const broadcastStatuses = broadcastStatusSchema.options;

/** 1 = 特别重大 (particularly serious), 2 = 重大, 3 = 较大, 4 = 一般 (general); emergencies only. */
export const emergencyLevelSchema = z.union([z.literal(1), z.literal(2), z.literal(3), z.literal(4)]);
export type EmergencyLevel = z.infer<typeof emergencyLevelSchema>;

/** What happened to a broadcast, local alarm or programme; each becomes one report. */
export const playbackEventSchema = z.enum(['accepted', 'rejected', 'queued', 'started', 'preempted', 'stopped', 'finished', 'failed', 'tested']);
export type PlaybackEventKind = z.infer<typeof playbackEventSchema>;
export const playbackEvents = playbackEventSchema.options;

/** What to play: text to speak, or a file of the local media library checked by its sha256. */
export const contentSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('tts'),
      // A NUL cannot be passed as a process argument; other control characters have no business in speech.
      text: z
        .string()
        .min(1)
        .max(2000)
        // biome-ignore lint/suspicious/noControlCharactersInRegex: the pattern names control characters in order to refuse them.
        .regex(/^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]*$/, 'no control characters'),
    })
    .strict(),
  z
    .object({
      kind: z.literal('media'),
      file: z
        .string()
        .max(255)
        .regex(
          /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/,
          'a path inside the media library: letters, digits, ".", "-", "_" and "/" between names, no leading "/"',
        )
        // "." is a legal character, so the regex alone lets "../x" and "a/./b" through.
        .refine(
          (file) => file.split('/').every((name) => name !== '.' && name !== '..'),
          'no "." or ".." path segment: the file must stay inside the media library',
        ),
      sha256: z.string().regex(/^[0-9a-f]{64}$/, '64 lower-case hex digits'),
    })
    .strict(),
]);
export type Content = z.infer<typeof contentSchema>;
