/**
 * Child process for the kill -9 test: remembers jtis as fast as it can and prints each on its own line the
 * moment `remember` returned true, with a blocking write, so a printed jti was committed first.
 * Usage: replay-guard-child.ts <database path> <jti prefix>
 */
import { openSqliteReplayGuard } from '../../src/store/sqlite-replay-guard.ts';
import { printBlocking } from './blocking-print.ts';

const [path, prefix] = process.argv.slice(2);
if (path === undefined || prefix === undefined) throw new Error('usage: replay-guard-child.ts <path> <prefix>');

const guard = openSqliteReplayGuard({ path });
printBlocking('ready\n');
for (let i = 0; ; i++) {
  const jti = `${prefix}-${i}`;
  const now = Date.now();
  if (!guard.remember(jti, now + 3600_000, now)) throw new Error(`${jti} was refused on first sight`);
  printBlocking(`${jti}\n`);
}
