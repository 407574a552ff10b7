import type * as z from 'zod';
import {
  ackCommandSchema,
  alarmPayloadSchema,
  broadcastCommandSchema,
  faultPayloadSchema,
  healthPayloadSchema,
  reportPayloadSchema,
  scheduleCommandSchema,
  statePayloadSchema,
  stopCommandSchema,
  timeCommandSchema,
} from '../contract/payloads.ts';
import type { OutboxStream } from '../store/types.ts';

/**
 * The one topic→payload map of the county link. Every topic is `{prefix}/{village}/{path}` (or
 * `{prefix}/all/{path}` for messages to every village); nothing else in the code base spells a topic.
 * To add a topic (e.g. `cmd/broadcast`, `cmd/stop`, `all/cmd/broadcast`), add a row here and a case to
 * the link's inbound switch; the compiler then points at whatever else must handle it.
 */

/** `up`: the village publishes, the county subscribes. `down`: the county publishes to the village. */
export type Direction = 'up' | 'down';

export interface TopicSpec {
  /** Topic levels after the village (or `all`) level. */
  readonly path: string;
  /** `village`: one village's topic; `all`: one topic the county uses to reach every village at once. */
  readonly scope: 'village' | 'all';
  readonly direction: Direction;
  readonly qos: 0 | 1;
  readonly retain: boolean;
  readonly schema: z.ZodType;
}

export const topicSpecs = {
  state: { path: 'state', scope: 'village', direction: 'up', qos: 1, retain: true, schema: statePayloadSchema },
  alarm: { path: 'alarm', scope: 'village', direction: 'up', qos: 1, retain: false, schema: alarmPayloadSchema },
  fault: { path: 'fault', scope: 'village', direction: 'up', qos: 1, retain: false, schema: faultPayloadSchema },
  report: { path: 'report', scope: 'village', direction: 'up', qos: 1, retain: false, schema: reportPayloadSchema },
  health: { path: 'health', scope: 'village', direction: 'up', qos: 0, retain: false, schema: healthPayloadSchema },
  // County → village: each payload is a compact JWS; `schema` is that of the claims inside.
  ack: { path: 'ack', scope: 'village', direction: 'down', qos: 1, retain: false, schema: ackCommandSchema },
  broadcast: { path: 'cmd/broadcast', scope: 'village', direction: 'down', qos: 1, retain: false, schema: broadcastCommandSchema },
  broadcastAll: { path: 'cmd/broadcast', scope: 'all', direction: 'down', qos: 1, retain: false, schema: broadcastCommandSchema },
  stop: { path: 'cmd/stop', scope: 'village', direction: 'down', qos: 1, retain: false, schema: stopCommandSchema },
  stopAll: { path: 'cmd/stop', scope: 'all', direction: 'down', qos: 1, retain: false, schema: stopCommandSchema },
  // Retained: a village that was offline when it was sent, or that reconnects, gets the running one at once.
  schedule: { path: 'cmd/schedule', scope: 'village', direction: 'down', qos: 1, retain: true, schema: scheduleCommandSchema },
  scheduleAll: { path: 'cmd/schedule', scope: 'all', direction: 'down', qos: 1, retain: true, schema: scheduleCommandSchema },
  timeAll: { path: 'cmd/time', scope: 'all', direction: 'down', qos: 1, retain: true, schema: timeCommandSchema },
} as const satisfies Record<string, TopicSpec>;

/** What a county→village message asks for, whichever topic (own or `all`) it came on. */
export type CommandKind = 'ack' | 'broadcast' | 'stop' | 'schedule' | 'time';
const commandOfDownKind: Record<DownKind, CommandKind> = {
  ack: 'ack',
  broadcast: 'broadcast',
  broadcastAll: 'broadcast',
  stop: 'stop',
  stopAll: 'stop',
  schedule: 'schedule',
  scheduleAll: 'schedule',
  timeAll: 'time',
};

export function commandKindOf(kind: DownKind): { command: CommandKind; audienceTopic: 'village' | 'all' } {
  return { command: commandOfDownKind[kind], audienceTopic: topicSpecs[kind].scope };
}

export type TopicKind = keyof typeof topicSpecs;
type KindsGoing<D extends Direction> = {
  [K in TopicKind]: (typeof topicSpecs)[K]['direction'] extends D ? K : never;
}[TopicKind];
export type UpKind = KindsGoing<'up'>;
export type DownKind = KindsGoing<'down'>;
export type PayloadOf<K extends TopicKind> = z.infer<(typeof topicSpecs)[K]['schema']>;

/** The topics the outbox's records go out on, one per stream. */
export type RecordKind = 'alarm' | 'fault' | 'report';

/** A new outbox stream fails to compile until it is given its topic here. */
const streamTopics: Record<OutboxStream, RecordKind> = { alarm: 'alarm', fault: 'fault', report: 'report' };

export function topicKindOfStream(stream: OutboxStream): RecordKind {
  return streamTopics[stream];
}

export const topicKinds: readonly TopicKind[] = Object.keys(topicSpecs) as TopicKind[];
export const downKinds: readonly DownKind[] = topicKinds.filter((k): k is DownKind => topicSpecs[k].direction === 'down');
export const upKinds: readonly UpKind[] = topicKinds.filter((k): k is UpKind => topicSpecs[k].direction === 'up');

const ALL_VILLAGES = 'all';

function build(prefix: string, kind: TopicKind, villageId: string): string {
  const spec: TopicSpec = topicSpecs[kind];
  return `${prefix}/${spec.scope === 'all' ? ALL_VILLAGES : villageId}/${spec.path}`;
}

/** The topics as one village sees them. */
export interface VillageTopics {
  /** The full topic of `kind` for this village (for `all`-scoped kinds, the shared topic). */
  topic(kind: TopicKind): string;
  /** Everything the county may send this village: what the link subscribes to. */
  readonly subscriptions: readonly { topic: string; qos: 0 | 1 }[];
  /** Which county→village message arrived, or undefined for a topic that is not ours. */
  parseInbound(topic: string): { kind: DownKind } | undefined;
}

export function villageTopics(prefix: string, villageId: string): VillageTopics {
  const inbound = new Map<string, DownKind>(downKinds.map((kind) => [build(prefix, kind, villageId), kind]));
  return {
    topic: (kind) => build(prefix, kind, villageId),
    subscriptions: downKinds.map((kind) => ({ topic: build(prefix, kind, villageId), qos: topicSpecs[kind].qos })),
    parseInbound(topic) {
      const kind = inbound.get(topic);
      return kind === undefined ? undefined : { kind };
    },
  };
}

/** County side: the filter that receives `kind` from every village, e.g. `village-edge/+/alarm`. */
export function countyFilter(prefix: string, kind: UpKind): string {
  return build(prefix, kind, '+');
}

/** County side: which village published what, or undefined for a topic outside the map. */
export function parseUplink(prefix: string, topic: string): { kind: UpKind; village: string } | undefined {
  if (!topic.startsWith(`${prefix}/`)) return undefined;
  const rest = topic.slice(prefix.length + 1);
  const slash = rest.indexOf('/');
  if (slash <= 0) return undefined;
  const village = rest.slice(0, slash);
  const path = rest.slice(slash + 1);
  const kind = upKinds.find((k) => topicSpecs[k].path === path);
  return kind === undefined ? undefined : { kind, village };
}
