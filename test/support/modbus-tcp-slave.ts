import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { SlaveUnits, type RequestRecord, type SlaveUnit } from './modbus-rtu-slave.ts';
import { performance } from 'node:perf_hooks';

/**
 * A Modbus TCP slave (or TCP-to-RTU gateway) on a real loopback socket, with the same unit model and
 * fault script as the RTU slave. TCP has no CRC: a unit set to 'bad-crc' or 'garbage' makes the slave
 * answer exception 0x0B (gateway target failed to respond), as a gateway does for a bad serial reply.
 */
export class ModbusTcpSlave {
  readonly stats = { requests: 0, connections: 0 };
  private readonly units = new SlaveUnits();
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly host: string,
    readonly port: number,
  ) {}

  /** Listens on a free loopback port unless one is given. */
  static async listen(options: { host?: string; port?: number } = {}): Promise<ModbusTcpSlave> {
    const host = options.host ?? '127.0.0.1';
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, host, () => resolve());
    });
    const slave = new ModbusTcpSlave(server, host, (server.address() as AddressInfo).port);
    server.on('connection', (socket) => slave.accept(socket));
    return slave;
  }

  unit(id: number, size?: number): SlaveUnit {
    return this.units.unit(id, size);
  }

  onRequest(listener: (request: RequestRecord) => void): () => void {
    return this.units.onRequest(listener);
  }

  /** Resets every open connection, as a rebooting gateway does; the server keeps listening. */
  dropConnections(): void {
    for (const socket of this.sockets) socket.resetAndDestroy();
  }

  async close(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    this.stats.connections++;
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.on('close', () => this.sockets.delete(socket));
    let rx: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      rx = rx.length === 0 ? chunk : Buffer.concat([rx, chunk]);
      // MBAP: transaction id, protocol id (0), length of what follows, unit id; then the PDU.
      while (rx.length >= 7) {
        const total = 6 + rx.readUInt16BE(4);
        if (rx.length < total) break;
        const frame = Buffer.from(rx.subarray(0, total));
        rx = rx.subarray(total);
        const reply = this.answer(frame);
        if (reply !== null && !socket.destroyed) socket.write(reply);
      }
    });
  }

  private answer(frame: Buffer): Buffer | null {
    const unitId = frame[6] ?? 0;
    const pdu = frame.subarray(7);
    this.stats.requests++;
    const request = { unit: unitId, fc: pdu[0] ?? 0, address: pdu.length >= 3 ? pdu.readUInt16BE(1) : 0, at: performance.now() };
    const unit = this.units.received(request);
    if (unit === undefined) return null;
    unit.requests++;
    const fault = unit.takeFault();
    const fc = pdu[0] ?? 0;
    let replyUnit = unitId;
    let reply: Buffer;
    switch (fault.kind) {
      case 'timeout':
        return null;
      case 'exception':
        reply = Buffer.from([fc | 0x80, fault.exceptionCode]);
        break;
      case 'bad-crc':
      case 'garbage':
        reply = Buffer.from([fc | 0x80, 0x0b]);
        break;
      case 'working':
      case 'short-reply':
      case 'wrong-unit':
        reply = unit.handle(Buffer.from(pdu));
        if (fault.kind === 'short-reply') reply = reply.subarray(0, Math.max(1, reply.length - 1));
        if (fault.kind === 'wrong-unit') replyUnit = (unitId % 247) + 1;
        break;
    }
    const header = Buffer.alloc(7);
    header.writeUInt16BE(frame.readUInt16BE(0), 0);
    header.writeUInt16BE(0, 2);
    header.writeUInt16BE(reply.length + 1, 4);
    header[6] = replyUnit;
    return Buffer.concat([header, reply]);
  }
}
