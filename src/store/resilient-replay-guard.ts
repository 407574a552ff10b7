import type { Logger } from '../platform/logger.ts';
import { openSqliteReplayGuard, type SqliteReplayGuard } from './sqlite-replay-guard.ts';
import { isCorruption, isStorageFailure, moveAside, notifyLater, probeWritable, type StorageNotice } from './storage-files.ts';
import { errorText } from '../platform/error-text.ts';
import type { ReplayGuard } from './types.ts';
import { dirname } from 'node:path';

const defaultRetryMs = 5000;

/**
 * The replay guard the service uses. A card that takes no writes must not refuse an emergency broadcast
 * (`replay-guard-failed`): while the file cannot be written, accepted ids are remembered in memory (which
 * still refuses a replay for as long as the process lives) and written to the file once it can be.
 * An unreadable file is moved aside and a new one started. Nothing here throws for a storage failure.
 */
export class ResilientReplayGuard implements ReplayGuard {
  private durable: SqliteReplayGuard | undefined;
  /** jti → expiry, defined exactly while ids are remembered in memory. */
  private memory: Map<string, number> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: {
      path: string;
      logger: Logger;
      onNotice: (notice: StorageNotice) => void;
      now: () => number;
      retryMs?: number;
    },
  ) {}

  start(): void {
    try {
      this.durable = this.open();
    } catch (error) {
      this.enterMemory(`the replay guard cannot be opened: ${errorText(error)}`);
    }
  }

  remember(jti: string, expiresAt: number, now: number): boolean {
    if (this.memory === undefined && this.durable !== undefined) {
      try {
        return this.durable.remember(jti, expiresAt, now);
      } catch (error) {
        if (!isStorageFailure(error)) throw error;
        this.enterMemory(`recording a command id failed: ${errorText(error)}`);
      }
    }
    const memory = this.memory ?? this.enterMemory('the replay guard is not open');
    const known = memory.get(jti);
    if (known !== undefined && known > now) return false;
    memory.set(jti, expiresAt);
    return true;
  }

  close(): void {
    clearInterval(this.retryTimer);
    this.retryTimer = undefined;
    if (this.memory !== undefined) this.retry();
    try {
      this.durable?.close();
    } catch {
      // dropped either way
    }
    this.durable = undefined;
  }

  private open(): SqliteReplayGuard {
    const { path, logger } = this.options;
    try {
      return openSqliteReplayGuard({ path, logger });
    } catch (error) {
      if (!isCorruption(error)) throw error;
      const aside = moveAside(path, 'corrupt', this.options.now());
      const detail = `replay guard ${path} was unreadable (${errorText(error)}) and was moved aside to ${aside}; a new one was started`;
      logger.error({ detail }, 'replay guard problem');
      this.notify({ kind: 'problem', detail });
      return openSqliteReplayGuard({ path, logger });
    }
  }

  private enterMemory(problem: string): Map<string, number> {
    if (this.memory !== undefined) return this.memory;
    try {
      this.durable?.close();
    } catch {
      // dropped either way
    }
    this.durable = undefined;
    this.memory = new Map();
    const detail = `${problem}; accepted command ids are remembered in memory until the card takes writes again`;
    this.options.logger.error({ detail }, 'storage problem');
    this.notify({ kind: 'problem', detail });
    this.retryTimer ??= setInterval(() => {
      try {
        this.retry();
      } catch (error) {
        this.options.logger.error({ err: errorText(error) }, 'replay guard retry failed');
      }
    }, this.options.retryMs ?? defaultRetryMs);
    this.retryTimer.unref?.();
    return this.memory;
  }

  private retry(): void {
    const memory = this.memory;
    if (memory === undefined) return;
    // The file forgets expired ids by itself; while in memory, they are forgotten here, so that a card that
    // stays read-only for months does not grow the process by every command ever accepted.
    const now = this.options.now();
    for (const [jti, expiresAt] of memory) if (expiresAt <= now) memory.delete(jti);
    if (!probeWritable(dirname(this.options.path))) return;
    let durable: SqliteReplayGuard | undefined;
    try {
      durable = this.open();
      for (const [jti, expiresAt] of memory) if (expiresAt > now) durable.remember(jti, expiresAt, now);
    } catch (error) {
      durable?.close();
      this.options.logger.debug({ err: errorText(error) }, 'the replay guard still cannot be written');
      return;
    }
    this.durable = durable;
    this.memory = undefined;
    clearInterval(this.retryTimer);
    this.retryTimer = undefined;
    this.notify({ kind: 'recovered', detail: `the replay guard is stored on the card again (${memory.size} id(s) written from memory)` });
  }

  private notify(notice: StorageNotice): void {
    notifyLater(this.options.onNotice, notice, this.options.logger);
  }
}
