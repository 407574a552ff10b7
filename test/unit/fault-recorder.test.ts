import { describe, expect, it } from 'vitest';
import { FaultRecorder } from '../../src/alarm/fault-recorder.ts';
import { faultPayloadSchema } from '../../src/contract/payloads.ts';
import { createMemoryOutbox } from '../../src/store/memory-outbox.ts';
import { memoryLogger } from '../support/log-sink.ts';

describe('FaultRecorder', () => {
  it('tells the county when an unlatched column is read too seldom to see a short press, and when that ends', () => {
    const outbox = createMemoryOutbox();
    const recorder = new FaultRecorder({ villageId: 'v1', outbox, logger: memoryLogger().logger, onStored: () => {} });
    const at = Date.parse('2026-12-06T06:00:00Z');
    recorder.handleDeviceEvent({ type: 'poll-gap', busId: 'rs485-1', deviceId: 'gate', active: true, gapMs: 612.4, thresholdMs: 500, at });
    recorder.handleDeviceEvent({
      type: 'poll-gap',
      busId: 'rs485-1',
      deviceId: 'gate',
      active: false,
      gapMs: 180,
      thresholdMs: 500,
      at: at + 120_000,
    });
    const faults = outbox.due('fault', Number.MAX_SAFE_INTEGER, 10).map((r) => faultPayloadSchema.parse(r.payload));
    expect(faults.map((f) => [f.kind, f.subject])).toEqual([
      ['missable-press', 'gate'],
      ['missable-press-cleared', 'gate'],
    ]);
    expect(faults[0]!.detail).toBe('read at worst every 612 ms, more than the 500 ms limit: a shorter press on this unlatched button can go unseen');
  });
});
