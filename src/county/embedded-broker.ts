import { createServer, type Socket } from 'node:net';
import type { Logger } from '../platform/logger.ts';
import type { Component } from '../platform/lifecycle.ts';
import { errorText } from '../platform/error-text.ts';

export interface EmbeddedBroker {
  /** `mqtt://host:port`, with the port actually bound (useful when asked for port 0). */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * An in-process MQTT 3.1.1 broker for the demo and single-village setups (aedes refuses MQTT 5, so the link
 * must use `protocolVersion: 4` against it). Sessions, retained messages and wills live in memory only.
 */
export async function startEmbeddedBroker(options: { host: string; port: number; logger: Logger }): Promise<EmbeddedBroker> {
  const logger = options.logger.child({ component: 'embedded-broker' });
  // Loaded here, not at start-up: most villages use the county broker, and aedes is the biggest module we have.
  const { Aedes } = await import('aedes');
  const aedes = await Aedes.createBroker();
  aedes.on('clientError', (client, error) => logger.debug({ client: client.id, err: error.message }, 'client error'));
  aedes.on('connectionError', (_client, error) => logger.debug({ err: error.message }, 'connection error'));

  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    // Without this, a QoS 1 PUBACK can sit ~40 ms in Nagle's buffer waiting for the client's delayed ACK.
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    aedes.handle(socket);
  });

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    throw error;
  }
  server.on('error', (error) => logger.error({ err: error }, 'embedded broker server error'));

  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  const url = `mqtt://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
  logger.info({ url }, 'embedded MQTT broker listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => aedes.close(() => resolve()));
        // aedes has ended its clients by now; anything left is a socket that never sent CONNECT.
        for (const socket of sockets) socket.destroy();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        logger.info({ url }, 'embedded MQTT broker closed');
      })();
      return closing;
    },
  };
}

/**
 * The embedded broker as a part of the service, listening where `county.url` points. When it cannot listen,
 * whatever listens there (another broker, a stale copy of this service) is not the broker that was meant:
 * a problem naming `county.url`, and the link still connects to it.
 */
export function embeddedBrokerComponent(countyUrl: string, logger: Logger): Component {
  const url = new URL(countyUrl);
  let broker: EmbeddedBroker | undefined;
  return {
    name: 'embedded broker',
    async start() {
      broker = await startEmbeddedBroker({ host: url.hostname, port: Number(url.port || 1883), logger });
    },
    async stop() {
      await broker?.close();
      broker = undefined;
    },
    problem: (error) =>
      `county.url: the embedded broker cannot listen on ${url.host} (${errorText(error)}); the link connects to whatever listens there`,
  };
}
