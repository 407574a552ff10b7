import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './wait.ts';

/** A real pseudo-terminal pair made by socat: what one side writes, the other reads. */
export interface PtyPair {
  /** The end the service opens (stands for /dev/ttyUSB0). */
  controllerPath: string;
  /** The end the simulated field device opens. */
  devicePath: string;
  /** socat's process: killing it is pulling the adapter out. */
  socatPid: number;
  close(): Promise<void>;
}

export async function openPtyPair(): Promise<PtyPair> {
  const dir = mkdtempSync(join(tmpdir(), 've-pty-'));
  const controllerPath = join(dir, 'controller');
  const devicePath = join(dir, 'device');
  const socat: ChildProcess = spawn('socat', [`pty,raw,echo=0,link=${controllerPath}`, `pty,raw,echo=0,link=${devicePath}`], { stdio: 'ignore' });
  const made = await waitFor(
    'socat to create the PTY pair',
    () => (socat.exitCode !== null ? 'exited' : existsSync(controllerPath) && existsSync(devicePath) && 'made'),
    { timeoutMs: 5000, intervalMs: 10 },
  );
  if (made === 'exited') throw new Error(`socat exited with ${socat.exitCode}; is socat installed?`);
  const socatPid = socat.pid;
  if (socatPid === undefined) throw new Error('socat did not start');
  return {
    controllerPath,
    devicePath,
    socatPid,
    async close() {
      if (socat.exitCode === null) {
        const exited = new Promise((resolve) => socat.once('exit', resolve));
        socat.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
