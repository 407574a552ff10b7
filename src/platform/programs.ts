import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

/** Whether `command` runs as the service would start it: an absolute path, or found on `PATH`, executable. */
export function isRunnable(command: string, path = process.env['PATH'] ?? ''): boolean {
  const candidates =
    isAbsolute(command) || command.includes('/')
      ? [command]
      : path
          .split(delimiter)
          .filter((d) => d !== '')
          .map((dir) => join(dir, command));
  return candidates.some((candidate) => {
    try {
      accessSync(candidate, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * The programs of argv templates (field → argv) that cannot be started, one line each naming the field:
 * found at start, not at the first announcement.
 */
export function missingPrograms(templates: Record<string, readonly string[] | null | undefined>, path?: string): string[] {
  const problems: string[] = [];
  for (const [field, argv] of Object.entries(templates)) {
    const command = argv?.[0];
    if (command === undefined || isRunnable(command, path)) continue;
    problems.push(`${field}: "${command}" is not installed or not on the PATH${debianHint(command)}; what it plays will fail`);
  }
  return problems;
}

const debianPackages: Record<string, string> = {
  'espeak-ng': 'espeak-ng',
  aplay: 'alsa-utils',
  amixer: 'alsa-utils',
  mpg123: 'mpg123',
  sox: 'sox',
  play: 'sox',
};

function debianHint(command: string): string {
  const name = command.split('/').pop() ?? command;
  const pkg = debianPackages[name];
  return pkg === undefined ? '' : ` (sudo apt-get install ${pkg})`;
}
