import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from './config/schema.ts';
import type { DeviceEvent } from './drivers/types.ts';
import type { Outbox, OutboxRecord } from './store/types.ts';
import type { Uplink } from './county/types.ts';
import type { Now } from './platform/time.ts';
import { loadProfiles } from './drivers/profiles.ts';
import { createDeviceHub, type DeviceHub } from './drivers/device-hub.ts';
import { openSqliteOutbox } from './store/sqlite-outbox.ts';
import { AlarmService } from './alarm/alarm-service.ts';
import { FaultRecorder } from './alarm/fault-recorder.ts';
import { createMqttLink } from './county/mqtt-link.ts';
import { startEmbeddedBroker } from './county/embedded-broker.ts';
import { Delivery } from './county/delivery.ts';
import { HealthReporter } from './county/health-reporter.ts';
import { createSdNotifier, type SdNotifier } from './platform/sd-notify.ts';

/** The shipped `devices/` folder, found from this file whether it runs from src/ or dist/. */
export const shippedProfilesDir = fileURLToPath(new URL('../devices/', import.meta.url));

export interface VillageEdgeOptions {
  config: Config;
  /** Folder of the config file, for relative paths in it. */
  configDir?: string;
  version: string;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  /** Any I/O edge can be swapped for another real one (tests); each has a production default. */
  adapters?: { outbox?: Outbox; uplink?: Uplink; now?: Now };
}

export interface VillageEdge {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly devices: DeviceHub;
  readonly outbox: Outbox;
  readonly uplink: Uplink;
  /** Config, profile and device problems found at start-up; each was logged and the rest runs. */
  readonly problems: readonly string[];
}

/** The whole service for one village, built from its config. The only place that constructs the pieces. */
export function createVillageEdge(options: VillageEdgeOptions): VillageEdge {
  const { config, logger, version } = options;
  const now = options.adapters?.now ?? Date.now;
  const env = options.env ?? process.env;
  const startedAt = now();
  const problems: string[] = [];

  const profileSet = loadProfiles(config.profilesDir ?? shippedProfilesDir);
  problems.push(...profileSet.errors);

  const outbox = options.adapters?.outbox ?? openSqliteOutbox({ path: join(config.dataDir, 'outbox.sqlite'), logger: logger.child({ component: 'store' }) });
  const uplink =
    options.adapters?.uplink ??
    createMqttLink({ config: config.county, villageId: config.village.id, version, logger, ...(options.configDir ? { configDir: options.configDir } : {}) });

  // Events can only arrive after start(); these are assigned before then.
  let alarms: AlarmService | undefined;
  let faults: FaultRecorder | undefined;
  const sink = (event: DeviceEvent) => {
    for (const [name, handle] of [
      ['alarm', () => alarms?.handleDeviceEvent(event)],
      ['fault', () => faults?.handleDeviceEvent(event)],
    ] as const) {
      try {
        handle();
      } catch (error) {
        // A failed write to the store must not silence the other listener (or the bus).
        logger.error({ err: error, listener: name, event }, 'device event handler failed');
      }
    }
  };

  const { hub, problems: deviceProblems } = createDeviceHub({
    buses: config.buses,
    devices: config.devices,
    profiles: profileSet.profiles,
    timing: config.timing,
    sink,
    logger: logger.child({ component: 'devices' }),
    now,
  });
  problems.push(...deviceProblems);

  let delivery: Delivery | undefined;
  const onStored = (_record: OutboxRecord) => delivery?.kick();
  alarms = new AlarmService({
    village: config.village,
    terminals: config.devices.filter((d) => d.role === 'alarm-column' && hub.device(d.id) !== undefined).map((d) => ({ id: d.id, label: d.label, testMode: d.testMode })),
    devices: hub,
    outbox,
    timing: config.timing,
    logger: logger.child({ component: 'alarm' }),
    onStored,
    now,
  });
  faults = new FaultRecorder({ villageId: config.village.id, outbox, logger: logger.child({ component: 'fault' }), onStored, now });
  delivery = new Delivery({
    outbox,
    uplink,
    retry: config.timing.retry,
    logger: logger.child({ component: 'delivery' }),
    onAcked: (record) => alarms?.acknowledged(record),
    now,
  });
  const health = new HealthReporter({
    sources: {
      villageId: config.village.id,
      version,
      startedAt,
      pollIntervalMs: config.timing.pollIntervalMs,
      devices: () => hub.health(),
      outbox: () => outbox.stats(),
      problems: () => problems,
    },
    uplink,
    intervalMs: config.timing.healthIntervalMs,
    logger,
    now,
  });

  let embeddedBroker: { close(): Promise<void> } | undefined;
  let notifier: SdNotifier | undefined;

  return {
    devices: hub,
    outbox,
    uplink,
    problems,
    async start() {
      for (const problem of problems) logger.error({ problem }, 'configuration problem; the rest of the service runs');
      if (config.county.embeddedBroker) {
        const url = new URL(config.county.url);
        try {
          embeddedBroker = await startEmbeddedBroker({ host: url.hostname, port: Number(url.port || 1883), logger });
        } catch (error) {
          logger.error({ err: error }, 'embedded broker did not start; the link keeps retrying');
        }
      }
      alarms?.start();
      delivery?.start();
      try {
        uplink.start();
      } catch (error) {
        // A bad TLS file must not take the columns down with it: alarms keep being stored locally.
        problems.push(`county: ${(error as Error).message}`);
        logger.error({ err: error }, 'county link did not start; alarms are stored and wait for it');
      }
      hub.start();
      health.start();
      // The watchdog vouches for delivery's once-a-second pass (and so the event loop) still turning.
      notifier = createSdNotifier({ env, alive: () => now() - (delivery?.lastPassAt ?? 0) < 5000, logger });
      notifier.ready();
      logger.info({ village: config.village.id, version, devices: hub.devices().length, problems: problems.length }, 'village-edge started');
    },
    async stop() {
      notifier?.stopping();
      health.stop();
      await hub.stop();
      delivery?.stop();
      alarms?.stop();
      await uplink.stop();
      await embeddedBroker?.close();
      outbox.close();
      notifier?.stop();
      logger.info('village-edge stopped');
    },
  };
}
