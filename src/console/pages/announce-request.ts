import type { FastifyRequest } from 'fastify';
import * as z from 'zod';
import { describeIssues } from '../../platform/schema-errors.ts';
import type { AnnounceOrder } from '../types.ts';
import { checkWav } from './wav-check.ts';

export const announceRepeat = { min: 1, max: 5 } as const;
/** The longest text to speak; the contract allows 2000, but a loudspeaker announcement this long is a mistake. */
export const announceTextMax = 1000;

/** A form field as it arrives: absent, one value, or several (a repeated name such as `zones`). */
type FieldValue = string | string[] | undefined;

const single = (v: unknown) => (Array.isArray(v) ? v.at(-1) : v);

/**
 * The fields of an announcement, from the multipart request or the plain form. The zones a village has are
 * known only at run time, so the schema is made per village.
 */
export function announceFieldsSchema(zoneIds: readonly string[]) {
  const known = new Set(zoneIds);
  return z
    .object({
      kind: z.preprocess(single, z.enum(['text', 'recording'], 'text or recording')),
      text: z.preprocess(
        single,
        z
          .string()
          .max(announceTextMax, `at most ${announceTextMax} characters`)
          // biome-ignore lint/suspicious/noControlCharactersInRegex: the pattern names control characters in order to refuse them.
          .regex(/^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]*$/, 'no control characters')
          .transform((s) => s.trim())
          .optional(),
      ),
      zones: z.preprocess(
        (v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]),
        z
          .array(z.string().refine((id) => known.has(id), 'no such zone'))
          .min(1, 'choose at least one zone')
          .refine((ids) => new Set(ids).size === ids.length, 'a zone is named twice'),
      ),
      repeat: z.preprocess(
        (v) => single(v) ?? '1',
        z.coerce
          .number('a whole number')
          .int('a whole number')
          .min(announceRepeat.min, `${announceRepeat.min} to ${announceRepeat.max}`)
          .max(announceRepeat.max, `${announceRepeat.min} to ${announceRepeat.max}`),
      ),
      // A checkbox sends "on" when ticked and nothing when not; scripts may say true/false.
      chime: z
        .preprocess((v) => single(v) ?? 'off', z.enum(['on', 'true', '1', 'off', 'false', '0'], 'on or off'))
        .transform((v) => ['on', 'true', '1'].includes(v)),
    })
    .superRefine((fields, ctx) => {
      if (fields.kind === 'text' && (fields.text === undefined || fields.text === ''))
        ctx.addIssue({ code: 'custom', path: ['text'], message: 'write what to announce' });
    });
}

export type AnnounceParse = { ok: true; order: AnnounceOrder } | { ok: false; error: string };

/**
 * The order from the fields and, for a recording, the WAV. Every problem names its field (`zones: choose at
 * least one zone`); the first is reported, as a form shows one message at a time.
 */
export function parseAnnounce(
  fields: Record<string, FieldValue>,
  recording: Buffer | undefined,
  village: { zoneIds: readonly string[]; maxRecordingSeconds: number },
): AnnounceParse {
  const parsed = announceFieldsSchema(village.zoneIds).safeParse(fields);
  if (!parsed.success) return { ok: false, error: describeIssues(parsed.error)[0] ?? 'invalid request' };
  const { kind, text, zones, repeat, chime } = parsed.data;
  if (kind === 'text') return { ok: true, order: { content: { kind: 'text', text: text ?? '' }, zones, repeat, chime } };
  if (recording === undefined) return { ok: false, error: 'recording: missing (record with the microphone first)' };
  const wav = checkWav(recording, { maxSeconds: village.maxRecordingSeconds });
  if (!wav.ok) return { ok: false, error: `recording: ${wav.reason}` };
  return { ok: true, order: { content: { kind: 'recording', wav: recording }, zones, repeat, chime } };
}

/** Thrown by `readAnnounceMultipart` for a request that is not what the page sends; its message names the field. */
export class AnnounceRequestError extends Error {
  constructor(
    message: string,
    readonly statusCode: number,
  ) {
    super(message);
    this.name = 'AnnounceRequestError';
  }
}

/** The fields and the one `recording` file of a multipart request, the file whole in memory (its size is capped). */
export async function readAnnounceMultipart(request: FastifyRequest): Promise<{ fields: Record<string, FieldValue>; recording: Buffer | undefined }> {
  if (!request.isMultipart()) throw new AnnounceRequestError('(root): expected multipart/form-data', 415);
  const fields: Record<string, FieldValue> = {};
  let recording: Buffer | undefined;
  for await (const part of request.parts()) {
    if (part.type === 'file') {
      if (part.fieldname !== 'recording') {
        part.file.resume();
        throw new AnnounceRequestError(`${part.fieldname}: no file expected here`, 400);
      }
      try {
        recording = await part.toBuffer();
      } catch (error) {
        if ((error as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE') throw new AnnounceRequestError('recording: too large', 413);
        throw error;
      }
      continue;
    }
    if (part.valueTruncated) throw new AnnounceRequestError(`${part.fieldname}: too long`, 413);
    const value = String(part.value);
    const previous = fields[part.fieldname];
    fields[part.fieldname] = previous === undefined ? value : [...(Array.isArray(previous) ? previous : [previous]), value];
  }
  return { fields, recording };
}
