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

function isObject(value: unknown): value is ConfigObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
