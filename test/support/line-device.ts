import { SerialPort } from 'serialport';
import { waitFor } from './wait.ts';

/**
 * A line-protocol alarm column at the far end of a PTY. It computes checksums itself rather than with
 * src/drivers/line/line-protocol.ts, so a test that passes does not merely agree with the code under test.
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

/** Line-protocol columns as the AC200 behaves, on one simulated line device; see `runLineColumns`. */
export interface LineColumns {
  /** The button goes down and up: the column repeats BTN instead of its heartbeat until it is sent RST. */
  press(unit: number): void;
  /** The column stops sending anything (a cut cable), or starts again. */
  answering(unit: number, on: boolean): void;
  /** Indicator lines (`LED,<arg>`) the column was sent, by their argument, in order. */
  ledArgs(unit: number): string[];
  resets(unit: number): number;
  stop(): void;
}

/**
 * Drives `units` on `device` every `tickMs`: a heartbeat, or BTN while the press is latched; RST ends the latch
 * and the column says BTNUP, as the AC200's profile describes (with a faster heartbeat, for tests).
 */
export function runLineColumns(device: SimulatedLineDevice, units: readonly number[], tickMs: number): LineColumns {
  const latched = new Set<number>();
  const silent = new Set<number>();
  const released = new Set<number>();
  let read = 0;
  const ofUnit = (unit: number) =>
    device.written
      .map((line) => /^\$[A-Z]+,(\d+),([^*]*)\*/.exec(line))
      .filter((m) => m !== null && Number(m[1]) === unit)
      .map((m) => m![2]!);
  const tick = (): void => {
    for (const line of device.written.slice(read)) {
      const match = /^\$[A-Z]+,(\d+),RST\*/.exec(line);
      const unit = Number(match?.[1]);
      if (match !== null && latched.delete(unit)) released.add(unit);
    }
    read = device.written.length;
    for (const unit of units) {
      if (silent.has(unit)) continue;
      const body = latched.has(unit) ? 'BTN' : released.delete(unit) ? 'BTNUP' : 'HB';
      void device.send(unit, body).catch(() => undefined);
    }
  };
  const timer = setInterval(tick, tickMs);
  return {
    press: (unit) => void latched.add(unit),
    answering: (unit, on) => void (on ? silent.delete(unit) : silent.add(unit)),
    ledArgs: (unit) =>
      ofUnit(unit)
        .filter((body) => body.startsWith('LED,'))
        .map((body) => body.slice(4)),
    resets: (unit) => ofUnit(unit).filter((body) => body === 'RST').length,
    stop: () => clearInterval(timer),
  };
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
  let partial = '';
  port.on('data', (chunk: Buffer) => {
    partial += chunk.toString('latin1');
    for (let end = partial.indexOf('\n'); end >= 0; end = partial.indexOf('\n')) {
      written.push(partial.slice(0, end + 1));
      partial = partial.slice(end + 1);
    }
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
    waitForWritten: (match, timeoutMs = 2000) =>
      waitFor('a matching line written to the column', () => written.find(match), {
        timeoutMs,
        context: () => `written: ${JSON.stringify(written)}`,
      }),
    async close() {
      if (!port.isOpen) return;
      await new Promise<void>((resolve) => port.close(() => resolve()));
    },
  };
}
