import { existsSync, statSync } from 'node:fs';
import type { Logger } from '../platform/logger.ts';
import type { OutboxMarker } from './outbox-marker.ts';
import { openSqliteOutbox, type SqliteOutbox } from './sqlite-outbox.ts';
import { isCorruption, moveAside } from './storage-files.ts';
import { errorText } from '../platform/error-text.ts';

export interface OpenedOutbox {
  outbox: SqliteOutbox;
  /** What the county must hear about: a lost or replaced outbox, an unreadable marker. */
  notices: string[];
}

/**
 * Opens `outbox.sqlite`, and never mistakes a lost one for a fresh install: a file that is missing or empty
 * while the marker says records were handed out, or one too damaged to open (moved aside, kept for
 * inspection), starts a new outbox whose seqs continue above the marker's, and says how much may be lost.
 * Throws only when no outbox can be opened at all (e.g. a read-only data directory): the caller runs from memory.
 */
export function openOutboxFile(options: { path: string; marker: OutboxMarker; logger?: Logger; now: number }): OpenedOutbox {
  const { path, marker, now } = options;
  const notices: string[] = [];
  const read = marker.read();
  if (read.kind === 'invalid') notices.push(`outbox marker unreadable, written anew: ${read.problem}`);
  let before = !existsSync(path) ? 'missing' : statSync(path).size === 0 ? 'empty (0 bytes)' : 'present';

  let outbox: SqliteOutbox;
  try {
    outbox = openSqliteOutbox({ path, ...(options.logger ? { logger: options.logger } : {}) });
  } catch (error) {
    if (!isCorruption(error)) throw error;
    const aside = moveAside(path, 'corrupt', now);
    options.logger?.error({ path, movedTo: aside, problem: errorText(error) }, 'outbox unreadable: moved aside, starting a new one');
    before = `unreadable (${errorText(error)}) and was moved aside to ${aside}`;
    outbox = openSqliteOutbox({ path, ...(options.logger ? { logger: options.logger } : {}) });
  }

  // Always above the marker: a record published before its commit and lost in a crash had a seq up to it.
  if (read.kind === 'ok') outbox.raiseSeqFloors(read.marker.reservedSeq);
  if (outbox.createdSchema && read.kind === 'ok') {
    const { reservedSeq, unackedAtUpdate, updatedAt, installId } = read.marker;
    notices.push(
      `outbox ${path} was ${before}, but install ${installId} had stored records in it (seq up to alarm ${reservedSeq.alarm}, ` +
        `fault ${reservedSeq.fault}, report ${reservedSeq.report}): ${unackedAtUpdate} were unacknowledged at ${updatedAt}, and any raised ` +
        `after that and not acknowledged may be lost; a new outbox was started and seq continues above those`,
    );
  } else if (before.startsWith('unreadable')) {
    notices.push(`outbox ${path} was ${before}; with no marker to say how far its seqs went, a new outbox was started`);
  }

  try {
    marker.reserve(outbox.lastSeqs(), outbox.stats().depth, now);
  } catch (error) {
    // The outbox itself opened: its own writes will tell whether the folder takes writes.
    notices.push(`outbox marker ${marker.path} could not be written: ${errorText(error)}`);
  }
  return { outbox, notices };
}
