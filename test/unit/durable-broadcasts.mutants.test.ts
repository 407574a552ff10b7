import { describe, expect, it } from 'vitest';
import { DurableBroadcasts } from '../../src/broadcast/durable-broadcasts.ts';
import type { PlayRequest } from '../../src/broadcast/types.ts';
import type { PlaybackEventKind } from '../../src/contract/vocabulary.ts';
import type { JsonObject } from '../../src/store/types.ts';
import { durableRig, memoryJournal, playbackEvent, t0 } from '../support/durable-broadcasts-rig.ts';
import { memoryLogger } from '../support/log-sink.ts';

// What the journal keeps and what a restart makes of it, beside durable-broadcasts.test.ts: every ending,
// every kind of kept request, and the log lines and failures when the journal itself fails.
// What the journal keeps and what a restart makes of it, beside durable-broadcasts.test.ts: every ending,
// every kind of kept request, and the log lines and failures when the journal itself fails.
function request(id: string, more: Partial<PlayRequest> = {}): PlayRequest {
  return {
    id,
    priority: 'emergency',
    status: 'actual',
    zones: ['square'],
    content: { kind: 'tts', text: id },
    chime: false,
    repeat: 1,
    origin: 'county',
    ...more,
  };
}

describe('DurableBroadcasts keeping', () => {
  it('forgets an item at each of its possible endings, and at nothing before', () => {
    const journal = memoryJournal();
    const { durable } = durableRig(journal);
    const endings: PlaybackEventKind[] = ['rejected', 'preempted', 'stopped', 'finished', 'failed', 'tested'];
    for (const kind of endings) durable.submit(request(kind));
    for (const kind of ['accepted', 'queued', 'started'] as const) for (const id of endings) durable.observe(playbackEvent(id, kind));
    expect(journal.rows.size).toBe(6);
    for (const kind of endings) durable.observe(playbackEvent(kind, kind));
    expect([...journal.rows.keys()]).toEqual([]);
  });

  it('closes the journal on stop, and keeps nothing after', () => {
    const journal = memoryJournal();
    const { durable, submitted } = durableRig(journal);
    durable.stop();
    expect(journal.closed).toBe(1);
    durable.submit(request('late'));
    expect(submitted.map((r) => r.id)).toEqual(['late']);
    expect(journal.rows.size).toBe(0);
    durable.stop();
    expect(journal.closed).toBe(1);
  });

  it('stops without having started', () => {
    const durable = new DurableBroadcasts({
      openJournal: () => memoryJournal(),
      submit: () => undefined,
      report: () => undefined,
      onStorageFailure: () => undefined,
      logger: memoryLogger().logger,
      now: () => t0,
    });
    expect(() => durable.stop()).not.toThrow();
  });

  it('logs a journal write that failed, with the request and which write, and plays on', () => {
    const journal = memoryJournal();
    const { durable, submitted, failures, logged } = durableRig(journal);
    journal.fail.add('open');
    durable.submit(request('e1'));
    journal.fail.delete('open');
    durable.submit(request('e2'));
    journal.fail.add('end');
    durable.observe(playbackEvent('e2', 'finished'));
    expect(submitted.map((r) => r.id)).toEqual(['e1', 'e2']);
    expect(failures).toHaveLength(2);
    expect(logged('broadcast journal write failed; the broadcast goes on')).toEqual([
      expect.objectContaining({ requestId: 'e1', write: 'open', err: expect.objectContaining({ message: 'SQLITE_IOERR on open' }) }),
      expect.objectContaining({ requestId: 'e2', write: 'end', err: expect.objectContaining({ message: 'SQLITE_IOERR on end' }) }),
    ]);
  });
});

describe('DurableBroadcasts after a restart', () => {
  it('plays an emergency again exactly as kept, with nothing added but where it came from, and logs it', () => {
    const journal = memoryJournal();
    const kept = request('e1', { repeat: 3, zones: ['square', 'school'] });
    durableRig(journal).durable.submit(kept);
    const after = durableRig(journal, t0 + 5000);
    expect(after.submitted).toHaveLength(1);
    expect(after.submitted[0]).toStrictEqual({ ...kept, resumedFrom: t0 });
    expect(after.logged('emergency cut off by a restart; playing it again')).toEqual([
      expect.objectContaining({ requestId: 'e1', acceptedAt: t0, resumes: 1 }),
    ]);
  });

  it('reports as interrupted, not as unreadable, what the schedule or local autonomy had asked for', () => {
    const journal = memoryJournal();
    const before = durableRig(journal);
    before.durable.submit(request('s1', { priority: 'scheduled', origin: 'schedule', expiresAt: t0 + 60_000 }));
    before.durable.submit(request('l1', { priority: 'local-alarm', origin: 'local' }));
    const after = durableRig(journal, t0 + 5000);
    expect(after.logged('unreadable broadcast in the journal; dropped')).toEqual([]);
    expect(after.reported.map((e) => [e.requestId, e.event])).toEqual([
      ['s1', 'failed'],
      ['l1', 'failed'],
    ]);
    expect(after.logged('broadcast cut off by a restart; reported failed')).toEqual([
      expect.objectContaining({ requestId: 's1', reason: 'the village restarted before it ended; only emergencies are played again' }),
      expect.objectContaining({ requestId: 'l1' }),
    ]);
  });

  it('reports what it does not play again as the request was: its level when it had one, no faulty zones', () => {
    const journal = memoryJournal();
    const before = durableRig(journal);
    before.durable.submit(request('e-old', { level: 1, expiresAt: t0 + 1000 }));
    before.durable.submit(request('a1', { priority: 'announcement', zones: ['school'] }));
    const after = durableRig(journal, t0 + 5000);
    const [expired, announcement] = after.reported;
    expect(expired).toMatchObject({
      requestId: 'e-old',
      level: 1,
      faultyZones: [],
      zones: ['square'],
      status: 'actual',
      priority: 'emergency',
      at: t0 + 5000,
    });
    expect(announcement).toStrictEqual({
      event: 'failed',
      requestId: 'a1',
      priority: 'announcement',
      status: 'actual',
      zones: ['school'],
      faultyZones: [],
      reason: 'interrupted: the village restarted before it ended; only emergencies are played again',
      at: t0 + 5000,
    });
  });

  it('does not play again an emergency that expires at the very moment of the restart', () => {
    const journal = memoryJournal();
    durableRig(journal).durable.submit(request('e1', { expiresAt: t0 + 5000 }));
    const after = durableRig(journal, t0 + 5000);
    expect(after.submitted).toEqual([]);
    expect(after.reported.map((e) => e.requestId)).toEqual(['e1']);
  });

  it('names the bad fields of an unreadable row by their path, and drops it', () => {
    const journal = memoryJournal();
    journal.open('torn', { ...request('torn'), content: { kind: 'video' } } as unknown as JsonObject, t0);
    const after = durableRig(journal);
    const [line] = after.logged('unreadable broadcast in the journal; dropped');
    expect(line).toMatchObject({ requestId: 'torn' });
    expect(line?.['issues']).toEqual([expect.stringMatching(/^content(\.kind)?: /)]);
    expect(journal.rows.size).toBe(0);
  });

  it('logs and reports a journal it cannot read, and resumes nothing', () => {
    const journal = memoryJournal();
    durableRig(journal).durable.submit(request('e1'));
    journal.fail.add('unfinished');
    const after = durableRig(journal, t0 + 5000);
    expect(after.submitted).toEqual([]);
    expect(after.failures).toEqual([new Error('SQLITE_IOERR on unfinished')]);
    expect(after.logged('broadcast journal unreadable; interrupted broadcasts cannot be resumed')).toEqual([
      expect.objectContaining({ err: expect.objectContaining({ message: 'SQLITE_IOERR on unfinished' }) }),
    ]);
  });

  it('logs a failed end of a row it dropped or reported, with which write', () => {
    const journal = memoryJournal();
    durableRig(journal).durable.submit(request('a1', { priority: 'announcement' }));
    journal.open('torn', {} as JsonObject, t0 - 1);
    journal.fail.add('end');
    const after = durableRig(journal, t0 + 5000);
    expect(after.logged('broadcast journal write failed; the broadcast goes on').map((l) => [l['requestId'], l['write']])).toEqual([
      ['torn', 'end'],
      ['a1', 'end'],
    ]);
  });
});
