import { performance } from 'node:perf_hooks';
import type { ModbusRtuSlave } from './modbus-rtu-slave.ts';
import { mean, percentile } from './stats.ts';

/** What the far end of the RS-485 line saw in a window: how often each unit was read, how busy the wire was. */
export interface BusFigures {
  elapsedMs: number;
  requests: number;
  /** Gaps between two reads of the same unit, all units pooled. */
  pollIntervals: number[];
  meanPollMs: number;
  p99PollMs: number;
  /** Request + reply wire time over elapsed time. */
  utilisation: number;
  /** Wire time of one poll (read request + its reply). */
  pollWireMs: number;
  /** Write requests (latch resets, indicators) in the window. */
  writes: number;
  /** Silence between a reply leaving the slave and the next request arriving (the controller's inter-frame gap). */
  minSilenceMs: number;
  /** Requests that followed a reply by less than 3.5 characters of silence. */
  shortSilences: number;
  /** Short silences by what came before and after, e.g. `w6→w5 same unit` (w: write, r: read, FC). */
  shortSilenceKinds: Record<string, number>;
  /** How much earlier than its wire time the slave's reply went out (its timers share this event loop). */
  maxReplyEarlyMs: number;
  /** Replies that went out more than 0.5 ms before their wire time was up. */
  earlyReplies: number;
}

const READS = new Set([1, 2, 3, 4]);
const WRITES = new Set([5, 6, 15, 16]);
// Function codes 1-6 have fixed 8-byte requests; the service sends no 15/16 (profiles have single writes).
const REQUEST_BYTES = 8;

export function watchBus(slave: ModbusRtuSlave, line: { baud: number; bitsPerByte?: number }) {
  const byteMs = ((line.bitsPerByte ?? 10) * 1000) / line.baud;
  let recording = false;
  let startedAt = 0;
  let wireMs = 0;
  let requests = 0;
  let writes = 0;
  let pollReplyBytes = 0;
  let lastReplyAt: number | null = null;
  let lastRequest: { unit: number; fc: number; at: number } | null = null;
  let previousRequest: { unit: number; fc: number } | null = null;
  const shortSilenceKinds: Record<string, number> = {};
  let maxReplyEarlyMs = 0;
  let earlyReplies = 0;
  let minSilenceMs = Infinity;
  let shortSilences = 0;
  const frameGapMs = 3.5 * byteMs;
  const reads = new Map<number, number[]>();
  const intervals: number[] = [];

  const offRequest = slave.onRequest((request) => {
    if (!recording) return;
    requests++;
    wireMs += REQUEST_BYTES * byteMs;
    if (lastReplyAt !== null) {
      const silence = request.at - lastReplyAt;
      minSilenceMs = Math.min(minSilenceMs, silence);
      if (silence < frameGapMs && previousRequest !== null) {
        shortSilences++;
        const kind = `${describe(previousRequest.fc)}→${describe(request.fc)} ${previousRequest.unit === request.unit ? 'same unit' : 'other unit'}`;
        shortSilenceKinds[kind] = (shortSilenceKinds[kind] ?? 0) + 1;
      }
      lastReplyAt = null;
    }
    previousRequest = { unit: request.unit, fc: request.fc };
    lastRequest = request;
    if (WRITES.has(request.fc)) writes++;
    if (!READS.has(request.fc)) return;
    const stamps = reads.get(request.unit) ?? [];
    const previous = stamps.at(-1);
    if (previous !== undefined) intervals.push(request.at - previous);
    stamps.push(request.at);
    reads.set(request.unit, stamps);
  });
  const offReply = slave.onReply((_unit, reply) => {
    if (!recording) return;
    wireMs += reply.length * byteMs;
    lastReplyAt = performance.now();
    if (lastRequest !== null) {
      const early = lastRequest.at + (REQUEST_BYTES + reply.length) * byteMs - lastReplyAt;
      maxReplyEarlyMs = Math.max(maxReplyEarlyMs, early);
      if (early > 0.5) earlyReplies++;
    }
    if (READS.has(reply[1] ?? 0)) pollReplyBytes = reply.length;
  });

  return {
    start(): void {
      recording = true;
      startedAt = performance.now();
    },
    stop(): BusFigures {
      recording = false;
      const elapsedMs = performance.now() - startedAt;
      return {
        elapsedMs,
        requests,
        pollIntervals: intervals,
        meanPollMs: mean(intervals),
        p99PollMs: percentile(intervals, 99),
        utilisation: wireMs / elapsedMs,
        pollWireMs: (REQUEST_BYTES + pollReplyBytes) * byteMs,
        writes,
        minSilenceMs,
        shortSilences,
        shortSilenceKinds,
        maxReplyEarlyMs,
        earlyReplies,
      };
    },
    /** The first read of `unit` that arrived after `at` (it sampled the tables then), if any. */
    firstReadAfter(unit: number, at: number): number | undefined {
      return reads.get(unit)?.find((stamp) => stamp > at);
    },
    close(): void {
      offRequest();
      offReply();
    },
  };
}

function describe(fc: number): string {
  return `${WRITES.has(fc) ? 'w' : 'r'}${fc}`;
}
