import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createProcessPlayer, type ProcessPlayerOptions } from '../../src/broadcast/process-player.ts';
import { createProcessOutput } from '../../src/broadcast/process-output.ts';
import type { Content } from '../../src/contract/vocabulary.ts';
import type { BroadcastConfig } from '../../src/config/schema.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { waitFor } from '../support/wait.ts';

// Real players, to null sinks. A missing tool skips its test on a developer's machine, never under CI.
const installed = (tool: string): boolean => spawnSync('sh', ['-c', 'command -v "$1"', 'sh', tool]).status === 0;
const withTools = (...tools: string[]) => it.skipIf(!process.env['CI'] && !tools.every(installed));

// `--` ends espeak-ng's options: without it, announcement text that starts with "-" is read as an option.
const espeak = ['espeak-ng', '-v', 'cmn', '-w', '/dev/null', '--', '{text}'];
const killTimeoutMs = 300;

function templates(overrides: Partial<BroadcastConfig['player']> = {}): BroadcastConfig['player'] {
  return {
    tts: espeak,
    ttsOutput: null,
    media: { '.wav': ['aplay', '-q', '-D', 'null', '{file}'], '.mp3': ['mpg123', '-q', '-o', 'dummy', '{file}'] },
    killTimeoutMs,
    maxRunMs: 10_000,
    ...overrides,
  };
}

/** Real spawn, recording every argv, so a test can prove what ran, in which order — or that nothing did. */
function recordingSpawn(): { spawn: (command: string, args: readonly string[], options: SpawnOptions) => ChildProcess; runs: string[][] } {
  const runs: string[][] = [];
  return {
    runs,
    spawn: (command, args, options) => {
      runs.push([command, ...args]);
      return spawn(command, args, options);
    },
  };
}

function player(overrides: Partial<BroadcastConfig['player']> = {}, extra: Partial<ProcessPlayerOptions> = {}) {
  const { logger, lines } = memoryLogger();
  const recorder = recordingSpawn();
  const instance = createProcessPlayer({ templates: templates(overrides), library, device: 'null', logger, spawn: recorder.spawn, ...extra });
  return { player: instance, lines, runs: recorder.runs };
}

const sh = (script: string): Partial<BroadcastConfig['player']> => ({ tts: ['sh', '-c', script, 'sh', '{text}'] });
const say = (text = '紧急通知'): { content: Content; volume: number } => ({ content: { kind: 'tts', text }, volume: 80 });
const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');
function media(file: string, digest = sha256(join(library, file))): { content: Content; volume: number } {
  return { content: { kind: 'media', file, sha256: digest }, volume: 80 };
}

/** Dead for good: no such pid, or a zombie (PID 1 on the test machine does not reap orphans; systemd does). */
function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/** An orphan closes its pipes a moment before the kernel marks it a zombie: allow for that moment. */
async function expectGone(pid: number): Promise<void> {
  await waitFor(`process ${pid} gone`, () => isGone(pid), 500);
}

async function readPid(path: string): Promise<number> {
  await waitFor(`the pid file ${path}`, () => existsSync(path), 2000);
  return Number(readFileSync(path, 'utf8').trim());
}

function startedPid(lines: ReturnType<typeof memoryLogger>['lines']): number {
  const started = lines.find((l) => l.msg === 'player started');
  expect(started).toBeDefined();
  return started!['pid'] as number;
}

let dir = '';
let library = '';
let mp3Source = '';

/** sox with mp3 support or lame when the machine has one; otherwise silent MPEG-1 Layer III frames made here. */
function makeMp3(wav: string, mp3: string): string {
  if (/\bmp3\b/.test(spawnSync('sox', ['-h'], { encoding: 'utf8' }).stdout ?? '') && spawnSync('sox', [wav, mp3]).status === 0) return 'sox';
  if (installed('lame') && spawnSync('lame', ['--quiet', wav, mp3]).status === 0) return 'lame';
  // Header FFFB 90 C0: MPEG-1 layer III, 128 kbit/s, 44.1 kHz, mono, 417-byte frames; all-zero side info
  // and main data decode to silence. 80 frames ≈ 2 s.
  const frame = Buffer.concat([Buffer.from([0xff, 0xfb, 0x90, 0xc0]), Buffer.alloc(413)]);
  writeFileSync(mp3, Buffer.concat(Array.from({ length: 80 }, () => frame)));
  return 'hand-made silent frames (no mp3 encoder installed)';
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 've-player-'));
  library = join(dir, 'library');
  mkdirSync(join(library, 'chimes'), { recursive: true });
  if (installed('espeak-ng')) {
    expect(spawnSync('espeak-ng', ['-v', 'cmn', '-w', join(library, 'notice.wav'), '村委会广播测试']).status).toBe(0);
    mp3Source = makeMp3(join(library, 'notice.wav'), join(library, 'notice.mp3'));
  }
  // Bytes that no process may ever be started for.
  writeFileSync(join(library, 'chimes', 'ding.wav'), 'not really audio');
  writeFileSync(join(library, 'README'), 'x');
  writeFileSync(join(library, 'corrupt.wav'), Buffer.alloc(3000, 7));
  writeFileSync(join(dir, 'secret.wav'), 'outside the library');
  symlinkSync(join(dir, 'secret.wav'), join(library, 'sneaky.wav'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('process player: real players to null sinks', () => {
  withTools('espeak-ng')('speaks Chinese text with espeak-ng and logs the start without the text', async () => {
    const { player: p, lines } = player();
    const text = '各位村民请注意：今晚有暴雨，请转移到安全地点。';
    expect(await p.start(say(text)).done).toEqual({ outcome: 'finished' });
    expect(lines.find((l) => l.msg === 'player started')).toMatchObject({ command: 'espeak-ng', content: 'tts', pid: expect.any(Number) });
    expect(lines.find((l) => l.msg === 'player ended')).toMatchObject({ outcome: 'finished', durationMs: expect.any(Number) });
    expect(JSON.stringify(lines)).not.toContain('暴雨');
  });

  withTools('espeak-ng')('passes the text as one argument: quotes, ;, $(...), backticks, $& and newlines stay text', async () => {
    const out = join(dir, 'argv.json');
    const text = `他说"快走" 'now'; touch ${dir}/pwned1 $(touch ${dir}/pwned2) \`touch ${dir}/pwned3\` $HOME $& $' \n第二行 {file} {device} -v en`;
    const record = [
      process.execPath,
      '-e',
      'require("node:fs").writeFileSync(process.argv[1], JSON.stringify(process.argv.slice(2)))',
      out,
      '--say={text}',
      '{text}',
    ];
    const recorded = player({ tts: record });
    expect(await recorded.player.start(say(text)).done).toEqual({ outcome: 'finished' });
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual([`--say=${text}`, text]);
    // The same text through the real engine, including one that starts with "-" (safe behind `--`).
    const real = player();
    expect(await real.player.start(say(text)).done).toEqual({ outcome: 'finished' });
    expect(await real.player.start(say('-v en 紧急')).done).toEqual({ outcome: 'finished' });
    for (const n of [1, 2, 3]) expect(existsSync(join(dir, `pwned${n}`))).toBe(false);
  });

  withTools('espeak-ng', 'aplay')('plays a wav with aplay, given the absolute path', async () => {
    const { player: p, runs } = player();
    const run = p.start(media('notice.wav'));
    expect(await run.started).toBe(true);
    expect(await run.done).toEqual({ outcome: 'finished' });
    expect(runs).toEqual([['aplay', '-q', '-D', 'null', join(library, 'notice.wav')]]);
  });

  withTools('espeak-ng', 'mpg123')(`plays an mp3 with mpg123 -o dummy`, async () => {
    const { player: p, runs } = player();
    expect(await p.start(media('notice.mp3')).done).toEqual({ outcome: 'finished' });
    expect(runs[0]?.[0]).toBe('mpg123');
    // mpg123 also exits 0 on bytes that are not mp3 at all, so check that the fixture really is one.
    expect(spawnSync('mpg123', ['-t', join(library, 'notice.mp3')], { encoding: 'utf8' }).stderr).toMatch(/MPEG \S+ L III/);
    console.info(`mp3 fixture made by: ${mp3Source}`);
  });

  withTools('espeak-ng', 'mpg123')('stops a real player that would never exit (mpg123 with no output module)', async () => {
    // Without a sound card, plain `mpg123 -q` (the schema's default .mp3 template) never finishes.
    const { player: p, lines } = player({ media: { '.mp3': ['mpg123', '-q', '{file}'] } });
    const run = p.start(media('notice.mp3'));
    await waitFor('the player started', () => lines.some((l) => l.msg === 'player started'));
    const pid = startedPid(lines);
    const asked = Date.now();
    await run.stop();
    expect(Date.now() - asked).toBeLessThan(killTimeoutMs + 500);
    expect(await run.done).toEqual({ outcome: 'stopped' });
    expect(() => process.kill(pid, 0)).toThrow();
  });

  withTools('sox')('reports a real player failure with its exit code and last stderr line', async () => {
    const { player: p } = player({ media: { '.wav': ['sox', '-q', '{file}', '-n'] } });
    const outcome = await p.start(media('corrupt.wav')).done;
    expect(outcome).toEqual({ outcome: 'failed', reason: expect.stringMatching(/^sox exited with code 2: .*corrupt\.wav.*RIFF header not found/) });
  });
});

describe('process player: the tts pipeline fails when the output does', () => {
  // The shipped default: espeak-ng writes WAV to stdout, aplay plays it on {device} (two processes, no shell).
  const pipeline = { tts: ['espeak-ng', '-v', 'cmn', '--stdout', '--', '{text}'], ttsOutput: ['aplay', '-q', '-D', '{device}'] };

  withTools('espeak-ng', 'aplay')('plays through a device that opens (ALSA null)', async () => {
    const { player: p, runs, lines } = player(pipeline);
    const run = p.start(say('各位村民请注意'));
    expect(await run.started).toBe(true);
    expect(await run.done).toEqual({ outcome: 'finished' });
    expect(runs).toEqual([pipeline.tts.map((a) => (a === '{text}' ? '各位村民请注意' : a)), ['aplay', '-q', '-D', 'null']]);
    expect(lines.find((l) => l.msg === 'player started')).toMatchObject({
      command: 'espeak-ng | aplay',
      pids: [expect.any(Number), expect.any(Number)],
    });
  });

  withTools('espeak-ng', 'aplay')('fails with the output\'s reason on a device that does not open (no sound card: "default")', async () => {
    // espeak-ng alone exits 0 here and would have been reported finished.
    expect(spawnSync('espeak-ng', ['-v', 'cmn', '紧急通知']).status).toBe(0);
    const { logger } = memoryLogger();
    const p = createProcessPlayer({ templates: templates(pipeline), library, device: 'default', logger });
    expect(await p.start(say()).done).toEqual({
      outcome: 'failed',
      reason: expect.stringMatching(/^aplay exited with code 1: aplay: main:\d+: audio open error/),
    });
    // And a media file on the same device.
    const wav = createProcessPlayer({
      templates: templates({ media: { '.wav': ['aplay', '-q', '-D', '{device}', '{file}'] } }),
      library,
      device: 'default',
      logger,
    });
    expect(await wav.start(media('notice.wav')).done).toEqual({
      outcome: 'failed',
      reason: expect.stringMatching(/^aplay exited with code 1: .*audio open error/),
    });
  });

  withTools('espeak-ng', 'mpg123')(
    'the shipped mp3 template (mpg123 -o alsa -a {device}) plays on a device that opens and fails on one that does not',
    async () => {
      const mp3 = { media: { '.mp3': ['mpg123', '-q', '-o', 'alsa', '-a', '{device}', '{file}'] } };
      const { logger } = memoryLogger();
      const good = createProcessPlayer({ templates: templates(mp3), library, device: 'null', logger });
      expect(await good.start(media('notice.mp3')).done).toEqual({ outcome: 'finished' });
      const bad = createProcessPlayer({ templates: templates(mp3), library, device: 'default', logger });
      expect(await bad.start(media('notice.mp3')).done).toEqual({
        outcome: 'failed',
        reason: expect.stringMatching(/^mpg123 exited with code 255: /),
      });
    },
  );

  it('names the engine when it fails, and stops both processes on stop()', async () => {
    const failing = player({
      tts: ['sh', '-c', 'echo "no voice cmn" >&2; exit 2', 'sh', '{text}'],
      ttsOutput: ['sh', '-c', 'cat > /dev/null', 'sh', '{device}'],
    });
    expect(await failing.player.start(say()).done).toEqual({ outcome: 'failed', reason: 'sh exited with code 2: no voice cmn' });
    const { player: p, lines } = player({
      tts: ['sh', '-c', 'exec sleep 30', 'sh', '{text}'],
      ttsOutput: ['sh', '-c', 'exec sleep 30', 'sh', '{device}'],
    });
    const run = p.start(say());
    expect(await run.started).toBe(true);
    const pids = lines.find((l) => l.msg === 'player started')?.['pids'] as number[];
    await run.stop();
    expect(await run.done).toEqual({ outcome: 'stopped' });
    for (const pid of pids) await expectGone(pid);
  });

  it('starts nothing of a pipeline whose output command is not installed, and says which', async () => {
    const { player: p, lines } = player({ tts: ['sh', '-c', 'exec sleep 30', 'sh', '{text}'], ttsOutput: ['no-such-aplay-xyz'] });
    const run = p.start(say());
    expect(await run.started).toBe(false);
    expect(await run.done).toEqual({ outcome: 'failed', reason: 'command not found: no-such-aplay-xyz (is it installed?)' });
    expect(lines.find((l) => l.msg === 'player started')).toBeUndefined();
  });
});

describe('audio output check: opens the configured device', () => {
  const output = (device: string, overrides: Partial<BroadcastConfig['output']> = {}) =>
    createProcessOutput({
      output: {
        device,
        check: ['aplay', '-q', '-D', '{device}', '-t', 'raw', '-f', 'S16_LE', '-r', '8000', '-c', '1', '-s', '1', '/dev/zero'],
        checkIntervalMs: 60_000,
        checkTimeoutMs: 2000,
        ...overrides,
      },
      killTimeoutMs,
      logger: memoryLogger().logger,
    });

  withTools('aplay')("ok for a device that opens, failed with ALSA's reason for one that does not", async () => {
    let asked = performance.now();
    expect(await output('null').check()).toEqual({ ok: true });
    const okMs = performance.now() - asked;
    asked = performance.now();
    expect(await output('default').check()).toEqual({
      ok: false,
      reason: expect.stringMatching(/^aplay exited with code 1: aplay: main:\d+: audio open error/),
    });
    console.info(`audio output check: ${okMs.toFixed(1)} ms (null), ${(performance.now() - asked).toFixed(1)} ms (default, no card)`);
  });

  it('fails a check that hangs, after checkTimeoutMs, and one whose command is missing', async () => {
    const asked = Date.now();
    expect(await output('x', { check: ['sh', '-c', 'exec sleep 30', 'sh', '{device}'], checkTimeoutMs: 300 }).check()).toEqual({
      ok: false,
      reason: 'sh did not open the device within 300 ms',
    });
    expect(Date.now() - asked).toBeLessThan(300 + killTimeoutMs + 500);
    expect(await output('x', { check: ['no-such-check-xyz', '{device}'] }).check()).toEqual({
      ok: false,
      reason: 'check command not found: no-such-check-xyz (is it installed?)',
    });
  });
});

describe('process player: media checks before anything starts', () => {
  // A volume template too: not even the volume command may run for a refused item.
  const refused = async (job: { content: Content; volume: number }, reason: string): Promise<void> => {
    const { player: p, runs, lines } = player({ volume: ['sh', '-c', 'exit 0', '{volume}'] });
    const run = p.start(job);
    expect(await run.done).toEqual({ outcome: 'failed', reason });
    // Nothing started, so the controller never reports `started` for it.
    expect(await run.started).toBe(false);
    expect(runs).toEqual([]);
    expect(lines.find((l) => l.msg === 'player ended')).toMatchObject({ outcome: 'failed', reason });
  };

  it('refuses a file whose sha256 does not match', async () => {
    const wrong = 'a'.repeat(64);
    const actual = sha256(join(library, 'chimes', 'ding.wav'));
    await refused(media('chimes/ding.wav', wrong), `sha256 mismatch for chimes/ding.wav: expected ${wrong}, got ${actual}`);
  });

  it('refuses a missing file', async () => {
    await refused(media('gone.wav', 'b'.repeat(64)), 'media file not found: gone.wav');
  });

  it('refuses paths that escape the library: .., absolute, and a symlink pointing out', async () => {
    const digest = sha256(join(dir, 'secret.wav'));
    await refused(media('../secret.wav', digest), 'media file is outside the library: ../secret.wav');
    await refused(media(join(dir, 'secret.wav'), digest), `media file is outside the library: ${join(dir, 'secret.wav')}`);
    await refused(media('sneaky.wav', digest), 'media file is outside the library: sneaky.wav');
  });

  it('refuses an extension with no template, and a file with none', async () => {
    await refused(media('notice.ogg', 'c'.repeat(64)), 'no player for extension ".ogg" (notice.ogg)');
    await refused(media('README'), 'no player for extension "(none)" (README)');
  });
});

describe('process player: failures are reported, never thrown or hung', () => {
  it('names a command that is not installed', async () => {
    const { player: p } = player({ tts: ['no-such-player-xyz', '{text}'] });
    const run = p.start(say());
    expect(await run.done).toEqual({ outcome: 'failed', reason: 'command not found: no-such-player-xyz (is it installed?)' });
    expect(await run.started).toBe(false);
  });

  it('reports a non-zero exit with its code and last stderr line', async () => {
    const { player: p } = player(sh('echo "opening device" >&2; echo "device busy" >&2; exit 3'));
    expect(await p.start(say()).done).toEqual({ outcome: 'failed', reason: 'sh exited with code 3: device busy' });
  });

  it('reports a signal it did not send', async () => {
    const { player: p } = player(sh('kill -SEGV $$'));
    expect(await p.start(say()).done).toEqual({ outcome: 'failed', reason: 'sh was killed by SIGSEGV' });
  });

  it('fails text that no argv can carry (a NUL byte) without throwing', async () => {
    const { player: p } = player();
    expect(await p.start(say('a\u0000b')).done).toMatchObject({ outcome: 'failed', reason: expect.stringMatching(/^cannot start espeak-ng/) });
  });
});

describe('process player: stop and the maxRunMs guard kill the real process', () => {
  it('stops a running player at once with SIGTERM', async () => {
    const { player: p, lines } = player(sh('exec sleep 30'));
    const run = p.start(say());
    await waitFor('the player started', () => lines.some((l) => l.msg === 'player started'));
    const pid = startedPid(lines);
    const asked = Date.now();
    await run.stop();
    expect(Date.now() - asked).toBeLessThan(killTimeoutMs);
    expect(await run.done).toEqual({ outcome: 'stopped' });
    expect(() => process.kill(pid, 0)).toThrow();
  });

  it('SIGKILLs the whole group after killTimeoutMs when SIGTERM is ignored', async () => {
    const pidFile = join(dir, 'term-ignored.pid');
    const { player: p, lines } = player(sh(`trap "" TERM; sleep 30 & echo $! > ${pidFile}; wait; wait`));
    const run = p.start(say());
    const background = await readPid(pidFile);
    const pid = startedPid(lines);
    const asked = Date.now();
    await run.stop();
    const took = Date.now() - asked;
    expect(took).toBeGreaterThanOrEqual(killTimeoutMs - 5);
    expect(took).toBeLessThan(killTimeoutMs + 500);
    expect(await run.done).toEqual({ outcome: 'stopped' });
    expect(() => process.kill(pid, 0)).toThrow();
    await expectGone(background);
  });

  it('leaves nothing of its group behind when the leader exits by itself', async () => {
    const pidFile = join(dir, 'leftover.pid');
    const { player: p } = player(sh(`sleep 30 & echo $! > ${pidFile}`));
    expect(await p.start(say()).done).toEqual({ outcome: 'finished' });
    await expectGone(await readPid(pidFile));
  });

  it('stop() twice, and after the end, resolves without error', async () => {
    const { player: p } = player(sh('exit 0'));
    const run = p.start(say());
    expect(await run.done).toEqual({ outcome: 'finished' });
    await Promise.all([run.stop(), run.stop()]);
    expect(await run.done).toEqual({ outcome: 'finished' });
  });

  it('gives up on a process that survives SIGKILL, so stop() still returns', async () => {
    // A process in uninterruptible sleep (a wedged USB sound card) outlives even SIGKILL. Simulated by
    // hiding the real child's exit: the sleep is really killed, but the player never hears of it.
    const real: ChildProcess[] = [];
    const deaf = (command: string, args: readonly string[], options: SpawnOptions): ChildProcess => {
      const child = spawn(command, args, options);
      real.push(child);
      return Object.assign(new EventEmitter(), { pid: child.pid, stderr: child.stderr }) as unknown as ChildProcess;
    };
    const { logger } = memoryLogger();
    const p = createProcessPlayer({ templates: templates({ tts: ['sleep', '30', '{text}'] }), library, device: 'null', logger, spawn: deaf });
    const run = p.start(say());
    await waitFor('the player spawned', () => real.length === 1);
    const asked = Date.now();
    await run.stop();
    const took = Date.now() - asked;
    expect(took).toBeGreaterThanOrEqual(2 * killTimeoutMs - 5);
    expect(took).toBeLessThan(2 * killTimeoutMs + 500);
    expect(await run.done).toEqual({ outcome: 'failed', reason: 'sleep was stopped; it did not exit even after SIGKILL and was given up on' });
    await expectGone(real[0]!.pid!);
  });

  it('kills a player that runs over maxRunMs and reports it failed', async () => {
    const { player: p, lines } = player({ ...sh('exec sleep 30'), maxRunMs: 1000 });
    const started = Date.now();
    const outcome = await p.start(say()).done;
    const took = Date.now() - started;
    expect(outcome).toEqual({ outcome: 'failed', reason: 'player ran over maxRunMs (1000 ms)' });
    expect(took).toBeGreaterThanOrEqual(990);
    expect(took).toBeLessThan(1000 + killTimeoutMs + 500);
    expect(() => process.kill(startedPid(lines), 0)).toThrow();
  });
});

describe('process player: volume', () => {
  withTools('espeak-ng')('runs the volume command to its end first, with {volume}', async () => {
    const marker = join(dir, 'volume-set');
    // The player speaks only if the (slow) volume command has already finished, and fails otherwise.
    const { player: p, runs } = player({
      volume: ['sh', '-c', `sleep 0.2; echo "$1" > ${marker}`, 'sh', '{volume}%'],
      tts: ['sh', '-c', `test "$(cat ${marker})" = 100% && exec espeak-ng -v cmn -w /dev/null -- "$1"`, 'sh', '{text}'],
    });
    expect(await p.start({ ...say(), volume: 100 }).done).toEqual({ outcome: 'finished' });
    expect(runs.map((argv) => argv.at(-1))).toEqual(['100%', '紧急通知']);
  });

  withTools('espeak-ng')('plays anyway when the volume command fails, is missing or hangs', async () => {
    const cases = [
      { volume: ['sh', '-c', 'echo "no mixer" >&2; exit 1', 'sh', '{volume}'], reason: 'sh exited with code 1: no mixer' },
      { volume: ['no-such-mixer', '{volume}'], reason: 'command not found: no-such-mixer (is it installed?)' },
      { volume: ['sleep', '30', '{volume}'], reason: 'sleep ran over 300 ms' },
    ];
    for (const { volume, reason } of cases) {
      const { player: p, runs, lines } = player({ volume }, { volumeTimeoutMs: 300 });
      expect(await p.start(say()).done).toEqual({ outcome: 'finished' });
      expect(runs.map((argv) => argv[0])).toEqual([volume[0], 'espeak-ng']);
      expect(lines.find((l) => l.msg === 'volume not set; playing anyway')).toMatchObject({ command: volume[0], volume: '80', reason });
    }
  });

  it('stop() during the volume command stops it and starts no player', async () => {
    const { player: p, runs } = player({ volume: ['sleep', '30', '{volume}'] });
    const run = p.start(say());
    await waitFor('the volume command started', () => runs.length === 1);
    await run.stop();
    expect(await run.done).toEqual({ outcome: 'stopped' });
    expect(runs.map((argv) => argv[0])).toEqual(['sleep']);
  });

  it('stop() right after start() starts nothing', async () => {
    const { player: p, runs } = player({ volume: ['sleep', '30', '{volume}'] });
    const run = p.start(say());
    await run.stop();
    expect(await run.done).toEqual({ outcome: 'stopped' });
    expect(runs).toEqual([]);
  });
});
