import type { Logger } from 'pino';
import { alarmPayloadSchema, type AlarmPayload } from '../contract/payloads.ts';
import { storedPayload } from '../contract/stored.ts';
import { isoWithOffset, type Now } from '../platform/time.ts';
import { errorText } from '../platform/error-text.ts';
import type { Outbox, OutboxRecord } from '../store/types.ts';
import type { AlarmView } from './types.ts';

/** How many records are read per alarm listed: follow-ups are folded into their alarm, so a list needs a few more. */
const recordsPerAlarm = 4;
const maxRecords = 1000;

/**
 * The newest alarms as the office sees them, from the outbox's `alarm` stream, newest first. A follow-up
 * (presses counted after a copy had gone out) is folded into the alarm it continues: one line per villager's
 * alarm, with the highest count, received once the county acknowledged any copy of it (each carries the
 * whole alarm), overdue once none was acknowledged within the ack timeout of the first press.
 */
export function recentAlarms(options: {
  outbox: Pick<Outbox, 'recent'>;
  limit: number;
  ackTimeoutMs: number;
  now: Now;
  logger: Logger;
}): AlarmView[] {
  const { outbox, limit, logger } = options;
  if (!Number.isInteger(limit) || limit < 1) return [];
  const records = outbox.recent('alarm', Math.min(limit * recordsPerAlarm, maxRecords));
  // Oldest first, so an alarm is met before its follow-ups and keeps its own time and terminal.
  const chains = new Map<string, Array<{ record: OutboxRecord; alarm: AlarmPayload }>>();
  for (const record of records.reverse()) {
    let alarm: AlarmPayload;
    try {
      alarm = storedPayload(alarmPayloadSchema, record);
    } catch (error) {
      // Told to the county by the alarm service and delivery when they meet it; here it is only left out.
      logger.warn({ err: errorText(error), alarmId: record.id }, 'stored alarm unreadable: left out of the console list');
      continue;
    }
    const root = alarm.followUpOf ?? alarm.id;
    const chain = chains.get(root);
    if (chain === undefined) chains.set(root, [{ record, alarm }]);
    else chain.push({ record, alarm });
  }
  const now = options.now();
  const views = [...chains.entries()].map(([root, chain]): AlarmView => {
    const first = chain[0]!;
    const acks = chain.map((c) => c.record.ackedAt).filter((at): at is number => at !== null);
    const ackedAt = acks.length === 0 ? null : Math.min(...acks);
    const overdue = now - first.record.createdAt > options.ackTimeoutMs;
    return {
      id: root,
      terminal: first.alarm.terminal,
      terminalLabel: first.alarm.location.terminal,
      type: first.alarm.type,
      raisedAt: first.alarm.raisedAt,
      presses: Math.max(...chain.map((c) => c.alarm.presses)),
      state: ackedAt !== null ? 'received' : overdue ? 'not-received' : 'sent',
      ackedAt: ackedAt === null ? null : isoWithOffset(ackedAt),
    };
  });
  return views.reverse().slice(0, limit);
}
