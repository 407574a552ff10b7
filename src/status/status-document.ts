import * as z from 'zod';
import { healthPayloadSchema } from '../contract/payloads.ts';
import { join } from 'node:path';

/**
 * What `village-edge status` reads from the running service over its unix socket: one request (`status`
 * and a newline), one JSON document, then the service closes the connection. The health report the county
 * gets, plus what only a technician at the Pi needs: the link's history, each device's last change and
 * error, and the machine itself. The CLI parses the answer with this schema, so a CLI and a service of
 * different versions disagree loudly rather than print half a picture.
 */

const iso = z.iso.datetime({ offset: true, local: false });

export const statusDocumentSchema = z
  .object({
    /** The document's format; a change that an older CLI would misread gets a new number. */
    format: z.literal(1),
    health: healthPayloadSchema,
    link: z
      .object({
        /** The broker's URL, without any user or password in it. */
        url: z.string(),
        connected: z.boolean(),
        lastConnectedAt: iso.nullable(),
        lastDisconnectedAt: iso.nullable(),
        lastDisconnectReason: z.string().nullable(),
      })
      .strict(),
    /**
     * Per configured device: when it last answered well, and what the drivers' events said since start
     * (null: nothing yet). `health.devices` has online and the error counts.
     */
    devices: z.array(
      z
        .object({
          id: z.string(),
          label: z.string(),
          role: z.string(),
          /**
           * Its last good reply (a poll answered, a write acknowledged, a valid line heard); null if none
           * since start, or if the device is not running (refused at start). Absent from a service older
           * than this field, such as one not yet restarted after an upgrade.
           */
          lastReplyAt: iso.nullable().optional(),
          lastChange: z.object({ online: z.boolean(), at: iso, reason: z.string().optional() }).strict().nullable(),
          lastError: z.object({ kind: z.string(), detail: z.string(), at: iso }).strict().nullable(),
        })
        .strict(),
    ),
    system: z
      .object({
        dataDir: z.object({ path: z.string(), freeBytes: z.number().int().min(0).nullable() }).strict(),
        memory: z.object({ totalBytes: z.number().int().min(0), availableBytes: z.number().int().min(0) }).strict(),
        loadAverage: z.array(z.number()).length(3),
        /** Every readable zone under the thermal folder; empty where the board has none. */
        temperatures: z.array(z.object({ zone: z.string(), type: z.string().nullable(), celsius: z.number() }).strict()),
      })
      .strict(),
  })
  .strict();
export type StatusDocument = z.infer<typeof statusDocumentSchema>;

/** The one request the socket understands today, as a line. */
export const statusRequest = 'status';

/** Where the service listens and the CLI connects, from the config alone (both read the same file). */
export function statusSocketPath(config: { dataDir: string; status: { socket?: string | undefined } }): string {
  return config.status.socket ?? join(config.dataDir, 'status.sock');
}
