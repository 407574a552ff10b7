import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface PymodbusWrite {
  table: 'coils' | 'holding-registers';
  address: number;
  value: number;
}

/** An alarm column served by Debian's python3-pymodbus on `path` (unit `unit`), a slave we did not write. */
export interface PymodbusColumn {
  readonly writes: readonly PymodbusWrite[];
  /** Sets a discrete input (0: button, 1: tamper loop). */
  setInput(address: number, on: boolean): void;
  close(): Promise<void>;
}

const script = fileURLToPath(new URL('./pymodbus-column.py', import.meta.url));

export async function startPymodbusColumn(path: string, unit: number): Promise<PymodbusColumn> {
  // Debian's interpreter, where apt puts python3-pymodbus: a python3 earlier on PATH may not have it.
  const child = spawn('/usr/bin/python3', [script, path, String(unit)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const writes: PymodbusWrite[] = [];
  const stderr: string[] = [];
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`pymodbus column exited with ${code}: ${stderr.join('')}`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const message = JSON.parse(line) as PymodbusWrite | { ready: true };
      if ('ready' in message) resolve();
      else writes.push(message);
    });
  });
  return {
    writes,
    setInput(address, on) {
      child.stdin.write(`set di ${address} ${on ? 1 : 0}\n`);
    },
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}
