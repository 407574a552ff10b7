import type * as z from 'zod';
import { describeIssues } from '../platform/schema-errors.ts';

/** A row of the outbox that does not hold the payload its stream promises: the card, or an older build, wrote it. */
export class StoredPayloadError extends Error {
  constructor(
    readonly row: { stream: string; id: string; seq: number },
    readonly problems: readonly string[],
  ) {
    super(`outbox ${row.stream} record ${row.id} (seq ${row.seq}) is unreadable: ${problems.join('; ')}`);
    this.name = 'StoredPayloadError';
  }
}

/**
 * A stored record's payload, read back through its schema: it was our own writing, but it comes from an SD
 * card that may have been damaged or from an older build. Throws StoredPayloadError naming the row and field.
 */
export function storedPayload<T>(schema: z.ZodType<T>, record: { stream: string; id: string; seq: number; payload: unknown }): T {
  const parsed = schema.safeParse(record.payload);
  if (parsed.success) return parsed.data;
  throw new StoredPayloadError({ stream: record.stream, id: record.id, seq: record.seq }, describeIssues(parsed.error, 'payload'));
}
