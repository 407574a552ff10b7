import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { configSchema, type Config } from './schema.ts';
import { describeIssues } from '../platform/schema-errors.ts';
import { currentConfigVersion, migrateConfig } from './migrate.ts';
import { writeFileDurably } from '../platform/durable-file.ts';

export type ConfigResult =
  /** `fromVersion`: the version the file declared (older ones are migrated in memory; check-config says so). */
  { ok: true; config: Config; configDir: string; fromVersion: number } | { ok: false; errors: string[] };

/** A config file's text and its JSON, or one line naming what is wrong (JSON syntax errors with line and column). */
export function readJsonFile(path: string): { ok: true; text: string; json: unknown } | { ok: false; errors: string[] } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    return { ok: false, errors: [`(file): cannot read ${path}: ${(error as Error).message}`] };
  }
  try {
    return { ok: true, text, json: JSON.parse(text) };
  } catch (error) {
    return { ok: false, errors: [`(file): ${path} is not valid JSON${whereInText(text, (error as Error).message)}: ${(error as Error).message}`] };
  }
}

export function readConfigFile(path: string): ConfigResult {
  const file = readJsonFile(path);
  if (!file.ok) return file;
  const result = parseConfig(file.json);
  if (!result.ok) return result;
  const configDir = dirname(resolve(path));
  return { ok: true, config: resolvePaths(result.config, configDir), configDir, fromVersion: result.fromVersion };
}

export function parseConfig(json: unknown): { ok: true; config: Config; fromVersion: number } | { ok: false; errors: string[] } {
  const migrated = migrateConfig(json);
  if (!migrated.ok) return migrated;
  const parsed = configSchema.safeParse(migrated.value);
  if (!parsed.success) return { ok: false, errors: describeIssues(parsed.error, '', configSchema) };
  return { ok: true, config: parsed.data, fromVersion: migrated.from };
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
  const file = readJsonFile(path);
  if (!file.ok) return { outcome: 'failed', errors: file.errors };
  const { text } = file;
  const migrated = migrateConfig(file.json);
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

/** Relative paths in the file are relative to the file's own folder, not to wherever the service was started. */
function resolvePaths(config: Config, configDir: string): Config {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(configDir, p));
  return {
    ...config,
    dataDir: abs(config.dataDir),
    profilesDir: config.profilesDir === undefined ? undefined : abs(config.profilesDir),
    status: {
      ...config.status,
      socket: config.status.socket === undefined ? undefined : abs(config.status.socket),
      thermalDir: abs(config.status.thermalDir),
    },
    broadcast: { ...config.broadcast, library: abs(config.broadcast.library) },
    console: {
      ...config.console,
      usersFile: abs(config.console.usersFile),
      tls: config.console.tls === undefined ? undefined : { cert: abs(config.console.tls.cert), key: abs(config.console.tls.key) },
    },
    schedule: {
      ...config.schedule,
      media: { ...config.schedule.media, ca: config.schedule.media.ca === undefined ? undefined : abs(config.schedule.media.ca) },
    },
    county: {
      ...config.county,
      tls:
        config.county.tls === undefined
          ? undefined
          : {
              ca: abs(config.county.tls.ca),
              cert: config.county.tls.cert === undefined ? undefined : abs(config.county.tls.cert),
              key: config.county.tls.key === undefined ? undefined : abs(config.county.tls.key),
            },
    },
  };
}

/** ` at line L, column C` from JSON.parse's "at position N" (V8 gives only the offset). */
function whereInText(text: string, message: string): string {
  const position = /at position (\d+)/.exec(message)?.[1];
  if (position === undefined) return '';
  const before = text.slice(0, Number(position));
  const line = before.split('\n').length;
  const column = Number(position) - before.lastIndexOf('\n');
  return ` at line ${line}, column ${column}`;
}
