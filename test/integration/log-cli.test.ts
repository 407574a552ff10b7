import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dailySummarySchema } from '../../src/contract/schedule-summary.ts';
import type { FiringRecord } from '../../src/schedule/types.ts';
import { openSqliteScheduleStore, type SqliteScheduleStore } from '../../src/store/sqlite-schedule-store.ts';
import { firing, scheduleDocument } from '../support/schedule-store-contract.ts';
import { scratchFolder } from '../support/scratch-folder.ts';

/**
 * `village-edge log` as a technician runs it on the Pi: the built CLI (the global setup builds it) as a child
 * process of its own, reading a database this test wrote with the store, while the store is still open.
 */

const repoRoot = new URL('../../', import.meta.url).pathname;
const bundle = join(repoRoot, 'dist/main.js');
/** Each run starts a node; with both cores busy that is a second or more. */
const SLOW = { timeout: 60_000 };

function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bundle, ...args], { cwd: repoRoot });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const utc = (iso: string) => Date.parse(`${iso}Z`);

describe('village-edge log', () => {
  const scratch = scratchFolder('ve-log-cli-');
  /** A village config whose data directory is its own folder; the schedule database is `<dataDir>/schedule.sqlite`. */
  const village = (name: string) => {
    const dir = scratch.fresh(name);
    const dataDir = join(dir, 'data');
    mkdirSync(dataDir, { recursive: true });
    const config = join(dir, 'config.json');
    const json = {
      version: 2,
      village: { id: `log-${name}`, name, location: { lat: 25.04, lon: 102.71 } },
      county: { url: 'mqtt://127.0.0.1:1883', clientId: `ve-log-${name}`, commandKeys: [] },
      dataDir: 'data',
      broadcast: { output: { device: 'null' } },
    };
    writeFileSync(config, JSON.stringify(json));
    return { config, database: join(dataDir, 'schedule.sqlite') };
  };

  describe('against a Shanghai schedule while the service holds the database open', () => {
    let store: SqliteScheduleStore;
    let config = '';
    beforeAll(() => {
      const files = village('shanghai');
      config = files.config;
      store = openSqliteScheduleStore({ path: files.database });
      store.save({ source: 'village', document: scheduleDocument(12), appliedAt: utc('2026-11-28T00:00:00') });
      const records: FiringRecord[] = [
        firing('pufa-morning', utc('2026-11-30T00:00:00'), { outcome: 'finished' }), // 2026-11-30 08:00
        firing('pufa-morning', utc('2026-12-01T00:00:00'), { outcome: 'finished', requestId: 'req-1' }),
        firing('news-evening', utc('2026-12-01T10:30:00'), { outcome: 'missed', reason: 'quiet hours' }),
        firing('pufa-morning', utc('2026-12-01T15:59:30'), { outcome: 'preempted', reason: 'emergency broadcast' }), // 23:59:30
        firing('pufa-morning', utc('2026-12-01T16:00:00'), { outcome: 'skipped', reason: 'media missing' }), // 12-02 00:00
        firing('news-evening', utc('2026-12-02T10:30:00'), { requestId: 'req-2' }),
        firing('pufa-morning', utc('2026-12-03T00:00:00'), { outcome: 'failed', reason: 'amplifier off' }),
      ];
      for (const record of records) store.open(record);
    });
    afterAll(() => store.close());

    it('prints one line per firing in the schedule’s local time, then each day’s totals', SLOW, async () => {
      const { code, stdout, stderr } = await cli('log', '--config', config, '--since', '2026-12-01', '--until', '2026-12-02');
      expect(stderr).toBe('');
      expect(code).toBe(0);
      expect(stdout.split('\n')).toEqual([
        'firings from 2026-12-01 to 2026-12-02, times in Asia/Shanghai:',
        '2026-12-01 08:00     pufa-morning  finished',
        '2026-12-01 18:30     news-evening  missed     quiet hours',
        '2026-12-01 23:59:30  pufa-morning  preempted  emergency broadcast',
        '2026-12-02 00:00     pufa-morning  skipped    media missing',
        '2026-12-02 18:30     news-evening  playing',
        '',
        'per day:',
        '2026-12-01  due 3, played 2 (finished 1, preempted 1), missed 1',
        '2026-12-02  due 2, played 1 (playing 1), skipped 1',
        'total       due 5, played 3 (finished 1, preempted 1, playing 1), missed 1, skipped 1',
        '',
      ]);
    });

    it('without --until, runs to today; one day given twice is that day', SLOW, async () => {
      const open = await cli('log', '--config', config, '--since', '2026-12-03');
      expect(open.code).toBe(0);
      expect(open.stdout).toMatch(
        /^firings from 2026-12-03 to \d{4}-\d{2}-\d{2}, times in Asia\/Shanghai:\n2026-12-03 08:00 {2}pufa-morning {2}failed {2}amplifier off\n/,
      );
      const none = await cli('log', '--config', config, '--since', '2026-11-29', '--until', '2026-11-29');
      expect(none).toMatchObject({ code: 0, stdout: 'no firings recorded on 2026-11-29 (days in Asia/Shanghai)\n', stderr: '' });
    });

    it('--json: one object a line, each firing and then each day’s summary as the county contract reads it', SLOW, async () => {
      const { code, stdout, stderr } = await cli('log', '--json', '--config', config, '--since', '2026-12-01', '--until', '2026-12-02');
      expect(stderr).toBe('');
      expect(code).toBe(0);
      const lines = stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { type: string; [key: string]: unknown });
      expect(lines.map((l) => l.type)).toEqual(['firing', 'firing', 'firing', 'firing', 'firing', 'day', 'day']);
      expect(lines[0]).toEqual({
        type: 'firing',
        date: '2026-12-01',
        local: '2026-12-01 08:00',
        programme: 'pufa-morning',
        scheduledAt: '2026-12-01T00:00:00.000Z',
        outcome: 'finished',
        version: 3,
        at: '2026-12-01T00:00:00.005Z',
        requestId: 'req-1',
      });
      const { type: _day, ...summary } = lines[5]!;
      const day = dailySummarySchema.parse(summary);
      expect(day).toMatchObject({ date: '2026-12-01', timezone: 'Asia/Shanghai', totals: { due: 3, played: 2, missed: 1 } });
      expect(day.programmes.find((p) => p.programme === 'news-evening')).toMatchObject({ due: 1, missed: 1, reasons: { 'quiet hours': 1 } });
    });

    it('a wrong date is one line naming the flag, exit 2, no stack trace', SLOW, async () => {
      const cases: [string[], string][] = [
        [['--since', '2026-12-32'], 'log: --since "2026-12-32": not a calendar date; give one as YYYY-MM-DD, e.g. 2026-12-01\n'],
        [['--since', '1.12.2026'], 'log: --since "1.12.2026": not a calendar date; give one as YYYY-MM-DD, e.g. 2026-12-01\n'],
        [
          ['--since', '2026-12-01', '--until', 'yesterday'],
          'log: --until "yesterday": not a calendar date; give one as YYYY-MM-DD, e.g. 2026-12-01\n',
        ],
        [['--since', '2026-12-03', '--until', '2026-12-01'], 'log: --until 2026-12-01 is before --since 2026-12-03\n'],
        [['--since'], 'log: --since needs a value (see log --help)\n'],
      ];
      for (const [args, message] of cases) {
        const result = await cli('log', '--config', config, ...args);
        expect(result, args.join(' ')).toEqual({ code: 2, stdout: '', stderr: message });
      }
    });
  });

  it('days and times follow the zone of the stored county-wide schedule when the village has none (Europe/Berlin, 25 h day)', SLOW, async () => {
    const { config, database } = village('berlin');
    const store = openSqliteScheduleStore({ path: database });
    store.save({ source: 'all', document: scheduleDocument(2, { timezone: 'Europe/Berlin' }), appliedAt: utc('2026-10-01T00:00:00') });
    store.open(firing('night', utc('2026-10-25T00:30:00'), { outcome: 'finished' }));
    store.open(firing('night', utc('2026-10-25T01:30:00'), { outcome: 'finished' }));
    store.open(firing('night', utc('2026-10-25T22:30:00'), { outcome: 'withheld', reason: 'exercise' }));
    // Closed, as after a clean stop: no -wal or -shm left for the reader.
    store.close();
    const { code, stdout } = await cli('log', '--config', config, '--since', '2026-10-25', '--until', '2026-10-25');
    expect(code).toBe(0);
    expect(stdout).toBe(
      [
        'firings on 2026-10-25, times in Europe/Berlin:',
        '2026-10-25 02:30  night  finished',
        '2026-10-25 02:30  night  finished',
        '2026-10-25 23:30  night  withheld  exercise',
        '',
        'per day:',
        '2026-10-25  due 3, played 2 (finished 2), withheld 1',
        '',
      ].join('\n'),
    );
  });

  it('says no firings are recorded yet when there is no database, and names a file it cannot read', SLOW, async () => {
    const { config, database } = village('empty');
    const missing = `no firings recorded yet (${database} does not exist: the service makes it when it first keeps a schedule)\n`;
    expect(await cli('log', '--config', config, '--since', '2026-12-01')).toEqual({ code: 0, stdout: missing, stderr: '' });
    // With --json stdout stays JSON lines (none), the note goes to stderr.
    expect(await cli('log', '--json', '--config', config, '--since', '2026-12-01')).toEqual({ code: 0, stdout: '', stderr: missing });
    writeFileSync(database, Buffer.alloc(8192, 'not a database, just bytes from a dying SD card '));
    const damaged = await cli('log', '--config', config);
    expect(damaged).toEqual({ code: 1, stdout: '', stderr: `log: schedule store database ${database}: file is not a database\n` });
  });

  it('prints a long log whole into a pipe: the last line is the total, not lost when the command exits', SLOW, async () => {
    const { config, database } = village('long');
    openSqliteScheduleStore({ path: database }).close();
    // Written in one transaction, as fast as the card allows: 40,000 fsync'd opens would only make this slow.
    const raw = new Database(database);
    const insert = raw.prepare("INSERT INTO firing (programme, scheduled_at, version, outcome, at) VALUES (?, ?, 1, 'finished', ?)");
    const start = utc('2026-11-30T16:00:00');
    raw.transaction(() => {
      for (let i = 0; i < 40_000; i++) insert.run(`programme-${i % 20}`, start + Math.floor(i / 20) * 60_000, start);
    })();
    raw.close();
    const { code, stdout } = await cli('log', '--config', config, '--since', '2026-12-01', '--until', '2026-12-02');
    expect(code).toBe(0);
    const lines = stdout.split('\n');
    expect(lines).toHaveLength(1 + 40_000 + 2 + 2 + 1 + 1);
    expect(lines.at(-2)).toBe('total       due 40000, played 40000 (finished 40000)');
  });

  it('--help names every flag, and the top-level help lists the command', SLOW, async () => {
    const help = await cli('log', '--help');
    expect(help.code).toBe(0);
    for (const flag of ['--since', '--until', '--json', '--config', '--help']) expect(help.stdout, flag).toContain(flag);
    expect((await cli('--help')).stdout).toMatch(/^ {2}log \[--since DATE\]/m);
  });
});
