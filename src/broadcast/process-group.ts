import type { ChildProcess, SpawnOptions } from 'node:child_process';
import type { Readable } from 'node:stream';

/**
 * One external command run as the leader of its own process group, so that stopping it also stops whatever
 * it started (a template may be `sh -c 'espeak-ng --stdout … | aplay'`). Nothing here waits forever: an
 * exit is reported even for a process that survives SIGKILL (it is then given up on, and says so).
 */

/** The part of `child_process.spawn` used here; the real `spawn` fits, and tests can wrap it. */
export type SpawnProcess = (command: string, args: readonly string[], options: SpawnOptions) => ChildProcess;

export interface ProcessEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Why the command could not be started (`ENOENT`: not installed); code and signal are null then. */
  startError?: NodeJS.ErrnoException;
  /** We signalled it (stop or overrun) before it exited: its code or signal is ours, not its own failure. */
  terminated: boolean;
  /** Still there a kill timeout after SIGKILL (stuck in the kernel): given up on so the caller is not stuck too. */
  abandoned: boolean;
  /** The last non-empty line the process wrote on stderr, for the failure reason. */
  lastStderrLine: string;
}

export interface GroupProcess {
  /** Undefined when the command could not be started. */
  readonly pid: number | undefined;
  readonly ended: Promise<ProcessEnd>;
  /** SIGTERM to the group, SIGKILL after `killTimeoutMs`; idempotent; settles with `ended`. */
  terminate(): Promise<ProcessEnd>;
  /** Its stdout, when launched with `stdout: 'pipe'` (to feed the next process of a pipeline). */
  readonly stdout: Readable | undefined;
}

/** How a process of a pipeline is connected: stdin from the previous one's stdout, stdout to the next one. */
export interface GroupStdio {
  stdin?: Readable;
  stdout?: 'pipe';
}

/** After the leader exits, how long its stderr may stay open (held by an escaped descendant) before we stop reading. */
const stdioGraceMs = 250;
/** Enough for the last line of a chatty player (mpg123 without a sound card writes kilobytes of ALSA errors). */
const stderrTailBytes = 4096;
const maxReasonLineChars = 200;

export function launchGroup(spawn: SpawnProcess, argv: readonly string[], killTimeoutMs: number, stdio: GroupStdio = {}): GroupProcess {
  const [command = '', ...args] = argv;
  let child: ChildProcess;
  try {
    // No shell: every template element is one argument, whatever announcement text it now contains.
    // stdout is ignored (unless it feeds the next process) so a player that writes audio there can never
    // block on a full pipe.
    child = spawn(command, args, { detached: true, stdio: [stdio.stdin ?? 'ignore', stdio.stdout ?? 'ignore', 'pipe'] });
  } catch (error) {
    // Synchronous refusals, e.g. an argument with a NUL byte, which no argv can carry.
    const end = notStarted(asErrno(error));
    return { pid: undefined, ended: Promise.resolve(end), terminate: () => Promise.resolve(end), stdout: undefined };
  }

  const pid = child.pid;
  const tail = stderrTail();
  const timers: NodeJS.Timeout[] = [];
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let terminated = false;
  let settled = false;
  let resolveEnded: (end: ProcessEnd) => void = () => undefined;
  const ended = new Promise<ProcessEnd>((resolve) => {
    resolveEnded = resolve;
  });
  const settle = (end: ProcessEnd): void => {
    if (settled) return;
    settled = true;
    for (const timer of timers) clearTimeout(timer);
    child.stderr?.destroy();
    resolveEnded(end);
  };
  const exited = (abandoned: boolean): ProcessEnd => ({
    code: exit?.code ?? null,
    signal: exit?.signal ?? null,
    terminated,
    abandoned,
    lastStderrLine: tail.lastLine(),
  });

  child.stderr?.on('data', (chunk: Buffer) => tail.push(chunk));
  // A read error on the pipe must not become an uncaught 'error' that takes the whole service down.
  child.stderr?.on('error', () => undefined);
  child.on('error', (error: NodeJS.ErrnoException) => {
    if (pid === undefined) settle(notStarted(error));
  });
  child.once('exit', (code, signal) => {
    exit = { code, signal };
    // Whatever the leader left running in its group (the other half of a pipeline) goes with it. The pgid
    // cannot have been reused yet: Linux keeps an id while any process of that group is alive.
    signalGroup(pid, 'SIGKILL');
    timers.push(setTimeout(() => settle(exited(false)), stdioGraceMs));
  });
  child.once('close', () => {
    if (exit !== undefined) settle(exited(false));
  });

  let terminating: Promise<ProcessEnd> | undefined;
  const terminate = (): Promise<ProcessEnd> => {
    if (terminating !== undefined) return terminating;
    terminating = ended;
    if (pid !== undefined && exit === undefined && !settled) {
      terminated = true;
      signalGroup(pid, 'SIGTERM');
      timers.push(
        setTimeout(() => {
          signalGroup(pid, 'SIGKILL');
          timers.push(setTimeout(() => settle(exited(true)), killTimeoutMs));
        }, killTimeoutMs),
      );
    }
    return terminating;
  };

  return { pid, ended, terminate, stdout: child.stdout ?? undefined };
}

function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the whole group is gone already, which is what we wanted.
  }
}

function notStarted(error: NodeJS.ErrnoException): ProcessEnd {
  return { code: null, signal: null, startError: error, terminated: false, abandoned: false, lastStderrLine: '' };
}

function asErrno(error: unknown): NodeJS.ErrnoException {
  return error instanceof Error ? error : new Error(String(error));
}

/** Keeps only the end of stderr: a process may write megabytes, and only its last words explain a failure. */
function stderrTail(): { push(chunk: Buffer): void; lastLine(): string } {
  let kept = Buffer.alloc(0);
  return {
    push(chunk) {
      kept = Buffer.concat([kept, chunk]);
      if (kept.length > stderrTailBytes) kept = kept.subarray(kept.length - stderrTailBytes);
    },
    lastLine() {
      const lines = kept
        .toString('utf8')
        .split(/\r\n|\r|\n/)
        .map((line) => line.trim());
      const last = lines.filter((line) => line !== '').at(-1) ?? '';
      return last.length > maxReasonLineChars ? `${last.slice(0, maxReasonLineChars)}…` : last;
    },
  };
}
