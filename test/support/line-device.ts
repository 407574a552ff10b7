import { SerialPort } from 'serialport';

/**
 * A line-protocol alarm column at the far end of a PTY. It computes checksums itself rather than with
 * src/drivers/line-protocol.ts, so a test that passes does not merely agree with the code under test.
 */
export interface SimulatedLineDevice {
  /** Lines the controller wrote, each with its delimiter, in order. */
  readonly written: readonly string[];
  /** A well-formed line: `send(3, 'BTN')` writes `$VE,3,BTN*78\r\n`. */
  send(unit: number, body: string): Promise<void>;
  /** A well-formed line whose checksum is off by one bit. */
  sendBadChecksum(unit: number, body: string): Promise<void>;
  heartbeat(unit: number): Promise<void>;
  /** Bytes exactly as given: garbage, partial lines, a line without its delimiter. */
  sendRaw(bytes: string): Promise<void>;
  /** Resolves with the first written line (already received or yet to come) that matches. */
  waitForWritten(match: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  close(): Promise<void>;
}

function checksumOf(inner: string): string {
  let sum = 0;
  for (const byte of Buffer.from(inner, 'latin1')) sum ^= byte;
  return sum.toString(16).toUpperCase().padStart(2, '0');
}

/** Whether a written line is `$…*XX` + delimiter with XX right; the delimiter is checked by the caller. */
export function hasValidChecksum(line: string): boolean {
  const match = /^\$([^$*]*)\*([0-9A-F]{2})\r?\n$/.exec(line);
  return match !== null && checksumOf(match[1] ?? '') === match[2];
}

export async function openLineDevice(options: { path: string; talker: string; delimiter?: '\r\n' | '\n' }): Promise<SimulatedLineDevice> {
  const delimiter = options.delimiter ?? '\r\n';
  const port = new SerialPort({ path: options.path, baudRate: 9600, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((error) => (error ? reject(error) : resolve())));
  const written: string[] = [];
  const waiters = new Set<() => void>();
  let partial = '';
  port.on('data', (chunk: Buffer) => {
    partial += chunk.toString('latin1');
    let end: number;
    while ((end = partial.indexOf('\n')) >= 0) {
      written.push(partial.slice(0, end + 1));
      partial = partial.slice(end + 1);
    }
    for (const wake of [...waiters]) wake();
  });
  // The controller's side going away (socat killed) surfaces here; the test decides what it means.
  port.on('error', () => undefined);

  const write = (bytes: string): Promise<void> =>
    new Promise((resolve, reject) => {
      port.write(Buffer.from(bytes, 'latin1'), (error) => {
        if (error) reject(error);
      });
      port.drain((error) => (error ? reject(error) : resolve()));
    });
  const line = (unit: number, body: string, corrupt: boolean): string => {
    const inner = `${options.talker},${unit},${body}`;
    const sum = parseInt(checksumOf(inner), 16) ^ (corrupt ? 1 : 0);
    return `$${inner}*${sum.toString(16).toUpperCase().padStart(2, '0')}${delimiter}`;
  };

  return {
    written,
    send: (unit, body) => write(line(unit, body, false)),
    sendBadChecksum: (unit, body) => write(line(unit, body, true)),
    heartbeat: (unit) => write(line(unit, 'HB', false)),
    sendRaw: write,
    async waitForWritten(match, timeoutMs = 2000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = written.find(match);
        if (found !== undefined) return found;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no matching line written within ${timeoutMs} ms; got ${JSON.stringify(written)}`);
        await new Promise<void>((resolve) => {
          const wake = (): void => {
            waiters.delete(wake);
            clearTimeout(timer);
            resolve();
          };
          const timer = setTimeout(wake, left);
          waiters.add(wake);
        });
      }
    },
    async close() {
      if (!port.isOpen) return;
      await new Promise<void>((resolve) => port.close(() => resolve()));
    },
  };
}
