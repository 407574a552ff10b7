import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { errorText } from '../platform/error-text.ts';
import { statusRequest, type StatusDocument } from './status-document.ts';

export interface StatusServerOptions {
  /** The unix socket to listen on; created owner-only (0600). */
  path: string;
  /** Builds the document afresh for each request. */
  document: () => Promise<StatusDocument>;
  logger: Logger;
  /** A client that has not sent its request by then is dropped, so a stuck one holds nothing for long. */
  requestTimeoutMs?: number;
}

/** A request is one short line; anything longer is not a client of ours. */
const maxRequestBytes = 256;
/** One technician at a time is the use; a few more cost nothing, hundreds would. */
const maxConnections = 8;

/**
 * The service's side of `village-edge status`: a local unix socket, owner-only, that answers one request
 * with one JSON document. Started by start() and closed by stop(); a socket that cannot be made is an error
 * for start() to return, never a reason for the service to stop relaying alarms.
 */
export class StatusServer {
  private server: Server | undefined;
  private readonly clients = new Set<Socket>();

  constructor(private readonly options: StatusServerOptions) {}

  /** Resolves once listening; rejects with the reason it cannot (the caller reports it and goes on). */
  async start(): Promise<void> {
    const { path } = this.options;
    if (Buffer.byteLength(path) > 107) throw new Error(`${path} is longer than a unix socket path may be (107 bytes)`);
    await removeStaleSocket(path);
    const server = createServer((socket) => this.serve(socket));
    server.maxConnections = maxConnections;
    // The socket file takes its mode from the umask at bind(), which listen() does synchronously: with 0177
    // it is never, not even for a moment, connectable by another user. chmod afterwards for the record.
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const umask = process.umask(0o177);
      try {
        server.listen(path, () => {
          server.off('error', reject);
          resolve();
        });
      } finally {
        process.umask(umask);
      }
    });
    chmodSync(path, 0o600);
    server.on('error', (error) => this.options.logger.warn({ err: errorText(error) }, 'status socket error'));
    this.server = server;
    this.options.logger.info({ path }, 'status socket listening');
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    for (const client of this.clients) client.destroy();
    // Closing the server removes the socket file (libuv unlinks it).
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private serve(socket: Socket): void {
    this.clients.add(socket);
    socket.on('close', () => this.clients.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setTimeout(this.options.requestTimeoutMs ?? 5000, () => socket.destroy());
    let request = '';
    const onData = (chunk: Buffer) => {
      request += chunk.toString('utf8');
      const newline = request.indexOf('\n');
      if (newline === -1) {
        if (request.length > maxRequestBytes) socket.destroy();
        return;
      }
      socket.off('data', onData);
      this.answer(socket, request.slice(0, newline).trim());
    };
    socket.on('data', onData);
  }

  private answer(socket: Socket, request: string): void {
    if (request !== statusRequest) {
      socket.end(`${JSON.stringify({ error: `unknown request "${request.slice(0, 40)}"; send "${statusRequest}"` })}\n`);
      return;
    }
    this.options.document().then(
      (document) => socket.end(`${JSON.stringify(document)}\n`),
      (error: unknown) => {
        this.options.logger.error({ err: error }, 'status document could not be built');
        socket.end(`${JSON.stringify({ error: `the service could not build its status: ${errorText(error)}` })}\n`);
      },
    );
  }
}

/**
 * A socket file left by a process that was killed (kill -9, power cut on a persistent folder) would make
 * listen() fail with EADDRINUSE. It is removed only when nothing answers on it; a live one (a second copy
 * of the service) and anything that is not a socket are left alone, and the reason returned.
 */
async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (!isSocket) throw new Error(`${path} exists and is not a socket; it is left alone`);
  const answered = await new Promise<boolean>((resolve, reject) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNREFUSED' ? resolve(false) : reject(error)));
  });
  if (answered) throw new Error(`another process answers on ${path} (a second village-edge?)`);
  unlinkSync(path);
}
