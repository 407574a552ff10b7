import { resolve } from 'node:path';
import { errorText } from '../platform/error-text.ts';
import type { Logger } from '../platform/logger.ts';
import { backoffDelay, type Now } from '../platform/time.ts';
import type { MediaCheck, MediaLibrary, MediaNeed } from '../schedule/types.ts';
import { bytesText, secondsText } from './amounts.ts';
import { evictionsFor, type LibraryFile } from './eviction.ts';
import { downloadMedia, partName, type DownloadTimeouts } from './media-download.ts';
import { managedFolder, ProgrammeFolder } from './programme-folder.ts';

export interface FileMediaLibraryOptions {
  /** The library folder. Only its `programmes/` folder is managed: chimes and local media beside it are never touched. */
  root: string;
  /** Most bytes `programmes/` may hold, part files included; default 1 GiB. */
  quotaBytes?: number;
  /** Downloads (and checks of files found already there) at once; default 2. */
  concurrency?: number;
  /** Default: 30 min an attempt (a longer file resumes in the next), 30 s without data. */
  timeouts?: Partial<DownloadTimeouts>;
  /** Between failed attempts of one need, doubling; default 5 s up to 10 min. */
  retry?: { initialMs: number; maxMs: number };
  /** The county CA (PEM) that https media servers must chain to; the system's CAs when absent. */
  ca?: string | Buffer;
  logger: Logger;
  now?: Now;
  /** Each change of a need's phase or of the bytes used (not each chunk downloaded); may throw (logged). */
  onChange?: (state: MediaLibraryState) => void;
}

/** For the health report. */
export interface MediaLibraryState {
  wanted: number;
  /** Wanted, in the library and checked: playable. */
  present: number;
  waiting: number;
  checking: number;
  fetching: number;
  failed: number;
  usedBytes: number;
  quotaBytes: number;
  /** Some files the schedule needs do not fit in the quota beside the others it needs: they are not fetched. */
  quotaFull: boolean;
}

const defaults = {
  quotaBytes: 1024 ** 3,
  concurrency: 2,
  timeouts: { totalMs: 30 * 60_000, stallMs: 30_000 },
  retry: { initialMs: 5000, maxMs: 10 * 60_000 },
} as const;

/** A need's own file directly in the managed folder; a leading dot is left to part files. */
const managedFile = new RegExp(`^${managedFolder}/[^./][^/]*$`);

type Phase = 'waiting' | 'checking' | 'fetching' | 'failed';

interface Job {
  readonly need: MediaNeed;
  phase: Phase;
  /** In the part file, while fetching. */
  bytes: number;
  attempts: number;
  /** Failures in a row without progress: the backoff grows with these, so a cut that still moved on retries soon. */
  strikes: number;
  lastFailure: string | undefined;
  quotaFull: boolean;
  retryAt: number;
  timer: NodeJS.Timeout | undefined;
  abort: AbortController | undefined;
}

/**
 * The programme media library on disk: fetches every wanted file ahead of time, checked before it takes its
 * own name, and keeps `programmes/` within its quota by deleting the least recently used files no wanted
 * need names. What was checked is trusted for the life of the process; a restart checks each file once more
 * instead of fetching it again.
 */
export class FileMediaLibrary implements MediaLibrary {
  private readonly root: string;
  private readonly log: Logger;
  private readonly now: Now;
  private readonly quotaBytes: number;
  private readonly concurrency: number;
  private readonly timeouts: DownloadTimeouts;
  private readonly retry: { initialMs: number; maxMs: number };
  private wanted = new Map<string, MediaNeed>();
  private readonly jobs = new Map<string, Job>();
  private readonly runs = new Map<string, Promise<void>>();
  private readonly verified = new Map<string, { sha256: string; size: number }>();
  private readonly folder: ProgrammeFolder;
  private housekeeping: Promise<unknown> = Promise.resolve();
  private usedBytes = 0;
  private started = false;

  constructor(private readonly options: FileMediaLibraryOptions) {
    this.root = resolve(options.root);
    this.log = options.logger.child({ component: 'media' });
    this.now = options.now ?? Date.now;
    this.quotaBytes = options.quotaBytes ?? defaults.quotaBytes;
    this.concurrency = options.concurrency ?? defaults.concurrency;
    this.timeouts = { ...defaults.timeouts, ...options.timeouts };
    this.retry = options.retry ?? defaults.retry;
    this.folder = new ProgrammeFolder({ root: this.root, logger: this.log, now: this.now });
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.reconcile();
  }

  async stop(): Promise<void> {
    this.started = false;
    for (const job of this.jobs.values()) this.drop(job);
    await Promise.all(this.runs.values());
    await this.housekeeping;
  }

  want(needs: readonly MediaNeed[]): void {
    const wanted = new Map<string, MediaNeed>();
    for (const need of needs) {
      const invalid = invalidNeed(need);
      if (invalid !== undefined) this.log.warn({ file: need.file, url: need.url, reason: invalid }, 'media need ignored');
      else if (!wanted.has(need.file)) wanted.set(need.file, need);
    }
    this.wanted = wanted;
    if (this.started) this.reconcile();
  }

  check(need: MediaNeed): MediaCheck {
    const invalid = invalidNeed(need);
    if (invalid !== undefined) return { ok: false, reason: invalid };
    if (this.isVerified(need)) {
      const size = this.folder.sizeOf(need.file);
      if (size === need.size) {
        this.folder.touch(need.file);
        return { ok: true };
      }
      this.verified.delete(need.file);
      const reason = size === undefined ? `${need.file} is gone from the library` : `${need.file} is ${size} bytes now, ${need.size} expected`;
      this.log.warn({ file: need.file, reason }, 'checked media file changed under the library');
      if (this.started) this.reconcile();
      return { ok: false, reason: `${reason}${this.wanted.has(need.file) ? ' (fetching it again)' : ''}` };
    }
    const job = this.jobs.get(need.file);
    if (job !== undefined) return { ok: false, reason: this.explain(job) };
    if (!this.started) return { ok: false, reason: 'the media library is not running' };
    return { ok: false, reason: `${need.file} is not in the library: the schedule has not asked for it` };
  }

  state(): MediaLibraryState {
    const jobs = [...this.jobs.values()];
    const count = (phase: Phase): number => jobs.filter((job) => job.phase === phase).length;
    return {
      wanted: this.wanted.size,
      present: [...this.wanted.values()].filter((need) => this.isVerified(need)).length,
      waiting: count('waiting'),
      checking: count('checking'),
      fetching: count('fetching'),
      failed: count('failed'),
      usedBytes: this.usedBytes,
      quotaBytes: this.quotaBytes,
      quotaFull: jobs.some((job) => job.phase === 'failed' && job.quotaFull),
    };
  }

  /** Jobs follow the wanted list: new needs get one, gone ones lose theirs (a download in flight is abandoned). */
  private reconcile(): void {
    for (const job of this.jobs.values()) {
      const need = this.wanted.get(job.need.file);
      if (need === undefined || !sameNeed(need, job.need)) this.drop(job);
    }
    for (const need of this.wanted.values()) {
      const job = this.jobs.get(need.file);
      if (job === undefined && !this.isVerified(need)) this.jobs.set(need.file, newJob(need));
      // A new list may have freed room: a need refused for the quota tries again now, not after its backoff.
      else if (job?.phase === 'failed' && job.quotaFull) this.retryNow(job);
    }
    void this.serially(() => this.makeRoom(undefined));
    this.pump();
    this.changed();
  }

  private pump(): void {
    if (!this.started) return;
    // In list order: when not all fit in the quota, the needs the schedule lists first get the room.
    for (const need of this.wanted.values()) {
      if (this.runs.size >= this.concurrency) return;
      const job = this.jobs.get(need.file);
      // A dropped job's run may still be settling on the same part file: one writer at a time.
      if (job?.phase === 'waiting' && !this.runs.has(need.file)) this.launch(job);
    }
  }

  private launch(job: Job): void {
    const abort = new AbortController();
    job.abort = abort;
    job.phase = 'checking';
    job.quotaFull = false;
    const run = this.fetch(job, abort.signal)
      .catch((error: unknown) => {
        if (!abort.signal.aborted) this.failed(job, `media library error: ${errorText(error)}`, false);
      })
      .finally(() => {
        this.runs.delete(job.need.file);
        job.abort = undefined;
        this.pump();
      });
    this.runs.set(job.need.file, run);
  }

  private async fetch(job: Job, signal: AbortSignal): Promise<void> {
    const { need } = job;
    this.changed();
    if (await this.folder.holds(need, signal)) return this.fetched(job, false);
    if (signal.aborted) return;
    const room = await this.serially(() => this.makeRoom(job));
    if (signal.aborted) return;
    if (!room) return this.failed(job, `library quota of ${this.quotaBytes} bytes is full with files the schedule needs`, false, true);
    this.changed();
    const timeouts = this.timeouts;
    const onProgress = (bytes: number): void => {
      job.bytes = bytes;
    };
    const result = await downloadMedia({ need, root: this.root, timeouts, ca: this.options.ca, signal, onProgress });
    if (signal.aborted) return;
    if (!result.ok) return this.failed(job, result.reason, result.progressed);
    // Before it counts as present, so that a library reported complete is also within its quota.
    await this.serially(() => this.makeRoom(undefined));
    if (!signal.aborted) this.fetched(job, true);
  }

  /**
   * Deletes least recently used files no wanted need names, until `programmes/` (plus what downloads in flight
   * still have to write, plus `job`'s file) is within the quota. False when `job`'s file cannot fit; the job
   * is marked fetching here, inside the serial section, so the next one counts its bytes.
   */
  private async makeRoom(job: Job | undefined): Promise<boolean> {
    let files: LibraryFile[];
    try {
      files = await this.folder.files();
    } catch (error) {
      // Not knowing the usage is no reason to stop fetching: a disk that is really broken fails the download itself.
      this.log.warn({ err: errorText(error) }, 'cannot read the programme folder to keep its quota');
      files = [];
    }
    // A download in flight is counted at its whole size, and its files on disk (part or, just renamed, whole)
    // not at all: the folder may be read while one is written or renamed, so what is on disk for it is not
    // a number to add to what it still has to write.
    const inFlight = [...this.jobs.values()].filter((j) => j.phase === 'fetching' && j !== job);
    const inFlightNames = new Set(inFlight.flatMap((j) => [j.need.file, partName(j.need.file)]));
    const pendingBytes = inFlight.reduce((sum, j) => sum + j.need.size, 0);
    const onDisk = files;
    files = files.filter((f) => !inFlightNames.has(f.file));
    const part = job === undefined ? undefined : files.find((f) => f.file === partName(job.need.file));
    const ownBytes = job === undefined ? 0 : job.need.size - (part?.bytes ?? 0);
    const keep = new Set([...this.wanted.keys()].flatMap((file) => [file, partName(file)]));
    const evicted = await this.folder.evict(evictionsFor(files, keep, { pendingBytes, ownBytes, quotaBytes: this.quotaBytes }));
    for (const { file } of evicted) this.verified.delete(file);
    const bytes = (list: readonly LibraryFile[]): number => list.reduce((sum, f) => sum + f.bytes, 0);
    this.usedBytes = bytes(onDisk) - bytes(evicted);
    const fits = bytes(files) - bytes(evicted) + pendingBytes + ownBytes <= this.quotaBytes;
    if (job === undefined && !fits)
      this.log.warn({ usedBytes: this.usedBytes, quotaBytes: this.quotaBytes }, 'media library over its quota with files the schedule needs');
    if (job !== undefined && fits && this.jobs.get(job.need.file) === job) {
      job.phase = 'fetching';
      job.bytes = part?.bytes ?? 0;
    }
    this.changed();
    return job === undefined || fits;
  }

  private fetched(job: Job, downloaded: boolean): void {
    const { need } = job;
    this.verified.set(need.file, { sha256: need.sha256, size: need.size });
    if (this.jobs.get(need.file) === job) this.jobs.delete(need.file);
    if (downloaded) this.log.info({ file: need.file, url: need.url, bytes: need.size, attempt: job.attempts + 1 }, 'media fetched and checked');
    else this.log.info({ file: need.file }, 'media file already in the library, checked');
    this.changed();
  }

  private failed(job: Job, reason: string, progressed: boolean, quotaFull = false): void {
    if (this.jobs.get(job.need.file) !== job) return;
    job.attempts++;
    job.strikes = progressed ? 1 : job.strikes + 1;
    const delayMs = backoffDelay(job.strikes, this.retry.initialMs, this.retry.maxMs);
    job.phase = 'failed';
    job.lastFailure = reason;
    job.quotaFull = quotaFull;
    job.retryAt = this.now() + delayMs;
    job.timer = setTimeout(() => this.retryNow(job), delayMs);
    this.log.warn({ file: job.need.file, url: job.need.url, reason, attempt: job.attempts, retryInMs: delayMs }, 'media fetch failed');
    this.changed();
  }

  private retryNow(job: Job): void {
    clearTimeout(job.timer);
    job.timer = undefined;
    if (this.jobs.get(job.need.file) !== job || job.phase !== 'failed') return;
    job.phase = 'waiting';
    this.changed();
    this.pump();
  }

  private drop(job: Job): void {
    clearTimeout(job.timer);
    job.timer = undefined;
    job.abort?.abort();
    if (this.jobs.get(job.need.file) === job) this.jobs.delete(job.need.file);
  }

  private explain(job: Job): string {
    const { need } = job;
    const earlier = job.lastFailure === undefined ? '' : `; attempt ${job.attempts + 1}, the last one failed: ${job.lastFailure}`;
    switch (job.phase) {
      case 'waiting':
        return `not fetched yet (waiting for a download slot${earlier})`;
      case 'checking':
        return `not fetched yet (checking the library's copy first${earlier})`;
      case 'fetching':
        return `not fetched yet (downloading, ${Math.floor((100 * job.bytes) / need.size)} % of ${bytesText(need.size)}${earlier})`;
      case 'failed':
        return `fetch failed: ${job.lastFailure} (attempt ${job.attempts}, next in ${secondsText(job.retryAt - this.now())})`;
    }
  }

  private isVerified(need: MediaNeed): boolean {
    const known = this.verified.get(need.file);
    return known !== undefined && known.sha256 === need.sha256 && known.size === need.size;
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const next = this.housekeeping.then(work);
    this.housekeeping = next.catch((error: unknown) => this.log.error({ err: errorText(error) }, 'media library housekeeping failed'));
    return next;
  }

  private changed(): void {
    try {
      this.options.onChange?.(this.state());
    } catch (error) {
      this.log.error({ err: errorText(error) }, 'media library change listener failed');
    }
  }
}

function newJob(need: MediaNeed): Job {
  return {
    need,
    phase: 'waiting',
    bytes: 0,
    attempts: 0,
    strikes: 0,
    lastFailure: undefined,
    quotaFull: false,
    retryAt: 0,
    timer: undefined,
    abort: undefined,
  };
}

function sameNeed(a: MediaNeed, b: MediaNeed): boolean {
  return a.url === b.url && a.sha256 === b.sha256 && a.size === b.size;
}

function invalidNeed(need: MediaNeed): string | undefined {
  if (!managedFile.test(need.file)) return `not a programme media file name: ${need.file}`;
  if (!/^[0-9a-f]{64}$/.test(need.sha256)) return `not a sha256 (64 lower-case hex digits): ${need.sha256}`;
  if (!Number.isSafeInteger(need.size) || need.size < 1) return `not a file size: ${need.size}`;
  return undefined;
}
