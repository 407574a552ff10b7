import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Cancellation } from '../../src/broadcast/cancellation.ts';
import { SoundPath, type SoundPathOptions } from '../../src/broadcast/sound-path.ts';
import type { Device, DevicePort } from '../../src/drivers/device/types.ts';
import { settings } from '../support/broadcast-rig.ts';
import { memoryLogger } from '../support/log-sink.ts';

// The sound path on its own, on relay boards the test scripts: each write ok, failing, hung, or taking
// 100 ms (so a token can be cancelled between two writes; logged with the time it was asked), and each board online or not for `check`.
// Zones z1, z2 on amplifier A (power rb2/0), z3 on amplifier B (rb2/1); zone relays on rb1 and rb3.
type Mode = 'ok' | 'fail' | 'hang' | 'slow';

function boards(ids: readonly string[]) {
  const writes: string[] = [];
  const mode = new Map<string, Mode>(ids.map((id) => [id, 'ok']));
  const online = new Map<string, boolean>(ids.map((id) => [id, true]));
  const start = Date.now();
  const board = (id: string): Device => ({
    id,
    busId: 'sim',
    start: () => undefined,
    stop: async () => undefined,
    setIndicator: async () => undefined,
    resetLatch: async () => undefined,
    setRelay: (channel, on) => {
      const entry = `${Date.now() - start} ${id}/${channel} ${on ? 'on' : 'off'}`;
      switch (mode.get(id)) {
        case 'fail':
          writes.push(`${entry} FAILED`);
          return Promise.reject(new Error(`${id}: not answering`));
        case 'hang':
          writes.push(`${entry} HUNG`);
          return new Promise(() => {});
        case 'slow':
          return new Promise((resolve) =>
            setTimeout(() => {
              writes.push(entry);
              resolve();
            }, 100),
          );
        default:
          writes.push(entry);
          return Promise.resolve();
      }
    },
    health: () => ({
      id,
      bus: 'sim',
      model: 'relays',
      online: online.get(id) ?? false,
      latching: null,
      pollIntervalMs: null,
      worstPollGapMs: null,
      lastReplyAt: null,
      errors: {},
    }),
  });
  const byId = new Map(ids.map((id) => [id, board(id)]));
  const port: DevicePort = {
    start: () => undefined,
    stop: async () => undefined,
    device: (id) => byId.get(id),
    devices: () => [...byId.values()],
    health: () => [],
  };
  return { port, writes, mode, online };
}

function rig(more: Partial<SoundPathOptions> = {}, boardIds: readonly string[] = ['rb1', 'rb2', 'rb3']) {
  const b = boards(boardIds);
  const { logger, lines } = memoryLogger();
  const path = new SoundPath({
    zones: settings.zones,
    amplifiers: settings.amplifiers,
    powerOnGapMs: 500,
    warmUpMs: 1500,
    idleTailMs: 20_000,
    relayTimeoutMs: 2000,
    devices: b.port,
    logger,
    now: () => Date.now(),
    ...more,
  });
  path.start();
  const logged = (msg: string) => lines.filter((l) => l.msg === msg);
  return { path, ...b, lines, logged };
}

/** Starts the path (everything off), then forgets those writes and their log lines. */
async function started(more: Partial<SoundPathOptions> = {}, boardIds?: readonly string[]) {
  const r = rig(more, boardIds);
  await vi.advanceTimersByTimeAsync(0);
  r.writes.length = 0;
  r.lines.length = 0;
  return r;
}

const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);

describe('SoundPath prepare', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-11-29T05:00:00Z'));
  });
  afterEach(() => vi.useRealTimers());

  it('ignores zone ids it does not know, and zones of an amplifier it does not know', async () => {
    const r = await started({ zones: [...settings.zones, { id: 'z4', label: 'well', relay: { device: 'rb3', channel: 1 }, amplifier: 'ampX' }] });
    const faults = r.path.prepare(['z9', 'z4'], new Cancellation());
    await advance(3000);
    await expect(faults).resolves.toEqual([]);
    expect(r.writes).toEqual(['0 rb3/1 on']);
  });

  it('names each zone and amplifier it switches in the log, and a failed write with its error', async () => {
    const r = await started();
    r.mode.set('rb3', 'fail');
    await Promise.all([r.path.prepare(['z1', 'z3'], new Cancellation()), advance(3000)]);
    expect(r.logged('relay switched').map((l) => [l['relay'], l['what'], l['on']])).toEqual([
      ['rb1/0', 'zone z1', true],
      ['rb2/0', 'amplifier ampA', true],
      ['rb2/1', 'amplifier ampB', true],
    ]);
    expect(r.logged('relay write failed')).toEqual([
      expect.objectContaining({ relay: 'rb3/0', what: 'zone z3', on: true, error: 'rb3: not answering' }),
    ]);
    r.mode.set('rb3', 'ok');
    await Promise.all([r.path.prepare(['z2'], new Cancellation()), advance(3000)]);
    await Promise.all([r.path.switchAllOff(), advance(0)]);
    expect(
      r
        .logged('relay switched')
        .slice(3)
        .map((l) => [l['relay'], l['what'], l['on']]),
    ).toEqual([
      // z3's relay is in doubt after its failed write: switched off like any other.
      ['rb1/0', 'zone z1', false],
      ['rb3/0', 'zone z3', false],
      ['rb1/1', 'zone z2', true],
      ['rb2/0', 'amplifier ampA', false],
      ['rb2/1', 'amplifier ampB', false],
      ['rb1/1', 'zone z2', false],
    ]);
  });

  it('writes again a relay whose write failed, since it may be in either state', async () => {
    const r = await started();
    r.mode.set('rb1', 'fail');
    await Promise.all([r.path.prepare(['z1'], new Cancellation()), advance(3000)]);
    r.mode.set('rb1', 'ok');
    r.writes.length = 0;
    await Promise.all([r.path.prepare(['z1'], new Cancellation()), advance(3000)]);
    expect(r.writes).toEqual(['3000 rb1/0 on']);
  });

  it('lists the zones of an amplifier whose power relay failed, and only those', async () => {
    const amplifiers = [
      { id: 'ampA', power: { device: 'rb2', channel: 0 } },
      { id: 'ampB', power: { device: 'rb4', channel: 1 } },
    ];
    const r = await started({ amplifiers });
    const faults = r.path.prepare(['z1', 'z2', 'z3'], new Cancellation());
    await advance(3000);
    await expect(faults).resolves.toEqual([{ zone: 'z3', amplifier: 'ampB', fault: 'amplifier power relay rb4/1: no device "rb4"' }]);
    expect(r.writes).toEqual(['0 rb1/0 on', '0 rb1/1 on', '0 rb3/0 on', '0 rb2/0 on']);
  });

  it('fails a write to a relay board missing from the device port, and goes on with the others', async () => {
    const r = await started({}, ['rb1', 'rb2']);
    const faults = r.path.prepare(['z3', 'z1'], new Cancellation());
    await advance(3000);
    await expect(faults).resolves.toEqual([{ zone: 'z3', amplifier: 'ampB', fault: 'zone relay rb3/0: no device "rb3"' }]);
    expect(r.writes).toEqual(['0 rb1/0 on', '0 rb2/1 on', '500 rb2/0 on']);
  });

  it('stops switching zones off once its token is cancelled, leaving the rest to the next item', async () => {
    const r = await started();
    await Promise.all([r.path.prepare(['z1', 'z2'], new Cancellation()), advance(3000)]);
    r.mode.set('rb1', 'slow');
    r.writes.length = 0;
    const token = new Cancellation();
    const faults = r.path.prepare(['z3'], token);
    await advance(50);
    token.cancel();
    await advance(1000);
    await expect(faults).resolves.toEqual([]);
    expect(r.writes).toEqual(['3000 rb1/0 off']);
  });

  it('stops switching zones on once its token is cancelled', async () => {
    const r = await started();
    r.mode.set('rb1', 'slow');
    const token = new Cancellation();
    const faults = r.path.prepare(['z1', 'z2'], token);
    await advance(50);
    token.cancel();
    await advance(1000);
    await expect(faults).resolves.toEqual([]);
    expect(r.writes).toEqual(['0 rb1/0 on']);
  });

  it('powers no further amplifier once its token is cancelled during the gap between two', async () => {
    const r = await started();
    const token = new Cancellation();
    const faults = r.path.prepare(['z1', 'z3'], token);
    await advance(200);
    token.cancel();
    await advance(3000);
    await expect(faults).resolves.toEqual([]);
    expect(r.writes).toEqual(['0 rb1/0 on', '0 rb3/0 on', '0 rb2/0 on']);
  });

  it('fails a write still waiting when the path is stopped, and leaves that relay in doubt', async () => {
    const r = await started({ relayTimeoutMs: 60_000 });
    r.mode.set('rb3', 'hang');
    const stopping = r.path.stop();
    const faults = r.path.prepare(['z3'], new Cancellation());
    await advance(2000);
    await stopping;
    await expect(faults).resolves.toEqual([
      { zone: 'z3', amplifier: 'ampB', fault: 'zone relay rb3/0: controller stopped' },
      { zone: 'z3', amplifier: 'ampB', fault: 'amplifier power relay rb2/1: controller stopped' },
    ]);
    expect(r.logged('relay switched')).toEqual([]);
    expect(r.logged('relay write failed').map((l) => l['error'])).toEqual(['controller stopped', 'controller stopped']);
  });
});

describe('SoundPath amplifier idle tails', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-11-29T05:00:00Z'));
  });
  afterEach(() => vi.useRealTimers());

  it('keeps an amplifier on that is needed again before its idle tail ran out, past that tail', async () => {
    const r = await started({ idleTailMs: 10_000 });
    await Promise.all([r.path.prepare(['z1'], new Cancellation()), advance(2000)]);
    await Promise.all([r.path.prepare(['z3'], new Cancellation()), advance(3000)]);
    await Promise.all([r.path.prepare(['z1'], new Cancellation()), advance(0)]);
    await advance(20_000);
    expect(r.writes.filter((w) => w.includes('rb2/0'))).toEqual(['0 rb2/0 on']);
  });

  it('counts the idle tail of an amplifier from the first item that did not need it', async () => {
    const r = await started({ idleTailMs: 10_000 });
    await Promise.all([r.path.prepare(['z1'], new Cancellation()), advance(2000)]);
    await Promise.all([r.path.prepare(['z3'], new Cancellation()), advance(3000)]);
    await Promise.all([r.path.prepare(['z3'], new Cancellation()), advance(3000)]);
    await advance(10_000);
    expect(r.writes.filter((w) => w.includes('rb2/0'))).toEqual(['0 rb2/0 on', '12000 rb2/0 off']);
  });

  it('does not switch off an amplifier that an item queued before its idle tail ran out has claimed again', async () => {
    // The tail (1 s) runs out while the next item warms up its other amplifier (5 s), with a third item,
    // on the first amplifier again, already waiting for its turn.
    const r = await started({ idleTailMs: 1000, warmUpMs: 5000 });
    await Promise.all([r.path.prepare(['z1'], new Cancellation()), advance(6000)]);
    const second = r.path.prepare(['z3'], new Cancellation());
    await advance(100);
    const third = r.path.prepare(['z1'], new Cancellation());
    await advance(10_000);
    await Promise.all([second, third]);
    expect(r.writes.filter((w) => w.includes('rb2/0'))).toEqual(['0 rb2/0 on']);
  });
});

describe('SoundPath check', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('finds missing and offline boards for zone and amplifier relays, without switching any', async () => {
    const r = await started({ zones: [...settings.zones, { id: 'z4', label: 'well', relay: { device: 'rb5', channel: 0 }, amplifier: 'ampX' }] }, [
      'rb1',
      'rb2',
    ]);
    r.online.set('rb2', false);
    expect(r.path.check(['z1', 'z3', 'z4', 'z9'])).toEqual([
      { zone: 'z1', amplifier: 'ampA', fault: 'amplifier power relay rb2/0: device offline' },
      { zone: 'z3', amplifier: 'ampB', fault: 'zone relay rb3/0: no device "rb3"' },
      { zone: 'z3', amplifier: 'ampB', fault: 'amplifier power relay rb2/1: device offline' },
      { zone: 'z4', amplifier: 'ampX', fault: 'zone relay rb5/0: no device "rb5"' },
    ]);
    expect(r.writes).toEqual([]);
  });
});
