import { performance } from 'node:perf_hooks';
import { modbusProfile, rtuRig, testTiming } from '../support/modbus-rig.ts';
import { waitFor } from '../support/wait.ts';
import { watchBus, type BusFigures } from '../support/bus-monitor.ts';

const BAUD = 9600;

export interface AckBurstResult {
  terminals: number;
  /** Worst per-column gap between two reads (slave-side stamps) over as many poll cycles as the burst took. */
  normal: BusFigures;
  /** The same while 16 columns went from `sent` to `received` at once: the county's acks in one burst. */
  burst: BusFigures;
  /** From the acks to the last column showing `received` (slave-side). */
  allShownMs: number;
  /** Poll cycles the burst spanned. */
  cycles: number;
  /** The most writes the line carried between two reads of one column in the burst (free of timing). */
  mostWritesBetweenReads: number;
}

/**
 * An ack burst on the bench's bus: `terminals` columns (units 1..n) on one 9600-baud RTU line polled every
 * 100 ms, driven in-process through the service's own bus and device code (the alarm service's part, one
 * `setIndicator` per column, is not what is measured), the slave on the PTY's far end.
 */
export async function measureAckBurst(o: { terminals: number; progress: (text: string) => void }): Promise<AckBurstResult> {
  const ac100 = modbusProfile('ve-ac100-rtu');
  const r = await rtuRig({
    busId: 'rs485-1',
    devices: Array.from({ length: o.terminals }, (_, i) => ({ id: `column-${i + 1}`, unitId: i + 1, profile: ac100 })),
    timing: testTiming({ pollIntervalMs: 100, requestTimeoutMs: 1000 }),
    slave: { wireBaud: BAUD },
  });
  const units = Array.from({ length: o.terminals }, (_, i) => r.slave.unit(i + 1));
  try {
    for (const unit of units) unit.set('discrete-inputs', 1, true);
    r.bus.start();
    await waitFor('every column polled', () => r.bus.devices.every((d) => d.health().online), 10_000);
    const cycles = async (n: number): Promise<void> => {
      const start = units.map((u) => u.requests);
      await waitFor(`${n} poll cycles`, () => units.every((u, i) => u.requests >= start[i]! + n), 120_000);
    };
    // Every column shows an alarm sent, as after a burst of presses; the bus settles.
    await Promise.all(r.bus.devices.map((d) => d.setIndicator('sent')));
    await cycles(2);

    o.progress(`ack burst: the acks of ${o.terminals} columns at once`);
    // One monitor per window: a monitor's intervals add up over its life.
    const during = watchBus(r.slave, { baud: BAUD });
    const writesSince = new Map<number, number>();
    let mostWritesBetweenReads = 0;
    const offCount = r.slave.onRequest((q) => {
      if (q.fc === 5 || q.fc === 6) {
        for (const [unit, n] of writesSince) writesSince.set(unit, n + 1);
        return;
      }
      mostWritesBetweenReads = Math.max(mostWritesBetweenReads, writesSince.get(q.unit) ?? 0);
      writesSince.set(q.unit, 0);
    });
    let burst: BusFigures;
    let spanned: number;
    let ackedAt: number;
    let lastShownAt: number;
    try {
      during.start();
      await cycles(1);
      ackedAt = lastShownAt = performance.now();
      const requestsAtAck = units.map((u) => u.requests);
      await Promise.all(r.bus.devices.map((d) => d.setIndicator('received').then(() => (lastShownAt = Math.max(lastShownAt, performance.now())))));
      await cycles(1);
      burst = during.stop();
      spanned = Math.min(...units.map((u, i) => u.requests - requestsAtAck[i]!));
    } finally {
      during.close();
      offCount();
    }
    o.progress(`ack burst: as many normal cycles for comparison (${spanned + 1})`);
    const quiet = watchBus(r.slave, { baud: BAUD });
    try {
      quiet.start();
      await cycles(spanned + 1);
      const normal = quiet.stop();
      return { terminals: o.terminals, normal, burst, allShownMs: lastShownAt - ackedAt, cycles: spanned, mostWritesBetweenReads };
    } finally {
      quiet.close();
    }
  } finally {
    await r.close();
  }
}
