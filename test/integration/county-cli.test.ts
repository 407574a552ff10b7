import { afterAll, describe, expect, inject, it } from 'vitest';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { createPublicKey, randomUUID, verify as cryptoVerify } from 'node:crypto';
import { startTcpProxy } from '../support/tcp-proxy.ts';
import mqtt from 'mqtt';
import type { PlayJob, PlayerRun } from '../../src/broadcast/types.ts';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createVillageEdge, type VillageEdge } from '../../src/app.ts';
import { reportPayloadSchema, scheduleCommandSchema, timeCommandSchema } from '../../src/contract/payloads.ts';
import { createMemoryOutbox, type MemoryOutbox } from '../../src/store/memory-outbox.ts';
import { connectCounty, type CountyClient } from '../support/county.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { RecordingPlayer } from '../support/recording-player.ts';
import { villageConfig, oneZoneBroadcast, countyLinkUp } from '../support/village.ts';
import { waitFor } from '../support/wait.ts';
import { sampleSchedule } from '../support/county-signer.ts';

const brokerUrl = inject('brokerUrl');
const protocolVersion = inject('brokerProtocolVersion');
const repoRoot = new URL('../../', import.meta.url).pathname;
/** The built bundle, as the package installs it (the global setup builds it): no compiling at each start. */
const cliArgs = (...args: string[]) => [join(repoRoot, 'dist/main.js'), ...args];

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** The CLI as a child process, without blocking this process: the villages under test live in it. */
function runCli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, cliArgs(...args), { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 }, (_error, stdout, stderr) =>
      resolve({ code: child.exitCode, stdout, stderr }),
    );
  });
}

/** Plays tts as RecordingPlayer does; a media file is refused before anything starts, as a missing file is. */
class MediaFailingPlayer extends RecordingPlayer {
  override start(job: PlayJob): PlayerRun {
    if (job.content.kind !== 'media') return super.start(job);
    const done = Promise.resolve({ outcome: 'failed' as const, reason: `cannot read media file ${job.content.file}: ENOENT` });
    return { started: Promise.resolve(false), done, stop: async () => {} };
  }
}

/** The waits here include child processes of the CLI, which start slowly under tsx: longer than the default. */
const CLI_WAIT_MS = 10_000;

interface Watcher {
  readonly lines: string[];
  /** The first line, seen or still to come, that matches; `poke` runs every 200 ms meanwhile. */
  waitFor(match: (line: string) => boolean, timeoutMs?: number, poke?: () => unknown): Promise<string>;
  stop(): Promise<void>;
}

/** `county watch` as a child process, its stdout collected line by line. */
function startWatch(...args: string[]): Watcher {
  const child = spawn(process.execPath, cliArgs('county', 'watch', ...args), { cwd: repoRoot });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const lines: string[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => lines.push(line));
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
  };
  cleanups.push(stop);
  return {
    lines,
    waitFor(match, timeoutMs = CLI_WAIT_MS, poke) {
      let pokedAt = -Infinity;
      return waitFor(
        'a matching line from county watch',
        async () => {
          const line = lines.find(match);
          if (line === undefined && poke !== undefined && performance.now() - pokedAt >= 200) {
            pokedAt = performance.now();
            await poke();
          }
          return line;
        },
        { timeoutMs, intervalMs: 20, context: () => `it printed:\n${lines.join('\n')}` },
      );
    },
    stop,
  };
}

/**
 * `mosquitto_sub` (a client we did not write, without -R so a retained copy is shown) reading `count`
 * messages of `topic`: each with its retain flag and payload.
 */
function mosquittoSub(topic: string, count = 1): Promise<Array<{ retained: boolean; payload: string }>> {
  const { hostname, port } = new URL(brokerUrl);
  const args = ['-h', hostname, '-p', port, '-V', protocolVersion === 5 ? 'mqttv5' : 'mqttv311', '-t', topic, '-C', String(count), '-F', '%r %p'];
  return new Promise((resolve, reject) => {
    execFile('mosquitto_sub', args, { encoding: 'utf8', timeout: 30_000, maxBuffer: 1 << 24 }, (error, stdout) => {
      if (error) return reject(new Error(`mosquitto_sub: ${error.message} (Debian package mosquitto-clients)`));
      resolve(
        stdout
          .trimEnd()
          .split('\n')
          .map((line) => ({ retained: line.startsWith('1 '), payload: line.slice(2) })),
      );
    });
  });
}

/** The claims of a compact JWS whose signature verifies with the county key `entry`; throws otherwise. */
function verifiedClaims(token: string, entry: { kid: string; x: string }): unknown {
  const [header, claims, signature] = token.split('.') as [string, string, string];
  expect(JSON.parse(Buffer.from(header, 'base64url').toString('utf8'))).toMatchObject({ alg: 'EdDSA', kid: entry.kid });
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: entry.x }, format: 'jwk' });
  expect(cryptoVerify(null, Buffer.from(`${header}.${claims}`), key, Buffer.from(signature, 'base64url'))).toBe(true);
  return JSON.parse(Buffer.from(claims, 'base64url').toString('utf8'));
}

function fakeAlarm(id: string) {
  return {
    id,
    seq: 1,
    village: 'desk-v',
    terminal: 'column-9',
    type: 'button',
    raisedAt: new Date().toISOString(),
    location: { village: 'desk-v', terminal: 'column-9', lat: 25, lon: 102 },
    attempt: 1,
    presses: 1,
  };
}

function fakeRejection(jti: string, seq: number) {
  return {
    id: randomUUID(),
    seq,
    village: 'desk-v',
    jti,
    event: 'rejected',
    reason: 'wrong-audience: aud: "x" is neither this village ("desk-v") nor "all"',
    priority: null,
    status: null,
    zones: [],
    faultyZones: [],
    at: new Date().toISOString(),
    attempt: 1,
  };
}

describe('county tooling on the command line: keygen, announce, county watch', () => {
  const keyDir = mkdtempSync(join(tmpdir(), 've-keys-'));
  let app: VillageEdge;
  let outbox: MemoryOutbox;
  let player: MediaFailingPlayer;
  let listener: CountyClient;
  let entry: { kid: string; x: string };

  const common = (key = join(keyDir, 'county-test.private.jwk.json')) => [
    '--key',
    key,
    '--broker',
    brokerUrl,
    '--protocol',
    String(protocolVersion),
    '--village',
    'cli-village',
  ];

  it('keygen writes a private key only its owner can read, and prints the entry villages trust', () => {
    const result = spawnSync(process.execPath, cliArgs('keygen', '--kid', 'county-test', '--out', keyDir), { encoding: 'utf8', cwd: repoRoot });
    expect(result.status).toBe(0);
    expect(statSync(join(keyDir, 'county-test.private.jwk.json')).mode & 0o777).toBe(0o600);
    entry = JSON.parse(/county\.commandKeys: (\{.*\})/.exec(result.stdout)?.[1] ?? 'null') as { kid: string; x: string };
    expect(entry.kid).toBe('county-test');
  });

  it('announce signs and publishes a broadcast, waits for the village to accept and start it, and a stop ends it', async () => {
    player = new MediaFailingPlayer(10_000);
    const config = villageConfig({
      villageId: 'cli-village',
      brokerUrl,
      protocolVersion,
      columns: 1,
      commandKeys: [entry],
      ...oneZoneBroadcast(),
    });
    // An outbox the test holds: the watch test sends the announce tests' reports again at once (below).
    outbox = createMemoryOutbox();
    app = createVillageEdge({ config, version: '0.0.0-test', logger: memoryLogger('info').logger, adapters: { player, outbox } });
    await app.start();
    cleanups.push(() => app.stop());
    listener = await connectCounty({ url: brokerUrl, protocolVersion });
    cleanups.push(() => listener.close());
    await waitFor('the county link up', countyLinkUp(app), CLI_WAIT_MS);

    const announced = await runCli('announce', ...common(), '--emergency', '1', '--zones', 'square', '--text', '山洪预警，请立即转移。');
    expect(announced.stderr).toBe('');
    const jti = /published broadcast (\S+) to village-edge\/cli-village\/cmd\/broadcast; waiting/.exec(announced.stdout)?.[1];
    expect(jti).toBeDefined();
    expect(announced.stdout).toContain('cli-village accepted (emergency level 1 特别重大, zones square)');
    expect(announced.stdout).toContain('cli-village started (emergency level 1 特别重大, zones square)');
    expect(announced.stdout).toContain('summary: 1 village(s): 1 started');
    expect(announced.code).toBe(0);
    expect(player.started[0]?.content).toEqual({ kind: 'tts', text: '山洪预警，请立即转移。' });

    // A stop is reported against the broadcast it ends, so it does not wait.
    const stopped = await runCli('announce', ...common(), '--stop', jti!);
    expect(stopped.stdout).toMatch(/^published stop \S+ to village-edge\/cli-village\/cmd\/stop$/m);
    expect(stopped.code).toBe(0);
    const reports = () =>
      listener.messages.filter((m) => m.kind === 'report' && m.village === 'cli-village').map((m) => reportPayloadSchema.parse(m.payload));
    await waitFor(`${jti} stopped`, () => reports().some((r) => r.jti === jti && r.event === 'stopped'), CLI_WAIT_MS);

    // A bad command is refused by the tool itself, naming the field, before anything is signed.
    const bad = await runCli('announce', ...common(), '--announcement', '--zones', 'a b', '--text', 'x');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/zones/);
  });

  it('announce exits 1 when the village rejects the command (a key it does not trust) or fails it, and prints why', async () => {
    const stranger = await runCli('keygen', '--kid', 'county-stranger', '--out', keyDir);
    expect(stranger.code).toBe(0);
    const rejected = await runCli('announce', ...common(join(keyDir, 'county-stranger.private.jwk.json')), '--emergency', '2', '--text', 'x');
    expect(rejected.stdout).toMatch(
      /^cli-village REJECTED \(a command it could not verify, most likely this one\): unknown-kid: .*"county-stranger"/m,
    );
    expect(rejected.stdout).toContain('summary: 1 village(s): 1 rejected');
    expect(rejected.code).toBe(1);

    const failed = await runCli('announce', ...common(), '--announcement', '--media', 'missing.mp3', '--sha256', 'a'.repeat(64));
    expect(failed.stdout).toContain('cli-village accepted (announcement, zones square)');
    expect(failed.stdout).toMatch(/^cli-village FAILED \(announcement, zones square\): play 1 of 1: cannot read media file missing\.mp3/m);
    expect(failed.code).toBe(1);

    const tested = await runCli('announce', ...common(), '--emergency', '4', '--status', 'test', '--text', '测试');
    expect(tested.stdout).toContain('cli-village tested (emergency level 4 一般, test, zones square)');
    expect(tested.code).toBe(0);
  });

  it('announce --no-wait only publishes; a village that never answers is exit 3 after --timeout', async () => {
    const quick = await runCli('announce', ...common(), '--announcement', '--status', 'test', '--text', 'x', '--no-wait');
    expect(quick.stdout.trim()).toMatch(/^published broadcast \S+ to village-edge\/cli-village\/cmd\/broadcast$/);
    expect(quick.code).toBe(0);

    const silent = await runCli('announce', ...common(), '--village', 'cli-nobody', '--announcement', '--text', 'x', '--timeout', '1');
    expect(silent.stdout).toContain('summary: 1 village(s): 1 no answer');
    expect(silent.code).toBe(3);
  });

  it('announce --all prints a table of every village it heard of, with a summary, after the timeout', async () => {
    // A prefix of its own: an --all broadcast on the shared broker would reach other test files' villages.
    const prefix = 'cli-all';
    const config = villageConfig({ villageId: 'all-1', brokerUrl, protocolVersion, columns: 1, commandKeys: [entry], ...oneZoneBroadcast() });
    const other = createVillageEdge({
      config: { ...config, county: { ...config.county, topicPrefix: prefix } },
      version: '0.0.0-test',
      logger: memoryLogger('info').logger,
      adapters: { player: new RecordingPlayer(10_000) },
    });
    await other.start();
    cleanups.push(() => other.stop());
    await waitFor('the county link up', countyLinkUp(other), CLI_WAIT_MS);
    // Two villages that exist only as retained states: one online that never answers, one offline.
    const fake = await mqtt.connectAsync(brokerUrl, { protocolVersion });
    const state = (village: string, online: boolean) => JSON.stringify({ online, village, version: '0.0.0-test' });
    await fake.publishAsync(`${prefix}/all-ghost/state`, state('all-ghost', true), { qos: 1, retain: true });
    await fake.publishAsync(`${prefix}/all-away/state`, state('all-away', false), { qos: 1, retain: true });
    cleanups.push(async () => {
      for (const village of ['all-ghost', 'all-away']) await fake.publishAsync(`${prefix}/${village}/state`, '', { qos: 1, retain: true });
      await fake.endAsync();
    });

    const key = join(keyDir, 'county-test.private.jwk.json');
    const result = await runCli(
      'announce',
      '--key',
      key,
      '--broker',
      brokerUrl,
      '--protocol',
      String(protocolVersion),
      '--prefix',
      prefix,
      '--all',
      '--emergency',
      '3',
      '--text',
      '通知',
      '--timeout',
      '3',
    );
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain('all-1 started (emergency level 3 较大, zones square)');
    expect(result.stdout).toMatch(/^ {2}village +link +outcome$/m);
    expect(result.stdout).toMatch(/^ {2}all-1 +online +started$/m);
    expect(result.stdout).toMatch(/^ {2}all-away +offline +offline: no answer/m);
    expect(result.stdout).toMatch(/^ {2}all-ghost +online +no answer$/m);
    expect(result.stdout).toMatch(/^summary: 3 village\(s\): 1 started, 1 offline, 1 no answer$/m);
    expect(result.code).toBe(3);
  });

  it('county watch prints readable lines for what villages send and acks each with a signed ack', async () => {
    const key = join(keyDir, 'county-test.private.jwk.json');
    const watcher = startWatch('--key', key, '--ack', '--broker', brokerUrl, '--protocol', String(protocolVersion));
    await watcher.waitFor((l) => / watching /.test(l));
    app.devices.simulated('column-1')!.press();
    await watcher.waitFor((l) => / cli-village ALARM button at column-1, raised \S+; presses 1, attempt 1; id \S+$/.test(l));
    await watcher.waitFor((l) => / cli-village ack sent for alarm \S+ \(ack-/.test(l));
    await waitFor("column 1 to show 'received'", () => app.devices.simulated('column-1')!.indicator === 'received', CLI_WAIT_MS);
    // The announce tests' reports, which announce does not ack, are acked here too: sent again now rather
    // than at their next retry, so that the next test's desk sees only what it causes itself.
    outbox.rescheduleAll(Date.now());
    await waitFor('an empty outbox', async () => (await app.status()).health.outbox.depth === 0, 15_000);
    await watcher.stop();
  });

  it('county watch shows the acks a village refuses, and does not answer the refusal with an ack refused the same way', async () => {
    const stranger = join(keyDir, 'county-stranger.private.jwk.json');
    const watcher = startWatch('--key', stranger, '--ack', '--broker', brokerUrl, '--protocol', String(protocolVersion));
    await watcher.waitFor((l) => / watching /.test(l));
    app.devices.simulated('column-1')!.press();
    await watcher.waitFor((l) => / cli-village ack sent for alarm /.test(l));
    await watcher.waitFor((l) => / cli-village ACK REJECTED: the village does not know this desk's key county-stranger/.test(l));
    await watcher.waitFor((l) => / cli-village left unacked: an ack signed with the same key would be refused the same way$/.test(l));
    expect(watcher.lines.filter((l) => / ack sent for report /.test(l))).toEqual([]);
    await watcher.stop();
  });

  it('county watch acks a refusal of its ack once, and never the refusal of that answer', async () => {
    const prefix = 'cli-desk';
    const watcher = startWatch(
      '--key',
      join(keyDir, 'county-test.private.jwk.json'),
      '--ack',
      '--prefix',
      prefix,
      '--broker',
      brokerUrl,
      '--protocol',
      String(protocolVersion),
    );
    await watcher.waitFor((l) => / watching /.test(l));
    const village = await mqtt.connectAsync(brokerUrl, { protocolVersion });
    cleanups.push(() => village.endAsync());
    const publish = (kind: string, payload: object) => village.publishAsync(`${prefix}/desk-v/${kind}`, JSON.stringify(payload), { qos: 1 });

    const alarmId = randomUUID();
    await publish('alarm', fakeAlarm(alarmId));
    const firstAck = /ack sent for alarm \S+ \((ack-\S+)\)/.exec(await watcher.waitFor((l) => l.includes(`ack sent for alarm ${alarmId}`)))![1]!;

    // The village refuses that ack (genuinely signed, so the report names its jti).
    const refusal = fakeRejection(firstAck, 1);
    await publish('report', refusal);
    await watcher.waitFor((l) => l.includes(`desk-v ACK REJECTED: the village refused this desk's ack of alarm ${alarmId}`));
    const secondAck = /ack sent for report \S+ \((ack-\S+)\)/.exec(
      await watcher.waitFor((l) => l.includes(`ack sent for report ${refusal.id}`)),
    )![1]!;

    // A copy of the same refusal is not acked again, nor is the refusal of the answer to it.
    await publish('report', { ...refusal, attempt: 2 });
    await watcher.waitFor((l) => / desk-v left unacked: this rejection was acked once already$/.test(l));
    await publish('report', fakeRejection(secondAck, 2));
    await watcher.waitFor((l) => / desk-v left unacked: the refused ack was itself the answer to a refusal/.test(l));
    expect(watcher.lines.filter((l) => / ack sent for /.test(l))).toHaveLength(2);
    await watcher.stop();
  });

  it('county watch --json prints the raw stream, one JSON object a line', async () => {
    const prefix = 'cli-json';
    const watcher = startWatch('--json', '--prefix', prefix, '--broker', brokerUrl, '--protocol', String(protocolVersion));
    const village = await mqtt.connectAsync(brokerUrl, { protocolVersion });
    cleanups.push(() => village.endAsync());
    const alarm = fakeAlarm(randomUUID());
    // No "watching" line in JSON: publish until the watcher, subscribing in the background, hears one.
    const line = await watcher.waitFor(
      (l) => l.includes(alarm.id),
      10_000,
      () => village.publishAsync(`${prefix}/desk-v/alarm`, JSON.stringify(alarm), { qos: 1 }),
    );
    expect(JSON.parse(line)).toMatchObject({ village: 'desk-v', kind: 'alarm', payload: alarm });
    expect(watcher.lines.every((l) => typeof JSON.parse(l) === 'object')).toBe(true);
    await watcher.stop();
  });

  describe('schedule and county time', () => {
    // A prefix of its own: a retained message on {prefix}/all/… would otherwise reach other files' villages.
    const prefix = 'cli-schedule';
    const broker = ['--broker', brokerUrl, '--protocol', String(protocolVersion), '--prefix', prefix];
    const key = () => join(keyDir, 'county-test.private.jwk.json');
    const retainedTopics = new Set<string>();
    afterAll(async () => {
      const county = await mqtt.connectAsync(brokerUrl, { protocolVersion });
      for (const topic of retainedTopics) await county.publishAsync(topic, '', { qos: 1, retain: true });
      await county.endAsync();
    });

    it('schedule publishes a signed schedule, retained, for one village or all; --show prints the one a village runs', async () => {
      const file = join(keyDir, 'schedule.json');
      const own = `${prefix}/sched-village/cmd/schedule`;
      const all = `${prefix}/all/cmd/schedule`;
      retainedTopics.add(own).add(all);
      writeFileSync(file, JSON.stringify(sampleSchedule(3, { version: 7 })));
      const sent = await runCli('schedule', '--key', key(), '--village', 'sched-village', '--file', file, ...broker);
      expect([sent.code, sent.stderr]).toEqual([0, '']);
      expect(sent.stdout.trim()).toMatch(
        new RegExp(`^published schedule version 7 \\(3 programme\\(s\\), \\d+ bytes, county-\\d{8}-[0-9a-f]{8}\\) to ${own}, retained$`),
      );
      writeFileSync(file, JSON.stringify(sampleSchedule(2, { version: 4 })));
      expect((await runCli('schedule', '--key', key(), '--all', '--file', file, ...broker)).code).toBe(0);

      // Published before anyone subscribed: the broker kept them, retained.
      const [ownCopy] = await mosquittoSub(own);
      expect(ownCopy?.retained).toBe(true);
      const claims = scheduleCommandSchema.parse(verifiedClaims(ownCopy!.payload, entry));
      expect([claims.aud, claims.exp, claims.schedule.version, claims.schedule.programmes.length]).toEqual(['sched-village', undefined, 7, 3]);
      const [allCopy] = await mosquittoSub(all);
      expect(allCopy?.retained).toBe(true);
      expect(scheduleCommandSchema.parse(verifiedClaims(allCopy!.payload, entry))).toMatchObject({ aud: 'all', schedule: { version: 4 } });

      const publicKey = join(keyDir, 'county-test.public.jwk.json');
      const shown = await runCli('schedule', '--show', '--village', 'sched-village', '--public-key', publicKey, ...broker);
      expect([shown.code, shown.stderr]).toEqual([0, '']);
      const lines = shown.stdout.trimEnd().split('\n');
      expect(lines.slice(0, 4)).toEqual([
        `schedule version 7 from ${own} (sched-village's own), for sched-village`,
        `signed by kid county-test, issued ${new Date(claims.iat * 1000).toISOString().replace('.000Z', 'Z')}, jti ${claims.jti}; signature verified with county-test.public.jwk.json`,
        'timezone Asia/Shanghai, quiet hours 22:00–06:30',
        '3 programme(s):',
      ]);
      expect(lines.slice(4, 7)).toEqual([
        expect.stringMatching(/^ {2}programme-1 {2}"0 7 \* \* \*" {2}all zones {2}tts "1：各位村民请注意/),
        expect.stringMatching(/^ {2}programme-2 {2}"1 8 \* \* \*" {2}zones square,school {2}tts /),
        expect.stringMatching(/^ {2}programme-3 {2}"2 9 \* \* \*" {2}zones square,school {2}tts /),
      ]);
      expect(lines[7]).toBe(`also retained on ${all}: version 4, not used by sched-village while its own is retained`);
      // A village without one of its own runs the one for all villages; a stranger's key does not verify it.
      const other = await runCli(
        'schedule',
        '--show',
        '--village',
        'sched-other',
        '--public-key',
        join(keyDir, 'county-stranger.public.jwk.json'),
        ...broker,
      );
      expect(other.stdout).toContain(`schedule version 4 from ${all} (every village without its own), for all`);
      expect(other.stdout).toContain('signature NOT checked: county-stranger.public.jwk.json is kid county-stranger, not county-test');
    });

    it('schedule refuses a bad document before signing anything: one line naming the field, exit 2', async () => {
      const file = join(keyDir, 'bad-schedule.json');
      const document = sampleSchedule(4);
      (document['programmes'] as Array<Record<string, unknown>>)[3]!['cron'] = '0 25 * * *';
      writeFileSync(file, JSON.stringify(document));
      const bad = await runCli('schedule', '--key', key(), '--village', 'sched-bad', '--file', file, ...broker);
      expect(bad.code).toBe(2);
      expect(bad.stdout).toBe('');
      expect(bad.stderr.trimEnd().split('\n')).toEqual([expect.stringMatching(new RegExp(`^schedule: --file ${file}: programmes\\[3\\]\\.cron: `))]);
      const unreadable = await runCli('schedule', '--key', key(), '--village', 'sched-bad', '--file', join(keyDir, 'missing.json'), ...broker);
      expect([unreadable.code, unreadable.stderr]).toEqual([2, expect.stringMatching(/^schedule: --file \S+missing\.json: cannot read it \(ENOENT/)]);
    });

    it('county time publishes the county time, retained, expiring in 120 s; --every keeps refreshing it until stopped', async () => {
      const topic = `${prefix}/all/cmd/time`;
      retainedTopics.add(topic);
      const once = await runCli('county', 'time', '--key', key(), ...broker);
      expect([once.code, once.stderr]).toEqual([0, '']);
      const [copy] = await mosquittoSub(topic);
      expect(copy?.retained).toBe(true);
      const claims = timeCommandSchema.parse(verifiedClaims(copy!.payload, entry));
      expect([claims.aud, claims.cmd, claims.exp - claims.iat]).toEqual(['all', 'time', 120]);
      expect(Math.abs(claims.iat * 1000 - Date.now())).toBeLessThan(60_000);

      const child = spawn(process.execPath, cliArgs('county', 'time', '--key', key(), '--every', '1', ...broker), { cwd: repoRoot });
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      cleanups.push(async () => {
        if (child.exitCode === null) child.kill('SIGTERM');
        await exited;
      });
      const lines: string[] = [];
      createInterface({ input: child.stdout }).on('line', (line) => lines.push(line));
      await waitFor('the first publish', () => lines.some((l) => l.startsWith('published the time')), CLI_WAIT_MS);
      // The retained copy, then the next refresh: a second later, a newer iat.
      const [first, second] = await mosquittoSub(topic, 2);
      const iats = [first!, second!].map((m) => timeCommandSchema.parse(verifiedClaims(m.payload, entry)).iat);
      expect(iats[1]).toBeGreaterThan(iats[0]!);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      // One line for the first publish; the refreshes after it print nothing.
      expect(lines).toEqual([
        expect.stringMatching(new RegExp(`^published the time \\(iat \\d+\\) to ${topic}, retained; again every 1 s until stopped$`)),
      ]);
    });
  });

  it('county watch reconnects by itself after the broker connection drops', async () => {
    const target = new URL(brokerUrl);
    const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port) });
    cleanups.push(() => proxy.close());
    const prefix = 'cli-reconnect';
    const watcher = startWatch('--prefix', prefix, '--broker', proxy.url, '--protocol', String(protocolVersion));
    await watcher.waitFor((l) => / watching /.test(l));
    proxy.cutAll();
    await watcher.waitFor((l) => / connection to \S+ lost or refused; retrying every second$/.test(l));
    await watcher.waitFor((l) => / reconnected to /.test(l));
    const village = await mqtt.connectAsync(brokerUrl, { protocolVersion });
    cleanups.push(() => village.endAsync());
    const alarm = fakeAlarm(randomUUID());
    await village.publishAsync(`${prefix}/desk-v/alarm`, JSON.stringify(alarm), { qos: 1 });
    await watcher.waitFor((l) => l.includes(`desk-v ALARM button at column-9`) && l.includes(alarm.id));
    await watcher.stop();
  });
});
