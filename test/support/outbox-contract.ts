import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JsonObject, Outbox, OutboxStream } from '../../src/store/types.ts';

export type ContractOutbox = Outbox;

/**
 * The behaviour every `Outbox` promises, run against the in-memory fake and against SQLite, so domain tests
 * written against the fake stay true in production (MQTT.js test/node/abstract_store.ts).
 */
export function describeOutboxContract(name: string, makeOutbox: () => ContractOutbox): void {
  describe(`Outbox contract: ${name}`, () => {
    let outbox: ContractOutbox;
    const t0 = 1_700_000_000_000;

    const add = (stream: OutboxStream, id: string, now = t0, subject = 'terminal-1', extra: JsonObject = {}) =>
      outbox.append({ stream, id, subject, now, build: (seq) => ({ id, seq, ...extra }) });

    beforeEach(() => {
      outbox = makeOutbox();
    });

    afterEach(() => {
      outbox.close();
    });

    describe('append', () => {
      it('assigns seq 1, 2, 3 per stream, independently of the other streams', () => {
        const seqs = [add('alarm', 'a1'), add('fault', 'f1'), add('alarm', 'a2'), add('report', 'r1'), add('fault', 'f2'), add('alarm', 'a3')].map(
          (r) => `${r.id}:${r.seq}`,
        );
        expect(seqs).toEqual(['a1:1', 'f1:1', 'a2:2', 'r1:1', 'f2:2', 'a3:3']);
      });

      it('returns the stored record, built with its seq, due at once', () => {
        const record = outbox.append({ stream: 'alarm', id: 'a1', subject: 'T7', now: t0, build: (seq) => ({ seq, presses: 1 }) });
        expect(record).toEqual({
          id: 'a1',
          stream: 'alarm',
          seq: 1,
          subject: 'T7',
          payload: { seq: 1, presses: 1 },
          attempts: 0,
          createdAt: t0,
          nextAttemptAt: t0,
          ackedAt: null,
        });
        expect(outbox.get('a1')).toEqual(record);
      });

      it('stores the payload as JSON: what comes back is what the county will receive', () => {
        const record = outbox.append({
          stream: 'report',
          id: 'r1',
          subject: 's',
          now: t0,
          build: () => ({ at: new Date(t0), missing: undefined, nested: { list: [1, 'two', null] } }),
        });
        const expected = { at: new Date(t0).toISOString(), nested: { list: [1, 'two', null] } };
        expect(record.payload).toEqual(expected);
        expect(outbox.get('r1')?.payload).toEqual(expected);
      });

      it('rejects a duplicate id without building, storing or consuming a seq', () => {
        add('alarm', 'a1');
        let built = false;
        expect(() =>
          outbox.append({
            stream: 'fault',
            id: 'a1',
            subject: 'x',
            now: t0,
            build: () => {
              built = true;
              return {};
            },
          }),
        ).toThrow(/a1/);
        expect(built).toBe(false);
        expect(outbox.get('a1')?.stream).toBe('alarm');
        expect(add('alarm', 'a2').seq).toBe(2);
        expect(add('fault', 'f1').seq).toBe(1);
      });

      it('leaves nothing behind and consumes no seq when build throws', () => {
        expect(() =>
          outbox.append({
            stream: 'alarm',
            id: 'bad',
            subject: 's',
            now: t0,
            build: () => {
              throw new Error('boom');
            },
          }),
        ).toThrow('boom');
        expect(outbox.get('bad')).toBeUndefined();
        expect(add('alarm', 'a1').seq).toBe(1);
      });

      it('never reuses a seq once the newest record is acked', () => {
        add('alarm', 'a1');
        add('alarm', 'a2');
        outbox.ackMany(['a1', 'a2'], t0);
        expect(add('alarm', 'a3').seq).toBe(3);
      });
    });

    describe('prepare and commit', () => {
      it('prepare takes a seq and builds the payload, storing nothing; commit stores the record as given', () => {
        const prepared = outbox.prepare({ stream: 'alarm', id: 'a1', subject: 'T1', now: t0, build: (seq) => ({ seq, at: new Date(t0) }) });
        expect(prepared).toMatchObject({ id: 'a1', seq: 1, attempts: 0, payload: { seq: 1, at: new Date(t0).toISOString() } });
        expect(outbox.get('a1')).toBeUndefined();
        expect(outbox.stats().depth).toBe(0);
        // Published before the commit: the attempt is stored with it, in the same write.
        const stored = outbox.commit({ ...prepared, attempts: 1, nextAttemptAt: t0 + 5000 });
        expect(stored).toEqual({ ...prepared, attempts: 1, nextAttemptAt: t0 + 5000 });
        expect(outbox.get('a1')).toEqual(stored);
        expect(outbox.due('alarm', t0 + 4999, 10)).toEqual([]);
      });

      it('never hands out a prepared seq again, even when that record is never committed', () => {
        outbox.prepare({ stream: 'alarm', id: 'lost', subject: 's', now: t0, build: () => ({}) });
        const next = add('alarm', 'a2');
        expect(next.seq).toBe(2);
        expect(() => outbox.commit(next)).toThrow(/a2/);
      });
    });

    describe('get', () => {
      it('returns undefined for an unknown id, and copies that do not alias the store', () => {
        expect(outbox.get('nope')).toBeUndefined();
        add('alarm', 'a1', t0, 's', { list: [1] });
        const copy = outbox.get('a1');
        (copy!.payload['list'] as number[]).push(2);
        expect(outbox.get('a1')?.payload['list']).toEqual([1]);
      });
    });

    describe('due', () => {
      it('returns unacked records of one stream whose time has come, oldest seq first, up to the limit', () => {
        for (let i = 1; i <= 5; i++) add('alarm', `a${i}`);
        add('fault', 'f1');
        outbox.recordAttempts([{ id: 'a2', attempts: 1, nextAttemptAt: t0 + 1000 }]);
        outbox.ackMany(['a3'], t0);
        expect(outbox.due('alarm', t0, 10).map((r) => r.id)).toEqual(['a1', 'a4', 'a5']);
        expect(outbox.due('alarm', t0, 2).map((r) => r.id)).toEqual(['a1', 'a4']);
        expect(outbox.due('alarm', t0 + 999, 10).map((r) => r.id)).toEqual(['a1', 'a4', 'a5']);
        expect(outbox.due('alarm', t0 + 1000, 10).map((r) => r.id)).toEqual(['a1', 'a2', 'a4', 'a5']);
        expect(outbox.due('fault', t0, 10).map((r) => r.id)).toEqual(['f1']);
        expect(outbox.due('report', t0, 10)).toEqual([]);
      });

      it('orders by seq, not by when a record became due', () => {
        add('alarm', 'a1');
        add('alarm', 'a2', t0 + 5);
        outbox.recordAttempts([{ id: 'a1', attempts: 1, nextAttemptAt: t0 + 10 }]);
        expect(outbox.due('alarm', t0 + 10, 10).map((r) => r.id)).toEqual(['a1', 'a2']);
      });

      it('refuses a limit that is not a positive integer', () => {
        add('alarm', 'a1');
        for (const limit of [0, -1, 1.5, Number.NaN]) expect(() => outbox.due('alarm', t0, limit)).toThrow(RangeError);
      });
    });

    describe('recordAttempt', () => {
      it('stores the attempt count and the next attempt time', () => {
        add('alarm', 'a1');
        outbox.recordAttempts([{ id: 'a1', attempts: 3, nextAttemptAt: t0 + 30_000 }]);
        expect(outbox.get('a1')).toMatchObject({ attempts: 3, nextAttemptAt: t0 + 30_000, ackedAt: null });
      });

      it('leaves an acked record alone (the ack may overtake the publish bookkeeping)', () => {
        add('alarm', 'a1');
        outbox.ackMany(['a1'], t0 + 1);
        outbox.recordAttempts([{ id: 'a1', attempts: 1, nextAttemptAt: t0 + 30_000 }]);
        expect(outbox.get('a1')).toMatchObject({ attempts: 0, nextAttemptAt: t0, ackedAt: t0 + 1 });
      });

      it('throws for an unknown id', () => {
        expect(() => outbox.recordAttempts([{ id: 'nope', attempts: 1, nextAttemptAt: t0 }])).toThrow(/nope/);
      });

      it('records a batch at once, or none of it when an id is unknown', () => {
        add('alarm', 'a1');
        add('alarm', 'a2');
        outbox.recordAttempts([
          { id: 'a1', attempts: 1, nextAttemptAt: t0 + 1 },
          { id: 'a2', attempts: 2, nextAttemptAt: t0 + 2 },
        ]);
        expect([outbox.get('a1')?.attempts, outbox.get('a2')?.attempts]).toEqual([1, 2]);
        expect(() =>
          outbox.recordAttempts([
            { id: 'a1', attempts: 9, nextAttemptAt: t0 },
            { id: 'nope', attempts: 9, nextAttemptAt: t0 },
          ]),
        ).toThrow(/nope/);
        expect(outbox.get('a1')?.attempts).toBe(1);
      });
    });

    describe('rescheduleAll', () => {
      it('makes every unacked record of every stream due now, and leaves acked ones alone', () => {
        add('alarm', 'a1');
        add('fault', 'f1');
        add('report', 'r1');
        add('report', 'r2');
        outbox.recordAttempts([{ id: 'a1', attempts: 2, nextAttemptAt: t0 + 60_000 }]);
        outbox.recordAttempts([{ id: 'f1', attempts: 1, nextAttemptAt: t0 + 90_000 }]);
        outbox.ackMany(['r2'], t0);
        outbox.rescheduleAll(t0 + 5);
        expect(outbox.get('a1')).toMatchObject({ attempts: 2, nextAttemptAt: t0 + 5 });
        expect(outbox.get('f1')?.nextAttemptAt).toBe(t0 + 5);
        expect(outbox.get('r1')?.nextAttemptAt).toBe(t0);
        expect(outbox.get('r2')?.nextAttemptAt).toBe(t0);
        expect(outbox.due('alarm', t0 + 5, 10).map((r) => r.id)).toEqual(['a1']);
        expect(outbox.due('fault', t0 + 5, 10).map((r) => r.id)).toEqual(['f1']);
      });
    });

    describe('ack', () => {
      it('returns the record marked acked once, then undefined', () => {
        add('alarm', 'a1');
        expect(outbox.ackMany(['a1'], t0 + 7)[0]).toMatchObject({ id: 'a1', seq: 1, ackedAt: t0 + 7, payload: { id: 'a1', seq: 1 } });
        expect(outbox.ackMany(['a1'], t0 + 8)[0]).toBeUndefined();
        expect(outbox.get('a1')?.ackedAt).toBe(t0 + 7);
        expect(outbox.ackMany(['nope'], t0)[0]).toBeUndefined();
      });

      it('acks a batch, returning only the records it acked, in the order given', () => {
        for (const id of ['a1', 'a2', 'a3']) add('alarm', id);
        outbox.ackMany(['a2'], t0);
        expect(outbox.ackMany(['a3', 'nope', 'a2', 'a1'], t0 + 1).map((r) => `${r.id}@${r.ackedAt}`)).toEqual([`a3@${t0 + 1}`, `a1@${t0 + 1}`]);
        expect(outbox.ackMany(['a1'], t0 + 2)).toEqual([]);
      });
    });

    describe('latestUnacked', () => {
      it('finds the newest unacked record of a stream about a subject', () => {
        add('alarm', 'a1', t0, 'T1');
        add('alarm', 'a2', t0, 'T1');
        add('alarm', 'a3', t0, 'T2');
        add('fault', 'f1', t0, 'T1');
        expect(outbox.latestUnacked('alarm', 'T1')?.id).toBe('a2');
        outbox.ackMany(['a2'], t0);
        expect(outbox.latestUnacked('alarm', 'T1')?.id).toBe('a1');
        outbox.ackMany(['a1'], t0);
        expect(outbox.latestUnacked('alarm', 'T1')).toBeUndefined();
        expect(outbox.latestUnacked('fault', 'T1')?.id).toBe('f1');
        expect(outbox.latestUnacked('report', 'T1')).toBeUndefined();
      });
    });

    describe('recent', () => {
      it('lists the newest records of one stream, acked or not, newest first, up to the limit', () => {
        for (let i = 1; i <= 5; i++) add('alarm', `a${i}`, t0 + i);
        add('fault', 'f1');
        outbox.ackMany(['a4'], t0 + 10);
        outbox.updatePayload('a5', { id: 'a5', seq: 5, presses: 3 });
        const recent = outbox.recent('alarm', 3);
        expect(recent.map((r) => r.id)).toEqual(['a5', 'a4', 'a3']);
        expect(recent[0]?.payload).toEqual({ id: 'a5', seq: 5, presses: 3 });
        expect(recent[1]?.ackedAt).toBe(t0 + 10);
        expect(outbox.recent('alarm', 10)).toHaveLength(5);
        expect(outbox.recent('fault', 10).map((r) => r.id)).toEqual(['f1']);
        expect(outbox.recent('report', 10)).toEqual([]);
      });

      it('refuses a limit that is not a positive integer', () => {
        add('alarm', 'a1');
        for (const limit of [0, -1, 1.5, Number.NaN]) expect(() => outbox.recent('alarm', limit)).toThrow(RangeError);
      });
    });

    describe('updatePayload', () => {
      it('replaces the payload of an unacked record and nothing else', () => {
        add('alarm', 'a1', t0, 'T1', { presses: 1 });
        outbox.recordAttempts([{ id: 'a1', attempts: 1, nextAttemptAt: t0 + 100 }]);
        outbox.updatePayload('a1', { id: 'a1', seq: 1, presses: 2 });
        expect(outbox.get('a1')).toMatchObject({ seq: 1, attempts: 1, nextAttemptAt: t0 + 100, payload: { id: 'a1', seq: 1, presses: 2 } });
      });

      it('throws for an acked or unknown record instead of losing the change silently', () => {
        add('alarm', 'a1');
        outbox.ackMany(['a1'], t0);
        expect(() => outbox.updatePayload('a1', { presses: 2 })).toThrow(/a1.*acked/);
        expect(() => outbox.updatePayload('nope', { presses: 2 })).toThrow(/nope.*unknown/);
        expect(outbox.get('a1')?.payload).toEqual({ id: 'a1', seq: 1 });
      });
    });

    describe('stats', () => {
      it('is empty for an empty outbox', () => {
        expect(outbox.stats()).toEqual({ depth: 0, oldestUnackedAt: null, byStream: { alarm: 0, fault: 0, report: 0 } });
      });

      it('counts unacked records per stream and finds the oldest by creation time', () => {
        add('alarm', 'a1', t0 + 50);
        add('alarm', 'a2', t0 + 60);
        add('fault', 'f1', t0 + 20);
        add('report', 'r1', t0 + 10);
        add('report', 'r2', t0 + 70);
        outbox.ackMany(['r1'], t0 + 100);
        expect(outbox.stats()).toEqual({ depth: 4, oldestUnackedAt: t0 + 20, byStream: { alarm: 2, fault: 1, report: 1 } });
      });
    });

    describe('close', () => {
      it('may be called twice, and nothing works afterwards', () => {
        add('alarm', 'a1');
        outbox.close();
        outbox.close();
        expect(() => outbox.get('a1')).toThrow();
        expect(() => add('alarm', 'a2')).toThrow();
        expect(() => outbox.due('alarm', t0, 1)).toThrow();
      });
    });
  });
}
