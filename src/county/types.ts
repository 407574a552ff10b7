import type { CommandKind, PayloadOf, RecordKind } from './topics.ts';

/** A county→village message as it arrived: not yet verified, not yet parsed. */
export interface InboundCommand {
  command: CommandKind;
  /** Whether it came on the village's own topic or the one every village shares. */
  audienceTopic: 'village' | 'all';
  topic: string;
  payload: Buffer;
  /** The link discarded a payload this big unread (over its packet cap); `payload` is then empty. */
  discardedBytes?: number;
}

export interface UplinkEvents {
  connected: () => void;
  disconnected: (reason: string) => void;
  /** A county→village message arrived; it must pass the command gate before anything acts on it. */
  command: (message: InboundCommand) => void;
}

export interface PublishOptions {
  /**
   * Hand the bytes to the socket before returning, instead of on the next tick with whatever else is
   * published in this one: for a publish followed by a synchronous fsync, which would hold them back.
   */
  flush?: boolean;
}

/** What the rest of the service publishes: the outbox's records and health (the link publishes `state` itself). */
export type PublishedKind = RecordKind | 'health';

/** The county link as the rest of the service sees it; the MQTT implementation lives in mqtt-link.ts. */
export interface Uplink {
  readonly connected: boolean;
  start(): void;
  /** Publishes `{"online":false}` itself, then disconnects. */
  stop(): Promise<void>;
  /**
   * Records: QoS 1; resolves when the broker has the message (PUBACK). Health: QoS 0, resolves once written. Rejects (LinkDownError) at once while the
   * link is down, when it drops before the PUBACK, or when no PUBACK comes within 1.5 × keepalive.
   */
  publish<K extends PublishedKind>(kind: K, payload: PayloadOf<K>, options?: PublishOptions): Promise<void>;
  /** An alarm waits: while the link is down, the next attempt to bring it up comes within a couple of seconds. */
  hurry(): void;
  on<E extends keyof UplinkEvents>(event: E, listener: UplinkEvents[E]): void;
}
