import { readFileSync } from 'node:fs';
import { timingSchema, type DeviceConfig, type TimingConfig } from '../../src/config/schema.ts';
import { createModbusBus, type ModbusBus } from '../../src/drivers/modbus/modbus-bus.ts';
import { deviceProfileSchema, type ModbusProfile } from '../../src/drivers/device/profile-schema.ts';
import type { Device, DeviceEvent } from '../../src/drivers/device/types.ts';
import { memoryLogger, type LogLine } from './log-sink.ts';
import { ModbusRtuSlave, type RtuSlaveOptions } from './modbus-rtu-slave.ts';
import { openPtyPair, type PtyPair } from './pty.ts';

/** A shipped profile from devices/, parsed as the service parses it. */
export function modbusProfile(model: string): ModbusProfile {
  const parsed = deviceProfileSchema.parse(JSON.parse(readFileSync(new URL(`../../devices/${model}.json`, import.meta.url), 'utf8')));
  if (parsed.protocol !== 'modbus') throw new Error(`${model} is not a Modbus profile`);
  return parsed;
}

/** Fast polling for tests, with timeouts generous enough for a busy CI machine (the slave shares the event loop). */
export function testTiming(overrides: Partial<TimingConfig> = {}): TimingConfig {
  return timingSchema.parse({
    pollIntervalMs: 20,
    requestTimeoutMs: 150,
    offlineAfterFailures: 3,
    offlinePollIntervalMs: 150,
    reopen: { initialMs: 50, maxMs: 400 },
    ...overrides,
  });
}

export function deviceConfig(bus: string, id: string, unitId: number, model: string): DeviceConfig {
  const role = model === 've-rb8-rtu' ? 'relay-board' : model === 've-amp60-rtu' ? 'amplifier' : 'alarm-column';
  return { id, bus, unitId, profile: model, role, label: id, testMode: false };
}

export function inputEvents(events: readonly DeviceEvent[], deviceId: string): Array<Extract<DeviceEvent, { type: 'input' }>> {
  return events.filter((e): e is Extract<DeviceEvent, { type: 'input' }> => e.type === 'input' && e.deviceId === deviceId);
}

export function statusEvents(events: readonly DeviceEvent[], deviceId: string): Array<Extract<DeviceEvent, { type: 'status' }>> {
  return events.filter((e): e is Extract<DeviceEvent, { type: 'status' }> => e.type === 'status' && e.deviceId === deviceId);
}

/** A Modbus RTU bus on the controller end of a socat PTY pair, our slave on the device end. */
export interface RtuRig {
  pair: PtyPair;
  slave: ModbusRtuSlave;
  bus: ModbusBus;
  events: DeviceEvent[];
  lines: LogLine[];
  device(id: string): Device;
  close(): Promise<void>;
}

export async function rtuRig(options: {
  busId: string;
  devices: Array<{ id: string; unitId: number; profile: ModbusProfile }>;
  timing?: TimingConfig;
  slave?: Omit<RtuSlaveOptions, 'path'>;
  /** The path the bus opens; defaults to the pair's controller end. */
  path?: (pair: PtyPair) => string;
}): Promise<RtuRig> {
  const pair = await openPtyPair();
  const slave = await ModbusRtuSlave.open({ path: pair.devicePath, ...options.slave });
  const { logger, lines } = memoryLogger('debug');
  const events: DeviceEvent[] = [];
  const bus = createModbusBus({
    bus: {
      id: options.busId,
      kind: 'modbus-rtu',
      path: options.path?.(pair) ?? pair.controllerPath,
      baudRate: 9600,
      parity: 'none',
      dataBits: 8,
      stopBits: 1,
    },
    devices: options.devices.map((d) => ({ config: deviceConfig(options.busId, d.id, d.unitId, d.profile.model), profile: d.profile })),
    timing: options.timing ?? testTiming(),
    sink: (event) => events.push(event),
    logger,
  });
  return {
    pair,
    slave,
    bus,
    events,
    lines,
    device(id) {
      const device = bus.devices.find((d) => d.id === id);
      if (device === undefined) throw new Error(`no device ${id} on the rig`);
      return device;
    },
    async close() {
      await bus.stop();
      await slave.close();
      await pair.close();
    },
  };
}
