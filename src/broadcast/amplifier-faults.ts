import type { DeviceEvent } from '../drivers/device/types.ts';

/**
 * Turns amplifier status devices' events into the controller's per-amplifier fault, so every report
 * covering a zone names its faulty amplifier. `power` is not a fault by itself: an amplifier is off
 * whenever its relay is, so only overheat, line fault and a silent status device count.
 */
export class AmplifierFaults {
  /** status device id → amplifier id */
  private readonly amplifierOf: Map<string, string>;
  private readonly active = new Map<string, Set<string>>();

  constructor(
    amplifiers: ReadonlyArray<{ id: string; statusDevice?: string | undefined }>,
    private readonly setFault: (amplifierId: string, fault: string | null) => void,
  ) {
    this.amplifierOf = new Map(amplifiers.flatMap((a) => (a.statusDevice === undefined ? [] : [[a.statusDevice, a.id] as const])));
  }

  handleDeviceEvent(event: DeviceEvent): void {
    if (event.type !== 'status' && event.type !== 'offline' && event.type !== 'recovered') return;
    const amplifier = this.amplifierOf.get(event.deviceId);
    if (amplifier === undefined) return;
    const faults = this.active.get(amplifier) ?? new Set<string>();
    this.active.set(amplifier, faults);
    if (event.type === 'offline') faults.add('status device not answering');
    else if (event.type === 'recovered') faults.delete('status device not answering');
    else if (event.condition !== 'power') {
      if (event.active) faults.add(event.condition);
      else faults.delete(event.condition);
    }
    this.setFault(amplifier, faults.size === 0 ? null : [...faults].sort().join(', '));
  }
}
