import { performance } from 'node:perf_hooks';
import type { DeviceConfig, TimingConfig } from '../../config/schema.ts';
import type { Logger } from '../../platform/logger.ts';
import { wallClockOf } from '../../platform/time.ts';
import {
  coveringBlock,
  type IndicatorState,
  type InputName,
  type ModbusProfile,
  type ModbusWrite,
  type PollBlock,
  type ReadPoint,
  type StatusCondition,
} from '../device/profile-schema.ts';
import type { Device, DeviceEvent, DeviceHealth, ProtocolErrorKind, RawReply } from '../device/types.ts';
import { ModbusError, type Exchange, type ModbusTransport } from './modbus-transport.ts';
import { IndicatorWaiters } from '../device/indicator-waiters.ts';

/**
 * `write` (latch resets, relays) before `indicator`; every write takes its turn with the polls the bus
 * owes (modbus-bus.ts), so no poll waits for more than one write.
 */
export type Priority = 'write' | 'indicator' | 'poll';

/** What a device needs from the bus it sits on. */
export interface BusLink {
  readonly busId: string;
  /** Runs `job` alone on the port, interleaving writes with polls; rejects with kind 'port' while the bus is down. */
  submit<T>(priority: Priority, job: (transport: ModbusTransport) => Promise<T>): Promise<T>;
  isUp(): boolean;
}

export interface ModbusDeviceOptions {
  config: DeviceConfig;
  profile: ModbusProfile;
  timing: TimingConfig;
  link: BusLink;
  /** Must not throw: the bus contains listener failures. */
  emit: (event: DeviceEvent) => void;
  logger: Logger;
  now: () => number;
}

/** Where an input's or status condition's value sits in the poll results. */
interface PointSlot<Name extends string> {
  name: Name;
  point: ReadPoint;
  block: number;
  offset: number;
}

type BlockValues = ReadonlyArray<boolean | number>;

// Weight of the newest sample in the measured poll interval.
const INTERVAL_SMOOTHING = 0.25;
/** The worst poll gap is kept per window of this length; health reports the worse of the last two. */
const GAP_WINDOW_MS = 60_000;
/** A failed indicator write on a device that still answers its polls is tried again after this long. */
const INDICATOR_RETRY_MS = 1000;

/**
 * One Modbus device driven by its profile. Scheduling uses the monotonic clock: a Pi without an RTC
 * boots with a wrong wall clock that NTP later jumps. `now` only stamps events.
 */
export class ModbusDevice implements Device {
  readonly id: string;
  readonly busId: string;
  private readonly inputSlots: PointSlot<InputName>[];
  private readonly statusSlots: PointSlot<StatusCondition>[];
  private readonly exchange: Exchange;
  /** One read job per poll block, built once: polling runs ~50 times a second and should allocate little. */
  private readonly blockReads: Array<(transport: ModbusTransport) => Promise<BlockValues>>;
  private readonly log: Logger;
  private running = false;
  /** Bumped by start(): a poll of an earlier start() must not keep its own loop going. */
  private loop = 0;
  private timer: NodeJS.Timeout | undefined;
  private cycle: Promise<void> = Promise.resolve();
  private answered = false;
  private failures = 0;
  private offlineSince: number | null = null;
  private lastReadAt: number | null = null;
  /** performance.now() of the last good reply (poll or write); health turns it into wall-clock time. */
  private lastReplyAt: number | null = null;
  private intervalMs: number | null = null;
  /** Worst gap between two answered reads in the current and the previous window (GAP_WINDOW_MS). */
  private gapWindowStart = 0;
  private worstGapNow = 0;
  private worstGapBefore = 0;
  /** A `poll-gap` fault is active for this device. */
  private gapFault = false;
  /** The indicator state the domain asked for last; null until it asks. */
  private desiredIndicator: IndicatorState | null = null;
  /**
   * What the column confirmed of its indicator points ("table:address" → value); forgotten when the column
   * may have lost it (restart of the driver, device offline, bus lost).
   */
  private readonly shownPoints = new Map<string, number>();
  /** The column shows the desired state: nothing to do on the next poll (the common case, checked per poll). */
  private indicatorInSync = true;
  private indicatorSyncing = false;
  private indicatorFailedAt = -Infinity;
  private readonly indicatorWaiters = new IndicatorWaiters();
  private readonly knownInputs = new Map<InputName, boolean>();
  private readonly knownStatus = new Map<StatusCondition, boolean>();
  private readonly errors: Partial<Record<ProtocolErrorKind, number>> = {};
  /** The last complete poll as read (a fresh array per poll, kept as is: turned into a map only when asked). */
  private lastValues: { values: readonly BlockValues[]; at: number } | null = null;

  constructor(private readonly options: ModbusDeviceOptions) {
    this.id = options.config.id;
    this.busId = options.link.busId;
    this.inputSlots = pointSlots(options.profile, options.profile.inputs);
    this.statusSlots = pointSlots(options.profile, options.profile.status ?? {});
    this.exchange = { unitId: options.config.unitId, timeoutMs: options.timing.requestTimeoutMs };
    this.blockReads = options.profile.poll.map((block) => (t: ModbusTransport) => readBlock(t, this.exchange, block));
    this.log = options.logger.child({ device: options.config.id });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop++;
    this.answered = false;
    this.failures = 0;
    this.knownInputs.clear();
    this.knownStatus.clear();
    this.lastReadAt = null;
    this.forgetIndicator();
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.cycle;
    this.indicatorWaiters.settle(new ModbusError('port', `device "${this.id}" stopped before its indicator was shown`));
  }

  setIndicator(state: IndicatorState): Promise<void> {
    const writes = this.options.profile.indicator?.[state];
    if (writes === undefined || writes.length === 0) {
      // A column that cannot show a state is still a working column; the domain need not care.
      this.log.debug({ indicator: state }, 'profile has no writes for this indicator state');
    }
    this.desiredIndicator = state;
    this.indicatorInSync = false;
    const shown = this.indicatorWaiters.wait();
    this.syncIndicator();
    return shown;
  }

  async resetLatch(input: InputName): Promise<void> {
    const latch = this.options.profile.inputs[input]?.latch;
    if (latch === undefined) return;
    await this.write(latch.reset, `reset ${input} latch`);
  }

  async setRelay(channel: number, on: boolean): Promise<void> {
    const relays = this.options.profile.relays;
    if (relays === undefined) throw new Error(`device "${this.id}" (${this.options.profile.model}) has no relays`);
    if (!Number.isInteger(channel) || channel < 0 || channel >= relays.count)
      throw new RangeError(`device "${this.id}" has relay channels 0..${relays.count - 1}, not ${channel}`);
    await this.write([{ table: 'coils', address: relays.address + channel, value: on ? 1 : 0 }], `relay ${channel} ${on ? 'on' : 'off'}`);
  }

  health(): DeviceHealth {
    const button = this.options.profile.inputs.button;
    return {
      id: this.id,
      bus: this.busId,
      model: this.options.profile.model,
      online: this.options.link.isUp() && this.answered && this.offlineSince === null,
      latching: button === undefined ? null : button.latch !== undefined,
      pollIntervalMs: this.intervalMs === null ? null : Math.round(this.intervalMs),
      worstPollGapMs: this.worstPollGapMs(),
      lastReplyAt: this.lastReplyAt === null ? null : wallClockOf(this.lastReplyAt, this.options.now),
      errors: { ...this.errors },
      ...(this.options.profile.status === undefined ? {} : { status: Object.fromEntries(this.knownStatus) }),
      lastRaw: this.lastRaw(),
    };
  }

  private lastRaw(): RawReply | null {
    const last = this.lastValues;
    if (last === null) return null;
    const registers: Record<string, number> = {};
    this.options.profile.poll.forEach((block, i) => {
      last.values[i]?.forEach((value, offset) => {
        registers[`${block.table}:${block.address + offset}`] = typeof value === 'boolean' ? (value ? 1 : 0) : value;
      });
    });
    return { at: wallClockOf(last.at, this.options.now), registers };
  }

  // ── polling ────────────────────────────────────────────────────────────────────────────────────

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.startCycle();
    }, delayMs);
  }

  private startCycle(): void {
    this.cycle = this.poll(this.loop).catch((error: unknown) => {
      this.log.error({ err: error instanceof Error ? error.message : String(error) }, 'poll cycle failed');
    });
  }

  private async poll(loop: number): Promise<void> {
    const startedAt = performance.now();
    try {
      const values = new Array<BlockValues>(this.blockReads.length);
      // One request per block, so a write waits for at most one poll request, never a whole device.
      for (let i = 0; i < this.blockReads.length; i++) {
        values[i] = await this.options.link.submit('poll', this.blockReads[i]!);
        this.lastReplyAt = performance.now();
      }
      this.onAnswer(values);
    } catch (error) {
      this.onFailure(asModbusError(error));
    }
    if (!this.running || loop !== this.loop) return;
    const { pollIntervalMs, offlinePollIntervalMs } = this.options.timing;
    const interval = this.offlineSince === null ? pollIntervalMs : offlinePollIntervalMs;
    const delayMs = interval - (performance.now() - startedAt);
    // On a busy bus the queue already made this device wait its interval out: queue the next poll
    // now rather than through a timer, which would cost the whole service one more wake-up per poll.
    // Only while the bus is up: a down bus rejects at once, and this would become a busy loop.
    if (delayMs <= 0 && this.options.link.isUp()) this.startCycle();
    else this.schedule(Math.max(0, delayMs));
  }

  private onAnswer(values: BlockValues[]): void {
    if (!this.running) return;
    const readAt = performance.now();
    if (this.lastReadAt !== null) {
      const sample = readAt - this.lastReadAt;
      this.intervalMs = this.intervalMs === null ? sample : this.intervalMs + INTERVAL_SMOOTHING * (sample - this.intervalMs);
      this.measureGap(readAt, sample);
    }
    this.lastReadAt = readAt;
    this.lastValues = { values, at: readAt };
    this.failures = 0;
    this.answered = true;
    if (this.offlineSince !== null) {
      const offlineForMs = Math.round(readAt - this.offlineSince);
      this.offlineSince = null;
      this.log.info({ offlineForMs }, 'device recovered');
      this.options.emit({ type: 'recovered', deviceId: this.id, at: this.options.now(), offlineForMs });
    }
    // The device answers: the moment to show what it should show (after a start, a lost bus, an outage).
    if (!this.indicatorInSync && readAt - this.indicatorFailedAt >= INDICATOR_RETRY_MS) this.syncIndicator();
    // Index loops, no iterators or result arrays: this runs on every poll, and mostly nothing changed.
    for (let i = 0; i < this.inputSlots.length; i++) {
      const slot = this.inputSlots[i]!;
      const active = changed(slot, values, this.knownInputs);
      if (active === null) continue;
      this.log.info({ input: slot.name, active }, 'input');
      this.options.emit({ type: 'input', deviceId: this.id, input: slot.name, active, at: this.options.now() });
    }
    for (let i = 0; i < this.statusSlots.length; i++) {
      const slot = this.statusSlots[i]!;
      const active = changed(slot, values, this.knownStatus);
      if (active === null) continue;
      this.log.info({ condition: slot.name, active }, 'status');
      this.options.emit({ type: 'status', deviceId: this.id, condition: slot.name, active, at: this.options.now() });
    }
  }

  private onFailure(error: ModbusError): void {
    if (!this.running) return;
    if (!this.options.link.isUp()) {
      // A lost or stopped bus is reported once by the bus, not as a failure of every device on it. Its
      // outage is not a poll gap, and the columns may have lost power with it.
      this.lastReadAt = null;
      this.forgetIndicator();
      return;
    }
    this.recordError(error);
    this.failures++;
    if (this.offlineSince !== null || this.failures < this.options.timing.offlineAfterFailures) return;
    this.offlineSince = performance.now();
    this.lastReadAt = null;
    // It may come back from a power cut, showing nothing: show it again then.
    this.forgetIndicator();
    const since = this.answered ? '' : ' since start';
    const reason = `${this.failures} polls in a row failed${since}; last: ${error.message}`;
    this.log.warn({ reason }, 'device offline');
    this.options.emit({ type: 'offline', deviceId: this.id, at: this.options.now(), reason });
  }

  private recordError(error: ModbusError): void {
    this.errors[error.kind] = (this.errors[error.kind] ?? 0) + 1;
    // Once a device is known to be offline its every retry fails; keep those out of the warnings.
    const level = this.offlineSince === null ? 'warn' : 'debug';
    this.log[level]({ kind: error.kind, reason: error.message }, 'protocol error');
    this.options.emit({
      type: 'protocol-error',
      busId: this.busId,
      deviceId: this.id,
      kind: error.kind,
      detail: error.message,
      at: this.options.now(),
    });
  }

  /** Keeps the worst gap per window, and raises (or clears) the poll-gap fault of an unlatched button. */
  private measureGap(readAt: number, sampleMs: number): void {
    if (readAt - this.gapWindowStart >= GAP_WINDOW_MS) {
      this.worstGapBefore = readAt - this.gapWindowStart >= 2 * GAP_WINDOW_MS ? 0 : this.worstGapNow;
      this.worstGapNow = 0;
      this.gapWindowStart = readAt;
    }
    if (sampleMs > this.worstGapNow) this.worstGapNow = sampleMs;
    const button = this.options.profile.inputs.button;
    if (button === undefined || button.latch !== undefined) return;
    const thresholdMs = this.options.timing.maxMissablePressMs;
    const worst = this.worstGap(readAt);
    if (this.gapFault === worst > thresholdMs) return;
    this.gapFault = !this.gapFault;
    const gapMs = Math.round(this.gapFault ? sampleMs : worst);
    const event = {
      type: 'poll-gap' as const,
      busId: this.busId,
      deviceId: this.id,
      active: this.gapFault,
      gapMs,
      thresholdMs,
      at: this.options.now(),
    };
    if (this.gapFault) this.log.warn({ gapMs, thresholdMs }, 'poll gap above the missable-press limit: a short press can go unseen');
    else this.log.info({ worstPollGapMs: gapMs, thresholdMs }, 'poll gaps back under the missable-press limit');
    this.options.emit(event);
  }

  /** Null when no two reads fell in the last two windows (not yet polled twice, or offline since). */
  private worstPollGapMs(): number | null {
    const worst = this.worstGap(performance.now());
    return worst === 0 ? null : Math.round(worst);
  }

  private worstGap(now: number): number {
    const age = now - this.gapWindowStart;
    if (age >= 2 * GAP_WINDOW_MS) return 0;
    if (age >= GAP_WINDOW_MS) return this.worstGapNow;
    return Math.max(this.worstGapNow, this.worstGapBefore);
  }

  // ── the indicator: a desired state ─────────────────────────────────────────────────────────────

  private forgetIndicator(): void {
    this.shownPoints.clear();
    if (this.desiredIndicator !== null) this.indicatorInSync = false;
  }

  /**
   * Writes, one at a time, the points of the desired state the column does not show yet; starts only when
   * the device answers (otherwise its next answered poll starts it), and notices a newer state between two
   * writes. An indicator write takes the bus's write turn like any other (see Priority).
   */
  private syncIndicator(): void {
    if (this.indicatorSyncing || !this.running || !this.reachable()) return;
    this.indicatorSyncing = true;
    void this.writeIndicator();
  }

  private async writeIndicator(): Promise<void> {
    // Cleared as the loop returns, not a microtask later: a state asked for just then must start a loop.
    try {
      await this.writeIndicatorPoints();
    } finally {
      this.indicatorSyncing = false;
    }
  }

  private async writeIndicatorPoints(): Promise<void> {
    for (;;) {
      const state = this.desiredIndicator;
      const next = state === null ? undefined : this.options.profile.indicator?.[state]?.find((w) => this.shownPoints.get(pointKey(w)) !== w.value);
      if (next === undefined) {
        this.indicatorInSync = true;
        if (state !== null) this.log.debug({ indicator: state }, 'indicator shown');
        return this.indicatorWaiters.settle(null);
      }
      if (!this.running || !this.reachable()) return;
      try {
        await this.options.link.submit('indicator', (t) => writeOne(t, this.exchange, next));
        this.lastReplyAt = performance.now();
        this.shownPoints.set(pointKey(next), next.value);
      } catch (cause) {
        const error = asModbusError(cause);
        this.shownPoints.delete(pointKey(next));
        if (this.options.link.isUp()) this.recordError(error);
        this.indicatorFailedAt = performance.now();
        return this.indicatorWaiters.settle(
          new ModbusError(error.kind, `device "${this.id}": indicator ${state} failed, kept to be shown when it answers: ${error.message}`),
        );
      }
    }
  }

  private reachable(): boolean {
    return this.options.link.isUp() && this.answered && this.offlineSince === null;
  }

  // ── writing ────────────────────────────────────────────────────────────────────────────────────

  /**
   * The writes of one purpose go out in profile order, ahead of the other indicator writes. Each is its own
   * job, queued together, so the bus keeps the 3.5-character silence between them as between any two frames.
   */
  private async write(writes: readonly ModbusWrite[], purpose: string): Promise<void> {
    const acknowledged = (): void => {
      this.lastReplyAt = performance.now();
    };
    try {
      await Promise.all(writes.map((w) => this.options.link.submit('write', (t) => writeOne(t, this.exchange, w)).then(acknowledged)));
      this.log.debug({ purpose }, 'written');
    } catch (cause) {
      const error = asModbusError(cause);
      if (this.options.link.isUp()) this.recordError(error);
      throw new ModbusError(error.kind, `device "${this.id}": ${purpose} failed: ${error.message}`);
    }
  }
}

function pointSlots<Name extends string>(profile: ModbusProfile, points: Partial<Record<Name, ReadPoint>>): PointSlot<Name>[] {
  const slots: PointSlot<Name>[] = [];
  for (const [name, point] of Object.entries(points) as Array<[Name, ReadPoint | undefined]>) {
    if (point === undefined) continue;
    // The profile schema guarantees a covering block; a profile built past it is a programming error.
    const block = coveringBlock(profile.poll, point);
    const covering = profile.poll[block];
    if (covering === undefined) throw new Error(`profile "${profile.model}": ${name} is not inside any poll block`);
    slots.push({ name, point, block, offset: point.address - covering.address });
  }
  return slots;
}

/**
 * The slot's new value if this poll is news, else null; remembers the value in `known`. The first reading
 * after start is news only when active: "not pressed", "no overheat" is no news (and "power off" is the
 * idle state).
 */
function changed<Name extends string>(slot: PointSlot<Name>, values: BlockValues[], known: Map<Name, boolean>): boolean | null {
  const active = isActive(slot, values);
  const before = known.get(slot.name);
  if (before === active) return null;
  known.set(slot.name, active);
  return before === undefined && !active ? null : active;
}

function isActive(slot: PointSlot<string>, values: BlockValues[]): boolean {
  const raw = values[slot.block]?.[slot.offset] ?? 0;
  const { bit, activeLow } = slot.point;
  const on = typeof raw === 'boolean' ? raw : bit === undefined ? raw !== 0 : ((raw >> bit) & 1) === 1;
  return activeLow ? !on : on;
}

function readBlock(t: ModbusTransport, x: Exchange, block: PollBlock): Promise<BlockValues> {
  switch (block.table) {
    case 'coils':
      return t.readCoils(x, block.address, block.count);
    case 'discrete-inputs':
      return t.readDiscreteInputs(x, block.address, block.count);
    case 'holding-registers':
      return t.readHoldingRegisters(x, block.address, block.count);
    case 'input-registers':
      return t.readInputRegisters(x, block.address, block.count);
  }
}

function writeOne(t: ModbusTransport, x: Exchange, w: ModbusWrite): Promise<void> {
  switch (w.table) {
    case 'coils':
      return t.writeCoil(x, w.address, w.value === 1);
    case 'holding-registers':
      return t.writeRegister(x, w.address, w.value);
  }
}

function pointKey(w: ModbusWrite): string {
  return `${w.table}:${w.address}`;
}

function asModbusError(error: unknown): ModbusError {
  if (error instanceof ModbusError) return error;
  return new ModbusError('port', error instanceof Error ? error.message : String(error));
}
