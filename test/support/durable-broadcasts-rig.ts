import { DurableBroadcasts } from '../../src/broadcast/durable-broadcasts.ts';
import type { PlaybackEvent, PlayRequest } from '../../src/broadcast/types.ts';
import type { PlaybackEventKind } from '../../src/contract/vocabulary.ts';
import type { BroadcastJournal, JsonObject, UnfinishedBroadcast } from '../../src/store/types.ts';
import { memoryLogger } from './log-sink.ts';

export const t0 = 1_800_000_000_000;

export type JournalCall = 'open' | 'end' | 'unfinished';

/**
 * The broadcast journal's contract in memory (the SQLite one has its own tests), with what a test needs to
 * see inside it: its rows, how often it was closed, and which calls fail as a card that takes no writes does.
 */
export function memoryJournal(): BroadcastJournal & { rows: Map<string, UnfinishedBroadcast>; closed: number; fail: Set<JournalCall> } {
  const rows = new Map<string, UnfinishedBroadcast>();
  const fail = new Set<JournalCall>();
  const check = (what: JournalCall) => {
    if (fail.has(what)) throw new Error(`SQLITE_IOERR on ${what}`);
  };
  const journal = {
    rows,
    closed: 0,
    fail,
    open(id: string, request: JsonObject, now: number) {
      check('open');
      const seen = rows.get(id);
      rows.set(id, seen === undefined ? { id, request, acceptedAt: now, resumes: 0 } : { ...seen, resumes: seen.resumes + 1 });
    },
    end(id: string) {
      check('end');
      rows.delete(id);
    },
    unfinished() {
      check('unfinished');
      return [...rows.values()].sort((a, b) => a.acceptedAt - b.acceptedAt);
    },
    close() {
      journal.closed++;
    },
  };
  return journal;
}

/**
 * DurableBroadcasts over `journal`, with what it submitted, reported and failed to store recorded. Started,
 * and (unless `resume` is false) resuming what the journal holds, as at the service's start.
 */
export function durableRig(journal: BroadcastJournal, now = t0, resume = true) {
  const submitted: PlayRequest[] = [];
  const reported: PlaybackEvent[] = [];
  const failures: unknown[] = [];
  const { logger, lines } = memoryLogger();
  const durable = new DurableBroadcasts({
    openJournal: () => journal,
    submit: (r) => submitted.push(r),
    report: (e) => reported.push(e),
    onStorageFailure: (e) => failures.push(e),
    logger,
    now: () => now,
  });
  durable.start();
  if (resume) durable.resume();
  const logged = (msg: string) => lines.filter((l) => l.msg === msg);
  return { durable, submitted, reported, failures, logged };
}

/** A playback event of an emergency, as the controller reports it. */
export const playbackEvent = (requestId: string, kind: PlaybackEventKind): PlaybackEvent => ({
  event: kind,
  requestId,
  priority: 'emergency',
  status: 'actual',
  zones: [],
  faultyZones: [],
  at: t0,
});
