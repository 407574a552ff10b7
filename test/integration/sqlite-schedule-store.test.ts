import Database from 'better-sqlite3';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openScheduleLogReader, openSqliteScheduleStore, ScheduleStorageError, StoredScheduleError } from '../../src/store/sqlite-schedule-store.ts';
import { expectStorageError as expectDurableStorageError, printedUntilKilled } from '../support/durable-store.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { describeScheduleStoreContract, firing, scheduleDocument } from '../support/schedule-store-contract.ts';
import { scratchFolder } from '../support/scratch-folder.ts';

const t0 = Date.UTC(2026, 11, 1, 0, 0);
const minute = 60_000;
const storeModule = new URL('../../src/store/sqlite-schedule-store.ts', import.meta.url).pathname;
const printModule = new URL('../support/blocking-print.ts', import.meta.url).pathname;

/**
 * The child of the kill -9 test: opens firings of one programme as fast as it can and prints each slot the
 * moment `open` returned true, with a blocking write, so a printed slot was committed first.
 */
const childSource = `
import { openSqliteScheduleStore } from ${JSON.stringify(storeModule)};
import { printBlocking } from ${JSON.stringify(printModule)};
const [path, programme] = process.argv.slice(2);
const store = openSqliteScheduleStore({ path });
printBlocking('ready\\n');
for (let i = 0; ; i++) {
  const scheduledAt = ${t0} + i * ${minute};
  if (!store.open({ programme, scheduledAt, version: 2, outcome: 'playing', at: Date.now(), requestId: programme + '-' + i }))
    throw new Error('slot ' + scheduledAt + ' refused on first sight');
  printBlocking(scheduledAt + '\\n');
}
`;

describe('SQLite schedule store', () => {
  const scratch = scratchFolder('ve-schedule-');
  const freshPath = (name = 'schedule') => scratch.fresh(name, 'sqlite');

  describeScheduleStoreContract('SQLite', (options) => openSqliteScheduleStore({ path: freshPath('contract'), ...options }));

  it('keeps documents, firings and the cursor across a close and reopen, in WAL with synchronous=FULL', () => {
    const path = join(scratch.dir, 'not', 'yet', 'there', 'schedule.sqlite');
    let store = openSqliteScheduleStore({ path });
    store.save({ source: 'village', document: scheduleDocument(12), appliedAt: t0 });
    store.save({ source: 'all', document: scheduleDocument(3, { timezone: 'Europe/Berlin' }), appliedAt: t0 - minute });
    store.open(firing('pufa-morning', t0, { requestId: 'req-1' }));
    store.open(firing('news-evening', t0 + minute, { outcome: 'missed', reason: 'quiet hours' }));
    store.setCursor(t0 + 2 * minute);
    expect(existsSync(`${path}-wal`)).toBe(true);
    // Committed when the calls returned: another connection sees it while the store is still open.
    const raw = new Database(path, { readonly: true });
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(raw.prepare('SELECT count(*) AS n FROM firing').get()).toEqual({ n: 2 });
    } finally {
      raw.close();
    }
    store.close();

    const { logger, lines } = memoryLogger('info');
    store = openSqliteScheduleStore({ path, logger });
    try {
      expect(lines.find((l) => l.msg === 'schedule store opened')).toMatchObject({
        path,
        journalMode: 'wal',
        synchronous: 'full',
        schemaVersion: 1,
        firings: 2,
        maxFirings: 200_000,
        schedules: ['all', 'village'],
      });
      expect(store.load('village')).toStrictEqual({ source: 'village', document: scheduleDocument(12), appliedAt: t0 });
      expect(store.load('all')?.document.timezone).toBe('Europe/Berlin');
      expect(store.between(t0, t0 + 2 * minute)).toStrictEqual([
        firing('pufa-morning', t0, { requestId: 'req-1' }),
        firing('news-evening', t0 + minute, { outcome: 'missed', reason: 'quiet hours' }),
      ]);
      expect(store.playing()).toStrictEqual([firing('pufa-morning', t0, { requestId: 'req-1' })]);
      expect(store.cursor()).toBe(t0 + 2 * minute);
      // Cut off by the restart, settled after it.
      expect(store.settle('req-1', 'failed', 'restart while playing', t0 + 3 * minute)).toBe(true);
      expect(store.open(firing('pufa-morning', t0))).toBe(false);
    } finally {
      store.close();
    }
  });

  it('loses no firing whose open() returned when the process is killed with SIGKILL right after', async () => {
    const path = freshPath('crash');
    const childScript = join(scratch.dir, 'schedule-store-child.ts');
    writeFileSync(childScript, childSource);
    const printedCounts: number[] = [];
    // 0 ms: killed right after the first open() returned; the others land somewhere in a run of opens.
    for (const [run, afterMs] of [0, 5, 40, 150].entries()) {
      const programme = `run${run}`;
      const printed = await printedUntilKilled(childScript, [path, programme], afterMs);
      printedCounts.push(printed.length);
      const store = openSqliteScheduleStore({ path });
      try {
        const kept = store.between(t0, Number.MAX_SAFE_INTEGER).filter((r) => r.programme === programme);
        for (const [i, slot] of printed.map(Number).entries()) {
          expect(kept[i]).toMatchObject({ programme, scheduledAt: slot, version: 2, outcome: 'playing', requestId: `${programme}-${i}` });
          expect(store.open(firing(programme, slot))).toBe(false);
        }
        // At most the one open in flight at the kill may be there unprinted.
        expect(kept.length - printed.length).toBeLessThanOrEqual(1);
      } finally {
        store.close();
      }
    }
    console.log(`  kill -9: firings printed before each kill: ${printedCounts.join(', ')}`);
    expect(printedCounts.every((n) => n > 0)).toBe(true);
  });

  describe('a stored document that no longer reads is named on load, with the file, source and field', () => {
    const damage = (path: string, source: string, document: string) => {
      const raw = new Database(path);
      try {
        raw.prepare('UPDATE schedule SET document = ? WHERE source = ?').run(document, source);
      } finally {
        raw.close();
      }
    };

    it('a field the schema refuses (an older build, or a flipped byte that still parses)', () => {
      const path = freshPath('damaged-field');
      const writer = openSqliteScheduleStore({ path });
      writer.save({ source: 'village', document: scheduleDocument(9), appliedAt: t0 });
      writer.close();
      const json = JSON.parse(JSON.stringify(scheduleDocument(9))) as { programmes: { cron: string }[] };
      json.programmes[1]!.cron = '30 18 * * 1-9';
      damage(path, 'village', JSON.stringify(json));
      const store = openSqliteScheduleStore({ path });
      try {
        let error: unknown;
        try {
          store.load('village');
        } catch (caught) {
          error = caught;
        }
        expect(error).toBeInstanceOf(StoredScheduleError);
        expect(error).toBeInstanceOf(ScheduleStorageError);
        expect(error).toMatchObject({ path, source: 'village' });
        expect((error as Error).message).toMatch(
          new RegExp(`^schedule store database ${path}: the stored village schedule no longer reads: document\\.programmes\\[1\\]\\.cron: `),
        );
        console.log(`  error shown: ${(error as Error).message}`);
        // The other source is unaffected, and a save replaces the damaged row.
        expect(store.load('all')).toBeUndefined();
        store.save({ source: 'village', document: scheduleDocument(10), appliedAt: t0 + 1 });
        expect(store.load('village')?.document.version).toBe(10);
      } finally {
        store.close();
      }
    });

    it('a document that is not JSON any more', () => {
      const path = freshPath('damaged-json');
      const store = openSqliteScheduleStore({ path });
      try {
        store.save({ source: 'all', document: scheduleDocument(2), appliedAt: t0 });
        damage(path, 'all', '{"version":2,"programmes":[{"id":"pufa-mo');
        expect(() => store.load('all')).toThrow(`schedule store database ${path}: the stored all schedule no longer reads: document: not JSON (`);
      } finally {
        store.close();
      }
    });

    it('a firing whose outcome this build does not know', () => {
      const path = freshPath('damaged-outcome');
      const store = openSqliteScheduleStore({ path });
      try {
        store.open(firing('pufa-morning', t0, { outcome: 'finished' }));
        const raw = new Database(path);
        raw.prepare("UPDATE firing SET outcome = 'finishe'").run();
        raw.close();
        expect(() => store.between(t0, t0 + 1)).toThrow(
          `schedule store database ${path}: firing of pufa-morning at slot ${t0}: outcome "finishe" is none of playing, finished,`,
        );
      } finally {
        store.close();
      }
    });
  });

  it('is read by the command line read-only beside a running writer, and never written by it', () => {
    const path = freshPath('reader');
    const store = openSqliteScheduleStore({ path });
    const reader = openScheduleLogReader({ path });
    try {
      store.save({ source: 'village', document: scheduleDocument(4), appliedAt: t0 });
      store.open(firing('pufa-morning', t0, { outcome: 'finished' }));
      expect(reader.load('village')?.document.version).toBe(4);
      expect(reader.between(t0, t0 + 1)).toStrictEqual([firing('pufa-morning', t0, { outcome: 'finished' })]);
      const asStore = reader as unknown as { open(record: unknown): boolean };
      expect(() => asStore.open(firing('news-evening', t0))).toThrow(/readonly/);
    } finally {
      reader.close();
      store.close();
    }
    expect(() => openScheduleLogReader({ path: freshPath('missing') })).toThrow(ScheduleStorageError);
  });

  it('warns once when the cap drops firings, and counts the rows it holds across a reopen', () => {
    const path = freshPath('cap');
    const { logger, lines } = memoryLogger('debug');
    let store = openSqliteScheduleStore({ path, logger, maxFirings: 10 });
    for (let i = 0; i < 13; i++) store.open(firing('every-second', t0 + i * 1000, { outcome: 'finished' }));
    expect(lines.filter((l) => l.msg.startsWith('firing log reached its cap'))).toHaveLength(1);
    expect(lines.find((l) => l.msg.startsWith('firing log reached its cap'))).toMatchObject({ maxFirings: 10, dropped: 1 });
    store.close();
    store = openSqliteScheduleStore({ path, maxFirings: 5 });
    try {
      store.open(firing('every-second', t0 + 20_000, { outcome: 'finished' }));
      expect(store.between(0, Number.MAX_SAFE_INTEGER).map((r) => (r.scheduledAt - t0) / 1000)).toEqual([9, 10, 11, 12, 20]);
    } finally {
      store.close();
    }
  });

  describe('a damaged or foreign file is reported, naming the path', () => {
    const expectStorageError = (path: string, problem: RegExp) =>
      expectDurableStorageError((p) => openSqliteScheduleStore({ path: p }), ScheduleStorageError, 'schedule store', path, problem);

    it('a file that is not a database', () => {
      const path = freshPath('garbage');
      writeFileSync(path, Buffer.alloc(8192, 'not a database, just bytes from a dying SD card '));
      expectStorageError(path, /not a database/);
    });

    it('a schema newer than this build', () => {
      const path = freshPath('newer');
      openSqliteScheduleStore({ path }).close();
      const raw = new Database(path);
      raw.pragma('user_version = 99');
      raw.close();
      expectStorageError(path, /schema version 99 is newer than this build understands/);
      expect(() => openScheduleLogReader({ path })).toThrow(/schema version 99 is newer than this build understands/);
    });

    it('a path that is a directory', () => {
      const path = join(scratch.dir, 'a-directory.sqlite');
      mkdirSync(path);
      expectStorageError(path, /unable to open/);
    });
  });
});
