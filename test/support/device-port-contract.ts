import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { DeviceEvent, DevicePort, IndicatorState } from '../../src/drivers/device/types.ts';
import { waitFor } from './wait.ts';

/**
 * The far end of a DevicePort under test: two alarm columns `col-1` and `col-2` with a button their device
 * latches until the controller resets it, and, where the bus has them, a relay board `relays`. The port is
 * built but not started.
 */
export interface PortRig {
  port: DevicePort;
  /** Every event the port told, in order. */
  events: DeviceEvent[];
  /** A villager presses and lets go; the column holds the press until its latch is reset. */
  press(id: string): void;
  /** Indicator states the column was sent, in order, as the column read them. */
  indicatorWrites(id: string): IndicatorState[];
  /** Latch resets the column received. */
  latchResets(id: string): number;
  /** The column stops answering (a cut cable), or answers again. */
  answering(id: string, on: boolean): void;
  /** The relay board's relay as the board has it, for ports whose bus has relays at all. */
  relay?: (channel: number) => boolean;
  /** Long enough for a column that stopped answering to be declared offline. */
  offlineWithinMs: number;
  close(): Promise<void>;
}

const COLUMNS = ['col-1', 'col-2'] as const;
type InputEvent = Extract<DeviceEvent, { type: 'input' }>;

/**
 * What every DevicePort promises the domain, run on the simulator and on each real driver, so domain tests
 * written against the simulator stay true on a village's buses (MQTT.js test/node/abstract_store.ts).
 *
 * Only what all of them share. Where they differ, by design:
 * - The simulator answers its first poll in start() itself, and stops answering at once (no failed polls to
 *   count); its `recovered` says offlineForMs 0. The real drivers take their first poll, or hear the first
 *   line, a moment after start(), and need N failed polls (Modbus) or a silence timeout (line bus).
 * - The line bus has no relays (its setRelay always rejects), and no poll interval (pollIntervalMs null, as
 *   the simulator's); a line column releases its button by a line of its own once its latch is reset.
 * - After stop(), health says offline on Modbus and the simulator, while the line bus keeps the last presence
 *   it knew; so the contract says nothing of health after stop.
 * - A write to a device that does not answer: the simulator throws at once; the real drivers keep the
 *   indicator as desired (the promise waits) and reject relay writes and latch resets on failure.
 */
export function describeDevicePortContract(name: string, makeRig: () => Promise<PortRig>): void {
  describe(`DevicePort contract: ${name}`, () => {
    let open: PortRig | undefined;
    afterEach(async () => {
      await open?.close();
      open = undefined;
    });

    async function rig(): Promise<PortRig> {
      open = await makeRig();
      return open;
    }

    async function started(): Promise<PortRig> {
      const r = await rig();
      r.port.start();
      await waitFor('every device online after start', () => r.port.health().every((h) => h.online));
      return r;
    }

    const inputs = (r: PortRig, id: string): InputEvent[] => r.events.filter((e): e is InputEvent => e.type === 'input' && e.deviceId === id);
    const device = (r: PortRig, id: string) => r.port.device(id) ?? expect.fail(`no device ${id} on the port`);
    const lastReplyAt = (r: PortRig, id: string): number => device(r, id).health().lastReplyAt ?? expect.fail(`${id} was never heard`);

    it('keeps the last raw answer for the installer: none before the first, then registers or a line, with its time', async () => {
      const r = await rig();
      for (const health of r.port.health()) expect(health.lastRaw ?? null, health.id).toBeNull();
      const before = Date.now();
      r.port.start();
      await waitFor('every device online after start', () => r.port.health().every((h) => h.online));
      for (const id of COLUMNS) {
        const raw = device(r, id).health().lastRaw ?? expect.fail(`${id} keeps no raw answer`);
        expect(raw.at, id).toBeGreaterThanOrEqual(before - 5);
        expect(raw.at, id).toBeLessThanOrEqual(Date.now() + 5);
        expect(raw.registers !== undefined || raw.line !== undefined, id).toBe(true);
        if (raw.registers !== undefined) expect(Object.values(raw.registers).every(Number.isFinite), id).toBe(true);
        if (raw.line !== undefined) expect(raw.line.length, id).toBeGreaterThan(0);
      }
    });

    it('is offline and unheard before its first poll, tells nothing, and comes online after start()', async () => {
      const r = await rig();
      expect(r.port.devices().map((d) => d.id)).toEqual(expect.arrayContaining([...COLUMNS]));
      expect(r.port.device('no-such-device')).toBeUndefined();
      for (const health of r.port.health()) expect(health, health.id).toMatchObject({ online: false, lastReplyAt: null, errors: {} });
      expect(r.events).toEqual([]);

      const before = Date.now();
      r.port.start();
      await waitFor('every device online after start', () => r.port.health().every((h) => h.online));
      for (const id of COLUMNS) {
        // Counted back from the monotonic clock: the wall-clock time is right to within a millisecond.
        expect(lastReplyAt(r, id)).toBeGreaterThanOrEqual(before - 1);
        expect(lastReplyAt(r, id)).toBeLessThanOrEqual(Date.now() + 1);
      }
      // Columns at rest: no press, no open door, nobody offline.
      expect(r.events.filter((e) => e.type === 'input' || e.type === 'offline')).toEqual([]);
    });

    it('makes a press one input event of that column, however often it is read, until its latch is reset', async () => {
      const r = await started();
      r.press('col-1');
      const pressed = await waitFor('the press of col-1', () => inputs(r, 'col-1')[0]);
      // Read (or repeated by the column) for a while longer: still the one event.
      await waitFor('col-1 answering for 100 ms after the press', () => lastReplyAt(r, 'col-1') >= pressed.at + 100);
      expect(inputs(r, 'col-1')).toEqual([{ type: 'input', deviceId: 'col-1', input: 'button', active: true, at: pressed.at }]);
      expect(inputs(r, 'col-2')).toEqual([]);

      await device(r, 'col-1').resetLatch('button');
      await waitFor('the latch reset at col-1', () => r.latchResets('col-1') === 1);
      await waitFor('the release of col-1', () => inputs(r, 'col-1').find((e) => !e.active));
      // One press and its release, however many repeats the column sent (one may cross the reset on the wire).
      expect(inputs(r, 'col-1').map((e) => e.active)).toEqual([true, false]);
      expect(r.latchResets('col-2')).toBe(0);

      r.press('col-2');
      await waitFor('the press of col-2', () => inputs(r, 'col-2')[0]);
      expect(inputs(r, 'col-2')).toEqual([{ type: 'input', deviceId: 'col-2', input: 'button', active: true, at: expect.any(Number) }]);
      expect(inputs(r, 'col-1').filter((e) => !e.active)).toHaveLength(1);
    });

    it('writes an indicator to that column alone, not again while it shows it, and relays where the bus has them', async () => {
      const r = await started();
      await device(r, 'col-1').setIndicator('sent');
      await waitFor('col-1 to read "sent"', () => r.indicatorWrites('col-1').at(-1) === 'sent');
      await device(r, 'col-1').setIndicator('sent');
      await device(r, 'col-1').setIndicator('received');
      await waitFor('col-1 to read "received"', () => r.indicatorWrites('col-1').at(-1) === 'received');
      expect(r.indicatorWrites('col-1')).toEqual(['sent', 'received']);
      expect(r.indicatorWrites('col-2')).toEqual([]);

      await expect(device(r, 'col-1').setRelay(0, true)).rejects.toThrow();
      if (r.relay !== undefined) {
        await device(r, 'relays').setRelay(3, true);
        expect(r.relay(3)).toBe(true);
        await device(r, 'relays').setRelay(3, false);
        expect(r.relay(3)).toBe(false);
      }
    });

    it('goes offline when a column stops answering, keeps its last reply time, and recovers showing what it was asked', async () => {
      const r = await started();
      await device(r, 'col-1').setIndicator('received');
      await waitFor('col-1 to read "received"', () => r.indicatorWrites('col-1').at(-1) === 'received');
      const heard = lastReplyAt(r, 'col-1');
      await waitFor("col-1's reply time to move on with its answers", () => lastReplyAt(r, 'col-1') > heard + 1);

      r.answering('col-1', false);
      const offline = await waitFor('col-1 offline', () => r.events.find((e) => e.type === 'offline'), r.offlineWithinMs);
      expect(offline).toMatchObject({ type: 'offline', deviceId: 'col-1', reason: expect.any(String) });
      expect(device(r, 'col-1').health().online).toBe(false);
      const lastHeard = lastReplyAt(r, 'col-1');
      // Its neighbour keeps answering meanwhile; col-1's last reply stays where it was.
      await waitFor('col-2 answering 50 ms after col-1 fell silent', () => lastReplyAt(r, 'col-2') > lastHeard + 50);
      expect(Math.abs(lastReplyAt(r, 'col-1') - lastHeard)).toBeLessThanOrEqual(1);
      expect(device(r, 'col-2').health().online).toBe(true);

      const writes = r.indicatorWrites('col-1').length;
      r.answering('col-1', true);
      const recovered = await waitFor('col-1 recovered', () => r.events.find((e) => e.type === 'recovered'), r.offlineWithinMs);
      expect(recovered).toMatchObject({ type: 'recovered', deviceId: 'col-1', offlineForMs: expect.any(Number) });
      expect(device(r, 'col-1').health().online).toBe(true);
      // It may have lost power with its cable: shown again without the domain asking.
      await waitFor('col-1 to read "received" again', () => r.indicatorWrites('col-1').length > writes);
      expect(r.indicatorWrites('col-1').at(-1)).toBe('received');
      expect(
        r.events.filter((e) => e.type === 'offline' || e.type === 'recovered').map((e) => `${e.type} ${'deviceId' in e ? e.deviceId : ''}`),
      ).toEqual(['offline col-1', 'recovered col-1']);
    });

    it('tells nothing more once stop() has resolved', async () => {
      const r = await started();
      await r.port.stop();
      const told = r.events.length;
      r.press('col-1');
      r.answering('col-2', false);
      // Proving that nothing happens: as long as a column takes to be declared offline, and a few polls more.
      await sleep(r.offlineWithinMs);
      expect(r.events.slice(told)).toEqual([]);
    });
  });
}
