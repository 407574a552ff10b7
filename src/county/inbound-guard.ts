import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

/**
 * Bounded memory for whatever the broker sends. mqtt.js (mqtt-packet) buffers a packet whole before it
 * parses it, so one PUBLISH bigger than the unit's memory limit got the service killed by the kernel, then
 * handed the same message again on every reconnect. This sits between the socket and mqtt.js and reads only MQTT fixed
 * headers: a packet within the cap passes through untouched; a PUBLISH over it keeps its variable header
 * (topic, packet id, MQTT 5 properties), its body is dropped as it streams by, and mqtt.js is handed the
 * same PUBLISH with an empty payload, so it acknowledges it as usual and the broker does not send it again.
 * A few topics (the retained schedule) may have a bigger cap of their own: a PUBLISH over the general cap is
 * read up to its topic anyway, so one within its topic's cap is handed on whole instead.
 * MQTT 3.1.1 has no way to tell the broker a size limit; with MQTT 5 the link also sends maximumPacketSize.
 */

export interface OversizedPublish {
  topic: string;
  /** Bytes of payload discarded unread. */
  payloadBytes: number;
}

export interface InboundGuardOptions {
  /** Largest whole packet (fixed header included) handed to mqtt.js, on any topic not in `topicCaps`. */
  maxPacketBytes: number;
  /** Topics (exact names) whose PUBLISH may be bigger than `maxPacketBytes`, with their own cap. */
  topicCaps?: ReadonlyMap<string, number>;
  protocolVersion: 4 | 5;
  /** Called just before the stand-in (empty-payload) PUBLISH is handed on. */
  onOversized: (publish: OversizedPublish) => void;
}

const PUBLISH = 3;
/** A variable byte integer is at most 4 bytes (MQTT 3.1.1 §2.2.3, 5.0 §1.5.5). */
const MAX_VARINT_BYTES = 4;

/** A protocol error on the inbound stream: the connection is dropped and the link reconnects. */
export class InboundPacketError extends Error {
  override name = 'InboundPacketError';
  /** mqtt.js passes only errors with a code on to the client's 'error' event. */
  readonly code = 'EMQTTPACKET';
}

type State =
  | { at: 'fixed'; header: number[] }
  | { at: 'pass'; left: number }
  | { at: 'variable'; fixed: number[]; total: number; bytes: Buffer[]; have: number }
  | { at: 'discard'; left: number; standIn: Buffer; publish: OversizedPublish };

/**
 * The packet-size filter as a pure function of the bytes: feed it chunks as they arrive, hand on what it
 * returns. Keeps at most one fixed header and one PUBLISH variable header (itself under the cap).
 */
export function createInboundFilter(options: InboundGuardOptions): (chunk: Buffer) => Buffer[] {
  let state: State = { at: 'fixed', header: [] };
  return (chunk) => {
    const out: Buffer[] = [];
    let i = 0;
    while (i < chunk.length) {
      switch (state.at) {
        case 'fixed': {
          const header = state.header;
          header.push(chunk[i++]!);
          if (header.length < 2) break;
          if ((header[header.length - 1]! & 0x80) !== 0) {
            if (header.length === 1 + MAX_VARINT_BYTES) throw new InboundPacketError('malformed remaining length in an MQTT fixed header');
            break;
          }
          const remaining = readVarint(header, 1)!.value;
          if (header.length + remaining <= options.maxPacketBytes) {
            out.push(Buffer.from(header));
            state = remaining === 0 ? { at: 'fixed', header: [] } : { at: 'pass', left: remaining };
          } else if (header[0]! >> 4 === PUBLISH) {
            state = { at: 'variable', fixed: header, total: remaining, bytes: [], have: 0 };
          } else {
            throw new InboundPacketError(
              `an MQTT packet of type ${header[0]! >> 4} and ${remaining} bytes, over the ${options.maxPacketBytes}-byte limit`,
            );
          }
          break;
        }
        case 'pass': {
          const n = Math.min(state.left, chunk.length - i);
          out.push(chunk.subarray(i, i + n));
          i += n;
          state = state.left === n ? { at: 'fixed', header: [] } : { at: 'pass', left: state.left - n };
          break;
        }
        case 'variable': {
          const first = state.fixed[0]!;
          const need = variableHeaderLength(Buffer.concat(state.bytes), first, options.protocolVersion);
          const wanted = need ?? state.have + 1;
          if (wanted > options.maxPacketBytes || wanted > state.total)
            throw new InboundPacketError(
              `an MQTT PUBLISH of ${state.total} bytes whose header does not fit the ${options.maxPacketBytes}-byte limit`,
            );
          if (need !== undefined && state.have >= need) {
            const variable = Buffer.concat(state.bytes);
            const topicLength = variable.readUInt16BE(0);
            const publish = { topic: variable.toString('utf8', 2, 2 + topicLength), payloadBytes: state.total - need };
            const topicCap = options.topicCaps?.get(publish.topic);
            if (topicCap !== undefined && state.fixed.length + state.total <= topicCap) {
              out.push(Buffer.from(state.fixed), variable);
              state = publish.payloadBytes === 0 ? { at: 'fixed', header: [] } : { at: 'pass', left: publish.payloadBytes };
              break;
            }
            const standIn = Buffer.concat([Buffer.from([first]), encodeVarint(need), variable]);
            state = { at: 'discard', left: state.total - need, standIn, publish };
            break;
          }
          // Byte by byte while the length is unknown (a few bytes), then all that is still missing at once.
          const n = Math.min(wanted - state.have, chunk.length - i);
          state.bytes.push(Buffer.from(chunk.subarray(i, i + n)));
          state.have += n;
          i += n;
          break;
        }
        case 'discard': {
          const n = Math.min(state.left, chunk.length - i);
          i += n;
          state.left -= n;
          break;
        }
      }
      // Handed on once the body has gone by, so the broker sees the PUBACK after it sent the whole message.
      if (state.at === 'discard' && state.left === 0) {
        options.onOversized(state.publish);
        out.push(state.standIn);
        state = { at: 'fixed', header: [] };
      }
    }
    return out;
  };
}

/** Length of a PUBLISH variable header from its first bytes, or undefined until enough of them are here. */
function variableHeaderLength(bytes: Buffer, first: number, protocolVersion: 4 | 5): number | undefined {
  if (bytes.length < 2) return undefined;
  const qos = (first >> 1) & 0x03;
  const beforeProperties = 2 + bytes.readUInt16BE(0) + (qos > 0 ? 2 : 0);
  if (protocolVersion === 4) return beforeProperties;
  if (bytes.length <= beforeProperties) return undefined;
  const properties = readVarint(bytes, beforeProperties);
  if (properties === undefined) {
    if (bytes.length - beforeProperties >= MAX_VARINT_BYTES) throw new InboundPacketError('malformed property length in an MQTT PUBLISH');
    return undefined;
  }
  return beforeProperties + properties.bytes + properties.value;
}

function readVarint(bytes: ArrayLike<number>, from: number): { value: number; bytes: number } | undefined {
  let value = 0;
  for (let n = 0; n < MAX_VARINT_BYTES && from + n < bytes.length; n++) {
    const byte = bytes[from + n]!;
    value += (byte & 0x7f) * 128 ** n;
    if ((byte & 0x80) === 0) return { value, bytes: n + 1 };
  }
  return undefined;
}

function encodeVarint(value: number): Buffer {
  const bytes: number[] = [];
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    bytes.push(byte);
  } while (value > 0);
  return Buffer.from(bytes);
}

/** What net.connect and tls.connect take as `onread`: reads into one buffer, reused for every read. */
export interface OnRead {
  buffer: Buffer;
  callback: (bytes: number, buffer: Buffer) => boolean;
}

const READ_BUFFER_BYTES = 64 * 1024;

/**
 * The socket as mqtt.js sees it: writes go straight through, reads pass the filter. `open` must build the
 * socket with the `onread` given: every read then lands in the same 64 KiB buffer, so the body of a big
 * message is dropped without allocating anything (with a Buffer per read, the garbage of a big message
 * raised RSS by a good part of its size before the collector caught up). What the filter hands on is copied out of it. Back-pressure is kept:
 * the socket is paused while mqtt.js has not taken what it was given.
 */
export function guardedConnection<S extends Socket>(open: (onread: OnRead) => S, options: InboundGuardOptions): { socket: S; stream: Duplex } {
  const filter = createInboundFilter(options);
  let socket: S | undefined;
  const stream: Duplex = new Duplex({
    read() {
      socket?.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      socket!.write(chunk, callback);
    },
    // mqtt-packet writes a packet in several chunks, corked: all of them reach the socket in one go, at once,
    // instead of one per write callback (a later tick, i.e. after whatever blocks the loop next).
    writev(chunks, callback) {
      const target = socket!;
      target.cork();
      for (const { chunk } of chunks.slice(0, -1)) target.write(chunk as Buffer);
      target.write(chunks[chunks.length - 1]!.chunk as Buffer, callback);
      target.uncork();
    },
    final(callback) {
      socket!.end(callback);
    },
    destroy(error, callback) {
      socket?.destroy();
      callback(error);
    },
  });
  const onread: OnRead = {
    buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES),
    callback: (bytes, buffer) => {
      let parts: Buffer[];
      try {
        parts = filter(buffer.subarray(0, bytes));
      } catch (error) {
        stream.destroy(error as Error);
        return false;
      }
      let more = true;
      for (const part of parts) more = stream.push(Buffer.from(part)) && more;
      return more;
    },
  };
  socket = open(onread);
  socket.on('end', () => stream.push(null));
  socket.on('error', (error) => stream.destroy(error));
  socket.on('close', () => stream.destroy());
  return { socket, stream };
}
