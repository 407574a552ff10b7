import type { DeviceEvent } from '../drivers/device/types.ts';
import { isoWithOffset, type Now } from '../platform/time.ts';
import type { StatusDocument } from './status-document.ts';

type DeviceNote = Pick<StatusDocument['devices'][number], 'lastChange' | 'lastError'>;

/**
 * What the status document says that no other part keeps: when the county link last came up and went down,
 * and each device's last online/offline change and last protocol error, as the drivers' events told it.
 * Fed by app.ts from the uplink's events and the device event sink; memory only (gone after a restart).
 */
export class Activity {
  private readonly devices = new Map<string, DeviceNote>();
  private lastConnectedAt: number | null = null;
  private lastDisconnectedAt: number | null = null;
  private lastDisconnectReason: string | null = null;

  constructor(private readonly now: Now) {}

  linkConnected(): void {
    this.lastConnectedAt = this.now();
  }

  linkDisconnected(reason: string): void {
    this.lastDisconnectedAt = this.now();
    this.lastDisconnectReason = reason;
  }

  observeDevice(event: DeviceEvent): void {
    switch (event.type) {
      case 'offline':
        return this.note(event.deviceId, { lastChange: { online: false, at: isoWithOffset(event.at), reason: event.reason } });
      case 'recovered':
        return this.note(event.deviceId, { lastChange: { online: true, at: isoWithOffset(event.at) } });
      case 'protocol-error':
        // A bus-wide error (no device) shows in the bus's devices going offline, not here.
        if (event.deviceId !== undefined)
          this.note(event.deviceId, { lastError: { kind: event.kind, detail: event.detail, at: isoWithOffset(event.at) } });
        return;
      default:
        return;
    }
  }

  link(): Omit<StatusDocument['link'], 'url' | 'connected'> {
    const at = (ms: number | null) => (ms === null ? null : isoWithOffset(ms));
    return {
      lastConnectedAt: at(this.lastConnectedAt),
      lastDisconnectedAt: at(this.lastDisconnectedAt),
      lastDisconnectReason: this.lastDisconnectReason,
    };
  }

  device(id: string): DeviceNote {
    return this.devices.get(id) ?? { lastChange: null, lastError: null };
  }

  private note(id: string, change: Partial<DeviceNote>): void {
    this.devices.set(id, { ...this.device(id), ...change });
  }
}
