import type { OutboxStream, JsonObject } from '../store/types.ts';
import type { HealthPayload } from './payloads.ts';

export interface UplinkEvents {
  connected: () => void;
  disconnected: (reason: string) => void;
  /** The county acknowledged a record by id (already validated). */
  ack: (id: string) => void;
}

/** The county link as the rest of the service sees it; the MQTT implementation lives in mqtt-link.ts. */
export interface Uplink {
  readonly connected: boolean;
  start(): void;
  /** Publishes `{"online":false}` itself, then disconnects. */
  stop(): Promise<void>;
  /**
   * QoS 1; resolves when the broker has the message (PUBACK). Rejects (LinkDownError) at once while the
   * link is down, when it drops before the PUBACK, or when no PUBACK comes within 1.5 × keepalive.
   */
  publishRecord(stream: OutboxStream, payload: JsonObject): Promise<void>;
  publishHealth(payload: HealthPayload): Promise<void>;
  on<E extends keyof UplinkEvents>(event: E, listener: UplinkEvents[E]): void;
}
