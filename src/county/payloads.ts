import { z } from 'zod';

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

export const alarmTypeSchema = z.enum(['button', 'tamper', 'test']);
export type AlarmType = z.infer<typeof alarmTypeSchema>;

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
    /** Presses counted on this alarm while it was waiting for the county's ack. */
    presses: z.number().int().min(1),
  })
  .strict();
export type AlarmPayload = z.infer<typeof alarmPayloadSchema>;

export const faultKindSchema = z.enum(['device-offline', 'device-recovered', 'bus-lost', 'bus-restored']);
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
        })
        .strict(),
    ),
    memory: z.object({ rssBytes: z.number().int(), heapUsedBytes: z.number().int() }).strict(),
    /** Start-up configuration problems (devices refused, profiles rejected); the county should know. */
    problems: z.array(z.string()),
  })
  .strict();
export type HealthPayload = z.infer<typeof healthPayloadSchema>;

/** County → village. Plain JSON for now; the broadcast work moves it to a signed JWS. */
export const ackPayloadSchema = z.object({ id: z.string().uuid() }).strict();
export type AckPayload = z.infer<typeof ackPayloadSchema>;
