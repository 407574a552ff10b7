import * as z from 'zod';
import type { Logger } from 'pino';
import { broadcastStatusSchema, contentSchema, emergencyLevelSchema, prioritySchema, type PlaybackEventKind } from '../contract/vocabulary.ts';
import type { Now } from '../platform/time.ts';
import type { BroadcastJournal, JsonObject, UnfinishedBroadcast } from '../store/types.ts';
import type { PlaybackEvent, PlayRequest } from './types.ts';

/** After one of these the item is over: nothing of it is left to resume. */
const endings: ReadonlySet<PlaybackEventKind> = new Set(['rejected', 'preempted', 'stopped', 'finished', 'failed', 'tested']);

/** How often one command is taken up again: an item that itself brings the service down must not loop until it expires. */
const defaultMaxResumes = 3;

/** A journal row is our own writing, but read from a card that may have been damaged: checked all the same. */
const keptRequestSchema = z
  .object({
    id: z.string().min(1),
    priority: prioritySchema,
    level: emergencyLevelSchema.optional(),
    status: broadcastStatusSchema,
    zones: z.array(z.string()),
    content: contentSchema,
    chime: z.boolean(),
    repeat: z.number().int().min(1),
    expiresAt: z.number().optional(),
    origin: z.enum(['county', 'local', 'schedule']),
  })
  .strict();

export interface DurableBroadcastsOptions {
  /** Opens the journal file; called by `start()`. When it throws, commands play unkept. */
  openJournal: () => BroadcastJournal;
  /** The controller's submit. */
  submit: (request: PlayRequest) => void;
  /** Reports an event the controller never saw (an interrupted item that is not taken up again). */
  report: (event: PlaybackEvent) => void;
  /** A journal write failed (already logged); the broadcast went on regardless. */
  onStorageFailure: (error: unknown) => void;
  logger: Logger;
  now: Now;
  maxResumes?: number;
}

/**
 * County broadcasts survive a kill -9 or a power cut: each is kept in the journal from acceptance to its
 * last event. On start, what is still kept was cut off: an `emergency` that has not expired is submitted
 * again (its reports say `resumed after a restart`), anything else is reported `failed` with reason
 * `interrupted`. The journal is never in the way of sound: a write that fails is logged and the item plays.
 */
export class DurableBroadcasts {
  /** Ids kept in this life, so the end of a local alarm costs no write. */
  private readonly kept = new Set<string>();
  /** Undefined before start() and when it could not be opened. */
  private journal: BroadcastJournal | undefined;

  constructor(private readonly options: DurableBroadcastsOptions) {}

  /**
   * Opens the journal, before the controller starts (and closed after it stopped, so the controller's last
   * events are written). Throws, after `onStorageFailure`, when it cannot be opened; broadcasts still play.
   */
  start(): void {
    try {
      this.journal = this.options.openJournal();
    } catch (error) {
      this.options.onStorageFailure(error);
      throw error;
    }
  }

  stop(): void {
    this.journal?.close();
    this.journal = undefined;
  }

  submit(request: PlayRequest): void {
    this.keep(request);
    this.options.submit(request);
  }

  /** Every playback event, after it was reported: an item that ended is forgotten. */
  observe(event: PlaybackEvent): void {
    if (!endings.has(event.event) || !this.kept.delete(event.requestId)) return;
    this.write('end', event.requestId, (journal) => journal.end(event.requestId));
  }

  /** What a kill -9 or a power cut left unfinished: emergencies play again, the rest is reported failed. Once, after the controller started. */
  resume(): void {
    const { journal } = this;
    const { logger } = this.options;
    if (journal === undefined) return;
    let unfinished: UnfinishedBroadcast[];
    try {
      unfinished = journal.unfinished();
    } catch (error) {
      logger.error({ err: error }, 'broadcast journal unreadable; interrupted broadcasts cannot be resumed');
      this.options.onStorageFailure(error);
      return;
    }
    const now = this.options.now();
    for (const entry of unfinished) {
      const parsed = keptRequestSchema.safeParse(entry.request);
      if (!parsed.success) {
        logger.error(
          { requestId: entry.id, issues: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) },
          'unreadable broadcast in the journal; dropped',
        );
        this.write('end', entry.id, (j) => j.end(entry.id));
        continue;
      }
      const { expiresAt, level, ...rest } = parsed.data;
      const request: PlayRequest = { ...rest, ...(level === undefined ? {} : { level }), ...(expiresAt === undefined ? {} : { expiresAt }) };
      const why = this.reasonNotToResume(request, entry.resumes, now);
      if (why === undefined) {
        logger.warn(
          { requestId: request.id, acceptedAt: entry.acceptedAt, resumes: entry.resumes + 1 },
          'emergency cut off by a restart; playing it again',
        );
        this.submit({ ...request, resumedFrom: entry.acceptedAt });
        continue;
      }
      logger.warn({ requestId: request.id, reason: why }, 'broadcast cut off by a restart; reported failed');
      this.options.report({
        event: 'failed',
        requestId: request.id,
        priority: request.priority,
        ...(request.level === undefined ? {} : { level: request.level }),
        status: request.status,
        zones: request.zones,
        faultyZones: [],
        reason: `interrupted: ${why}`,
        at: now,
      });
      this.write('end', request.id, (j) => j.end(request.id));
    }
  }

  private reasonNotToResume(request: PlayRequest, resumes: number, now: number): string | undefined {
    const accepted = 'the village restarted before it ended';
    if (request.priority !== 'emergency') return `${accepted}; only emergencies are played again`;
    if (request.status === 'test') return `${accepted}; a test is not played again`;
    if (request.expiresAt !== undefined && now >= request.expiresAt)
      return `${accepted}, and it expired at ${new Date(request.expiresAt).toISOString()}`;
    const max = this.options.maxResumes ?? defaultMaxResumes;
    if (resumes >= max) return `${accepted}, ${resumes + 1} times; it is not played again`;
    return undefined;
  }

  private keep(request: PlayRequest): void {
    this.kept.add(request.id);
    this.write('open', request.id, (journal) => journal.open(request.id, toJson(request), this.options.now()));
  }

  private write(what: 'open' | 'end', requestId: string, action: (journal: BroadcastJournal) => void): void {
    const { journal } = this;
    if (journal === undefined) return;
    try {
      action(journal);
    } catch (error) {
      this.options.logger.error({ err: error, requestId, write: what }, 'broadcast journal write failed; the broadcast goes on');
      this.options.onStorageFailure(error);
    }
  }
}

/** The request as kept: `resumedFrom` is the journal's own `acceptedAt`, not part of the request. */
function toJson(request: PlayRequest): JsonObject {
  const { resumedFrom: _resumedFrom, ...kept } = request;
  return { ...kept, zones: [...kept.zones], content: { ...kept.content } };
}
