import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Config } from './schema.ts';
import { missingPrograms } from '../platform/programs.ts';

export interface PreflightReport {
  /** What `run` would fail on or run crippled by: check-config exits 1. */
  errors: string[];
  /** What may be fine later or elsewhere (a serial adapter not plugged in yet, a loose file mode). */
  warnings: string[];
}

export interface PreflightEnvironment {
  /** The config file itself, to check who may read it (the county password and client key live there). */
  configPath: string;
  path?: string;
}

/**
 * `check-config` is `run` without running: the checks of the environment a config names that its schema
 * cannot make, each naming the field. Run as the service's user (the unit's ExecStartPre is), "readable"
 * and "writable" mean readable and writable by the service.
 */
export function preflight(config: Config, environment: PreflightEnvironment): PreflightReport {
  const errors: string[] = [];
  const warnings: string[] = [];
  const { county } = config;

  try {
    new URL(county.url);
  } catch {
    errors.push(`county.url: "${county.url}" does not parse as a URL (is the host or port malformed?)`);
  }

  if (county.commandKeys.length === 0 && !county.commandsDisabled)
    errors.push(
      'county.commandKeys: empty, so every ack and broadcast from the county would be refused (columns would say not-received); ' +
        'add the county\'s {"kid","x"} entry (printed by `village-edge keygen`), or set county.commandsDisabled to true on purpose',
    );

  if (county.commandsDisabled)
    warnings.push(
      'county.commandsDisabled: true, so every county command is refused: no ack reaches a column and no county broadcast plays; ' +
        'alarms are still relayed. Add the county\'s {"kid","x"} to county.commandKeys and remove this to accept them',
    );

  preflightConsole(config.console, errors, warnings);

  const tls = county.tls;
  if (tls !== undefined) {
    for (const [field, file] of [
      ['ca', tls.ca],
      ['cert', tls.cert],
      ['key', tls.key],
    ] as const) {
      if (file === undefined) continue;
      const problem = unreadable(file);
      if (problem !== undefined) errors.push(`county.tls.${field}: ${problem}`);
    }
    if (tls.key !== undefined && readableByOthers(tls.key))
      warnings.push(`county.tls.key: ${tls.key} is readable by other users: chmod 600 it (it is the village's private key)`);
  }
  const holdsSecret = county.password !== undefined || /^[a-z]+:\/\/[^/]*:[^/]*@/.test(county.url);
  if (holdsSecret && readableByOthers(environment.configPath))
    warnings.push(`${environment.configPath}: readable by other users and holds the county password: chmod 640 it (owner root, group village-edge)`);
  if (writableByOthers(environment.configPath)) warnings.push(`${environment.configPath}: writable by other users: chmod 640 it`);

  const dataDirProblem = notWritable(config.dataDir);
  if (dataDirProblem !== undefined) errors.push(`dataDir: ${dataDirProblem}`);

  for (const [i, bus] of config.buses.entries()) {
    if (bus.kind !== 'modbus-rtu' && bus.kind !== 'line') continue;
    if (!existsSync(bus.path)) warnings.push(`buses[${i}] (${bus.id}).path: ${bus.path} does not exist (yet): it is polled once it appears`);
    else {
      const problem = unreadable(bus.path, constants.R_OK | constants.W_OK);
      if (problem !== undefined) warnings.push(`buses[${i}] (${bus.id}).path: ${problem}; the service's user must be in the dialout group`);
    }
  }

  warnings.push(...missingPlayerPrograms(config.broadcast, environment.path));
  return { errors, warnings };
}

/** Every program the player templates start, by the field that names it, that is not installed: for run and check-config alike. */
export function missingPlayerPrograms(broadcast: Config['broadcast'], path: string | undefined): string[] {
  return missingPrograms(
    {
      'broadcast.player.tts': broadcast.player.tts,
      'broadcast.player.ttsOutput': broadcast.player.ttsOutput,
      'broadcast.player.volume': broadcast.player.volume,
      'broadcast.output.check': broadcast.output.check,
      ...Object.fromEntries(Object.entries(broadcast.player.media).map(([extension, argv]) => [`broadcast.player.media["${extension}"]`, argv])),
    },
    path,
  );
}

function unreadable(path: string, mode = constants.R_OK): string | undefined {
  try {
    accessSync(path, mode);
    return undefined;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `${path} does not exist`;
    if (code === 'EACCES')
      return `${path} cannot be ${mode & constants.W_OK ? 'opened for reading and writing' : 'read'} by this user (${process.getuid?.() ?? '?'})`;
    return `${path}: ${code ?? String(error)}`;
  }
}

function writableByOthers(path: string): boolean {
  try {
    return (statSync(path).mode & 0o002) !== 0;
  } catch {
    return false;
  }
}

function readableByOthers(path: string): boolean {
  try {
    return (statSync(path).mode & 0o004) !== 0;
  } catch {
    return false;
  }
}

/** The folder, or the nearest one above it that exists (the service creates the rest), takes writes. */
function notWritable(dir: string): string | undefined {
  let existing = dir;
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  try {
    if (!statSync(existing).isDirectory()) return `${existing} is not a folder`;
    accessSync(existing, constants.W_OK | constants.X_OK);
    return undefined;
  } catch (error) {
    return `${existing === dir ? dir : `${dir} cannot be created: ${existing}`} is not writable by this user (${(error as NodeJS.ErrnoException).code ?? String(error)})`;
  }
}

/** The office console: its TLS files must be readable; without TLS off this machine, passwords cross the network in clear. */
function preflightConsole(console: Config['console'], errors: string[], warnings: string[]): void {
  if (!console.enabled) return;
  if (console.tls !== undefined) {
    for (const field of ['cert', 'key'] as const) {
      const problem = unreadable(console.tls[field]);
      if (problem !== undefined) errors.push(`console.tls.${field}: ${problem}`);
    }
    if (readableByOthers(console.tls.key)) warnings.push(`console.tls.key: ${console.tls.key} is readable by other users: chmod 600 it`);
  } else if (!isLoopback(console.host))
    warnings.push(
      `console.host: ${console.host} without console.tls: passwords and session cookies cross the network in clear; give console.tls a certificate`,
    );
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}
