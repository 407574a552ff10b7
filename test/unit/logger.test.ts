import { closeSync, fstatSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, isJournalStream } from '../../src/platform/logger.ts';

function sink() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l !== ''),
      );
      done();
    },
  });
  return { lines, destination };
}

describe('logger', () => {
  it('writes one `level` per line, the log level: a field of that name is kept as levelField', () => {
    const { lines, destination } = sink();
    createLogger({ level: 'info', destination }).warn({ level: 2, requestId: 'r1' }, 'broadcast failed');
    expect(lines).toHaveLength(1);
    expect(lines[0]!.match(/"level":/g)).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 40, levelField: 2, requestId: 'r1', msg: 'broadcast failed' });
  });

  it('for journald, prefixes each line with its syslog priority, the JSON after it unchanged', () => {
    const { lines, destination } = sink();
    const logger = createLogger({ level: 'debug', destination, journald: true });
    logger.debug('d');
    logger.info('i');
    logger.warn('w');
    logger.error('e');
    logger.fatal('f');
    expect(lines.map((l) => l.slice(0, 3))).toEqual(['<7>', '<6>', '<4>', '<3>', '<2>']);
    expect(JSON.parse(lines[2]!.slice(3))).toMatchObject({ level: 40, msg: 'w' });
  });

  it('knows stdout is the journal only when JOURNAL_STREAM names that very file (systemd.exec)', () => {
    const dir = mkdtempSync(join(tmpdir(), 've-journal-'));
    const fd = openSync(join(dir, 'stream'), 'w');
    const other = openSync(join(dir, 'other'), 'w');
    try {
      const { dev, ino } = fstatSync(fd);
      const env = { JOURNAL_STREAM: `${dev}:${ino}` };
      expect(isJournalStream(env, fd)).toBe(true);
      expect(isJournalStream(env, other)).toBe(false);
      expect(isJournalStream({}, fd)).toBe(false);
      expect(isJournalStream({ JOURNAL_STREAM: 'junk' }, fd)).toBe(false);
    } finally {
      closeSync(fd);
      closeSync(other);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
