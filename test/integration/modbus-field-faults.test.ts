import { mkdtempSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modbusProfile, rtuRig, testTiming, waitFor, type RtuRig } from '../support/modbus-rig.ts';
import { ModbusRtuSlave } from '../support/modbus-rtu-slave.ts';
import { openPtyPair } from '../support/pty.ts';

/** Issue 11, "the column and the bus": point 16 (replug). */

const AC100 = modbusProfile('ve-ac100-rtu');

describe('16: a replugged bus is polled again within 2 s', () => {
  let r: RtuRig;
  let dir: string;
  let link: string;
  const extra: Array<{ close(): Promise<void> }> = [];
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 've-replug-'));
    link = join(dir, 'ttyVE0');
    r = await rtuRig({
      busId: 'rs485-1',
      devices: [{ id: 'col-1', unitId: 1, profile: AC100 }],
      // The shipped reopen backoff: 1 s doubling to 30 s.
      timing: testTiming({ reopen: { initialMs: 1000, maxMs: 30_000 } }),
      path: (pair) => (symlinkSync(pair.controllerPath, link), link),
    });
    r.slave.unit(1).set('discrete-inputs', 1, true);
  });
  afterAll(async () => {
    await r.close();
    for (const thing of extra) await thing.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reopens as soon as the device node is back, whatever the backoff had reached', async () => {
    r.bus.start();
    await waitFor('first poll', () => r.device('col-1').health().online);
    await r.pair.close(); // unplugged: the PTY and its link are gone
    await waitFor('bus-lost', () => r.events.find((e) => e.type === 'bus-lost'));
    // Out long enough for the backoff to have grown to 4 s.
    const delays = () => r.lines.filter((l) => l.msg === 'reopening modbus port after a delay').map((l) => l.delayMs);
    await waitFor('three reopen attempts', () => delays().length >= 3, 10_000);
    expect(delays().slice(0, 3)).toEqual([1000, 2000, 4000]);

    const pair = await openPtyPair();
    const slave = await ModbusRtuSlave.open({ path: pair.devicePath });
    extra.push(slave, pair);
    slave.unit(1).set('discrete-inputs', 1, true);
    let firstPollAt: number | undefined;
    slave.onRequest((q) => (firstPollAt ??= q.at));
    unlinkSync(link);
    symlinkSync(pair.controllerPath, link);
    const pluggedAt = performance.now();
    await waitFor('polled on the new port', () => firstPollAt, 10_000);
    const replugToPollMs = firstPollAt! - pluggedAt;
    expect(replugToPollMs).toBeLessThan(2000);
    await waitFor('online again', () => r.device('col-1').health().online);
    expect(r.events.filter((e) => e.type === 'bus-lost' || e.type === 'bus-restored').map((e) => e.type)).toEqual(['bus-lost', 'bus-restored']);
    console.log(`replug → first poll: ${replugToPollMs.toFixed(0)} ms`);
  });
});
