import Database from 'better-sqlite3';
import { existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { OutboxStorageError, openSqliteOutbox } from '../../src/store/sqlite-outbox.ts';
import { ResilientOutbox } from '../../src/store/resilient-outbox.ts';
import { outboxStreams, type OutboxRecord, type OutboxStream } from '../../src/store/types.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { scratchFolder } from '../support/scratch-folder.ts';
import { expectStorageError as expectDurableStorageError, printedUntilKilled } from '../support/durable-store.ts';
import { describeOutboxContract } from '../support/outbox-contract.ts';

const childScript = fileURLToPath(new URL('../support/outbox-append-child.ts', import.meta.url));
const t0 = 1_700_000_000_000;
const day = 24 * 3600_000;

describe('SQLite outbox', () => {
  const scratch = scratchFolder('ve-outbox-');
  const freshPath = (name = 'outbox') => scratch.fresh(name, 'db');

  describeOutboxContract('SQLite', () => openSqliteOutbox({ path: freshPath('contract') }));
  // The outbox the service uses: SQLite underneath while the card takes writes, so the same promises hold.
  describeOutboxContract('resilient (SQLite underneath)', () => {
    const outbox = new ResilientOutbox({
      dataDir: scratch.fresh('resilient'),
      reserveBytes: 0,
      logger: memoryLogger('info').logger,
      onNotice: () => {},
    });
    outbox.start();
    return outbox;
  });

  it('creates a missing data directory, and runs in WAL with synchronous=FULL on its own connection', () => {
    const path = join(scratch.dir, 'not', 'yet', 'there', 'outbox.db');
    const { logger, lines } = memoryLogger('info');
    const outbox = openSqliteOutbox({ path, logger });
    outbox.append({ stream: 'alarm', id: 'a1', subject: 's', now: t0, build: () => ({}) });
    // The values logged are read back from the live connection after setting them (synchronous is per connection).
    expect(lines.find((l) => l.msg === 'outbox opened')).toMatchObject({ path, journalMode: 'wal', synchronous: 'full', schemaVersion: 1 });
    expect(existsSync(`${path}-wal`)).toBe(true);
    const raw = new Database(path, { readonly: true });
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(raw.pragma('user_version', { simple: true })).toBe(1);
    } finally {
      raw.close();
      outbox.close();
    }
  });

  it('keeps records intact and seq monotonic across a reopen, even after the newest rows are pruned', () => {
    const path = freshPath();
    let outbox = openSqliteOutbox({ path });
    for (const stream of outboxStreams) {
      for (let i = 1; i <= 3; i++) outbox.append({ stream, id: `${stream}-${i}`, subject: `T${i}`, now: t0 + i, build: (seq) => ({ seq, stream }) });
    }
    outbox.recordAttempts([{ id: 'alarm-1', attempts: 2, nextAttemptAt: t0 + 500 }]);
    outbox.updatePayload('alarm-2', { seq: 2, presses: 3 });
    outbox.ackMany(['fault-3'], t0 + 50);
    const ids = outboxStreams.flatMap((s) => [1, 2, 3].map((i) => `${s}-${i}`));
    const before = ids.map((id) => outbox.get(id));
    const statsBefore = outbox.stats();
    outbox.close();

    outbox = openSqliteOutbox({ path });
    expect(ids.map((id) => outbox.get(id))).toEqual(before);
    expect(outbox.stats()).toEqual(statsBefore);
    expect(outbox.append({ stream: 'alarm', id: 'alarm-4', subject: 's', now: t0, build: () => ({}) }).seq).toBe(4);
    // fault-3 was the newest fault; once it is pruned, max(seq) would say 2, the counter says 3.
    expect(outbox.prune(t0 + 50 + 8 * day)).toBe(1);
    expect(outbox.get('fault-3')).toBeUndefined();
    outbox.close();

    outbox = openSqliteOutbox({ path });
    expect(outbox.append({ stream: 'fault', id: 'fault-4', subject: 's', now: t0, build: () => ({}) }).seq).toBe(4);
    outbox.close();
  });

  it('prunes acked rows past retention by itself on ack, and never an unacked one', () => {
    const outbox = openSqliteOutbox({ path: freshPath(), ackedRetentionMs: day });
    for (let i = 0; i < 2500; i++) outbox.append({ stream: 'report', id: `r${i}`, subject: 's', now: t0, build: () => ({ i }) });
    outbox.append({ stream: 'alarm', id: 'old-but-unacked', subject: 's', now: t0, build: () => ({}) });
    outbox.ackMany(
      Array.from({ length: 2500 }, (_, i) => `r${i}`),
      t0,
    );
    outbox.append({ stream: 'alarm', id: 'a-new', subject: 's', now: t0, build: () => ({}) });
    // Each ack prunes one bounded batch (1000); a full batch makes the next ack prune again.
    const later = t0 + day + 1;
    outbox.ackMany(['a-new'], later);
    expect(outbox.get('r999')).toBeUndefined();
    expect(outbox.get('r2499')).toBeDefined();
    outbox.ackMany(['nothing'], later);
    outbox.ackMany(['nothing'], later);
    expect(outbox.get('r2499')).toBeUndefined();
    expect(outbox.get('old-but-unacked')).toMatchObject({ ackedAt: null });
    expect(outbox.get('a-new')?.ackedAt).toBe(later);
    expect(outbox.prune(later)).toBe(0);
    outbox.close();
  });

  describe('refuses a database it cannot trust, naming the path', () => {
    const expectStorageError = (path: string, problem: RegExp) =>
      expectDurableStorageError((p) => openSqliteOutbox({ path: p }), OutboxStorageError, 'outbox', path, problem);

    it('a file that is not a database', () => {
      const path = freshPath('garbage');
      writeFileSync(path, Buffer.alloc(8192, 'not a database, just bytes from a dying SD card '));
      expectStorageError(path, /not a database/);
    });

    it('a database whose pages are damaged', () => {
      const path = freshPath('damaged');
      const outbox = openSqliteOutbox({ path });
      for (let i = 0; i < 300; i++)
        outbox.append({ stream: 'alarm', id: `a${i}`, subject: `T${i}`, now: t0, build: () => ({ text: 'x'.repeat(200) }) });
      outbox.close();
      // One 4 KiB sector of an SD card gone bad: page 3 overwritten.
      const fd = openSync(path, 'r+');
      writeSync(fd, Buffer.alloc(4096, 0xa5), 0, 4096, 2 * 4096);
      closeSync(fd);
      expectStorageError(path, /integrity check failed|malformed/);
    });

    it('a record whose bytes rotted (structure intact, so quick_check passes): at read time, naming the record', () => {
      const path = freshPath('rotted');
      const outbox = openSqliteOutbox({ path });
      outbox.append({ stream: 'alarm', id: 'a1', subject: 's', now: t0, build: () => ({ presses: 1 }) });
      const raw = new Database(path);
      raw.prepare("UPDATE outbox_record SET payload = '{\"pres\u00a5\u00a5' WHERE id = 'a1'").run();
      raw.close();
      expect(() => outbox.due('alarm', t0, 10)).toThrow(OutboxStorageError);
      expect(() => outbox.get('a1')).toThrow(`outbox database ${path}: record a1 has a damaged payload`);
      outbox.close();
    });

    it('a schema newer than this build', () => {
      const path = freshPath('newer');
      openSqliteOutbox({ path }).close();
      const raw = new Database(path);
      raw.pragma('user_version = 99');
      raw.close();
      expectStorageError(path, /newer/);
    });

    it('a path that is a directory', () => {
      const path = join(scratch.dir, 'a-directory.db');
      mkdirSync(path);
      expectStorageError(path, /unable to open/);
    });
  });

  // About memory, not speed: 100,000 appends and pages take ~10 s on a quiet machine, ~50 s with both cores busy.
  it('pages through 100,000 undelivered records with flat memory', () => {
    const gc = exposeGc();
    // tmpfs: this test is about memory, and 100,000 fsyncs on a real disk would take half a minute.
    const shmDir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 've-outbox-'));
    const outbox = openSqliteOutbox({ path: join(shmDir, 'big.db') });
    try {
      const total = 100_000;
      let started = performance.now();
      for (let i = 0; i < total; i++) {
        outbox.append({
          stream: 'alarm',
          id: `alarm-${i}`,
          subject: `T${i % 500}`,
          now: t0 + i,
          build: (seq) => ({ seq, terminal: `T${i % 500}`, note: 'x'.repeat(150) }),
        });
      }
      const appendMs = performance.now() - started;
      expect(outbox.stats().depth).toBe(total);

      gc();
      const heapBefore = process.memoryUsage().heapUsed;
      const samples: number[] = [];
      let seen = 0;
      let lastSeq = 0;
      let outOfOrder = 0;
      let slowestDueMs = 0;
      started = performance.now();
      for (let window = 0; ; window++) {
        const dueStarted = performance.now();
        const batch: OutboxRecord[] = outbox.due('alarm', t0 + total, 500);
        slowestDueMs = Math.max(slowestDueMs, performance.now() - dueStarted);
        if (batch.length === 0) break;
        for (const record of batch) {
          if (record.seq !== lastSeq + 1) outOfOrder++;
          lastSeq = record.seq;
          outbox.recordAttempts([{ id: record.id, attempts: 1, nextAttemptAt: t0 + total + 60_000 }]);
        }
        seen += batch.length;
        if (window % 20 === 0) {
          gc();
          samples.push(process.memoryUsage().heapUsed);
        }
      }
      const pageMs = performance.now() - started;
      gc();
      const heapAfter = process.memoryUsage().heapUsed;
      const growth = Math.max(...samples, heapAfter) - heapBefore;
      started = performance.now();
      const stats = outbox.stats();
      const statsMs = performance.now() - started;
      // For scale: what holding a tenth of the backlog at once would cost.
      const tenth: OutboxRecord[] = outbox.due('alarm', t0 + total + 60_000, total / 10);
      gc();
      const tenthBytes = process.memoryUsage().heapUsed - heapAfter;
      const mb = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MB`;
      console.log(
        `  100k: append ${(appendMs / 1000).toFixed(1)} s (tmpfs); due()+recordAttempt of all ${(pageMs / 1000).toFixed(1)} s, ` +
          `slowest due() ${slowestDueMs.toFixed(1)} ms; heap ${mb(heapBefore)} -> peak ${mb(Math.max(...samples))} -> ${mb(heapAfter)} ` +
          `(growth ${mb(growth)}); 10,000 records held at once: ${mb(tenthBytes)}; stats() ${statsMs.toFixed(1)} ms; ` +
          `rss ${mb(process.memoryUsage().rss)}`,
      );
      expect(tenth).toHaveLength(total / 10);
      expect(stats.depth).toBe(total);
      expect(seen).toBe(total);
      expect(outOfOrder).toBe(0);
      expect(outbox.due('alarm', t0 + total, 500)).toEqual([]);
      // 100,000 records held at once would take tens of MB; one window of 500 takes well under one.
      expect(growth).toBeLessThan(5 * 1048576);
    } finally {
      outbox.close();
      rmSync(shmDir, { recursive: true, force: true });
    }
  }, 180_000);

  it('loses no printed record when the appending process is killed with SIGKILL at random moments', async () => {
    const path = freshPath('crash');
    const runs = 6;
    const printedCounts: number[] = [];
    for (let run = 0; run < runs; run++) {
      const printed = await printedUntilKilled(childScript, [path, `run${run}`], 20 + Math.random() * 400);
      printedCounts.push(printed.length);
      const outbox = openSqliteOutbox({ path });
      try {
        const all = outboxStreams.flatMap((stream) => allUnacked(outbox, stream));
        const ids = new Set(all.map((r) => r.id));
        const missing = printed.filter((id) => !ids.has(id));
        expect(missing).toEqual([]);
        // At most one more: committed, then killed before its id was printed.
        const unprinted = all.filter((r) => r.id.startsWith(`run${run}-`) && !printed.includes(r.id)).map((r) => r.id);
        expect(unprinted.length === 0 || (unprinted.length === 1 && unprinted[0] === `run${run}-${printed.length}`)).toBe(true);
        for (const stream of outboxStreams) {
          const seqs = allUnacked(outbox, stream).map((r) => r.seq);
          expect(seqs).toEqual(seqs.map((_, i) => i + 1));
        }
      } finally {
        outbox.close();
      }
    }
    console.log(`  kill -9: ids printed before each kill: ${printedCounts.join(', ')}`);
    expect(printedCounts.every((n) => n > 0)).toBe(true);
  });
});

function allUnacked(outbox: ReturnType<typeof openSqliteOutbox>, stream: OutboxStream): OutboxRecord[] {
  return outbox.due(stream, Number.MAX_SAFE_INTEGER, 1_000_000);
}

/** V8's gc() without --expose-gc on the command line (vitest starts the worker, not us). */
function exposeGc(): () => void {
  setFlagsFromString('--expose-gc');
  const gc: unknown = runInNewContext('gc');
  if (typeof gc !== 'function') throw new Error('gc() is not available');
  return () => {
    gc();
  };
}
