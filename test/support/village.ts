import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';

/**
 * A valid village config for tests: `columns` simulated alarm columns on a simulated bus, a fresh data
 * folder, and the given broker. `patch` overrides top-level sections after defaults are filled.
 */
export function villageConfig(options: {
  villageId: string;
  brokerUrl: string;
  protocolVersion: 4 | 5;
  columns?: number;
  timing?: Record<string, unknown>;
  dataDir?: string;
  extraDevices?: unknown[];
  /** Public keys of the county signers whose commands this village accepts. */
  commandKeys?: Array<{ kid: string; x: string }>;
  broadcast?: Record<string, unknown>;
}): Config {
  const columns = options.columns ?? 2;
  const json = {
    version: 1,
    village: { id: options.villageId, name: `Village ${options.villageId}`, location: { lat: 25.04, lon: 102.71 } },
    county: { url: options.brokerUrl, protocolVersion: options.protocolVersion, clientId: `ve-${options.villageId}`, commandKeys: options.commandKeys ?? [] },
    dataDir: options.dataDir ?? mkdtempSync(join(tmpdir(), `ve-${options.villageId}-`)),
    buses: [{ id: 'sim', kind: 'simulated' }],
    devices: [
      ...Array.from({ length: columns }, (_, i) => ({
        id: `column-${i + 1}`,
        bus: 'sim',
        unitId: i + 1,
        profile: 've-ac100-rtu',
        role: 'alarm-column',
        label: `column ${i + 1}`,
      })),
      ...(options.extraDevices ?? []),
    ],
    ...(options.broadcast === undefined ? {} : { broadcast: options.broadcast }),
    timing: { ackTimeoutMs: 10_000, retry: { initialMs: 500, maxMs: 2000 }, ...options.timing },
    log: { level: 'info' },
  };
  const result = parseConfig(json);
  if (!result.ok) throw new Error(`test config invalid:\n${result.errors.join('\n')}`);
  return result.config;
}
