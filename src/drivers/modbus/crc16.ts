/**
 * Modbus RTU CRC-16 (polynomial 0xA001 reflected, initial 0xFFFF). The CRC goes on the wire low byte
 * first, so `frame.readUInt16LE(frame.length - 2) === crc16(frame, 0, frame.length - 2)` for a good frame.
 */

// Table-driven: the benchmark's slave checks and signs every frame of a 16-unit bus.
const TABLE: Readonly<Uint16Array> = (() => {
  const table = new Uint16Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
    table[n] = c;
  }
  return table;
})();

export function crc16(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let crc = 0xffff;
  for (let i = start; i < end; i++) crc = (crc >>> 8) ^ (TABLE[(crc ^ (bytes[i] ?? 0)) & 0xff] ?? 0);
  return crc;
}

/** The frame followed by its CRC. */
export function withCrc(body: Uint8Array): Buffer {
  const frame = Buffer.alloc(body.length + 2);
  frame.set(body, 0);
  frame.writeUInt16LE(crc16(body), body.length);
  return frame;
}

/** Whether the last two bytes are the CRC of the rest. */
export function hasValidCrc(frame: Uint8Array): boolean {
  if (frame.length < 3) return false;
  const received = (frame[frame.length - 2] ?? 0) | ((frame[frame.length - 1] ?? 0) << 8);
  return received === crc16(frame, 0, frame.length - 2);
}
