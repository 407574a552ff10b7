#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { migrateConfigFile, readConfigFile } from './config/load.ts';
import { currentConfigVersion } from './config/migrate.ts';
import { preflight } from './config/preflight.ts';
import { createLogger, type Logger } from './platform/logger.ts';
import { createVillageEdge, shippedProfilesDir, type VillageEdge } from './app.ts';
import { loadProfiles, sortProfileProblems } from './drivers/profiles.ts';
import { createDeviceHub } from './drivers/device-hub.ts';
import { inputNames, type InputName } from './drivers/device/profile-schema.ts';
import { choiceFlag, intFlag, parseFlags, UsageError } from './cli/args.ts';
import { commandHelp, printHelp, topUsage } from './cli/help.ts';
import { resolve } from 'node:path';
import { defaultKeyDirectory, enclosingCheckout, ensureKeyDirectory, writeKeyFiles } from './county/keys.ts';
import { InvalidInputError } from './platform/schema-errors.ts';
import { announce, watch, type AnnounceBody, type BrokerOptions } from './county/county-tools.ts';
import { DEFAULT_MAX_SCHEDULE_BYTES, keepTime, publishSchedule, publishTime, showSchedule } from './county/schedule-tools.ts';
import { statusCommand } from './status/status-cli.ts';
import { logCommand } from './schedule/log-cli.ts';
import { userCommand } from './console/auth/user-cli.ts';
import { broadcastStatuses } from './contract/vocabulary.ts';

const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run': {
      const { values } = parseFlags('run', rest, { config: { type: 'string' }, pretty: { type: 'boolean', default: false } });
      if (values.help) return printHelp('run');
      if (values.config === undefined) throw new UsageError('run: --config FILE is required (see run --help)');
      return run(values.config, values.pretty || process.env['LOG_FORMAT'] === 'pretty');
    }
    case 'check-config': {
      const { values, positionals } = parseFlags('check-config', rest, {}, true);
      if (values.help) return printHelp('check-config');
      if (positionals.length !== 1) throw new UsageError('check-config: give one config FILE (see check-config --help)');
      return checkConfig(positionals[0]!);
    }
    case 'migrate-config': {
      const { values, positionals } = parseFlags('migrate-config', rest, {}, true);
      if (values.help) return printHelp('migrate-config');
      if (positionals.length !== 1) throw new UsageError('migrate-config: give one config FILE (see migrate-config --help)');
      return migrateConfigCommand(positionals[0]!);
    }
    case 'status':
      return statusCommand(rest);
    case 'log':
      return logCommand(rest);
    case 'user':
      return userCommand(rest);
    case 'keygen':
      return keygen(rest);
    case 'announce':
      return announceCommand(rest);
    case 'schedule':
      return scheduleCommand(rest);
    case 'county':
      if (rest[0] === 'watch') return countyWatch(rest.slice(1));
      if (rest[0] === 'time') return countyTime(rest.slice(1));
      if (rest[0] === '--help' || rest[0] === '-h') return printHelp('county watch');
      throw new UsageError(
        `county: ${rest[0] === undefined ? 'give a subcommand' : `unknown subcommand ${JSON.stringify(rest[0])}`}; the ones there are: county watch, county time`,
      );
    case '--version':
    case 'version':
      console.log(version);
      return 0;
    case '--help':
    case '-h':
    case 'help':
      if (rest[0] !== undefined && rest[0] in commandHelp) return printHelp(rest[0]);
      console.log(topUsage);
      return 0;
    case undefined:
      console.error(topUsage);
      return 2;
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}; village-edge --help lists them`);
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
  if (result.fromVersion !== currentConfigVersion)
    warnings.unshift(
      `version: ${result.fromVersion} is read as ${currentConfigVersion}; \`village-edge migrate-config ${path}\` rewrites the file (keeping a backup), as the package does on upgrade`,
    );
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

function migrateConfigCommand(path: string): number {
  const result = migrateConfigFile(path);
  switch (result.outcome) {
    case 'current':
      console.log(`${path}: already at config version ${result.version}, left as it is`);
      return 0;
    case 'migrated':
      console.log(`${path}: migrated from config version ${result.from} to ${result.to}; the old file is ${result.backup}`);
      return 0;
    case 'failed':
      for (const error of result.errors) console.error(error);
      console.error(`${path}: not migrated`);
      return 1;
  }
}

/** `run`'s exit code for a configuration it cannot run with (sysexits' EX_CONFIG; the unit file says so too). */
const EXIT_CONFIG = 78;

async function run(configPath: string, pretty: boolean): Promise<number> {
  const result = readConfigFile(configPath);
  if (!result.ok) {
    for (const error of result.errors) console.error(error);
    return EXIT_CONFIG;
  }
  const logger = createLogger({ level: result.config.log.level, format: pretty ? 'pretty' : 'json' });
  let app: VillageEdge;
  try {
    app = createVillageEdge({ config: result.config, configDir: result.configDir, version, logger });
  } catch (error) {
    // A value the schema lets through but the service cannot use (e.g. a county key): one line, not a stack.
    if (!(error instanceof InvalidInputError)) throw error;
    console.error(error.message);
    return EXIT_CONFIG;
  }
  // Listening before start(): a SIGTERM while it starts (systemd stopping a unit that is coming up) is a clean
  // stop once start() is done, not the default death that would leave the county the last will.
  let signalled: (signal: string) => void = () => undefined;
  const signal = new Promise<string>((resolve) => (signalled = resolve));
  process.on('SIGTERM', () => signalled('SIGTERM'));
  process.on('SIGINT', () => signalled('SIGINT'));
  await app.start();
  const controls = attachSimulatorControls(app, logger);
  logger.info({ signal: await signal }, 'stopping');
  controls?.close();
  try {
    await app.stop();
    return 0;
  } catch (error) {
    logger.error({ err: error }, 'stop failed');
    return 1;
  }
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

function brokerOf(
  command: string,
  values: { broker: string; prefix: string; protocol: string; username?: string | undefined; password?: string | undefined },
): BrokerOptions {
  return {
    url: values.broker,
    prefix: values.prefix,
    protocolVersion: choiceFlag(command, 'protocol', values.protocol, ['4', '5'] as const) === '5' ? 5 : 4,
    ...(values.username === undefined ? {} : { username: values.username }),
    ...(values.password === undefined ? {} : { password: values.password }),
  };
}

async function keygen(args: string[]): Promise<number> {
  const { values } = parseFlags('keygen', args, { kid: { type: 'string' }, out: { type: 'string' } });
  if (values.help) return printHelp('keygen');
  if (values.kid === undefined) throw new UsageError('keygen: --kid KID is required, e.g. --kid county-2026 (see keygen --help)');
  let dir = values.out;
  if (dir === undefined) {
    dir = defaultKeyDirectory();
    const checkout = enclosingCheckout(dir);
    if (checkout !== undefined)
      throw new UsageError(`keygen: the default key folder ${dir} is inside the git checkout ${checkout}; give --out DIR outside it`);
  }
  try {
    ensureKeyDirectory(dir);
    const entry = await writeKeyFiles(dir, values.kid);
    console.log(`wrote ${resolve(dir, `${values.kid}.private.jwk.json`)} (0600: keep it at the county) and ${values.kid}.public.jwk.json`);
    console.log(`add to each village's county.commandKeys: ${JSON.stringify(entry)}`);
    return 0;
  } catch (error) {
    // A kid the files cannot be named after is the user's mistake; a folder we cannot write is not.
    if (error instanceof InvalidInputError) throw new UsageError(`keygen: --${error.message}`);
    console.error(`keygen: ${(error as Error).message}`);
    return 1;
  }
}

const announceFlags = {
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
  'no-wait': { type: 'boolean', default: false },
  timeout: { type: 'string', default: '30' },
} as const;

async function announceCommand(args: string[]): Promise<number> {
  const cmd = 'announce';
  const { values } = parseFlags(cmd, args, announceFlags);
  if (values.help) return printHelp(cmd);
  if (values.key === undefined) throw new UsageError('announce: --key FILE is required: the county private key from keygen (see announce --help)');
  if ((values.village === undefined) === !values.all) throw new UsageError('announce: give exactly one of --village ID or --all');
  const broker = brokerOf(cmd, values);
  const expiresInSeconds = intFlag(cmd, 'expires', values.expires, 1, 86_400);
  const timeoutSeconds = intFlag(cmd, 'timeout', values.timeout, 1, 3600);
  let body: AnnounceBody;
  if (values.stop !== undefined) body = { cmd: 'stop', target: values.stop === 'all' ? 'all' : { jti: values.stop } };
  else {
    if ((values.emergency === undefined) === !values.announcement)
      throw new UsageError('announce: give exactly one of --emergency LEVEL (1-4) or --announcement');
    if ((values.text === undefined) === (values.media === undefined))
      throw new UsageError('announce: give exactly one of --text TEXT or --media FILE (with --sha256 HEX)');
    if (values.media !== undefined && values.sha256 === undefined)
      throw new UsageError("announce: --media needs --sha256 HEX, the file's checksum the village checks before playing");
    const content =
      values.text !== undefined
        ? { kind: 'tts' as const, text: values.text }
        : { kind: 'media' as const, file: values.media!, sha256: values.sha256! };
    const level = values.emergency === undefined ? undefined : (intFlag(cmd, 'emergency', values.emergency, 1, 4) as 1 | 2 | 3 | 4);
    body = {
      cmd: 'broadcast',
      priority: level === undefined ? 'announcement' : 'emergency',
      ...(level === undefined ? {} : { level }),
      status: choiceFlag(cmd, 'status', values.status, broadcastStatuses),
      zones: values.zones === 'all' ? 'all' : values.zones.split(',').filter((z) => z !== ''),
      content,
      chime: values.chime,
      repeat: intFlag(cmd, 'repeat', values.repeat, 1, 10),
    };
  }
  // A stop is reported against the broadcast it ends, not by its own jti: nothing to wait for by it.
  const wait = !values['no-wait'] && body.cmd === 'broadcast';
  try {
    const { jti, topic, outcome } = await announce({
      broker,
      keyFile: values.key,
      audience: values.all ? 'all' : (values.village ?? ''),
      body,
      expiresInSeconds,
      ...(wait ? { wait: { timeoutMs: timeoutSeconds * 1000, print: (line: string) => console.log(line) } } : {}),
    });
    if (outcome === undefined) {
      console.log(`published ${body.cmd} ${jti} to ${topic}`);
      return 0;
    }
    for (const line of outcome.lines) console.log(line);
    return outcome.exitCode;
  } catch (error) {
    console.error(`announce: ${(error as Error).message}`);
    return 1;
  }
}

async function countyWatch(args: string[]): Promise<number> {
  const cmd = 'county watch';
  const { values } = parseFlags(cmd, args, {
    ...brokerArgs,
    key: { type: 'string' },
    ack: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  });
  if (values.help) return printHelp(cmd);
  if (values.ack && values.key === undefined) throw new UsageError('county watch: --ack needs --key FILE: villages take only signed acks');
  const broker = brokerOf(cmd, values);
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  process.once('SIGTERM', () => stop.abort());
  try {
    await watch({
      broker,
      ...(values.key === undefined ? {} : { keyFile: values.key }),
      ack: values.ack,
      json: values.json,
      print: (line) => console.log(line),
      signal: stop.signal,
    });
    return 0;
  } catch (error) {
    console.error(`county watch: ${(error as Error).message}`);
    return 1;
  }
}

async function scheduleCommand(args: string[]): Promise<number> {
  const cmd = 'schedule';
  const { values } = parseFlags(cmd, args, {
    ...brokerArgs,
    key: { type: 'string' },
    village: { type: 'string' },
    all: { type: 'boolean', default: false },
    file: { type: 'string' },
    show: { type: 'boolean', default: false },
    'public-key': { type: 'string' },
  });
  if (values.help) return printHelp(cmd);
  const broker = brokerOf(cmd, values);
  if (values.show && (values.village === undefined || values.all)) throw new UsageError('schedule: --show needs --village ID (and no --all)');
  if (!values.show && values.key === undefined) throw new UsageError('schedule: --key FILE is required: the county private key from keygen');
  if (!values.show && (values.village === undefined) === !values.all) throw new UsageError('schedule: give exactly one of --village ID or --all');
  if (!values.show && values.file === undefined) throw new UsageError('schedule: --file FILE is required: the schedule document (JSON)');
  const document = values.show ? undefined : readJsonFlag(cmd, 'file', values.file ?? '');
  try {
    if (values.show) {
      const publicKey = values['public-key'];
      const shown = await showSchedule({ broker, village: values.village ?? '', ...(publicKey === undefined ? {} : { publicKeyFile: publicKey }) });
      for (const line of shown.lines) console.log(line);
      return shown.found ? 0 : 1;
    }
    const sent = await publishSchedule({ broker, keyFile: values.key ?? '', audience: values.all ? 'all' : (values.village ?? ''), document });
    console.log(
      `published schedule version ${sent.version} (${sent.programmes} programme(s), ${sent.bytes} bytes, ${sent.jti}) to ${sent.topic}, retained`,
    );
    if (sent.bytes > DEFAULT_MAX_SCHEDULE_BYTES)
      console.error(`warning: over ${DEFAULT_MAX_SCHEDULE_BYTES} bytes: villages at the default county.maxScheduleBytes refuse it as oversized`);
    return 0;
  } catch (error) {
    // What the operator gave (the document, a village id, a key file) is named with its flag; exit 2.
    if (error instanceof InvalidInputError)
      throw new UsageError(`schedule: ${error.source === 'document' ? `--file ${values.file}` : `--${error.source}`}: ${error.problems.join('; ')}`);
    console.error(`schedule: ${(error as Error).message}`);
    return 1;
  }
}

async function countyTime(args: string[]): Promise<number> {
  const cmd = 'county time';
  const { values } = parseFlags(cmd, args, { ...brokerArgs, key: { type: 'string' }, every: { type: 'string' } });
  if (values.help) return printHelp(cmd);
  if (values.key === undefined) throw new UsageError('county time: --key FILE is required: the county private key from keygen');
  const broker = brokerOf(cmd, values);
  // A time message expires 120 s after its iat: refreshed at least every minute, the retained copy never lapses.
  const everySeconds = values.every === undefined ? undefined : intFlag(cmd, 'every', values.every, 1, 60);
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  process.once('SIGTERM', () => stop.abort());
  try {
    if (everySeconds !== undefined)
      await keepTime({ broker, keyFile: values.key, everySeconds, signal: stop.signal, print: (line) => console.log(line) });
    else {
      const { topic, iat } = await publishTime({ broker, keyFile: values.key });
      console.log(`published the time (iat ${iat}) to ${topic}, retained; it expires in 120 s (--every keeps it fresh)`);
    }
    return 0;
  } catch (error) {
    if (error instanceof InvalidInputError) throw new UsageError(`${cmd}: --${error.source}: ${error.problems.join('; ')}`);
    console.error(`${cmd}: ${(error as Error).message}`);
    return 1;
  }
}

/** A JSON file named by a flag; a file that cannot be read or parsed is the user's to fix (exit 2). */
function readJsonFlag(command: string, flag: string, path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new UsageError(
      `${command}: --${flag} ${path}: ${error instanceof SyntaxError ? 'not JSON' : 'cannot read it'} (${(error as Error).message})`,
    );
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    // A user's mistake is one line and exit 2; anything else is ours, and its stack helps the report.
    if (error instanceof UsageError) {
      console.error(error.message);
      process.exit(2);
    }
    console.error(error);
    process.exit(1);
  },
);
