import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { deviceProfileSchema, type LineProfile } from '../../src/drivers/device/profile-schema.ts';
import { LineFramer, claimedUnit, formatLine, parseLine, xor8Checksum, type FramerOutput } from '../../src/drivers/line/line-protocol.ts';

function loadShippedProfile(): LineProfile {
  const profile = deviceProfileSchema.parse(JSON.parse(readFileSync(new URL('../../devices/ve-ac200-line.json', import.meta.url), 'utf8')));
  if (profile.protocol !== 'line') throw new Error('ve-ac200-line must be a line profile');
  return profile;
}

const profile = loadShippedProfile();

/** A line with a correct checksum around any inner text, even one formatLine would refuse. */
function withChecksum(inner: string): string {
  return `$${inner}*${xor8Checksum(inner).toString(16).toUpperCase().padStart(2, '0')}`;
}

describe('xor8Checksum', () => {
  it('matches the checksum of a published NMEA sentence', () => {
    // $GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47 — the textbook example.
    expect(xor8Checksum('GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,')).toBe(0x47);
  });

  it('is the XOR of the bytes, worked by hand for the profile example', () => {
    const byHand = [...'VE,3,BTN'].reduce((sum, ch) => sum ^ ch.charCodeAt(0), 0);
    expect(byHand).toBe(0x78);
    expect(xor8Checksum('VE,3,BTN')).toBe(0x78);
  });
});

describe('formatLine', () => {
  it('writes $talker,unit,body*XX with upper-case hex and no delimiter', () => {
    expect(formatLine('VE', 3, 'BTN')).toBe('$VE,3,BTN*78');
    expect(formatLine('VE', 3, 'LED,OFF')).toBe('$VE,3,LED,OFF*0E');
    expect(formatLine('VE', 0, 'HB')).toMatch(/^\$VE,0,HB\*[0-9A-F]{2}$/);
  });

  it('round-trips through parseLine', () => {
    expect(parseLine(formatLine('VE', 12, 'TAMP'), profile)).toEqual({
      ok: true,
      unit: 12,
      verb: 'TAMP',
      args: [],
      event: { kind: 'input', input: 'tamper', active: true },
    });
  });

  it('refuses what would make a malformed line', () => {
    expect(() => formatLine('ve', 1, 'HB')).toThrow('talker "ve"');
    expect(() => formatLine('VE', 248, 'HB')).toThrow('unit 248');
    expect(() => formatLine('VE', 1.5, 'HB')).toThrow('unit 1.5');
    expect(() => formatLine('VE', 1, 'led,on')).toThrow('verb');
    expect(() => formatLine('VE', 1, 'LED,O*N')).toThrow('without "$" or "*"');
    expect(() => formatLine('VE', 1, 'LED,\r\nON')).toThrow('printable ASCII');
  });
});

describe('parseLine', () => {
  it('maps each profile verb to its event', () => {
    expect(parseLine('$VE,3,BTN*78', profile)).toMatchObject({ ok: true, unit: 3, event: { kind: 'input', input: 'button', active: true } });
    expect(parseLine(formatLine('VE', 3, 'BTNUP'), profile)).toMatchObject({ ok: true, event: { input: 'button', active: false } });
    expect(parseLine('$VE,3,HB*2A', profile)).toMatchObject({ ok: true, verb: 'HB', event: { kind: 'heartbeat' } });
  });

  it('returns the arguments after the verb, empty ones included', () => {
    expect(parseLine(formatLine('VE', 7, 'HB,fw-1_2,,9'), profile)).toMatchObject({ ok: true, args: ['fw-1_2', '', '9'] });
  });

  it('accepts lower-case hex, since the checksum still proves the line', () => {
    expect(parseLine('$VE,3,HB*2a', profile)).toMatchObject({ ok: true });
  });

  it.each([
    ['a wrong checksum', '$VE,3,BTN*79', 'checksum', 'checksum: got 79, computed 78', 3],
    ['a flipped bit in the body', '$VE,3,BTM*78', 'checksum', 'checksum: got 78, computed 7B', 3],
    ['no "$"', 'VE,3,BTN*78', 'garbage', 'does not start with "$": "VE,3,BTN*78"', undefined],
    ['no "*"', '$VE,3,BTN', 'garbage', 'no "*" before the checksum: "$VE,3,BTN"', 3],
    ['a checksum that is not hex', '$VE,3,BTN*7G', 'garbage', 'checksum field "7G" is not two hex digits', 3],
    ['a one-digit checksum', '$VE,3,BTN*7', 'garbage', 'checksum field "7" is not two hex digits', 3],
    ['a control byte', withChecksum('VE,3,B\u0001N'), 'garbage', 'byte 0x01 at column 8 does not belong in a line', 3],
    ['another talker', formatLine('AB', 3, 'BTN'), 'garbage', 'talker "AB" is not "VE"', 3],
    ['an unknown verb', formatLine('VE', 3, 'XYZ'), 'garbage', 'unknown verb "XYZ"', 3],
    ['a unit that is not a number', withChecksum('VE,x,BTN'), 'garbage', 'unit "x" is not a number 0-247', undefined],
    ['a unit out of range', withChecksum('VE,300,BTN'), 'garbage', 'unit "300" is not a number 0-247', undefined],
    ['a lower-case verb', withChecksum('VE,3,btn'), 'garbage', 'verb "btn" is not two to eight upper-case letters', 3],
  ])('rejects %s, naming what is wrong', (_what, text, kind, reason, unit) => {
    const result = parseLine(text, profile);
    expect(result).toMatchObject({ ok: false, kind, reason });
    expect(result.ok === false ? result.unit : 'ok').toBe(unit);
  });

  it('rejects a line longer than the profile allows, before reading it', () => {
    const text = formatLine('VE', 3, `HB,${'A'.repeat(100)}`);
    expect(parseLine(text, profile)).toEqual({ ok: false, kind: 'overlong', reason: `line of ${text.length} bytes is longer than 96`, unit: 3 });
  });
});

describe('claimedUnit', () => {
  it('reads the unit field of broken lines, and nothing else', () => {
    expect(claimedUnit('$VE,3,BT')).toBe(3);
    expect(claimedUnit('$VE,12*00')).toBe(12);
    expect(claimedUnit('$VE,')).toBeUndefined();
    expect(claimedUnit('VE,3,BTN')).toBeUndefined();
    expect(claimedUnit('$VE,999,BTN')).toBeUndefined();
  });
});

describe('LineFramer', () => {
  const bytes = (text: string): Buffer => Buffer.from(text, 'latin1');
  function fresh(maxLength = 32): LineFramer {
    const framer = new LineFramer(maxLength);
    framer.push(bytes('\n')); // past the resync that follows every open
    return framer;
  }

  it('joins a line split across chunks and accepts CR LF or LF alone', () => {
    const framer = fresh();
    expect(framer.push(bytes('$VE,1,'))).toEqual([]);
    expect(framer.push(bytes('HB*00\r\n$VE,2,HB*00\n'))).toEqual([
      { kind: 'line', text: '$VE,1,HB*00' },
      { kind: 'line', text: '$VE,2,HB*00' },
    ]);
  });

  it('skips empty lines', () => {
    expect(fresh().push(bytes('\r\n\n'))).toEqual([]);
  });

  it('reports an endless line once, keeps memory bounded, and resyncs at the next delimiter', () => {
    const framer = fresh(16);
    const out: FramerOutput[] = [];
    for (let i = 0; i < 100; i++) out.push(...framer.push(bytes('$VE,1,AAAAAAAAAAAAAAAAAAAA'.slice(i === 0 ? 0 : 6))));
    expect(out).toEqual([{ kind: 'overlong', length: 18, head: '$VE,1,AAAAAAAAAA' }]);
    expect(framer.push(bytes('AAAA\r\n$VE,1,HB*00\r\n'))).toEqual([{ kind: 'line', text: '$VE,1,HB*00' }]);
  });

  it('allows exactly maxLength bytes before the delimiter', () => {
    const framer = fresh(16);
    expect(framer.push(bytes(`${'$'.padEnd(16, 'A')}\r\n`))).toEqual([{ kind: 'line', text: '$'.padEnd(16, 'A') }]);
    expect(framer.push(bytes(`${'$'.padEnd(17, 'A')}\n`))).toEqual([{ kind: 'overlong', length: 17, head: '$'.padEnd(16, 'A') }]);
  });

  it('starts a new line at "$", handing back the cut fragment', () => {
    expect(fresh().push(bytes('$VE,1,BT$VE,1,HB*00\r\n'))).toEqual([
      { kind: 'cut', text: '$VE,1,BT' },
      { kind: 'line', text: '$VE,1,HB*00' },
    ]);
  });

  it('ends an overlong line at "$" too, so the next line is not lost', () => {
    const framer = fresh(16);
    const out = framer.push(bytes(`${'A'.repeat(40)}$VE,1,HB*00\r\n`));
    expect(out).toEqual([
      { kind: 'overlong', length: 18, head: 'AAAAAAAAAAAAAAAA' },
      { kind: 'line', text: '$VE,1,HB*00' },
    ]);
  });

  it('after reset, calls what precedes the first delimiter stale, unless it starts a line', () => {
    const framer = new LineFramer(32);
    expect(framer.push(bytes('1,HB*2A\r\n$VE,1,HB*00\r\n'))).toEqual([
      { kind: 'stale', text: '1,HB*2A' },
      { kind: 'line', text: '$VE,1,HB*00' },
    ]);
    framer.reset();
    expect(framer.push(bytes('$VE,1,B$VE,1,HB*00\r\n$VE,1,BT$VE,1,HB*00\r\n'))).toEqual([
      { kind: 'stale', text: '$VE,1,B' },
      { kind: 'line', text: '$VE,1,HB*00' },
      { kind: 'cut', text: '$VE,1,BT' },
      { kind: 'line', text: '$VE,1,HB*00' },
    ]);
    framer.reset();
    expect(framer.push(bytes('$VE,1,HB*00\r\n'))).toEqual([{ kind: 'line', text: '$VE,1,HB*00' }]);
  });
});
