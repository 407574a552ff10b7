/**
 * Child process for the kill -9 test: appends records as fast as it can and prints each id on its own line
 * the moment `append` returns, with a blocking write: a printed id was committed first, and at most one
 * committed id is unprinted when the kill lands.
 * Usage: outbox-append-child.ts <database path> <id prefix>
 */
import { outboxStreams } from '../../src/store/types.ts';
import { printBlocking } from './blocking-print.ts';
import { openSqliteOutbox } from '../../src/store/sqlite-outbox.ts';

const [path, prefix] = process.argv.slice(2);
if (path === undefined || prefix === undefined) throw new Error('usage: outbox-append-child.ts <path> <prefix>');

const outbox = openSqliteOutbox({ path });
printBlocking('ready\n');
for (let i = 0; ; i++) {
  const id = `${prefix}-${i}`;
  const stream = outboxStreams[i % outboxStreams.length] ?? 'alarm';
  outbox.append({ stream, id, subject: `terminal-${i % 7}`, now: Date.now(), build: (seq) => ({ id, seq, presses: 1 }) });
  printBlocking(`${id}\n`);
}
