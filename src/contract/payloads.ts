import * as z from 'zod';
import { firingOutcomes } from './schedule.ts';
import { dailySummarySchema } from './schedule-summary.ts';
import {
  alarmTypeSchema,
  broadcastStatusSchema,
  contentSchema,
  countyPrioritySchema,
  emergencyLevelSchema,
  playbackEventSchema,
  prioritySchema,
} from './vocabulary.ts';
import { scheduleDocumentSchema } from './schedule.ts';

/**
 * Every payload that crosses the county link, one schema each; the TypeScript types are inferred from
 * them. Outbound payloads are validated in tests (and the contract document's examples against them);
 * inbound ones are validated on arrival, because nothing from the network is trusted.
 */

const isoWithOffset = z.iso.datetime({ offset: true, local: false });

export const locationSchema = z
  .object({
    village: z.string(),
    terminal: z.string(),
    lat: z.number(),
    lon: z.number(),
    address: z.string().optional(),
  })
  .strict();

export const alarmPayloadSchema = z
  .object({
    id: z.string().uuid(),
    seq: z.number().int().positive(),
    village: z.string(),
    terminal: z.string(),
    type: alarmTypeSchema,
    raisedAt: isoWithOffset,
    location: locationSchema,
    /** 1 on the first publish, +1 on each republish. */
    attempt: z.number().int().min(1),
    /** Presses counted on this alarm while it was waiting for the county's ack (in a follow-up: since the first). */
    presses: z.number().int().min(1),
    /** A follow-up: more presses of that alarm's terminal came after a copy of it had gone out. */
    followUpOf: z.string().uuid().optional(),
    /** Present (and false) while `raisedAt` comes from a clock that is not trusted (no NTP, no county time yet). */
    clockTrusted: z.literal(false).optional(),
    /** Present (and false) only while the record lives in the village's memory, not yet on its card. */
    durable: z.literal(false).optional(),
  })
  .strict();
export type AlarmPayload = z.infer<typeof alarmPayloadSchema>;

export const faultKindSchema = z.enum([
  'device-offline',
  'device-recovered',
  'bus-lost',
  'bus-restored',
  'amplifier-overheat',
  'amplifier-overheat-cleared',
  'amplifier-line-fault',
  'amplifier-line-fault-cleared',
  /** The data directory cannot be written (full, read-only) or the outbox was lost or replaced. */
  'storage',
  'storage-recovered',
  /** The sound output cannot be opened or a player pipeline failed on it. */
  'audio',
  'audio-recovered',
  /** An unlatched column is read less often than `timing.maxMissablePressMs`: a short press can go unseen. */
  'missable-press',
  'missable-press-cleared',
  /** The wall clock moved by more than a minute against the monotonic clock (a correction, a bad NTP answer, a manual set). */
  'clock-jump',
  /** Programmes due within the hour whose media are not in the library (not fetched, or failed their check). */
  'schedule-media',
  'schedule-media-recovered',
]);
export type FaultKind = z.infer<typeof faultKindSchema>;

export const faultPayloadSchema = z
  .object({
    id: z.string().uuid(),
    seq: z.number().int().positive(),
    village: z.string(),
    kind: faultKindSchema,
    /** A device id, or a bus id for bus faults. */
    subject: z.string(),
    detail: z.string(),
    raisedAt: isoWithOffset,
    attempt: z.number().int().min(1),
    /** Present (and false) only while the record lives in the village's memory, not yet on its card. */
    durable: z.literal(false).optional(),
  })
  .strict();
export type FaultPayload = z.infer<typeof faultPayloadSchema>;

export const statePayloadSchema = z
  .object({
    online: z.boolean(),
    village: z.string(),
    version: z.string().optional(),
    since: isoWithOffset.optional(),
  })
  .strict();
export type StatePayload = z.infer<typeof statePayloadSchema>;

const protocolErrorCounts = z.record(z.string(), z.number().int().min(0));

export const healthPayloadSchema = z
  .object({
    village: z.string(),
    at: isoWithOffset,
    version: z.string(),
    uptimeSeconds: z.number().min(0),
    outbox: z
      .object({
        depth: z.number().int().min(0),
        oldestUnackedAgeSeconds: z.number().min(0).nullable(),
        alarm: z.number().int().min(0),
        fault: z.number().int().min(0),
        report: z.number().int().min(0),
      })
      .strict(),
    devices: z.array(
      z
        .object({
          id: z.string(),
          bus: z.string(),
          model: z.string(),
          online: z.boolean(),
          latching: z.boolean().nullable(),
          /** An unlatched button can miss a press shorter than this (ms); null when latched. */
          missablePressMs: z.number().nullable(),
          pollIntervalMs: z.number().nullable(),
          errors: protocolErrorCounts,
          /** Last read status of devices whose profile declares it (amplifiers): power, overheat, line-fault. */
          status: z.record(z.string(), z.boolean()).optional(),
        })
        .strict(),
    ),
    memory: z.object({ rssBytes: z.number().int(), heapUsedBytes: z.number().int() }).strict(),
    /** Whether the village's time can be believed, and what vouches for it. */
    clock: z
      .object({ trusted: z.boolean(), source: z.enum(['system', 'county', 'none']), correctionMs: z.number().min(0) })
      .strict()
      .optional(),
    /**
     * The data directory: `ok`; `reserve` (full, running on the outbox's reserve); `memory` (takes no
     * writes: records live in memory until it does, and a restart would lose them).
     */
    storage: z
      .object({
        state: z.enum(['ok', 'reserve', 'memory']),
        problem: z.string().nullable(),
        memoryOnly: z.number().int().min(0),
        freeBytes: z.number().int().min(0).nullable(),
      })
      .strict()
      .optional(),
    /** Start-up configuration problems (devices refused, profiles rejected); the county should know. */
    problems: z.array(z.string()),
    /** The sound output as last checked: `ok` null before the first check, `reason` when it failed. */
    audio: z.object({ device: z.string(), ok: z.boolean().nullable(), reason: z.string().optional(), checkedAt: isoWithOffset.nullable() }).strict(),
    /** The running programme schedule (null: none), and today's firings in its zone by outcome. */
    schedule: z
      .object({
        version: z.number().int().nullable(),
        source: z.enum(['village', 'all', 'local']).nullable(),
        programmes: z.number().int().min(0),
        today: z.record(z.enum(firingOutcomes), z.number().int().min(0)),
        mediaMissing: z.array(z.object({ programme: z.string(), reason: z.string() }).strict()),
      })
      .strict()
      .optional(),
  })
  .strict();
export type HealthPayload = z.infer<typeof healthPayloadSchema>;

/**
 * County → village commands travel as compact JWS (EdDSA / Ed25519). These are the claims inside, after
 * the signature checked out: who it is for, when it was issued and expires, and one id never to accept twice.
 */
const commandClaims = {
  jti: z
    .string()
    .min(8)
    .max(128)
    .regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits, "_", ".", ":" and "-" only'),
  iat: z.number().int().positive(),
  exp: z.number().int().positive(),
  /** A village id, or `all`. */
  aud: z.string().min(1).max(64),
};

const zoneList = z.union([
  z.literal('all'),
  z
    .array(z.string().regex(/^[A-Za-z0-9_-]+$/))
    .min(1)
    .max(64),
]);

export const broadcastCommandSchema = z
  .object({
    ...commandClaims,
    cmd: z.literal('broadcast'),
    priority: countyPrioritySchema,
    /** Required for (and only for) emergencies. */
    level: emergencyLevelSchema.optional(),
    status: broadcastStatusSchema,
    zones: zoneList,
    content: contentSchema,
    chime: z.boolean().default(false),
    repeat: z.number().int().min(1).max(10).default(1),
  })
  .strict()
  .refine((c) => (c.priority === 'emergency') === (c.level !== undefined), {
    message: 'level is required for an emergency and only for an emergency',
    path: ['level'],
  });
export type BroadcastCommand = z.infer<typeof broadcastCommandSchema>;

export const stopCommandSchema = z
  .object({
    ...commandClaims,
    cmd: z.literal('stop'),
    /** One broadcast by its `jti`, or everything playing and queued. */
    target: z.union([z.literal('all'), z.object({ jti: commandClaims.jti }).strict()]),
  })
  .strict();
export type StopCommand = z.infer<typeof stopCommandSchema>;

export const ackCommandSchema = z.object({ ...commandClaims, cmd: z.literal('ack'), id: z.string().uuid() }).strict();
export type AckCommand = z.infer<typeof ackCommandSchema>;

/**
 * The programme schedule, retained on `cmd/schedule`: valid by its `version` (a village runs the highest it
 * has verified) and the programmes' own days, so `exp` is optional: a retained document outlives any short expiry.
 */
export const scheduleCommandSchema = z
  .object({ ...commandClaims, exp: commandClaims.exp.optional(), cmd: z.literal('schedule'), schedule: scheduleDocumentSchema })
  .strict();
export type ScheduleCommand = z.infer<typeof scheduleCommandSchema>;

/** The county's time, retained on `all/cmd/time` and refreshed: its `iat` is all it says (the trusted clock's floor). */
export const timeCommandSchema = z.object({ ...commandClaims, cmd: z.literal('time') }).strict();
export type TimeCommand = z.infer<typeof timeCommandSchema>;

/** Village → county: what happened to a command (or a local alarm / programme), durable and acked like alarms. */
/** Reports about the schedule rather than one broadcast. */
export const scheduleReportEventSchema = z.enum(['schedule-applied', 'programme-summary']);

/** What was done in the village office console, each reported in the user's name (the audit trail). */
export const consoleAuditActionSchema = z.enum(['login', 'login-refused', 'logout', 'announce', 'stop', 'test-alarm', 'speaker-test']);
export type ConsoleAuditAction = z.infer<typeof consoleAuditActionSchema>;

/** `console` reports: who did what in the office console, from which address, about which broadcast or alarm. */
export const consoleAuditSchema = z
  .object({
    action: consoleAuditActionSchema,
    /** The account name used, or for a refused login the name typed (cut to 64 characters). */
    user: z.string().max(64),
    role: z.enum(['official', 'installer']).optional(),
    /** The client's IP address as the console saw it. */
    address: z.string().max(64),
    /** The broadcast (its `jti`), the alarm (its `id`) or the terminal it concerns. */
    subject: z.string().max(128).optional(),
    detail: z.string().max(500).optional(),
  })
  .strict();
export type ConsoleAudit = z.infer<typeof consoleAuditSchema>;

export const reportPayloadSchema = z
  .object({
    id: z.string().uuid(),
    seq: z.number().int().positive(),
    village: z.string(),
    /** The command's `jti` (for local items: the local id; for an unreadable command: null). */
    jti: z.string().nullable(),
    event: z.union([playbackEventSchema, scheduleReportEventSchema, z.literal('console')]),
    /** `schedule-applied`: the version kept from its source, and whether it is the one running (the village's own wins over `all`). */
    schedule: z
      .object({ version: z.number().int(), programmes: z.number().int().min(0), source: z.enum(['village', 'all']), running: z.boolean() })
      .strict()
      .optional(),
    /** `programme-summary`: one local day of the completion log, per programme (sent once a day for the day before). */
    summary: dailySummarySchema.optional(),
    /** `console` only: the office console's audit entry. */
    console: consoleAuditSchema.optional(),
    reason: z.string().optional(),
    priority: prioritySchema.nullable(),
    level: emergencyLevelSchema.optional(),
    status: broadcastStatusSchema.nullable(),
    zones: z.array(z.string()),
    /** Zones covered by this report whose amplifier is faulty, and why. */
    faultyZones: z.array(z.object({ zone: z.string(), amplifier: z.string(), fault: z.string() }).strict()),
    at: isoWithOffset,
    attempt: z.number().int().min(1),
    /** Present (and false) only while the record lives in the village's memory, not yet on its card. */
    durable: z.literal(false).optional(),
  })
  .strict();
export type ReportPayload = z.infer<typeof reportPayloadSchema>;
