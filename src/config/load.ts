import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { configSchema, type Config } from './schema.ts';
import { describeIssues } from '../platform/schema-errors.ts';

export const currentConfigVersion = 1;

export type ConfigResult =
  | { ok: true; config: Config; configDir: string }
  | { ok: false; errors: string[] };

/**
 * Older config versions are carried forward one step at a time, so a village's file keeps working after
 * an upgrade. Index = version it migrates from.
 */
const migrations: Record<number, (old: Record<string, unknown>) => Record<string, unknown>> = {};

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
  return { ok: true, config: resolvePaths(result.config, configDir), configDir };
}

export function parseConfig(json: unknown): { ok: true; config: Config } | { ok: false; errors: string[] } {
  const migrated = migrate(json);
  if (!migrated.ok) return migrated;
  const parsed = configSchema.safeParse(migrated.value);
  if (!parsed.success) return { ok: false, errors: describeIssues(parsed.error, '', configSchema) };
  return { ok: true, config: parsed.data };
}

function migrate(json: unknown): { ok: true; value: unknown } | { ok: false; errors: string[] } {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    return { ok: false, errors: ['(root): the config must be a JSON object'] };
  let value = json as Record<string, unknown>;
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
  return { ok: true, value };
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
