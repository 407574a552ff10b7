import { describe, expect, it } from 'vitest';
import { broadcastDeviceInputs } from '../../src/broadcast/device-inputs.ts';

function rig() {
  const calls: string[] = [];
  const handle = broadcastDeviceInputs([{ id: 'amp-1', statusDevice: 'amp-1-status' }, { id: 'amp-2' }], {
    setLocalStop: (active) => calls.push(`local stop ${active}`),
    setAmplifierFault: (amplifier, fault) => calls.push(`${amplifier}: ${fault ?? 'ok'}`),
  });
  return { handle, calls };
}

describe('broadcast device inputs', () => {
  it("a column's stop button silences broadcasts while it is held, whichever column", () => {
    const { handle, calls } = rig();
    handle({ type: 'input', deviceId: 'col-1', input: 'stop', active: true, at: 1 });
    handle({ type: 'input', deviceId: 'col-2', input: 'button', active: true, at: 2 });
    handle({ type: 'input', deviceId: 'col-1', input: 'stop', active: false, at: 3 });
    expect(calls).toEqual(['local stop true', 'local stop false']);
  });

  it("marks an amplifier faulty from its status device's events, and not from its power", () => {
    const { handle, calls } = rig();
    handle({ type: 'status', deviceId: 'amp-1-status', condition: 'power', active: false, at: 1 });
    handle({ type: 'status', deviceId: 'amp-1-status', condition: 'overheat', active: true, at: 2 });
    handle({ type: 'offline', deviceId: 'amp-1-status', reason: 'timeout', at: 3 });
    handle({ type: 'recovered', deviceId: 'amp-1-status', offlineForMs: 10, at: 4 });
    handle({ type: 'status', deviceId: 'amp-1-status', condition: 'overheat', active: false, at: 5 });
    handle({ type: 'status', deviceId: 'other', condition: 'overheat', active: true, at: 6 });
    expect(calls).toEqual(['amp-1: ok', 'amp-1: overheat', 'amp-1: overheat, status device not answering', 'amp-1: overheat', 'amp-1: ok']);
  });
});
