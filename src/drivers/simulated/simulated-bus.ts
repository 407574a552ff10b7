import type { Logger } from 'pino';
import type { DeviceConfig } from '../../config/schema.ts';
import { statusConditions, type DeviceProfile } from '../device/profile-schema.ts';
import type { Device, DeviceEventSink, DeviceHealth, IndicatorState, InputName, RawReply, StatusCondition } from '../device/types.ts';
import type { Now } from '../../platform/time.ts';
import { contained } from '../../platform/contained.ts';

/**
 * A device with no hardware behind it, for `npm start` and domain tests; driven by `press()` etc. It is polled,
 * as far as anyone can tell, from start() to stop(), and answers each poll at once: the first at start().
 * Outside that it is offline and tells nothing, as a real device nobody polls.
 */
export class SimulatedDevice implements Device {
  readonly busId: string;
  private readonly active = new Map<InputName, boolean>();
  /** What the controller was last told of each input; empty until its first poll, as the real driver's. */
  private readonly reportedInputs = new Map<InputName, boolean>();
  private readonly relays = new Map<number, boolean>();
  /** What the device holds now, and what the controller was last told (they differ while offline). */
  private readonly status = new Map<StatusCondition, boolean>();
  private readonly reportedStatus = new Map<StatusCondition, boolean>();
  private readonly declaredStatus: readonly StatusCondition[];
  private releaseTimer: NodeJS.Timeout | undefined;
  /** Whether it answers (a cut cable makes it stop); whether it is online also needs it to be polled (started). */
  private online = true;
  private started = false;
  /** When it last answered before it stopped (by setOnline(false) or stop()); null if it never did. */
  private answeredUntil: number | null = null;
  /** What the column shows; `desired` is what it was asked to show, shown once it answers (as the real drivers do). */
  indicator: IndicatorState = 'off';
  private desired: IndicatorState | null = null;
  /** False once it stopped answering: it may have lost power and forgotten its indicator. */
  private indicatorKnown = false;
  /** Every command the controller sent, in order; tests and the demo read it. */
  readonly commands: string[] = [];

  constructor(
    private readonly config: DeviceConfig,
    private readonly profile: DeviceProfile,
    private readonly sink: DeviceEventSink,
    private readonly logger: Logger,
    private readonly now: Now,
  ) {
    this.busId = config.bus;
    const status = profile.protocol === 'modbus' ? profile.status : undefined;
    this.declaredStatus = statusConditions.filter((c) => status?.[c] !== undefined);
    // An amplifier at rest: power stage off, no fault; as the real driver reads it after its first poll.
    for (const condition of this.declaredStatus) {
      this.status.set(condition, false);
      this.reportedStatus.set(condition, false);
    }
  }

  get id(): string {
    return this.config.id;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.reportedInputs.clear();
    // Its first poll: what is active now is news, what is at rest is not.
    if (this.online) this.report();
  }

  async stop(): Promise<void> {
    if (this.answering()) this.answeredUntil = this.now();
    this.started = false;
    clearTimeout(this.releaseTimer);
  }

  /** A villager presses the button for `holdMs`; a latching model holds it until the controller resets it. */
  press(input: InputName = 'button', holdMs = 300): void {
    this.setInput(input, true);
    if (this.latches(input)) return;
    clearTimeout(this.releaseTimer);
    this.releaseTimer = setTimeout(
      contained(this.logger, `releasing the ${input} of simulated device "${this.id}"`, () => this.setInput(input, false)),
      holdMs,
    );
  }

  setInput(input: InputName, active: boolean): void {
    if (this.active.get(input) === active) return;
    this.active.set(input, active);
    if (this.answering()) this.reportInputs();
  }

  /** The device's own monitor changes, e.g. `setStatus('overheat', true)`; only conditions its profile declares. */
  setStatus(condition: StatusCondition, active: boolean): void {
    if (!this.declaredStatus.includes(condition))
      throw new Error(`${this.id}: profile "${this.profile.model}" declares no status condition "${condition}"`);
    this.status.set(condition, active);
    if (this.answering()) this.reportStatus();
  }

  /** Makes the device stop (false) or start (true) answering, as a cut cable would; told only while started. */
  setOnline(online: boolean): void {
    if (online === this.online) return;
    const at = this.now();
    if (this.answering()) this.answeredUntil = at;
    this.online = online;
    if (!this.started) return;
    if (online) {
      if (this.desired !== null) this.show(this.desired);
      this.sink({ type: 'recovered', deviceId: this.id, at, offlineForMs: 0 });
      // The real driver's first poll after recovery reports what changed while it was not answering.
      this.report();
    } else {
      this.indicatorKnown = false;
      this.sink({ type: 'offline', deviceId: this.id, at, reason: 'simulated: not answering' });
    }
  }

  /** Kept while offline and shown when it answers again; a state it already shows is not sent again. */
  async setIndicator(state: IndicatorState): Promise<void> {
    this.desired = state;
    this.assertOnline();
    this.show(state);
  }

  private show(state: IndicatorState): void {
    if (this.indicatorKnown && this.indicator === state) return;
    this.indicator = state;
    this.indicatorKnown = true;
    this.commands.push(`indicator ${state}`);
    this.logger.info({ device: this.id, indicator: state }, 'simulated column shows indicator');
  }

  async resetLatch(input: InputName): Promise<void> {
    this.assertOnline();
    if (!this.latches(input)) return;
    this.commands.push(`reset ${input}`);
    this.setInput(input, false);
  }

  async setRelay(channel: number, on: boolean): Promise<void> {
    this.assertOnline();
    const count = this.profile.protocol === 'modbus' ? (this.profile.relays?.count ?? 0) : 0;
    if (channel < 0 || channel >= count) throw new Error(`${this.id}: channel ${channel} is not one of its ${count} relays`);
    this.relays.set(channel, on);
    this.commands.push(`relay ${channel} ${on ? 'on' : 'off'}`);
  }

  relay(channel: number): boolean {
    return this.relays.get(channel) ?? false;
  }

  health(): DeviceHealth {
    const hasButton = this.profile.protocol === 'modbus' ? this.profile.inputs.button !== undefined : true;
    return {
      id: this.id,
      bus: this.busId,
      model: this.profile.model,
      online: this.answering(),
      latching: hasButton ? this.latches('button') : null,
      pollIntervalMs: null,
      worstPollGapMs: null,
      // Started and online, it answers every poll at once: its last reply is now.
      lastReplyAt: this.answering() ? this.now() : this.answeredUntil,
      errors: {},
      ...(this.declaredStatus.length === 0 ? {} : { status: Object.fromEntries(this.reportedStatus) }),
      lastRaw: this.lastRaw(),
    };
  }

  /** No bytes to show: what the simulated device holds, said as a line, as of its last answer. */
  private lastRaw(): RawReply | null {
    const at = this.answering() ? this.now() : this.answeredUntil;
    if (at === null) return null;
    const states = (map: ReadonlyMap<string | number, boolean>) => [...map].map(([name, on]) => `${name}=${on ? 1 : 0}`);
    const parts = [
      ...states(this.reportedInputs),
      ...states(this.reportedStatus),
      ...[...this.relays].map(([channel, on]) => `relay${channel}=${on ? 1 : 0}`),
      `indicator=${this.indicator}`,
    ];
    return { at, line: `simulated ${parts.join(' ')}` };
  }

  private report(): void {
    this.reportInputs();
    this.reportStatus();
  }

  private reportInputs(): void {
    for (const [input, active] of this.active) {
      const before = this.reportedInputs.get(input);
      if (before === active) continue;
      this.reportedInputs.set(input, active);
      if (before === undefined && !active) continue;
      this.sink({ type: 'input', deviceId: this.id, input, active, at: this.now() });
    }
  }

  private reportStatus(): void {
    for (const [condition, active] of this.status) {
      if (this.reportedStatus.get(condition) === active) continue;
      this.reportedStatus.set(condition, active);
      this.sink({ type: 'status', deviceId: this.id, condition, active, at: this.now() });
    }
  }

  private latches(input: InputName): boolean {
    if (this.profile.protocol === 'line') return this.profile.line.latchReset !== undefined && input === 'button';
    return this.profile.inputs[input]?.latch !== undefined;
  }

  private answering(): boolean {
    return this.started && this.online;
  }

  private assertOnline(): void {
    if (!this.online) throw new Error(`${this.id}: not answering (simulated)`);
  }
}

export function createSimulatedBus(options: {
  devices: Array<{ config: DeviceConfig; profile: DeviceProfile }>;
  sink: DeviceEventSink;
  logger: Logger;
  now?: Now;
}): { start(): void; stop(): Promise<void>; devices: SimulatedDevice[] } {
  const now = options.now ?? Date.now;
  const devices = options.devices.map((d) => new SimulatedDevice(d.config, d.profile, options.sink, options.logger, now));
  return {
    devices,
    start: () => {
      for (const d of devices) d.start();
    },
    stop: async () => {
      await Promise.all(devices.map((d) => d.stop()));
    },
  };
}
