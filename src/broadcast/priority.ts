import { priorities, type EmergencyLevel, type Priority } from '../contract/vocabulary.ts';

/** What decides the order of two requests. `seq` is the order in which the controller received them. */
export interface PlayOrderKey {
  priority: Priority;
  level?: EmergencyLevel | undefined;
  seq: number;
}

/** 0 for `emergency`, growing as the priority falls. */
function priorityRank(priority: Priority): number {
  return priorities.indexOf(priority);
}

/**
 * Whether `incoming` stops `running` at once. Only a strictly higher priority does: the level does not,
 * because an emergency that is cut off is lost (preempted items are not resumed), while the more serious
 * one waiting behind it loses only the rest of a message that is also an emergency.
 */
export function preempts(incoming: Pick<PlayOrderKey, 'priority'>, running: Pick<PlayOrderKey, 'priority'>): boolean {
  return priorityRank(incoming.priority) < priorityRank(running.priority);
}

/**
 * Queue order, for `Array.prototype.sort`: higher priority first; among equal priorities the more serious
 * level first (1 = 特别重大); then first come, first served. A missing level sorts after every stated one:
 * the county always states it, so an emergency without one makes no claim to be the most serious.
 */
export function comparePlayOrder(a: PlayOrderKey, b: PlayOrderKey): number {
  return priorityRank(a.priority) - priorityRank(b.priority) || levelRank(a.level) - levelRank(b.level) || a.seq - b.seq;
}

function levelRank(level: EmergencyLevel | undefined): number {
  return level ?? 5;
}
