import { EventEmitter } from 'node:events';
import { SerialPort } from 'serialport';
import { hasValidCrc } from './crc16.ts';

/**
 * Modbus RTU framing over a serial port, for modbus-serial's client (which expects a port that hands it
 * one whole reply per 'data' event). Frames are cut by the length the request implies, not by silence:
 * user-space timing of a USB adapter (1-16 ms latency) cannot see the 3.5-character gap.
 */

export interface SerialLine {
  path: string;
  baudRate: number;
  parity: 'none' | 'even' | 'odd';
  dataBits: 7 | 8;
  stopBits: 1 | 2;
}

/** What the reply to a request must look like, read off the request itself. */
export interface Expectation {
  unit: number;
  fc: number;
  length: number;
}

export interface Leftover {
  bytes: Buffer;
  expecting: Expectation | null;
}

function expectationOf(request: Buffer): Expectation | null {
  const unit = request[0] ?? 0;
  const fc = request[1] ?? 0;
  switch (fc) {
    case 1:
    case 2:
      return { unit, fc, length: 5 + Math.ceil(request.readUInt16BE(4) / 8) };
    case 3:
    case 4:
      return { unit, fc, length: 5 + 2 * request.readUInt16BE(4) };
    case 5:
    case 6:
    case 15:
    case 16:
      return { unit, fc, length: 8 };
    default:
      return null;
  }
}

/**
 * Finds the reply in what arrived. A reply naming another unit is believed only at the very start (a
 * neighbour answering out of turn); further in, leading noise is skipped to the first header of ours
 * whose CRC holds. Returns null to wait for more bytes; a complete frame with a bad CRC is handed on
 * only when no later candidate could still complete, so the library reports the CRC error.
 */
function findFrame(rx: Buffer, exp: Expectation): Buffer | null {
  let fallback: Buffer | null = null;
  for (let i = 0; i + 1 < rx.length; i++) {
    if (i > 0 && rx[i] !== exp.unit) continue;
    const length = candidateLength(rx, i, exp);
    if (length === 'none') continue;
    if (length === 'more' || rx.length - i < length) return null;
    const frame = rx.subarray(i, i + length);
    if (hasValidCrc(frame)) return frame;
    fallback ??= frame;
  }
  return fallback;
}

/** The length of a reply starting at `i`, 'none' if no reply starts there, 'more' if not yet known. */
function candidateLength(rx: Buffer, i: number, exp: Expectation): number | 'none' | 'more' {
  const fc = rx[i + 1];
  if (fc === (exp.fc | 0x80)) return 5;
  if (fc !== exp.fc) return 'none';
  if (exp.fc > 4) return exp.length;
  const byteCount = rx[i + 2];
  if (byteCount === undefined) return 'more';
  // A well-formed reply with fewer data bytes than asked is a short reply, not noise: hand it on.
  return Math.min(exp.length, 5 + byteCount);
}

/** A serial port that hands the library whole frames only, and keeps what arrived for diagnosis. */
export class RtuFramedPort extends EventEmitter {
  private readonly serial: SerialPort;
  private rx: Buffer = Buffer.alloc(0);
  private expecting: Expectation | null = null;

  constructor(line: SerialLine) {
    super();
    this.serial = new SerialPort({ ...line, autoOpen: false });
    this.serial.on('data', (chunk: Buffer) => this.receive(chunk));
    // Before the library attaches its listener, an unheard 'error' would throw and end the process.
    this.serial.on('error', (err: Error) => {
      if (this.listenerCount('error') > 0) this.emit('error', err);
    });
    this.serial.on('close', (err: Error | null) => this.emit('close', err?.message ?? 'port closed'));
  }

  get isOpen(): boolean {
    return this.serial.isOpen;
  }

  open(callback: (err: Error | null) => void): void {
    this.serial.open((err) => {
      if (err) return callback(err);
      // A reply meant for a previous owner of the port may still be queued: never read it as ours.
      this.serial.flush(() => {
        this.rx = Buffer.alloc(0);
        this.expecting = null;
        callback(null);
      });
    });
  }

  close(callback: (err: Error | null) => void): void {
    if (!this.serial.isOpen) return callback(null);
    this.serial.close((err) => callback(err ?? null));
  }

  write(request: Buffer): void {
    this.rx = Buffer.alloc(0);
    this.expecting = expectationOf(request);
    this.serial.write(request);
  }

  leftover(): Leftover {
    return { bytes: this.rx, expecting: this.expecting };
  }

  private receive(chunk: Buffer): void {
    // Outside an exchange this is a late reply or line noise; it must not become the next reply.
    if (this.expecting === null) return;
    this.rx = this.rx.length === 0 ? chunk : Buffer.concat([this.rx, chunk]);
    const frame = findFrame(this.rx, this.expecting);
    if (frame === null) return;
    this.expecting = null;
    this.emit('data', Buffer.from(frame));
  }
}
