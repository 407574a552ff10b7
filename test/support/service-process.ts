import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from './wait.ts';

export interface LogRecord {
  msg: string;
  [key: string]: unknown;
}

/** The real service as a child process (`village-edge run`), fed on stdin and read through its JSON log. */
export interface ServiceProcess {
  readonly child: ChildProcess;
  readonly logs: LogRecord[];
  waitForLog(match: (line: LogRecord) => boolean, timeoutMs?: number): Promise<LogRecord>;
  send(line: string): void;
  kill9(): Promise<void>;
  terminate(): Promise<number | null>;
}

const repoRoot = new URL('../../', import.meta.url).pathname;

export function writeConfig(dir: string, config: unknown): string {
  const path = join(dir, 'config.json');
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}

/** How to start the service: node's arguments before `run --config FILE`, and extra environment. */
export interface ServiceLaunch {
  nodeArgs: string[];
  /** More arguments of `run`, after `--config FILE`. */
  runArgs?: string[];
  env?: Record<string, string>;
}

// node --import tsx, not npx: killing npx's PID would leave the real service running (TOOLCHAIN.md).
export const fromSource: ServiceLaunch = { nodeArgs: ['--import', 'tsx', join(repoRoot, 'src/main.ts')] };

/** The built bundle, as production runs it (`npm run build` must have run). */
export function fromBuild(nodeFlags: string[], env?: Record<string, string>): ServiceLaunch {
  return { nodeArgs: [...nodeFlags, join(repoRoot, 'dist/main.js')], ...(env === undefined ? {} : { env }) };
}

export function startService(configPath: string, onLog?: (line: LogRecord) => void, launch: ServiceLaunch = fromSource): ServiceProcess {
  const child = spawn(process.execPath, [...launch.nodeArgs, 'run', '--config', configPath, ...(launch.runArgs ?? [])], {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...launch.env },
  });
  const logs: LogRecord[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: LogRecord;
    try {
      line = JSON.parse(text) as LogRecord;
    } catch {
      line = { msg: text };
    }
    logs.push(line);
    onLog?.(line);
  });
  const stderr: string[] = [];
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  child.stdin!.on('error', () => {});
  return {
    child,
    logs,
    waitForLog: (match, timeoutMs = 15_000) =>
      waitFor('a matching log line from the service', () => logs.find(match), { timeoutMs, context: () => `stderr: ${stderr.join('')}` }),
    send(line) {
      child.stdin!.write(`${line}\n`);
    },
    async kill9() {
      child.kill('SIGKILL');
      await exited;
    },
    async terminate() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}
