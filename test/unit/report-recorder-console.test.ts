import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ReportRecorder } from '../../src/broadcast/report-recorder.ts';
import { reportPayloadSchema, type ReportPayload } from '../../src/contract/payloads.ts';
import { MemoryOutbox } from '../../src/store/memory-outbox.ts';
import type { OutboxRecord } from '../../src/store/types.ts';
import { memoryLogger } from '../support/log-sink.ts';

const t0 = Date.parse('2026-12-08T02:00:00Z');

function rig() {
  const outbox = new MemoryOutbox();
  const { logger, lines } = memoryLogger();
  const stored: OutboxRecord[] = [];
  const recorder = new ReportRecorder({ villageId: 'v1', outbox, logger, onStored: (r) => stored.push(r) });
  const reports = (): ReportPayload[] => stored.map((r) => reportPayloadSchema.parse(outbox.get(r.id)!.payload));
  return { recorder, outbox, stored, reports, lines };
}

describe('ReportRecorder console audit', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(t0);
  });
  afterEach(() => vi.useRealTimers());

  it('stores each console action as a durable `console` report in the user name, jti naming the broadcast it was about', () => {
    const r = rig();
    r.recorder.console({ action: 'login', user: 'wang', role: 'official', address: '10.0.0.5' });
    r.recorder.console({ action: 'announce', user: 'wang', role: 'official', address: '10.0.0.5', subject: 'console:abc', detail: 'text: 开会' });
    r.recorder.console({
      action: 'test-alarm',
      user: 'li',
      role: 'installer',
      address: '10.0.0.6',
      subject: 'alarm-id',
      detail: 'test alarm from c1',
    });
    const [login, announce, testAlarm] = r.reports();
    expect(login).toMatchObject({
      village: 'v1',
      jti: null,
      event: 'console',
      console: { action: 'login', user: 'wang', role: 'official', address: '10.0.0.5' },
      priority: null,
      status: null,
      zones: [],
      attempt: 1,
    });
    expect(announce).toMatchObject({ jti: 'console:abc', console: { action: 'announce', subject: 'console:abc', detail: 'text: 开会' } });
    // An alarm is not a broadcast: its id is the subject, never a jti.
    expect(testAlarm).toMatchObject({ jti: null, console: { action: 'test-alarm', subject: 'alarm-id' } });
    expect(r.outbox.stats().byStream.report).toBe(3);
  });

  it('cuts what a user typed to what the contract allows rather than losing the report', () => {
    const r = rig();
    r.recorder.console({ action: 'login-refused', user: 'x'.repeat(500), address: 'a'.repeat(100), detail: 'd'.repeat(2000) });
    const [report] = r.reports();
    expect(report?.console?.user).toHaveLength(64);
    expect(report?.console?.address).toHaveLength(64);
    expect(report?.console?.detail).toHaveLength(500);
  });

  it('reports 20 refused logins a minute one by one, then one count a minute, however many addresses they come from', () => {
    const r = rig();
    for (let i = 0; i < 1000; i++)
      r.recorder.console({ action: 'login-refused', user: `guess${i % 3}`, address: `10.1.${i >> 8}.${i & 255}`, detail: 'wrong name or password' });
    expect(r.reports()).toHaveLength(20);
    // Other console actions keep their own path: a flood does not hide a real sign-in.
    r.recorder.console({ action: 'login', user: 'wang', role: 'official', address: '10.0.0.5' });
    expect(r.reports()).toHaveLength(21);
    vi.advanceTimersByTime(60_000);
    const all = r.reports();
    expect(all).toHaveLength(22);
    expect(all[21]?.console).toMatchObject({ action: 'login-refused', user: '(3 different)', address: '(980 different)' });
    expect(all[21]?.console?.detail).toMatch(/^rate-limited: 980 more refused logins in 60 s/);
    // A new minute: a budget of its own.
    r.recorder.console({ action: 'login-refused', user: 'again', address: '10.9.9.9' });
    expect(r.reports()).toHaveLength(23);
    expect(r.lines.filter((l) => l.msg.startsWith('console logins refused (rate-limited'))).toHaveLength(1);
  });

  it('says on stop how many refusals it had counted and not yet reported', () => {
    const r = rig();
    for (let i = 0; i < 25; i++) r.recorder.console({ action: 'login-refused', user: 'admin', address: '10.0.0.9' });
    r.recorder.stop();
    const last = r.reports().at(-1);
    expect(r.reports()).toHaveLength(21);
    expect(last?.console).toMatchObject({ action: 'login-refused', user: 'admin', address: '10.0.0.9' });
    expect(last?.console?.detail).toMatch(/5 more refused logins/);
  });
});
