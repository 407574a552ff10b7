import type { CommandKeyEntry } from '../../src/county/keys.ts';
import { startBroker, type TestBroker } from '../support/broker.ts';
import { ModbusRtuSlave } from '../support/modbus-rtu-slave.ts';
import { openPtyPair, type PtyPair } from '../support/pty.ts';
import { watchBus } from '../support/bus-monitor.ts';
import type { Teardown } from './teardown.ts';

const BENCH_BUS = 'rs485-1';
const BENCH_BAUD = 9600;

/**
 * The config of a bench village: `terminals` latched alarm columns (units 1..n) on one 9600-baud Modbus
 * RTU bus, polled every 100 ms, as the set-up has them. Returned unparsed, to be written to a file
 * or parsed by the caller.
 */
export function rtuColumnsConfig(o: {
  villageId: string;
  terminals: number;
  brokerUrl: string;
  protocolVersion: 4 | 5;
  dataDir: string;
  /** The controller side of the PTY pair. */
  path: string;
  commandKeys?: CommandKeyEntry[];
}) {
  return {
    version: 2,
    village: { id: o.villageId, name: 'Bench village', location: { lat: 25.04, lon: 102.71 } },
    county: {
      url: o.brokerUrl,
      protocolVersion: o.protocolVersion,
      clientId: `ve-${o.villageId}`,
      ...(o.commandKeys === undefined ? {} : { commandKeys: o.commandKeys }),
    },
    dataDir: o.dataDir,
    buses: [{ id: BENCH_BUS, kind: 'modbus-rtu', path: o.path, baudRate: BENCH_BAUD }],
    devices: Array.from({ length: o.terminals }, (_, i) => ({
      id: `column-${i + 1}`,
      bus: BENCH_BUS,
      unitId: i + 1,
      profile: 've-ac100-rtu',
      role: 'alarm-column',
      label: `column ${i + 1}`,
    })),
    timing: { pollIntervalMs: 100 },
    log: { level: 'info' },
  };
}

/**
 * What a bench village runs against: a real broker and the RS-485 line of `openRtuLine`. Each part is
 * handed to `teardown` as it comes up.
 */
export async function openRtuRig(terminals: number, teardown: Teardown) {
  const broker: TestBroker = await startBroker();
  teardown.add('broker', () => broker.stop());
  return { broker, ...(await openRtuLine(terminals, teardown)) };
}

/**
 * A PTY pair with the RTU slave (9600-baud wire time) on its device end, units 1..terminals with their
 * tamper loops closed, and a monitor on the line.
 */
export async function openRtuLine(terminals: number, teardown: Teardown) {
  const pair: PtyPair = await openPtyPair();
  teardown.add('PTY pair', () => pair.close());
  const slave = await ModbusRtuSlave.open({ path: pair.devicePath, wireBaud: BENCH_BAUD });
  teardown.add('RTU slave', () => slave.close());
  // Tamper loop closed: the column's door is shut.
  for (let unit = 1; unit <= terminals; unit++) slave.unit(unit).set('discrete-inputs', 1, true);
  const bus = watchBus(slave, { baud: BENCH_BAUD });
  teardown.add('bus monitor', () => bus.close());
  return { pair, slave, bus };
}
