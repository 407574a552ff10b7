import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEntry } from '../../src/console/types.ts';
import { freePort } from './broker.ts';
import { connectCounty, type CountyClient, type CountyMessage } from './county.ts';
import { createCountySigner, type CountySigner } from './county-signer.ts';
import { fromBuild, startService, writeConfig, type LogRecord, type ServiceProcess } from './service-process.ts';
import { productionNodeFlags } from './systemd-unit.ts';
import { waitFor } from './wait.ts';

/**
 * A village with its office console on, as production runs it: the BUILT service (dist/main.js, `npm run
 * build` first; the global setup does it for a vitest run) as a child process, with a simulated bus (two
 * alarm columns and a relay board), an amplifier and two zones, the run's real broker and a county listening
 * on it, accounts made by the real `village-edge user add`, and a player that only records what reached it.
 *
 * A test file starts one (or a few) in beforeAll and stops it in afterAll:
 *
 *     const village = await startConsoleVillage({ brokerUrl: inject('brokerUrl'), protocolVersion: inject('brokerProtocolVersion') });
 *     const page = await browser.newPage('phone');
 *     await page.goto(`${village.url}/login`);
 *     ...
 *     village.service.send('press column-1');
 *     await village.waitForTts((text) => text.includes('报警柱求助'));
 */

const repoRoot = new URL('../../', import.meta.url).pathname;
const bundle = join(repoRoot, 'dist/main.js');

export interface ConsoleAccount {
  name: string;
  role: 'official' | 'installer';
  password: string;
}

/** The two accounts every console village has, unless the options give others. */
export const defaultAccounts = {
  official: { name: 'wang', role: 'official', password: 'wang-secret-1' },
  installer: { name: 'li', role: 'installer', password: 'li-secret-22' },
} as const satisfies Record<string, ConsoleAccount>;

export interface ConsoleVillageOptions {
  brokerUrl: string;
  protocolVersion: 4 | 5;
  villageId?: string;
  /** Off serves no console at all (the bench's floor); default on. */
  consoleEnabled?: boolean;
  /** Merged into the `console` section (host, port and usersFile are the rig's). */
  console?: { sessionMinutes?: number; lockout?: { maxFailures?: number; baseSeconds?: number; maxSeconds?: number }; maxRecordingSeconds?: number };
  /** Default: the official and installer of `defaultAccounts`. */
  accounts?: readonly ConsoleAccount[];
  /** Changes the config as last step (e.g. a schedule, more devices); gets and returns the plain JSON. */
  configure?: (config: Record<string, unknown>) => Record<string, unknown>;
  /** Node flags of the service; default those of the systemd unit. */
  nodeFlags?: string[];
  /** Every log line of the service, as it comes. */
  onLog?: (line: LogRecord) => void;
}

export interface ConsoleVillageRig {
  readonly villageId: string;
  /** The folder of its config, accounts, data and recordings; removed by stop(). */
  readonly dir: string;
  readonly configPath: string;
  /** `http://localhost:PORT`: a browser treats localhost as a secure context (getUserMedia needs one). */
  readonly url: string;
  /** `http://127.0.0.1:PORT`, for Node clients (which may try ::1 first for localhost). */
  readonly directUrl: string;
  readonly port: number;
  readonly accounts: readonly ConsoleAccount[];
  readonly official: ConsoleAccount;
  readonly installer: ConsoleAccount;
  readonly service: ServiceProcess;
  /** Hears every village topic (alarm, fault, report, state, health) and acks alarms, faults and reports with a signed ack. */
  readonly county: CountyClient;
  /** Signs county commands this village takes (its key is in `county.commandKeys`): `county.send(villageId, 'broadcast', await signer.broadcast({ aud: villageId }))`. */
  readonly signer: CountySigner;
  /** The media library (`broadcast.library`): files put here can be played as `{kind: 'media', file}`. */
  readonly library: string;
  /** Every text the player was asked to speak, in order. */
  ttsPlayed(): string[];
  /** Every media file the player was asked to play (copies, named `<ns>-<original name>`), in order. */
  mediaPlayed(): string[];
  waitForTts(match: (text: string) => boolean, timeoutMs?: number): Promise<string>;
  /** The copy's full path once a played file matches (by its original name). */
  waitForMedia(match: (name: string) => boolean, timeoutMs?: number): Promise<string>;
  /** The `console action` log line whose audit entry matches, already written or still to come. */
  waitForAudit(match: Partial<AuditEntry>, timeoutMs?: number): Promise<AuditEntry>;
  /** Reports on the county's report topic that name `user` anywhere in their payload. */
  reportsNaming(user: string): CountyMessage[];
  /** SIGTERM, then the county, then the folder; the service's exit code. */
  stop(): Promise<number | null>;
}

/** `node dist/main.js ARGS…` (the bundle, as the Pi runs it), `stdin` written to it; rejects on a non-zero exit with its output. */
export async function villageCli(args: readonly string[], stdin = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [bundle, ...args], { cwd: repoRoot, timeout: 20_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`village-edge ${args.join(' ')} failed: ${error.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
    child.stdin?.end(stdin);
  });
}

/** `village-edge user add NAME --role ROLE --config FILE`, the password on stdin's first line (not a TTY). */
export async function addAccount(configPath: string, account: ConsoleAccount): Promise<void> {
  await villageCli(['user', 'add', account.name, '--role', account.role, '--config', configPath], `${account.password}\n`);
}

/** The config of a console village, as a plain object (see config/example.json for the shape). */
export function consoleVillageConfig(o: {
  villageId: string;
  brokerUrl: string;
  protocolVersion: 4 | 5;
  dataDir: string;
  library: string;
  recordDir: string;
  port: number;
  commandKeys: unknown[];
  consoleEnabled: boolean;
  console: NonNullable<ConsoleVillageOptions['console']>;
}): Record<string, unknown> {
  const ttsLog = join(o.recordDir, 'tts.txt');
  const mediaDir = join(o.recordDir, 'media');
  // The paths come from mkdtemp: no quotes or spaces to escape in the scripts.
  const copyMedia = ['sh', '-c', `cp "$0" '${mediaDir}'/"$(date +%s%N)-\${0##*/}"`, '{file}'];
  return {
    version: 2,
    village: { id: o.villageId, name: `示范村 ${o.villageId}`, location: { lat: 25.0406, lon: 102.7129 } },
    county: { url: o.brokerUrl, protocolVersion: o.protocolVersion, clientId: `ve-${o.villageId}`, commandKeys: o.commandKeys },
    dataDir: o.dataDir,
    buses: [{ id: 'sim', kind: 'simulated' }],
    devices: [
      { id: 'column-1', bus: 'sim', unitId: 1, profile: 've-ac100-rtu', role: 'alarm-column', label: '村委会门口 committee gate', zone: 'committee' },
      { id: 'column-2', bus: 'sim', unitId: 2, profile: 've-ac200-line', role: 'alarm-column', label: '小学 school', zone: 'school' },
      { id: 'relays-1', bus: 'sim', unitId: 10, profile: 've-rb8-rtu', role: 'relay-board', label: '广播室 broadcast room' },
    ],
    timing: { ackTimeoutMs: 10_000, retry: { initialMs: 500, maxMs: 2000 } },
    broadcast: {
      amplifiers: [{ id: 'amp-1', power: { device: 'relays-1', channel: 0 } }],
      zones: [
        { id: 'committee', label: '村委会 committee yard', relay: { device: 'relays-1', channel: 1 }, amplifier: 'amp-1' },
        { id: 'school', label: '小学 school', relay: { device: 'relays-1', channel: 2 }, amplifier: 'amp-1' },
      ],
      powerOnGapMs: 0,
      warmUpMs: 0,
      idleTailMs: 1000,
      library: o.library,
      // No sound card on test machines: ALSA's null device opens (and discards), `default` does not.
      output: { device: 'null' },
      player: {
        tts: ['sh', '-c', `printf '%s\\n' "$0" >> '${ttsLog}'`, '{text}'],
        ttsOutput: null,
        media: { '.wav': copyMedia, '.mp3': copyMedia },
        killTimeoutMs: 500,
      },
      localAlarm: { content: { kind: 'tts', text: '报警柱求助，请附近村民前往查看。' }, repeat: 1 },
      chime: { kind: 'tts', text: '请注意，请注意。' },
    },
    clock: { systemClock: 'trusted' },
    console: {
      enabled: o.consoleEnabled,
      host: '127.0.0.1',
      port: o.port,
      usersFile: 'console-users.json',
      ...o.console,
    },
    log: { level: 'info' },
  };
}

/** Starts a console village and waits until its console listens and its county link is up. */
export async function startConsoleVillage(options: ConsoleVillageOptions): Promise<ConsoleVillageRig> {
  const villageId = options.villageId ?? `console-${Math.random().toString(36).slice(2, 8)}`;
  const dir = mkdtempSync(join(tmpdir(), 've-console-'));
  const recordDir = join(dir, 'played');
  mkdirSync(join(recordDir, 'media'), { recursive: true });
  const library = join(dir, 'media');
  mkdirSync(library);
  const accounts = options.accounts ?? [defaultAccounts.official, defaultAccounts.installer];
  const enabled = options.consoleEnabled ?? true;
  const cleanUp: Array<() => Promise<unknown>> = [];
  const stopAll = async (): Promise<void> => {
    for (const step of cleanUp.splice(0).reverse()) await step().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const signer = await createCountySigner({ villageId });
    const county = await connectCounty({ url: options.brokerUrl, protocolVersion: options.protocolVersion, autoAck: true, signer });
    cleanUp.push(() => county.close());

    // The port is picked before the service binds it: another process could take it in between, so a
    // refused bind is tried again on a new one.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const base = consoleVillageConfig({
        villageId,
        brokerUrl: options.brokerUrl,
        protocolVersion: options.protocolVersion,
        dataDir: join(dir, 'data'),
        library,
        recordDir,
        port,
        commandKeys: [signer.keyEntry],
        consoleEnabled: enabled,
        console: options.console ?? {},
      });
      const configPath = writeConfig(dir, options.configure?.(base) ?? base);
      if (attempt === 1) for (const account of accounts) await addAccount(configPath, account);

      const service = startService(configPath, options.onLog, fromBuild(options.nodeFlags ?? productionNodeFlags()));
      const stopService = async () => {
        const exited = service.child.exitCode !== null || service.child.signalCode !== null;
        return exited ? service.child.exitCode : service.terminate();
      };
      cleanUp.push(stopService);
      await service.waitForLog((l) => l.msg === 'village-edge started', 20_000);
      const bindFailed = service.logs.some((l) => l.msg === 'console did not start' && /EADDRINUSE/.test(String(l['problem'])));
      if (enabled && bindFailed && attempt < 3) {
        await cleanUp.pop()?.();
        continue;
      }
      if (enabled) await service.waitForLog((l) => l.msg === 'console listening', 5_000);
      await county.waitFor((m) => m.kind === 'state' && m.village === villageId && (m.payload as { online?: boolean }).online === true, 15_000);

      const official = accounts.find((a) => a.role === 'official') ?? defaultAccounts.official;
      const installer = accounts.find((a) => a.role === 'installer') ?? defaultAccounts.installer;
      const ttsPlayed = (): string[] => {
        const path = join(recordDir, 'tts.txt');
        return existsSync(path) ? readFileSync(path, 'utf8').split('\n').slice(0, -1) : [];
      };
      const mediaPlayed = (): string[] => readdirSync(join(recordDir, 'media')).sort();
      let stopped: Promise<number | null> | undefined;
      return {
        villageId,
        dir,
        configPath,
        url: `http://localhost:${port}`,
        directUrl: `http://127.0.0.1:${port}`,
        port,
        accounts,
        official,
        installer,
        service,
        county,
        signer,
        library,
        ttsPlayed,
        mediaPlayed,
        waitForTts: (match, timeoutMs = 10_000) =>
          waitFor('a text spoken by the player', () => ttsPlayed().find(match), { timeoutMs, intervalMs: 20 }),
        waitForMedia: async (match, timeoutMs = 10_000) => {
          const name = await waitFor(
            'a media file played by the player',
            () => mediaPlayed().find((copy) => match(copy.slice(copy.indexOf('-') + 1))),
            { timeoutMs, intervalMs: 20 },
          );
          return join(recordDir, 'media', name);
        },
        waitForAudit: async (match, timeoutMs = 10_000) => {
          const line = await service.waitForLog((l) => l.msg === 'console action' && auditMatches(l['audit'], match), timeoutMs);
          return line['audit'] as AuditEntry;
        },
        reportsNaming: (user) =>
          county.messages.filter((m) => m.kind === 'report' && m.village === villageId && JSON.stringify(m.payload).includes(JSON.stringify(user))),
        stop: () => {
          stopped ??= (async () => {
            const code = await stopService();
            await stopAll();
            return code;
          })();
          return stopped;
        },
      };
    }
  } catch (error) {
    await stopAll();
    throw error;
  }
}

function auditMatches(entry: unknown, match: Partial<AuditEntry>): boolean {
  if (typeof entry !== 'object' || entry === null) return false;
  return Object.entries(match).every(([key, value]) => (entry as Record<string, unknown>)[key] === value);
}
