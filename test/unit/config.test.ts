import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, readConfigFile } from '../../src/config/load.ts';

const minimal = {
  version: 2,
  village: { id: 'v1', name: 'Village One', location: { lat: 25, lon: 102 } },
  county: { url: 'mqtt://127.0.0.1:1883' },
  dataDir: './data',
};

function errorsOf(json: unknown): string[] {
  const result = parseConfig(json);
  if (result.ok) throw new Error('expected the config to be rejected');
  return result.errors;
}

describe('config', () => {
  it('suggests the known key an unknown one most likely misspells, wherever it is', () => {
    const result = parseConfig({
      version: 2,
      village: { id: 'v1', name: 'v', location: { lat: 25, lon: 102 } },
      county: { url: 'mqtt://127.0.0.1:1883', comandKeys: [] },
      dataDir: '/tmp/x',
      buses: [{ id: 'b', kind: 'modbus-rtu', path: '/dev/ttyUSB0', baudrate: 9600 }],
      timing: { pollIntervallMs: 100 },
      brodcast: {},
      whatever: 1,
    });
    expect(result.ok).toBe(false);
    expect(result.ok ? [] : result.errors).toEqual([
      'county: Unrecognized key: "comandKeys" ("comandKeys": did you mean "commandKeys"?)',
      'buses[0]: Unrecognized key: "baudrate" ("baudrate": did you mean "baudRate"?)',
      'timing: Unrecognized key: "pollIntervallMs" ("pollIntervallMs": did you mean "pollIntervalMs"?)',
      '(root): Unrecognized keys: "brodcast", "whatever" ("brodcast": did you mean "broadcast"?)',
    ]);
  });

  it('fills defaults for a minimal config', () => {
    const result = parseConfig(minimal);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config.county.topicPrefix).toBe('village-edge');
    expect(result.config.timing.retry).toEqual({ initialMs: 5000, maxMs: 60000 });
    expect(result.config.timing.pollIntervalMs).toBe(100);
    expect([result.config.county.maxInboundBytes, result.config.county.maxInboundPacketBytes]).toEqual([32_768, 65_536]);
    expect(result.config.county.maxScheduleBytes).toBe(262_144);
  });

  it('bounds the schedule size limit: 4 KiB to 4 MiB', () => {
    const county = (maxScheduleBytes: number) => ({ ...minimal, county: { ...minimal.county, maxScheduleBytes } });
    expect(parseConfig(county(4096)).ok).toBe(true);
    expect(parseConfig(county(4 * 1024 * 1024)).ok).toBe(true);
    expect(errorsOf(county(4095))).toEqual([expect.stringMatching(/^county\.maxScheduleBytes: /)]);
    expect(errorsOf(county(4 * 1024 * 1024 + 1))).toEqual([expect.stringMatching(/^county\.maxScheduleBytes: /)]);
  });

  it('wants the packet cap above the largest payload, with room for its topic and headers', () => {
    const errors = errorsOf({ ...minimal, county: { ...minimal.county, maxInboundBytes: 65_536 } });
    expect(errors).toEqual([
      'county.maxInboundPacketBytes: must be at least maxInboundBytes + 1024 (room for the topic and headers around the largest payload)',
    ]);
  });

  it('names the path of every bad field, all at once', () => {
    const errors = errorsOf({
      ...minimal,
      village: { id: 'bad/id', name: 'x', location: { lat: 200, lon: 102 } },
      county: { url: 'http://x', keepaliveSeconds: 1 },
      buses: [{ id: 'b1', kind: 'modbus-rtu', path: '/dev/ttyUSB0', parity: 'mark' }],
      devices: [{ id: 'd1', bus: 'nope', unitId: 300, profile: 'p', role: 'alarm-column', label: 'x' }],
    });
    const joined = errors.join('\n');
    expect(joined).toContain('village.id: use letters, digits');
    expect(joined).toContain('village.location.lat:');
    expect(joined).toContain('county.url: must be an mqtt://');
    expect(joined).toContain('county.keepaliveSeconds:');
    expect(joined).toContain('buses[0].parity:');
    expect(joined).toContain('devices[0].unitId:');
    expect(errors.length).toBeGreaterThanOrEqual(6);
  });

  it('finds cross-field mistakes: unknown bus, duplicate ids and units', () => {
    const errors = errorsOf({
      ...minimal,
      buses: [{ id: 'sim', kind: 'simulated' }],
      devices: [
        { id: 'd1', bus: 'sim', unitId: 1, profile: 'p', role: 'alarm-column', label: 'a' },
        { id: 'd1', bus: 'sim', unitId: 1, profile: 'p', role: 'alarm-column', label: 'b' },
        { id: 'd2', bus: 'ghost', unitId: 2, profile: 'p', role: 'alarm-column', label: 'c' },
      ],
    });
    expect(errors).toContain('devices[1].id: duplicate device id "d1"');
    expect(errors).toContain('devices[1].unitId: unit 1 is already used on bus "sim"');
    expect(errors).toContain('devices[2].bus: no bus with id "ghost"');
  });

  it('rejects unknown fields, so a typo is not silently ignored', () => {
    expect(errorsOf({ ...minimal, dataDri: '/x' }).join()).toMatch(/\(root\): Unrecognized key.*dataDri/);
  });

  it('checks the version: missing, newer than this build', () => {
    expect(errorsOf({ ...minimal, version: undefined })).toEqual(['version: required, an integer (this build reads 2)']);
    expect(errorsOf({ ...minimal, version: 3 })[0]).toMatch(/^version: 3 is newer than this build reads/);
    expect(errorsOf({ ...minimal, version: 0 })[0]).toMatch(/^version: 0 is no longer supported/);
  });

  it('reads a version 1 file as version 2: without county keys, county commands are disabled as version 1 ran them', () => {
    const { commandKeys: _keys, ...countyWithoutKeys } = minimal.county as Record<string, unknown>;
    const old = parseConfig({ ...minimal, version: 1, county: countyWithoutKeys });
    expect(old.ok && { from: old.fromVersion, disabled: old.config.county.commandsDisabled }).toEqual({ from: 1, disabled: true });
    // Keys given, or commandsDisabled given: nothing to carry over.
    const keyed = parseConfig({
      ...minimal,
      version: 1,
      county: { ...countyWithoutKeys, commandKeys: [{ kid: 'k', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' }] },
    });
    expect(keyed.ok && keyed.config.county.commandsDisabled).toBe(false);
    const explicit = parseConfig({ ...minimal, version: 1, county: { ...countyWithoutKeys, commandsDisabled: false } });
    expect(explicit.ok && explicit.config.county.commandsDisabled).toBe(false);
  });

  it('reads a file, says so when it is not JSON, and resolves relative paths against its folder', () => {
    const dir = mkdtempSync(join(tmpdir(), 've-config-'));
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{ "version": 2, ');
    const badResult = readConfigFile(bad);
    expect(badResult.ok).toBe(false);
    if (!badResult.ok) expect(badResult.errors[0]).toMatch(/^\(file\): .*bad\.json is not valid JSON/);

    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify(minimal));
    const result = readConfigFile(good);
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.config.dataDir).toBe(join(dir, 'data'));
  });

  it.each(['config/example.json', 'config/village.example.json'])('shipped %s is valid', (path) => {
    const result = readConfigFile(path);
    expect(result.ok ? [] : result.errors).toEqual([]);
  });

  it('shipped config/schedule.example.json is a valid week of programmes the demo village can play as its own schedule', () => {
    const demo = JSON.parse(readFileSync('config/example.json', 'utf8')) as Record<string, unknown>;
    const week = JSON.parse(readFileSync('config/schedule.example.json', 'utf8')) as { programmes: unknown[] };
    expect(week.programmes.length).toBeGreaterThanOrEqual(7);
    const result = parseConfig({ ...demo, schedule: { document: week } });
    expect(result.ok ? [] : result.errors).toEqual([]);
  });

  it('names a programme zone the village lacks and a media type no player plays', () => {
    const demo = JSON.parse(readFileSync('config/example.json', 'utf8')) as Record<string, unknown>;
    const programme = {
      id: 'p',
      cron: '0 0 8 * * *',
      zones: ['moon'],
      content: { kind: 'media', sha256: 'a'.repeat(64), url: 'https://c.example/x.ogg', size: 1 },
    };
    const result = parseConfig({ ...demo, schedule: { document: { version: 1, programmes: [programme] } } });
    expect(result.ok ? [] : result.errors).toEqual([
      'schedule.document.programmes[0].zones: no broadcast zone with id "moon"',
      'schedule.document.programmes[0].content.url: no broadcast.player.media template plays ".ogg" files',
    ]);
  });
});

describe('config: broadcast section and county command keys', () => {
  const withBroadcast = (broadcast: unknown, devices: unknown[] = [], county: Record<string, unknown> = {}) => ({
    ...minimal,
    county: { ...minimal.county, ...county },
    buses: [{ id: 'sim', kind: 'simulated' }],
    devices: [
      { id: 'relays', bus: 'sim', unitId: 10, profile: 've-rb8-rtu', role: 'relay-board', label: 'relays' },
      { id: 'col', bus: 'sim', unitId: 1, profile: 've-ac100-rtu', role: 'alarm-column', label: 'column' },
      ...devices,
    ],
    broadcast,
  });

  it('names every dangling reference between zones, amplifiers, relay boards and terminals', () => {
    const errors = errorsOf({
      ...withBroadcast(
        {
          amplifiers: [{ id: 'amp', power: { device: 'col', channel: 0 }, statusDevice: 'ghost' }],
          zones: [
            { id: 'east', label: 'east', relay: { device: 'nope', channel: 1 }, amplifier: 'amp' },
            { id: 'west', label: 'west', relay: { device: 'relays', channel: 2 }, amplifier: 'no-amp' },
          ],
        },
        [{ id: 'col2', bus: 'sim', unitId: 2, profile: 've-ac100-rtu', role: 'alarm-column', label: 'c2', zone: 'north' }],
      ),
    });
    expect(errors).toEqual(
      expect.arrayContaining([
        'broadcast.amplifiers[0].power.device: device "col" is a alarm-column, not a relay-board',
        'broadcast.amplifiers[0].statusDevice: no device with id "ghost"',
        'broadcast.zones[0].relay.device: no device with id "nope"',
        'broadcast.zones[1].amplifier: no amplifier with id "no-amp"',
        'devices[2].zone: no broadcast zone with id "north"',
      ]),
    );
  });

  it('refuses player templates without their placeholder, and speech with control characters', () => {
    const errors = errorsOf(
      withBroadcast({
        player: { tts: ['espeak-ng', 'hello'], media: { '.wav': ['aplay'] }, volume: ['amixer', 'sset', 'Master'] },
        localAlarm: { content: { kind: 'tts', text: 'a\u0000b' } },
      }),
    );
    expect(errors).toEqual(
      expect.arrayContaining([
        'broadcast.player.tts: must contain {text} in one of its arguments',
        'broadcast.player.media..wav: must contain {file} in one of its arguments',
        'broadcast.player.volume: must contain {volume} in one of its arguments',
        'broadcast.localAlarm.content.text: no control characters',
      ]),
    );
  });

  it('defaults the sound output to ALSA "default", checked every 5 min, with tts piped into aplay on it', () => {
    const result = parseConfig(minimal);
    if (!result.ok) throw new Error(result.errors.join('\n'));
    const { output, player } = result.config.broadcast;
    expect(output).toEqual({
      device: 'default',
      check: ['aplay', '-q', '-D', '{device}', '-t', 'raw', '-f', 'S16_LE', '-r', '8000', '-c', '1', '-s', '1', '/dev/zero'],
      checkIntervalMs: 300_000,
      checkTimeoutMs: 3000,
    });
    expect(player.tts).toEqual(['espeak-ng', '-v', 'cmn', '--stdout', '--', '{text}']);
    expect(player.ttsOutput).toEqual(['aplay', '-q', '-D', '{device}']);
    expect(player.media).toEqual({
      '.mp3': ['mpg123', '-q', '-o', 'alsa', '-a', '{device}', '{file}'],
      '.wav': ['aplay', '-q', '-D', '{device}', '{file}'],
    });
  });

  it('refuses an output device that is no ALSA name, a check without {device}, and media paths that leave the library', () => {
    const errors = errorsOf(
      withBroadcast({
        output: { device: 'my card', check: ['aplay', '/dev/zero'], checkIntervalMs: 10 },
        chime: { kind: 'media', file: 'chimes/../../etc/x.wav', sha256: 'e'.repeat(64) },
      }),
    );
    expect(errors).toEqual(
      expect.arrayContaining([
        'broadcast.output.device: an ALSA PCM name such as "default", "hw:0,0" or "plughw:CARD=Device,DEV=0"',
        'broadcast.output.check: must contain {device} in one of its arguments',
        expect.stringMatching(/^broadcast\.output\.checkIntervalMs: /),
        'broadcast.chime.file: no "." or ".." path segment: the file must stay inside the media library',
      ]),
    );
  });

  it('refuses a small-order (forgeable) command key and duplicate kids', () => {
    // The Ed25519 identity point: with it as the key, one fixed signature verifies every message.
    const identity = Buffer.concat([Buffer.from([1]), Buffer.alloc(31)]).toString('base64url');
    const good = '0kxTg9WDkJnrZtOy93BCCv8wYqEBGmOI9Q71870xbqU'; // the demo county key
    const errors = errorsOf(
      withBroadcast({}, [], {
        commandKeys: [
          { kid: 'a', x: identity },
          { kid: 'b', x: good },
          { kid: 'b', x: good },
        ],
      }),
    );
    expect(errors.some((e) => e.startsWith('county.commandKeys[0].x: '))).toBe(true);
    expect(errors).toContain('county.commandKeys[2].kid: duplicate kid "b"');
    expect(errors.filter((e) => e.startsWith('county.commandKeys[1]'))).toEqual([]);
  });
});
