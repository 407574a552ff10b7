import type { Logger } from 'pino';
import type { BusConfig, DeviceConfig, TimingConfig } from '../config/schema.ts';
import type { DeviceProfile, LineProfile, ModbusProfile } from './device/profile-schema.ts';
import type { Device, DeviceEventSink, DeviceHealth, DevicePort } from './device/types.ts';
import type { Now } from '../platform/time.ts';
import { createModbusBus } from './modbus/modbus-bus.ts';
import { createLineBus } from './line/line-bus.ts';
import { createSimulatedBus, type SimulatedDevice } from './simulated/simulated-bus.ts';

interface Bus {
  start(): void;
  stop(): Promise<void>;
  devices: readonly Device[];
}

export interface DeviceHub extends DevicePort {
  /** Simulated devices by id, for the demo's keyboard control and tests. */
  simulated(id: string): SimulatedDevice | undefined;
}

/**
 * Builds every bus of the village from config and profiles. A device whose profile is missing or does
 * not fit its bus or role is refused with a reason and left out; the others run.
 */
export function createDeviceHub(options: {
  buses: readonly BusConfig[];
  devices: readonly DeviceConfig[];
  profiles: ReadonlyMap<string, DeviceProfile>;
  timing: TimingConfig;
  sink: DeviceEventSink;
  logger: Logger;
  now?: Now;
}): { hub: DeviceHub; problems: string[] } {
  const problems: string[] = [];
  const buses: Bus[] = [];
  const simulated = new Map<string, SimulatedDevice>();

  options.buses.forEach((bus) => {
    const members: Array<{ config: DeviceConfig; profile: DeviceProfile }> = [];
    options.devices.forEach((config, index) => {
      if (config.bus !== bus.id) return;
      const profile = options.profiles.get(config.profile);
      const problem =
        profile === undefined
          ? `no device profile named "${config.profile}" (known: ${[...options.profiles.keys()].sort().join(', ') || 'none'})`
          : misfit(bus, config, profile);
      if (problem !== undefined || profile === undefined) problems.push(`devices[${index}] (${config.id}): ${problem}`);
      else members.push({ config, profile });
    });
    const common = {
      timing: options.timing,
      sink: options.sink,
      logger: options.logger.child({ bus: bus.id }),
      ...(options.now ? { now: options.now } : {}),
    };
    switch (bus.kind) {
      case 'modbus-rtu':
      case 'modbus-tcp':
        buses.push(createModbusBus({ ...common, bus, devices: members.map((m) => ({ config: m.config, profile: m.profile as ModbusProfile })) }));
        return;
      case 'line':
        buses.push(createLineBus({ ...common, bus, devices: members.map((m) => ({ config: m.config, profile: m.profile as LineProfile })) }));
        return;
      case 'simulated': {
        const sim = createSimulatedBus({ devices: members, sink: options.sink, logger: common.logger, ...(options.now ? { now: options.now } : {}) });
        for (const d of sim.devices) simulated.set(d.id, d);
        buses.push(sim);
        return;
      }
    }
  });

  const byId = new Map<string, Device>();
  for (const bus of buses) for (const device of bus.devices) byId.set(device.id, device);

  const hub: DeviceHub = {
    start: () => {
      for (const b of buses) b.start();
    },
    stop: async () => {
      await Promise.all(buses.map((b) => b.stop()));
    },
    device: (id) => byId.get(id),
    devices: () => [...byId.values()],
    health: (): DeviceHealth[] => [...byId.values()].map((d) => d.health()),
    simulated: (id) => simulated.get(id),
  };
  return { hub, problems };
}

function misfit(bus: BusConfig, config: DeviceConfig, profile: DeviceProfile): string | undefined {
  const fits =
    bus.kind === 'simulated' ||
    (profile.protocol === 'modbus' && (bus.kind === 'modbus-rtu' || bus.kind === 'modbus-tcp')) ||
    (profile.protocol === 'line' && bus.kind === 'line');
  if (!fits) return `profile "${profile.model}" speaks ${profile.protocol}, bus "${bus.id}" is ${bus.kind}`;
  if (config.role === 'alarm-column') {
    const hasButton =
      profile.protocol === 'line'
        ? Object.values(profile.line.events).some((e) => e.kind === 'input' && e.input === 'button')
        : profile.inputs.button !== undefined;
    if (!hasButton) return `role alarm-column needs a button input; profile "${profile.model}" has none`;
  }
  if (config.role === 'relay-board' && (profile.protocol !== 'modbus' || profile.relays === undefined))
    return `role relay-board needs relays; profile "${profile.model}" has none`;
  return undefined;
}
