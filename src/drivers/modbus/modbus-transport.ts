import { Socket } from 'node:net';
import type ModbusSerial from 'modbus-serial';
import { RtuFault, RtuPort, type SerialLine } from './modbus-rtu-port.ts';
import type { ProtocolErrorKind } from '../device/types.ts';

export type { SerialLine };

/**
 * Modbus RTU and TCP behind one interface: every call names its unit and timeout, and every failure
 * comes out as a `ModbusError` with one of our `ProtocolErrorKind`s. No library type leaves this file.
 *
 * RTU runs on our own master (modbus-rtu-port.ts); TCP on `modbus-serial`, loaded only when a TCP bus
 * is configured (it also loads every port type it has: heap a serial-only controller never uses).
 */

type Client = InstanceType<(typeof ModbusSerial)['default']>;

export class ModbusError extends Error {
  constructor(
    readonly kind: ProtocolErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'ModbusError';
  }
}

/** Every exchange names its unit and timeout: the library keeps both as shared mutable state. */
export interface Exchange {
  unitId: number;
  timeoutMs: number;
}

export interface TcpEndpoint {
  host: string;
  port: number;
}

/** One port (serial line or TCP connection). Callers must not overlap requests: the bus queues them. */
export interface ModbusTransport {
  /** Serial path or host:port, for logs. */
  readonly endpoint: string;
  /** `onLost` is called once if the open port goes away (adapter unplugged, peer closed the socket). */
  open(onLost: (reason: string) => void): Promise<void>;
  /** Safe to call at any time, also when already closed or lost. */
  close(): Promise<void>;
  readCoils(x: Exchange, address: number, count: number): Promise<boolean[]>;
  readDiscreteInputs(x: Exchange, address: number, count: number): Promise<boolean[]>;
  readHoldingRegisters(x: Exchange, address: number, count: number): Promise<number[]>;
  readInputRegisters(x: Exchange, address: number, count: number): Promise<number[]>;
  writeCoil(x: Exchange, address: number, on: boolean): Promise<void>;
  writeRegister(x: Exchange, address: number, value: number): Promise<void>;
}

type BitTable = 1 | 2;
type RegisterTable = 3 | 4;
type WriteCode = 5 | 6;

/** An open port as the transport needs it, whatever carries it; failures come out as `ModbusError`s. */
interface Link {
  isOpen(): boolean;
  close(): Promise<void>;
  readBits(x: Exchange, fc: BitTable, address: number, count: number): Promise<boolean[]>;
  readRegisters(x: Exchange, fc: RegisterTable, address: number, count: number): Promise<number[]>;
  /** `value` is 0 or 1 for a coil. */
  write(x: Exchange, fc: WriteCode, address: number, value: number): Promise<void>;
}

type Connect = (lose: (reason: string) => void, signal: AbortSignal) => Promise<Link>;

/** What a request does, for error messages only (built when one fails, not per request). */
function describe(fc: number, address: number, word: number): string {
  switch (fc) {
    case 1:
      return `read coils ${address}+${word}`;
    case 2:
      return `read discrete inputs ${address}+${word}`;
    case 3:
      return `read holding registers ${address}+${word}`;
    case 4:
      return `read input registers ${address}+${word}`;
    case 5:
      return `write coil ${address}=${word}`;
    default:
      return `write holding register ${address}=${word}`;
  }
}

function echoMismatch(x: Exchange, fc: WriteCode, address: number, value: number, echoAddress: number, echoValue: number): ModbusError {
  const what = fc === 5 ? 'coil' : 'register';
  return new ModbusError('garbage', `unit ${x.unitId} ${describe(fc, address, value)}: echo says ${what} ${echoAddress}=${echoValue}`);
}

/**
 * The request on the port: settled by its reply, or by a close or a lost port first. A plain record the
 * transport points at, not a per-request abort closure kept in a field: with the closure, every request's
 * promise, closures and result outlived two scavenges and went to the old generation, so RSS rose steadily
 * until a major GC, a sawtooth; the record is all that survives a request.
 */
interface PendingCall {
  resolve: (value: unknown) => void;
  reject: (error: ModbusError) => void;
}

class PortTransport implements ModbusTransport {
  private link: Link | null = null;
  private generation = 0;
  private lose: ((reason: string) => void) | null = null;
  private pending: PendingCall | null = null;
  private connecting: AbortController | null = null;

  constructor(
    readonly endpoint: string,
    private readonly connect: Connect,
  ) {}

  async open(onLost: (reason: string) => void): Promise<void> {
    await this.close();
    const generation = this.generation;
    const lose = (reason: string): void => {
      if (generation !== this.generation) return;
      this.generation++;
      const link = this.link;
      this.link = null;
      this.lose = null;
      if (this.pending !== null) this.settle(this.pending, new ModbusError('port', `${this.endpoint}: ${reason}`));
      void link?.close().catch(() => undefined);
      onLost(reason);
    };
    let link: Link;
    const connecting = new AbortController();
    this.connecting = connecting;
    try {
      link = await this.connect(lose, connecting.signal);
    } catch (error) {
      throw new ModbusError('port', `cannot open ${this.endpoint}: ${inspect(error).message}`);
    } finally {
      if (this.connecting === connecting) this.connecting = null;
    }
    if (generation !== this.generation) {
      await link.close().catch(() => undefined);
      throw new ModbusError('port', `${this.endpoint} went away while opening`);
    }
    this.link = link;
    this.lose = lose;
  }

  async close(): Promise<void> {
    this.generation++;
    // An unreachable gateway would otherwise hold stop() for the whole connect timeout.
    this.connecting?.abort();
    const link = this.link;
    this.link = null;
    this.lose = null;
    if (this.pending !== null) this.settle(this.pending, new ModbusError('port', `${this.endpoint} was closed`));
    if (link) await link.close().catch(() => undefined);
  }

  readCoils(x: Exchange, address: number, count: number): Promise<boolean[]> {
    return this.exchange((link) => link.readBits(x, 1, address, count));
  }

  readDiscreteInputs(x: Exchange, address: number, count: number): Promise<boolean[]> {
    return this.exchange((link) => link.readBits(x, 2, address, count));
  }

  readHoldingRegisters(x: Exchange, address: number, count: number): Promise<number[]> {
    return this.exchange((link) => link.readRegisters(x, 3, address, count));
  }

  readInputRegisters(x: Exchange, address: number, count: number): Promise<number[]> {
    return this.exchange((link) => link.readRegisters(x, 4, address, count));
  }

  writeCoil(x: Exchange, address: number, on: boolean): Promise<void> {
    return this.exchange((link) => link.write(x, 5, address, on ? 1 : 0));
  }

  writeRegister(x: Exchange, address: number, value: number): Promise<void> {
    return this.exchange((link) => link.write(x, 6, address, value));
  }

  private exchange<T>(run: (link: Link) => Promise<T>): Promise<T> {
    const link = this.link;
    if (link === null) return Promise.reject(new ModbusError('port', `${this.endpoint} is not open`));
    if (!link.isOpen()) {
      // Some close paths (a TCP error before the close) never reach our close listener.
      this.lose?.('port is no longer open');
      return Promise.reject(new ModbusError('port', `${this.endpoint} is not open`));
    }
    if (this.pending !== null) return Promise.reject(new ModbusError('port', `${this.endpoint}: overlapping request refused`));
    return new Promise<T>((resolve, reject) => {
      const call: PendingCall = { resolve: resolve as (value: unknown) => void, reject };
      this.pending = call;
      run(link).then(
        (value) => this.settle(call, null, value),
        (error: unknown) => this.settle(call, error instanceof ModbusError ? error : new ModbusError('garbage', inspect(error).message)),
      );
    });
  }

  /** Settles a call once: by its reply, or earlier by a close or a lost port (then the reply is dropped). */
  private settle(call: PendingCall, error: ModbusError | null, value?: unknown): void {
    if (this.pending !== call) return;
    this.pending = null;
    if (error) call.reject(error);
    else call.resolve(value);
  }
}

// ── RTU: our own master ──────────────────────────────────────────────────────────────────────────

class RtuLink implements Link {
  constructor(private readonly port: RtuPort) {}

  isOpen(): boolean {
    return this.port.isOpen;
  }

  close(): Promise<void> {
    return this.port.close();
  }

  async readBits(x: Exchange, fc: BitTable, address: number, count: number): Promise<boolean[]> {
    const frame = await this.transact(x, fc, address, count);
    const bits = new Array<boolean>(count);
    for (let i = 0; i < count; i++) bits[i] = (((frame[3 + (i >> 3)] ?? 0) >> (i & 7)) & 1) === 1;
    return bits;
  }

  async readRegisters(x: Exchange, fc: RegisterTable, address: number, count: number): Promise<number[]> {
    const frame = await this.transact(x, fc, address, count);
    const registers = new Array<number>(count);
    for (let i = 0; i < count; i++) registers[i] = frame.readUInt16BE(3 + 2 * i);
    return registers;
  }

  async write(x: Exchange, fc: WriteCode, address: number, value: number): Promise<void> {
    const word = fc === 5 ? (value === 1 ? 0xff00 : 0) : value;
    const frame = await this.transact(x, fc, address, word);
    const echoAddress = frame.readUInt16BE(2);
    const echoWord = frame.readUInt16BE(4);
    // A coil echo is read as modbus-serial reads it: 0xFF00 is on, anything else off.
    const echoValue = fc === 5 ? (echoWord === 0xff00 ? 1 : 0) : echoWord;
    if (echoAddress !== address || echoValue !== value) throw echoMismatch(x, fc, address, value, echoAddress, echoValue);
  }

  private transact(x: Exchange, fc: number, address: number, word: number): Promise<Buffer> {
    return this.port.transact(x.unitId, fc, address, word, x.timeoutMs).catch((error: unknown) => {
      const value = fc === 5 ? (word === 0 ? 0 : 1) : word;
      const prefix = `unit ${x.unitId} ${describe(fc, address, value)}`;
      if (error instanceof RtuFault) throw new ModbusError(error.kind, `${prefix}: ${error.message}`);
      throw new ModbusError('port', `${prefix}: ${inspect(error).message}`);
    });
  }
}

export function createRtuTransport(line: SerialLine): ModbusTransport {
  return new PortTransport(line.path, async (lose) => {
    const port = new RtuPort(line, lose);
    await port.open();
    return new RtuLink(port);
  });
}

// ── TCP: modbus-serial ───────────────────────────────────────────────────────────────────────────

// Margin over the library's own timeout: if it ever fails to settle, the bus must not stall forever.
const GUARD_MARGIN_MS = 1000;

class LibraryLink implements Link {
  constructor(
    private readonly client: Client,
    readonly isOpen: () => boolean,
    readonly close: () => Promise<void>,
  ) {}

  async readBits(x: Exchange, fc: BitTable, address: number, count: number): Promise<boolean[]> {
    const reply = await this.exchange(x, fc, address, count, (c) => (fc === 1 ? c.readCoils(address, count) : c.readDiscreteInputs(address, count)));
    return reply.data.slice(0, count);
  }

  async readRegisters(x: Exchange, fc: RegisterTable, address: number, count: number): Promise<number[]> {
    const reply = await this.exchange(x, fc, address, count, (c) =>
      fc === 3 ? c.readHoldingRegisters(address, count) : c.readInputRegisters(address, count),
    );
    return [...reply.data];
  }

  async write(x: Exchange, fc: WriteCode, address: number, value: number): Promise<void> {
    if (fc === 5) {
      const echo = await this.exchange(x, fc, address, value, (c) => c.writeCoil(address, value === 1));
      if (echo.address !== address || echo.state !== (value === 1)) throw echoMismatch(x, fc, address, value, echo.address, echo.state ? 1 : 0);
    } else {
      const echo = await this.exchange(x, fc, address, value, (c) => c.writeRegister(address, value));
      if (echo.address !== address || echo.value !== value) throw echoMismatch(x, fc, address, value, echo.address, echo.value);
    }
  }

  private exchange<T>(x: Exchange, fc: number, address: number, word: number, run: (client: Client) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const what = (): string => describe(fc, address, word);
      const guard = setTimeout(
        () => reject(new ModbusError('timeout', `unit ${x.unitId} ${what()}: the driver never settled`)),
        x.timeoutMs + GUARD_MARGIN_MS,
      );
      // setID and setTimeout are read synchronously by the call below; nothing can run in between.
      this.client.setID(x.unitId);
      this.client.setTimeout(x.timeoutMs);
      run(this.client).then(
        (value) => {
          clearTimeout(guard);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(guard);
          reject(classify(error, x, what()));
        },
      );
    });
  }
}

interface ErrorFacts {
  message: string;
  errno: string | undefined;
  modbusCode: number | undefined;
}

// The library throws Error instances and plain objects alike; read them without trusting either.
function inspect(error: unknown): ErrorFacts {
  if (typeof error !== 'object' || error === null) return { message: String(error), errno: undefined, modbusCode: undefined };
  const record = error as Record<string, unknown>;
  const message = typeof record.message === 'string' ? record.message : String(error);
  const errno = typeof record.errno === 'string' ? record.errno : typeof record.code === 'string' ? record.code : undefined;
  const modbusCode = typeof record.modbusCode === 'number' ? record.modbusCode : undefined;
  return { message, errno, modbusCode };
}

function classify(error: unknown, x: Exchange, what: string): ModbusError {
  const { message, errno, modbusCode } = inspect(error);
  const prefix = `unit ${x.unitId} ${what}`;
  if (modbusCode !== undefined) return new ModbusError('exception', `${prefix}: ${message}`);
  if (errno === 'ETIMEDOUT' || message === 'Timed out') return new ModbusError('timeout', `${prefix}: no reply within ${x.timeoutMs} ms`);
  if (message === 'CRC error') return new ModbusError('crc', `${prefix}: reply failed its CRC check`);
  const length = /^Data length error, expected (\d+) got (\d+)/.exec(message);
  if (length) {
    const [expected, got] = [Number(length[1]), Number(length[2])];
    return new ModbusError(got < expected ? 'short-reply' : 'garbage', `${prefix}: reply of ${got} bytes, expected ${expected}`);
  }
  const address = /expected address (\d+) got (\d+)/.exec(message);
  if (address) return new ModbusError('wrong-unit', `${prefix}: the reply came from unit ${address[2]}`);
  if (message.startsWith('Unexpected data error')) return new ModbusError('garbage', `${prefix}: ${message}`);
  if (message === 'Port Not Open' || errno !== undefined) return new ModbusError('port', `${prefix}: ${message}`);
  return new ModbusError('garbage', `${prefix}: ${message}`);
}

export function createTcpTransport(endpoint: TcpEndpoint, options: { connectTimeoutMs?: number } = {}): ModbusTransport {
  const connectTimeoutMs = options.connectTimeoutMs ?? 3000;
  return new PortTransport(`${endpoint.host}:${endpoint.port}`, async (lose, signal) => {
    const { default: library } = await import('modbus-serial');
    // Our own socket: the library's TCP port can miss a close that follows an error, and cannot bound connect().
    const socket = await connectSocket(endpoint, connectTimeoutMs, signal);
    socket.on('error', () => undefined);
    socket.on('close', () => lose('connection closed'));
    // Half-open connections (a gateway that lost power) otherwise only ever show as timeouts.
    socket.setKeepAlive(true, 10_000);
    socket.setNoDelay(true);
    const client = new library.default();
    client.on('error', () => undefined);
    await client.linkTCP(socket, { port: endpoint.port });
    return new LibraryLink(
      client,
      () => !socket.destroyed && socket.readyState === 'open',
      () =>
        new Promise<void>((resolve) => {
          if (socket.closed) return resolve();
          socket.once('close', () => resolve());
          socket.destroy();
        }),
    );
  });
}

function connectSocket(endpoint: TcpEndpoint, timeoutMs: number, signal: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    const abort = (): void => fail(new Error('closed while connecting'));
    const fail = (error: Error): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', abort);
      socket.destroy();
      reject(error);
    };
    const timer = setTimeout(() => fail(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
    signal.addEventListener('abort', abort, { once: true });
    socket.once('error', fail);
    socket.connect({ host: endpoint.host, port: endpoint.port }, () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', abort);
      socket.off('error', fail);
      resolve(socket);
    });
  });
}
