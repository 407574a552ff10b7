import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { advance, coldStartMs, flush, request, setup } from '../support/broadcast-rig.ts';

describe('BroadcastController queue expiry', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-11-29T05:00:00Z'));
  });
  afterEach(() => vi.useRealTimers());

  it('reports an item stopped that is found expired only when its turn comes (the wall clock jumped ahead of its timer)', async () => {
    const { controller, player, story, last } = await setup();
    controller.submit(request('a1', 'announcement'));
    controller.submit(request('a2', 'announcement', { expiresAt: Date.now() + 60_000 }));
    await advance(coldStartMs);
    // The clock is set forward (the county's time corrected it): a2 has expired, its timer has not fired.
    vi.setSystemTime(Date.now() + 10 * 60_000);
    player.last.finish();
    await flush();
    expect(story('a2')).toEqual(['a2 accepted', 'a2 queued', 'a2 stopped']);
    expect(last('a2', 'stopped').reason).toBe('expired while queued');
    expect(player.played()).toEqual(['a1']);
  });
});
