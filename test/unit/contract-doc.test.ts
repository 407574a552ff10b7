import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { statePayloadSchema } from '../../src/contract/payloads.ts';
import { commandKindOf, downKinds, topicKinds, topicSpecs, villageTopics, type TopicKind } from '../../src/county/topics.ts';

const doc = readFileSync(new URL('../../src/contract/contract.md', import.meta.url), 'utf8');
const topicsAsDocumented = villageTopics('{prefix}', '{village}');

/**
 * `<!-- example: NAME -->` followed by a fenced json block; NAME is `kind` or `kind-variant`, where `kind` is
 * a topic of the map or the command a county→village topic carries (`time` for `timeAll`).
 */
const examples = [...doc.matchAll(/<!-- example: ([a-z-]+) -->\n```json\n([\s\S]*?)\n```/g)].map((m) => ({
  name: m[1] ?? '',
  json: m[2] ?? '',
}));

const isKind = (kind: string): kind is TopicKind => kind in topicSpecs;
const kindOf = (name: string): string => {
  const kind = name.split('-')[0] ?? name;
  return isKind(kind) ? kind : (downKinds.find((k) => commandKindOf(k).command === kind) ?? kind);
};

describe('county contract document (src/contract/contract.md)', () => {
  it('has examples, each named after a topic of the map', () => {
    expect(examples.length).toBeGreaterThan(0);
    // A marker whose block did not match the pattern would be silently unchecked.
    expect(examples.length).toBe(doc.split('<!-- example:').length - 1);
    for (const { name } of examples) expect(isKind(kindOf(name)), `example "${name}"`).toBe(true);
  });

  it.each(examples)('example "$name" is valid against its topic\'s schema', ({ name, json }) => {
    const kind = kindOf(name);
    if (!isKind(kind)) throw new Error(`no topic "${kind}"`);
    const result = topicSpecs[kind].schema.safeParse(JSON.parse(json));
    expect(result.error?.issues ?? []).toEqual([]);
    if (kind === 'state') expect(statePayloadSchema.parse(JSON.parse(json)).online).toBe(name === 'state-online');
  });

  it('shows an example of every topic whose payload is settled', () => {
    // The `all` topics carry the same payload as the village ones: one example serves both.
    const shownSchemas = new Set(
      examples
        .map((e) => kindOf(e.name))
        .filter(isKind)
        .map((k) => topicSpecs[k].schema),
    );
    expect(topicKinds.filter((k) => !shownSchemas.has(topicSpecs[k].schema))).toEqual([]);
  });

  it.each(topicKinds)('lists topic "%s" with the direction, QoS and retain flag of the map', (kind) => {
    const topic = topicsAsDocumented.topic(kind);
    const row = doc.split('\n').find((line) => line.startsWith(`| \`${topic}\` |`));
    expect(row, `a table row for ${topic}`).toBeDefined();
    const cells = (row ?? '').split('|').map((c) => c.trim());
    const spec = topicSpecs[kind];
    expect(cells.slice(2, 5)).toEqual([
      spec.direction === 'up' ? 'village → county' : 'county → village',
      String(spec.qos),
      spec.retain ? 'yes' : 'no',
    ]);
  });
});
