import { readdirSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deviceProfileSchema } from '../../src/drivers/device/profile-schema.ts';

const dir = new URL('../../devices/', import.meta.url);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort();

describe('device profiles in devices/', () => {
  it('has files to check', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  it.each(files)('%s parses with deviceProfileSchema, is named after its model and describes itself', (file) => {
    const parsed = deviceProfileSchema.safeParse(JSON.parse(readFileSync(new URL(file, dir), 'utf8')));
    expect(parsed.error?.issues ?? []).toEqual([]);
    expect(parsed.data?.model).toBe(basename(file, '.json'));
    expect(parsed.data?.description.length).toBeGreaterThan(40);
  });
});
