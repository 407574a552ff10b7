import type { Logger } from 'pino';
import { unplayableProgrammes, type ScheduleDocument } from '../contract/schedule.ts';
import { errorText } from '../platform/error-text.ts';
import type { Now } from '../platform/time.ts';
import { RunningSchedule } from './running-schedule.ts';
import type { ScheduleSource, ScheduleStore, StoredSchedule } from './types.ts';

/**
 * Which schedule runs. Each county source (the village's own topic, the topic for all villages) keeps its
 * last good document, durably; the village's own wins over `all`, and either over the local config. A
 * document replaces its source's only with a higher version, and only whole: an older version, or one that
 * names a zone or media type this village lacks, is refused with the reason and the running one is kept. The
 * same version again (a retained message on every reconnect) is nothing at all.
 */

export type ScheduleRejectReason = 'older-version' | 'unknown-zone' | 'unknown-media-type';

export interface ScheduleRejection {
  jti: string;
  reason: ScheduleRejectReason;
  detail: string;
  source: StoredSchedule['source'];
}

export interface AppliedSchedule {
  jti: string;
  source: StoredSchedule['source'];
  version: number;
  programmes: number;
  /** Whether it is the one running now (the village's own wins over `all`). */
  running: boolean;
  /** The version that ran before, if any. */
  previous: number | undefined;
}

export interface ScheduleRegistryOptions {
  store: ScheduleStore;
  /** The config's own schedule, run while no county one exists. */
  local?: ScheduleDocument | undefined;
  zoneIds: readonly string[];
  /** Extensions the player has a media template for (".mp3", ".wav"). */
  mediaExtensions: readonly string[];
  /** The running schedule changed (also at start); the scheduler takes it from here. */
  onRunning: (schedule: RunningSchedule | undefined) => void;
  /** A county document became its source's, or the running one: to report `schedule-applied`. */
  onApplied: (applied: AppliedSchedule) => void;
  onRejected: (rejection: ScheduleRejection) => void;
  /** The store could not keep a document: it still runs, but a restart without network would lose it. */
  onStorageFailure: (error: unknown) => void;
  logger: Logger;
  now: Now;
}

export class ScheduleRegistry {
  private readonly kept = new Map<StoredSchedule['source'], StoredSchedule>();
  private current: RunningSchedule | undefined;

  constructor(private readonly options: ScheduleRegistryOptions) {}

  get running(): RunningSchedule | undefined {
    return this.current;
  }

  /** What the store kept from before the restart; the running schedule is chosen from it (not reported again). */
  start(): void {
    for (const source of ['village', 'all'] as const) {
      try {
        const stored = this.options.store.load(source);
        if (stored !== undefined) this.kept.set(source, stored);
      } catch (error) {
        this.options.onStorageFailure(error);
      }
    }
    this.choose();
  }

  /** A verified county document; see the class comment for what happens to it. */
  offer(source: StoredSchedule['source'], document: ScheduleDocument, jti: string): void {
    const { logger } = this.options;
    const kept = this.kept.get(source)?.document;
    if (kept !== undefined && document.version === kept.version) {
      logger.debug({ source, version: document.version }, 'schedule version already kept; nothing to do');
      return;
    }
    const problem = kept !== undefined && document.version < kept.version ? olderVersion(document, kept) : this.problemWith(document);
    if (problem !== undefined) {
      logger.warn({ source, version: document.version, jti, ...problem }, 'county schedule refused; the running schedule is kept');
      this.options.onRejected({ jti, source, ...problem });
      return;
    }
    const stored: StoredSchedule = { source, document, appliedAt: this.options.now() };
    this.kept.set(source, stored);
    try {
      this.options.store.save(stored);
    } catch (error) {
      logger.error({ err: error, source, version: document.version }, `schedule could not be stored: ${errorText(error)}`);
      this.options.onStorageFailure(error);
    }
    const previous = this.current?.version;
    const changed = this.choose();
    if (!changed)
      logger.info({ source, version: document.version, running: this.current?.source }, "schedule kept; the village's own schedule runs instead");
    this.options.onApplied({ jti, source, version: document.version, programmes: document.programmes.length, running: changed, previous });
  }

  /** Zones and media types this village lacks, named; a document that has any is refused whole. */
  private problemWith(document: ScheduleDocument): Omit<ScheduleRejection, 'jti' | 'source'> | undefined {
    const { zoneIds, mediaExtensions } = this.options;
    const first = unplayableProgrammes(document, { zoneIds: new Set(zoneIds), mediaExtensions: new Set(mediaExtensions) })[0];
    if (first === undefined) return undefined;
    if (first.missingZones.length > 0)
      return {
        reason: 'unknown-zone',
        detail: `programmes[${first.index}].zones: ${first.missingZones.map((z) => `"${z}"`).join(', ')} not among this village's zones (${zoneIds.join(', ') || 'none'})`,
      };
    return {
      reason: 'unknown-media-type',
      detail: `programmes[${first.index}].content.url: "${first.unplayableMedia}" files have no player here (${mediaExtensions.join(', ')})`,
    };
  }

  /** Village over all over local; returns whether the running schedule changed. */
  private choose(): boolean {
    const chosen = this.kept.get('village') ?? this.kept.get('all');
    const source: ScheduleSource | undefined = chosen?.source ?? (this.options.local === undefined ? undefined : 'local');
    const document = chosen?.document ?? this.options.local;
    if (this.current?.source === source && this.current?.version === document?.version) return false;
    this.current = document === undefined || source === undefined ? undefined : new RunningSchedule(document, source);
    this.options.logger.info({ source, version: document?.version, programmes: document?.programmes.length ?? 0 }, 'programme schedule running');
    this.options.onRunning(this.current);
    return true;
  }
}

function olderVersion(document: ScheduleDocument, kept: ScheduleDocument): Omit<ScheduleRejection, 'jti' | 'source'> {
  return { reason: 'older-version', detail: `version: ${document.version} is older than the kept version ${kept.version}` };
}
