import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as z from 'zod';
import { describeIssues } from '../platform/schema-errors.ts';
import { writeFileDurably } from '../platform/durable-file.ts';
import { errorText } from '../platform/error-text.ts';
import { outboxStreams, type OutboxStream } from './types.ts';

/**
 * A small file written beside the outbox (`outbox.marker.json`) so that a lost outbox is never mistaken
 * for a fresh install: it names the install and the highest seq each stream may have handed out. Seqs are
 * reserved in blocks, so the marker is rewritten (one more fsync) once every `block` records, not each one.
 */
const seqs = z.object({ alarm: z.number().int().min(0), fault: z.number().int().min(0), report: z.number().int().min(0) }).strict();

export const outboxMarkerSchema = z
  .object({
    version: z.literal(1),
    installId: z.string().min(1),
    /** No stream has handed out a seq above these. */
    reservedSeq: seqs,
    /** Unacked records when the marker was last written: what a loss at that moment would have cost. */
    unackedAtUpdate: z.number().int().min(0),
    updatedAt: z.string(),
  })
  .strict();
export type OutboxMarkerData = z.infer<typeof outboxMarkerSchema>;

export type MarkerRead = { kind: 'ok'; marker: OutboxMarkerData } | { kind: 'missing' } | { kind: 'invalid'; problem: string };

const defaultBlock = 64;

export class OutboxMarker {
  private current: OutboxMarkerData | undefined;

  constructor(
    readonly path: string,
    private readonly block = defaultBlock,
  ) {}

  read(): MarkerRead {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
      return { kind: 'invalid', problem: `cannot read ${this.path}: ${errorText(error)}` };
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      return { kind: 'invalid', problem: `${this.path} is not JSON: ${errorText(error)}` };
    }
    const parsed = outboxMarkerSchema.safeParse(json);
    if (!parsed.success) return { kind: 'invalid', problem: `${this.path}: ${describeIssues(parsed.error).join('; ')}` };
    this.current = parsed.data;
    return { kind: 'ok', marker: parsed.data };
  }

  /** Whether `seq` of `stream` lies beyond what the marker has reserved (the caller then calls reserve). */
  exceeds(stream: OutboxStream, seq: number): boolean {
    return this.current === undefined || seq > this.current.reservedSeq[stream];
  }

  /** Writes the marker so that it covers `lastSeqs` plus one block; throws when the folder cannot be written. */
  reserve(lastSeqs: Record<OutboxStream, number>, unacked: number, at: number): void {
    const reservedSeq = { alarm: 0, fault: 0, report: 0 };
    for (const stream of outboxStreams) reservedSeq[stream] = Math.max(lastSeqs[stream] + this.block, this.current?.reservedSeq[stream] ?? 0);
    const next: OutboxMarkerData = {
      version: 1,
      installId: this.current?.installId ?? randomUUID(),
      reservedSeq,
      unackedAtUpdate: unacked,
      updatedAt: new Date(at).toISOString(),
    };
    writeFileDurably(this.path, `${JSON.stringify(next, null, 2)}\n`);
    this.current = next;
  }
}
