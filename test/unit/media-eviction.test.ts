import { describe, expect, it } from 'vitest';
import { bytesText, secondsText } from '../../src/media/amounts.ts';
import { chooseEvictions, evictionsFor, type LibraryFile } from '../../src/media/eviction.ts';

const file = (name: string, bytes: number, lastUsedAt: number): LibraryFile => ({ file: `programmes/${name}`, bytes, lastUsedAt });
const names = (files: readonly LibraryFile[]): string[] => files.map((f) => f.file.slice('programmes/'.length));

describe('chooseEvictions', () => {
  const files = [file('c.mp3', 300, 30), file('a.mp3', 100, 10), file('wanted.mp3', 500, 5), file('b.mp3', 200, 20)];

  it('takes the least recently used first, skips kept files, and stops once enough is freed', () => {
    const plan = chooseEvictions(files, new Set(['programmes/wanted.mp3']), 250);
    expect(names(plan.evict)).toEqual(['a.mp3', 'b.mp3']);
    expect(plan.freed).toBe(300);
  });

  it('chooses nothing without an excess, and all it may when that is not enough', () => {
    expect(chooseEvictions(files, new Set(), 0)).toEqual({ evict: [], freed: 0 });
    const plan = chooseEvictions(files, new Set(['programmes/wanted.mp3']), 10_000);
    expect(names(plan.evict)).toEqual(['a.mp3', 'b.mp3', 'c.mp3']);
    expect(plan.freed).toBe(600);
  });

  it('breaks a tie in last use by name, so every run chooses the same', () => {
    const tied = [file('y.mp3', 100, 7), file('x.mp3', 100, 7)];
    expect(names(chooseEvictions(tied, new Set(), 1).evict)).toEqual(['x.mp3']);
  });
});

describe('evictionsFor', () => {
  const files = [file('old.mp3', 400, 1), file('older.mp3', 400, 0), file('wanted.mp3', 400, 2)];
  const keep = new Set(['programmes/wanted.mp3']);

  it('makes room for a new file and for what downloads in flight still have to write', () => {
    expect(names(evictionsFor(files, keep, { pendingBytes: 0, ownBytes: 300, quotaBytes: 1500 }))).toEqual([]);
    expect(names(evictionsFor(files, keep, { pendingBytes: 0, ownBytes: 400, quotaBytes: 1500 }))).toEqual(['older.mp3']);
    expect(names(evictionsFor(files, keep, { pendingBytes: 400, ownBytes: 400, quotaBytes: 1500 }))).toEqual(['older.mp3', 'old.mp3']);
  });

  it('deletes nothing for a file that cannot fit anyway, only what the quota itself demands', () => {
    expect(names(evictionsFor(files, keep, { pendingBytes: 0, ownBytes: 2000, quotaBytes: 1500 }))).toEqual([]);
    expect(names(evictionsFor(files, keep, { pendingBytes: 0, ownBytes: 2000, quotaBytes: 1000 }))).toEqual(['older.mp3']);
  });
});

describe('amounts in reasons', () => {
  it('reads as an engineer would say them', () => {
    expect([999, 1000, 1_234_567, 1_073_741_824].map(bytesText)).toEqual(['999 bytes', '1 kB', '1.2 MB', '1.1 GB']);
    expect([300, 30_000, 59_960, -5].map(secondsText)).toEqual(['0.3 s', '30 s', '60 s', '0 s']);
  });
});
