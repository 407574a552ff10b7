import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceProfileSchema, type ModbusProfile } from '../../src/drivers/device/profile-schema.ts';
import type { DeviceEvent } from '../../src/drivers/device/types.ts';
import { inputEvents, modbusProfile, rtuRig, statusEvents, testTiming, type RtuRig } from '../support/modbus-rig.ts';
import { waitFor } from '../support/wait.ts';
import type { SlaveUnit } from '../support/modbus-rtu-slave.ts';

const AMP60 = modbusProfile('ve-amp60-rtu');
const AC100 = modbusProfile('ve-ac100-rtu');
const RB8 = modbusProfile('ve-rb8-rtu');
const BUS_ID = 'rs485-1';

// The AMP60's status word, holding register 0 (devices/ve-amp60-rtu.json).
const STATUS_REGISTER = 0;
const BIT = { power: 0, overheat: 1, 'line-fault': 2 } as const;

/** Polls seen by a unit from now on: waiting for them proves that nothing more came of a reading. */
async function polls(unit: SlaveUnit, count: number): Promise<void> {
  const from = unit.requests;
  await waitFor(`${count} polls of unit ${unit.id}`, () => unit.requests >= from + count);
}

function statusLog(events: readonly DeviceEvent[], deviceId: string): string[] {
  return statusEvents(events, deviceId).map((e) => `${e.condition} ${e.active ? 'on' : 'off'}`);
}

describe('Modbus RTU amplifier status over a PTY', () => {
  let r: RtuRig;
  let amp: SlaveUnit;
  beforeAll(async () => {
    r = await rtuRig({
      busId: BUS_ID,
      devices: [
        { id: 'amp-1', unitId: 3, profile: AMP60 },
        { id: 'col-1', unitId: 1, profile: AC100 },
      ],
      timing: testTiming({ requestTimeoutMs: 100, offlinePollIntervalMs: 100 }),
    });
    amp = r.slave.unit(3);
    // The service starts while the amplifier is already on and running hot.
    amp.setBit('holding-registers', STATUS_REGISTER, BIT.power, true);
    amp.setBit('holding-registers', STATUS_REGISTER, BIT.overheat, true);
    r.slave.unit(1).set('discrete-inputs', 1, true);
    r.bus.start();
    await waitFor('first poll', () => r.device('amp-1').health().online && r.device('col-1').health().online);
  });
  afterAll(() => r.close());

  it('reports the conditions active at start once each, and shows every declared one in health', async () => {
    await polls(amp, 5);
    expect(statusLog(r.events, 'amp-1')).toEqual(['power on', 'overheat on']);
    expect(statusEvents(r.events, 'amp-1')[0]).toMatchObject({ type: 'status', deviceId: 'amp-1', condition: 'power', active: true });
    expect(r.device('amp-1').health().status).toEqual({ power: true, overheat: true, 'line-fault': false });
    // A column declares no status registers: health says so by leaving the field out.
    expect(r.device('col-1').health()).not.toHaveProperty('status');
    expect(r.events.filter((e) => e.type === 'status' && e.deviceId !== 'amp-1')).toEqual([]);
    expect(r.lines.filter((l) => l.msg === 'status' && l['device'] === 'amp-1').map((l) => l['condition'])).toEqual(['power', 'overheat']);
  });

  it('reports each change of overheat and line fault once, as it happens', async () => {
    const seen = r.events.length;
    const step = async (condition: keyof typeof BIT, on: boolean) => {
      amp.setBit('holding-registers', STATUS_REGISTER, BIT[condition], on);
      await waitFor(`${condition} ${on}`, () => r.device('amp-1').health().status?.[condition] === on);
      await polls(amp, 3);
    };
    const before = Date.now();
    await step('overheat', false);
    await step('line-fault', true);
    await step('overheat', true);
    await step('line-fault', false);
    await step('overheat', false);
    expect(statusLog(r.events.slice(seen), 'amp-1')).toEqual(['overheat off', 'line-fault on', 'overheat on', 'line-fault off', 'overheat off']);
    expect(statusEvents(r.events.slice(seen), 'amp-1').every((e) => e.at >= before)).toBe(true);
    expect(r.device('amp-1').health().status).toEqual({ power: true, overheat: false, 'line-fault': false });
  });

  it('ignores the reserved bits of the status word', async () => {
    const seen = r.events.length;
    amp.setBit('holding-registers', STATUS_REGISTER, 7, true);
    amp.setBit('holding-registers', STATUS_REGISTER, 15, true);
    await polls(amp, 3);
    expect(r.events.slice(seen).filter((e) => e.type === 'status')).toEqual([]);
    amp.set('holding-registers', STATUS_REGISTER, 1 << BIT.power);
  });

  it('does not take a failed poll for a change, and keeps the last status while offline', async () => {
    amp.setBit('holding-registers', STATUS_REGISTER, BIT['line-fault'], true);
    await waitFor('line fault', () => r.device('amp-1').health().status?.['line-fault']);
    let seen = r.events.length;
    amp.setFault('timeout', { count: 1 });
    await waitFor('one timeout', () => r.events.slice(seen).find((e) => e.type === 'protocol-error'));
    await polls(amp, 2);
    expect(r.events.slice(seen).filter((e) => e.type === 'status')).toEqual([]);

    // The amplifier stops answering; meanwhile its line fault clears and the power stage goes off.
    seen = r.events.length;
    amp.setFault('timeout');
    await waitFor('offline', () => r.events.slice(seen).find((e) => e.type === 'offline' && e.deviceId === 'amp-1'));
    amp.set('holding-registers', STATUS_REGISTER, 0);
    expect(r.device('amp-1').health()).toMatchObject({ online: false, status: { power: true, overheat: false, 'line-fault': true } });
    // Asked twice more while offline, and told nothing of what changed.
    await polls(amp, 2);
    expect(r.events.slice(seen).filter((e) => e.type === 'status')).toEqual([]);

    // Back: what changed while it was silent is told once, after the recovery.
    amp.setFault('working');
    await waitFor('recovered', () => r.events.slice(seen).find((e) => e.type === 'recovered'));
    await waitFor('changes after recovery', () => statusEvents(r.events.slice(seen), 'amp-1').length >= 2);
    await polls(amp, 3);
    const told = r.events.slice(seen).flatMap((e) => {
      if (e.type === 'status') return [`${e.condition} ${e.active ? 'on' : 'off'}`];
      return e.type === 'offline' || e.type === 'recovered' ? [e.type] : [];
    });
    expect(told).toEqual(['offline', 'recovered', 'power off', 'line-fault off']);
    expect(r.device('amp-1').health()).toMatchObject({ online: true, status: { power: false, overheat: false, 'line-fault': false } });
  });
});

describe('a local stop button on a relay board with inputs', () => {
  // A relay board model with opto inputs; the stop button is wired normally closed into discrete input 0.
  const withStop: ModbusProfile = parseModbus({
    schema: 1,
    model: 'rb8-with-stop',
    description: 'test board: eight relays, eight opto inputs',
    protocol: 'modbus',
    poll: [...RB8.poll, { table: 'discrete-inputs', address: 0, count: 8 }],
    relays: RB8.relays,
    inputs: { stop: { table: 'discrete-inputs', address: 0, activeLow: true } },
  });
  let r: RtuRig;
  beforeAll(async () => {
    r = await rtuRig({
      busId: BUS_ID,
      devices: [
        { id: 'board', unitId: 2, profile: withStop },
        { id: 'cut-wire', unitId: 4, profile: withStop },
      ],
    });
    r.slave.unit(2).set('discrete-inputs', 0, true); // loop closed: released
    r.slave.unit(4); // all zero: the stop loop is open from the start
    r.bus.start();
    await waitFor('first poll', () => r.device('board').health().online && r.device('cut-wire').health().online);
  });
  afterAll(() => r.close());

  it('reports a stop held from the start once, and nothing for a released one', async () => {
    await polls(r.slave.unit(4), 4);
    expect(inputEvents(r.events, 'cut-wire').map((e) => [e.input, e.active])).toEqual([['stop', true]]);
    expect(inputEvents(r.events, 'board')).toEqual([]);
    expect(r.device('board').health()).not.toHaveProperty('status');
  });

  it('reports pressing and releasing stop as input events, and the relays still switch', async () => {
    const unit = r.slave.unit(2);
    unit.set('discrete-inputs', 0, false);
    const pressed = await waitFor('stop pressed', () => inputEvents(r.events, 'board').find((e) => e.active));
    expect(pressed).toMatchObject({ type: 'input', deviceId: 'board', input: 'stop', active: true });
    // Held across many polls, it is still one event: stop lasts until released, not until re-read.
    await polls(unit, 5);
    expect(inputEvents(r.events, 'board')).toHaveLength(1);
    await r.device('board').setRelay(2, true);
    expect(unit.get('coils', 2)).toBe(1);
    unit.set('discrete-inputs', 0, true);
    await waitFor('stop released', () => inputEvents(r.events, 'board').find((e) => !e.active));
    expect(inputEvents(r.events, 'board').map((e) => [e.input, e.active])).toEqual([
      ['stop', true],
      ['stop', false],
    ]);
    expect(r.events.filter((e) => e.type === 'protocol-error')).toEqual([]);
  });
});

function parseModbus(json: unknown): ModbusProfile {
  const profile = deviceProfileSchema.parse(json);
  if (profile.protocol !== 'modbus') throw new Error('not a Modbus profile');
  return profile;
}
