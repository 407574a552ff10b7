import type { DeviceEvent } from '../drivers/device/types.ts';
import { AmplifierFaults } from './amplifier-faults.ts';

/**
 * What the devices tell the broadcast side: a villager's stop button silences everything, whatever asked
 * for sound, until it is released; an amplifier's status device marks the zones it feeds as faulty.
 */
export function broadcastDeviceInputs(
  amplifiers: ReadonlyArray<{ id: string; statusDevice?: string | undefined }>,
  controller: { setLocalStop(active: boolean): void; setAmplifierFault(amplifierId: string, fault: string | null): void },
): (event: DeviceEvent) => void {
  const amplifierFaults = new AmplifierFaults(amplifiers, (amplifier, fault) => controller.setAmplifierFault(amplifier, fault));
  return (event) => {
    if (event.type === 'input' && event.input === 'stop') controller.setLocalStop(event.active);
    amplifierFaults.handleDeviceEvent(event);
  };
}
