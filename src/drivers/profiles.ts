import { readdirSync, readFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { deviceProfileSchema, type DeviceProfile } from './profile-schema.ts';
import { describeIssues } from '../platform/schema-errors.ts';

export interface ProfileSet {
  profiles: Map<string, DeviceProfile>;
  /** One line per rejected file, each naming the file and the field. */
  errors: string[];
}

/**
 * Loads every `*.json` in the folder. A broken file is reported and skipped, so one bad model does not
 * take down the columns of the others; devices that name it are refused later with that reason.
 */
export function loadProfiles(dir: string): ProfileSet {
  const profiles = new Map<string, DeviceProfile>();
  const errors: string[] = [];
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => extname(f) === '.json').sort();
  } catch (error) {
    return { profiles, errors: [`profilesDir: cannot read ${dir}: ${(error as Error).message}`] };
  }
  for (const file of files) {
    const name = basename(file, '.json');
    const result = parseProfile(readFileSync(join(dir, file), 'utf8'), file);
    if (!result.ok) {
      errors.push(...result.errors);
      continue;
    }
    if (result.profile.model !== name) {
      errors.push(`${file}: model: "${result.profile.model}" must equal the file name "${name}"`);
      continue;
    }
    profiles.set(name, result.profile);
  }
  return { profiles, errors };
}

export function parseProfile(text: string, source: string): { ok: true; profile: DeviceProfile } | { ok: false; errors: string[] } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { ok: false, errors: [`${source}: not valid JSON: ${(error as Error).message}`] };
  }
  const parsed = deviceProfileSchema.safeParse(json);
  if (!parsed.success) return { ok: false, errors: describeIssues(parsed.error).map((e) => `${source}: ${e}`) };
  return { ok: true, profile: parsed.data };
}
