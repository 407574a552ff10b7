#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { readConfigFile } from './config/load.ts';
import { createLogger, type Logger } from './platform/logger.ts';
import { createVillageEdge, shippedProfilesDir, type VillageEdge } from './app.ts';
import { loadProfiles } from './drivers/profiles.ts';
import { createDeviceHub } from './drivers/device-hub.ts';
import { inputNames, type InputName } from './drivers/profile-schema.ts';

const usage = `usage:
  village-edge run --config FILE     run the service for one village
  village-edge check-config FILE     validate a config (and the device profiles it names); exit 1 on errors
  village-edge --version`;

const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run': {
      const configPath = optionValue(rest, '--config');
      if (configPath === undefined) return fail(usage);
      return run(configPath);
    }
    case 'check-config': {
      const configPath = rest[0];
      if (configPath === undefined) return fail(usage);
      return checkConfig(configPath);
    }
    case '--version':
    case 'version':
      console.log(version);
      return 0;
    default:
      return fail(usage);
  }
}

function checkConfig(path: string): number {
  const result = readConfigFile(path);
  if (!result.ok) {
    for (const error of result.errors) console.error(error);
    console.error(`${path}: ${result.errors.length} error(s)`);
    return 1;
  }
  const { config } = result;
  const profiles = loadProfiles(config.profilesDir ?? shippedProfilesDir);
  // Building the hub opens nothing (constructors only assign), so it is a safe dry run of the wiring.
  const { problems } = createDeviceHub({
    buses: config.buses,
    devices: config.devices,
    profiles: profiles.profiles,
    timing: config.timing,
    sink: () => {},
    logger: createLogger({ level: 'silent' }),
  });
  const errors = [...profiles.errors, ...problems];
  for (const error of errors) console.error(error);
  if (errors.length > 0) {
    console.error(`${path}: ${errors.length} error(s)`);
    return 1;
  }
  console.log(`${path}: ok (village ${config.village.id}, ${config.buses.length} bus(es), ${config.devices.length} device(s))`);
  return 0;
}

async function run(configPath: string): Promise<number> {
  const result = readConfigFile(configPath);
  if (!result.ok) {
    for (const error of result.errors) console.error(error);
    return 1;
  }
  const logger = createLogger({ level: result.config.log.level });
  const app = createVillageEdge({ config: result.config, configDir: result.configDir, version, logger });
  await app.start();
  const controls = attachSimulatorControls(app, logger);
  return new Promise<number>((resolve) => {
    let stopping = false;
    const shutdown = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'stopping');
      controls?.close();
      app.stop().then(
        () => resolve(0),
        (error: unknown) => {
          logger.error({ err: error }, 'stop failed');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
  });
}

/**
 * With simulated devices, lines on stdin play the villager: `press column-1`, `tamper column-1`,
 * `offline column-1`, `online column-1`. Under systemd stdin is /dev/null and this ends at once.
 */
function attachSimulatorControls(app: VillageEdge, logger: Logger): { close(): void } | undefined {
  const simulated = app.devices.devices().filter((d) => app.devices.simulated(d.id) !== undefined);
  if (simulated.length === 0) return undefined;
  logger.info({ devices: simulated.map((d) => d.id) }, 'simulated devices: type "press <device>" and Enter to press a button');
  const lines = createInterface({ input: process.stdin, terminal: false });
  lines.on('line', (line) => {
    const [verb, id = simulated[0]?.id ?? '', arg] = line.trim().split(/\s+/);
    const device = app.devices.simulated(id);
    if (verb === undefined || verb === '') return;
    if (device === undefined) return void logger.warn({ id }, 'no simulated device with that id');
    switch (verb) {
      case 'press':
        return device.press('button', Number(arg ?? 300));
      case 'tamper':
        return device.press('tamper', Number(arg ?? 300));
      case 'hold':
      case 'release': {
        const input = (inputNames as readonly string[]).includes(arg ?? 'button') ? ((arg ?? 'button') as InputName) : 'button';
        return device.setInput(input, verb === 'hold');
      }
      case 'offline':
      case 'online':
        return device.setOnline(verb === 'online');
      default:
        logger.warn({ line }, 'simulator commands: press|tamper|hold|release|offline|online <device>');
    }
  });
  return { close: () => lines.close() };
}

function optionValue(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function fail(message: string): number {
  console.error(message);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
