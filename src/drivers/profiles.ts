import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { deviceProfileSchema, type DeviceProfile } from './device/profile-schema.ts';
import { describeIssues } from '../platform/schema-errors.ts';

export interface ProfileSet {
  profiles: Map<string, DeviceProfile>;
  /** One line per rejected file or unreadable folder, each naming the file and the field. */
  errors: string[];
  /** The same problems by the model their file is named for, so a caller can tell which ones matter to it. */
  problems: ProfileProblem[];
}

export interface ProfileProblem {
  /** The model the file name promises (`ve-ac100-rtu.json` → `ve-ac100-rtu`); null for a folder that cannot be read. */
  model: string | null;
  message: string;
}

/** `<model>.json`: editor backups, hidden files, notes and folders beside the profiles are not profiles. */
const profileFileName = /^[A-Za-z0-9][A-Za-z0-9._-]*\.json$/;
/** A profile is a page of JSON; anything far bigger was not meant as one. */
const maxProfileBytes = 256 * 1024;

/**
 * Loads the profile files of each folder in turn: the shipped `devices/` first, then the installer's
 * `profilesDir`, whose files add models (and replace a shipped model of the same name). A broken file is
 * reported and skipped, so one bad model does not take down the columns of the others; devices that name
 * it are refused later with that reason.
 */
export function loadProfiles(dirs: readonly string[]): ProfileSet {
  const profiles = new Map<string, DeviceProfile>();
  const problems: ProfileProblem[] = [];
  for (const dir of [...new Set(dirs)]) {
    let files: string[];
    try {
      files = readdirSync(dir)
        .filter((f) => profileFileName.test(f))
        .sort();
    } catch (error) {
      problems.push({ model: null, message: `profilesDir: cannot read ${dir}: ${(error as Error).message}` });
      continue;
    }
    for (const file of files) {
      const name = basename(file, '.json');
      const path = join(dir, file);
      const stats = statSync(path, { throwIfNoEntry: false });
      if (stats === undefined || !stats.isFile()) continue;
      if (stats.size > maxProfileBytes) {
        problems.push({ model: name, message: `${file}: ${stats.size} bytes, more than a profile's ${maxProfileBytes}` });
        continue;
      }
      const result = parseProfile(readFileSync(path, 'utf8'), file);
      if (!result.ok) {
        problems.push(...result.errors.map((message) => ({ model: name, message })));
        continue;
      }
      if (result.profile.model !== name) {
        problems.push({ model: name, message: `${file}: model: "${result.profile.model}" must equal the file name "${name}"` });
        continue;
      }
      profiles.set(name, result.profile);
    }
  }
  return { profiles, problems, errors: problems.map((p) => p.message) };
}

/**
 * Which profile problems stop a configured device (errors) and which only concern files no device uses
 * (warnings): a half-written model file dropped into the folder must not stop the village.
 */
export function sortProfileProblems(set: ProfileSet, usedModels: ReadonlySet<string>): { errors: string[]; warnings: string[] } {
  const errors: string[] = [];
  const warnings: string[] = [];
  for (const problem of set.problems) {
    if (problem.model !== null && usedModels.has(problem.model) && !set.profiles.has(problem.model)) errors.push(problem.message);
    else warnings.push(problem.message);
  }
  return { errors, warnings };
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
