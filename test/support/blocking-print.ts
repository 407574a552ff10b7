import { writeSync } from 'node:fs';

/**
 * Writes a line to fd 1 and returns only once it is in the pipe, for children whose printed lines a test
 * takes as proof that something was committed first. process.stdout is not that: once the pipe is full
 * because the parent reads slowly (a busy machine), it queues lines in memory, and a kill -9 loses them.
 */
export function printBlocking(line: string): void {
  const bytes = Buffer.from(line);
  for (let written = 0; written < bytes.length; ) {
    try {
      written += writeSync(1, bytes, written);
    } catch (error) {
      // Only if fd 1 was left non-blocking: the pipe is full, try again.
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
    }
  }
}
