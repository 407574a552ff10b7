import type { Logger } from 'pino';
import type { DeviceHealth } from '../drivers/device/types.ts';
import type { OutboxStats } from '../store/types.ts';
import type { StorageHealth } from '../store/resilient-outbox.ts';
import type { ClockState } from '../platform/trusted-clock.ts';
import type { HealthPayload } from '../contract/payloads.ts';
import type { Uplink } from './types.ts';
import { isoWithOffset, type Now } from '../platform/time.ts';

export interface HealthSources {
  villageId: string;
  version: string;
  startedAt: number;
  pollIntervalMs: number;
  devices: () => DeviceHealth[];
  outbox: () => OutboxStats;
  memory?: () => { rss: number; heapUsed: number };
  problems: () => readonly string[];
  /** The data directory's state, where the outbox can tell it. */
  storage?: () => StorageHealth;
  clock?: () => ClockState;
  /** The sound output as last checked. */
  audio: () => { device: string; ok: boolean | null; reason?: string; checkedAt: number | null };
  /** The running programme schedule and today's firings. */
  schedule?: () => NonNullable<HealthPayload['schedule']>;
}

export function buildHealth(sources: HealthSources, now: number): HealthPayload {
  const stats = sources.outbox();
  const memory = (sources.memory ?? process.memoryUsage)();
  return {
    village: sources.villageId,
    at: isoWithOffset(now),
    version: sources.version,
    uptimeSeconds: Math.round((now - sources.startedAt) / 1000),
    outbox: {
      depth: stats.depth,
      oldestUnackedAgeSeconds: stats.oldestUnackedAt === null ? null : Math.max(0, Math.round((now - stats.oldestUnackedAt) / 1000)),
      alarm: stats.byStream.alarm,
      fault: stats.byStream.fault,
      report: stats.byStream.report,
    },
    devices: sources.devices().map((d) => ({
      id: d.id,
      bus: d.bus,
      model: d.model,
      online: d.online,
      latching: d.latching,
      // An unlatched button is only seen if held across a poll: say how short a press can go unseen.
      missablePressMs: d.latching === false ? (d.worstPollGapMs ?? d.pollIntervalMs ?? sources.pollIntervalMs) : null,
      pollIntervalMs: d.pollIntervalMs,
      errors: Object.fromEntries(Object.entries(d.errors).filter((e): e is [string, number] => e[1] !== undefined)),
      ...(d.status === undefined
        ? {}
        : { status: Object.fromEntries(Object.entries(d.status).filter((e): e is [string, boolean] => e[1] !== undefined)) }),
    })),
    memory: { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed },
    ...(sources.clock === undefined ? {} : { clock: sources.clock() }),
    ...(sources.storage === undefined ? {} : { storage: sources.storage() }),
    problems: [...sources.problems()],
    audio: audioHealth(sources.audio()),
    ...(sources.schedule === undefined ? {} : { schedule: sources.schedule() }),
  };
}

function audioHealth(audio: ReturnType<HealthSources['audio']>): HealthPayload['audio'] {
  return {
    device: audio.device,
    ok: audio.ok,
    ...(audio.reason === undefined ? {} : { reason: audio.reason }),
    checkedAt: audio.checkedAt === null ? null : isoWithOffset(audio.checkedAt),
  };
}

/** Publishes health every interval while the link is up; a missed beat is simply skipped. */
export class HealthReporter {
  private timer: NodeJS.Timeout | undefined;
  private readonly now: Now;

  constructor(private readonly options: { sources: HealthSources; uplink: Uplink; intervalMs: number; logger: Logger; now?: Now }) {
    this.now = options.now ?? Date.now;
  }

  start(): void {
    this.options.uplink.on('connected', () => this.publish());
    this.timer = setInterval(() => this.publish(), this.options.intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Never throws: it runs from a timer, and a health source that fails must not end the process. */
  publish(): void {
    if (!this.options.uplink.connected) return;
    let health: HealthPayload;
    try {
      health = buildHealth(this.options.sources, this.now());
    } catch (error) {
      // Logged each time: the county sees health go missing, the technician sees why; the next beat tries again.
      this.options.logger.error({ err: error }, 'health could not be built; not published');
      return;
    }
    this.options.uplink.publish('health', health).catch((error: unknown) => this.options.logger.debug({ err: error }, 'health not published'));
  }
}
