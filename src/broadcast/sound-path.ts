import type { Logger } from 'pino';
import type { BroadcastConfig } from '../config/schema.ts';
import type { DevicePort } from '../drivers/device/types.ts';
import type { Now } from '../platform/time.ts';
import { Cancellation } from './cancellation.ts';
import type { ZoneFault } from './types.ts';

type ZoneConfig = BroadcastConfig['zones'][number];
type AmplifierConfig = BroadcastConfig['amplifiers'][number];
type RelayRef = ZoneConfig['relay'];
/** `unknown` after a failed write (or before the first one): it gets written again when it matters. */
type RelayState = 'on' | 'off' | 'unknown';

export interface SoundPathOptions {
  zones: readonly ZoneConfig[];
  amplifiers: readonly AmplifierConfig[];
  powerOnGapMs: number;
  warmUpMs: number;
  idleTailMs: number;
  /** Bound on one relay write, so a driver that never answers cannot hold a broadcast back for good. */
  relayTimeoutMs: number;
  devices: DevicePort;
  logger: Logger;
  now: Now;
}

/**
 * The zone relays and amplifier power relays between the audio output and the loudspeakers.
 *
 * Writes run one at a time, in the order asked (`exclusive`): they share one RS-485 bus anyway, and the
 * order is the point — zones first, then amplifiers `powerOnGapMs` apart so their inrush currents do not
 * add up, and on the way down amplifiers before zones so no speaker line is switched under power.
 * An amplifier not needed by the item playing keeps its own idle tail, so an A–B–A sequence of zones
 * does not chatter its relay; when nothing plays, everything goes off after `idleTailMs`.
 */
export class SoundPath {
  private readonly relays = new Map<string, RelayState>();
  /** When each amplifier was last switched on; its warm-up counts from there, across items. */
  private readonly poweredAt = new Map<string, number>();
  private lastPowerOnAt = Number.NEGATIVE_INFINITY;
  private readonly ampOffTimers = new Map<string, NodeJS.Timeout>();
  private idleTimer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private lifetime = new Cancellation();
  private readonly zoneById: ReadonlyMap<string, ZoneConfig>;
  private readonly ampById: ReadonlyMap<string, AmplifierConfig>;

  constructor(private readonly options: SoundPathOptions) {
    this.zoneById = new Map(options.zones.map((z) => [z.id, z]));
    this.ampById = new Map(options.amplifiers.map((a) => [a.id, a]));
  }

  /** After a crash or a restart the relays may be in any state: nothing may stay powered unasked. */
  start(): void {
    this.lifetime = new Cancellation();
    this.relays.clear();
    void this.switchAllOff();
  }

  async stop(): Promise<void> {
    await this.switchAllOff();
    this.lifetime.cancel();
  }

  amplifierOf(zoneId: string): string | undefined {
    return this.zoneById.get(zoneId)?.amplifier;
  }

  /**
   * Switches off the zones not in `zoneIds`, on those in it, powers their amplifiers and waits until the
   * last one is warm (no wait for amplifiers warm already). Returns the zones a relay write failed for:
   * the others play regardless. Gives up early, leaving the rest to the next caller, once `token` is cancelled.
   */
  prepare(zoneIds: readonly string[], token: Cancellation): Promise<ZoneFault[]> {
    this.clearIdleTimer();
    return this.exclusive(async () => {
      const faults: ZoneFault[] = [];
      const zones = zoneIds.flatMap((id) => this.zoneById.get(id) ?? []);
      const needed = new Set(zones.map((z) => label(z.relay)));
      const amps = [...new Set(zones.map((z) => z.amplifier))].flatMap((id) => this.ampById.get(id) ?? []);
      const ampIds = new Set(amps.map((a) => a.id));
      for (const amp of amps) this.cancelAmpOff(amp.id);
      for (const amp of this.options.amplifiers) if (!ampIds.has(amp.id) && this.state(amp.power) !== 'off') this.scheduleAmpOff(amp);

      // The previous item's zones first: this one must not be heard where it was not sent.
      for (const zone of this.options.zones) {
        if (token.cancelled) return faults;
        if (!needed.has(label(zone.relay)) && this.state(zone.relay) !== 'off') await this.write(zone.relay, false, `zone ${zone.id}`);
      }
      for (const zone of zones) {
        if (token.cancelled) return faults;
        if (this.state(zone.relay) === 'on') continue;
        const error = await this.write(zone.relay, true, `zone ${zone.id}`);
        if (error !== undefined) faults.push({ zone: zone.id, amplifier: zone.amplifier, fault: `zone relay ${label(zone.relay)}: ${error}` });
      }
      for (const amp of amps) {
        if (this.state(amp.power) === 'on') continue;
        await token.sleep(this.lastPowerOnAt + this.options.powerOnGapMs - this.options.now());
        if (token.cancelled) return faults;
        // Counted from the attempt: a write whose reply was lost may still have closed the relay.
        this.lastPowerOnAt = this.options.now();
        this.poweredAt.set(amp.id, this.lastPowerOnAt);
        const error = await this.write(amp.power, true, `amplifier ${amp.id}`);
        if (error === undefined) continue;
        for (const zone of zones)
          if (zone.amplifier === amp.id)
            faults.push({ zone: zone.id, amplifier: amp.id, fault: `amplifier power relay ${label(amp.power)}: ${error}` });
      }
      const warmAt = Math.max(...amps.map((a) => (this.poweredAt.get(a.id) ?? Number.NEGATIVE_INFINITY) + this.options.warmUpMs));
      await token.sleep(warmAt - this.options.now());
      return faults;
    });
  }

  /** Nothing plays any more: keep everything on for the idle tail, in case the next item follows closely. */
  release(): void {
    this.clearIdleTimer();
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      void this.switchAllOff();
    }, this.options.idleTailMs);
  }

  /** Amplifiers, then zones, off now. Safe to call at any time; resolves when the writes are done. */
  switchAllOff(): Promise<void> {
    this.clearIdleTimer();
    for (const timer of this.ampOffTimers.values()) clearTimeout(timer);
    this.ampOffTimers.clear();
    return this.exclusive(async () => {
      for (const amp of this.options.amplifiers) await this.powerOff(amp);
      for (const zone of this.options.zones) if (this.state(zone.relay) !== 'off') await this.write(zone.relay, false, `zone ${zone.id}`);
    });
  }

  /**
   * The faults a real broadcast to these zones would meet at the relays, found without switching any:
   * missing or silent relay boards. For `test` requests.
   */
  check(zoneIds: readonly string[]): ZoneFault[] {
    const faults: ZoneFault[] = [];
    for (const id of zoneIds) {
      const zone = this.zoneById.get(id);
      if (zone === undefined) continue;
      const amp = this.ampById.get(zone.amplifier);
      const zoneProblem = this.deviceProblem(zone.relay);
      if (zoneProblem !== undefined) faults.push({ zone: id, amplifier: zone.amplifier, fault: `zone relay ${label(zone.relay)}: ${zoneProblem}` });
      const ampProblem = amp === undefined ? undefined : this.deviceProblem(amp.power);
      if (amp !== undefined && ampProblem !== undefined)
        faults.push({ zone: id, amplifier: amp.id, fault: `amplifier power relay ${label(amp.power)}: ${ampProblem}` });
    }
    return faults;
  }

  private deviceProblem(ref: RelayRef): string | undefined {
    const device = this.options.devices.device(ref.device);
    if (device === undefined) return `no device "${ref.device}"`;
    return device.health().online ? undefined : 'device offline';
  }

  private scheduleAmpOff(amp: AmplifierConfig): void {
    if (this.ampOffTimers.has(amp.id)) return;
    const timer = setTimeout(() => {
      void this.exclusive(async () => {
        // A prepare queued before this task may have claimed the amplifier again (and removed the timer).
        if (this.ampOffTimers.get(amp.id) !== timer) return;
        this.ampOffTimers.delete(amp.id);
        await this.powerOff(amp);
      });
    }, this.options.idleTailMs);
    this.ampOffTimers.set(amp.id, timer);
  }

  private cancelAmpOff(ampId: string): void {
    clearTimeout(this.ampOffTimers.get(ampId));
    this.ampOffTimers.delete(ampId);
  }

  private clearIdleTimer(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private async powerOff(amp: AmplifierConfig): Promise<void> {
    if (this.state(amp.power) === 'off') return;
    this.poweredAt.delete(amp.id);
    await this.write(amp.power, false, `amplifier ${amp.id}`);
  }

  private state(ref: RelayRef): RelayState {
    return this.relays.get(label(ref)) ?? 'unknown';
  }

  /** One relay write; a failure is logged and returned, never thrown, so the writes after it still happen. */
  private async write(ref: RelayRef, on: boolean, what: string): Promise<string | undefined> {
    const device = this.options.devices.device(ref.device);
    let error: string | undefined;
    if (device === undefined) error = `no device "${ref.device}"`;
    else {
      const waited = await this.lifetime.wait(
        Promise.resolve().then(() => device.setRelay(ref.channel, on)),
        this.options.relayTimeoutMs,
      );
      if (waited.kind === 'rejected') error = waited.error instanceof Error ? waited.error.message : String(waited.error);
      else if (waited.kind === 'timeout') error = `no answer within ${this.options.relayTimeoutMs} ms`;
      else if (waited.kind === 'cancelled') error = 'controller stopped';
    }
    this.relays.set(label(ref), error !== undefined ? 'unknown' : on ? 'on' : 'off');
    const fields = { relay: label(ref), what, on };
    // At info: the technician reading the journal sees each zone and amplifier go on and off.
    if (error === undefined) this.options.logger.info(fields, 'relay switched');
    else this.options.logger.warn({ ...fields, error }, 'relay write failed');
    return error;
  }

  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const result = this.chain.then(task);
    this.chain = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

/** `board/channel`: the map key of a relay, and how logs and reports name it. */
function label(ref: RelayRef): string {
  return `${ref.device}/${ref.channel}`;
}
