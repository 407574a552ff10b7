import { readSync, writeSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { autoDetect, type BindingPortInterface } from '@serialport/bindings-cpp';
import { errorText } from '../../platform/error-text.ts';
import { hasValidCrc, crc16 } from './crc16.ts';
import type { ProtocolErrorKind } from '../device/types.ts';

/**
 * A Modbus RTU master over a serial port, one transaction at a time. Frames are cut by the length the
 * request implies, not by silence: user-space timing of a USB adapter (1-16 ms latency) cannot see the
 * 3.5-character gap. Our own rather than modbus-serial's: its raw port hands the library whatever chunk
 * the OS returned, and its buffered port silently skips replies from another unit.
 *
 * Below the `serialport` stream, on the binding itself: the stream reads and writes through the libuv
 * thread pool (a thread hop per chunk, most of the service's idle CPU on a saturated bus). Where the
 * binding polls the descriptor (Linux, macOS), we read and write the non-blocking descriptor directly
 * when the poller says it is readable: a few bytes each way, never a wait.
 */

export interface SerialLine {
  path: string;
  baudRate: number;
  parity: 'none' | 'even' | 'odd';
  dataBits: 7 | 8;
  stopBits: 1 | 2;
}

/** What the reply to a request must look like, read off the request itself. */
interface Expectation {
  unit: number;
  fc: number;
  length: number;
}

/** A failed transaction: the caller prefixes the detail with the unit and the request. */
export class RtuFault extends Error {
  constructor(
    readonly kind: ProtocolErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'RtuFault';
  }
}

// Worded as modbus-serial words them: logs and alerts already quote these.
const EXCEPTIONS = [
  'Unknown error',
  'Illegal function (device does not support this read/write function)',
  'Illegal data address (register not supported by device)',
  'Illegal data value (value cannot be written to this register)',
  'Slave device failure (device reports internal error)',
  'Acknowledge (requested data will be available later)',
  'Slave device busy (retry request again later)',
  'Negative acknowledge (slave device cannot perform programming functions)',
  'Memory parity error (slave device detected a parity error in memory)',
  'Unknown error',
  'Gateway path unavailable (misconfigured gateway)',
  'Gateway target device failed to respond (retry request again later)',
];

function replyLength(fc: number, word: number): number {
  switch (fc) {
    case 1:
    case 2:
      return 5 + Math.ceil(word / 8);
    case 3:
    case 4:
      return 5 + 2 * word;
    default:
      return 8;
  }
}

/**
 * Finds the reply in `rx[0, end)`. A reply naming another unit is believed only at the very start (a
 * neighbour answering out of turn); further in, leading noise is skipped to the first header of ours
 * whose CRC holds. Returns null to wait for more bytes; a complete frame with a bad CRC is returned only
 * when no later candidate could still complete, so that it is reported as a CRC error.
 */
function findFrame(rx: Buffer, end: number, exp: Expectation): Buffer | null {
  let fallback: Buffer | null = null;
  for (let i = 0; i + 1 < end; i++) {
    if (i > 0 && rx[i] !== exp.unit) continue;
    const length = candidateLength(rx, end, i, exp);
    if (length === 'none') continue;
    if (length === 'more' || end - i < length) return null;
    const frame = rx.subarray(i, i + length);
    if (hasValidCrc(frame)) return frame;
    fallback ??= frame;
  }
  return fallback;
}

/** The length of a reply starting at `i`, 'none' if no reply starts there, 'more' if not yet known. */
function candidateLength(rx: Buffer, end: number, i: number, exp: Expectation): number | 'none' | 'more' {
  const fc = rx[i + 1];
  if (fc === (exp.fc | 0x80)) return 5;
  if (fc !== exp.fc) return 'none';
  if (exp.fc > 4) return exp.length;
  if (i + 2 >= end) return 'more';
  // A well-formed reply with fewer data bytes than asked is a short reply, not noise: report it as such.
  return Math.min(exp.length, 5 + (rx[i + 2] ?? 0));
}

/**
 * The length of a whole, CRC-valid reply to the `late` request at the start of `rx[0, end)`; 0 when none
 * starts there, 'more' when one may still complete.
 */
function lateReplyAtStart(rx: Buffer, end: number, late: Expectation): number | 'more' {
  if (rx[0] !== late.unit) return 0;
  if (end < 2) return 'more';
  const length = candidateLength(rx, end, 0, late);
  if (length === 'none') return 0;
  if (length === 'more' || end < length) return 'more';
  return hasValidCrc(rx.subarray(0, length)) ? length : 0;
}

/** Why a complete-looking frame is not the reply asked for, in the order modbus-serial checked. */
function faultOf(frame: Buffer, exp: Expectation): RtuFault | null {
  if (!hasValidCrc(frame)) return new RtuFault('crc', 'reply failed its CRC check');
  const code = frame[1] ?? 0;
  if (code === (exp.fc | 0x80)) {
    const exception = frame[2] ?? 0;
    return new RtuFault('exception', `Modbus exception ${exception}: ${EXCEPTIONS[exception] ?? 'Unknown error'}`);
  }
  if (frame.length !== exp.length)
    return new RtuFault(frame.length < exp.length ? 'short-reply' : 'garbage', `reply of ${frame.length} bytes, expected ${exp.length}`);
  if (frame[0] !== exp.unit) return new RtuFault('wrong-unit', `the reply came from unit ${frame[0]}`);
  return null;
}

/** A timeout, told apart by what (if anything) arrived before the silence. */
function silence(bytes: Buffer, exp: Expectation, timeoutMs: number): RtuFault {
  if (bytes.length === 0) return new RtuFault('timeout', `no reply within ${timeoutMs} ms`);
  const hex = bytes.subarray(0, 24).toString('hex');
  if (bytes[1] === exp.fc || bytes[1] === (exp.fc | 0x80)) {
    // Long enough but never a valid frame: the reply was there, its CRC was not.
    if (bytes[0] === exp.unit && bytes.length >= exp.length) return new RtuFault('crc', `reply failed its CRC check (${hex})`);
    if (bytes[0] === exp.unit) return new RtuFault('short-reply', `reply cut short, ${bytes.length} of ${exp.length} bytes (${hex})`);
    return new RtuFault('wrong-unit', `partial reply from unit ${bytes[0]} (${hex})`);
  }
  return new RtuFault('garbage', `${bytes.length} bytes that are no reply (${hex})`);
}

interface Pending {
  resolve: (frame: Buffer) => void;
  reject: (error: Error) => void;
  /** performance.now() by which the reply must be complete. */
  deadline: number;
  timeoutMs: number;
}

/**
 * What the Linux and macOS bindings offer beyond the interface: the descriptor and its poller, which
 * stops watching after each event and emits 'readable' (with an error when cancelled or failed).
 */
interface Polled {
  fd: number | null;
  poller: {
    on(event: 'readable', listener: (err: Error | null) => void): unknown;
    poll(events: number): void;
  };
}

const UV_READABLE = 1;

function isPolled(port: BindingPortInterface): port is BindingPortInterface & Polled {
  const candidate = port as Partial<Polled>;
  return typeof candidate.fd === 'number' && typeof candidate.poller?.on === 'function' && typeof candidate.poller.poll === 'function';
}

function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && typeof (error as { code?: unknown }).code === 'string'
    ? (error as { code: string }).code
    : undefined;
}

const RETRY_LATER = new Set(['EAGAIN', 'EWOULDBLOCK', 'EINTR']);

/**
 * One serial port, one outstanding request on it. The request and receive buffers are reused from one
 * transaction to the next (a write the OS cannot take at once gets a copy of its own).
 */
export class RtuPort {
  private port: BindingPortInterface | null = null;
  private readonly request = Buffer.allocUnsafe(8);
  private readonly chunk = Buffer.allocUnsafe(256);
  private rx = Buffer.allocUnsafe(256);
  private rxLength = 0;
  private readonly exp: Expectation = { unit: 0, fc: 0, length: 0 };
  /** The last request got no byte of reply in time. */
  private silent = false;
  /**
   * That request, when it went to another unit than this one (else unit -1): its reply may still come, at
   * the start of this exchange. Taken for an answer out of turn, it would count against this device, and
   * this device's own reply, late in turn, against the next one asked: one slow device could fail them all.
   */
  private readonly late: Expectation = { unit: -1, fc: 0, length: 0 };
  private pending: Pending | null = null;
  /**
   * Armed with each request, cleared the moment it settles: a request takes ~15 ms and almost never times
   * out, so the timer should never fire. (One timer for the port, moved on only when it fired, woke the
   * whole service for nothing once per timeout, ~3 times a second.)
   */
  private deadlineTimer: NodeJS.Timeout | undefined;
  /** Made once: a closure per request would be one more allocation on a path that runs ~50 times a second. */
  private readonly onDeadline = (): void => this.onDeadlineTimer();

  constructor(
    private readonly line: SerialLine,
    private readonly onLost: (reason: string) => void,
  ) {}

  get isOpen(): boolean {
    return this.port?.isOpen ?? false;
  }

  async open(): Promise<void> {
    const { path, baudRate, parity, dataBits, stopBits } = this.line;
    const port = await autoDetect().open({ path, baudRate, parity, dataBits, stopBits });
    // A reply meant for a previous owner of the port may still be queued: never read it as ours.
    await port.flush();
    this.port = port;
    this.rxLength = 0;
    if (isPolled(port)) this.watchReadable(port);
    else void this.readLoop(port);
  }

  async close(): Promise<void> {
    // Settles the pending request, which clears its deadline timer: no timer outlives a request.
    this.fail(new RtuFault('port', 'port closed'));
    const port = this.port;
    this.port = null;
    if (port?.isOpen) await port.close();
  }

  /**
   * Sends `[unit, fc, address, word]` and resolves with the reply frame, which stays valid only until
   * the next call. Rejects with an `RtuFault`.
   */
  transact(unit: number, fc: number, address: number, word: number, timeoutMs: number): Promise<Buffer> {
    if (this.pending !== null) return Promise.reject(new RtuFault('port', 'overlapping request refused'));
    const port = this.port;
    if (port === null || !port.isOpen) return Promise.reject(new RtuFault('port', 'Port Not Open'));
    const request = this.request;
    // Byte by byte rather than writeUInt16BE: Node's range checks allocate on every call when not optimised.
    request[0] = unit;
    request[1] = fc;
    request[2] = address >> 8;
    request[3] = address & 0xff;
    request[4] = word >> 8;
    request[5] = word & 0xff;
    const crc = crc16(request, 0, 6);
    request[6] = crc & 0xff;
    request[7] = crc >> 8;
    this.late.unit = this.silent && this.exp.unit !== unit ? this.exp.unit : -1;
    this.late.fc = this.exp.fc;
    this.late.length = this.exp.length;
    this.silent = false;
    this.exp.unit = unit;
    this.exp.fc = fc;
    this.exp.length = replyLength(fc, word);
    this.rxLength = 0;
    return new Promise<Buffer>((resolve, reject) => {
      const deadline = performance.now() + timeoutMs;
      this.pending = { resolve, reject, deadline, timeoutMs };
      this.deadlineTimer = setTimeout(this.onDeadline, timeoutMs);
      this.send(port, request);
    });
  }

  private onDeadlineTimer(): void {
    this.deadlineTimer = undefined;
    const pending = this.pending;
    if (pending === null) return;
    // Timers count from the start of the event-loop turn, so this one may fire a fraction early.
    const left = pending.deadline - performance.now();
    if (left > 0) {
      this.deadlineTimer = setTimeout(this.onDeadline, Math.ceil(left));
      return;
    }
    // Timers run before the event loop polls for input: after a stall (a long synchronous job, a GC pause)
    // the reply may have arrived in time and be waiting unread in the port. Read it before calling it silence.
    const port = this.port;
    if (port !== null && isPolled(port)) while (this.pending === pending && this.readReady(port));
    if (this.pending !== pending) return;
    this.silent = this.rxLength === 0;
    this.fail(silence(this.rx.subarray(0, this.rxLength), this.exp, pending.timeoutMs));
  }

  /** The request settled: its deadline must not wake the service. */
  private settled(): void {
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
  }

  private send(port: BindingPortInterface, request: Buffer): void {
    let written = 0;
    if (isPolled(port) && port.fd !== null) {
      try {
        written = writeSync(port.fd, request);
        if (written === request.length) return;
      } catch (error) {
        // A port that takes no bytes is gone (the adapter pulled out before we heard it hang up): the bus
        // is lost, which is not a failed request of the device asked.
        if (!RETRY_LATER.has(errorCode(error) ?? '')) return this.lose(`write failed: ${errorText(error)}`);
      }
    }
    // The output buffer is full (or there is no descriptor to write): let the binding wait for room to
    // write the rest, from a copy, as the next transaction reuses the request buffer.
    port.write(Buffer.from(request.subarray(written))).catch((error: unknown) => {
      if (this.port === port) this.lose(`write failed: ${errorText(error)}`);
    });
  }

  /** One listener for the life of the port (not `once` per chunk), re-armed after every event. */
  private watchReadable(port: BindingPortInterface & Polled): void {
    port.poller.on('readable', (err) => {
      if (this.port !== port) return;
      if (err) return this.lose(err.message);
      // One read per wake-up: the poll is level-triggered, and reading on to EAGAIN would throw (and
      // build a stack trace) on every chunk.
      this.readReady(port);
      if (this.port === port) port.poller.poll(UV_READABLE);
    });
    port.poller.poll(UV_READABLE);
  }

  /** One read of what the port holds, without waiting; false when it held nothing (or is gone). */
  private readReady(port: BindingPortInterface & Polled): boolean {
    if (port.fd === null) return false;
    try {
      const bytes = readSync(port.fd, this.chunk, 0, this.chunk.length, null);
      // With VMIN=1 an empty port reads EAGAIN; 0 is a hang-up, which would otherwise wake us for ever.
      if (bytes === 0) {
        this.lose('the port hung up');
        return false;
      }
      this.receive(this.chunk, bytes);
      return true;
    } catch (error) {
      if (!RETRY_LATER.has(errorCode(error) ?? '')) this.lose(error instanceof Error ? error.message : String(error));
      return false;
    }
  }

  private async readLoop(port: BindingPortInterface): Promise<void> {
    while (this.port === port) {
      try {
        const { bytesRead } = await port.read(this.chunk, 0, this.chunk.length);
        if (this.port === port) this.receive(this.chunk, bytesRead);
      } catch (error) {
        if (this.port === port) this.lose(error instanceof Error ? error.message : String(error));
        return;
      }
    }
  }

  /** The port went away under us (adapter unplugged): told once, after the pending request fails. */
  private lose(reason: string): void {
    const port = this.port;
    this.port = null;
    this.fail(new RtuFault('port', reason));
    if (port?.isOpen) port.close().catch(() => undefined);
    this.onLost(reason);
  }

  private fail(error: Error): void {
    const pending = this.pending;
    if (pending === null) return;
    this.pending = null;
    this.settled();
    pending.reject(error);
  }

  private receive(chunk: Buffer, length: number): void {
    // Outside an exchange this is a late reply or line noise; it must not become the next reply.
    const pending = this.pending;
    if (pending === null) return;
    let end = this.rxLength + length;
    if (end > this.rx.length) {
      const grown = Buffer.allocUnsafe(Math.max(end, 2 * this.rx.length));
      this.rx.copy(grown, 0, 0, this.rxLength);
      this.rx = grown;
    }
    chunk.copy(this.rx, this.rxLength, 0, length);
    this.rxLength = end;
    if (this.late.unit >= 0) {
      const late = lateReplyAtStart(this.rx, end, this.late);
      if (late === 'more') return;
      this.late.unit = -1;
      if (late > 0) {
        // Counted already, as the late device's timeout: this exchange goes on without it.
        this.rx.copyWithin(0, late, end);
        end -= late;
        this.rxLength = end;
        if (end === 0) return;
      }
    }
    const frame = findFrame(this.rx, end, this.exp);
    if (frame === null) return;
    const fault = faultOf(frame, this.exp);
    if (fault !== null) return this.fail(fault);
    this.pending = null;
    this.settled();
    pending.resolve(frame);
  }
}
