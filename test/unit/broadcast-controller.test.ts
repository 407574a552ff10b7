import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { advance, coldStartMs, flush, request, setup } from '../support/broadcast-rig.ts';
import type { AudioOutput, AudioState, OutputCheck } from '../../src/broadcast/types.ts';

/** An output whose checks the test answers one by one. */
class FakeOutput implements AudioOutput {
  readonly device = 'hw:0';
  readonly pending: ((result: OutputCheck) => void)[] = [];
  checks = 0;
  check(): Promise<OutputCheck> {
    this.checks++;
    return new Promise((resolve) => this.pending.push(resolve));
  }
  answer(result: OutputCheck): void {
    for (const resolve of this.pending.splice(0)) resolve(result);
  }
}

// Which request plays when, and what is reported; relay order and timing are in broadcast-sound-path.test.ts.
describe('BroadcastController', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-11-29T05:00:00Z'));
  });
  afterEach(() => vi.useRealTimers());

  it('preempts a scheduled programme at once for an emergency, without a second warm-up when its amplifiers are on', async () => {
    const { controller, rig, player, story, last } = await setup();
    controller.submit(request('s1', 'scheduled'));
    await advance(coldStartMs);
    const scheduled = player.last;
    rig.reset();
    controller.submit(request('e1', 'emergency', { level: 1 }));
    await flush();
    expect(scheduled.stopCalls).toBe(1);
    expect(story()).toEqual(['s1 accepted', 's1 started', 'e1 accepted', 's1 preempted', 'e1 started']);
    expect(last('s1', 'preempted').reason).toBe('preempted by emergency e1');
    expect(last('e1', 'started')).toMatchObject({ level: 1, at: Date.now() });
    expect(player.last).toMatchObject({ what: 'e1', job: { volume: 100 } });
    expect(rig.writes).toEqual([]);
    // Not resumed: after the emergency, nothing else plays and the tail runs out.
    player.last.finish();
    await advance(20_000);
    expect(player.played()).toEqual(['s1', 'e1']);
    expect(rig.writes).toEqual(['20000 rb2/0 off', '20000 rb1/0 off']);
    await controller.stop();
  });

  it('starts the next item when a stopped run does not exit, after the stop wait', async () => {
    const { controller, player } = await setup();
    controller.submit(request('s1', 'scheduled'));
    await advance(coldStartMs);
    player.last.stopHangs = true;
    controller.submit(request('a1', 'announcement'));
    await advance(2499);
    expect(player.played()).toEqual(['s1']);
    await advance(1);
    expect(player.played()).toEqual(['s1', 'a1']);
    await controller.stop();
  });

  it('queues equal priorities first come first served, lower ones behind them', async () => {
    const { controller, player, story } = await setup();
    controller.submit(request('a1', 'announcement'));
    controller.submit(request('a2', 'announcement'));
    controller.submit(request('s1', 'scheduled'));
    controller.submit(request('a3', 'announcement'));
    await advance(coldStartMs);
    expect(story().filter((s) => s.endsWith('queued'))).toEqual(['a2 queued', 's1 queued', 'a3 queued']);
    for (let i = 0; i < 3; i++) {
      player.last.finish();
      await flush();
    }
    expect(player.played()).toEqual(['a1', 'a2', 'a3', 's1']);
    expect(story().filter((s) => s.endsWith('preempted'))).toEqual([]);
  });

  it('queues a more serious emergency ahead of others, without cutting off the one on air', async () => {
    const { controller, player, story } = await setup();
    controller.submit(request('e3', 'emergency', { level: 3 }));
    await advance(coldStartMs);
    controller.submit(request('e3b', 'emergency', { level: 3 }));
    controller.submit(request('e1', 'emergency', { level: 1 }));
    await flush();
    expect(player.last.stopCalls).toBe(0);
    player.last.finish();
    await flush();
    player.last.finish();
    await flush();
    expect(player.played()).toEqual(['e3', 'e1', 'e3b']);
    expect(story('e1')).toEqual(['e1 accepted', 'e1 queued', 'e1 started', 'e1 finished']);
  });

  it('stops one queued item, the playing one, or all, reporting each', async () => {
    const { controller, player, story, last, rig } = await setup();
    for (const id of ['a1', 'a2', 'a3', 'a4']) controller.submit(request(id, 'announcement'));
    await advance(coldStartMs);
    expect(controller.stopPlayback({ requestId: 'a3' }, 'county stop')).toBe(1);
    expect(controller.stopPlayback({ requestId: 'a1' }, 'county stop')).toBe(1);
    await flush();
    expect(player.runs[0]!.stopCalls).toBe(1);
    expect(player.played()).toEqual(['a1', 'a2']);
    expect(controller.stopPlayback('all', 'operator')).toBe(2);
    await flush();
    expect(story().filter((s) => s.endsWith('stopped'))).toEqual(['a3 stopped', 'a1 stopped', 'a2 stopped', 'a4 stopped']);
    expect(last('a4', 'stopped').reason).toBe('operator');
    expect(controller.stopPlayback({ requestId: 'nope' }, 'x')).toBe(0);
    rig.reset();
    await advance(20_000);
    expect(rig.writes).toEqual(['20000 rb2/0 off', '20000 rb1/0 off']);
  });

  it('local stop silences everything at once, outranks an emergency, and holds nothing back for later', async () => {
    const { controller, player, story, last, rig } = await setup();
    controller.submit(request('e1', 'emergency', { level: 2, zones: ['z1', 'z3'] }));
    controller.submit(request('e2', 'emergency', { level: 2 }));
    await advance(2000);
    rig.reset();
    controller.setLocalStop(true);
    await flush();
    expect(player.last.stopCalls).toBe(1);
    expect(rig.writes).toEqual(['0 rb2/0 off', '0 rb2/1 off', '0 rb1/0 off', '0 rb3/0 off']);
    controller.submit(request('e3', 'emergency', { level: 1 }));
    controller.submit(request('t1', 'announcement', { status: 'test' }));
    await advance(60_000);
    expect(story().slice(-6)).toEqual(['e1 stopped', 'e2 stopped', 'e3 accepted', 'e3 stopped', 't1 accepted', 't1 tested']);
    expect(last('e3', 'stopped').reason).toBe('local stop active');
    expect(last('t1', 'tested').reason).toContain('local stop active');
    expect(player.played()).toEqual(['e1']);

    controller.setLocalStop(false);
    await advance(60_000);
    expect(player.played()).toEqual(['e1']);
    controller.submit(request('e4', 'emergency', { level: 1 }));
    await advance(coldStartMs);
    expect(player.played()).toEqual(['e1', 'e4']);
    await controller.stop();
  });

  it('drops an item that expires in the queue, but plays one that expires while playing to the end', async () => {
    const { controller, player, story, last } = await setup();
    const now = Date.now();
    controller.submit(request('a1', 'announcement', { expiresAt: now + 2000 }));
    controller.submit(request('a2', 'announcement', { expiresAt: now + 3000 }));
    await advance(3000);
    expect(story()).toEqual(['a1 accepted', 'a2 accepted', 'a2 queued', 'a1 started', 'a2 stopped']);
    expect(last('a2', 'stopped')).toMatchObject({ reason: 'expired while queued', at: now + 3000 });
    player.last.finish();
    await advance(30_000);
    expect(story('a1')).toEqual(['a1 accepted', 'a1 started', 'a1 finished']);
    expect(player.played()).toEqual(['a1']);
    controller.submit(request('a3', 'announcement', { expiresAt: Date.now() }));
    await flush();
    expect(last('a3', 'rejected').reason).toBe('expired before it could start');
  });

  it('wraps an exercise in the drill chime, instead of the normal chime, and marks every event exercise', async () => {
    const { controller, player, events } = await setup();
    controller.submit(request('x1', 'emergency', { level: 1, status: 'exercise', chime: true, repeat: 2 }));
    await advance(coldStartMs);
    for (let i = 0; i < 4; i++) {
      player.last.finish();
      await flush();
    }
    expect(player.played()).toEqual(['drill', 'x1', 'x1', 'drill']);
    expect(events.map((e) => [e.event, e.status])).toEqual([
      ['accepted', 'exercise'],
      ['started', 'exercise'],
      ['finished', 'exercise'],
    ]);
  });

  it('says so in every report when an exercise has no drill chime to play', async () => {
    const { controller, player, events } = await setup({ drillChime: undefined });
    controller.submit(request('x1', 'announcement', { status: 'exercise', chime: true }));
    await advance(coldStartMs);
    player.last.finish();
    await flush();
    player.last.finish();
    await flush();
    expect(player.played()).toEqual(['chime', 'x1']);
    expect(events.map((e) => [e.event, e.status, e.reason])).toEqual([
      ['accepted', 'exercise', 'no drill chime configured'],
      ['started', 'exercise', 'no drill chime configured'],
      ['finished', 'exercise', 'no drill chime configured'],
    ]);
  });

  it('fails an exercise whose drill chime fails rather than play it unannounced', async () => {
    const { controller, player, last } = await setup();
    controller.submit(request('x1', 'announcement', { status: 'exercise' }));
    await advance(coldStartMs);
    player.last.fail('drill.wav: sha256 mismatch');
    await flush();
    expect(player.played()).toEqual(['drill']);
    expect(last('x1', 'failed')).toMatchObject({ status: 'exercise', reason: 'drill chime failed, exercise not played: drill.wav: sha256 mismatch' });
  });

  it('plays the chime once and the content `repeat` times; a failed chime is noted, not fatal', async () => {
    const { controller, player, last } = await setup();
    controller.submit(request('a1', 'announcement', { chime: true, repeat: 3 }));
    await advance(coldStartMs);
    player.last.fail('chime device busy');
    for (let i = 0; i < 3; i++) {
      await flush();
      player.last.finish();
    }
    await flush();
    expect(player.played()).toEqual(['chime', 'a1', 'a1', 'a1']);
    expect(last('a1', 'finished').reason).toBe('chime failed: chime device busy');
  });

  it('reports started only once a run really started: a refused media file goes from accepted to failed', async () => {
    const { controller, player, story, last } = await setup();
    player.refuseNext = 'sha256 mismatch for siren.wav';
    controller.submit(request('m1', 'emergency', { level: 1, content: { kind: 'media', file: 'siren.wav', sha256: 'a'.repeat(64) } }));
    await advance(coldStartMs);
    expect(story('m1')).toEqual(['m1 accepted', 'm1 failed']);
    expect(last('m1', 'failed').reason).toBe('play 1 of 1: sha256 mismatch for siren.wav');
    // A refused chime holds nothing back: `started` comes with the content's run.
    player.refuseNext = 'media file not found: chime.wav';
    controller.submit(request('a1', 'announcement', { chime: true }));
    await flush();
    expect(story('a1')).toEqual(['a1 accepted', 'a1 started']);
    player.last.finish();
    await flush();
    expect(player.played()).toEqual(['siren.wav', 'chime', 'a1']);
    expect(last('a1', 'finished').reason).toBe('chime failed: media file not found: chime.wav');
  });

  it('checks the output at start, before each item (during the warm-up) and every interval while idle, never while playing', async () => {
    const output = new FakeOutput();
    const changes: AudioState[] = [];
    const { controller, player, story, last } = await setup({}, undefined, {
      output: { port: output, checkIntervalMs: 60_000, onChange: (s) => changes.push(s) },
    });
    expect(output.checks).toBe(1);
    output.answer({ ok: true });
    await flush();
    expect(controller.audioState()).toEqual({ device: 'hw:0', ok: true, checkedAt: Date.now() });
    expect(changes).toEqual([]);

    controller.submit(request('e1', 'emergency', { level: 1 }));
    await flush();
    expect(output.checks).toBe(2);
    // The check runs during the warm-up and does not lengthen it: sound at 1500 ms, as without one.
    await advance(1000);
    output.answer({ ok: true });
    await advance(coldStartMs - 1001);
    expect(story('e1')).toEqual(['e1 accepted']);
    await advance(1);
    expect(story('e1')).toEqual(['e1 accepted', 'e1 started']);
    await advance(60_000);
    expect(output.checks).toBe(2);
    player.last.finish();
    await advance(60_000);
    expect(output.checks).toBe(3);

    output.answer({ ok: false, reason: 'aplay exited with code 1: audio open error' });
    await flush();
    expect(changes).toEqual([{ device: 'hw:0', ok: false, reason: 'aplay exited with code 1: audio open error', checkedAt: Date.now() }]);
    controller.submit(request('e2', 'emergency', { level: 1 }));
    await flush();
    output.answer({ ok: false, reason: 'aplay exited with code 1: audio open error' });
    await advance(coldStartMs);
    expect(story('e2')).toEqual(['e2 accepted', 'e2 failed']);
    expect(last('e2', 'failed').reason).toBe('audio output hw:0: aplay exited with code 1: audio open error');
    expect(player.played()).toEqual(['e1']);
    // A test says what a real broadcast would meet.
    controller.submit(request('t1', 'emergency', { level: 1, status: 'test' }));
    await flush();
    expect(last('t1', 'tested').reason).toBe('test: nothing switched or played; audio output hw:0: aplay exited with code 1: audio open error');
    expect(changes).toHaveLength(1);
    await advance(60_000);
    output.answer({ ok: true });
    await flush();
    expect(changes.map((c) => c.ok)).toEqual([false, true]);
  });

  it('runs a test through every check but touches no relay and starts no player', async () => {
    const { controller, player, rig, story, last } = await setup();
    controller.setAmplifierFault('ampA', 'overheat');
    rig.board('rb3').setOnline(false);
    controller.submit(request('t1', 'emergency', { level: 1, status: 'test', zones: ['z1', 'z3', 'z9'] }));
    await advance(60_000);
    expect(story()).toEqual(['t1 accepted', 't1 tested']);
    expect(rig.writes).toEqual([]);
    expect(player.runs).toEqual([]);
    expect(last('t1', 'tested')).toMatchObject({
      status: 'test',
      reason: 'test: nothing switched or played; unknown zones: z9',
      faultyZones: [
        { zone: 'z1', amplifier: 'ampA', fault: 'amplifier ampA: overheat' },
        { zone: 'z3', amplifier: 'ampB', fault: 'zone relay rb3/0: device offline' },
      ],
    });
  });

  it('reports a failed player and goes on with the next item', async () => {
    const { controller, player, story, last } = await setup();
    controller.submit(request('a1', 'announcement', { repeat: 3 }));
    controller.submit(request('a2', 'announcement'));
    await advance(coldStartMs);
    player.last.fail('espeak-ng exited with code 1');
    await flush();
    expect(last('a1', 'failed').reason).toBe('play 1 of 3: espeak-ng exited with code 1');
    expect(player.played()).toEqual(['a1', 'a2']);
    player.throwOnStart = 'spawn ENOENT';
    controller.submit(request('a3', 'announcement'));
    player.last.finish();
    await flush();
    expect(story('a3')).toEqual(['a3 accepted', 'a3 queued', 'a3 failed']);
    expect(last('a3', 'failed').reason).toBe('play 1 of 1: player did not start: spawn ENOENT');
  });

  it('lets the sink call back into the controller, e.g. to re-issue a preempted programme', async () => {
    const events: string[] = [];
    const { controller, player } = await setup({}, (e) => {
      events.push(`${e.requestId} ${e.event}`);
      if (e.event === 'preempted') controller.submit(request(`${e.requestId}-again`, 'scheduled'));
    });
    controller.submit(request('s1', 'scheduled'));
    await advance(coldStartMs);
    controller.submit(request('e1', 'emergency', { level: 2 }));
    await flush();
    player.last.finish();
    await flush();
    expect(player.played()).toEqual(['s1', 'e1', 's1-again']);
    expect(events.slice(3)).toEqual(['s1 preempted', 's1-again accepted', 's1-again queued', 'e1 started', 'e1 finished', 's1-again started']);
  });

  it('keeps going when the event sink throws, and still delivers every event in order', async () => {
    let calls = 0;
    const { controller, player, story, lines } = await setup({}, () => {
      calls++;
      throw new Error('outbox full');
    });
    controller.submit(request('a1', 'announcement'));
    await advance(coldStartMs);
    player.last.finish();
    await flush();
    expect(story()).toEqual(['a1 accepted', 'a1 started', 'a1 finished']);
    expect(calls).toBe(3);
    expect(lines.filter((l) => l.msg === 'playback event sink threw')).toHaveLength(3);
  });

  it('rejects duplicates, requests without a configured zone and bad repeats', async () => {
    const { controller, story, last } = await setup();
    controller.submit(request('a1', 'announcement'));
    controller.submit(request('a1', 'announcement'));
    controller.submit(request('a2', 'announcement', { zones: ['z9'] }));
    controller.submit(request('a3', 'announcement', { repeat: 0 }));
    await flush();
    expect(story()).toEqual(['a1 accepted', 'a1 rejected', 'a2 rejected', 'a3 rejected']);
    expect(last('a2', 'rejected').reason).toBe('no configured zone; unknown zones: z9');
  });

  it('stop() ends playback, reports it, switches everything off and leaves no timer', async () => {
    const { controller, player, rig, story } = await setup();
    controller.submit(request('e1', 'emergency', { level: 1, zones: ['z1', 'z3'] }));
    controller.submit(request('e2', 'emergency', { level: 1 }));
    await advance(2000);
    rig.reset();
    await controller.stop();
    await flush();
    expect(player.last.stopCalls).toBe(1);
    expect(story().slice(-2)).toEqual(['e1 stopped', 'e2 stopped']);
    expect(rig.writes).toEqual(['0 rb2/0 off', '0 rb2/1 off', '0 rb1/0 off', '0 rb3/0 off']);
    expect(vi.getTimerCount()).toBe(0);
    controller.submit(request('e3', 'emergency', { level: 1 }));
    await flush();
    expect(story().at(-1)).toBe('e3 rejected');
  });
});
