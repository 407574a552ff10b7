import type * as z from 'zod';

/** One line per problem, each starting with the path of the bad field: `devices[2].unitId: ...`. */
export function describeIssues(error: z.ZodError, root = ''): string[] {
  return error.issues.map((issue) => `${formatPath(root, issue.path)}: ${issue.message}`);
}

export function formatPath(root: string, path: readonly PropertyKey[]): string {
  let out = root;
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(root)' : out;
}

/** A validation failure of one external input; `problems` already name their fields. */
export class InvalidInputError extends Error {
  constructor(
    readonly source: string,
    readonly problems: readonly string[],
  ) {
    super(`${source}: ${problems.join('; ')}`);
    this.name = 'InvalidInputError';
  }
}
