import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { configSchema, type Config } from './schema.ts';
import { describeIssues } from '../platform/schema-errors.ts';
import { migrateConfig } from './migrate.ts';

export type ConfigResult =
  /** `fromVersion`: the version the file declared (older ones are migrated in memory; check-config says so). */
  | { ok: true; config: Config; configDir: string; fromVersion: number }
  | { ok: false; errors: string[] };

export function readConfigFile(path: string): ConfigResult {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    return { ok: false, errors: [`(file): cannot read ${path}: ${(error as Error).message}`] };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { ok: false, errors: [`(file): ${path} is not valid JSON${whereInText(text, (error as Error).message)}: ${(error as Error).message}`] };
  }
  const result = parseConfig(json);
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

/** Relative paths in the file are relative to the file's own folder, not to wherever the service was started. */
function resolvePaths(config: Config, configDir: string): Config {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(configDir, p));
  return {
    ...config,
    dataDir: abs(config.dataDir),
    profilesDir: config.profilesDir === undefined ? undefined : abs(config.profilesDir),
    status: { ...config.status, socket: config.status.socket === undefined ? undefined : abs(config.status.socket), thermalDir: abs(config.status.thermalDir) },
    broadcast: { ...config.broadcast, library: abs(config.broadcast.library) },
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
