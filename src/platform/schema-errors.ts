import type * as z from 'zod';

/**
 * One line per problem, each starting with the path of the bad field: `devices[2].unitId: ...`. Given the
 * schema, an unknown key is followed by the known key it most likely misspells.
 */
export function describeIssues(error: z.ZodError, root = '', schema?: z.ZodType): string[] {
  return error.issues.map((issue) => {
    const line = `${formatPath(root, issue.path)}: ${issue.message}`;
    if (issue.code !== 'unrecognized_keys' || schema === undefined) return line;
    const known = keysAt(schema, issue.path);
    const hints = issue.keys.flatMap((key) => {
      const nearest = nearestKey(key, known);
      return nearest === undefined ? [] : [`"${key}": did you mean "${nearest}"?`];
    });
    return hints.length === 0 ? line : `${line} (${hints.join('; ')})`;
  });
}

/** The keys an object schema at `path` knows, through defaults, optionals, arrays, pipes and unions. */
function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let nodes: unknown[] = [schema];
  for (const part of [...path, undefined]) {
    const next: unknown[] = [];
    for (const node of nodes.flatMap(unwrap)) {
      const def = definition(node);
      if (part === undefined) {
        if (def?.['type'] === 'object') return Object.keys(def['shape'] as object);
        continue;
      }
      if (typeof part === 'number' && def?.['type'] === 'array') next.push(def['element']);
      else if (typeof part === 'string' && def?.['type'] === 'object') {
        const child = (def['shape'] as Record<string, unknown>)[part];
        if (child !== undefined) next.push(child);
      }
    }
    // An unknown key in one option of a union: the keys of every option that is an object are candidates.
    if (part === undefined)
      return nodes.flatMap(unwrap).flatMap((n) => (definition(n)?.['type'] === 'object' ? Object.keys(definition(n)!['shape'] as object) : []));
    nodes = next;
  }
  return [];
}

function definition(node: unknown): Record<string, unknown> | undefined {
  return (node as { _zod?: { def?: Record<string, unknown> } } | undefined)?._zod?.def;
}

/** Through the wrappers that do not change which keys an object takes. */
function unwrap(node: unknown): unknown[] {
  const def = definition(node);
  if (def === undefined) return [];
  switch (def['type']) {
    case 'default':
    case 'prefault':
    case 'optional':
    case 'nullable':
    case 'readonly':
    case 'catch':
      return unwrap(def['innerType']);
    case 'pipe':
      return [...unwrap(def['in']), ...unwrap(def['out'])];
    case 'union':
      return (def['options'] as unknown[]).flatMap(unwrap);
    default:
      return [node];
  }
}

/** The known key within a third of its length in edits (at least 2), closest first; none if nothing is near. */
function nearestKey(key: string, known: readonly string[]): string | undefined {
  let best: { key: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance <= Math.max(2, Math.floor(candidate.length / 3)) && (best === undefined || distance < best.distance))
      best = { key: candidate, distance };
  }
  return best?.key;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++)
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length]!;
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
