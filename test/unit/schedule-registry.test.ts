import { describe, expect, it } from 'vitest';
import { scheduleDocumentSchema, type ScheduleDocumentInput } from '../../src/contract/schedule.ts';
import { ScheduleRegistry, type ScheduleRejection } from '../../src/schedule/schedule-registry.ts';
import type { RunningSchedule } from '../../src/schedule/running-schedule.ts';
import { createMemoryScheduleStore, type MemoryScheduleStore } from '../../src/store/memory-schedule-store.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { spoken } from '../support/scheduler-rig.ts';

const doc = (version: number, extra: Partial<ScheduleDocumentInput> = {}) =>
  scheduleDocumentSchema.parse({ version, programmes: [spoken(`p${version}`, '0 0 8 * * *', { zones: ['z1'] })], ...extra });

function registry(options: { store?: MemoryScheduleStore; local?: ReturnType<typeof doc>; failSave?: boolean } = {}) {
  const store = options.store ?? createMemoryScheduleStore();
  const seen = {
    running: [] as (RunningSchedule | undefined)[],
    applied: [] as { version: number; previous: number | undefined }[],
    rejected: [] as ScheduleRejection[],
    storage: [] as unknown[],
  };
  const failing = options.failSave
    ? {
        load: store.load.bind(store),
        close: () => store.close(),
        save: () => {
          throw new Error('SQLITE_FULL: database or disk is full');
        },
      }
    : store;
  const r = new ScheduleRegistry({
    store: failing,
    local: options.local,
    zoneIds: ['z1', 'z2'],
    mediaExtensions: ['.mp3', '.wav'],
    onRunning: (s) => seen.running.push(s),
    onApplied: (a) => seen.applied.push({ version: a.version, previous: a.previous }),
    onRejected: (rejection) => seen.rejected.push(rejection),
    onStorageFailure: (error) => seen.storage.push(error),
    logger: memoryLogger().logger,
    now: () => 1_800_000_000_000,
  });
  return { r, store, seen };
}

describe('schedule registry', () => {
  it('applies a higher version atomically, keeps it durably, and reports it', () => {
    const { r, store, seen } = registry();
    r.start();
    expect(r.running).toBeUndefined();
    r.offer('village', doc(3), 'county-1');
    r.offer('village', doc(4), 'county-2');
    expect(r.running?.version).toBe(4);
    expect(seen.applied).toEqual([
      { version: 3, previous: undefined },
      { version: 4, previous: 3 },
    ]);
    expect(store.load('village')?.document.version).toBe(4);
  });

  it('takes the same version again (a retained copy on reconnect) as nothing: not applied, not rejected, not reported', () => {
    const { r, seen } = registry();
    r.start();
    r.offer('all', doc(2), 'county-1');
    r.offer('all', doc(2), 'county-1');
    expect(seen.applied).toHaveLength(1);
    expect(seen.running.map((s) => s?.version)).toEqual([2]);
    expect(seen.rejected).toEqual([]);
  });

  it('refuses an older version, an unknown zone and an unknown media type whole, and keeps the running schedule', () => {
    const { r, seen } = registry();
    r.start();
    r.offer('village', doc(5), 'county-5');
    r.offer('village', doc(4), 'county-4');
    r.offer(
      'village',
      doc(6, { programmes: [spoken('a', '0 0 9 * * *', { zones: ['z1'] }), spoken('b', '0 0 9 * * *', { zones: ['z1', 'z9'] })] }),
      'county-6',
    );
    r.offer(
      'village',
      doc(7, {
        programmes: [spoken('c', '0 0 9 * * *', { content: { kind: 'media', sha256: 'a'.repeat(64), url: 'https://c.example/x.ogg', size: 1 } })],
      }),
      'county-7',
    );
    expect(r.running?.version).toBe(5);
    expect(seen.rejected).toEqual([
      { jti: 'county-4', source: 'village', reason: 'older-version', detail: 'version: 4 is older than the kept version 5' },
      { jti: 'county-6', source: 'village', reason: 'unknown-zone', detail: `programmes[1].zones: "z9" not among this village's zones (z1, z2)` },
      {
        jti: 'county-7',
        source: 'village',
        reason: 'unknown-media-type',
        detail: 'programmes[0].content.url: ".ogg" files have no player here (.mp3, .wav)',
      },
    ]);
  });

  it("runs the village's own schedule over the one for all villages, and either over the local config", () => {
    const local = doc(100);
    const { r, seen } = registry({ local });
    r.start();
    expect(r.running).toMatchObject({ source: 'local', version: 100 });
    r.offer('all', doc(1), 'county-all-1');
    expect(r.running).toMatchObject({ source: 'all', version: 1 });
    r.offer('village', doc(1), 'county-v-1');
    expect(r.running).toMatchObject({ source: 'village', version: 1 });
    // A newer document for all villages is kept (and reported) but does not displace the village's own.
    r.offer('all', doc(9), 'county-all-9');
    expect(r.running).toMatchObject({ source: 'village', version: 1 });
    expect(seen.applied.map((a) => a.version)).toEqual([1, 1, 9]);
  });

  it('after a restart without network runs the last good schedule kept in the store, without reporting it again', () => {
    const store = createMemoryScheduleStore();
    const first = registry({ store });
    first.r.start();
    first.r.offer('village', doc(8), 'county-8');
    const second = registry({ store });
    second.r.start();
    expect(second.r.running).toMatchObject({ source: 'village', version: 8 });
    expect(second.seen.applied).toEqual([]);
    // And an older retained copy arriving after the restart is still refused.
    second.r.offer('village', doc(7), 'county-7');
    expect(second.seen.rejected.map((x) => x.reason)).toEqual(['older-version']);
  });

  it('runs a document the store could not keep, and says the store failed', () => {
    const { r, seen } = registry({ failSave: true });
    r.start();
    r.offer('village', doc(2), 'county-2');
    expect(r.running?.version).toBe(2);
    expect(String(seen.storage[0])).toMatch(/SQLITE_FULL/);
  });
});
