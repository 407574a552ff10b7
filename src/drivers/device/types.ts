import type { IndicatorState, InputName, StatusCondition } from './profile-schema.ts';

export type { IndicatorState, InputName, StatusCondition };

/** Why a single exchange with a device went wrong; counted per device in health. */
export type ProtocolErrorKind = 'timeout' | 'crc' | 'exception' | 'short-reply' | 'wrong-unit' | 'garbage' | 'checksum' | 'overlong' | 'port';

/** What the device layer tells the rest of the service. Times are epoch milliseconds. */
export type DeviceEvent =
  | { type: 'input'; deviceId: string; input: InputName; active: boolean; at: number }
  /** A status condition changed (or was active at the first read after start); see `statusConditions`. */
  | { type: 'status'; deviceId: string; condition: StatusCondition; active: boolean; at: number }
  | { type: 'offline'; deviceId: string; at: number; reason: string }
  | { type: 'recovered'; deviceId: string; at: number; offlineForMs: number }
  | { type: 'protocol-error'; busId: string; deviceId?: string; kind: ProtocolErrorKind; detail: string; at: number }
  | { type: 'bus-lost'; busId: string; at: number; reason: string }
  | { type: 'bus-restored'; busId: string; at: number }
  /**
   * A device whose button does not latch was read less often than `thresholdMs` allows (`active`), or has
   * been again for a whole measuring window (not active): presses shorter than `gapMs` could go unseen.
   */
  | { type: 'poll-gap'; busId: string; deviceId: string; active: boolean; gapMs: number; thresholdMs: number; at: number };

export type DeviceEventSink = (event: DeviceEvent) => void;

/** A device's last raw answer, before any interpretation: for the installer, to tell wiring from configuration. */
export interface RawReply {
  /** Epoch ms it was read or heard. */
  at: number;
  /** Modbus: every point of the last complete poll, `<table>:<address>` → value (coils and inputs as 0/1). */
  registers?: Record<string, number>;
  /** Line protocol: the last valid line heard, without its delimiter. */
  line?: string;
}

export interface DeviceHealth {
  id: string;
  bus: string;
  model: string;
  online: boolean;
  /** Whether a press shorter than the poll interval is held by the device until read. */
  latching: boolean | null;
  /** Effective interval between two reads of this device (ms), measured. */
  pollIntervalMs: number | null;
  /**
   * The longest time between two answered reads of this device over the last one to two minutes (ms),
   * measured; null before two reads. Time while the device or its bus was down is not counted here.
   */
  worstPollGapMs: number | null;
  /**
   * When the device last answered well (epoch ms): a poll answered or a write acknowledged, a valid line
   * heard on a line bus. Null if it has not answered since the service started. Kept while offline.
   */
  lastReplyAt: number | null;
  errors: Partial<Record<ProtocolErrorKind, number>>;
  /**
   * Last read value of each status condition the profile declares; absent when it declares none, and
   * without a key until the first answer. Kept while offline: `online` says whether it is current.
   */
  status?: Partial<Record<StatusCondition, boolean>>;
  /** The last raw answer (kept while offline), null before the first; absent where a device port keeps none. */
  lastRaw?: RawReply | null;
}

/** One physical (or simulated) device, as the domain sees it. */
export interface Device {
  readonly id: string;
  readonly busId: string;
  start(): void;
  stop(): Promise<void>;
  /**
   * Show a state to the villager. The state is kept as desired and written whenever the device is next
   * reachable (at start, after the bus returns, after the device recovers), and a write of what the column
   * already shows is skipped. Resolves when the device shows this state (or a later one asked for); rejects
   * when a write failed (or, on a line bus whose port is lost, cannot be made now), and the state stays
   * desired and is written when the device is next reachable.
   */
  setIndicator(state: IndicatorState): Promise<void>;
  /** Clear a latched input once the event it carried is durably stored. No-op for unlatched inputs. */
  resetLatch(input: InputName): Promise<void>;
  setRelay(channel: number, on: boolean): Promise<void>;
  health(): DeviceHealth;
}

/**
 * All devices of a village. Domain code (alarm, broadcast) depends on this interface only; it never
 * sees serialport or modbus-serial.
 */
export interface DevicePort {
  start(): void;
  stop(): Promise<void>;
  device(id: string): Device | undefined;
  devices(): readonly Device[];
  health(): DeviceHealth[];
}
