import type { Logger } from 'pino';
import { deviceProfileSchema, type DeviceProfile } from '../../src/drivers/device/profile-schema.ts';
import { createSimulatedBus, type SimulatedDevice } from '../../src/drivers/simulated/simulated-bus.ts';
import type { DeviceEvent, DevicePort } from '../../src/drivers/device/types.ts';

/** A latching Modbus column profile, as data, for domain tests that need no file. */
export const latchingColumnProfile: DeviceProfile = deviceProfileSchema.parse({
  schema: 1,
  model: 'test-column',
  protocol: 'modbus',
  poll: [{ table: 'discrete-inputs', address: 0, count: 2 }],
  inputs: {
    button: { table: 'discrete-inputs', address: 0, latch: { reset: [{ table: 'coils', address: 8, value: 1 }] } },
    tamper: { table: 'discrete-inputs', address: 1, activeLow: true },
  },
  indicator: {
    off: [{ table: 'holding-registers', address: 0, value: 0 }],
    sent: [{ table: 'holding-registers', address: 0, value: 1 }],
    received: [{ table: 'holding-registers', address: 0, value: 2 }],
    'not-received': [{ table: 'holding-registers', address: 0, value: 3 }],
  },
});

/**
 * Simulated columns behind the DevicePort interface, started (as the app starts its hub at start-up), so they
 * are online and their presses are told; events go to whatever `listen` was given.
 */
export function simulatedPort(
  ids: readonly string[],
  logger: Logger,
  profile: DeviceProfile = latchingColumnProfile,
): { port: DevicePort; device: (id: string) => SimulatedDevice; listen: (sink: (e: DeviceEvent) => void) => void } {
  let listener: (e: DeviceEvent) => void = () => {};
  const bus = createSimulatedBus({
    devices: ids.map((id, i) => ({
      config: { id, bus: 'sim', unitId: i + 1, profile: profile.model, role: 'alarm-column' as const, label: `label ${id}`, testMode: false },
      profile,
    })),
    sink: (e) => listener(e),
    logger,
  });
  const byId = new Map(bus.devices.map((d) => [d.id, d]));
  bus.start();
  return {
    port: {
      start: bus.start,
      stop: bus.stop,
      device: (id) => byId.get(id),
      devices: () => bus.devices,
      health: () => bus.devices.map((d) => d.health()),
    },
    device: (id) => {
      const d = byId.get(id);
      if (d === undefined) throw new Error(`no simulated device ${id}`);
      return d;
    },
    listen: (sink) => {
      listener = sink;
    },
  };
}
