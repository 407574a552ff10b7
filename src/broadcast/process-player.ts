import { spawn as nodeSpawn } from 'node:child_process';
import { realpath, stat } from 'node:fs/promises';
import { extname, isAbsolute, relative, resolve, sep } from 'node:path';
import type { BroadcastConfig } from '../config/schema.ts';
import type { Logger } from '../platform/logger.ts';
import type { Readable } from 'node:stream';
import { launchGroup, type GroupProcess, type ProcessEnd, type SpawnProcess } from './process-group.ts';
import type { Content } from '../contract/vocabulary.ts';
import { sha256OfFile } from '../platform/file-hash.ts';
import type { PlayJob, PlayOutcome, Player, PlayerRun } from './types.ts';

export type { SpawnProcess } from './process-group.ts';

export interface ProcessPlayerOptions {
  templates: BroadcastConfig['player'];
  /** The media library folder, already resolved by the caller (the config says: relative to the config file). */
  library: string;
  /** The ALSA output device, put in for `{device}` in every template (`broadcast.output.device`). */
  device: string;
  logger: Logger;
  spawn?: SpawnProcess;
  /**
   * Longest wait for the volume command before playing anyway. Mixers answer in milliseconds; a hung one
   * must not hold an emergency back for more than a moment.
   */
  volumeTimeoutMs?: number;
}

const defaultVolumeTimeoutMs = 3000;

interface RunContext {
  templates: BroadcastConfig['player'];
  device: string;
  libraryRoot: string;
  log: Logger;
  spawn: SpawnProcess;
  volumeTimeoutMs: number;
}

/** One argv, or a pipeline of two (the tts engine's stdout into the output command). */
type Prepared = { ok: true; argvs: string[][] } | { ok: false; reason: string };

/**
 * Plays each job with an external command built from the configured argv templates (never a shell).
 * Media files are checked against their sha256 before anything starts.
 */
export function createProcessPlayer(options: ProcessPlayerOptions): Player {
  const context: RunContext = {
    templates: options.templates,
    device: options.device,
    libraryRoot: resolve(options.library),
    log: options.logger.child({ component: 'player' }),
    spawn: options.spawn ?? nodeSpawn,
    volumeTimeoutMs: options.volumeTimeoutMs ?? defaultVolumeTimeoutMs,
  };
  return { start: (job) => startRun(job, context) };
}

function startRun(job: PlayJob, context: RunContext): PlayerRun {
  const stopping = new AbortController();
  let markStarted: (started: boolean) => void = () => undefined;
  const started = new Promise<boolean>((resolve) => {
    markStarted = resolve;
  });
  const done = play(job, context, stopping.signal, () => markStarted(true)).catch((error: unknown): PlayOutcome => {
    // Only a bug gets here; the controller must still get an outcome rather than a rejection.
    context.log.error({ err: error }, 'player run failed unexpectedly');
    return { outcome: 'failed', reason: `player error: ${error instanceof Error ? error.message : String(error)}` };
  });
  // A run that ended without ever starting its process never made a sound (the first call wins).
  void done.then(() => markStarted(false));
  return {
    started,
    done,
    stop: () => {
      stopping.abort();
      return done.then(() => undefined);
    },
  };
}

async function play(job: PlayJob, context: RunContext, stopSignal: AbortSignal, onPlaying: () => void): Promise<PlayOutcome> {
  const { log, templates } = context;
  const startedAt = Date.now();
  const facts: Record<string, unknown> = { content: job.content.kind };
  if (job.content.kind === 'media') facts['file'] = job.content.file;
  const end = (outcome: PlayOutcome): PlayOutcome => {
    const fields = { ...facts, outcome: outcome.outcome, durationMs: Date.now() - startedAt };
    if (outcome.outcome === 'failed') log.warn({ ...fields, reason: outcome.reason }, 'player ended');
    else log.info(fields, 'player ended');
    return outcome;
  };

  const prepared = await prepare(job.content, context, stopSignal);
  if (stopSignal.aborted) return end({ outcome: 'stopped' });
  if (!prepared.ok) return end({ outcome: 'failed', reason: prepared.reason });

  if (templates.volume !== undefined) await setVolume(templates.volume, job.volume, context, stopSignal);
  if (stopSignal.aborted) return end({ outcome: 'stopped' });

  const command = prepared.argvs.map((argv) => argv[0] ?? '').join(' | ');
  const run = await runBounded(prepared.argvs, templates.maxRunMs, context, stopSignal, (pids) => {
    facts['pid'] = pids[0];
    if (pids.length > 1) facts['pids'] = pids;
    facts['command'] = command;
    log.info(facts, 'player started');
    onPlaying();
  });
  const notStarted = run.ends.find((e) => e.end.startError !== undefined);
  if (notStarted?.end.startError !== undefined)
    return end({ outcome: 'failed', reason: startFailure(notStarted.command, notStarted.end.startError) });
  const abandoned = run.ends.some((e) => e.end.abandoned) ? abandonedNote({ abandoned: true }) : '';
  if (run.overran) return end({ outcome: 'failed', reason: `player ran over maxRunMs (${templates.maxRunMs} ms)${abandoned}` });
  if (run.stopped) return end(abandoned !== '' ? { outcome: 'failed', reason: `${command} was stopped${abandoned}` } : { outcome: 'stopped' });
  const failure = pipelineFailure(run.ends);
  return end(failure === undefined ? { outcome: 'finished' } : { outcome: 'failed', reason: failure });
}

/**
 * Every process of the pipeline that failed, in order; the engine's SIGPIPE is left out when the output
 * after it failed (it is only the echo of that failure: aplay could not open the device and went away).
 */
function pipelineFailure(ends: readonly { command: string; end: ProcessEnd }[]): string | undefined {
  const failures = ends.map((e, i) => {
    const failure = exitFailure(e.command, e.end);
    const echo = e.end.signal === 'SIGPIPE' && ends.slice(i + 1).some((later) => exitFailure(later.command, later.end) !== undefined);
    return echo ? undefined : failure;
  });
  const said = failures.filter((f): f is string => f !== undefined);
  return said.length === 0 ? undefined : said.join('; ');
}

/** Builds the argv, or says why nothing may start; no process is started here. */
async function prepare(content: Content, context: RunContext, stopSignal: AbortSignal): Promise<Prepared> {
  switch (content.kind) {
    case 'tts': {
      // `{device}` first: text that says "{device}" must stay text.
      const engine = fill('player.tts', withDevice(context.templates.tts, context.device), '{text}', content.text);
      if (!engine.ok) return engine;
      const output = context.templates.ttsOutput;
      // The engine writes WAV to stdout and the output command plays it: when the device cannot be opened,
      // the output command fails, and so does the run (espeak-ng alone exits 0 without a sound card).
      return output === null ? engine : { ok: true, argvs: [...engine.argvs, withDevice(output, context.device)] };
    }
    case 'media':
      return prepareMedia(content, context, stopSignal);
  }
}

async function prepareMedia(content: Extract<Content, { kind: 'media' }>, context: RunContext, stopSignal: AbortSignal): Promise<Prepared> {
  const { file } = content;
  const extension = extname(file).toLowerCase();
  const template = context.templates.media[extension];
  if (template === undefined) return { ok: false, reason: `no player for extension "${extension || '(none)'}" (${file})` };

  const located = await locateInLibrary(context.libraryRoot, file);
  if (!located.ok) return located;

  const expected = content.sha256.toLowerCase();
  let actual: string;
  try {
    actual = await sha256OfFile(located.path, stopSignal);
  } catch (error) {
    return { ok: false, reason: `cannot read media file ${file}: ${errorCode(error)}` };
  }
  if (actual !== expected) return { ok: false, reason: `sha256 mismatch for ${file}: expected ${expected}, got ${actual}` };

  return fill(`player.media["${extension}"]`, withDevice(template, context.device), '{file}', located.path);
}

/** `{device}` where a template names it; templates without it play wherever their command plays. */
function withDevice(argv: readonly string[], device: string): string[] {
  return argv.map((arg) => arg.split('{device}').join(device));
}

/**
 * The schema already refuses `..` and absolute names; this is the second line, and the only one against
 * symlinks: both the library and the file are resolved to real paths before comparing.
 */
async function locateInLibrary(libraryRoot: string, file: string): Promise<{ ok: true; path: string } | { ok: false; reason: string }> {
  const escapes = { ok: false, reason: `media file is outside the library: ${file}` } as const;
  if (!isInside(libraryRoot, resolve(libraryRoot, file))) return escapes;
  let root: string;
  try {
    root = await realpath(libraryRoot);
  } catch {
    return { ok: false, reason: `media library not found: ${libraryRoot}` };
  }
  let path: string;
  try {
    path = await realpath(resolve(root, file));
  } catch (error) {
    const code = errorCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return { ok: false, reason: `media file not found: ${file}` };
    return { ok: false, reason: `cannot open media file ${file}: ${code}` };
  }
  if (!isInside(root, path)) return escapes;
  try {
    if (!(await stat(path)).isFile()) return { ok: false, reason: `media file is not a regular file: ${file}` };
  } catch (error) {
    return { ok: false, reason: `cannot open media file ${file}: ${errorCode(error)}` };
  }
  return { ok: true, path };
}

function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

/**
 * Split/join, not String.replace: a replacement string interprets `$&`, `$'` and `` $` ``, which would let
 * announcement text rewrite itself. The value is inserted once and never re-scanned.
 */
function fill(name: string, template: readonly string[], placeholder: string, value: string): Prepared {
  if (!template.some((arg) => arg.includes(placeholder))) return { ok: false, reason: `${name} has no ${placeholder} placeholder` };
  return { ok: true, argvs: [template.map((arg) => arg.split(placeholder).join(value))] };
}

/**
 * Runs the volume command before the item. Its failure (or a hang, cut short after volumeTimeoutMs) is
 * logged and the item plays anyway: in an emergency a wrong volume is better than silence.
 */
async function setVolume(template: readonly string[], volume: number, context: RunContext, stopSignal: AbortSignal): Promise<void> {
  const level = String(Math.min(100, Math.max(0, Math.round(volume))));
  const filled = fill('player.volume', withDevice(template, context.device), '{volume}', level);
  if (!filled.ok) {
    context.log.warn({ volume: level, reason: filled.reason }, 'volume not set; playing anyway');
    return;
  }
  const argvs = filled.argvs;
  const command = argvs[0]?.[0] ?? '';
  const run = await runBounded(argvs, context.volumeTimeoutMs, context, stopSignal, () => undefined);
  if (stopSignal.aborted) return;
  const only = run.ends[0]?.end;
  const reason =
    only === undefined
      ? 'not run'
      : only.startError !== undefined
        ? startFailure(command, only.startError)
        : run.overran
          ? `${command} ran over ${context.volumeTimeoutMs} ms${abandonedNote(only)}`
          : exitFailure(command, only);
  if (reason === undefined) context.log.debug({ command, volume: level }, 'volume set');
  else context.log.warn({ command, volume: level, reason }, 'volume not set; playing anyway');
}

/**
 * One process, or a pipeline (each process's stdout into the next one's stdin, no shell), stopped by the
 * stop signal or after `limitMs`, whichever comes first. `onStarted` is called once every process is spawned.
 */
async function runBounded(
  argvs: readonly (readonly string[])[],
  limitMs: number,
  context: RunContext,
  stopSignal: AbortSignal,
  onStarted: (pids: number[]) => void,
): Promise<{ ends: { command: string; end: ProcessEnd }[]; overran: boolean; stopped: boolean }> {
  const children: { command: string; process: GroupProcess }[] = [];
  let upstream: Readable | undefined;
  for (const [i, argv] of argvs.entries()) {
    const feeds = i < argvs.length - 1;
    const child = launchGroup(context.spawn, argv, context.templates.killTimeoutMs, {
      ...(upstream === undefined ? {} : { stdin: upstream }),
      ...(feeds ? { stdout: 'pipe' } : {}),
    });
    // The next process holds its own copy of the pipe; ours would only keep it open (and could steal its bytes).
    upstream?.destroy();
    children.push({ command: argv[0] ?? '', process: child });
    if (child.pid === undefined) break;
    upstream = child.stdout;
  }
  const terminateAll = (): void => {
    for (const child of children) void child.process.terminate();
  };
  const pids = children.flatMap((c) => (c.process.pid === undefined ? [] : [c.process.pid]));
  // Half a pipeline makes no sound: what did start is stopped, and the one that did not says why.
  if (pids.length < argvs.length) terminateAll();
  else onStarted(pids);
  // Whichever asked first names the outcome (a preempt after an overrun does not hide the overrun), and
  // only if it had to be killed: one that ended by itself meanwhile is judged by its own exit.
  let cause: 'stop' | 'overrun' | undefined;
  const onStop = (): void => {
    cause ??= 'stop';
    terminateAll();
  };
  stopSignal.addEventListener('abort', onStop, { once: true });
  const guard = setTimeout(() => {
    cause ??= 'overrun';
    terminateAll();
  }, limitMs);
  try {
    const ends = await Promise.all(children.map(async (c) => ({ command: c.command, end: await c.process.ended })));
    const terminated = ends.some((e) => e.end.terminated);
    return { ends, overran: cause === 'overrun' && terminated, stopped: cause === 'stop' && terminated };
  } finally {
    clearTimeout(guard);
    stopSignal.removeEventListener('abort', onStop);
  }
}

function startFailure(command: string, error: NodeJS.ErrnoException): string {
  if (error.code === 'ENOENT') return `command not found: ${command} (is it installed?)`;
  return `cannot start ${command}: ${error.code ?? error.message}`;
}

/** Undefined for a clean exit; otherwise the code or signal and the process's last words. */
function exitFailure(command: string, end: ProcessEnd): string | undefined {
  const said = end.lastStderrLine === '' ? '' : `: ${end.lastStderrLine}`;
  if (end.signal !== null) return `${command} was killed by ${end.signal}${said}`;
  if (end.code !== 0) return `${command} exited with code ${end.code ?? 'unknown'}${said}`;
  return undefined;
}

function abandonedNote(end: Pick<ProcessEnd, 'abandoned'>): string {
  return end.abandoned ? '; it did not exit even after SIGKILL and was given up on' : '';
}

function errorCode(error: unknown): string {
  if (error instanceof Error) return (error as NodeJS.ErrnoException).code ?? error.message;
  return String(error);
}
