import { performance } from 'node:perf_hooks';
import type { BusConfig, DeviceConfig, TimingConfig } from '../../config/schema.ts';
import type { Logger } from '../../platform/logger.ts';
import type { ModbusProfile } from '../device/profile-schema.ts';
import type { Device, DeviceEvent, DeviceEventSink } from '../device/types.ts';
import { ModbusDevice, type BusLink, type Priority } from './modbus-device.ts';
import { ReopenBackoff } from '../device/reopen-backoff.ts';
import { createRtuTransport, createTcpTransport, ModbusError, type ModbusTransport } from './modbus-transport.ts';
import { contained } from '../../platform/contained.ts';

export type ModbusBusConfig = Extract<BusConfig, { kind: 'modbus-rtu' | 'modbus-tcp' }>;

export interface ModbusBusOptions {
  bus: ModbusBusConfig;
  devices: Array<{ config: DeviceConfig; profile: ModbusProfile }>;
  timing: TimingConfig;
  sink: DeviceEventSink;
  logger: Logger;
  now?: () => number;
}

export interface ModbusBus {
  /** Opens the port and starts polling every device; never throws, a missing port is retried. */
  start(): void;
  /** Closes the port, clears every timer; queued requests reject. */
  stop(): Promise<void>;
  readonly devices: Device[];
}

export function createModbusBus(options: ModbusBusOptions): ModbusBus {
  const units = new Set<number>();
  for (const { config } of options.devices) {
    if (config.bus !== options.bus.id) throw new Error(`device "${config.id}" is on bus "${config.bus}", not "${options.bus.id}"`);
    if (units.has(config.unitId)) throw new Error(`unit ${config.unitId} is used twice on bus "${options.bus.id}"`);
    units.add(config.unitId);
  }
  const bus = options.bus;
  const transport =
    bus.kind === 'modbus-rtu'
      ? createRtuTransport({ path: bus.path, baudRate: bus.baudRate, parity: bus.parity, dataBits: bus.dataBits, stopBits: bus.stopBits })
      : createTcpTransport({ host: bus.host, port: bus.port });
  return new ModbusBusCore(options, transport, interFrameGapMs(bus), bus.kind === 'modbus-rtu' ? bus.path : undefined);
}

/**
 * RTU needs 3.5 characters of silence between frames, or the next slave may read two frames as one
 * (fixed at 1.75 ms above 19200 baud by the Modbus serial line spec). TCP frames carry their length.
 */
function interFrameGapMs(bus: ModbusBusConfig): number {
  if (bus.kind !== 'modbus-rtu') return 0;
  if (bus.baudRate > 19200) return 1.75;
  const bitsPerChar = 1 + bus.dataBits + (bus.parity === 'none' ? 0 : 1) + bus.stopBits;
  return (3.5 * bitsPerChar * 1000) / bus.baudRate;
}

interface Job {
  run(transport: ModbusTransport): Promise<unknown>;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

type BusState = 'stopped' | 'opening' | 'up' | 'down';

/**
 * One port, one request on it at a time, whatever the unit: RS-485 is half duplex, and the library
 * keeps one pending transaction per port. A write (latch reset, relay, then indicator) goes ahead of the
 * polls, but only once the polls that waited through the previous write have been sent: a burst of writes
 * is interleaved with the poll cycle, so no poll waits for more than one write (a burst of 16 acks once
 * stretched a column's poll gap from 199 to 635 ms, and a short press went unseen).
 */
class ModbusBusCore implements ModbusBus, BusLink {
  readonly busId: string;
  readonly devices: ModbusDevice[];
  private readonly log: Logger;
  private readonly now: () => number;
  private state: BusState = 'stopped';
  private lost: { reason: string; since: number } | null = null;
  private readonly reopen: ReopenBackoff;
  private opening: Promise<void> = Promise.resolve();
  private readonly queues: Record<Priority, Job[]> = { write: [], indicator: [], poll: [] };
  private active: Promise<void> | null = null;
  private activeIsWrite = false;
  /** Polls that were queued when the last write ended: they go before the next write. */
  private pollsOwed = 0;
  private quietUntil = 0;
  private gapTimer: NodeJS.Timeout | undefined;
  /** Made once, contained: a fault in the queue must not end the process that the next alarm needs. */
  private readonly afterGap: () => void;

  constructor(
    private readonly options: ModbusBusOptions,
    private readonly transport: ModbusTransport,
    private readonly gapMs: number,
    /** The serial device node, watched while the bus is lost so that a replug is noticed at once. */
    watchPath: string | undefined,
  ) {
    this.busId = options.bus.id;
    this.now = options.now ?? Date.now;
    // The hub may already have bound the bus id; binding it twice would repeat the key in every line.
    this.log = options.logger.bindings()['bus'] !== undefined ? options.logger : options.logger.child({ bus: options.bus.id });
    this.afterGap = contained(this.log, 'sending the next request', () => {
      this.gapTimer = undefined;
      this.pump();
    });
    this.reopen = new ReopenBackoff({
      ...options.timing.reopen,
      path: watchPath,
      log: this.log,
      reopen: () => {
        if (this.state === 'down') this.open();
      },
    });
    const emit = (event: DeviceEvent): void => this.emit(event);
    this.devices = options.devices.map(
      ({ config, profile }) => new ModbusDevice({ config, profile, timing: options.timing, link: this, emit, logger: this.log, now: this.now }),
    );
  }

  start(): void {
    if (this.state !== 'stopped') return;
    this.open();
    for (const device of this.devices) device.start();
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    this.reopen.cancel();
    clearTimeout(this.gapTimer);
    this.gapTimer = undefined;
    this.abortQueued(new ModbusError('port', `bus "${this.busId}" stopped`));
    // Closing first aborts the request on the wire instead of waiting out its timeout.
    await this.transport.close();
    await Promise.all(this.devices.map((d) => d.stop()));
    await this.active;
    await this.opening;
    this.lost = null;
    this.log.info({ endpoint: this.transport.endpoint }, 'modbus bus stopped');
  }

  submit<T>(priority: Priority, run: (transport: ModbusTransport) => Promise<T>): Promise<T> {
    if (this.state === 'stopped' || this.state === 'down') {
      const why = this.state === 'down' ? `lost (${this.lost?.reason ?? 'unknown'})` : 'stopped';
      return Promise.reject(new ModbusError('port', `bus "${this.busId}" is ${why}`));
    }
    return new Promise<T>((resolve, reject) => {
      this.queues[priority].push({ run, resolve: resolve as (value: unknown) => void, reject });
      this.pump();
    });
  }

  isUp(): boolean {
    return this.state === 'up';
  }

  // ── the queue ──────────────────────────────────────────────────────────────────────────────────

  private pump(): void {
    if (this.active !== null || this.state !== 'up' || this.gapTimer !== undefined) return;
    // Nothing to send: the gap is checked again when something is submitted. A timer here would wake the
    // whole service after every reply on a bus with time to spare (one wake-up in three with one column).
    const { write, indicator, poll } = this.queues;
    if (write.length === 0 && indicator.length === 0 && poll.length === 0) return;
    const wait = this.quietUntil - performance.now();
    if (wait > 0) {
      // Timers count whole milliseconds from the start of the current event-loop turn, so a timer of
      // `wait` ms often fires a fraction early and needs a second wake-up of 1 ms. One more millisecond
      // of silence costs less than that wake-up; the check above still guards the gap if it comes early.
      this.gapTimer = setTimeout(this.afterGap, Math.ceil(wait) + 1);
      return;
    }
    let job: Job | undefined;
    if (this.pollsOwed > 0 && poll.length > 0) {
      this.pollsOwed--;
      job = poll.shift();
    } else {
      job = write.shift() ?? indicator.shift();
      this.activeIsWrite = job !== undefined;
      job ??= poll.shift();
    }
    if (job === undefined) return;
    this.active = job.run(this.transport).then(job.resolve, job.reject).then(this.afterJob);
  }

  /** Made once, not per request: the bus runs ~50 requests a second. */
  private readonly afterJob = (): void => {
    this.active = null;
    if (this.activeIsWrite) {
      this.activeIsWrite = false;
      this.pollsOwed = this.queues.poll.length;
    }
    this.quietUntil = performance.now() + this.gapMs;
    this.pump();
  };

  private abortQueued(error: ModbusError): void {
    const jobs = [...this.queues.write, ...this.queues.indicator, ...this.queues.poll];
    this.queues.write.length = 0;
    this.queues.indicator.length = 0;
    this.queues.poll.length = 0;
    this.pollsOwed = 0;
    for (const job of jobs) job.reject(error);
  }

  // ── port lifecycle ─────────────────────────────────────────────────────────────────────────────

  private open(): void {
    this.state = 'opening';
    this.opening = this.transport.open(contained(this.log, 'handling a lost port', (reason: string) => this.onLost(reason))).then(
      () => this.onOpened(),
      (error: unknown) => this.onOpenFailed(error instanceof Error ? error.message : String(error)),
    );
  }

  private onOpened(): void {
    // stop() closed the transport while it was opening; the transport refuses such a late open itself.
    if (this.state !== 'opening') return;
    this.state = 'up';
    this.reopen.opened();
    this.log.info({ endpoint: this.transport.endpoint }, 'modbus port open');
    if (this.lost !== null) {
      const lostForMs = Math.round(performance.now() - this.lost.since);
      this.lost = null;
      this.log.info({ lostForMs }, 'bus restored');
      this.emit({ type: 'bus-restored', busId: this.busId, at: this.now() });
    }
    this.pump();
  }

  private onOpenFailed(reason: string): void {
    if (this.state !== 'opening') return;
    this.markDown(reason);
    this.reopen.failed(reason);
  }

  private onLost(reason: string): void {
    if (this.state !== 'up') return;
    this.markDown(`${this.transport.endpoint}: ${reason}`);
    this.reopen.failed(reason);
  }

  private markDown(reason: string): void {
    this.state = 'down';
    this.abortQueued(new ModbusError('port', `bus "${this.busId}" lost: ${reason}`));
    if (this.lost !== null) return;
    this.lost = { reason, since: performance.now() };
    this.log.error({ reason }, 'bus lost');
    this.emit({ type: 'bus-lost', busId: this.busId, at: this.now(), reason });
  }

  private emit(event: DeviceEvent): void {
    try {
      this.options.sink(event);
    } catch (error) {
      // A failing listener must not stop the polling that the next alarm depends on.
      this.log.error({ err: error instanceof Error ? error.message : String(error), event: event.type }, 'device event listener failed');
    }
  }
}
