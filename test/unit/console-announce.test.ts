import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ConsoleVillageAdapter } from '../../src/console/console-village.ts';
import { parseAnnounce } from '../../src/console/pages/announce-request.ts';
import { checkWav } from '../../src/console/pages/wav-check.ts';
import type { PlaybackEvent, PlayRequest } from '../../src/broadcast/types.ts';
import { ConsoleClient, sineWav, startAnnounceServer, wavHeader } from '../support/console-announce-rig.ts';
import { memoryLogger } from '../support/log-sink.ts';

describe('the WAV check', () => {
  it('passes a 16-bit PCM mono WAV and tells its rate and length', () => {
    expect(checkWav(sineWav({ seconds: 2 }), { maxSeconds: 120 })).toEqual({
      ok: true,
      info: { sampleRate: 16000, channels: 1, frames: 32000, seconds: 2 },
    });
    expect(checkWav(sineWav({ seconds: 1, rate: 48000, channels: 2 }), { maxSeconds: 120 })).toMatchObject({ ok: true, info: { channels: 2 } });
  });

  it('finds the data chunk past other chunks (LIST), padded to even lengths', () => {
    const wav = sineWav({ seconds: 1 });
    const list = Buffer.concat([Buffer.from('LIST', 'latin1'), Buffer.from([3, 0, 0, 0]), Buffer.from('abc\0', 'latin1')]);
    const withList = Buffer.concat([wav.subarray(0, 36), list, wav.subarray(36)]);
    expect(checkWav(withList, { maxSeconds: 120 })).toMatchObject({ ok: true, info: { frames: 16000 } });
  });

  it.each([
    ['an empty upload', Buffer.alloc(0), 'empty: no bytes were sent'],
    ['an Ogg file', Buffer.from('OggS\0\0\0\0\0\0\0\0\0\0\0\0', 'latin1'), 'not a WAV file (no RIFF/WAVE header)'],
    [
      'float samples',
      Buffer.concat([wavHeader({ rate: 16000, channels: 1, bits: 32, format: 3, dataBytes: 8 }), Buffer.alloc(8, 1)]),
      'not PCM (format 3)',
    ],
    [
      '8-bit samples',
      Buffer.concat([wavHeader({ rate: 16000, channels: 1, bits: 8, format: 1, dataBytes: 8 }), Buffer.alloc(8, 1)]),
      '8-bit samples',
    ],
    ['six channels', Buffer.concat([wavHeader({ rate: 16000, channels: 6, bits: 16, format: 1, dataBytes: 12 }), Buffer.alloc(12, 1)]), '6 channels'],
    ['a 4 kHz rate', sineWav({ seconds: 0.5, rate: 4000 }), 'sample rate 4000 Hz'],
    ['a 96 kHz rate', sineWav({ seconds: 0.1, rate: 96000 }), 'sample rate 96000 Hz'],
    ['no sound at all', wavHeader({ rate: 16000, channels: 1, bits: 16, format: 1, dataBytes: 0 }), 'empty: the recording holds no sound'],
    ['digital silence', Buffer.concat([wavHeader({ rate: 16000, channels: 1, bits: 16, format: 1, dataBytes: 3200 }), Buffer.alloc(3200)]), 'silent'],
  ])('refuses %s', (_what, wav, reason) => {
    const result = checkWav(wav, { maxSeconds: 120 });
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toContain(reason);
  });

  it('refuses a recording longer than allowed, saying how long', () => {
    expect(checkWav(sineWav({ seconds: 6 }), { maxSeconds: 5 })).toEqual({ ok: false, reason: 'too long: 6.0 s, at most 5 s' });
    expect(checkWav(sineWav({ seconds: 5 }), { maxSeconds: 5 }).ok).toBe(true);
  });

  it('refuses a truncated file: header cut short, or sound shorter than the header says', () => {
    const wav = sineWav({ seconds: 1 });
    expect(checkWav(wav.subarray(0, wav.length - 100), { maxSeconds: 120 })).toEqual({
      ok: false,
      reason: 'truncated: the header announces 32000 bytes of sound, 31900 arrived',
    });
    expect(checkWav(wav.subarray(0, 30), { maxSeconds: 120 })).toEqual({ ok: false, reason: 'truncated: the format chunk is cut short' });
    expect(checkWav(wav.subarray(0, 36), { maxSeconds: 120 })).toEqual({ ok: false, reason: 'truncated: no data chunk' });
    const odd = Buffer.from(wav);
    odd.writeUInt32LE(31999, 40);
    expect(checkWav(odd, { maxSeconds: 120 })).toMatchObject({ ok: false, reason: expect.stringMatching(/^truncated: 31999 bytes/) });
  });
});

describe('the announce request schema', () => {
  const village = { zoneIds: ['north', 'south'], maxRecordingSeconds: 120 };
  const text = { kind: 'text', text: '  明天上午九点村委会开会  ', zones: ['north'], repeat: '2', chime: 'on' };

  it('makes an order of a text announcement, trimmed, one zone given as a single value', () => {
    expect(parseAnnounce({ ...text, zones: 'north' }, undefined, village)).toEqual({
      ok: true,
      order: { content: { kind: 'text', text: '明天上午九点村委会开会' }, zones: ['north'], repeat: 2, chime: true },
    });
    expect(parseAnnounce({ kind: 'text', text: 'x', zones: ['north', 'south'] }, undefined, village)).toMatchObject({
      ok: true,
      order: { repeat: 1, chime: false, zones: ['north', 'south'] },
    });
  });

  it.each([
    [{ ...text, kind: 'video' }, 'kind: text or recording'],
    [{ ...text, zones: undefined }, 'zones: choose at least one zone'],
    [{ ...text, zones: ['east'] }, 'zones[0]: no such zone'],
    [{ ...text, zones: ['north', 'north'] }, 'zones: a zone is named twice'],
    [{ ...text, repeat: '6' }, 'repeat: 1 to 5'],
    [{ ...text, repeat: '0' }, 'repeat: 1 to 5'],
    [{ ...text, repeat: '1.5' }, 'repeat: a whole number'],
    [{ ...text, repeat: 'two' }, 'repeat: a whole number'],
    [{ ...text, chime: 'maybe' }, 'chime: on or off'],
    [{ ...text, text: '   ' }, 'text: write what to announce'],
    [{ ...text, text: 'a'.repeat(1001) }, 'text: at most 1000 characters'],
    [{ ...text, text: 'bell\u0007' }, 'text: no control characters'],
    [{ ...text, kind: 'recording' }, 'recording: missing (record with the microphone first)'],
  ])('names the bad field: %j', (fields, error) => {
    expect(parseAnnounce(fields, undefined, village)).toEqual({ ok: false, error });
  });

  it('checks the recording of a voice announcement', () => {
    const fields = { kind: 'recording', zones: ['south'], repeat: '1' };
    const wav = sineWav({ seconds: 1 });
    expect(parseAnnounce(fields, wav, village)).toEqual({
      ok: true,
      order: { content: { kind: 'recording', wav }, zones: ['south'], repeat: 1, chime: false },
    });
    expect(parseAnnounce(fields, Buffer.from('not a wav'), village)).toEqual({ ok: false, error: 'recording: not a WAV file (no RIFF/WAVE header)' });
  });
});

describe('the announce routes on a real server', () => {
  let rig: Awaited<ReturnType<typeof startAnnounceServer>>;
  let client: ConsoleClient;
  beforeAll(async () => {
    rig = await startAnnounceServer({ maxRecordingSeconds: 5 });
    client = new ConsoleClient(rig.url);
    await client.signIn();
  });
  afterAll(async () => {
    await rig?.stop();
  });
  beforeEach(() => {
    rig.village.refusal = undefined;
  });

  it('serves the page with the DOM the other tests rely on, in Chinese first', async () => {
    const page = await (await client.fetch('/announce')).text();
    for (const part of [
      'id="announce-form"',
      'name="kind" value="text"',
      'name="kind" value="recording"',
      'id="announce-text" name="text"',
      'name="zones" value="north"',
      'name="zones" value="south"',
      'id="announce-repeat"',
      'id="announce-chime"',
      'id="announce-send"',
      'id="record-start"',
      'id="record-stop"',
      '<meter id="record-level"',
      '<audio id="record-playback"',
      'id="record-discard"',
      'id="announce-progress" aria-live="polite"',
      'id="announce-error" class="error" role="alert"',
      'id="announce-stop"',
      '<script src="/assets/announce.js" defer>',
      '发送广播',
    ])
      expect(page).toContain(part);
    expect(page).not.toMatch(/<script>|<script [^>]*>[^<]/);
  });

  it('sends a text announcement to announce() in the signed-in name and answers its id', async () => {
    const response = await client.announce({ kind: 'text', text: '停水通知', zones: ['north', 'south'], repeat: '3', chime: 'on' });
    expect(response.status).toBe(202);
    const { id } = (await response.json()) as { id: string };
    const call = rig.village.announced.find((a) => a.id === id);
    expect(call?.order).toEqual({ content: { kind: 'text', text: '停水通知' }, zones: ['north', 'south'], repeat: 3, chime: true });
    expect(call?.user).toMatchObject({ name: 'wang', role: 'official', address: '127.0.0.1' });

    const view = await (await client.fetch(`/api/broadcasts/${encodeURIComponent(id)}`)).json();
    expect(view).toMatchObject({ id, by: 'wang', active: true, steps: [{ event: 'accepted' }] });
    expect(await (await client.fetch('/api/broadcasts')).json()).toEqual(expect.arrayContaining([expect.objectContaining({ id })]));
  });

  it('hands a recording over as the very bytes sent, once the WAV passes', async () => {
    const wav = sineWav({ seconds: 2 });
    const response = await client.announce({ kind: 'recording', zones: 'south' }, wav);
    expect(response.status).toBe(202);
    const { id } = (await response.json()) as { id: string };
    const content = rig.village.announced.find((a) => a.id === id)?.order.content;
    expect(content?.kind === 'recording' && content.wav.equals(wav)).toBe(true);
  });

  it('refuses a recording that fails the check, and one too long, with the reason and without calling announce()', async () => {
    const before = rig.village.announced.length;
    const bad = await client.announce({ kind: 'recording', zones: 'south' }, Buffer.from('RIFF....WAVEjunk', 'latin1'));
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: 'recording: not a playable WAV: no format chunk' });
    const long = await client.announce({ kind: 'recording', zones: 'south' }, sineWav({ seconds: 6 }));
    expect(await long.json()).toEqual({ error: 'recording: too long: 6.0 s, at most 5 s' });
    expect(rig.village.announced.length).toBe(before);
  });

  it('answers a bad field with 400 naming it', async () => {
    const response = await client.announce({ kind: 'text', text: 'x', zones: 'west' });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: 'zones[0]: no such zone' });
    const notMultipart = await client.fetch('/api/announce', {
      method: 'POST',
      headers: { 'x-csrf-token': client.csrf, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(notMultipart.status).toBe(415);
  });

  it("shows the village's refusal (quiet hours) with its reason: 409 from the API, the alert on the form", async () => {
    rig.village.refusal = 'quiet hours: 22:00–06:00';
    const response = await client.announce({ kind: 'text', text: '通知', zones: 'north' });
    expect(response.status).toBe(409);
    expect(await response.json()).toEqual({ refused: 'quiet hours: 22:00–06:00' });

    const form = await client.fetch('/announce', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: client.csrf, kind: 'text', text: '通知', zones: 'north', repeat: '1' }).toString(),
    });
    expect(form.status).toBe(409);
    const page = await form.text();
    expect(page).toContain('role="alert">quiet hours: 22:00–06:00</p>');
    expect(page).toContain('>通知</textarea>');
  });

  it('takes a text announcement from the plain form (no script) and redirects to its follow view', async () => {
    // The form's own hidden token, as a browser without script sends it.
    const token = /<form id="announce-form"[^>]*>\s*<input type="hidden" name="_csrf" value="([^"]+)">/.exec(
      await (await client.fetch('/announce')).text(),
    )?.[1];
    expect(token).toBeDefined();
    const form = await client.fetch('/announce', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams([
        ['_csrf', token!],
        ['kind', 'text'],
        ['text', '无脚本通知'],
        ['zones', 'north'],
        ['zones', 'south'],
        ['repeat', '1'],
      ]).toString(),
    });
    expect(form.status).toBe(303);
    const location = form.headers.get('location')!;
    const id = decodeURIComponent(/follow=(.*)$/.exec(location)![1]!);
    expect(rig.village.announced.at(-1)).toMatchObject({ id, order: { zones: ['north', 'south'], chime: false } });
    rig.village.step(id, 'started');
    const page = await (await client.fetch(location)).text();
    expect(page).toContain(`data-broadcast="${id}" data-state="started"`);
    expect(page).toContain(`data-active-broadcast="${id}"`);
  });

  it('refuses every POST without the CSRF token with 403, before announce() or stop() is reached', async () => {
    const before = { announced: rig.village.announced.length, stops: rig.village.stops.length };
    const response = await client.announce({ kind: 'text', text: '通知', zones: 'north' }, undefined, { csrf: false });
    expect(response.status).toBe(403);
    const stop = await client.fetch('/api/broadcasts/x/stop', { method: 'POST' });
    expect(stop.status).toBe(403);
    const wrong = await client.fetch('/api/broadcasts/x/stop', { method: 'POST', headers: { 'x-csrf-token': 'forged' } });
    expect(wrong.status).toBe(403);
    expect({ announced: rig.village.announced.length, stops: rig.village.stops.length }).toEqual(before);
  });

  it('answers 401 to the API and a login redirect to the page when not signed in', async () => {
    const stranger = new ConsoleClient(rig.url);
    expect((await stranger.fetch('/api/broadcasts')).status).toBe(401);
    expect((await stranger.fetch('/announce')).headers.get('location')).toBe('/login?next=%2Fannounce');
  });

  it('stops a broadcast through stop() in the signed-in name; nothing to stop says stopped: false', async () => {
    const { id } = (await (await client.announce({ kind: 'text', text: '通知', zones: 'north' })).json()) as { id: string };
    const response = await client.fetch(`/api/broadcasts/${encodeURIComponent(id)}/stop`, {
      method: 'POST',
      headers: { 'x-csrf-token': client.csrf },
    });
    expect(await response.json()).toEqual({ stopped: true });
    expect(rig.village.stops.at(-1)).toMatchObject({ id, user: { name: 'wang' } });
    expect(rig.village.broadcast(id)?.steps.at(-1)?.event).toBe('stopped');
    const again = await client.fetch(`/api/broadcasts/${encodeURIComponent(id)}/stop`, { method: 'POST', headers: { 'x-csrf-token': client.csrf } });
    expect(await again.json()).toEqual({ stopped: false });
    expect((await client.fetch('/api/broadcasts/nope')).status).toBe(404);
  });
});

/** The adapter with only what an announcement reaches: a media library and the controller's submit. */
function recordingAdapter(library: string, submit: (request: PlayRequest) => string | undefined): ConsoleVillageAdapter {
  return new ConsoleVillageAdapter({
    villageName: 'v',
    zones: [{ id: 'north', label: 'N' }],
    terminals: [],
    library,
    status: () => Promise.reject(new Error('unused')),
    broadcast: { submit, stopPlayback: () => 0 },
    recentAlarms: () => [],
    programmes: () => ({ schedule: null, today: [], week: [], log: [] }),
    diagnostics: () => [],
    testAlarm: () => ({ ok: false, reason: 'unused' }),
    speakerTest: () => Promise.resolve({ ok: false, reason: 'unused' }),
    report: () => {},
    logger: memoryLogger().logger,
    now: () => Date.now(),
  });
}

describe('the adapter with a refused recording', () => {
  let library = '';
  beforeAll(() => {
    library = mkdtempSync(join(tmpdir(), 'console-library-'));
  });
  afterAll(() => rmSync(library, { recursive: true, force: true }));

  it('keeps no file of a recording the controller refused', async () => {
    const submitted: PlayRequest[] = [];
    // As the real controller: submit() answers the refusal, and its `rejected` event follows on a later microtask.
    const adapter: ConsoleVillageAdapter = recordingAdapter(library, (request) => {
      submitted.push(request);
      const event: PlaybackEvent = {
        event: 'rejected',
        requestId: request.id,
        priority: request.priority,
        status: request.status,
        zones: request.zones,
        faultyZones: [],
        reason: 'quiet hours',
        at: 0,
      };
      queueMicrotask(() => adapter.observe(event));
      return 'quiet hours';
    });
    const result = await adapter.announce(
      { content: { kind: 'recording', wav: sineWav({ seconds: 1 }) }, zones: ['north'], repeat: 1, chime: false },
      {
        name: 'wang',
        role: 'official',
        address: '127.0.0.1',
      },
    );
    expect(result).toEqual({ ok: false, reason: 'quiet hours' });
    expect(submitted[0]?.content.kind).toBe('media');
    expect(existsSync(join(library, 'console')) ? readdirSync(join(library, 'console')) : []).toEqual([]);
  });

  it('removes recordings older than a week when a new one is kept, and nothing else of the folder', async () => {
    const dir = join(library, 'console');
    mkdirSync(dir, { recursive: true });
    const old = join(dir, 'console-0190aaaa-0000-7000-8000-000000000000.wav');
    const recent = join(dir, 'console-0190bbbb-0000-7000-8000-000000000000.wav');
    const tone = join(dir, 'tone-1khz.wav');
    for (const path of [old, recent, tone]) writeFileSync(path, 'x');
    const eightDaysAgo = new Date(Date.now() - 8 * 86_400_000);
    utimesSync(old, eightDaysAgo, eightDaysAgo);
    utimesSync(tone, eightDaysAgo, eightDaysAgo);
    const adapter = recordingAdapter(library, () => undefined);
    const result = await adapter.announce(
      { content: { kind: 'recording', wav: sineWav({ seconds: 1 }) }, zones: ['north'], repeat: 1, chime: false },
      { name: 'wang', role: 'official', address: '127.0.0.1' },
    );
    expect(result.ok).toBe(true);
    const left = readdirSync(dir);
    expect(left).not.toContain('console-0190aaaa-0000-7000-8000-000000000000.wav');
    expect(left).toEqual(expect.arrayContaining(['console-0190bbbb-0000-7000-8000-000000000000.wav', 'tone-1khz.wav']));
    expect(left).toHaveLength(3);
  });
});
