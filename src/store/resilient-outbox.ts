import { join } from 'node:path';
import type { Logger } from '../platform/logger.ts';
import type { Now } from '../platform/time.ts';
import { MemoryOutbox } from './memory-outbox.ts';
import { openOutboxFile, type OpenedOutbox } from './outbox-file.ts';
import { OutboxMarker } from './outbox-marker.ts';
import type { SqliteOutbox } from './sqlite-outbox.ts';
import { StorageReserve } from './storage-reserve.ts';
import { freeBytes, isStorageFailure, notifyLater, probeWritable, type StorageNotice } from './storage-files.ts';
import { errorText } from '../platform/error-text.ts';
import {
  outboxStreams,
  type AppendInput,
  type AttemptUpdate,
  type JsonObject,
  type Outbox,
  type OutboxRecord,
  type OutboxStats,
  type OutboxStream,
} from './types.ts';

/**
 * `ok`: every record is committed to the card. `reserve`: the card is full and the outbox lives on its
 * reserve. `memory`: the card takes no writes (full, read-only, failing, outbox unopenable), so records
 * live in memory until it does; a restart now would lose them.
 */
export type StorageState = 'ok' | 'reserve' | 'memory';

export interface StorageHealth {
  state: StorageState;
  /** What is wrong, for health and the status line; null when all is well. */
  problem: string | null;
  /** Records held only in memory, not yet on the card. */
  memoryOnly: number;
  /** Bytes free in the data directory, or null when it cannot be asked. */
  freeBytes: number | null;
}

export type { StorageNotice } from './storage-files.ts';

export interface ResilientOutboxOptions {
  dataDir: string;
  /** Bytes kept free for the outbox (a file it deletes when the card is full); 0 for none. */
  reserveBytes: number;
  logger: Logger;
  onNotice: (notice: StorageNotice) => void;
  now?: Now;
  /** How often, while storage fails, the card is tried again. */
  retryMs?: number;
  /** The durable outbox; by default `outbox.sqlite` in `dataDir`, opened by openOutboxFile. */
  open?: () => OpenedOutbox;
}

const defaultRetryMs = 5000;
/** While storage fails, stored records are read into memory so they go on being published (at most this many per stream). */
const seedLimit = 10_000;

/**
 * The outbox the service uses: SQLite while the card takes writes, memory when it does not, and back.
 * A storage failure never loses a press or stops delivery: the record is kept in memory (marked
 * `durable: false` on the wire), published and retried from there, and written to the card, with the seq
 * it was published with, as soon as the card takes writes again. Nothing here throws for a storage failure.
 */
export class ResilientOutbox implements Outbox {
  private readonly now: Now;
  private readonly marker: OutboxMarker;
  private readonly reserve: StorageReserve;
  private durable: SqliteOutbox | undefined;
  /** Defined exactly while records live in memory. */
  private memory: MemoryOutbox | undefined;
  /** Ids created in memory (not on the card) and ids from the card whose payload changed in memory. */
  private readonly memoryOnly = new Set<string>();
  private readonly changedPayloads = new Set<string>();
  private readonly lastSeq: Record<OutboxStream, number> = { alarm: 0, fault: 0, report: 0 };
  private state: StorageState = 'ok';
  private problem: string | null = null;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: ResilientOutboxOptions) {
    this.now = options.now ?? Date.now;
    this.marker = new OutboxMarker(join(options.dataDir, 'outbox.marker.json'));
    this.reserve = new StorageReserve(join(options.dataDir, 'outbox.reserve'), options.reserveBytes);
  }

  /** Opens the card's outbox, or runs from memory when it cannot (and keeps trying). Never throws. */
  start(): void {
    try {
      this.adoptDurable(this.openDurable());
      this.keepReserve();
    } catch (error) {
      // No outbox at all (e.g. a read-only data directory): seqs continue above the marker's, if it can be read.
      const read = this.marker.read();
      if (read.kind === 'ok') for (const stream of outboxStreams) this.lastSeq[stream] = read.marker.reservedSeq[stream];
      this.enterMemory(`the outbox cannot be opened: ${errorText(error)}`, false);
    }
  }

  health(): StorageHealth {
    return { state: this.state, problem: this.problem, memoryOnly: this.memoryOnly.size, freeBytes: freeBytes(this.options.dataDir) };
  }

  append(input: AppendInput): OutboxRecord {
    return this.commit(this.prepare(input));
  }

  /**
   * Seq and payload, nothing written. The seq is covered by the marker before it is handed out (one
   * fsync per block of seqs), so a record published before its commit and lost in a crash never has its
   * seq handed out again: each start continues above the marker.
   */
  prepare(input: AppendInput): OutboxRecord {
    const record = this.use(
      (d) => d.prepare(input),
      (m) => m.prepare({ ...input, build: (seq) => ({ ...input.build(seq), durable: false }) }),
      'preparing a record',
    );
    this.lastSeq[record.stream] = Math.max(this.lastSeq[record.stream], record.seq);
    if (this.memory === undefined && this.marker.exceeds(record.stream, record.seq)) {
      try {
        this.marker.reserve(this.lastSeq, this.durable?.stats().depth ?? 0, this.now());
      } catch (error) {
        // The commit that follows will show whether the card still takes writes.
        this.options.logger.warn({ err: errorText(error) }, 'outbox marker not written');
      }
    }
    return record;
  }

  commit(record: OutboxRecord): OutboxRecord {
    if (this.closed) throw new Error('outbox: closed');
    if (this.memory === undefined && this.durable !== undefined) {
      const durable = this.durable;
      try {
        return durable.commit(record);
      } catch (error) {
        if (!isStorageFailure(error)) throw error;
        if (this.reserve.release()) {
          this.setProblem('reserve', `the data directory is full (${errorText(error)}): the outbox reserve was released and alarms are stored on it`);
          try {
            return durable.commit(record);
          } catch (again) {
            if (!isStorageFailure(again)) throw again;
            this.enterMemory(`storing a record failed even after the reserve was released: ${errorText(again)}`);
          }
        } else this.enterMemory(`storing a record failed: ${errorText(error)}`);
      }
    }
    const stored = this.memoryStore().commit({ ...record, payload: { ...record.payload, durable: false } });
    this.memoryOnly.add(stored.id);
    this.lastSeq[stored.stream] = Math.max(this.lastSeq[stored.stream], stored.seq);
    return stored;
  }

  updatePayload(id: string, payload: JsonObject): void {
    this.use(
      (d) => d.updatePayload(id, payload),
      (m) => {
        m.updatePayload(id, this.memoryOnly.has(id) ? { ...payload, durable: false } : payload);
        if (!this.memoryOnly.has(id)) this.changedPayloads.add(id);
      },
      'updating a record',
    );
  }

  due(stream: OutboxStream, now: number, limit: number): OutboxRecord[] {
    return this.use(
      (d) => d.due(stream, now, limit),
      (m) => m.due(stream, now, limit),
      'reading due records',
    );
  }

  recordAttempts(updates: readonly AttemptUpdate[]): void {
    this.use(
      (d) => d.recordAttempts(updates),
      (m) => m.recordAttempts(updates.filter((u) => m.get(u.id) !== undefined)),
      'recording attempts',
    );
  }

  rescheduleAll(now: number): void {
    this.use(
      (d) => d.rescheduleAll(now),
      (m) => m.rescheduleAll(now),
      'rescheduling',
    );
  }

  ackMany(ids: readonly string[], now: number): OutboxRecord[] {
    return this.use(
      (d) => d.ackMany(ids, now),
      (m) => m.ackMany(ids, now),
      'storing acks',
    );
  }

  get(id: string): OutboxRecord | undefined {
    return this.use(
      (d) => d.get(id),
      (m) => m.get(id),
      'reading a record',
    );
  }

  latestUnacked(stream: OutboxStream, subject: string): OutboxRecord | undefined {
    return this.use(
      (d) => d.latestUnacked(stream, subject),
      (m) => m.latestUnacked(stream, subject),
      'reading open records',
    );
  }

  /** While records live in memory, only those it holds: the card's history comes back with the card. */
  recent(stream: OutboxStream, limit: number): OutboxRecord[] {
    return this.use(
      (d) => d.recent(stream, limit),
      (m) => m.recent(stream, limit),
      'reading recent records',
    );
  }

  stats(): OutboxStats {
    return this.use(
      (d) => d.stats(),
      (m) => m.stats(),
      'reading outbox statistics',
    );
  }

  /** A last try to put what lives in memory on the card; what still cannot be written is said loudly. */
  close(): void {
    if (this.closed) return;
    clearInterval(this.retryTimer);
    this.retryTimer = undefined;
    try {
      if (this.memory !== undefined) this.retry();
    } catch (error) {
      this.options.logger.error({ err: errorText(error) }, 'storage retry failed');
    }
    if (this.memory !== undefined) {
      const unacked = this.memory.all().filter((r) => this.memoryOnly.has(r.id) && r.ackedAt === null).length;
      if (unacked > 0)
        this.options.logger.error({ unacked }, 'stopping with unacknowledged records that lived only in memory: they end with this process');
    }
    this.closed = true;
    this.closeDurable();
  }

  /** Runs `durableOp` on the card while it works; on a storage failure moves to memory and runs `memoryOp` there. */
  private use<T>(durableOp: (d: SqliteOutbox) => T, memoryOp: (m: MemoryOutbox) => T, what: string): T {
    if (this.closed) throw new Error('outbox: closed');
    if (this.memory === undefined && this.durable !== undefined) {
      try {
        return durableOp(this.durable);
      } catch (error) {
        if (!isStorageFailure(error)) throw error;
        this.enterMemory(`${what} failed: ${errorText(error)}`);
      }
    }
    return memoryOp(this.memoryStore());
  }

  private memoryStore(): MemoryOutbox {
    if (this.closed) throw new Error('outbox: closed');
    return this.memory ?? this.enterMemory('the outbox is not open');
  }

  private openDurable(): OpenedOutbox {
    const opened =
      this.options.open?.() ??
      openOutboxFile({ path: join(this.options.dataDir, 'outbox.sqlite'), marker: this.marker, logger: this.options.logger, now: this.now() });
    for (const detail of opened.notices) {
      this.options.logger.error({ detail }, 'outbox problem');
      this.notify({ kind: 'problem', detail });
    }
    return opened;
  }

  private adoptDurable(opened: OpenedOutbox): void {
    this.durable = opened.outbox;
    const seqs = opened.outbox.lastSeqs();
    for (const stream of outboxStreams) this.lastSeq[stream] = Math.max(this.lastSeq[stream], seqs[stream]);
  }

  /** From now on records live in memory: those on the card that wait for the county come along. */
  private enterMemory(problem: string, seed = true): MemoryOutbox {
    if (this.memory !== undefined) return this.memory;
    const memory = new MemoryOutbox();
    for (const stream of outboxStreams) memory.raiseSeqFloor(stream, this.lastSeq[stream]);
    let unread = '';
    if (seed && this.durable !== undefined) {
      try {
        for (const stream of outboxStreams) for (const record of this.durable.due(stream, Number.MAX_SAFE_INTEGER, seedLimit)) memory.commit(record);
      } catch (error) {
        unread = `; records already on the card cannot be read (${errorText(error)}) and wait there`;
      }
    }
    this.closeDurable();
    this.memory = memory;
    this.setProblem('memory', `${problem}; records are kept in memory and sent from there until the card takes writes again${unread}`);
    this.startRetrying();
    return memory;
  }

  /** Puts what lives in memory on the card, in one transaction, once the card takes writes again. */
  private retry(): void {
    const memory = this.memory;
    if (memory === undefined || !probeWritable(this.options.dataDir)) return;
    let opened: OpenedOutbox | undefined;
    try {
      opened = this.openDurable();
      const all = memory.all();
      opened.outbox.absorb({
        records: all.filter((r) => this.memoryOnly.has(r.id)).map((r) => ({ ...r, payload: withoutDurableFlag(r.payload) })),
        seqFloors: this.lastSeq,
        payloads: all.filter((r) => this.changedPayloads.has(r.id) && r.ackedAt === null).map((r) => ({ id: r.id, payload: r.payload })),
        acks: all.filter((r) => !this.memoryOnly.has(r.id) && r.ackedAt !== null).map((r) => ({ id: r.id, at: r.ackedAt ?? this.now() })),
      });
    } catch (error) {
      opened?.outbox.close();
      this.options.logger.debug({ err: errorText(error) }, 'the card still takes no writes');
      return;
    }
    const written = this.memoryOnly.size;
    this.adoptDurable(opened);
    this.memory = undefined;
    this.memoryOnly.clear();
    this.changedPayloads.clear();
    const detail = `the data directory takes writes again: ${written} record(s) kept in memory are now stored`;
    this.state = 'ok';
    this.problem = null;
    this.options.logger.warn({ written }, 'storage recovered');
    this.notify({ kind: 'recovered', detail });
    this.keepReserve();
  }

  /** Makes the reserve again when there is room; without room the outbox runs on what is left, and says so. */
  private keepReserve(): void {
    if (this.reserve.ensure()) {
      if (this.state === 'reserve') {
        this.state = 'ok';
        this.problem = null;
        this.notify({ kind: 'recovered', detail: 'the data directory has room again; the outbox reserve is held again' });
      }
      return;
    }
    this.setProblem('reserve', `the data directory has too little room to hold the outbox reserve (${this.reserve.bytes} bytes)`);
    this.startRetrying();
  }

  private startRetrying(): void {
    this.retryTimer ??= setInterval(() => {
      try {
        if (this.memory !== undefined) this.retry();
        else if (this.state === 'reserve') this.keepReserve();
      } catch (error) {
        // A timer that throws would end the process, and with it every record that lives in memory.
        this.options.logger.error({ err: errorText(error) }, 'storage retry failed');
      }
      if (this.state === 'ok') {
        clearInterval(this.retryTimer);
        this.retryTimer = undefined;
      }
    }, this.options.retryMs ?? defaultRetryMs);
    this.retryTimer.unref?.();
  }

  /** Once per state entered: a card that stays full is one fault, not one per record. */
  private setProblem(state: Exclude<StorageState, 'ok'>, problem: string): void {
    // Memory outranks the reserve: a full card that then refuses writes is the worse news.
    if (this.state === state || (this.state === 'memory' && state === 'reserve')) return;
    this.state = state;
    this.problem = problem;
    this.options.logger.error({ state, problem }, 'storage problem');
    this.notify({ kind: 'problem', detail: problem });
  }

  private notify(notice: StorageNotice): void {
    notifyLater(this.options.onNotice, notice, this.options.logger);
  }

  private closeDurable(): void {
    try {
      this.durable?.close();
    } catch {
      // A connection on a failed card may not close cleanly; it is dropped either way.
    }
    this.durable = undefined;
  }
}

function withoutDurableFlag(payload: JsonObject): JsonObject {
  const { durable: _durable, ...rest } = payload;
  return rest;
}
