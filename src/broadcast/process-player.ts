import { spawn as nodeSpawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { extname, isAbsolute, relative, resolve, sep } from 'node:path';
import type { BroadcastConfig } from '../config/schema.ts';
import type { Logger } from '../platform/logger.ts';
import { launchGroup, type ProcessEnd, type SpawnProcess } from './process-group.ts';
import type { Content, PlayJob, PlayOutcome, Player, PlayerRun } from './types.ts';

export type { SpawnProcess } from './process-group.ts';

export interface ProcessPlayerOptions {
  templates: BroadcastConfig['player'];
  /** The media library folder, already resolved by the caller (the config says: relative to the config file). */
  library: string;
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
  libraryRoot: string;
  log: Logger;
  spawn: SpawnProcess;
  volumeTimeoutMs: number;
}

type Prepared = { ok: true; argv: string[] } | { ok: false; reason: string };

/**
 * Plays each job with an external command built from the configured argv templates (never a shell).
 * Media files are checked against their sha256 before anything starts.
 */
export function createProcessPlayer(options: ProcessPlayerOptions): Player {
  const context: RunContext = {
    templates: options.templates,
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

  const command = prepared.argv[0] ?? '';
  const run = await runBounded(prepared.argv, templates.maxRunMs, context, stopSignal, (pid) => {
    facts['pid'] = pid;
    facts['command'] = command;
    log.info(facts, 'player started');
    onPlaying();
  });
  if (run.end.startError !== undefined) return end({ outcome: 'failed', reason: startFailure(command, run.end.startError) });
  if (run.overran) return end({ outcome: 'failed', reason: `player ran over maxRunMs (${templates.maxRunMs} ms)${abandonedNote(run.end)}` });
  if (run.end.terminated) {
    return end(run.end.abandoned ? { outcome: 'failed', reason: `${command} was stopped${abandonedNote(run.end)}` } : { outcome: 'stopped' });
  }
  const failure = exitFailure(command, run.end);
  return end(failure === undefined ? { outcome: 'finished' } : { outcome: 'failed', reason: failure });
}

/** Builds the argv, or says why nothing may start; no process is started here. */
async function prepare(content: Content, context: RunContext, stopSignal: AbortSignal): Promise<Prepared> {
  switch (content.kind) {
    case 'tts':
      return fill('player.tts', context.templates.tts, '{text}', content.text);
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
    actual = await sha256Of(located.path, stopSignal);
  } catch (error) {
    return { ok: false, reason: `cannot read media file ${file}: ${errorCode(error)}` };
  }
  if (actual !== expected) return { ok: false, reason: `sha256 mismatch for ${file}: expected ${expected}, got ${actual}` };

  return fill(`player.media["${extension}"]`, template, '{file}', located.path);
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

async function sha256Of(path: string, stopSignal: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  // Streamed, and abandoned on stop, so a long programme file costs neither memory nor a late stop.
  for await (const chunk of createReadStream(path, { signal: stopSignal })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Split/join, not String.replace: a replacement string interprets `$&`, `$'` and `` $` ``, which would let
 * announcement text rewrite itself. The value is inserted once and never re-scanned.
 */
function fill(name: string, template: readonly string[], placeholder: string, value: string): Prepared {
  if (!template.some((arg) => arg.includes(placeholder))) return { ok: false, reason: `${name} has no ${placeholder} placeholder` };
  return { ok: true, argv: template.map((arg) => arg.split(placeholder).join(value)) };
}

/**
 * Runs the volume command before the item. Its failure (or a hang, cut short after volumeTimeoutMs) is
 * logged and the item plays anyway: in an emergency a wrong volume is better than silence.
 */
async function setVolume(template: readonly string[], volume: number, context: RunContext, stopSignal: AbortSignal): Promise<void> {
  const level = String(Math.min(100, Math.max(0, Math.round(volume))));
  const filled = fill('player.volume', template, '{volume}', level);
  if (!filled.ok) {
    context.log.warn({ volume: level, reason: filled.reason }, 'volume not set; playing anyway');
    return;
  }
  const command = filled.argv[0] ?? '';
  const run = await runBounded(filled.argv, context.volumeTimeoutMs, context, stopSignal, () => undefined);
  if (stopSignal.aborted) return;
  const reason =
    run.end.startError !== undefined
      ? startFailure(command, run.end.startError)
      : run.overran
        ? `${command} ran over ${context.volumeTimeoutMs} ms${abandonedNote(run.end)}`
        : exitFailure(command, run.end);
  if (reason === undefined) context.log.debug({ command, volume: level }, 'volume set');
  else context.log.warn({ command, volume: level, reason }, 'volume not set; playing anyway');
}

/** One process, stopped by the stop signal or after `limitMs`, whichever comes first. */
async function runBounded(
  argv: readonly string[],
  limitMs: number,
  context: RunContext,
  stopSignal: AbortSignal,
  onStarted: (pid: number) => void,
): Promise<{ end: ProcessEnd; overran: boolean }> {
  const child = launchGroup(context.spawn, argv, context.templates.killTimeoutMs);
  if (child.pid !== undefined) onStarted(child.pid);
  // Whichever asked first names the outcome (a preempt after an overrun does not hide the overrun), and
  // only if it had to be killed: one that ended by itself meanwhile is judged by its own exit.
  let cause: 'stop' | 'overrun' | undefined;
  const onStop = (): void => {
    cause ??= 'stop';
    void child.terminate();
  };
  stopSignal.addEventListener('abort', onStop, { once: true });
  const guard = setTimeout(() => {
    cause ??= 'overrun';
    void child.terminate();
  }, limitMs);
  try {
    const end = await child.ended;
    return { end, overran: cause === 'overrun' && end.terminated };
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

function abandonedNote(end: ProcessEnd): string {
  return end.abandoned ? '; it did not exit even after SIGKILL and was given up on' : '';
}

function errorCode(error: unknown): string {
  if (error instanceof Error) return (error as NodeJS.ErrnoException).code ?? error.message;
  return String(error);
}
