import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BroadcastController } from '../../src/broadcast/controller.ts';
import { FakePlayer, advance, coldStartMs, flush, relayRig, request, settings, setup } from '../support/broadcast-rig.ts';
import { memoryLogger } from '../support/log-sink.ts';

// Relay writes, in order and in time, as the broadcast controller drives them (zones on rb1/rb3, power on rb2).
describe('BroadcastController relays and amplifiers', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-11-29T05:00:00Z'));
  });
  afterEach(() => vi.useRealTimers());

  it('switches every amplifier, then every zone, off at start: nothing stays powered after a restart', async () => {
    const { logger } = memoryLogger();
    const rig = relayRig(['rb1', 'rb2', 'rb3'], logger);
    const controller = new BroadcastController({ config: settings, devices: rig.port, player: new FakePlayer(), logger, onEvent: () => {} });
    controller.start();
    await flush();
    expect(rig.writes).toEqual(['0 rb2/0 off', '0 rb2/1 off', '0 rb1/0 off', '0 rb1/1 off', '0 rb3/0 off']);
    await controller.stop();
  });

  it('switches zones, powers amplifiers a gap apart, warms up, plays, then keeps them on for the idle tail', async () => {
    const { controller, rig, player, story, last } = await setup();
    controller.submit(request('s1', 'scheduled', { zones: ['z1', 'z3'] }));
    await advance(500 + coldStartMs - 1);
    expect(player.runs).toHaveLength(0);
    expect(rig.writes).toEqual(['0 rb1/0 on', '0 rb3/0 on', '0 rb2/0 on', '500 rb2/1 on']);
    await advance(1);
    expect(player.runs.map((r) => [r.what, r.job.volume, r.startedAt - Date.now()])).toEqual([['s1', 60, 0]]);
    expect(story()).toEqual(['s1 accepted', 's1 started']);
    expect(last('s1', 'started').at).toBe(Date.now());

    await advance(3000);
    player.last.finish();
    await advance(20_000 - 1);
    expect(story()).toEqual(['s1 accepted', 's1 started', 's1 finished']);
    expect(rig.writes).toHaveLength(4);
    await advance(1);
    expect(rig.writes.slice(4)).toEqual(['25000 rb2/0 off', '25000 rb2/1 off', '25000 rb1/0 off', '25000 rb3/0 off']);
    await controller.stop();
  });

  it('plays back-to-back items without relay chatter or a second warm-up; switches off what the next one does not use', async () => {
    const { controller, rig, player, story } = await setup();
    controller.submit(request('s1', 'scheduled', { zones: ['z1', 'z3'] }));
    await advance(2000);
    player.last.finish();
    await advance(1000);
    rig.reset();
    controller.submit(request('s2', 'scheduled', { zones: ['z1'] }));
    await flush();
    // z3 off at once; amplifier B, no longer needed, gets its own idle tail; z1 and amplifier A untouched.
    expect(rig.writes).toEqual(['0 rb3/0 off']);
    expect(player.last.what).toBe('s2');
    expect(story('s2')).toEqual(['s2 accepted', 's2 started']);
    await advance(20_000);
    expect(rig.writes).toEqual(['0 rb3/0 off', '20000 rb2/1 off']);
    expect(rig.board('rb2').relay(0)).toBe(true);
    await controller.stop();
  });

  it('warms up only the amplifiers that were off when an emergency widens the zones', async () => {
    const { controller, rig, player } = await setup();
    controller.submit(request('s1', 'scheduled'));
    await advance(coldStartMs);
    rig.reset();
    controller.submit(request('e1', 'emergency', { level: 2, zones: ['z1', 'z2', 'z3'] }));
    await advance(coldStartMs - 1);
    expect(player.last.what).toBe('s1');
    await advance(1);
    expect(player.last.what).toBe('e1');
    expect(rig.writes).toEqual(['0 rb1/1 on', '0 rb3/0 on', '0 rb2/1 on']);
    await controller.stop();
  });

  it('counts an amplifier warm-up across a preemption: the emergency waits only for what is left of it', async () => {
    const { controller, rig, player, story } = await setup();
    controller.submit(request('s1', 'scheduled'));
    await advance(1000);
    controller.submit(request('e1', 'emergency', { level: 1 }));
    await advance(499);
    expect(player.runs).toEqual([]);
    await advance(1);
    expect(player.played()).toEqual(['e1']);
    expect(story()).toEqual(['s1 accepted', 'e1 accepted', 's1 preempted', 'e1 started']);
    expect(rig.writes).toEqual(['0 rb1/0 on', '0 rb2/0 on']);
    await controller.stop();
  });

  it('names zones of a faulty amplifier in every event while the fault lasts', async () => {
    const { controller, player, last } = await setup();
    controller.setAmplifierFault('ampB', 'line fault');
    controller.submit(request('a1', 'announcement', { zones: ['z1', 'z3'] }));
    await advance(2000);
    const fault = [{ zone: 'z3', amplifier: 'ampB', fault: 'amplifier ampB: line fault' }];
    expect(last('a1', 'accepted').faultyZones).toEqual(fault);
    expect(last('a1', 'started').faultyZones).toEqual(fault);
    controller.setAmplifierFault('ampB', null);
    player.last.finish();
    await flush();
    expect(last('a1', 'finished').faultyZones).toEqual([]);
  });

  it('plays on in the zones that work when a relay write fails', async () => {
    const { controller, player, rig, last, lines } = await setup();
    rig.board('rb3').setOnline(false);
    controller.submit(request('e1', 'emergency', { level: 1, zones: ['z1', 'z2', 'z3'] }));
    await advance(2000);
    expect(rig.writes).toEqual(['0 rb1/0 on', '0 rb1/1 on', '0 rb3/0 on FAILED', '0 rb2/0 on', '500 rb2/1 on']);
    expect(player.last.what).toBe('e1');
    expect(last('e1', 'started').faultyZones).toEqual([{ zone: 'z3', amplifier: 'ampB', fault: 'zone relay rb3/0: rb3: not answering (simulated)' }]);
    expect(lines.some((l) => l.msg === 'relay write failed' && l['relay'] === 'rb3/0')).toBe(true);
  });

  it('does not wait for ever on a relay board that never answers', async () => {
    const { controller, rig, player, last } = await setup({ powerOnGapMs: 0 });
    rig.hang('rb3');
    controller.submit(request('e1', 'emergency', { level: 1, zones: ['z3', 'z1'] }));
    await advance(2000 + coldStartMs);
    expect(rig.writes).toEqual(['0 rb3/0 on HUNG', '2000 rb1/0 on', '2000 rb2/1 on', '2000 rb2/0 on']);
    expect(player.last.startedAt - Date.now()).toBe(0);
    expect(last('e1', 'started').faultyZones).toEqual([{ zone: 'z3', amplifier: 'ampB', fault: 'zone relay rb3/0: no answer within 2000 ms' }]);
  });
});
