import { createRequire } from 'node:module';
import { connect as connectTcp, isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import type { MqttClient } from 'mqtt';
import type { ConnectionOptions } from 'node:tls';
import { guardedConnection, type InboundGuardOptions, type OnRead } from './inbound-guard.ts';

/**
 * The socket under the MQTT client, built afresh for every (re)connect to an mqtt:// or mqtts:// broker,
 * as mqtt.js' own TCP and TLS builders build it. Ours rather than `mqtt.connect`'s: its first connect
 * loads every transport it knows, WebSocket and SOCKS with them (http, https, zlib, dns: megabytes of RSS
 * on the Pi, for a link that never uses them). ws:// and wss:// stay with `mqtt.connect`.
 */

export interface TlsMaterial {
  ca: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

export type StreamBuilder = (client: MqttClient) => Duplex;

const SCHEME_PORTS: Record<string, { port: number; tls: boolean }> = {
  'mqtt:': { port: 1883, tls: false },
  'tcp:': { port: 1883, tls: false },
  'mqtts:': { port: 8883, tls: true },
  'ssl:': { port: 8883, tls: true },
};

/** Whether `url` is one this module connects (else it is a WebSocket url, left to `mqtt.connect`). */
export function isSocketUrl(url: URL): boolean {
  return url.protocol in SCHEME_PORTS;
}

/**
 * mqtt.js whole, with `connect`: for a ws:// or wss:// county url and the county's command-line tools.
 * Loaded from node_modules when first needed, never bundled into the service: `connect` brings every
 * transport along (WebSocket, SOCKS, http, https, zlib).
 */
export function wholeMqttJs(): typeof import('mqtt') {
  return createRequire(import.meta.url)('mqtt') as typeof import('mqtt');
}

/**
 * `guard` bounds the memory any inbound packet can take (see inbound-guard.ts); each socket gets its own
 * filter, so a connection that drops mid-packet leaves nothing behind for the next one.
 */
export function socketBuilder(url: URL, tls: TlsMaterial | undefined, guard: InboundGuardOptions): StreamBuilder {
  const scheme = SCHEME_PORTS[url.protocol];
  if (scheme === undefined) throw new Error(`${url.protocol}// is not a TCP or TLS MQTT url`);
  // URL keeps IPv6 literals in brackets; sockets want them bare.
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1') || 'localhost';
  const port = url.port === '' ? scheme.port : Number(url.port);
  // Nagle would hold a small QoS 1 publish behind the previous one's delayed ACK (~40 ms, TOOLCHAIN.md).
  if (!scheme.tls) return () => guardedConnection((onread) => connectTcp({ host, port, onread }).setNoDelay(true), guard).stream;
  // Loaded only for a TLS link: RSS that a plain-TCP village need not carry.
  const { connect: connectTls } = createRequire(import.meta.url)('node:tls') as typeof import('node:tls');
  return (client) => {
    const { socket, stream } = guardedConnection((onread) => {
      // tls.connect passes onread to its socket (Node >= 14), though @types/node does not list it.
      const options: ConnectionOptions & { onread: OnRead } = {
        host,
        port,
        onread,
        // SNI names the broker; an IP address is not a server name.
        ...(isIP(host) === 0 ? { servername: host } : {}),
        ...(tls ?? {}),
        rejectUnauthorized: true,
      };
      return connectTls(options).setNoDelay(true);
    }, guard);
    // As mqtt.js does: a failed handshake (unknown CA, wrong name) is the client's error, and the socket
    // is ended so that the client's reconnect takes over.
    const onHandshakeError = (error: Error): void => {
      client.emit('error', error);
      socket.end();
    };
    socket.on('error', onHandshakeError);
    socket.on('secureConnect', () => {
      if (socket.authorized) socket.removeListener('error', onHandshakeError);
      else socket.emit('error', new Error('TLS not authorized'));
    });
    return stream;
  };
}
