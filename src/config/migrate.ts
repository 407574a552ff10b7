import { existsSync, readFileSync, statSync } from 'node:fs';
import { writeFileDurably } from '../platform/durable-file.ts';

/** The config version this build reads; older files are carried forward by `migrations`. */
export const currentConfigVersion = 2;

type ConfigObject = Record<string, unknown>;

/**
 * Older config versions carried forward one step at a time, so a village's file keeps working after an
 * upgrade. Key = the version a step migrates from. Each step keeps what the village did under the old
 * version; it never guesses a value the installer did not give.
 */
const migrations: Record<number, (old: ConfigObject) => ConfigObject> = {
  // Version 1 accepted a config without county.commandKeys and ran with every county command (acks too)
  // refused. Version 2 makes that an error unless county.commandsDisabled says it is on purpose, so a
  // village that ran that way keeps running after the upgrade, and check-config now says so.
  1: (old) => {
    const county = isObject(old['county']) ? old['county'] : undefined;
    const keys = county?.['commandKeys'];
    const noKeys = keys === undefined || (Array.isArray(keys) && keys.length === 0);
    const next = county !== undefined && noKeys && county['commandsDisabled'] === undefined ? { ...county, commandsDisabled: true } : county;
    return { ...old, version: 2, ...(next === undefined ? {} : { county: next }) };
  },
};

export type Migrated = { ok: true; value: unknown; from: number } | { ok: false; errors: string[] };

/** Brings a parsed config file to `currentConfigVersion` in memory; `from` is the version the file declared. */
export function migrateConfig(json: unknown): Migrated {
  if (!isObject(json)) return { ok: false, errors: ['(root): the config must be a JSON object'] };
  let value = json;
  const declared = value['version'];
  if (typeof declared !== 'number' || !Number.isInteger(declared))
    return { ok: false, errors: [`version: required, an integer (this build reads ${currentConfigVersion})`] };
  let version: number = declared;
  if (version > currentConfigVersion)
    return { ok: false, errors: [`version: ${version} is newer than this build reads (${currentConfigVersion}); upgrade village-edge`] };
  while (version < currentConfigVersion) {
    const step = migrations[version];
    if (step === undefined) return { ok: false, errors: [`version: ${version} is no longer supported (this build reads ${currentConfigVersion})`] };
    value = step(value);
    version = value['version'] as number;
  }
  return { ok: true, value, from: declared };
}

export type FileMigration =
  | { outcome: 'current'; version: number }
  | { outcome: 'migrated'; from: number; to: number; backup: string }
  | { outcome: 'failed'; errors: string[] };

/**
 * Rewrites a config file of an older version at the current one (what the package's postinst runs on an
 * upgrade), after copying the old file beside it as `FILE.v<old>.bak` with the same owner and mode (it holds
 * the county password). The rewritten file is JSON with two-space indents: its comments-free layout may
 * differ from the old one, whose exact text the backup keeps. A file that cannot be read or parsed is left
 * as it is; check-config names what is wrong with it.
 */
export function migrateConfigFile(path: string, now: () => Date = () => new Date()): FileMigration {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    return { outcome: 'failed', errors: [`(file): cannot read ${path}: ${(error as Error).message}`] };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { outcome: 'failed', errors: [`(file): ${path} is not valid JSON: ${(error as Error).message}; left as it is`] };
  }
  const migrated = migrateConfig(json);
  if (!migrated.ok) return { outcome: 'failed', errors: migrated.errors };
  if (migrated.from === currentConfigVersion) return { outcome: 'current', version: currentConfigVersion };
  const stat = statSync(path);
  const plain = `${path}.v${migrated.from}.bak`;
  // An earlier backup of the same version is the installer's only copy of that file: never overwrite it.
  const backup = existsSync(plain) ? `${path}.v${migrated.from}.${now().toISOString().replace(/[:.]/g, '-')}.bak` : plain;
  // root (the postinst) keeps the file's owner and group; anyone else can only write files of their own.
  const access = { mode: stat.mode & 0o777, ...(process.getuid?.() === 0 ? { uid: stat.uid, gid: stat.gid } : {}) };
  writeFileDurably(backup, text, access);
  writeFileDurably(path, `${JSON.stringify(migrated.value, null, 2)}\n`, access);
  return { outcome: 'migrated', from: migrated.from, to: currentConfigVersion, backup };
}

function isObject(value: unknown): value is ConfigObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
