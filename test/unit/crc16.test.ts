import { describe, expect, it } from 'vitest';
import { crc16, hasValidCrc, withCrc } from '../../src/drivers/modbus/crc16.ts';

/** The bit-by-bit definition, to hold the table-driven version to. */
function reference(bytes: Uint8Array): number {
  let crc = 0xffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

describe('crc16 (Modbus)', () => {
  it('gives the published check value of "123456789"', () => {
    expect(crc16(Buffer.from('123456789', 'ascii'))).toBe(0x4b37);
  });

  it('signs a read-holding-registers request as the Modbus spec example does (C5 CD on the wire)', () => {
    const frame = withCrc(Buffer.from([0x01, 0x03, 0x00, 0x00, 0x00, 0x0a]));
    expect([...frame.subarray(6)]).toEqual([0xc5, 0xcd]);
    expect(hasValidCrc(frame)).toBe(true);
  });

  it('agrees with the bitwise definition on random frames, and over a sub-range', () => {
    let seed = 12345;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed & 0xff;
    };
    for (let n = 0; n < 200; n++) {
      const bytes = Uint8Array.from({ length: 1 + (n % 40) }, random);
      expect(crc16(bytes)).toBe(reference(bytes));
    }
    const bytes = Uint8Array.from([9, 9, 1, 2, 3, 9]);
    expect(crc16(bytes, 2, 5)).toBe(reference(Uint8Array.from([1, 2, 3])));
  });

  it('rejects a frame with any single bit flipped, and frames too short to carry a CRC', () => {
    const frame = withCrc(Buffer.from([0x11, 0x02, 0x00, 0x00, 0x00, 0x02]));
    for (let bit = 0; bit < frame.length * 8; bit++) {
      const bad = Buffer.from(frame);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      expect(hasValidCrc(bad)).toBe(false);
    }
    expect(hasValidCrc(Buffer.from([0xff, 0xff]))).toBe(false);
  });
});
