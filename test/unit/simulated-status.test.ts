import { describe, expect, it } from 'vitest';
import { createSimulatedBus } from '../../src/drivers/simulated/simulated-bus.ts';
import type { DeviceEvent } from '../../src/drivers/device/types.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { deviceConfig, modbusProfile, statusEvents } from '../support/modbus-rig.ts';

function simulated() {
  const events: DeviceEvent[] = [];
  const bus = createSimulatedBus({
    devices: [
      { config: deviceConfig('sim', 'amp-1', 3, 've-amp60-rtu'), profile: modbusProfile('ve-amp60-rtu') },
      { config: deviceConfig('sim', 'col-1', 1, 've-ac100-rtu'), profile: modbusProfile('ve-ac100-rtu') },
    ],
    sink: (event) => events.push(event),
    logger: memoryLogger().logger,
    now: () => 1_000,
  });
  const [amp, column] = bus.devices;
  if (amp === undefined || column === undefined) throw new Error('two simulated devices expected');
  // Polled from here on: a device nobody polls tells nothing.
  bus.start();
  return { amp, column, events };
}

describe('simulated amplifier status', () => {
  it('starts at rest, and reports each change of setStatus once, as the Modbus driver does', () => {
    const { amp, events } = simulated();
    expect(amp.health().status).toEqual({ power: false, overheat: false, 'line-fault': false });
    amp.setStatus('power', true);
    amp.setStatus('power', true);
    amp.setStatus('overheat', true);
    expect(statusEvents(events, 'amp-1')).toEqual([
      { type: 'status', deviceId: 'amp-1', condition: 'power', active: true, at: 1_000 },
      { type: 'status', deviceId: 'amp-1', condition: 'overheat', active: true, at: 1_000 },
    ]);
    expect(amp.health().status).toEqual({ power: true, overheat: true, 'line-fault': false });
  });

  it('tells what changed while it was offline when it recovers', () => {
    const { amp, events } = simulated();
    amp.setOnline(false);
    amp.setStatus('line-fault', true);
    amp.setStatus('overheat', true);
    amp.setStatus('overheat', false);
    expect(statusEvents(events, 'amp-1')).toEqual([]);
    amp.setOnline(true);
    expect(events.map((e) => (e.type === 'status' ? `${e.condition} ${e.active}` : e.type))).toEqual(['offline', 'recovered', 'line-fault true']);
  });

  it('refuses a condition its profile does not declare, and a column has no status in health', () => {
    const { column } = simulated();
    expect(() => column.setStatus('overheat', true)).toThrow(/declares no status condition "overheat"/);
    expect(column.health()).not.toHaveProperty('status');
  });
});
