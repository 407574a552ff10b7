import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BroadcastJournalStorageError, openSqliteBroadcastJournal } from '../../src/store/sqlite-broadcast-journal.ts';
import { memoryLogger } from '../support/log-sink.ts';

const t0 = 1_800_000_000_000;

describe('SQLite broadcast journal', () => {
  let dir = '';
  let files = 0;
  const freshPath = () => join(dir, `broadcasts-${++files}.sqlite`);
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 've-journal-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps what was opened and not ended across a reopen, oldest first, counting resumes', () => {
    const path = freshPath();
    let journal = openSqliteBroadcastJournal({ path });
    journal.open('cmd-b', { id: 'cmd-b', priority: 'announcement' }, t0 + 10);
    journal.open('cmd-a', { id: 'cmd-a', priority: 'emergency', zones: ['square'] }, t0);
    journal.open('cmd-c', { id: 'cmd-c' }, t0 + 20);
    journal.end('cmd-c');
    journal.end('never-opened');
    journal.close();

    const { logger, lines } = memoryLogger('info');
    journal = openSqliteBroadcastJournal({ path, logger });
    expect(lines.find((l) => l.msg === 'broadcast journal opened')).toMatchObject({
      journalMode: 'wal',
      synchronous: 'full',
      schemaVersion: 1,
      unfinished: 2,
    });
    expect(journal.unfinished()).toEqual([
      { id: 'cmd-a', request: { id: 'cmd-a', priority: 'emergency', zones: ['square'] }, acceptedAt: t0, resumes: 0 },
      { id: 'cmd-b', request: { id: 'cmd-b', priority: 'announcement' }, acceptedAt: t0 + 10, resumes: 0 },
    ]);
    // Taken up again: the first acceptance time stays, the resume is counted.
    journal.open('cmd-a', { id: 'cmd-a', priority: 'emergency', zones: ['square'] }, t0 + 99);
    expect(journal.unfinished()[0]).toMatchObject({ id: 'cmd-a', acceptedAt: t0, resumes: 1 });
    journal.close();
    journal.close();
    expect(() => journal.unfinished()).toThrow();
  });

  it('gives a row that is not a JSON object back with an empty request, for the caller to judge', () => {
    const path = freshPath();
    openSqliteBroadcastJournal({ path }).close();
    const raw = new Database(path);
    raw.prepare('INSERT INTO open_broadcast (id, request, accepted_at) VALUES (?, ?, ?)').run('cmd-torn', '{"id":"cmd-t', t0);
    raw.close();
    const journal = openSqliteBroadcastJournal({ path });
    expect(journal.unfinished()).toEqual([{ id: 'cmd-torn', request: {}, acceptedAt: t0, resumes: 0 }]);
    journal.close();
  });

  it('refuses a file that is not a database, naming it', () => {
    const path = freshPath();
    writeFileSync(path, 'not a database at all, just text that fills the header and more'.repeat(20));
    expect(() => openSqliteBroadcastJournal({ path })).toThrow(BroadcastJournalStorageError);
    expect(() => openSqliteBroadcastJournal({ path })).toThrow(`broadcast journal database ${path}: `);
  });
});
