import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ReportRecorder } from '../../src/broadcast/report-recorder.ts';
import { ConsoleVillageAdapter } from '../../src/console/console-village.ts';
import { SpeakerTest, testTone, toneWav } from '../../src/console/speaker-test.ts';
import type { ConsoleUser } from '../../src/console/types.ts';
import { reportPayloadSchema, type ReportPayload } from '../../src/contract/payloads.ts';
import { MemoryOutbox } from '../../src/store/memory-outbox.ts';
import { advance, coldStartMs, flush, setup } from '../support/broadcast-rig.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { scratchFolder } from '../support/scratch-folder.ts';

// The installer's loudspeaker test through the adapter, the real controller (simulated relay boards, fake
// player) and the real report recorder: what sounds, and what the county is told.
const scratch = scratchFolder('speaker-test-');
const installer: ConsoleUser = { name: 'li.installer', role: 'installer', address: '192.168.1.23' };

async function village(options: { quiet?: boolean } = {}) {
  const library = scratch.fresh('library');
  mkdirSync(library);
  const outbox = new MemoryOutbox();
  const { logger } = memoryLogger();
  const reports = new ReportRecorder({ villageId: 'v1', outbox, logger, onStored: () => {} });
  let adapter: ConsoleVillageAdapter | undefined;
  const b = await setup(
    {},
    (event) => {
      reports.playback(event);
      adapter?.observe(event);
    },
    options.quiet ? { refusal: (r) => (r.priority === 'announcement' ? 'quiet hours 22:00–06:30: only an emergency may sound' : undefined) } : {},
  );
  const speakerTest = new SpeakerTest({
    library,
    zones: ['z1', 'z2', 'z3'],
    submit: (request) => b.controller.submit(request),
    // As app.ts: the test is refused here by what the controller would refuse it for; the controller has its own copy.
    refusal: () => (options.quiet ? 'quiet hours 22:00–06:30: only an emergency may sound' : undefined),
    report: (entry) => adapter?.audit(entry),
    logger,
    now: Date.now,
  });
  adapter = new ConsoleVillageAdapter({
    villageName: 'Village One',
    zones: [],
    terminals: [],
    library,
    status: () => Promise.reject(new Error('not used')),
    broadcast: { submit: (r) => b.controller.submit(r), stopPlayback: (t, reason) => b.controller.stopPlayback(t, reason) },
    recentAlarms: () => [],
    programmes: () => ({ schedule: null, today: [], week: [], log: [] }),
    diagnostics: () => [],
    testAlarm: () => ({ ok: false, reason: 'not used' }),
    speakerTest: async (zone, user) => speakerTest.run(zone, user),
    report: (entry) => reports.console(entry),
    logger,
    now: Date.now,
  });
  const reported = (): ReportPayload[] =>
    outbox
      .recent('report', 100)
      .reverse()
      .map((r) => reportPayloadSchema.parse(r.payload));
  /** The adapter waits for the controller's events (a later tick) before it answers. */
  const run = async (zone: string) => {
    const result = adapter.speakerTest(zone, installer);
    await flush();
    return result;
  };
  return { ...b, adapter, library, reported, run };
}

describe('loudspeaker test', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-12-08T02:00:00Z'));
  });
  afterEach(() => vi.useRealTimers());

  it('plays the tone on that one zone at announcement priority, for real, told first as a console test in the user name', async () => {
    const v = await village();
    const result = await v.run('z2');
    expect(result.ok).toBe(true);
    const id = result.ok ? result.id : '';
    expect(id).toMatch(/^speaker-test:[0-9a-f-]{36}$/);
    await advance(coldStartMs);
    expect(v.player.runs).toHaveLength(1);
    expect(v.player.last.job.content).toEqual({ kind: 'media', file: 'console/tone-1khz.wav', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(v.player.last.job.volume).toBe(80);
    // Only zone z2's relay and its amplifier's power: no other loudspeaker sounds.
    expect(v.rig.writes.map((w) => w.split(' ').slice(1).join(' '))).toEqual(['rb1/1 on', 'rb2/0 on']);
    v.player.last.finish();
    await flush();
    const reports = v.reported();
    expect(reports.map((r) => `${r.event}${r.console === undefined ? '' : `:${r.console.action}`}`)).toEqual([
      'console:speaker-test',
      'accepted',
      'started',
      'finished',
    ]);
    expect(reports.every((r) => r.jti === id)).toBe(true);
    expect(reports[0]?.console).toMatchObject({
      user: 'li.installer',
      role: 'installer',
      address: '192.168.1.23',
      subject: id,
      detail: '1 kHz tone, 2 s, zone z2',
    });
    // It sounded: `actual`, not the controller's dry run.
    expect(reports.slice(1).map((r) => [r.status, r.priority, r.zones])).toEqual(Array(3).fill(['actual', 'announcement', ['z2']]));
    expect(v.adapter.broadcast(id)).toMatchObject({ by: 'li.installer', zones: ['z2'], active: false });
  });

  it('writes the tone into the media library, a 2 s 1 kHz WAV whose sha256 the player checks, again if damaged', async () => {
    const v = await village();
    await v.run('z1');
    const path = join(v.library, testTone.file);
    const wav = readFileSync(path);
    expect(wav.subarray(0, 4).toString('ascii')).toBe('RIFF');
    expect(wav.subarray(8, 16).toString('ascii')).toBe('WAVEfmt ');
    expect(wav.readUInt32LE(24)).toBe(16_000);
    expect(wav.readUInt32LE(40)).toBe(16_000 * 2 * 2);
    // A cycle is 16 samples at 16 kHz: the waveform repeats with a 1 kHz period, at half of full scale.
    const sample = (i: number) => wav.readInt16LE(44 + i * 2);
    expect(sample(1000)).toBe(sample(1016));
    expect(Math.max(...Array.from({ length: 16 }, (_, i) => sample(1000 + i)))).toBeGreaterThan(15_000);
    expect(wav.equals(toneWav(1000, 2000, 16_000))).toBe(true);
    await advance(coldStartMs);
    const content = v.player.last.job.content;
    expect(content.kind === 'media' && content.sha256).toBe(createHash('sha256').update(wav).digest('hex'));
    v.player.last.finish();
    await flush();
    writeFileSync(path, 'damaged');
    await v.run('z1');
    expect(readFileSync(path).equals(wav)).toBe(true);
  });

  it('refuses an unknown zone and quiet hours with the reason, plays nothing, and reports the refusal in the user name', async () => {
    const v = await village({ quiet: true });
    expect(await v.run('z9')).toEqual({ ok: false, reason: 'no zone "z9"' });
    expect(await v.run('z1')).toEqual({ ok: false, reason: 'quiet hours 22:00–06:30: only an emergency may sound' });
    await advance(coldStartMs);
    expect(v.player.runs).toHaveLength(0);
    expect(v.reported().map((r) => [r.event, r.console?.action, r.console?.detail])).toEqual([
      ['console', 'speaker-test', 'refused: no zone "z9"'],
      ['console', 'speaker-test', 'refused: quiet hours 22:00–06:30: only an emergency may sound; zone z1'],
    ]);
  });

  it('an announcement the real controller refuses (quiet hours) is answered as refused, with its reason', async () => {
    const v = await village({ quiet: true });
    const pending = v.adapter.announce({ content: { kind: 'text', text: '今晚开会' }, zones: ['z1'], repeat: 1, chime: false }, installer);
    await flush();
    expect(await pending).toEqual({ ok: false, reason: 'quiet hours 22:00–06:30: only an emergency may sound' });
    await advance(coldStartMs);
    expect(v.player.runs).toHaveLength(0);
  });
});
