import type { Logger } from 'pino';
import type { DeviceEvent } from '../drivers/device/types.ts';
import type { Outbox, OutboxRecord } from '../store/types.ts';
import type { FaultKind, FaultPayload } from '../contract/payloads.ts';
import { isoWithOffset, uuidv7, type Now } from '../platform/time.ts';

/**
 * Device and bus faults travel the same durable, acknowledged path as alarms: a dead column is a
 * life-safety fact the county must not miss.
 */
export class FaultRecorder {
  private readonly now: Now;

  constructor(
    private readonly options: {
      villageId: string;
      outbox: Outbox;
      logger: Logger;
      onStored: (record: OutboxRecord) => void;
      now?: Now;
    },
  ) {
    this.now = options.now ?? Date.now;
  }

  handleDeviceEvent(event: DeviceEvent): void {
    switch (event.type) {
      case 'offline':
        return this.record('device-offline', event.deviceId, event.reason, event.at);
      case 'recovered':
        return this.record('device-recovered', event.deviceId, `answered again after ${Math.round(event.offlineForMs / 1000)} s`, event.at);
      case 'bus-lost':
        return this.record('bus-lost', event.busId, event.reason, event.at);
      case 'bus-restored':
        return this.record('bus-restored', event.busId, 'port reopened', event.at);
      case 'status':
        // Power on/off follows the amplifier's relay and is the broadcast controller's business, not a fault.
        if (event.condition === 'power') return;
        return this.record(
          event.condition === 'overheat'
            ? event.active
              ? 'amplifier-overheat'
              : 'amplifier-overheat-cleared'
            : event.active
              ? 'amplifier-line-fault'
              : 'amplifier-line-fault-cleared',
          event.deviceId,
          event.active ? `${event.condition} reported by the amplifier` : `${event.condition} cleared`,
          event.at,
        );
      case 'poll-gap':
        return this.record(
          event.active ? 'missable-press' : 'missable-press-cleared',
          event.deviceId,
          event.active
            ? `read at worst every ${Math.round(event.gapMs)} ms, more than the ${event.thresholdMs} ms limit: a shorter press on this unlatched button can go unseen`
            : `read at least every ${event.thresholdMs} ms again`,
          event.at,
        );
      case 'input':
      case 'protocol-error':
        return;
      default: {
        // A new kind of device event fails to compile here until it is decided whether the county hears of it.
        const unhandled: never = event;
        return unhandled;
      }
    }
  }

  /** The sound output changed (`ok` null: not checked yet). Sound that cannot go out is a fault to the county, not only a log line. */
  audioChanged(state: { device: string; ok: boolean | null; reason?: string }): void {
    if (state.ok === true) this.raise('audio-recovered', state.device, `the sound output "${state.device}" opens again`);
    else if (state.ok === false)
      this.raise('audio', state.device, `the sound output "${state.device}" cannot be opened: ${state.reason ?? 'unknown reason'}`);
  }

  /** A fault the village meets outside the device events (storage, audio, clock): same durable path. */
  raise(kind: FaultKind, subject: string, detail: string, at: number = this.now()): void {
    this.record(kind, subject, detail, at);
  }

  private record(kind: FaultKind, subject: string, detail: string, at: number): void {
    const id = uuidv7(at);
    const record = this.options.outbox.append({
      stream: 'fault',
      id,
      subject,
      now: this.now(),
      build: (seq): FaultPayload => ({
        id,
        seq,
        village: this.options.villageId,
        kind,
        subject,
        detail,
        raisedAt: isoWithOffset(at),
        attempt: 1,
      }),
    });
    this.options.logger.warn({ faultId: id, seq: record.seq, kind, subject, detail }, 'fault stored');
    this.options.onStored(record);
  }
}
