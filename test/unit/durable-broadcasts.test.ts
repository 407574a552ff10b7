import { describe, expect, it } from 'vitest';
import { DurableBroadcasts } from '../../src/broadcast/durable-broadcasts.ts';
import type { PlaybackEvent, PlayRequest } from '../../src/broadcast/types.ts';
import type { BroadcastJournal, JsonObject, UnfinishedBroadcast } from '../../src/store/types.ts';
import { memoryLogger } from '../support/log-sink.ts';

const t0 = 1_800_000_000_000;

/** The journal's contract in memory; the SQLite one has its own test. */
function memoryJournal(): BroadcastJournal & { rows: Map<string, UnfinishedBroadcast> } {
  const rows = new Map<string, UnfinishedBroadcast>();
  return {
    rows,
    open(id, request, now) {
      const seen = rows.get(id);
      rows.set(id, seen === undefined ? { id, request, acceptedAt: now, resumes: 0 } : { ...seen, resumes: seen.resumes + 1 });
    },
    end: (id) => void rows.delete(id),
    unfinished: () => [...rows.values()].sort((a, b) => a.acceptedAt - b.acceptedAt),
    close: () => undefined,
  };
}

function request(id: string, more: Partial<PlayRequest> = {}): PlayRequest {
  return {
    id,
    priority: 'emergency',
    level: 1,
    status: 'actual',
    zones: ['square'],
    content: { kind: 'tts', text: id },
    chime: false,
    repeat: 1,
    expiresAt: t0 + 600_000,
    origin: 'county',
    ...more,
  };
}

function rig(journal: BroadcastJournal, now = t0) {
  const submitted: PlayRequest[] = [];
  const reported: PlaybackEvent[] = [];
  const failures: unknown[] = [];
  const durable = new DurableBroadcasts({
    openJournal: () => journal,
    submit: (r) => submitted.push(r),
    report: (e) => reported.push(e),
    onStorageFailure: (e) => failures.push(e),
    logger: memoryLogger().logger,
    now: () => now,
  });
  // Opens the journal and resumes what it holds, as at the service's start.
  durable.start();
  durable.resume();
  return { durable, submitted, reported, failures };
}

const ended = (requestId: string, event: PlaybackEvent['event']): PlaybackEvent => ({
  event,
  requestId,
  priority: 'emergency',
  status: 'actual',
  zones: [],
  faultyZones: [],
  at: t0,
});

describe('DurableBroadcasts', () => {
  it('keeps a request from submit to its last event, not past it', () => {
    const journal = memoryJournal();
    const { durable, submitted } = rig(journal);
    durable.submit(request('e1'));
    expect(submitted.map((r) => r.id)).toEqual(['e1']);
    expect([...journal.rows.keys()]).toEqual(['e1']);
    durable.observe(ended('e1', 'started'));
    expect([...journal.rows.keys()]).toEqual(['e1']);
    durable.observe(ended('e1', 'finished'));
    expect([...journal.rows.keys()]).toEqual([]);
  });

  it('on start, resumes unexpired emergencies and reports the rest failed, interrupted', () => {
    const journal = memoryJournal();
    const before = rig(journal);
    before.durable.submit(request('e-live'));
    before.durable.submit(request('e-old', { expiresAt: t0 + 1000 }));
    before.durable.submit(request('a1', { priority: 'announcement', level: undefined }));
    before.durable.submit(request('e-test', { status: 'test' }));
    const after = rig(journal, t0 + 5000);
    expect(after.submitted).toEqual([{ ...request('e-live'), resumedFrom: t0 }]);
    expect(after.reported.map((e) => [e.requestId, e.event, e.reason])).toEqual([
      ['e-old', 'failed', `interrupted: the village restarted before it ended, and it expired at ${new Date(t0 + 1000).toISOString()}`],
      ['a1', 'failed', 'interrupted: the village restarted before it ended; only emergencies are played again'],
      ['e-test', 'failed', 'interrupted: the village restarted before it ended; a test is not played again'],
    ]);
    expect([...journal.rows.keys()]).toEqual(['e-live']);
  });

  it('stops taking up an item that keeps coming back (a crash loop) after three resumes', () => {
    const journal = memoryJournal();
    rig(journal).durable.submit(request('e1'));
    for (let life = 1; life <= 3; life++) {
      const { submitted } = rig(journal, t0 + life);
      expect(submitted).toHaveLength(1);
    }
    const last = rig(journal, t0 + 4);
    expect(last.submitted).toEqual([]);
    expect(last.reported[0]?.reason).toBe('interrupted: the village restarted before it ended, 4 times; it is not played again');
  });

  it('drops an unreadable row, and plays on when the journal fails', () => {
    const journal = memoryJournal();
    journal.open('torn', {} as JsonObject, t0);
    const { submitted, reported } = rig(journal);
    expect(submitted).toEqual([]);
    expect(reported).toEqual([]);
    expect(journal.rows.size).toBe(0);

    const broken: BroadcastJournal = {
      ...journal,
      open: () => {
        throw new Error('SQLITE_FULL: database or disk is full');
      },
    };
    const failing = rig(broken);
    failing.durable.submit(request('e2'));
    expect(failing.submitted.map((r) => r.id)).toEqual(['e2']);
    expect(failing.failures).toEqual([new Error('SQLITE_FULL: database or disk is full')]);
  });

  it('plays unkept when the journal cannot be opened, and says so once', () => {
    const submitted: PlayRequest[] = [];
    const failures: unknown[] = [];
    const durable = new DurableBroadcasts({
      openJournal: () => {
        throw new Error('broadcast journal database /var/lib/village-edge/broadcasts.sqlite: file is not a database');
      },
      submit: (r) => submitted.push(r),
      report: () => undefined,
      onStorageFailure: (e) => failures.push(e),
      logger: memoryLogger().logger,
      now: () => t0,
    });
    expect(() => durable.start()).toThrow(/file is not a database/);
    durable.resume();
    durable.submit(request('e3'));
    durable.observe(ended('e3', 'finished'));
    expect(submitted.map((r) => r.id)).toEqual(['e3']);
    expect(failures).toHaveLength(1);
  });
});
