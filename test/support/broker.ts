import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../src/county/embedded-broker.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { waitFor } from './wait.ts';

export const MOSQUITTO_PATH = '/usr/sbin/mosquitto';
const HOST = '127.0.0.1';

export type BrokerKind = 'mosquitto' | 'aedes';

/** A real broker on a loopback port of its own. */
export interface TestBroker {
  readonly url: string;
  readonly kind: BrokerKind;
  /** The newest MQTT version the broker speaks (aedes: 3.1.1 only). */
  readonly protocolVersion: 4 | 5;
  readonly port: number;
  /** Takes the broker down (clients see the connection drop); also the final clean-up. */
  stop(): Promise<void>;
  /** Brings it back on the same port, with no sessions or retained messages (persistence is off). */
  restart(): Promise<void>;
}

export function mosquittoAvailable(): boolean {
  return existsSync(MOSQUITTO_PATH);
}

/** Under CI a missing Mosquitto is an error: the suite must not quietly test against the fallback instead. */
export function requireMosquittoUnderCi(): void {
  if (process.env['CI'] && !mosquittoAvailable())
    throw new Error(`CI is set but ${MOSQUITTO_PATH} is missing: install the Debian "mosquitto" package`);
}

/**
 * Mosquitto when installed, else the embedded aedes broker. `prefer: 'aedes'`, or env `TEST_BROKER=aedes`
 * for a whole run, tests against the embedded one on purpose.
 */
export async function startBroker(options: { prefer?: BrokerKind; mosquittoConfig?: string[] } = {}): Promise<TestBroker> {
  requireMosquittoUnderCi();
  const prefer = options.prefer ?? (process.env['TEST_BROKER'] === 'aedes' ? 'aedes' : 'mosquitto');
  if (prefer === 'mosquitto' && mosquittoAvailable()) return startMosquitto(options.mosquittoConfig ?? []);
  return startAedes();
}

export interface TlsListenerFiles {
  /** CA that client certificates must be signed by. */
  ca: string;
  cert: string;
  key: string;
}

/** A Mosquitto TLS listener that requires a client certificate. The files must be readable by user `mosquitto`. */
export async function startMosquittoTls(files: TlsListenerFiles): Promise<TestBroker> {
  if (!mosquittoAvailable()) throw new Error(`a TLS listener needs ${MOSQUITTO_PATH}`);
  return startMosquitto([`cafile ${files.ca}`, `certfile ${files.cert}`, `keyfile ${files.key}`, 'require_certificate true'], 'mqtts');
}

async function startMosquitto(tlsLines: string[], scheme: 'mqtt' | 'mqtts' = 'mqtt'): Promise<TestBroker> {
  let running: RunningMosquitto | undefined;
  let port = 0;
  for (let tries = 0; running === undefined; tries += 1) {
    port = await freePort();
    try {
      running = await launchMosquitto(port, tlsLines);
    } catch (error) {
      // Another process may take the port between freePort() and Mosquitto's bind.
      if (tries >= 4 || !String(error).includes('in use')) throw error;
    }
  }
  let current: RunningMosquitto | undefined = running;
  return {
    url: `${scheme}://${HOST}:${port}`,
    kind: 'mosquitto',
    protocolVersion: 5,
    port,
    async stop() {
      const stopping = current;
      current = undefined;
      await stopping?.stop();
    },
    async restart() {
      if (current !== undefined) throw new Error('restart() of a broker that is running');
      current = await launchMosquitto(port, tlsLines);
    },
  };
}

interface RunningMosquitto {
  stop(): Promise<void>;
}

/**
 * Runs Mosquitto under a shell that kills it once our end of its stdin closes, so a test worker that dies
 * (even by SIGKILL) takes its brokers, ports and temp folders with it; the shell exits with Mosquitto's status.
 */
const GUARD_SCRIPT = [
  '"$0" -c "$1" & pid=$!',
  'exec 3<&0',
  '{ read -r _ <&3; kill "$pid" 2>/dev/null; } &',
  'wait "$pid"; status=$?',
  'kill $! 2>/dev/null',
  'rm -rf "$2"',
  'exit $status',
].join('\n');

async function launchMosquitto(port: number, tlsLines: string[]): Promise<RunningMosquitto> {
  // Started as root, Mosquitto drops to user `mosquitto`: the folder must stay readable by it.
  const dir = mkdtempSync(join(tmpdir(), 've-mosquitto-'));
  chmodSync(dir, 0o755);
  const configPath = join(dir, 'mosquitto.conf');
  const lines = [
    `listener ${port} ${HOST}`,
    'allow_anonymous true',
    // Without it a small QoS 1 publish can wait ~40 ms for a delayed ACK (TOOLCHAIN.md, "Nagle on loopback").
    'set_tcp_nodelay true',
    'persistence false',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'connection_messages false',
    ...tlsLines,
  ];
  writeFileSync(configPath, `${lines.join('\n')}\n`, { mode: 0o644 });

  const child = spawn('sh', ['-c', GUARD_SCRIPT, MOSQUITTO_PATH, configPath, dir], {
    stdio: ['pipe', 'ignore', 'pipe'],
    detached: true,
  });
  const stderr: string[] = [];
  // Always drained, so a chatty broker can never block on a full pipe.
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr.push(chunk.toString('utf8'));
    if (stderr.length > 50) stderr.shift();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.stdin?.end();
      const timeout = new AbortController();
      const done = await Promise.race([exited.then(() => true), sleep(3000, false, { signal: timeout.signal }).catch(() => false)]);
      timeout.abort();
      if (!done && child.pid !== undefined) {
        process.kill(-child.pid, 'SIGKILL');
        await exited;
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await waitUntilListening(port, child, stderr);
  } catch (error) {
    await stop();
    throw error;
  }
  return { stop };
}

async function waitUntilListening(port: number, child: ChildProcess, stderr: string[]): Promise<void> {
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const outcome = await waitFor(`mosquitto listening on ${port}`, async () => (exited() ? 'exited' : (await canConnect(port)) && 'listening'), {
    timeoutMs: 5000,
    intervalMs: 15,
    context: () => `its stderr: ${stderr.join('').trim()}`,
  });
  if (outcome === 'exited') throw new Error(`mosquitto exited (${child.exitCode ?? child.signalCode}): ${stderr.join('').trim()}`);
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function startAedes(): Promise<TestBroker> {
  const logger = createLogger({ level: 'silent' });
  let current: EmbeddedBroker | undefined = await startEmbeddedBroker({ host: HOST, port: 0, logger });
  const url = current.url;
  const port = Number(new URL(url).port);
  return {
    url,
    kind: 'aedes',
    protocolVersion: 4,
    port,
    async stop() {
      const stopping = current;
      current = undefined;
      await stopping?.close();
    },
    async restart() {
      if (current !== undefined) throw new Error('restart() of a broker that is running');
      current = await startEmbeddedBroker({ host: HOST, port, logger });
    },
  };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
