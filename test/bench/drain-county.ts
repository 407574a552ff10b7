/**
 * The county for the drain benchmark, in a process of its own so that its 10,000 receives and acks do not
 * share the service's event loop (the real county is on another machine). Driven over IPC by drain.ts;
 * times are epochNow() (wall clock with sub-ms resolution, comparable across processes).
 */
import type { CommandKeyEntry } from '../../src/county/keys.ts';
import { alarmPayloadSchema } from '../../src/county/payloads.ts';
import { connectCounty, type CountyClient } from '../support/county.ts';
import { createCountySigner } from '../support/county-signer.ts';
import { epochNow } from './figures.ts';

export type ToCounty =
  | { type: 'connect'; url: string; protocolVersion: 4 | 5; village: string; expect: number }
  | { type: 'report' }
  | { type: 'close' };

export type FromCounty =
  | { type: 'ready'; keyEntry: CommandKeyEntry }
  | { type: 'subscribed'; at: number }
  | { type: 'all-received'; at: number }
  | { type: 'failed'; reason: string }
  | { type: 'report'; firsts: Array<[seq: number, at: number, attempt: number]>; total: number; invalid: number }
  | { type: 'closed' };

// Acks are signed (Ed25519 JWS), as the county signs them; the village lists this key.
const signer = await createCountySigner({ villageId: process.argv[2] ?? 'bench-drain' });
let county: CountyClient | undefined;
let firsts: Array<[number, number, number]> = [];
let village = '';
/** Bumped by every connect: a waiter of an earlier connection must not speak for this one. */
let generation = 0;

const send = (message: FromCounty): void => {
  process.send?.(message);
};

async function connect(message: Extract<ToCounty, { type: 'connect' }>): Promise<void> {
  await closeCounty();
  village = message.village;
  firsts = [];
  const mine = ++generation;
  const seen = new Set<string>();
  county = await connectCounty({ url: message.url, protocolVersion: message.protocolVersion, autoAck: true, signer });
  send({ type: 'subscribed', at: epochNow() });
  // `match` runs synchronously in the client's message handler (and over what already arrived), so each
  // first delivery is stamped as it is received; it matches once every expected alarm has been seen.
  county
    .waitFor((m) => {
      if (m.kind !== 'alarm' || m.village !== village) return false;
      const payload = m.payload as { id?: unknown; seq?: unknown; attempt?: unknown };
      if (typeof payload.id !== 'string' || seen.has(payload.id)) return false;
      seen.add(payload.id);
      firsts.push([Number(payload.seq), epochNow(), Number(payload.attempt)]);
      return seen.size >= message.expect;
    }, 120_000)
    .then(
      () => mine === generation && send({ type: 'all-received', at: firsts.at(-1)?.[1] ?? epochNow() }),
      (error: unknown) =>
        mine === generation && send({ type: 'failed', reason: `${seen.size} of ${message.expect} alarms received: ${String(error).split('\n')[0]}` }),
    );
}

/**
 * Bounded: right after the broker dropped it, the client's close (mqtt.js endAsync) can wait forever
 * (seen in about one of four runs that take the broker down twice).
 */
async function closeCounty(): Promise<void> {
  const closing = county;
  county = undefined;
  if (closing === undefined) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([closing.close().catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, 1000)))]);
  clearTimeout(timer);
}

function report(): void {
  const alarms = (county?.messages ?? []).filter((m) => m.kind === 'alarm' && m.village === village);
  const invalid = alarms.filter((m) => !alarmPayloadSchema.safeParse(m.payload).success).length;
  send({ type: 'report', firsts, total: alarms.length, invalid });
}

process.on('message', (message: ToCounty) => {
  switch (message.type) {
    case 'connect':
      connect(message).catch((error: unknown) => send({ type: 'failed', reason: `county could not connect: ${String(error)}` }));
      return;
    case 'report':
      return report();
    case 'close':
      void closeCounty().then(() => {
        send({ type: 'closed' });
        process.disconnect?.();
      });
      return;
  }
});
// The bench went away: so does its county.
process.on('disconnect', () => process.exit(0));
send({ type: 'ready', keyEntry: signer.keyEntry });
