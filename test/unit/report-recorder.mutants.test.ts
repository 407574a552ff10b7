import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ReportRecorder, type RejectedCommand } from '../../src/broadcast/report-recorder.ts';
import { reportPayloadSchema, type ReportPayload } from '../../src/contract/payloads.ts';
import { createMemoryOutbox } from '../../src/store/memory-outbox.ts';
import type { OutboxRecord } from '../../src/store/types.ts';
import { memoryLogger } from '../support/log-sink.ts';

// Playback reports and the rate limit on rejected commands, which until now only the integration suite ran.
const t0 = Date.parse('2026-12-06T06:00:00Z');

function rig(now = () => Date.now()) {
  const outbox = createMemoryOutbox();
  const { logger, lines } = memoryLogger();
  const stored: OutboxRecord[] = [];
  const recorder = new ReportRecorder({ villageId: 'v1', outbox, logger, onStored: (r) => stored.push(r), now });
  const reports = (): ReportPayload[] => stored.map((r) => reportPayloadSchema.parse(outbox.get(r.id)!.payload));
  const logged = (msg: string) => lines.filter((l) => l.msg === msg);
  return { recorder, stored, reports, logged, outbox };
}

const junk = (n: number, more: Partial<RejectedCommand> = {}): RejectedCommand => ({
  jti: null,
  reason: 'malformed',
  detail: `junk ${n}`,
  kind: 'broadcast',
  topic: 'county/v1/broadcast',
  ...more,
});

describe('ReportRecorder playback', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(t0);
  });
  afterEach(() => vi.useRealTimers());

  it('stores every playback event as a report with what the county needs, as of the event', () => {
    const r = rig();
    const faultyZones = [{ zone: 'z1', amplifier: 'ampA', fault: 'amplifier ampA: overheat' }];
    r.recorder.playback({
      event: 'failed',
      requestId: 'bcast-1',
      priority: 'emergency',
      level: 2,
      status: 'exercise',
      zones: ['z1', 'z2'],
      faultyZones,
      reason: 'player error',
      at: t0 - 2000,
    });
    r.recorder.playback({
      event: 'started',
      requestId: 'bcast-2',
      priority: 'scheduled',
      status: 'actual',
      zones: ['z3'],
      faultyZones: [],
      at: t0 - 1000,
    });
    const [first, second] = r.reports();
    expect(first).toEqual({
      id: r.stored[0]!.id,
      seq: 1,
      village: 'v1',
      jti: 'bcast-1',
      event: 'failed',
      reason: 'player error',
      priority: 'emergency',
      level: 2,
      status: 'exercise',
      zones: ['z1', 'z2'],
      faultyZones,
      at: expect.any(String),
      attempt: 1,
    });
    expect(Date.parse(first!.at)).toBe(t0 - 2000);
    expect(second).not.toHaveProperty('reason');
    expect(second).not.toHaveProperty('level');
    expect(r.stored.map((s) => s.subject)).toEqual(['bcast-1', 'bcast-2']);
    expect(r.logged('playback report stored')).toEqual([
      expect.objectContaining({ reportId: first!.id, seq: 1, jti: 'bcast-1', event: 'failed', reason: 'player error' }),
      expect.objectContaining({ reportId: second!.id, seq: 2, jti: 'bcast-2', event: 'started' }),
    ]);
  });
});

describe('ReportRecorder rejected commands', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(t0);
  });
  afterEach(() => vi.useRealTimers());

  it('reports a rejected command with its reason and detail, and logs it with its topic', () => {
    const r = rig();
    r.recorder.rejected({ jti: 'bcast-9', reason: 'expired', detail: 'exp: expired 2 min ago', kind: 'broadcast', topic: 'county/v1/broadcast' });
    r.recorder.rejected({ jti: null, reason: 'malformed', detail: 'not a compact JWS' });
    const [known, unknown] = r.reports();
    expect(known).toMatchObject({
      jti: 'bcast-9',
      event: 'rejected',
      reason: 'expired: exp: expired 2 min ago',
      priority: null,
      status: null,
      zones: [],
      faultyZones: [],
      attempt: 1,
      village: 'v1',
    });
    expect(Date.parse(known!.at)).toBe(t0);
    expect(unknown).toMatchObject({ jti: null, reason: 'malformed: not a compact JWS' });
    expect(r.stored.map((s) => s.subject)).toEqual(['bcast-9', 'unverified']);
    expect(r.logged('county command rejected')[0]).toMatchObject({
      topic: 'county/v1/broadcast',
      reason: 'expired',
      detail: 'exp: expired 2 min ago',
      jti: 'bcast-9',
    });
  });

  it('reports twenty rejections a minute one by one, counts the rest, and sums them up once when the minute is over', async () => {
    const r = rig();
    for (let i = 0; i < 20; i++) r.recorder.rejected(junk(i));
    await vi.advanceTimersByTimeAsync(10_000);
    for (let i = 20; i < 25; i++) r.recorder.rejected(junk(i));
    r.recorder.rejected(junk(25, { reason: 'bad-signature' }));
    expect(r.stored).toHaveLength(20);
    expect(r.logged('county command rejected')).toHaveLength(20);
    await vi.advanceTimersByTimeAsync(50_000 - 1);
    expect(r.stored).toHaveLength(20);
    await vi.advanceTimersByTimeAsync(1);
    expect(r.stored).toHaveLength(21);
    const summary = r.reports()[20]!;
    expect(summary).toMatchObject({
      jti: null,
      event: 'rejected',
      reason: 'rate-limited: 6 more rejected commands in 60 s were counted but not reported one by one (malformed 5, bad-signature 1)',
    });
    expect(Date.parse(summary.at)).toBe(t0 + 60_000);
    expect(r.logged('county commands rejected (rate-limited: counted, not logged one by one)')).toEqual([
      expect.objectContaining({ count: 6, byReason: { malformed: 5, 'bad-signature': 1 } }),
    ]);
    // A new minute: reported one by one again, and nothing more to sum up.
    r.recorder.rejected(junk(26));
    expect(r.stored).toHaveLength(22);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(r.stored).toHaveLength(22);
  });

  it('sums up what was counted when the next minute begins, and starts counting anew', async () => {
    // No timers: the flush comes from the first rejection of the next minute.
    let now = t0;
    const r = rig(() => now);
    for (let i = 0; i < 21; i++) r.recorder.rejected(junk(i));
    expect(r.stored).toHaveLength(20);
    now = t0 + 60_000;
    r.recorder.rejected(junk(21));
    expect(r.reports().map((p) => p.reason)).toEqual([
      ...Array.from({ length: 20 }, (_, i) => `malformed: junk ${i}`),
      'rate-limited: 1 more rejected commands in 60 s were counted but not reported one by one (malformed 1)',
      'malformed: junk 21',
    ]);
    for (let i = 22; i < 41; i++) r.recorder.rejected(junk(i));
    expect(r.stored).toHaveLength(41);
    r.recorder.rejected(junk(41));
    expect(r.stored).toHaveLength(41);
  });

  it('counts the minute from the first rejection of it, not from the last one', () => {
    let now = t0;
    const r = rig(() => now);
    for (let i = 0; i < 20; i++) {
      r.recorder.rejected(junk(i));
      now += 2000;
    }
    // 40 s into the minute, the budget is spent.
    r.recorder.rejected(junk(20));
    expect(r.stored).toHaveLength(20);
    now = t0 + 59_999;
    r.recorder.rejected(junk(21));
    expect(r.stored).toHaveLength(20);
    now = t0 + 60_000;
    r.recorder.rejected(junk(22));
    expect(r.stored).toHaveLength(22);
  });

  it('reports a rejected ack once per cause a minute, so acks of its reports cannot feed it', () => {
    let now = t0;
    const r = rig(() => now);
    const ack = (reason: string): RejectedCommand => ({ jti: null, reason, detail: 'd', kind: 'ack', topic: 'county/v1/ack' });
    r.recorder.rejected(ack('bad-signature'));
    r.recorder.rejected(ack('bad-signature'));
    r.recorder.rejected(ack('unknown-kid'));
    // The same cause on another topic is not an ack loop: reported, and it does not hold back a first such ack.
    r.recorder.rejected(junk(0, { reason: 'bad-signature' }));
    r.recorder.rejected(junk(1, { reason: 'expired' }));
    r.recorder.rejected(ack('expired'));
    expect(r.reports().map((p) => p.reason)).toEqual([
      'bad-signature: d',
      'unknown-kid: d',
      'bad-signature: junk 0',
      'expired: junk 1',
      'expired: d',
    ]);
    now = t0 + 60_000;
    r.recorder.rejected(ack('bad-signature'));
    expect(
      r
        .reports()
        .map((p) => p.reason)
        .slice(5),
    ).toEqual(['rate-limited: 1 more rejected commands in 60 s were counted but not reported one by one (bad-signature 1)', 'bad-signature: d']);
  });

  it('sums up on stop what was counted, and leaves no timer behind', async () => {
    const r = rig();
    for (let i = 0; i < 22; i++) r.recorder.rejected(junk(i));
    r.recorder.stop();
    expect(r.reports().at(-1)?.reason).toMatch(/^rate-limited: 2 more /);
    const count = r.stored.length;
    await vi.advanceTimersByTimeAsync(120_000);
    expect(r.stored).toHaveLength(count);
    r.recorder.stop();
    expect(r.stored).toHaveLength(count);
  });

  it('sets one flush timer for a minute of counted rejections, whatever their number', async () => {
    const r = rig();
    for (let i = 0; i < 20; i++) r.recorder.rejected(junk(i));
    const timers = vi.getTimerCount();
    for (let i = 20; i < 40; i++) r.recorder.rejected(junk(i));
    expect(vi.getTimerCount()).toBe(timers + 1);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(r.logged('rejection count flush failed')).toEqual([]);
    expect(r.reports().at(-1)?.reason).toMatch(/^rate-limited: 20 more /);
  });

  it('logs a summary it could not store when its minute ran out, and keeps going', async () => {
    const r = rig();
    for (let i = 0; i < 21; i++) r.recorder.rejected(junk(i));
    const append = r.outbox.append.bind(r.outbox);
    r.outbox.append = () => {
      throw new Error('SQLITE_FULL');
    };
    await vi.advanceTimersByTimeAsync(60_000);
    expect(r.logged('rejection count flush failed')).toEqual([expect.objectContaining({ err: expect.objectContaining({ message: 'SQLITE_FULL' }) })]);
    r.outbox.append = append;
    r.recorder.rejected(junk(99));
    expect(r.reports().at(-1)?.reason).toBe('malformed: junk 99');
  });
});
