import Database from 'better-sqlite3';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { openSqliteReplayGuard, ReplayGuardStorageError } from '../../src/store/sqlite-replay-guard.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { scratchFolder } from '../support/scratch-folder.ts';
import { memoryReplayGuard } from '../support/memory-replay-guard.ts';
import { expectStorageError as expectDurableStorageError, printedUntilKilled } from '../support/durable-store.ts';
import { describeReplayGuardContract } from '../support/replay-guard-contract.ts';

const childScript = fileURLToPath(new URL('../support/replay-guard-child.ts', import.meta.url));
const t0 = 1_800_000_000_000;
const hour = 3600_000;

describeReplayGuardContract('in memory', () => memoryReplayGuard());

describe('SQLite replay guard', () => {
  const scratch = scratchFolder('ve-replay-');
  const freshPath = (name = 'commands') => scratch.fresh(name, 'sqlite');

  describeReplayGuardContract('SQLite', () => openSqliteReplayGuard({ path: freshPath('contract') }));

  it('creates a missing data directory, and runs in WAL with synchronous=FULL on its own connection', () => {
    const path = join(scratch.dir, 'not', 'yet', 'there', 'commands.sqlite');
    const { logger, lines } = memoryLogger('info');
    const guard = openSqliteReplayGuard({ path, logger });
    guard.remember('cmd-wal-0001', t0 + hour, t0);
    // synchronous is per connection, so the value logged is the one read back from the guard's own connection.
    expect(lines.find((l) => l.msg === 'replay guard opened')).toMatchObject({
      path,
      journalMode: 'wal',
      synchronous: 'full',
      schemaVersion: 1,
      remembered: 0,
    });
    expect(existsSync(`${path}-wal`)).toBe(true);
    const raw = new Database(path, { readonly: true });
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(raw.pragma('user_version', { simple: true })).toBe(1);
      // Readable from another connection while the guard is still open: it was committed when remember returned.
      expect(raw.prepare('SELECT jti, expires_at AS expiresAt FROM seen_command').all()).toEqual([{ jti: 'cmd-wal-0001', expiresAt: t0 + hour }]);
    } finally {
      raw.close();
      guard.close();
    }
  });

  it('still refuses a remembered jti after a reopen, until it expires; prune survives a reopen too', () => {
    const path = freshPath();
    let guard = openSqliteReplayGuard({ path });
    expect(guard.remember('cmd-durable-1', t0 + hour, t0)).toBe(true);
    expect(guard.remember('cmd-durable-2', t0 + 2 * hour, t0)).toBe(true);
    guard.close();

    const { logger, lines } = memoryLogger('info');
    guard = openSqliteReplayGuard({ path, logger });
    expect(lines.find((l) => l.msg === 'replay guard opened')).toMatchObject({ remembered: 2 });
    expect(guard.remember('cmd-durable-1', t0 + hour, t0 + 10)).toBe(false);
    expect(guard.prune(t0 + hour)).toBe(1);
    guard.close();

    guard = openSqliteReplayGuard({ path });
    expect(guard.remember('cmd-durable-2', t0 + 2 * hour, t0 + hour)).toBe(false);
    expect(guard.remember('cmd-durable-1', t0 + 3 * hour, t0 + hour)).toBe(true);
    guard.close();
  });

  it('forgets expired ids by itself, at most once an hour, and prune() clears a backlog past one batch', () => {
    // tmpfs: this test is about counting rows, and 2,500 fsyncs on a real disk would only make it slow.
    const shmDir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 've-replay-'));
    const path = join(shmDir, 'commands.sqlite');
    const guard = openSqliteReplayGuard({ path });
    const raw = new Database(path, { readonly: true });
    const count = () => (raw.prepare('SELECT count(*) AS n FROM seen_command').get() as { n: number }).n;
    try {
      for (let i = 0; i < 10; i++) guard.remember(`short-${i}`, t0 + 1000, t0);
      expect(count()).toBe(10);
      // Expired, but the hourly prune ran at t0 already: nothing is dropped yet.
      guard.remember('later-1', t0 + 2 * hour, t0 + 2000);
      expect(count()).toBe(11);
      guard.remember('later-2', t0 + 2 * hour, t0 + hour);
      expect(count()).toBe(2);

      for (let i = 0; i < 2500; i++) guard.remember(`bulk-${i}`, t0 + hour + 5000, t0 + hour + 1);
      expect(guard.prune(t0 + hour + 5000)).toBe(2500);
      expect(count()).toBe(2);
    } finally {
      raw.close();
      guard.close();
      rmSync(shmDir, { recursive: true, force: true });
    }
  });

  it('refuses bad arguments instead of storing something it cannot compare', () => {
    const guard = openSqliteReplayGuard({ path: freshPath() });
    try {
      expect(() => guard.remember('', t0 + 1000, t0)).toThrow('jti must be a non-empty string');
      expect(() => guard.remember('cmd-nan-0001', Number.NaN, t0)).toThrow('times must be finite');
      expect(() => guard.remember('cmd-nan-0001', t0 + 1000, Number.POSITIVE_INFINITY)).toThrow('times must be finite');
    } finally {
      guard.close();
    }
  });

  it('loses no remembered jti when the process is killed with SIGKILL at random moments', async () => {
    const path = freshPath('crash');
    const printedCounts: number[] = [];
    for (let run = 0; run < 4; run++) {
      const printed = await printedUntilKilled(childScript, [path, `run${run}`], 20 + Math.random() * 300);
      printedCounts.push(printed.length);
      const guard = openSqliteReplayGuard({ path });
      try {
        const now = Date.now();
        const accepted = printed.filter((jti) => guard.remember(jti, now + 3600_000, now));
        expect(accepted).toEqual([]);
      } finally {
        guard.close();
      }
    }
    console.log(`  kill -9: jtis printed before each kill: ${printedCounts.join(', ')}`);
    expect(printedCounts.every((n) => n > 0)).toBe(true);
  });

  describe('a damaged or foreign file is reported, naming the path', () => {
    const expectStorageError = (path: string, problem: RegExp) =>
      expectDurableStorageError((p) => openSqliteReplayGuard({ path: p }), ReplayGuardStorageError, 'replay guard', path, problem);

    it('a file that is not a database', () => {
      const path = freshPath('garbage');
      writeFileSync(path, Buffer.alloc(8192, 'not a database, just bytes from a dying SD card '));
      expectStorageError(path, /not a database/);
    });

    it('a database whose pages are damaged', () => {
      const path = freshPath('damaged');
      const guard = openSqliteReplayGuard({ path });
      const raw = new Database(path);
      raw.pragma('synchronous = OFF');
      const insert = raw.prepare('INSERT INTO seen_command (jti, expires_at) VALUES (?, ?)');
      raw.transaction(() => {
        for (let i = 0; i < 3000; i++) insert.run(`cmd-${i}-${'x'.repeat(60)}`, t0 + i);
      })();
      raw.close();
      guard.close();
      // One 4 KiB sector of an SD card gone bad: page 3 overwritten.
      const fd = openSync(path, 'r+');
      writeSync(fd, Buffer.alloc(4096, 0xa5), 0, 4096, 2 * 4096);
      closeSync(fd);
      expectStorageError(path, /integrity check failed|malformed/);
    });

    it('a schema newer than this build', () => {
      const path = freshPath('newer');
      openSqliteReplayGuard({ path }).close();
      const raw = new Database(path);
      raw.pragma('user_version = 99');
      raw.close();
      expectStorageError(path, /schema version 99 is newer than this build understands/);
    });

    it('a path that is a directory', () => {
      const path = join(scratch.dir, 'a-directory.sqlite');
      mkdirSync(path);
      expectStorageError(path, /unable to open/);
    });
  });
});
