#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { readConfigFile } from './config/load.ts';
import { preflight } from './config/preflight.ts';
import { createLogger, type Logger } from './platform/logger.ts';
import { createVillageEdge, shippedProfilesDir, type VillageEdge } from './app.ts';
import { loadProfiles, sortProfileProblems } from './drivers/profiles.ts';
import { createDeviceHub } from './drivers/device-hub.ts';
import { inputNames, type InputName } from './drivers/profile-schema.ts';
import { parseArgs } from 'node:util';
import { writeKeyFiles } from './county/keys.ts';
import { announce, watch, type AnnounceBody, type BrokerOptions } from './county/county-tools.ts';
import { statusCommand } from './status/status-cli.ts';

const usage = `usage:
  village-edge run --config FILE     run the service for one village
  village-edge check-config FILE     validate a config (and the device profiles it names); exit 1 on errors
  village-edge status [--config FILE | --socket PATH] [--json]
                                     ask the running service how it is (default config /etc/village-edge/config.json)
  village-edge --version

county tools:
  village-edge keygen --kid KID [--out DIR]
      make an Ed25519 key pair (private file 0600); prints the {kid, x} entry for villages' county.commandKeys
  village-edge announce --key FILE (--village ID | --all) [--broker URL] [--prefix P] [--protocol 4|5]
      (--emergency LEVEL | --announcement) [--status actual|exercise|test] [--zones a,b|all]
      (--text TEXT | --media FILE --sha256 HEX) [--chime] [--repeat N] [--expires SECONDS]
  village-edge announce --key FILE (--village ID | --all) --stop (JTI|all) [--broker URL] ...
  village-edge county watch [--broker URL] [--prefix P] [--protocol 4|5] [--key FILE --ack]`;

const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run': {
      const { values } = parseArgs({ args: rest, options: { config: { type: 'string' } } });
      if (values.config === undefined) return fail(usage);
      return run(values.config);
    }
    case 'check-config': {
      const configPath = rest[0];
      if (configPath === undefined) return fail(usage);
      return checkConfig(configPath);
    }
    case 'status':
      return statusCommand(rest);
    case 'keygen':
      return keygen(rest);
    case 'announce':
      return announceCommand(rest);
    case 'county':
      if (rest[0] === 'watch') return countyWatch(rest.slice(1));
      return fail(usage);
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
  const profiles = loadProfiles([shippedProfilesDir, ...(config.profilesDir === undefined ? [] : [config.profilesDir])]);
  // Building the hub opens nothing (constructors only assign), so it is a safe dry run of the wiring.
  const { problems } = createDeviceHub({
    buses: config.buses,
    devices: config.devices,
    profiles: profiles.profiles,
    timing: config.timing,
    sink: () => {},
    logger: createLogger({ level: 'silent' }),
  });
  // Only what would stop the service (or a configured device) fails the check: this is the unit's
  // ExecStartPre, and a broken file no device uses must not keep the village off the air.
  const sorted = sortProfileProblems(profiles, new Set(config.devices.map((d) => d.profile)));
  const environment = preflight(config, { configPath: path });
  const errors = [...sorted.errors, ...problems, ...environment.errors];
  const warnings = [...sorted.warnings, ...environment.warnings];
  for (const error of errors) console.error(error);
  for (const warning of warnings) console.error(`warning: ${warning}`);
  if (errors.length > 0) {
    console.error(`${path}: ${errors.length} error(s)`);
    return 1;
  }
  const warned = warnings.length === 0 ? '' : `, ${warnings.length} warning(s)`;
  console.log(`${path}: ok (village ${config.village.id}, ${config.buses.length} bus(es), ${config.devices.length} device(s)${warned})`);
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
  // Loaded here, not at the top: a village in production has no simulated devices, and readline costs RSS.
  const { createInterface } = createRequire(import.meta.url)('node:readline') as typeof import('node:readline');
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

const brokerArgs = {
  broker: { type: 'string', default: 'mqtt://127.0.0.1:1883' },
  prefix: { type: 'string', default: 'village-edge' },
  protocol: { type: 'string', default: '4' },
  username: { type: 'string' },
  password: { type: 'string' },
} as const;

function brokerOf(values: { broker: string; prefix: string; protocol: string; username?: string | undefined; password?: string | undefined }): BrokerOptions {
  return {
    url: values.broker,
    prefix: values.prefix,
    protocolVersion: values.protocol === '5' ? 5 : 4,
    ...(values.username === undefined ? {} : { username: values.username }),
    ...(values.password === undefined ? {} : { password: values.password }),
  };
}

async function keygen(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { kid: { type: 'string' }, out: { type: 'string', default: '.' } } });
  if (values.kid === undefined) return fail('keygen: --kid is required');
  const entry = await writeKeyFiles(values.out, values.kid);
  console.log(`wrote ${values.out}/${values.kid}.private.jwk.json (0600: keep it at the county) and ${values.kid}.public.jwk.json`);
  console.log(`add to each village's county.commandKeys: ${JSON.stringify(entry)}`);
  return 0;
}

async function announceCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...brokerArgs,
      key: { type: 'string' },
      village: { type: 'string' },
      all: { type: 'boolean', default: false },
      emergency: { type: 'string' },
      announcement: { type: 'boolean', default: false },
      status: { type: 'string', default: 'actual' },
      zones: { type: 'string', default: 'all' },
      text: { type: 'string' },
      media: { type: 'string' },
      sha256: { type: 'string' },
      chime: { type: 'boolean', default: false },
      repeat: { type: 'string', default: '1' },
      expires: { type: 'string', default: '900' },
      stop: { type: 'string' },
    },
  });
  if (values.key === undefined) return fail('announce: --key FILE is required (see keygen)');
  if ((values.village === undefined) === !values.all) return fail('announce: give exactly one of --village ID or --all');
  let body: AnnounceBody;
  if (values.stop !== undefined) body = { cmd: 'stop', target: values.stop === 'all' ? 'all' : { jti: values.stop } };
  else {
    if ((values.emergency === undefined) === !values.announcement) return fail('announce: give exactly one of --emergency LEVEL or --announcement');
    const content =
      values.text !== undefined
        ? { kind: 'tts' as const, text: values.text }
        : values.media !== undefined && values.sha256 !== undefined
          ? { kind: 'media' as const, file: values.media, sha256: values.sha256 }
          : undefined;
    if (content === undefined) return fail('announce: give --text TEXT, or --media FILE with --sha256 HEX');
    const level = values.emergency === undefined ? undefined : (Number(values.emergency) as 1 | 2 | 3 | 4);
    body = {
      cmd: 'broadcast',
      priority: values.emergency === undefined ? 'announcement' : 'emergency',
      ...(level === undefined ? {} : { level }),
      status: values.status as 'actual' | 'exercise' | 'test',
      zones: values.zones === 'all' ? 'all' : values.zones.split(',').filter((z) => z !== ''),
      content,
      chime: values.chime,
      repeat: Number(values.repeat),
    };
  }
  try {
    const { jti, topic } = await announce({
      broker: brokerOf(values),
      keyFile: values.key,
      audience: values.all ? 'all' : (values.village ?? ''),
      body,
      expiresInSeconds: Number(values.expires),
    });
    console.log(`published ${body.cmd} ${jti} to ${topic}`);
    return 0;
  } catch (error) {
    console.error(`announce: ${(error as Error).message}`);
    return 1;
  }
}

async function countyWatch(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { ...brokerArgs, key: { type: 'string' }, ack: { type: 'boolean', default: false } } });
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  process.once('SIGTERM', () => stop.abort());
  try {
    await watch({ broker: brokerOf(values), ...(values.key === undefined ? {} : { keyFile: values.key }), ack: values.ack, print: (line) => console.log(line), signal: stop.signal });
    return 0;
  } catch (error) {
    console.error(`county watch: ${(error as Error).message}`);
    return 1;
  }
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
