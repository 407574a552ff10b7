// The least a Node.js process can do to keep a 9600-baud RTU bus busy: the floor under the service's idle
// CPU. Run by floor.ts as a child process (bundled by esbuild, with the unit's node flags); not a test.
//
// usage: node floor-master.cjs <port path> <units> <mode>
//   mode 'reply-then-gap' (the service's design): wake when the reply is readable, read it, wake again
//     when the inter-frame gap has passed, write the next request. Two wake-ups per request.
//   mode 'one-timer': write, then wake once when the reply and the gap should both be over, read, write the
//     next request at once. One wake-up per request, but the gap is guessed, not seen: a slave that
//     answers late gets the next request on top of its reply. Measured only to show what it would save.
//
// Same port mechanics as src/drivers/modbus/modbus-rtu-port.ts (the binding's poller, readSync and writeSync on
// the non-blocking descriptor), none of the service's queue, devices, store or county link. Prints one line
// `requests <n>` every second on stdout.
import { readSync, writeSync } from 'node:fs';
import { autoDetect } from '@serialport/bindings-cpp';
import { crc16 } from '../../src/drivers/modbus/crc16.ts';

type Mode = 'reply-then-gap' | 'one-timer';

const [path, unitsText, modeText] = process.argv.slice(2);
const units = Number(unitsText);
if (path === undefined || !Number.isInteger(units) || units < 1 || (modeText !== 'reply-then-gap' && modeText !== 'one-timer')) {
  console.error('usage: floor-master <port path> <units> reply-then-gap|one-timer');
  process.exit(2);
}
const mode: Mode = modeText;

const BAUD = 9600;
const BITS_PER_CHAR = 10;
// As src/drivers/modbus/modbus-bus.ts rounds it: 3.5 characters, whole milliseconds plus one.
const GAP_MS = Math.ceil((3.5 * BITS_PER_CHAR * 1000) / BAUD) + 1;
// Read 2 discrete inputs (button, tamper): an 8-byte request, a 6-byte reply.
const REPLY_BYTES = 6;
const EXCHANGE_WIRE_MS = ((8 + REPLY_BYTES) * BITS_PER_CHAR * 1000) / BAUD;

/** The request to each unit, built once. */
const requests = Array.from({ length: units }, (_, i) => {
  const request = Buffer.from([i + 1, 2, 0, 0, 0, 2, 0, 0]);
  request.writeUInt16LE(crc16(request, 0, 6), 6);
  return request;
});

interface Polled {
  fd: number;
  poller: { on(event: 'readable', listener: (err: Error | null) => void): unknown; poll(events: number): void };
}

const port = (await autoDetect().open({ path, baudRate: BAUD, parity: 'none', dataBits: 8, stopBits: 1 })) as unknown as Polled;
const chunk = Buffer.allocUnsafe(256);
let next = 0;
let received = 0;
let done = 0;

function send(): void {
  received = 0;
  writeSync(port.fd, requests[next]!);
  next = (next + 1) % units;
  if (mode === 'one-timer') setTimeout(readWhenDue, Math.ceil(EXCHANGE_WIRE_MS) + GAP_MS);
}

function readSome(): void {
  try {
    received += readSync(port.fd, chunk, 0, chunk.length, null);
  } catch {
    // EAGAIN: nothing yet.
  }
}

function readWhenDue(): void {
  readSome();
  if (received < REPLY_BYTES) return void setTimeout(readWhenDue, 1);
  done++;
  send();
}

if (mode === 'reply-then-gap') {
  port.poller.on('readable', () => {
    readSome();
    port.poller.poll(1);
    if (received < REPLY_BYTES) return;
    received = 0;
    done++;
    setTimeout(send, GAP_MS);
  });
  port.poller.poll(1);
}
setInterval(() => console.log(`requests ${done}`), 1000);
send();
