import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { timingSchema, type BusConfig, type DeviceConfig, type TimingConfig } from '../../src/config/schema.ts';
import { createDeviceHub } from '../../src/drivers/device-hub.ts';
import { deviceProfileSchema, indicatorStates, type DeviceProfile, type IndicatorState } from '../../src/drivers/device/profile-schema.ts';
import type { DeviceEvent } from '../../src/drivers/device/types.ts';
import { describeDevicePortContract, type PortRig } from '../support/device-port-contract.ts';
import { openLineDevice, runLineColumns } from '../support/line-device.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { latchedButton, ModbusRtuSlave, type SlaveUnit } from '../support/modbus-rtu-slave.ts';
import { ModbusTcpSlave } from '../support/modbus-tcp-slave.ts';
import { openPtyPair } from '../support/pty.ts';

/** The same village on every bus kind: columns on units 1 and 2, a relay board on unit 9 where the bus has relays. */
const COLUMN_UNITS = { 'col-1': 1, 'col-2': 2 } as const;
const RELAY_UNIT = 9;
type ColumnId = keyof typeof COLUMN_UNITS;

function shipped(model: string): DeviceProfile {
  return deviceProfileSchema.parse(JSON.parse(readFileSync(new URL(`../../devices/${model}.json`, import.meta.url), 'utf8')));
}

function unitOf(id: string): number {
  const unit = COLUMN_UNITS[id as ColumnId];
  if (unit === undefined) throw new Error(`no column ${id} on the rig`);
  return unit;
}

function hubOn(bus: BusConfig, columnModel: DeviceProfile, timing: TimingConfig, withRelays: boolean) {
  const events: DeviceEvent[] = [];
  const device = (id: string, unitId: number, profile: string, role: DeviceConfig['role']): DeviceConfig => ({
    id,
    bus: bus.id,
    unitId,
    profile,
    role,
    label: id,
    testMode: false,
  });
  const devices = Object.entries(COLUMN_UNITS).map(([id, unit]) => device(id, unit, columnModel.model, 'alarm-column'));
  if (withRelays) devices.push(device('relays', RELAY_UNIT, 've-rb8-rtu', 'relay-board'));
  const { hub, problems } = createDeviceHub({
    buses: [bus],
    devices,
    profiles: new Map([
      [columnModel.model, columnModel],
      ['ve-rb8-rtu', shipped('ve-rb8-rtu')],
    ]),
    timing,
    sink: (event) => events.push(event),
    logger: memoryLogger('info').logger,
  });
  if (problems.length > 0) throw new Error(`rig config refused: ${problems.join('; ')}`);
  return { port: hub, events };
}

/**
 * Polled fast; a request timeout long enough that a machine busy with other tests does not turn a slow reply
 * into a failed poll (the slaves share this process's event loop).
 */
const modbusTiming = timingSchema.parse({
  pollIntervalMs: 20,
  requestTimeoutMs: 400,
  offlineAfterFailures: 3,
  offlinePollIntervalMs: 150,
  reopen: { initialMs: 50, maxMs: 400 },
});
const modbusOfflineWithinMs = 3 * (400 + 20) + 1000;

/** AC100 columns (button latched by the column, tamper loop closed) and an RB8 relay board on slave units. */
function modbusFarEnd(units: { unit(id: number): SlaveUnit }) {
  const buttons = new Map<string, { press(): void; release(): void }>();
  for (const [id, unit] of Object.entries(COLUMN_UNITS)) {
    units.unit(unit).set('discrete-inputs', 1, true);
    buttons.set(id, latchedButton(units.unit(unit), 0, 0));
  }
  units.unit(RELAY_UNIT);
  const ledStates: readonly IndicatorState[] = ['off', 'sent', 'received', 'not-received'];
  return {
    press: (id: string) => {
      const button = buttons.get(id);
      button?.press();
      button?.release();
    },
    indicatorWrites: (id: string) =>
      units
        .unit(unitOf(id))
        .writes.filter((w) => w.table === 'holding-registers' && w.address === 0)
        .map((w) => ledStates[w.value] ?? expect.fail(`LED value ${w.value}`)),
    latchResets: (id: string) => units.unit(unitOf(id)).writes.filter((w) => w.table === 'coils' && w.address === 0 && w.value === 1).length,
    answering: (id: string, on: boolean) => units.unit(unitOf(id)).setFault(on ? 'working' : 'timeout'),
    relay: (channel: number) => units.unit(RELAY_UNIT).get('coils', channel) === 1,
  };
}

describeDevicePortContract('simulator', async (): Promise<PortRig> => {
  const { port, events } = hubOn({ id: 'sim', kind: 'simulated' }, shipped('ve-ac100-rtu'), timingSchema.parse({}), true);
  const sim = (id: string) => port.simulated(id) ?? expect.fail(`no simulated ${id}`);
  return {
    port,
    events,
    press: (id) => sim(id).press('button'),
    indicatorWrites: (id) =>
      sim(id)
        .commands.filter((c) => c.startsWith('indicator '))
        .map((c) => c.slice('indicator '.length) as IndicatorState),
    latchResets: (id) => sim(id).commands.filter((c) => c === 'reset button').length,
    answering: (id, on) => sim(id).setOnline(on),
    relay: (channel) => sim('relays').relay(channel),
    offlineWithinMs: 200,
    close: () => port.stop(),
  };
});

describeDevicePortContract('Modbus RTU on a PTY', async (): Promise<PortRig> => {
  const pair = await openPtyPair();
  const slave = await ModbusRtuSlave.open({ path: pair.devicePath });
  const bus: BusConfig = { id: 'rs485-1', kind: 'modbus-rtu', path: pair.controllerPath, baudRate: 9600, parity: 'none', dataBits: 8, stopBits: 1 };
  const { port, events } = hubOn(bus, shipped('ve-ac100-rtu'), modbusTiming, true);
  return {
    port,
    events,
    ...modbusFarEnd(slave),
    offlineWithinMs: modbusOfflineWithinMs,
    async close() {
      await port.stop();
      await slave.close();
      await pair.close();
    },
  };
});

describeDevicePortContract('Modbus TCP on a loopback socket', async (): Promise<PortRig> => {
  const slave = await ModbusTcpSlave.listen();
  const bus: BusConfig = { id: 'gateway-1', kind: 'modbus-tcp', host: slave.host, port: slave.port };
  const { port, events } = hubOn(bus, shipped('ve-ac100-rtu'), modbusTiming, true);
  return {
    port,
    events,
    ...modbusFarEnd(slave),
    offlineWithinMs: modbusOfflineWithinMs,
    async close() {
      await port.stop();
      await slave.close();
    },
  };
});

describeDevicePortContract('line bus on a PTY', async (): Promise<PortRig> => {
  const pair = await openPtyPair();
  const device = await openLineDevice({ path: pair.devicePath, talker: 'VE' });
  const ac200 = shipped('ve-ac200-line');
  if (ac200.protocol !== 'line') throw new Error('ve-ac200-line must be a line profile');
  // Heard every 50 ms, offline after 1 s of silence: fast for tests, with room for a machine busy elsewhere.
  const profile: DeviceProfile = { ...ac200, line: { ...ac200.line, silenceTimeoutMs: 1000 } };
  const columns = runLineColumns(device, Object.values(COLUMN_UNITS), 50);
  const bus: BusConfig = { id: 'line0', kind: 'line', path: pair.controllerPath, baudRate: 9600, parity: 'none', dataBits: 8, stopBits: 1 };
  const { port, events } = hubOn(bus, profile, timingSchema.parse({ requestTimeoutMs: 400, reopen: { initialMs: 50, maxMs: 400 } }), false);
  const ledStates = new Map(indicatorStates.map((state) => [profile.line.indicator?.[state]?.slice('LED,'.length), state]));
  return {
    port,
    events,
    press: (id) => columns.press(unitOf(id)),
    indicatorWrites: (id) => columns.ledArgs(unitOf(id)).map((arg) => ledStates.get(arg) ?? expect.fail(`LED,${arg}`)),
    latchResets: (id) => columns.resets(unitOf(id)),
    answering: (id, on) => columns.answering(unitOf(id), on),
    offlineWithinMs: 1000 + 1000,
    async close() {
      columns.stop();
      await port.stop();
      await device.close();
      await pair.close();
    },
  };
});
