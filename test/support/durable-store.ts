import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { waitFor } from './wait.ts';
import type { DurableStorageError } from '../../src/store/durable-sqlite.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Starts a child that prints `ready`, then one line per record it has committed, kills it with SIGKILL
 * `afterMs` after its first committed record (on a loaded machine the first commit can take longer than
 * any fixed delay after `ready`), and returns the complete lines it printed after `ready`.
 */
export async function printedUntilKilled(childScript: string, args: string[], afterMs: number): Promise<string[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', childScript, ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const exited = () => child.exitCode !== null;
  const context = () => `its stderr: ${err}`;
  const started = await waitFor('the child ready', () => (exited() ? 'exited' : out.startsWith('ready\n') && 'ready'), {
    timeoutMs: 15_000,
    context,
  });
  if (started === 'exited') throw new Error(`child did not start: ${err}`);
  const committed = await waitFor('its first committed record', () => (exited() ? 'exited' : /^ready\n[^\n]*\n/.test(out) && 'committed'), {
    timeoutMs: 15_000,
    context,
  });
  if (committed === 'exited') throw new Error(`child committed nothing: ${err}`);
  // Not a wait for anything: the kill is meant to land at some point while it keeps committing.
  await sleep(afterMs);
  child.kill('SIGKILL');
  await closed;
  expect(child.signalCode).toBe('SIGKILL');
  // Only complete lines count: a torn last line was never fully printed.
  return out.split('\n').slice(1, -1);
}

/**
 * Opening the store at `path` fails with `errorClass`, naming the path and store (`<label> database
 * <path>: ...`) and matching `problem`.
 */
export function expectStorageError(
  open: (path: string) => { close(): void },
  errorClass: new (...args: never[]) => DurableStorageError,
  label: string,
  path: string,
  problem: RegExp,
): void {
  let error: unknown;
  try {
    open(path).close();
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(errorClass);
  expect((error as DurableStorageError).path).toBe(path);
  expect((error as Error).message.startsWith(`${label} database ${path}: `)).toBe(true);
  expect((error as Error).message).toMatch(problem);
  console.log(`  error shown: ${(error as Error).message}`);
}
