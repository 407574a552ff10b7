import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { VillageEdge } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { waitFor } from './wait.ts';

export interface VillageOptions {
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
  storage?: { reserveBytes?: number; retryMs?: number };
}

/**
 * A village config file's contents for tests: `columns` simulated alarm columns on a simulated bus, a fresh
 * data folder, and the given broker. For a child process, write it with writeConfig (service-process.ts).
 */
export function villageConfigJson(options: VillageOptions) {
  const columns = options.columns ?? 2;
  return {
    version: 2,
    village: { id: options.villageId, name: `Village ${options.villageId}`, location: { lat: 25.04, lon: 102.71 } },
    county: {
      url: options.brokerUrl,
      protocolVersion: options.protocolVersion,
      clientId: `ve-${options.villageId}`,
      commandKeys: options.commandKeys ?? [],
    },
    dataDir: options.dataDir ?? mkdtempSync(join(tmpdir(), `ve-${options.villageId}-`)),
    buses: [{ id: 'sim', kind: 'simulated' }],
    devices: [
      ...Array.from({ length: columns }, (_, i) => ({
        id: `column-${i + 1}`,
        bus: 'sim',
        unitId: (i % 247) + 1,
        profile: 've-ac100-rtu',
        role: 'alarm-column',
        label: `column ${i + 1}`,
      })),
      ...(options.extraDevices ?? []),
    ],
    // No sound card on test machines: ALSA's null device opens (and discards), `default` does not.
    broadcast: { output: { device: 'null' }, ...options.broadcast },
    ...(options.storage === undefined ? {} : { storage: options.storage }),
    timing: { ackTimeoutMs: 10_000, retry: { initialMs: 500, maxMs: 2000 }, ...options.timing },
    log: { level: 'info' },
  };
}

/** villageConfigJson, parsed: the Config an in-process village is built from. */
export function villageConfig(options: VillageOptions): Config {
  const result = parseConfig(villageConfigJson(options));
  if (!result.ok) throw new Error(`test config invalid:\n${result.errors.join('\n')}`);
  return result.config;
}

/**
 * The smallest village that can play: relay board `relays-1` (simulated unit 20), amplifier `amp-1` on its
 * channel 0 and one zone (`zone`, default `square`) on channel 1, with no power-on gap or warm-up. Spread
 * into villageConfig's options; `broadcast` adds to or overrides the broadcast section.
 */
export function oneZoneBroadcast(broadcast: Record<string, unknown> = {}, zone = 'square') {
  return {
    extraDevices: [{ id: 'relays-1', bus: 'sim', unitId: 20, profile: 've-rb8-rtu', role: 'relay-board', label: 'relays' }],
    broadcast: {
      amplifiers: [{ id: 'amp-1', power: { device: 'relays-1', channel: 0 } }],
      zones: [{ id: zone, label: zone, relay: { device: 'relays-1', channel: 1 }, amplifier: 'amp-1' }],
      powerOnGapMs: 0,
      warmUpMs: 0,
      ...broadcast,
    },
  };
}

/** A check for waitFor: whether the service's county link is up, as `village-edge status` would say. */
export function countyLinkUp(app: VillageEdge): () => Promise<boolean> {
  return async () => (await app.status()).link.connected;
}

/** Starts `app` and waits for its county link: where a test's village begins. Register its stop first. */
export async function startOnline(app: VillageEdge, timeoutMs?: number): Promise<VillageEdge> {
  await app.start();
  await waitFor('the county link up', countyLinkUp(app), timeoutMs);
  return app;
}

/**
 * A village config that runs `document` as its own programme schedule on a clock it trusts (a test machine's
 * clock needs no timesyncd flag file to be believed).
 */
export function withSchedule<C extends object>(
  config: C,
  document: Record<string, unknown>,
): C & { clock: { systemClock: 'trusted' }; schedule: { document: Record<string, unknown> } } {
  return { ...config, clock: { systemClock: 'trusted' }, schedule: { document } };
}

/** A tts player that runs `script` instead of speaking (the text is its `$0`): sleeps to play long, writes stamps to be timed. */
export function scriptedPlayer(script: string): { player: { tts: string[]; ttsOutput: null } } {
  return { player: { tts: ['sh', '-c', `${script} # $0`, '{text}'], ttsOutput: null } };
}
