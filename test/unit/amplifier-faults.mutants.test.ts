import { describe, expect, it } from 'vitest';
import { AmplifierFaults } from '../../src/broadcast/amplifier-faults.ts';

function rig() {
  const calls: string[] = [];
  const faults = new AmplifierFaults([{ id: 'amp-1', statusDevice: 'amp-1-status' }, { id: 'amp-2' }], (amplifier, fault) =>
    calls.push(`${amplifier}: ${fault ?? 'ok'}`),
  );
  return { faults, calls };
}

describe('AmplifierFaults', () => {
  it('names the faults of an amplifier in a stable order, whichever came first', () => {
    const { faults, calls } = rig();
    faults.handleDeviceEvent({ type: 'status', deviceId: 'amp-1-status', condition: 'overheat', active: true, at: 1 });
    faults.handleDeviceEvent({ type: 'status', deviceId: 'amp-1-status', condition: 'line-fault', active: true, at: 2 });
    expect(calls).toEqual(['amp-1: overheat', 'amp-1: line-fault, overheat']);
  });

  it('does not count the power going on as a fault', () => {
    const { faults, calls } = rig();
    faults.handleDeviceEvent({ type: 'status', deviceId: 'amp-1-status', condition: 'power', active: true, at: 1 });
    expect(calls).toEqual(['amp-1: ok']);
  });

  it('says nothing for events of a status device that are not about its state (inputs, protocol errors, poll gaps)', () => {
    const { faults, calls } = rig();
    faults.handleDeviceEvent({ type: 'input', deviceId: 'amp-1-status', input: 'stop', active: true, at: 1 });
    faults.handleDeviceEvent({ type: 'protocol-error', busId: 'rs485-1', deviceId: 'amp-1-status', kind: 'timeout', detail: 'no reply', at: 2 });
    faults.handleDeviceEvent({ type: 'poll-gap', busId: 'rs485-1', deviceId: 'amp-1-status', active: true, gapMs: 900, thresholdMs: 500, at: 3 });
    expect(calls).toEqual([]);
  });
});
