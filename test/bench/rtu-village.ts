import type { CommandKeyEntry } from '../../src/county/keys.ts';

export const BENCH_BUS = 'rs485-1';
export const BENCH_BAUD = 9600;

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
    version: 1,
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
