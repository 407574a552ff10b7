import { describe, expect, it } from 'vitest';
import { comparePlayOrder, preempts, type PlayOrderKey } from '../../src/broadcast/priority.ts';
import type { Priority } from '../../src/contract/vocabulary.ts';

describe('play order', () => {
  const key = (priority: Priority, seq: number, level?: 1 | 2 | 3 | 4): PlayOrderKey => ({ priority, seq, level });

  it('sorts by priority, then emergency level (missing last), then arrival', () => {
    const keys = [
      key('scheduled', 1),
      key('announcement', 2),
      key('emergency', 3, 3),
      key('local-alarm', 4),
      key('emergency', 5),
      key('emergency', 6, 1),
      key('announcement', 7),
      key('emergency', 8, 3),
    ];
    expect(keys.sort(comparePlayOrder).map((k) => k.seq)).toEqual([6, 3, 8, 5, 4, 2, 7, 1]);
  });

  it('puts the earlier arrival first among equals, in whatever order they are compared', () => {
    expect(comparePlayOrder(key('announcement', 2), key('announcement', 1))).toBeGreaterThan(0);
    expect(comparePlayOrder(key('announcement', 1), key('announcement', 2))).toBeLessThan(0);
    expect([key('emergency', 9, 2), key('emergency', 4, 2)].sort(comparePlayOrder).map((k) => k.seq)).toEqual([4, 9]);
  });

  it('preempts only for a strictly higher priority, whatever the level', () => {
    expect(preempts({ priority: 'emergency' }, { priority: 'local-alarm' })).toBe(true);
    expect(preempts({ priority: 'local-alarm' }, { priority: 'announcement' })).toBe(true);
    expect(preempts({ priority: 'announcement' }, { priority: 'scheduled' })).toBe(true);
    expect(preempts({ priority: 'emergency' }, { priority: 'emergency' })).toBe(false);
    expect(preempts({ priority: 'scheduled' }, { priority: 'announcement' })).toBe(false);
  });
});
