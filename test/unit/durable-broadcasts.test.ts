import { describe, expect, it } from 'vitest';
import { DurableBroadcasts } from '../../src/broadcast/durable-broadcasts.ts';
import type { PlayRequest } from '../../src/broadcast/types.ts';
import type { BroadcastJournal, JsonObject } from '../../src/store/types.ts';
import { durableRig, memoryJournal, playbackEvent, t0 } from '../support/durable-broadcasts-rig.ts';
import { memoryLogger } from '../support/log-sink.ts';

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

describe('DurableBroadcasts', () => {
  it('keeps a request from submit to its last event, not past it', () => {
    const journal = memoryJournal();
    const { durable, submitted } = durableRig(journal);
    durable.submit(request('e1'));
    expect(submitted.map((r) => r.id)).toEqual(['e1']);
    expect([...journal.rows.keys()]).toEqual(['e1']);
    durable.observe(playbackEvent('e1', 'started'));
    expect([...journal.rows.keys()]).toEqual(['e1']);
    durable.observe(playbackEvent('e1', 'finished'));
    expect([...journal.rows.keys()]).toEqual([]);
  });

  it('on start, resumes unexpired emergencies and reports the rest failed, interrupted', () => {
    const journal = memoryJournal();
    const before = durableRig(journal);
    before.durable.submit(request('e-live'));
    before.durable.submit(request('e-old', { expiresAt: t0 + 1000 }));
    before.durable.submit(request('a1', { priority: 'announcement', level: undefined }));
    before.durable.submit(request('e-test', { status: 'test' }));
    const after = durableRig(journal, t0 + 5000);
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
    durableRig(journal).durable.submit(request('e1'));
    for (let life = 1; life <= 3; life++) {
      const { submitted } = durableRig(journal, t0 + life);
      expect(submitted).toHaveLength(1);
    }
    const last = durableRig(journal, t0 + 4);
    expect(last.submitted).toEqual([]);
    expect(last.reported[0]?.reason).toBe('interrupted: the village restarted before it ended, 4 times; it is not played again');
  });

  it('drops an unreadable row, and plays on when the journal fails', () => {
    const journal = memoryJournal();
    journal.open('torn', {} as JsonObject, t0);
    const { submitted, reported } = durableRig(journal);
    expect(submitted).toEqual([]);
    expect(reported).toEqual([]);
    expect(journal.rows.size).toBe(0);

    const broken: BroadcastJournal = {
      ...journal,
      open: () => {
        throw new Error('SQLITE_FULL: database or disk is full');
      },
    };
    const failing = durableRig(broken);
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
    durable.observe(playbackEvent('e3', 'finished'));
    expect(submitted.map((r) => r.id)).toEqual(['e3']);
    expect(failures).toHaveLength(1);
  });
});
