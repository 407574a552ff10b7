import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';

/**
 * A folder of its own for the tests of the describe block it is called in: made before them, removed after.
 * `fresh` names a file (or, without an extension, a folder) in it that no other test of the block uses.
 */
export function scratchFolder(prefix: string): { readonly dir: string; fresh(name: string, extension?: string): string } {
  let dir = '';
  let files = 0;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), prefix));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    get dir() {
      return dir;
    },
    fresh: (name, extension) => join(dir, `${name}-${++files}${extension === undefined ? '' : `.${extension}`}`),
  };
}
