import { describe, expect, it } from 'vitest';
import { deviceProfileSchema, statusConditions } from '../../src/drivers/device/profile-schema.ts';
import { describeIssues } from '../../src/platform/schema-errors.ts';

const amplifier = {
  schema: 1,
  model: 'amp',
  protocol: 'modbus',
  poll: [{ table: 'holding-registers', address: 0, count: 1 }],
  status: {
    power: { table: 'holding-registers', address: 0, bit: 0 },
    overheat: { table: 'holding-registers', address: 0, bit: 1 },
    'line-fault': { table: 'holding-registers', address: 0, bit: 2 },
  },
};

function problems(json: unknown): string[] {
  const parsed = deviceProfileSchema.safeParse(json);
  return parsed.success ? [] : describeIssues(parsed.error);
}

describe('status section of a Modbus profile', () => {
  it('names power, overheat and line-fault', () => {
    expect(statusConditions).toEqual(['power', 'overheat', 'line-fault']);
  });

  it('accepts status points inside a poll block, defaulting activeLow like inputs', () => {
    const parsed = deviceProfileSchema.parse(amplifier);
    expect(parsed.protocol === 'modbus' && parsed.status?.overheat).toEqual({ table: 'holding-registers', address: 0, bit: 1, activeLow: false });
  });

  it('rejects a status point outside every poll block, naming the field', () => {
    const status = { ...amplifier.status, overheat: { table: 'holding-registers', address: 4, bit: 1 } };
    expect(problems({ ...amplifier, status })).toEqual(['status.overheat.address: holding-registers 4 is not inside any poll block']);
    // Right address, wrong table: not covered either.
    const power = { table: 'input-registers', address: 0, bit: 0 };
    expect(problems({ ...amplifier, status: { power } })).toEqual(['status.power.address: input-registers 0 is not inside any poll block']);
  });

  it('rejects unknown conditions, a bit on a bit table, a latch and an empty section', () => {
    expect(problems({ ...amplifier, status: { ...amplifier.status, clipping: { table: 'holding-registers', address: 0, bit: 3 } } })).toEqual([
      'status: Unrecognized key: "clipping"',
    ]);
    const coils = { ...amplifier, poll: [{ table: 'coils', address: 0, count: 8 }], status: { power: { table: 'coils', address: 0, bit: 1 } } };
    expect(problems(coils)).toEqual(['status.power.bit: bit is only for register tables']);
    const latched = { ...amplifier, status: { power: { table: 'holding-registers', address: 0, bit: 0, latch: { reset: [] } } } };
    expect(problems(latched)).toEqual([expect.stringMatching(/^status\.power: Unrecognized key.*latch/)]);
    expect(problems({ ...amplifier, status: {} })).toEqual(['status: at least one condition, or no status section']);
  });

  it('leaves profiles without a status section as they were', () => {
    const column = {
      schema: 1,
      model: 'c',
      protocol: 'modbus',
      poll: [{ table: 'discrete-inputs', address: 0, count: 1 }],
      inputs: { stop: { table: 'discrete-inputs', address: 0 } },
    };
    const parsed = deviceProfileSchema.parse(column);
    expect(parsed.protocol === 'modbus' && parsed.status).toBeUndefined();
    expect(problems({ ...column, inputs: { stop: { table: 'discrete-inputs', address: 3 } } })).toEqual([
      'inputs.stop.address: discrete-inputs 3 is not inside any poll block',
    ]);
  });
});
