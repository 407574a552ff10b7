import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createModbusBus, type ModbusBus } from '../../src/drivers/modbus/modbus-bus.ts';
import type { Device, DeviceEvent, ProtocolErrorKind } from '../../src/drivers/device/types.ts';
import { memoryLogger, type LogLine } from '../support/log-sink.ts';
import { deviceConfig, modbusProfile, testTiming } from '../support/modbus-rig.ts';
import { waitFor } from '../support/wait.ts';
import { latchedButton, type SlaveFault } from '../support/modbus-rtu-slave.ts';
import { ModbusTcpSlave } from '../support/modbus-tcp-slave.ts';

const BUS_ID = 'gateway-1';

describe('Modbus TCP through a real loopback socket', () => {
  let slave: ModbusTcpSlave;
  let bus: ModbusBus;
  let button: { press(): void; release(): void };
  const events: DeviceEvent[] = [];
  let lines: LogLine[];
  const device = (id: string): Device => bus.devices.find((d) => d.id === id) ?? expect.fail(`no device ${id}`);
  const inputs = () => events.filter((e): e is Extract<DeviceEvent, { type: 'input' }> => e.type === 'input');

  beforeAll(async () => {
    slave = await ModbusTcpSlave.listen();
    slave.unit(1).set('discrete-inputs', 1, true);
    button = latchedButton(slave.unit(1), 0, 0);
    slave.unit(2);
    const log = memoryLogger('debug');
    lines = log.lines;
    bus = createModbusBus({
      bus: { id: BUS_ID, kind: 'modbus-tcp', host: slave.host, port: slave.port },
      devices: [
        { config: deviceConfig(BUS_ID, 'col-1', 1, 've-ac100-rtu'), profile: modbusProfile('ve-ac100-rtu') },
        { config: deviceConfig(BUS_ID, 'relays', 2, 've-rb8-rtu'), profile: modbusProfile('ve-rb8-rtu') },
      ],
      timing: testTiming(),
      sink: (event) => events.push(event),
      logger: log.logger,
    });
    bus.start();
    await waitFor('first poll', () => device('col-1').health().online && device('relays').health().online);
  });
  afterAll(async () => {
    await bus?.stop();
    await slave?.close();
  });

  it('polls a press into an input event and writes the latch reset, indicator and relays', async () => {
    button.press();
    button.release();
    await waitFor('press', () => inputs().find((e) => e.input === 'button' && e.active));
    await device('col-1').resetLatch('button');
    await waitFor('release', () => inputs().find((e) => e.input === 'button' && !e.active));

    await device('col-1').setIndicator('sent');
    expect(slave.unit(1).get('holding-registers', 0)).toBe(1);
    expect(slave.unit(1).get('coils', 1)).toBe(0);
    await device('relays').setRelay(5, true);
    expect(slave.unit(2).get('coils', 5)).toBe(1);
    expect(device('relays').health().pollIntervalMs).toBeLessThan(100);
  });

  const faults: Array<[SlaveFault, ProtocolErrorKind]> = [
    ['exception', 'exception'],
    ['wrong-unit', 'wrong-unit'],
    ['short-reply', 'short-reply'],
    ['timeout', 'timeout'],
  ];
  it.each(faults)('counts a %s answer as "%s" and keeps polling', async (fault, kind) => {
    const seen = events.length;
    slave.unit(1).setFault(fault, { count: 1 });
    const event = await waitFor(kind, () => events.slice(seen).find((e) => e.type === 'protocol-error'));
    expect(event).toMatchObject({ busId: BUS_ID, deviceId: 'col-1', kind });
    expect(device('col-1').health().errors[kind]).toBe(1);
    expect(lines.findLast((l) => l.msg === 'protocol error')).toMatchObject({ bus: BUS_ID, device: 'col-1', kind });
    const requests = slave.unit(1).requests;
    await waitFor('more polls', () => slave.unit(1).requests >= requests + 2);
    expect(device('col-1').health().online).toBe(true);
  });

  it('reconnects after the gateway drops the connection, telling bus-lost and bus-restored once', async () => {
    const seen = events.length;
    slave.dropConnections();
    await waitFor('bus-lost', () => events.slice(seen).find((e) => e.type === 'bus-lost'));
    await waitFor('bus-restored', () => events.slice(seen).find((e) => e.type === 'bus-restored'));
    expect(slave.stats.connections).toBe(2);
    const requests = slave.unit(1).requests;
    await waitFor('polls again', () => slave.unit(1).requests >= requests + 2 && device('col-1').health().online);
    expect(events.slice(seen).map((e) => e.type)).toEqual(['bus-lost', 'bus-restored']);
  });
});
