import { Socket } from 'node:net';
import ModbusSerial from 'modbus-serial';
import { RtuFramedPort, type Leftover, type SerialLine } from './modbus-rtu-port.ts';
import type { ProtocolErrorKind } from './types.ts';

export type { SerialLine };

/**
 * The one adapter over `modbus-serial`: every call names its unit and timeout, and every failure comes
 * out as a `ModbusError` with one of our `ProtocolErrorKind`s. No library type leaves this file.
 *
 * RTU goes through our own framing port instead of the library's: its raw port hands the library
 * whatever chunk the OS returned (a USB adapter splits replies), and its buffered port silently skips
 * replies from another unit, so a wrong-unit reply or a cut-off one would only ever show as a timeout.
 */

// With `module: NodeNext` the default import is the CommonJS module object; its `default` is the class.
const ModbusRTU = ModbusSerial.default;
type Client = InstanceType<typeof ModbusRTU>;

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

/** An open port as the transport needs it, whatever carries it. */
interface Link {
  client: Client;
  isOpen(): boolean;
  close(): Promise<void>;
  leftover?(): Leftover;
}

type Connect = (lose: (reason: string) => void, signal: AbortSignal) => Promise<Link>;

// Margin over the library's own timeout: if it ever fails to settle, the bus must not stall forever.
const GUARD_MARGIN_MS = 1000;

class LibraryTransport implements ModbusTransport {
  private link: Link | null = null;
  private generation = 0;
  private lose: ((reason: string) => void) | null = null;
  private abortPending: ((error: ModbusError) => void) | null = null;
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
      this.abortPending?.(new ModbusError('port', `${this.endpoint}: ${reason}`));
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
    this.abortPending?.(new ModbusError('port', `${this.endpoint} was closed`));
    if (link) await link.close().catch(() => undefined);
  }

  async readCoils(x: Exchange, address: number, count: number): Promise<boolean[]> {
    const reply = await this.exchange(x, `read coils ${address}+${count}`, (c) => c.readCoils(address, count));
    return reply.data.slice(0, count);
  }

  async readDiscreteInputs(x: Exchange, address: number, count: number): Promise<boolean[]> {
    const what = `read discrete inputs ${address}+${count}`;
    const reply = await this.exchange(x, what, (c) => c.readDiscreteInputs(address, count));
    return reply.data.slice(0, count);
  }

  async readHoldingRegisters(x: Exchange, address: number, count: number): Promise<number[]> {
    const what = `read holding registers ${address}+${count}`;
    const reply = await this.exchange(x, what, (c) => c.readHoldingRegisters(address, count));
    return [...reply.data];
  }

  async readInputRegisters(x: Exchange, address: number, count: number): Promise<number[]> {
    const what = `read input registers ${address}+${count}`;
    const reply = await this.exchange(x, what, (c) => c.readInputRegisters(address, count));
    return [...reply.data];
  }

  async writeCoil(x: Exchange, address: number, on: boolean): Promise<void> {
    const what = `write coil ${address}=${on ? 1 : 0}`;
    const echo = await this.exchange(x, what, (c) => c.writeCoil(address, on));
    if (echo.address !== address || echo.state !== on)
      throw new ModbusError('garbage', `unit ${x.unitId} ${what}: echo says coil ${echo.address}=${echo.state ? 1 : 0}`);
  }

  async writeRegister(x: Exchange, address: number, value: number): Promise<void> {
    const what = `write holding register ${address}=${value}`;
    const echo = await this.exchange(x, what, (c) => c.writeRegister(address, value));
    if (echo.address !== address || echo.value !== value)
      throw new ModbusError('garbage', `unit ${x.unitId} ${what}: echo says register ${echo.address}=${echo.value}`);
  }

  private exchange<T>(x: Exchange, what: string, run: (client: Client) => Promise<T>): Promise<T> {
    const link = this.link;
    if (link === null) return Promise.reject(new ModbusError('port', `${this.endpoint} is not open`));
    if (!link.isOpen()) {
      // Some close paths (a TCP error before the close) never reach our close listener.
      this.lose?.('port is no longer open');
      return Promise.reject(new ModbusError('port', `${this.endpoint} is not open`));
    }
    if (this.abortPending) return Promise.reject(new ModbusError('port', `${this.endpoint}: overlapping request refused`));
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const settle = (error: ModbusError | null, value?: T): void => {
        if (settled) return;
        settled = true;
        clearTimeout(guard);
        this.abortPending = null;
        if (error) reject(error);
        else resolve(value as T);
      };
      const guard = setTimeout(
        () => settle(new ModbusError('timeout', `unit ${x.unitId} ${what}: the driver never settled`)),
        x.timeoutMs + GUARD_MARGIN_MS,
      );
      this.abortPending = (error) => settle(error);
      // setID and setTimeout are read synchronously by the call below; nothing can run in between.
      link.client.setID(x.unitId);
      link.client.setTimeout(x.timeoutMs);
      run(link.client).then(
        (value) => settle(null, value),
        (error: unknown) => settle(classify(error, x, what, link.leftover?.())),
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

function classify(error: unknown, x: Exchange, what: string, leftover: Leftover | undefined): ModbusError {
  const { message, errno, modbusCode } = inspect(error);
  const prefix = `unit ${x.unitId} ${what}`;
  if (modbusCode !== undefined) return new ModbusError('exception', `${prefix}: ${message}`);
  if (errno === 'ETIMEDOUT' || message === 'Timed out') return silence(prefix, x.timeoutMs, leftover);
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

/** A timeout, told apart by what (if anything) arrived before the silence. */
function silence(prefix: string, timeoutMs: number, leftover: Leftover | undefined): ModbusError {
  const bytes = leftover?.bytes;
  const exp = leftover?.expecting;
  if (bytes === undefined || bytes.length === 0 || exp == null) return new ModbusError('timeout', `${prefix}: no reply within ${timeoutMs} ms`);
  const hex = bytes.subarray(0, 24).toString('hex');
  if (bytes[1] === exp.fc || bytes[1] === (exp.fc | 0x80)) {
    // Long enough but never a valid frame: the reply was there, its CRC was not.
    if (bytes[0] === exp.unit && bytes.length >= exp.length)
      return new ModbusError('crc', `${prefix}: reply failed its CRC check (${hex})`);
    if (bytes[0] === exp.unit)
      return new ModbusError('short-reply', `${prefix}: reply cut short, ${bytes.length} of ${exp.length} bytes (${hex})`);
    return new ModbusError('wrong-unit', `${prefix}: partial reply from unit ${bytes[0]} (${hex})`);
  }
  return new ModbusError('garbage', `${prefix}: ${bytes.length} bytes that are no reply (${hex})`);
}

export function createRtuTransport(line: SerialLine): ModbusTransport {
  return new LibraryTransport(line.path, async (lose) => {
    const port = new RtuFramedPort(line);
    const client = new ModbusRTU(port);
    // The library re-emits port errors; an EventEmitter 'error' without a listener would crash the process.
    client.on('error', () => undefined);
    port.on('close', (reason: string) => lose(reason));
    await new Promise<void>((resolve, reject) => client.open((err: unknown) => (err ? reject(err) : resolve())));
    return {
      client,
      isOpen: () => port.isOpen,
      close: () => new Promise<void>((resolve) => port.close(() => resolve())),
      leftover: () => port.leftover(),
    };
  });
}

export function createTcpTransport(endpoint: TcpEndpoint, options: { connectTimeoutMs?: number } = {}): ModbusTransport {
  const connectTimeoutMs = options.connectTimeoutMs ?? 3000;
  return new LibraryTransport(`${endpoint.host}:${endpoint.port}`, async (lose, signal) => {
    // Our own socket: the library's TCP port can miss a close that follows an error, and cannot bound connect().
    const socket = await connectSocket(endpoint, connectTimeoutMs, signal);
    socket.on('error', () => undefined);
    socket.on('close', () => lose('connection closed'));
    // Half-open connections (a gateway that lost power) otherwise only ever show as timeouts.
    socket.setKeepAlive(true, 10_000);
    socket.setNoDelay(true);
    const client = new ModbusRTU();
    client.on('error', () => undefined);
    await client.linkTCP(socket, { port: endpoint.port });
    return {
      client,
      isOpen: () => !socket.destroyed && socket.readyState === 'open',
      close: () =>
        new Promise<void>((resolve) => {
          if (socket.closed) return resolve();
          socket.once('close', () => resolve());
          socket.destroy();
        }),
    };
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
