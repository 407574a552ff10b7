import { createLogger, type Logger } from '../../src/platform/logger.ts';

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/**
 * A real pino logger writing into memory, so tests can assert what was logged. `failing` picks lines whose
 * write throws instead (as writing to a stdout that is gone does), to show that a fault is contained.
 */
export function memoryLogger(
  level: 'trace' | 'debug' | 'info' = 'debug',
  failing: (line: LogLine) => boolean = () => false,
): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  // pino writes each line synchronously to any object with a `write`: what it throws reaches the caller.
  const destination = {
    write(text: string) {
      for (const part of text.split('\n')) {
        if (part.trim() === '') continue;
        const line = JSON.parse(part) as LogLine;
        if (failing(line)) throw new Error(`cannot write the log line "${line.msg}"`);
        lines.push(line);
      }
    },
  };
  return { logger: createLogger({ level, destination }), lines };
}
