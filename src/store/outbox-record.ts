import type { AppendInput, JsonObject, OutboxRecord } from './types.ts';

/** A payload as an outbox stores it: the JSON text of an object, or a TypeError naming the record. */
export function payloadJson(payload: JsonObject, id: string): string {
  const text: unknown = JSON.stringify(payload);
  if (typeof text !== 'string' || !text.startsWith('{')) throw new TypeError(`outbox: payload of ${id} is not a JSON object`);
  return text;
}

/**
 * The record `prepare` hands out: the payload built for its seq (before the seq is taken, so a throwing
 * build consumes none) and read back from its JSON, so that it holds what will be stored; not yet attempted,
 * due at once.
 */
export function preparedRecord(input: AppendInput, seq: number): OutboxRecord {
  const payload = JSON.parse(payloadJson(input.build(seq), input.id)) as JsonObject;
  return {
    id: input.id,
    stream: input.stream,
    seq,
    subject: input.subject,
    payload,
    attempts: 0,
    createdAt: input.now,
    nextAttemptAt: input.now,
    ackedAt: null,
  };
}

/** A list's limit, as every outbox checks it: SQLite reads a negative LIMIT as "no limit", which would load the whole backlog. */
export function checkLimit(call: 'due' | 'recent', limit: number): void {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`outbox: ${call}() limit must be a positive integer, got ${limit}`);
}
