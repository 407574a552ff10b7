import { performance } from 'node:perf_hooks';
import { SerialPort } from 'serialport';
import { hasValidCrc, withCrc } from '../../src/drivers/modbus/crc16.ts';

/**
 * Our own Modbus RTU slave for a PTY's device end: every unit of a simulated RS-485 bus, with tables per
 * unit, scriptable faults per unit, and the wire time that a PTY does not have. Also the unit model for
 * the TCP slave. Times (`at`) are `performance.now()` milliseconds.
 */

export type SlaveTable = 'coils' | 'discrete-inputs' | 'holding-registers' | 'input-registers';

/** What a unit does with the next request(s): answer, or fail in one of the ways a real bus does. */
export type SlaveFault = 'working' | 'short-reply' | 'bad-crc' | 'wrong-unit' | 'exception' | 'timeout' | 'garbage';

export interface WriteRecord {
  table: 'coils' | 'holding-registers';
  address: number;
  value: number;
  at: number;
}

export interface RequestRecord {
  unit: number;
  fc: number;
  address: number;
  at: number;
}

interface ActiveFault {
  kind: SlaveFault;
  remaining: number;
  exceptionCode: number;
}

const GARBAGE = Buffer.from([0xff, 0x00, 0xaa, 0x55, 0xff, 0x00, 0xaa]);

/** One unit's tables and fault script. */
export class SlaveUnit {
  readonly writes: WriteRecord[] = [];
  requests = 0;
  private readonly coils: Uint8Array;
  private readonly discrete: Uint8Array;
  private readonly holding: Uint16Array;
  private readonly inputRegs: Uint16Array;
  private fault: ActiveFault = { kind: 'working', remaining: Infinity, exceptionCode: 4 };
  private readonly writeListeners = new Set<(write: WriteRecord) => void>();

  constructor(
    readonly id: number,
    readonly size = 256,
  ) {
    this.coils = new Uint8Array(size);
    this.discrete = new Uint8Array(size);
    this.holding = new Uint16Array(size);
    this.inputRegs = new Uint16Array(size);
  }

  get(table: SlaveTable, address: number): number {
    return this.table(table)[address] ?? 0;
  }

  set(table: SlaveTable, address: number, value: number | boolean): void {
    this.table(table)[address] = typeof value === 'boolean' ? Number(value) : value;
  }

  /** One bit of a register, the others kept: a status word whose conditions come and go on their own. */
  setBit(table: 'holding-registers' | 'input-registers', address: number, bit: number, on: boolean): void {
    const word = this.get(table, address);
    this.set(table, address, on ? word | (1 << bit) : word & ~(1 << bit) & 0xffff);
  }

  /** `count` requests fail this way, then the unit works again; without it the fault stays. */
  setFault(kind: SlaveFault, options: { count?: number; exceptionCode?: number } = {}): void {
    this.fault = { kind, remaining: options.count ?? Infinity, exceptionCode: options.exceptionCode ?? 4 };
  }

  /** Called after each write the unit accepted, with its tables already updated. */
  onWrite(listener: (write: WriteRecord) => void): () => void {
    this.writeListeners.add(listener);
    return () => this.writeListeners.delete(listener);
  }

  /** The fault that applies to the request now arriving (and uses one of its count). */
  takeFault(): { kind: SlaveFault; exceptionCode: number } {
    const { kind, exceptionCode } = this.fault;
    if (kind !== 'working' && --this.fault.remaining <= 0) this.fault = { kind: 'working', remaining: Infinity, exceptionCode: 4 };
    return { kind, exceptionCode };
  }

  /** Answers a request PDU (function code onwards, no CRC) with a response PDU or an exception PDU. */
  handle(pdu: Buffer): Buffer {
    const fc = pdu[0] ?? 0;
    if (pdu.length < 5) return exception(fc, 3);
    const address = pdu.readUInt16BE(1);
    const quantityOrValue = pdu.readUInt16BE(3);
    switch (fc) {
      case 1:
      case 2:
        return this.readBits(fc, fc === 1 ? this.coils : this.discrete, address, quantityOrValue);
      case 3:
      case 4:
        return this.readRegisters(fc, fc === 3 ? this.holding : this.inputRegs, address, quantityOrValue);
      case 5:
        if (quantityOrValue !== 0xff00 && quantityOrValue !== 0) return exception(fc, 3);
        if (address >= this.size) return exception(fc, 2);
        this.accept('coils', address, quantityOrValue === 0xff00 ? 1 : 0);
        return Buffer.from(pdu.subarray(0, 5));
      case 6:
        if (address >= this.size) return exception(fc, 2);
        this.accept('holding-registers', address, quantityOrValue);
        return Buffer.from(pdu.subarray(0, 5));
      case 15:
      case 16: {
        const count = quantityOrValue;
        if (count < 1 || address + count > this.size || pdu.length < 6 + (pdu[5] ?? 0)) return exception(fc, 2);
        for (let i = 0; i < count; i++) {
          if (fc === 15) this.accept('coils', address + i, ((pdu[6 + (i >> 3)] ?? 0) >> (i & 7)) & 1);
          else this.accept('holding-registers', address + i, pdu.readUInt16BE(6 + 2 * i));
        }
        return Buffer.from(pdu.subarray(0, 5));
      }
      default:
        return exception(fc, 1);
    }
  }

  private readBits(fc: number, bits: Uint8Array, address: number, count: number): Buffer {
    if (count < 1 || count > 2000) return exception(fc, 3);
    if (address + count > this.size) return exception(fc, 2);
    const byteCount = Math.ceil(count / 8);
    const out = Buffer.alloc(2 + byteCount);
    out[0] = fc;
    out[1] = byteCount;
    for (let i = 0; i < count; i++) if (bits[address + i]) out[2 + (i >> 3)]! |= 1 << (i & 7);
    return out;
  }

  private readRegisters(fc: number, regs: Uint16Array, address: number, count: number): Buffer {
    if (count < 1 || count > 125) return exception(fc, 3);
    if (address + count > this.size) return exception(fc, 2);
    const out = Buffer.alloc(2 + 2 * count);
    out[0] = fc;
    out[1] = 2 * count;
    for (let i = 0; i < count; i++) out.writeUInt16BE(regs[address + i] ?? 0, 2 + 2 * i);
    return out;
  }

  private accept(table: WriteRecord['table'], address: number, value: number): void {
    this.set(table, address, value);
    const record = { table, address, value, at: performance.now() };
    this.writes.push(record);
    for (const listener of this.writeListeners) listener(record);
  }

  private table(table: SlaveTable): Uint8Array | Uint16Array {
    switch (table) {
      case 'coils':
        return this.coils;
      case 'discrete-inputs':
        return this.discrete;
      case 'holding-registers':
        return this.holding;
      case 'input-registers':
        return this.inputRegs;
    }
  }
}

function exception(fc: number, code: number): Buffer {
  return Buffer.from([fc | 0x80, code]);
}

/**
 * A push button latched by the device (as the AC100 does it): the input stays 1 from the press until
 * the controller writes 1 to the reset coil, then shows the button as it physically is.
 */
export function latchedButton(unit: SlaveUnit, input: number, resetCoil: number): { press(): void; release(): void } {
  let down = false;
  let latched = false;
  unit.onWrite((w) => {
    if (w.table !== 'coils' || w.address !== resetCoil || w.value !== 1) return;
    latched = false;
    unit.set('coils', resetCoil, 0);
    unit.set('discrete-inputs', input, down);
  });
  return {
    press() {
      down = true;
      latched = true;
      unit.set('discrete-inputs', input, true);
    },
    release() {
      down = false;
      unit.set('discrete-inputs', input, latched);
    },
  };
}

export interface RtuSlaveOptions {
  /** The PTY's device end. */
  path: string;
  /** Adds the wire time of request and reply at this baud rate; a PTY delivers instantly otherwise. */
  wireBaud?: number;
  /** Bits on the wire per byte: 10 for 8N1, 11 with parity or two stop bits. */
  bitsPerByte?: number;
  /** Writes each reply in pieces this far apart, as a USB adapter's latency timer delivers them. */
  splitReplies?: { bytes: number; gapMs: number };
}

/** The units a slave answers for, and who is told of every request: the same over RS-485 and TCP. */
export class SlaveUnits {
  private readonly units = new Map<number, SlaveUnit>();
  private readonly requestListeners = new Set<(request: RequestRecord) => void>();

  /** The unit with this id, created (all tables zero) on first use. Ids never asked for do not answer. */
  unit(id: number, size?: number): SlaveUnit {
    let unit = this.units.get(id);
    if (unit === undefined) {
      unit = new SlaveUnit(id, size);
      this.units.set(id, unit);
    }
    return unit;
  }

  onRequest(listener: (request: RequestRecord) => void): () => void {
    this.requestListeners.add(listener);
    return () => this.requestListeners.delete(listener);
  }

  /** Tells the listeners of a request; returns the unit it is for, if that unit answers at all. */
  received(request: RequestRecord): SlaveUnit | undefined {
    for (const listener of this.requestListeners) listener(request);
    return this.units.get(request.unit);
  }
}

/** Every unit on one simulated RS-485 line, answering on the device end of a PTY pair. */
export class ModbusRtuSlave {
  /** `overlaps`: requests that arrived while another exchange was still on the wire. */
  readonly stats = { requests: 0, overlaps: 0, badRequests: 0 };
  private readonly units = new SlaveUnits();
  private readonly replyListeners = new Set<(unit: number, reply: Buffer) => void>();
  private readonly byteMs: number;
  private readonly split: { bytes: number; gapMs: number } | undefined;
  private rx: Buffer = Buffer.alloc(0);
  private busyUntil = 0;
  private pendingReplies = 0;
  /** Reply pieces not yet written, in line order; `at` is when each is due (performance.now()). */
  private readonly transmitQueue: Array<{ at: number; send: () => void }> = [];
  private transmitTimer: NodeJS.Timeout | undefined;
  private readonly lateUnits = new Set<number>();
  private heldReply: Buffer | null = null;

  private constructor(
    private readonly port: SerialPort,
    options: RtuSlaveOptions,
  ) {
    this.byteMs = options.wireBaud ? ((options.bitsPerByte ?? 10) * 1000) / options.wireBaud : 0;
    this.split = options.splitReplies;
    port.on('data', (chunk: Buffer) => this.receive(chunk));
    // The PTY vanishes when a test kills socat; that must not crash the test process.
    port.on('error', () => undefined);
  }

  static async open(options: RtuSlaveOptions): Promise<ModbusRtuSlave> {
    const port = new SerialPort({ path: options.path, baudRate: options.wireBaud ?? 9600, autoOpen: false });
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    return new ModbusRtuSlave(port, options);
  }

  /** The unit with this id, created (all tables zero) on first use. Ids never asked for do not answer. */
  unit(id: number, size?: number): SlaveUnit {
    return this.units.unit(id, size);
  }

  onRequest(listener: (request: RequestRecord) => void): () => void {
    return this.units.onRequest(listener);
  }

  /** Called right after a reply went onto the line (bytes written from it follow the reply in order). */
  onReply(listener: (unit: number, reply: Buffer) => void): () => void {
    this.replyListeners.add(listener);
    return () => this.replyListeners.delete(listener);
  }

  /**
   * The unit's next answer comes too late: it goes onto the line only once the next request has arrived
   * (the master gave up on it and moved on), just ahead of that request's own answer.
   */
  answerLate(unit: number): void {
    this.lateUnits.add(unit);
  }

  /** Raw bytes onto the line, e.g. a late reply or noise. */
  inject(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve) => this.port.write(Buffer.from(bytes), () => resolve()));
  }

  async close(): Promise<void> {
    clearTimeout(this.transmitTimer);
    this.transmitTimer = undefined;
    this.transmitQueue.length = 0;
    this.heldReply = null;
    if (this.port.isOpen) await new Promise<void>((resolve) => this.port.close(() => resolve()));
  }

  private receive(chunk: Buffer): void {
    const at = performance.now();
    this.rx = this.rx.length === 0 ? chunk : Buffer.concat([this.rx, chunk]);
    // Requests are framed by length; a CRC failure drops one byte and looks again (resync).
    while (this.rx.length >= 8) {
      const fc = this.rx[1];
      let length = 8;
      if (fc === 15 || fc === 16) length = 9 + (this.rx[6] ?? 0);
      if (this.rx.length < length) break;
      const frame = this.rx.subarray(0, length);
      if (!hasValidCrc(frame)) {
        this.stats.badRequests++;
        this.rx = this.rx.subarray(1);
        continue;
      }
      this.rx = this.rx.subarray(length);
      this.onFrame(Buffer.from(frame), at);
    }
  }

  private onFrame(frame: Buffer, at: number): void {
    const unitId = frame[0] ?? 0;
    const fc = frame[1] ?? 0;
    this.stats.requests++;
    if (at < this.busyUntil || this.pendingReplies > 0) this.stats.overlaps++;
    const request = { unit: unitId, fc, address: frame.readUInt16BE(2), at };
    const unit = this.units.received(request);
    const requestWireMs = frame.length * this.byteMs;
    const held = this.heldReply;
    this.heldReply = null;
    if (held !== null) {
      this.transmitQueue.push({
        at,
        send: () => {
          if (this.port.isOpen) this.port.write(held);
        },
      });
    }
    const answer = unit === undefined ? null : this.reply(unit, frame);
    const late = answer !== null && this.lateUnits.delete(unitId);
    if (late) this.heldReply = answer;
    const reply = late ? null : answer;
    if (reply === null) {
      this.busyUntil = Math.max(this.busyUntil, at + requestWireMs);
      return;
    }
    const replyAt = at + requestWireMs + reply.length * this.byteMs;
    const pieces: Buffer[] = [];
    const size = this.split?.bytes ?? reply.length;
    for (let i = 0; i < reply.length; i += size) pieces.push(reply.subarray(i, i + size));
    const gapMs = this.split?.gapMs ?? 0;
    this.busyUntil = replyAt + (pieces.length - 1) * gapMs;
    this.pendingReplies++;
    pieces.forEach((piece, i) => {
      const last = i === pieces.length - 1;
      this.transmitQueue.push({
        at: replyAt + i * gapMs,
        send: () => {
          if (last) {
            this.pendingReplies--;
            // Node timers may fire up to 1 ms before the performance.now() they aimed at: the line is free
            // from when the reply really left, not from when it was planned to.
            this.busyUntil = Math.min(this.busyUntil, performance.now());
          }
          if (!this.port.isOpen) return;
          this.port.write(piece);
          if (last) for (const listener of this.replyListeners) listener(unitId, reply);
        },
      });
    });
    this.transmit();
  }

  /**
   * Writes the queued pieces in order, each once it is due, with one timer at a time, as one UART sends its
   * bytes. Not a timer per piece: when the event loop falls behind, Node runs overdue timers a list (of
   * timers of one length) at a time rather than in the order they were due, and a reply's CRC then went out
   * before its data.
   */
  private transmit(): void {
    if (this.transmitTimer !== undefined) return;
    for (let next = this.transmitQueue[0]; next !== undefined; next = this.transmitQueue[0]) {
      const waitMs = next.at - performance.now();
      // Within a millisecond is due: timers are no finer than that.
      if (waitMs >= 1) {
        this.transmitTimer = setTimeout(() => {
          this.transmitTimer = undefined;
          this.transmit();
        }, waitMs);
        return;
      }
      this.transmitQueue.shift();
      next.send();
    }
  }

  private reply(unit: SlaveUnit, frame: Buffer): Buffer | null {
    unit.requests++;
    const fault = unit.takeFault();
    const fc = frame[1] ?? 0;
    // A unit that did not hear the request, or refused it, changes nothing.
    if (fault.kind === 'timeout') return null;
    if (fault.kind === 'exception') return withCrc(Buffer.from([unit.id, fc | 0x80, fault.exceptionCode]));
    const pdu = unit.handle(frame.subarray(1, frame.length - 2));
    const good = withCrc(Buffer.concat([Buffer.from([unit.id]), pdu]));
    switch (fault.kind) {
      case 'working':
        return good;
      case 'short-reply':
        return good.subarray(0, Math.max(2, good.length - 3));
      case 'bad-crc': {
        good[good.length - 1]! ^= 0x5a;
        return good;
      }
      case 'wrong-unit':
        return withCrc(Buffer.concat([Buffer.from([(unit.id % 247) + 1]), pdu]));
      case 'garbage':
        return GARBAGE;
    }
  }
}
