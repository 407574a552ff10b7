/**
 * The county side of the drain benchmark, in a process of its own so that its 10,000 receives and signed
 * acks do not share the service's event loop (the real county is on another machine). It also owns the
 * village's path to the broker: a loopback port where nothing listens during the outage, then a relay to
 * the broker. Driven over IPC by drain.ts; times are epochNow(), comparable across processes.
 */
import { connect as tcpConnect, createServer, type Server, type Socket } from 'node:net';
import type { CommandKeyEntry } from '../../src/county/keys.ts';
import { alarmPayloadSchema } from '../../src/contract/payloads.ts';
import { connectCounty, type CountyClient } from '../support/county.ts';
import { createCountySigner } from '../support/county-signer.ts';
import { epochNow } from './figures.ts';

export type ToCounty =
  | { type: 'subscribe'; url: string; protocolVersion: 4 | 5; village: string; expect: number }
  | { type: 'open-path'; port: number; brokerPort: number }
  | { type: 'report' }
  | { type: 'close' };

export type FromCounty =
  | { type: 'ready'; keyEntry: CommandKeyEntry }
  | { type: 'subscribed' }
  | { type: 'path-open'; at: number }
  | { type: 'all-received'; at: number }
  | { type: 'failed'; reason: string }
  | { type: 'report'; firsts: Array<[seq: number, at: number, attempt: number]>; total: number; invalid: number }
  | { type: 'closed' };

const HOST = '127.0.0.1';
// Acks are signed (Ed25519 JWS), as the county signs them; the village lists this key.
const signer = await createCountySigner({ villageId: process.argv[2] ?? 'bench-drain' });
let county: CountyClient | undefined;
let path: { server: Server; sockets: Set<Socket> } | undefined;
const firsts: Array<[number, number, number]> = [];
let village = '';

const send = (message: FromCounty): void => {
  process.send?.(message);
};

async function subscribe(message: Extract<ToCounty, { type: 'subscribe' }>): Promise<void> {
  village = message.village;
  const seen = new Set<string>();
  county = await connectCounty({ url: message.url, protocolVersion: message.protocolVersion, autoAck: true, signer });
  // `match` runs synchronously in the client's message handler, so each first delivery is stamped as it
  // is received; it matches once every expected alarm has been seen.
  county
    .waitFor((m) => {
      if (m.kind !== 'alarm' || m.village !== village) return false;
      const payload = m.payload as { id?: unknown; seq?: unknown; attempt?: unknown };
      if (typeof payload.id !== 'string' || seen.has(payload.id)) return false;
      seen.add(payload.id);
      firsts.push([Number(payload.seq), epochNow(), Number(payload.attempt)]);
      return seen.size >= message.expect;
    }, 180_000)
    .then(
      () => send({ type: 'all-received', at: firsts.at(-1)?.[1] ?? epochNow() }),
      (error: unknown) => send({ type: 'failed', reason: `${seen.size} of ${message.expect} alarms received: ${String(error).split('\n')[0]}` }),
    );
  send({ type: 'subscribed' });
}

/** From now on the village's port leads to the broker, byte for byte, without Nagle delays. */
async function openPath(port: number, brokerPort: number): Promise<void> {
  const sockets = new Set<Socket>();
  const server = createServer((village) => {
    const broker = tcpConnect({ host: HOST, port: brokerPort });
    for (const [socket, other] of [
      [village, broker],
      [broker, village],
    ] as const) {
      sockets.add(socket);
      socket.setNoDelay(true);
      socket.pipe(other);
      socket.on('error', () => other.destroy());
      socket.on('close', () => {
        sockets.delete(socket);
        other.destroy();
      });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, HOST, () => resolve());
  });
  path = { server, sockets };
  send({ type: 'path-open', at: epochNow() });
}

async function closeAll(): Promise<void> {
  if (path !== undefined) {
    for (const socket of path.sockets) socket.destroy();
    await new Promise<void>((resolve) => path?.server.close(() => resolve()));
    path = undefined;
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([county?.close().catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, 2000)))]);
  clearTimeout(timer);
}

function report(): void {
  const alarms = (county?.messages ?? []).filter((m) => m.kind === 'alarm' && m.village === village);
  const invalid = alarms.filter((m) => !alarmPayloadSchema.safeParse(m.payload).success).length;
  send({ type: 'report', firsts, total: alarms.length, invalid });
}

const failed = (what: string) => (error: unknown) => send({ type: 'failed', reason: `${what}: ${String(error)}` });

process.on('message', (message: ToCounty) => {
  switch (message.type) {
    case 'subscribe':
      return void subscribe(message).catch(failed('the county could not subscribe'));
    case 'open-path':
      return void openPath(message.port, message.brokerPort).catch(failed(`could not listen on the village's port ${message.port}`));
    case 'report':
      return report();
    case 'close':
      return void closeAll().then(() => {
        send({ type: 'closed' });
        process.disconnect?.();
      });
  }
});
// The bench went away: so does its county.
process.on('disconnect', () => process.exit(0));
send({ type: 'ready', keyEntry: signer.keyEntry });
