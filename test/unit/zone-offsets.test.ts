import { describe, expect, it } from 'vitest';
import { zoneOffsets } from '../../src/platform/zone-offsets.ts';

const HOUR = 3_600_000;

/** The tz database's answer against Intl's (the fallback), over years and across daylight-saving changes. */
describe('zone offsets from the tz database', () => {
  for (const zone of ['Asia/Shanghai', 'Europe/Berlin', 'America/New_York', 'America/Santiago', 'Asia/Kolkata', 'UTC']) {
    it(`agrees with Intl every 7 h from 1990 to 2040 in ${zone}`, () => {
      const tzif = zoneOffsets(zone);
      const intl = zoneOffsets(zone, { read: () => Buffer.from('not a tz file') });
      expect(tzif.source).toBe('tzif');
      expect(intl.source).toBe('intl');
      for (let t = Date.UTC(1990, 0, 1); t < Date.UTC(2040, 0, 1); t += 7 * HOUR) expect(tzif.offsetAt(t)).toBe(intl.offsetAt(t));
    });
  }

  it('falls back to Intl for a zone the file system lacks, and refuses what neither knows', () => {
    expect(zoneOffsets('Asia/Shanghai', { zoneinfo: '/nonexistent' }).offsetAt(0)).toBe(8 * HOUR);
    expect(() => zoneOffsets('Mars/Olympus_Mons').offsetAt(0)).toThrow(RangeError);
    // A name is a path under zoneinfo: one that would walk out of it is not read.
    expect(() => zoneOffsets('../../etc/passwd').offsetAt(0)).toThrow(RangeError);
  });
});
