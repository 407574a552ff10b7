import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/platform/logger.ts';
import { BenchFailure } from './figures.ts';

/** A log line the tap was asked to read, stamped (performance.now()) when the service wrote it. */
export interface TappedLine {
  msg: string;
  level: number;
  at: number;
  fields: Record<string, unknown>;
}

/**
 * The service's real pino logger, writing into the bench: pino writes synchronously, so a line's stamp is
 * the moment the service logged it. Only lines whose `msg` someone listens to are parsed, so a busy
 * service pays about what it pays for stdout in production.
 */
export class LogTap {
  readonly logger: Logger;
  /** Lines at level error or above, raw. */
  readonly errors: string[] = [];
  private readonly listeners = new Map<string, Array<(line: TappedLine) => void>>();
  private readonly counts = new Map<string, number>();
  private readonly watchers = new Set<() => void>();

  constructor(level: 'debug' | 'info' | 'warn') {
    const destination = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        this.receive(chunk.toString('utf8'), performance.now());
        done();
      },
    });
    this.logger = createLogger({ level, destination });
  }

  on(msg: string, listener: (line: TappedLine) => void): void {
    const list = this.listeners.get(msg) ?? [];
    list.push(listener);
    this.listeners.set(msg, list);
  }

  count(msg: string): number {
    return this.counts.get(msg) ?? 0;
  }

  /** Resolves once `check()` holds, re-checked after every log line the tap reads; rejects after timeoutMs. */
  until(what: string, check: () => boolean, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const finish = (error?: Error): void => {
        clearTimeout(timer);
        this.watchers.delete(watcher);
        signal?.removeEventListener('abort', aborted);
        if (error) reject(error);
        else resolve();
      };
      const watcher = (): void => {
        if (check()) finish();
      };
      const aborted = (): void => finish(new BenchFailure(`aborted while waiting for ${what}`));
      const timer = setTimeout(() => finish(new BenchFailure(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
      this.watchers.add(watcher);
      signal?.addEventListener('abort', aborted, { once: true });
    });
  }

  private receive(text: string, at: number): void {
    for (const raw of text.split('\n')) {
      if (raw === '') continue;
      const msg = /"msg":"((?:[^"\\]|\\.)*)"/.exec(raw)?.[1] ?? '';
      this.counts.set(msg, (this.counts.get(msg) ?? 0) + 1);
      // pino writes the level first: {"level":50,...
      if (raw.startsWith('{"level":50') || raw.startsWith('{"level":60')) this.errors.push(raw);
      const listeners = this.listeners.get(msg);
      if (listeners !== undefined) {
        const fields = JSON.parse(raw) as Record<string, unknown>;
        const line: TappedLine = { msg, level: Number(fields['level']), at, fields };
        for (const listener of listeners) listener(line);
      }
    }
    for (const watcher of [...this.watchers]) watcher();
  }
}
