import { afterEach, describe, expect, it } from 'vitest';
import { scheduleDocumentSchema, type ScheduleDocument, type ScheduleDocumentInput } from '../../src/contract/schedule.ts';
import type { FiringRecord, ProgrammeLog, ScheduleStore } from '../../src/schedule/types.ts';

export type ScheduleStoreUnderTest = ScheduleStore & ProgrammeLog & { close(): void };

const t0 = Date.UTC(2026, 11, 1, 0, 0); // 2026-12-01 08:00 in Asia/Shanghai
const minute = 60_000;

/** A valid document: defaults applied, as the scheduler holds it after verifying it. */
export function scheduleDocument(version: number, extra: Partial<ScheduleDocumentInput> = {}): ScheduleDocument {
  return scheduleDocumentSchema.parse({
    version,
    programmes: [
      { id: 'pufa-morning', title: '普法 morning', cron: '0 8 * * *', zones: 'all', content: { kind: 'tts', text: '今天的普法内容。' } },
      {
        id: 'news-evening',
        cron: '30 18 * * 1-5',
        zones: ['square', 'school'],
        content: { kind: 'media', sha256: 'a'.repeat(64), url: 'https://county.example/fa/2026-12.mp3', size: 1_234_567 },
        volume: 70,
        validFrom: '2026-12-01',
        dates: { except: ['2026-12-25'] },
      },
    ],
    ...extra,
  });
}

export function firing(programme: string, scheduledAt: number, extra: Partial<FiringRecord> = {}): FiringRecord {
  return { programme, scheduledAt, version: 3, outcome: 'playing', at: scheduledAt + 5, ...extra };
}

/** What every schedule store and programme log must do, run against the in-memory one and the SQLite one. */
export function describeScheduleStoreContract(name: string, open: (options?: { maxFirings?: number }) => ScheduleStoreUnderTest): void {
  describe(`ScheduleStore and ProgrammeLog contract: ${name}`, () => {
    const opened: ScheduleStoreUnderTest[] = [];
    const fresh = (options?: { maxFirings?: number }): ScheduleStoreUnderTest => {
      const store = open(options);
      opened.push(store);
      return store;
    };
    afterEach(() => {
      for (const store of opened.splice(0)) store.close();
    });

    describe('schedules', () => {
      it('keeps one schedule per county source, each replaced whole by the next save', () => {
        const store = fresh();
        expect(store.load('village')).toBeUndefined();
        expect(store.load('all')).toBeUndefined();
        store.save({ source: 'all', document: scheduleDocument(4), appliedAt: t0 });
        store.save({ source: 'village', document: scheduleDocument(7, { timezone: 'Europe/Berlin' }), appliedAt: t0 + 1 });
        store.save({ source: 'village', document: scheduleDocument(8, { programmes: [] }), appliedAt: t0 + 2 });
        expect(store.load('all')).toStrictEqual({ source: 'all', document: scheduleDocument(4), appliedAt: t0 });
        expect(store.load('village')).toStrictEqual({ source: 'village', document: scheduleDocument(8, { programmes: [] }), appliedAt: t0 + 2 });
      });

      it('hands out copies: changing a loaded or saved document changes nothing stored', () => {
        const store = fresh();
        const document = scheduleDocument(5);
        store.save({ source: 'village', document, appliedAt: t0 });
        document.programmes[0]!.id = 'changed-after-save';
        const loaded = store.load('village')!;
        loaded.document.programmes.pop();
        expect(store.load('village')!.document).toStrictEqual(scheduleDocument(5));
      });

      it('refuses to save a document that would not read back, or an unknown source, naming the field', () => {
        const store = fresh();
        const bad = { ...scheduleDocument(6), timezone: 'Mars/Olympus_Mons' };
        expect(() => store.save({ source: 'village', document: bad, appliedAt: t0 })).toThrow(/document\.timezone: /);
        // @ts-expect-error: a source the port does not know, as a caller's bug would pass it.
        expect(() => store.save({ source: 'local', document: scheduleDocument(6), appliedAt: t0 })).toThrow(/source must be one of village, all/);
        expect(() => store.save({ source: 'all', document: scheduleDocument(6), appliedAt: Number.NaN })).toThrow(/appliedAt/);
        expect(store.load('village')).toBeUndefined();
        expect(store.load('all')).toBeUndefined();
      });
    });

    describe('completion log', () => {
      it('records a slot of a programme at most once: a second open is refused and writes nothing', () => {
        const log = fresh();
        expect(log.has('pufa-morning', t0)).toBe(false);
        expect(log.open(firing('pufa-morning', t0, { requestId: 'req-1' }))).toBe(true);
        expect(log.open(firing('pufa-morning', t0, { outcome: 'missed', reason: 'again', requestId: 'req-2', version: 9 }))).toBe(false);
        // Another programme at the same slot, and the same programme at the next slot, are firings of their own.
        expect(log.open(firing('news-evening', t0))).toBe(true);
        expect(log.open(firing('pufa-morning', t0 + minute))).toBe(true);
        expect(log.has('pufa-morning', t0)).toBe(true);
        expect(log.has('pufa-morning', t0 + 1)).toBe(false);
        expect(log.between(t0, t0 + 1)).toStrictEqual([
          firing('news-evening', t0),
          { programme: 'pufa-morning', scheduledAt: t0, version: 3, outcome: 'playing', at: t0 + 5, requestId: 'req-1' },
        ]);
      });

      it('settles a firing by its request id only while it is playing', () => {
        const log = fresh();
        log.open(firing('pufa-morning', t0, { requestId: 'req-a', reason: 'started late' }));
        log.open(firing('news-evening', t0, { outcome: 'missed', reason: 'quiet hours', requestId: 'req-b' }));
        log.open(firing('pufa-morning', t0 + minute));
        expect(log.settle('req-a', 'preempted', 'emergency broadcast', t0 + 30_000)).toBe(true);
        expect(log.settle('req-a', 'finished', undefined, t0 + 40_000)).toBe(false);
        expect(log.settle('req-b', 'finished', undefined, t0 + 40_000)).toBe(false);
        expect(log.settle('req-unknown', 'failed', 'x', t0 + 40_000)).toBe(false);
        expect(log.between(t0, t0 + 2 * minute)).toStrictEqual([
          firing('news-evening', t0, { outcome: 'missed', reason: 'quiet hours', requestId: 'req-b' }),
          {
            programme: 'pufa-morning',
            scheduledAt: t0,
            version: 3,
            outcome: 'preempted',
            reason: 'emergency broadcast',
            at: t0 + 30_000,
            requestId: 'req-a',
          },
          firing('pufa-morning', t0 + minute),
        ]);
        // A settle without a reason leaves none: not the reason the firing was opened with.
        log.open(firing('news-evening', t0 + minute, { requestId: 'req-c', reason: 'late' }));
        expect(log.settle('req-c', 'finished', undefined, t0 + 2 * minute)).toBe(true);
        expect(log.between(t0 + minute, t0 + minute + 1)[0]).toStrictEqual({
          programme: 'news-evening',
          scheduledAt: t0 + minute,
          version: 3,
          outcome: 'finished',
          at: t0 + 2 * minute,
          requestId: 'req-c',
        });
      });

      it('lists firings in [from, to) oldest slot first, and those still playing, as copies', () => {
        const log = fresh();
        log.open(firing('b', t0 + 2 * minute, { outcome: 'finished' }));
        log.open(firing('b', t0));
        log.open(firing('a', t0 + minute, { requestId: 'req-1' }));
        log.open(firing('a', t0, { outcome: 'skipped', reason: 'media missing' }));
        expect(log.between(t0, t0 + 2 * minute).map((r) => `${r.programme}@${(r.scheduledAt - t0) / minute}`)).toEqual(['a@0', 'b@0', 'a@1']);
        expect(log.between(t0 + minute, t0 + minute)).toEqual([]);
        expect(log.playing().map((r) => `${r.programme}@${(r.scheduledAt - t0) / minute}`)).toEqual(['b@0', 'a@1']);
        const [first] = log.between(t0, t0 + 1);
        first!.outcome = 'failed';
        log.playing()[0]!.reason = 'changed';
        expect(log.between(t0, t0 + 1)[0]).toStrictEqual(firing('a', t0, { outcome: 'skipped', reason: 'media missing' }));
        expect(log.playing()[0]).toStrictEqual(firing('b', t0));
      });

      it('prunes every firing whose slot is before the given instant, and says how many', () => {
        const log = fresh();
        for (let i = 0; i < 5; i++) log.open(firing('pufa-morning', t0 + i * minute, { outcome: 'finished' }));
        expect(log.prune(t0 + 2 * minute)).toBe(2);
        expect(log.prune(t0 + 2 * minute)).toBe(0);
        expect(log.between(0, Number.MAX_SAFE_INTEGER).map((r) => r.scheduledAt)).toEqual([t0 + 2 * minute, t0 + 3 * minute, t0 + 4 * minute]);
        // A pruned slot is forgotten: it could be recorded again (the scheduler never looks back that far).
        expect(log.has('pufa-morning', t0)).toBe(false);
      });

      it('keeps at most maxFirings rows, dropping the oldest slots first but never the one just opened', () => {
        const log = fresh({ maxFirings: 3 });
        for (const i of [1, 2, 3, 4]) expect(log.open(firing('p', t0 + i * minute))).toBe(true);
        expect(log.between(0, Number.MAX_SAFE_INTEGER).map((r) => (r.scheduledAt - t0) / minute)).toEqual([2, 3, 4]);
        // A late firing of a slot older than all kept: recorded, and the oldest other slot makes room.
        expect(log.open(firing('p', t0))).toBe(true);
        expect(log.has('p', t0)).toBe(true);
        expect(log.between(0, Number.MAX_SAFE_INTEGER).map((r) => (r.scheduledAt - t0) / minute)).toEqual([0, 3, 4]);
        expect(log.open(firing('p', t0))).toBe(false);
        expect(log.prune(t0 + 4 * minute)).toBe(2);
        expect(log.open(firing('q', t0 + 9 * minute))).toBe(true);
        expect(log.open(firing('q', t0 + 10 * minute))).toBe(true);
        expect(log.between(0, Number.MAX_SAFE_INTEGER).map((r) => `${r.programme}@${(r.scheduledAt - t0) / minute}`)).toEqual(['p@4', 'q@9', 'q@10']);
      });

      it('keeps the cursor: undefined until set, then the last value set', () => {
        const log = fresh();
        expect(log.cursor()).toBeUndefined();
        log.setCursor(t0);
        log.setCursor(t0 - minute);
        expect(log.cursor()).toBe(t0 - minute);
      });

      it('keeps the last summarised day: undefined until set, then the last date set; refuses anything but YYYY-MM-DD', () => {
        const log = fresh();
        expect(log.summarizedThrough()).toBeUndefined();
        log.setSummarizedThrough('2026-12-06');
        log.setSummarizedThrough('2026-12-07');
        expect(log.summarizedThrough()).toBe('2026-12-07');
        expect(() => log.setSummarizedThrough('7 Dec')).toThrow(/YYYY-MM-DD/);
        expect(log.summarizedThrough()).toBe('2026-12-07');
      });

      it('refuses records it could not key or read back, writing nothing', () => {
        const log = fresh();
        expect(() => log.open(firing('', t0))).toThrow(/programme/);
        expect(() => log.open(firing('p', t0 + 0.5))).toThrow(/scheduledAt/);
        expect(() => log.open(firing('p', t0, { version: Number.NaN }))).toThrow(/version/);
        // @ts-expect-error: an outcome the port does not know, as a caller's bug would pass it.
        expect(() => log.open(firing('p', t0, { outcome: 'done' }))).toThrow(/outcome must be one of/);
        expect(() => log.open(firing('p', t0, { at: Number.POSITIVE_INFINITY }))).toThrow(/at must be a finite/);
        log.open(firing('p', t0, { requestId: 'req-1' }));
        // @ts-expect-error: settle takes a final outcome only.
        expect(() => log.settle('req-1', 'playing', undefined, t0)).toThrow(/final outcome/);
        expect(() => log.settle('', 'finished', undefined, t0)).toThrow(/requestId/);
        expect(() => log.setCursor(Number.NaN)).toThrow(/cursor/);
        expect(log.between(0, Number.MAX_SAFE_INTEGER)).toStrictEqual([firing('p', t0, { requestId: 'req-1' })]);
      });
    });

    it('throws once closed rather than silently forgetting', () => {
      const store = fresh();
      store.close();
      expect(() => store.open(firing('p', t0))).toThrow();
      expect(() => store.load('village')).toThrow();
      expect(() => store.cursor()).toThrow();
      store.close();
    });
  });
}
