import { describe, expect, it } from 'vitest';
import { FaultRecorder } from '../../src/alarm/fault-recorder.ts';
import type { DeviceEvent } from '../../src/drivers/device/types.ts';
import { faultPayloadSchema } from '../../src/contract/payloads.ts';
import type { OutboxRecord } from '../../src/store/types.ts';
import { createMemoryOutbox } from '../../src/store/memory-outbox.ts';
import { memoryLogger } from '../support/log-sink.ts';

// Which device events become faults for the county, as which kind, about what, with which words.
const at = Date.parse('2026-12-06T06:00:00Z');

function rig(now = () => at + 42_000) {
  const outbox = createMemoryOutbox();
  const { logger, lines } = memoryLogger();
  const stored: OutboxRecord[] = [];
  const recorder = new FaultRecorder({ villageId: 'v1', outbox, logger, onStored: (r) => stored.push(r), now });
  const faults = () => stored.map((r) => faultPayloadSchema.parse(outbox.get(r.id)!.payload));
  return { recorder, stored, faults, lines };
}

describe('FaultRecorder, every device event', () => {
  it('stores each fault the county must hear of, with its kind, subject and detail, at the time of the event', () => {
    const r = rig();
    const events: DeviceEvent[] = [
      { type: 'offline', deviceId: 'gate', at, reason: 'no answer to 3 polls' },
      { type: 'recovered', deviceId: 'gate', at, offlineForMs: 125_400 },
      { type: 'bus-lost', busId: 'rs485-1', at, reason: 'port closed' },
      { type: 'bus-restored', busId: 'rs485-1', at },
      { type: 'status', deviceId: 'amp', condition: 'overheat', active: true, at },
      { type: 'status', deviceId: 'amp', condition: 'overheat', active: false, at },
      { type: 'status', deviceId: 'amp', condition: 'line-fault', active: true, at },
      { type: 'status', deviceId: 'amp', condition: 'line-fault', active: false, at },
      { type: 'poll-gap', busId: 'rs485-1', deviceId: 'gate', active: false, gapMs: 180, thresholdMs: 500, at },
    ];
    for (const event of events) r.recorder.handleDeviceEvent(event);
    expect(r.faults().map((f) => [f.kind, f.subject, f.detail])).toEqual([
      ['device-offline', 'gate', 'no answer to 3 polls'],
      ['device-recovered', 'gate', 'answered again after 125 s'],
      ['bus-lost', 'rs485-1', 'port closed'],
      ['bus-restored', 'rs485-1', 'port reopened'],
      ['amplifier-overheat', 'amp', 'overheat reported by the amplifier'],
      ['amplifier-overheat-cleared', 'amp', 'overheat cleared'],
      ['amplifier-line-fault', 'amp', 'line-fault reported by the amplifier'],
      ['amplifier-line-fault-cleared', 'amp', 'line-fault cleared'],
      ['missable-press-cleared', 'gate', 'read at least every 500 ms again'],
    ]);
    expect(r.faults().every((f) => Date.parse(f.raisedAt) === at && f.village === 'v1' && f.attempt === 1)).toBe(true);
    expect(r.faults().map((f) => f.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('stores nothing for inputs, protocol errors or the amplifier power following its relay', () => {
    const r = rig();
    r.recorder.handleDeviceEvent({ type: 'input', deviceId: 'gate', input: 'button', active: true, at });
    r.recorder.handleDeviceEvent({ type: 'protocol-error', busId: 'rs485-1', deviceId: 'gate', kind: 'crc', detail: 'bad crc', at });
    r.recorder.handleDeviceEvent({ type: 'status', deviceId: 'amp', condition: 'power', active: true, at });
    r.recorder.handleDeviceEvent({ type: 'status', deviceId: 'amp', condition: 'power', active: false, at });
    expect(r.stored).toEqual([]);
  });

  it('logs each fault it stores', () => {
    const r = rig();
    r.recorder.handleDeviceEvent({ type: 'offline', deviceId: 'gate', at, reason: 'timeout' });
    const fault = r.faults()[0]!;
    expect(r.lines.filter((l) => l.msg === 'fault stored')).toEqual([
      expect.objectContaining({ faultId: fault.id, seq: 1, kind: 'device-offline', subject: 'gate', detail: 'timeout' }),
    ]);
  });
});

describe('FaultRecorder, the sound output and faults from elsewhere', () => {
  it('stores a sound output that cannot be opened, with the reason, and one that opens again; nothing before the first check', () => {
    const r = rig();
    r.recorder.audioChanged({ device: 'hw:0', ok: null });
    r.recorder.audioChanged({ device: 'hw:0', ok: false, reason: 'no such card' });
    r.recorder.audioChanged({ device: 'hw:0', ok: false });
    r.recorder.audioChanged({ device: 'hw:0', ok: true });
    expect(r.faults().map((f) => [f.kind, f.subject, f.detail])).toEqual([
      ['audio', 'hw:0', 'the sound output "hw:0" cannot be opened: no such card'],
      ['audio', 'hw:0', 'the sound output "hw:0" cannot be opened: unknown reason'],
      ['audio-recovered', 'hw:0', 'the sound output "hw:0" opens again'],
    ]);
  });

  it('raises a fault at the time given, or now', () => {
    const r = rig();
    r.recorder.raise('storage', 'data', 'card read-only', at - 5000);
    r.recorder.raise('storage', 'data', 'card read-only');
    expect(r.faults().map((f) => [f.kind, f.subject, f.detail, Date.parse(f.raisedAt)])).toEqual([
      ['storage', 'data', 'card read-only', at - 5000],
      ['storage', 'data', 'card read-only', at + 42_000],
    ]);
  });
});
