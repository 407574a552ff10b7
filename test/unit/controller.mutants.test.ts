import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BroadcastController } from '../../src/broadcast/controller.ts';
import type { AudioOutput, OutputCheck, PlayJob, PlayOutcome, Player, PlayerRun } from '../../src/broadcast/types.ts';
import { advance, coldStartMs, FakePlayer, flush, relayRig, request, settings, setup } from '../support/broadcast-rig.ts';
import { memoryLogger } from '../support/log-sink.ts';

// The controller's edges beside broadcast-controller.test.ts: what it logs, notes and rejects, its own
// life cycle, and what it does when an item is stopped at each of its awaits.

/** An output whose checks the test answers; `throws` makes the next check throw at once. */
class CountingOutput implements AudioOutput {
  readonly device = 'hw:0';
  checks = 0;
  throws: string | undefined;
  private readonly pending: ((result: OutputCheck) => void)[] = [];
  check(): Promise<OutputCheck> {
    this.checks++;
    if (this.throws !== undefined) throw new Error(this.throws);
    return new Promise((resolve) => this.pending.push(resolve));
  }
  answer(result: OutputCheck): void {
    for (const resolve of this.pending.splice(0)) resolve(result);
  }
}

/** A run whose start and end the test settles itself, including the ways a player must not behave. */
class ScriptedRun implements PlayerRun {
  readonly started: Promise<boolean>;
  readonly done: Promise<PlayOutcome>;
  start: (started: boolean) => void = () => undefined;
  end: (outcome: PlayOutcome) => void = () => undefined;
  crash: (error: Error) => void = () => undefined;
  stopResult: 'resolve' | 'reject' = 'resolve';
  constructor(readonly job: PlayJob) {
    this.started = new Promise((resolve) => {
      this.start = resolve;
    });
    this.done = new Promise((resolve, reject) => {
      this.end = resolve;
      this.crash = reject;
    });
  }
  stop(): Promise<void> {
    if (this.stopResult === 'reject') return Promise.reject(new Error('kill failed: EPERM'));
    this.end({ outcome: 'stopped' });
    return Promise.resolve();
  }
}

class ScriptedPlayer implements Player {
  readonly runs: ScriptedRun[] = [];
  start(job: PlayJob): PlayerRun {
    const run = new ScriptedRun(job);
    this.runs.push(run);
    return run;
  }
  get last(): ScriptedRun {
    return this.runs.at(-1)!;
  }
}

/** A controller on the rig's relay boards with a player of the test's own. */
function controllerWith(player: Player, more: { output?: AudioOutput } = {}) {
  const { logger, lines } = memoryLogger();
  const rig = relayRig(['rb1', 'rb2', 'rb3'], logger);
  const events: string[] = [];
  const reasons = new Map<string, string | undefined>();
  const controller = new BroadcastController({
    config: settings,
    devices: rig.port,
    player,
    logger,
    onEvent: (e) => {
      events.push(`${e.requestId} ${e.event}`);
      reasons.set(`${e.requestId} ${e.event}`, e.reason);
    },
    ...(more.output === undefined ? {} : { output: { port: more.output, checkIntervalMs: 600_000, onChange: () => undefined } }),
  });
  return { controller, rig, events, reasons, lines };
}

const logged = (lines: Array<{ msg: string }>, msg: string) => lines.filter((l) => l.msg === msg);

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

  it('keeps an item queued whose expiry is beyond what a timer can wait for, and one that expires at that very limit stops on time', async () => {
    const { controller, story } = await setup();
    controller.submit(request('a1', 'announcement'));
    controller.submit(request('far', 'announcement', { expiresAt: Date.now() + 2 ** 31 }));
    controller.submit(request('edge', 'announcement', { expiresAt: Date.now() + 2 ** 31 - 1 }));
    await advance(60_000);
    expect(story('far')).toEqual(['far accepted', 'far queued']);
    expect(story('edge')).toEqual(['edge accepted', 'edge queued']);
    await advance(2 ** 31 - 1 - 60_000);
    expect(story('edge')).toEqual(['edge accepted', 'edge queued', 'edge stopped']);
    expect(story('far')).toEqual(['far accepted', 'far queued']);
  });
});

describe('BroadcastController events and log', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-11-29T05:00:00Z'));
  });
  afterEach(() => vi.useRealTimers());

  it('logs each event at info, failures and rejections at warn, the emergency level under its own name', async () => {
    const { controller, player, lines } = await setup();
    controller.submit(request('e1', 'emergency', { level: 2 }));
    controller.submit(request('a1', 'announcement', { repeat: 0 }));
    await advance(coldStartMs);
    player.last.fail('no sound');
    await flush();
    const line = (msg: string) => logged(lines, msg)[0];
    expect(line('broadcast started')).toMatchObject({ level: 30, requestId: 'e1', event: 'started', emergencyLevel: 2 });
    expect(line('broadcast accepted')).toMatchObject({ level: 30, requestId: 'e1' });
    expect(line('broadcast failed')).toMatchObject({ level: 40, requestId: 'e1', reason: 'play 1 of 1: no sound' });
    expect(line('broadcast rejected')).toMatchObject({ level: 40, requestId: 'a1', reason: 'repeat must be a positive integer, got 0' });
    expect(line('broadcast rejected')).not.toHaveProperty('emergencyLevel');
  });

  it('gives an event no level when the request had none, and no reason when there is nothing to say', async () => {
    const { controller, player, last } = await setup();
    controller.submit(request('a1', 'announcement'));
    await advance(coldStartMs);
    player.last.finish();
    await flush();
    for (const kind of ['accepted', 'started', 'finished']) {
      expect(last('a1', kind)).not.toHaveProperty('level');
      expect(last('a1', kind)).not.toHaveProperty('reason');
    }
  });

  it('logs an event sink that throws, with the event it could not take', async () => {
    const { controller, lines } = await setup({}, () => {
      throw new Error('journal gone');
    });
    controller.submit(request('a1', 'announcement'));
    await flush();
    expect(logged(lines, 'playback event sink threw')[0]).toMatchObject({ requestId: 'a1', event: 'accepted', err: { message: 'journal gone' } });
  });

  it('says what a queued item waits for', async () => {
    const { controller, last } = await setup();
    controller.submit(request('a1', 'announcement'));
    controller.submit(request('a2', 'announcement'));
    await flush();
    expect(last('a2', 'queued').reason).toBe('waiting for announcement a1');
  });

  it('notes unknown zones, a resumed item and a missing chime in its reports', async () => {
    const { controller, last } = await setup({ chime: undefined });
    const acceptedAt = Date.parse('2026-11-29T04:58:00Z');
    controller.submit(request('e1', 'emergency', { level: 1, zones: ['z1', 'z8', 'z9'], chime: true, resumedFrom: acceptedAt }));
    await flush();
    expect(last('e1', 'accepted').reason).toBe(
      'resumed after a restart (first accepted 2026-11-29T04:58:00.000Z); unknown zones: z8, z9; no chime configured',
    );
  });

  it('says an exercise has no drill chime only for an exercise, and asks no chime of one that has its drill chime', async () => {
    const plain = await setup({ drillChime: undefined });
    plain.controller.submit(request('a1', 'announcement'));
    await flush();
    expect(plain.last('a1', 'accepted')).not.toHaveProperty('reason');
    expect(logged(plain.lines, 'exercise without a configured drill chime')).toEqual([]);
    plain.controller.submit(request('x1', 'announcement', { status: 'exercise' }));
    await flush();
    expect(logged(plain.lines, 'exercise without a configured drill chime')).toEqual([expect.objectContaining({ requestId: 'x1' })]);

    const neither = await setup({ chime: undefined, drillChime: undefined });
    neither.controller.submit(request('x3', 'announcement', { status: 'exercise', chime: true }));
    await flush();
    expect(neither.last('x3', 'accepted').reason).toBe('no drill chime configured; no chime configured');

    const drill = await setup({ chime: undefined });
    drill.controller.submit(request('x2', 'announcement', { status: 'exercise', chime: true }));
    await flush();
    expect(drill.last('x2', 'accepted')).not.toHaveProperty('reason');
  });
});

describe('BroadcastController rejections', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-11-29T05:00:00Z'));
  });
  afterEach(() => vi.useRealTimers());

  it('rejects the id of a queued item too, but tests a request with the id of the one on air', async () => {
    const { controller, story, last } = await setup();
    controller.submit(request('a1', 'announcement'));
    controller.submit(request('a2', 'announcement'));
    controller.submit(request('a2', 'announcement'));
    controller.submit(request('a1', 'announcement', { status: 'test' }));
    await flush();
    expect(last('a2', 'rejected').reason).toBe('duplicate request id');
    expect(story('a1')).toEqual(['a1 accepted', 'a1 accepted', 'a1 tested']);
  });

  it('rejects what comes when it is not running', async () => {
    const { controller, last } = await setup();
    await controller.stop();
    controller.submit(request('a1', 'announcement'));
    await flush();
    expect(last('a1', 'rejected').reason).toBe('controller not running');
  });
});

describe('BroadcastController life cycle', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-11-29T05:00:00Z'));
  });
  afterEach(() => vi.useRealTimers());

  it('switches nothing on a second start, nor on a stop without a start; stops once', async () => {
    const idle = controllerWith(new FakePlayer());
    await idle.controller.stop();
    idle.controller.setLocalStop(true);
    await flush();
    expect(idle.rig.writes).toEqual([]);

    const { controller, rig, story } = await setup();
    controller.start();
    await flush();
    expect(rig.writes).toEqual([]);
    controller.submit(request('a1', 'announcement'));
    await advance(coldStartMs);
    await controller.stop();
    await flush();
    rig.reset();
    await controller.stop();
    await flush();
    expect(rig.writes).toEqual([]);
    expect(story('a1')).toEqual(['a1 accepted', 'a1 started', 'a1 stopped']);
  });

  it('reports what plays as stopped by the service stopping', async () => {
    const { controller, last } = await setup();
    controller.submit(request('a1', 'announcement'));
    await advance(coldStartMs);
    await controller.stop();
    await flush();
    expect(last('a1', 'stopped').reason).toBe('service stopping');
  });

  it('has no audio state without an output to check', async () => {
    const { controller } = await setup();
    expect(controller.audioState()).toBeUndefined();
  });

  it('logs a stop that found nothing, and does not restart the idle tail for it', async () => {
    const { controller, player, rig, lines } = await setup();
    controller.submit(request('a1', 'announcement'));
    await advance(coldStartMs);
    player.last.finish();
    await advance(10_000);
    expect(controller.stopPlayback({ requestId: 'zz' }, 'county stop')).toBe(0);
    expect(logged(lines, 'stop asked for nothing that plays or waits')).toEqual([
      expect.objectContaining({ target: { requestId: 'zz' }, reason: 'county stop' }),
    ]);
    rig.reset();
    await advance(10_000);
    expect(rig.writes).toEqual(['10000 rb2/0 off', '10000 rb1/0 off']);
  });

  it('logs the local stop once when it is set and once when released, and reports what it stopped', async () => {
    const { controller, lines, last } = await setup();
    controller.submit(request('a1', 'announcement'));
    await advance(coldStartMs);
    controller.setLocalStop(false);
    controller.setLocalStop(true);
    controller.setLocalStop(true);
    await flush();
    expect(last('a1', 'stopped').reason).toBe('local stop active');
    controller.setLocalStop(false);
    controller.setLocalStop(false);
    expect(lines.filter((l) => l.msg.startsWith('local stop')).map((l) => l.msg)).toEqual([
      'local stop active: stopping everything and switching amplifiers off',
      'local stop released',
    ]);
  });

  it('logs an amplifier fault when it starts and when it clears, not when it is only said again', async () => {
    const { controller, lines } = await setup();
    controller.setAmplifierFault('ampA', 'overheat');
    controller.setAmplifierFault('ampA', 'overheat');
    controller.setAmplifierFault('ampA', null);
    controller.setAmplifierFault('ampA', null);
    expect(lines.filter((l) => l.msg.startsWith('amplifier fault')).map((l) => [l.msg, l['amplifier'], l['fault']])).toEqual([
      ['amplifier fault', 'ampA', 'overheat'],
      ['amplifier fault cleared', 'ampA', null],
    ]);
  });

  it('names both faults of a zone whose amplifier is faulty and whose relay failed', async () => {
    const { controller, rig, last } = await setup();
    controller.setAmplifierFault('ampA', 'overheat');
    rig.board('rb1').setOnline(false);
    controller.submit(request('a1', 'announcement'));
    await advance(coldStartMs);
    expect(last('a1', 'started').faultyZones).toEqual([
      { zone: 'z1', amplifier: 'ampA', fault: 'amplifier ampA: overheat; zone relay rb1/0: rb1: not answering (simulated)' },
    ]);
  });
});

describe('BroadcastController stopping an item at each of its waits', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-11-29T05:00:00Z'));
  });
  afterEach(() => vi.useRealTimers());

  it('switches nothing for an item stopped while it waited for the run before it to end', async () => {
    const { controller, player, rig, story } = await setup({}, undefined);
    controller.submit(request('s1', 'scheduled'));
    await advance(coldStartMs);
    player.last.stopHangs = true;
    controller.submit(request('e1', 'emergency', { level: 1, zones: ['z3'] }));
    await advance(100);
    controller.stopPlayback({ requestId: 'e1' }, 'county stop');
    rig.reset();
    await advance(5000);
    expect(rig.writes.filter((w) => w.includes('rb3') || w.includes('rb2/1 on'))).toEqual([]);
    expect(story('e1')).toEqual(['e1 accepted', 'e1 stopped']);
  });

  it('does not check the output for an item stopped while it waited for the run before it to end', async () => {
    const output = new CountingOutput();
    const { controller, player } = await setup({}, undefined, { output: { port: output, checkIntervalMs: 600_000, onChange: () => undefined } });
    output.answer({ ok: true });
    controller.submit(request('s1', 'scheduled'));
    await flush();
    output.answer({ ok: true });
    await advance(coldStartMs);
    player.last.stopHangs = true;
    controller.submit(request('e1', 'emergency', { level: 1 }));
    await advance(100);
    const checks = output.checks;
    controller.stopPlayback({ requestId: 'e1' }, 'county stop');
    await advance(5000);
    expect(output.checks).toBe(checks);
  });

  it('plays nothing for an item stopped while its output check was still open', async () => {
    const output = new CountingOutput();
    const { controller, player, story } = await setup({}, undefined, {
      output: { port: output, checkIntervalMs: 600_000, onChange: () => undefined },
    });
    output.answer({ ok: true });
    controller.submit(request('a1', 'announcement'));
    await advance(coldStartMs + 500);
    controller.stopPlayback({ requestId: 'a1' }, 'county stop');
    output.answer({ ok: true });
    await advance(1000);
    expect(player.runs).toEqual([]);
    expect(story('a1')).toEqual(['a1 accepted', 'a1 stopped']);
  });

  it('plays nothing more of an item stopped during its chime', async () => {
    const { controller, player } = await setup();
    controller.submit(request('a1', 'announcement', { chime: true, repeat: 2 }));
    await advance(coldStartMs);
    expect(player.played()).toEqual(['chime']);
    controller.stopPlayback({ requestId: 'a1' }, 'county stop');
    await advance(1000);
    expect(player.played()).toEqual(['chime']);
  });

  it('reports nothing started and plays nothing more of an item stopped before its chime said it started', async () => {
    const player = new ScriptedPlayer();
    const { controller, events } = controllerWith(player);
    controller.start();
    controller.submit(request('a1', 'announcement', { chime: true }));
    await advance(coldStartMs);
    expect(player.runs).toHaveLength(1);
    controller.stopPlayback({ requestId: 'a1' }, 'county stop');
    player.last.start(true);
    await advance(1000);
    expect(player.runs).toHaveLength(1);
    expect(events).toEqual(['a1 accepted', 'a1 stopped']);
  });

  it('fails an item whose run rejects instead of ending, or says it was stopped when nobody asked', async () => {
    const player = new ScriptedPlayer();
    const { controller, reasons } = controllerWith(player);
    controller.start();
    controller.submit(request('a1', 'announcement'));
    await advance(coldStartMs);
    player.last.start(true);
    player.last.crash(new Error('stdout closed'));
    await flush();
    expect(reasons.get('a1 failed')).toBe('play 1 of 1: player error: stdout closed');
    controller.submit(request('a2', 'announcement'));
    await advance(coldStartMs);
    player.last.start(true);
    player.last.end({ outcome: 'stopped' });
    await flush();
    expect(reasons.get('a2 failed')).toBe('play 1 of 1: player stopped without being asked');
  });

  it('fails an item whose output check throws, as an internal error', async () => {
    const output = new CountingOutput();
    const { controller, events, reasons, lines } = controllerWith(new FakePlayer(), { output });
    controller.start();
    output.answer({ ok: true });
    await flush();
    output.throws = 'no such method';
    controller.submit(request('a1', 'announcement'));
    await advance(coldStartMs);
    expect(events).toEqual(['a1 accepted', 'a1 failed']);
    expect(reasons.get('a1 failed')).toBe('internal error: no such method');
    expect(logged(lines, 'broadcast item failed unexpectedly')).toEqual([
      expect.objectContaining({ requestId: 'a1', err: expect.objectContaining({ message: 'no such method' }) }),
    ]);
  });
});

describe('BroadcastController chimes, runs and stops', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-11-29T05:00:00Z'));
  });
  afterEach(() => vi.useRealTimers());

  it('notes a closing drill chime that failed, and nothing when it played', async () => {
    const { controller, player, last } = await setup();
    controller.submit(request('x1', 'announcement', { status: 'exercise' }));
    await advance(coldStartMs);
    player.last.finish();
    await flush();
    player.last.finish();
    await flush();
    player.last.finish();
    await flush();
    expect(last('x1', 'finished')).not.toHaveProperty('reason');
    controller.submit(request('x2', 'announcement', { status: 'exercise' }));
    await flush();
    player.last.finish();
    await flush();
    player.last.finish();
    await flush();
    player.last.fail('drill.wav missing');
    await flush();
    expect(last('x2', 'finished').reason).toBe('closing drill chime failed: drill.wav missing');
    expect(player.played()).toEqual(['drill', 'x1', 'drill', 'drill', 'x2', 'drill']);
  });

  it('checks the output again after a run that failed once started, not after one that finished or never started', async () => {
    const output = new CountingOutput();
    const { controller, player } = await setup({}, undefined, { output: { port: output, checkIntervalMs: 600_000, onChange: () => undefined } });
    output.answer({ ok: true });
    const checksAfter = async (id: string, end: () => void) => {
      controller.submit(request(id, 'announcement'));
      await flush();
      output.answer({ ok: true });
      await advance(coldStartMs);
      const before = output.checks;
      end();
      await flush();
      return output.checks - before;
    };
    expect(await checksAfter('a1', () => player.last.finish())).toBe(0);
    expect(await checksAfter('a2', () => player.last.fail('underrun'))).toBe(1);
    output.answer({ ok: true });
    player.refuseNext = 'sha256 mismatch';
    controller.submit(request('a3', 'announcement'));
    await flush();
    const before = output.checks;
    output.answer({ ok: true });
    await advance(coldStartMs);
    expect(output.checks - before).toBe(0);
    controller.submit(request('a4', 'announcement'));
    await flush();
    output.answer({ ok: true });
    await advance(coldStartMs);
    const beforeStop = output.checks;
    controller.stopPlayback({ requestId: 'a4' }, 'county stop');
    await flush();
    expect(output.checks - beforeStop).toBe(0);
  });

  it('logs a run that does not stop in time, or fails to stop, and nothing for a run that stops', async () => {
    const player = new ScriptedPlayer();
    const { controller, lines } = controllerWith(player);
    controller.start();
    controller.submit(request('a1', 'announcement'));
    await advance(coldStartMs);
    player.last.start(true);
    controller.stopPlayback({ requestId: 'a1' }, 'county stop');
    await advance(3000);
    controller.submit(request('a2', 'announcement'));
    await advance(coldStartMs);
    player.last.start(true);
    player.last.stopResult = 'reject';
    controller.stopPlayback({ requestId: 'a2' }, 'county stop');
    await advance(3000);
    expect(logged(lines, 'player run did not stop in time; going on')).toEqual([]);
    expect(logged(lines, 'player run failed to stop; going on')).toEqual([
      expect.objectContaining({ requestId: 'a2', err: expect.objectContaining({ message: 'kill failed: EPERM' }) }),
    ]);

    const hanging = await setup();
    hanging.controller.submit(request('a3', 'announcement'));
    await advance(coldStartMs);
    hanging.player.last.stopHangs = true;
    hanging.controller.stopPlayback({ requestId: 'a3' }, 'county stop');
    await advance(3000);
    expect(logged(hanging.lines, 'player run did not stop in time; going on')).toEqual([expect.objectContaining({ requestId: 'a3', waitMs: 2500 })]);
    expect(logged(hanging.lines, 'player run failed to stop; going on')).toEqual([]);
  });

  it('asks no run to stop for an item stopped before it played', async () => {
    const { controller, lines } = await setup();
    controller.submit(request('a1', 'announcement'));
    await advance(100);
    controller.stopPlayback({ requestId: 'a1' }, 'county stop');
    await advance(3000);
    expect(logged(lines, 'player run failed to stop; going on')).toEqual([]);
  });
});
