import type { Logger } from 'pino';
import { vi } from 'vitest';
import { BroadcastController, type BroadcastControllerOptions, type BroadcastSettings } from '../../src/broadcast/controller.ts';
import { deviceProfileSchema } from '../../src/drivers/device/profile-schema.ts';
import { createSimulatedBus, type SimulatedDevice } from '../../src/drivers/simulated/simulated-bus.ts';
import type { Device, DevicePort } from '../../src/drivers/device/types.ts';
import type { PlaybackEvent, PlayJob, PlayOutcome, Player, PlayerRun, PlayRequest } from '../../src/broadcast/types.ts';
import type { Priority } from '../../src/contract/vocabulary.ts';
import { memoryLogger } from './log-sink.ts';

/** An eight-relay Modbus board, as data (the shape of `devices/ve-rb8-rtu.json`). */
export const relayBoardProfile = deviceProfileSchema.parse({
  schema: 1,
  model: 'test-relay-board',
  protocol: 'modbus',
  poll: [{ table: 'coils', address: 0, count: 8 }],
  relays: { table: 'coils', address: 0, count: 8 },
});

/**
 * Simulated relay boards behind `DevicePort`, with every relay write recorded as `<ms since mark> <board>/<channel>
 * on|off`, failed ones suffixed ` FAILED`: tests assert order and timing in one `toEqual`.
 */
export function relayRig(ids: readonly string[], logger: Logger) {
  const bus = createSimulatedBus({
    devices: ids.map((id, i) => ({
      config: {
        id,
        bus: 'sim',
        unitId: i + 1,
        profile: relayBoardProfile.model,
        role: 'relay-board' as const,
        label: `relays ${id}`,
        testMode: false,
      },
      profile: relayBoardProfile,
    })),
    sink: () => {},
    logger,
  });
  const writes: string[] = [];
  const hanging = new Set<string>();
  let mark = Date.now();
  const recording = (device: SimulatedDevice): Device => ({
    id: device.id,
    busId: device.busId,
    start: () => device.start(),
    stop: () => device.stop(),
    setIndicator: (state) => device.setIndicator(state),
    resetLatch: (input) => device.resetLatch(input),
    health: () => device.health(),
    setRelay: async (channel, on) => {
      const entry = `${Date.now() - mark} ${device.id}/${channel} ${on ? 'on' : 'off'}`;
      if (hanging.has(device.id)) {
        writes.push(`${entry} HUNG`);
        return new Promise<void>(() => {});
      }
      try {
        await device.setRelay(channel, on);
        writes.push(entry);
      } catch (error) {
        writes.push(`${entry} FAILED`);
        throw error;
      }
    },
  });
  const byId = new Map(bus.devices.map((d) => [d.id, recording(d)]));
  // Started, as the app starts its hub before the broadcast controller: a board nobody polls is offline.
  bus.start();
  const port: DevicePort = {
    start: bus.start,
    stop: bus.stop,
    device: (id) => byId.get(id),
    devices: () => [...byId.values()],
    health: () => bus.devices.map((d) => d.health()),
  };
  return {
    port,
    writes,
    board: (id: string): SimulatedDevice => {
      const device = bus.devices.find((d) => d.id === id);
      if (device === undefined) throw new Error(`no board ${id}`);
      return device;
    },
    /** Every relay write to this board from now on never settles, as a driver without a timeout would. */
    hang: (id: string): void => {
      hanging.add(id);
    },
    /** Forget the writes so far and count time from now. */
    reset: (): void => {
      writes.length = 0;
      mark = Date.now();
    },
  };
}

/** One run of the fake player: the test decides when and how it ends. */
export class FakeRun implements PlayerRun {
  readonly done: Promise<PlayOutcome>;
  /** True at once, as a player whose process spawned; false for a run refused before starting (`refused`). */
  readonly started: Promise<boolean>;
  stopCalls = 0;
  /** Its process ignores SIGTERM and the kill never completes: `stop()` never settles. */
  stopHangs = false;
  private settle: (outcome: PlayOutcome) => void = () => {};

  constructor(
    readonly job: PlayJob,
    readonly startedAt: number,
    /** The run ends `failed` with this reason before any process starts, as a media file refused. */
    refused?: string,
  ) {
    this.done = new Promise((resolve) => {
      this.settle = resolve;
    });
    this.started = Promise.resolve(refused === undefined);
    if (refused !== undefined) this.fail(refused);
  }

  finish(): void {
    this.settle({ outcome: 'finished' });
  }

  fail(reason: string): void {
    this.settle({ outcome: 'failed', reason });
  }

  stop(): Promise<void> {
    this.stopCalls++;
    if (this.stopHangs) return new Promise(() => {});
    this.settle({ outcome: 'stopped' });
    return Promise.resolve();
  }

  /** What it plays, short: the tts text or the media file name. */
  get what(): string {
    return this.job.content.kind === 'tts' ? this.job.content.text : this.job.content.file;
  }
}

export class FakePlayer implements Player {
  readonly runs: FakeRun[] = [];
  /** The next `start` throws, as a player that cannot even spawn. */
  throwOnStart: string | undefined;
  /** The next run is refused before starting, with this reason (a sha256 mismatch, a missing file). */
  refuseNext: string | undefined;

  start(job: PlayJob): PlayerRun {
    if (this.throwOnStart !== undefined) {
      const message = this.throwOnStart;
      this.throwOnStart = undefined;
      throw new Error(message);
    }
    const run = new FakeRun(job, Date.now(), this.refuseNext);
    this.refuseNext = undefined;
    this.runs.push(run);
    return run;
  }

  get last(): FakeRun {
    const run = this.runs.at(-1);
    if (run === undefined) throw new Error('the player was never started');
    return run;
  }

  played(): string[] {
    return this.runs.map((r) => r.what);
  }
}

// Zones z1, z2 on amplifier A, z3 on amplifier B; zone relays on boards rb1/rb3, amplifier power on rb2.
export const settings: BroadcastSettings = {
  zones: [
    { id: 'z1', label: 'square', relay: { device: 'rb1', channel: 0 }, amplifier: 'ampA' },
    { id: 'z2', label: 'school', relay: { device: 'rb1', channel: 1 }, amplifier: 'ampA' },
    { id: 'z3', label: 'fields', relay: { device: 'rb3', channel: 0 }, amplifier: 'ampB' },
  ],
  amplifiers: [
    { id: 'ampA', power: { device: 'rb2', channel: 0 } },
    { id: 'ampB', power: { device: 'rb2', channel: 1 } },
  ],
  powerOnGapMs: 500,
  warmUpMs: 1500,
  idleTailMs: 20_000,
  volume: { emergency: 100, 'local-alarm': 90, announcement: 80, scheduled: 60 },
  chime: { kind: 'tts', text: 'chime' },
  drillChime: { kind: 'tts', text: 'drill' },
};

export function request(id: string, priority: Priority, more: Partial<PlayRequest> = {}): PlayRequest {
  return { id, priority, status: 'actual', zones: ['z1'], content: { kind: 'tts', text: id }, chime: false, repeat: 1, origin: 'county', ...more };
}

/** A started controller on three simulated relay boards and a fake player, with its writes forgotten. */
export async function setup(
  config: Partial<BroadcastSettings> = {},
  sink?: (e: PlaybackEvent) => void,
  more: Pick<BroadcastControllerOptions, 'output' | 'refusal'> = {},
) {
  const { logger, lines } = memoryLogger();
  const rig = relayRig(['rb1', 'rb2', 'rb3'], logger);
  const player = new FakePlayer();
  const events: PlaybackEvent[] = [];
  const controller = new BroadcastController({
    config: { ...settings, ...config },
    devices: rig.port,
    player,
    logger,
    onEvent: (e) => {
      events.push(e);
      sink?.(e);
    },
    ...more,
  });
  controller.start();
  await flush();
  rig.reset();
  /** `<id> <event>` for every event so far, optionally of one request only. */
  const story = (id?: string): string[] => events.filter((e) => id === undefined || e.requestId === id).map((e) => `${e.requestId} ${e.event}`);
  const last = (id: string, kind: string): PlaybackEvent => {
    const found = events.filter((e) => e.requestId === id && e.event === kind).at(-1);
    if (found === undefined) throw new Error(`no ${kind} event for ${id}; got ${story().join(', ')}`);
    return found;
  };
  return { controller, rig, player, events, story, last, lines };
}

export const flush = () => vi.advanceTimersByTimeAsync(0);
export const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);
/** Amplifier A powered from cold: zones at 0, amplifier at 0, warm at 1500. */
export const coldStartMs = 1500;
