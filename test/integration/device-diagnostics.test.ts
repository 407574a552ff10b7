import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { timingSchema } from '../../src/config/schema.ts';
import { deviceDiagnostics } from '../../src/console/device-diagnostics.ts';
import { createDeviceHub, type DeviceHub } from '../../src/drivers/device-hub.ts';
import { deviceProfileSchema } from '../../src/drivers/device/profile-schema.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { ModbusTcpSlave } from '../support/modbus-tcp-slave.ts';
import { waitFor } from '../support/wait.ts';

// The installer page's device rows from a real Modbus driver polling a slave over loopback TCP.
const column = deviceProfileSchema.parse(JSON.parse(readFileSync(new URL('../../devices/ve-ac100-rtu.json', import.meta.url), 'utf8')));
const timing = timingSchema.parse({ pollIntervalMs: 20, requestTimeoutMs: 400, offlineAfterFailures: 3, offlinePollIntervalMs: 150 });

describe('device diagnostics for the installer', () => {
  let hub: DeviceHub | undefined;
  let slave: ModbusTcpSlave | undefined;
  afterEach(async () => {
    await hub?.stop();
    await slave?.close();
  });

  it('shows each device’s label, role, model, errors and the register values of its last poll with their time', async () => {
    slave = await ModbusTcpSlave.listen();
    // Door shut (tamper loop closed), button not pressed.
    slave.unit(3).set('discrete-inputs', 1, true);
    const built = createDeviceHub({
      buses: [{ id: 'gw', kind: 'modbus-tcp', host: slave.host, port: slave.port }],
      devices: [{ id: 'col-east', bus: 'gw', unitId: 3, profile: column.model, role: 'alarm-column', label: 'East square', testMode: false }],
      profiles: new Map([[column.model, column]]),
      timing,
      sink: () => {},
      logger: memoryLogger('info').logger,
    });
    hub = built.hub;
    const config = [{ id: 'col-east', label: 'East square', role: 'alarm-column' }];
    expect(deviceDiagnostics(hub.health(), config)[0]).toMatchObject({ online: false, lastRaw: null });
    const before = Date.now();
    hub.start();
    await waitFor('the column answers', () => hub!.health()[0]?.online === true);
    const [row] = deviceDiagnostics(hub.health(), config);
    expect(row).toMatchObject({
      id: 'col-east',
      label: 'East square',
      role: 'alarm-column',
      model: 've-ac100-rtu',
      online: true,
      errors: {},
      lastRaw: { registers: { 'discrete-inputs:0': 0, 'discrete-inputs:1': 1 } },
    });
    expect(Date.parse(row!.lastRaw!.at)).toBeGreaterThanOrEqual(before - 5);
    expect(row!.lastRaw!.line).toBeUndefined();

    // A villager presses: the next poll's raw values say so.
    slave.unit(3).set('discrete-inputs', 0, true);
    await waitFor(
      'the press in the raw registers',
      () => deviceDiagnostics(hub!.health(), config)[0]?.lastRaw?.registers?.['discrete-inputs:0'] === 1,
    );

    // Unplugged: offline, timeouts counted, the last answer kept with its time.
    slave.unit(3).setFault('timeout');
    await waitFor('offline', () => hub!.health()[0]?.online === false, 5000);
    const offline = deviceDiagnostics(hub.health(), config)[0]!;
    expect(offline.errors['timeout']).toBeGreaterThan(0);
    expect(offline.lastRaw?.registers).toEqual({ 'discrete-inputs:0': 1, 'discrete-inputs:1': 1 });
  });
});
